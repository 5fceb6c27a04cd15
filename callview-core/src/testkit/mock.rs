//! [`MockTwilio`]: a small in-memory [`TwilioClient`] whose calls, page size
//! and owned numbers a test sets directly.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::call::{Call, CallSid};
use crate::model::interaction::newest_first;
use crate::recording::{Recording, RecordingSid, Sentence, Transcript, TranscriptKind};
use crate::text::{MessageSid, Text, TextDirection, TextMedia, TextStatus};
use crate::twilio::{
    AudioFormat, CallFilter, CallPage, IncomingNumber, OutgoingText, PageToken, RecordingAudio,
    RecordingFilter, RecordingPage, TextFilter, TextPage, TextSender, TranscriptFilter,
    TranscriptPage, TwilioClient, TwilioError,
};

#[derive(Debug, Default)]
struct MockState {
    calls: BTreeMap<CallSid, Call>,
    numbers: Vec<IncomingNumber>,
    recordings: BTreeMap<RecordingSid, Recording>,
    transcripts: BTreeMap<String, Transcript>,
    audio: HashMap<RecordingSid, (String, Vec<u8>)>,
    texts: BTreeMap<MessageSid, Text>,
    text_media: HashMap<MessageSid, Vec<(TextMedia, Vec<u8>)>>,
    sent: Vec<OutgoingText>,
    send_refusal: Option<(i64, String)>,
    page_size: Option<u32>,
    page_requests: u64,
    fetch_requests: u64,
}

/// An in-memory Twilio account: lists its calls newest first (by start
/// time, calls without one last, then SID descending), in pages of
/// `min(filter.page_size, configured page size)`, honouring the filter's
/// time bounds, status and parent like Twilio does.
///
/// ```
/// # tokio_test_block(async {
/// use callview_core::testkit::{at, CallBuilder, MockTwilio};
/// use callview_core::twilio::{CallFilter, TwilioClient};
/// let mock = MockTwilio::new().with_page_size(1);
/// mock.set_calls([
///     CallBuilder::new("CA1").start(at(0)).build(),
///     CallBuilder::new("CA2").start(at(1)).build(),
/// ]);
/// let page = mock.list_calls_page(&CallFilter::default(), None).await.unwrap();
/// assert_eq!(page.calls[0].sid.as_str(), "CA2");
/// assert!(page.next.is_some());
/// # });
/// # fn tokio_test_block(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MockTwilio {
    state: Mutex<MockState>,
}

impl MockTwilio {
    /// An account with no calls and no numbers, serving pages of up to
    /// whatever the filter asks for.
    pub fn new() -> Self {
        Self::default()
    }

    /// Caps every page at `page_size` records (at least 1).
    pub fn with_page_size(self, page_size: u32) -> Self {
        self.set_page_size(page_size);
        self
    }

    /// Owns these numbers (listed as IncomingPhoneNumbers).
    pub fn with_owned_numbers<'a>(self, numbers: impl IntoIterator<Item = &'a str>) -> Self {
        self.set_owned_numbers(numbers);
        self
    }

    fn lock(&self) -> MutexGuard<'_, MockState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Caps every page at `page_size` records (at least 1).
    pub fn set_page_size(&self, page_size: u32) {
        self.lock().page_size = Some(page_size.max(1));
    }

    /// Replaces the account's owned numbers.
    pub fn set_owned_numbers<'a>(&self, numbers: impl IntoIterator<Item = &'a str>) {
        self.lock().numbers = numbers
            .into_iter()
            .enumerate()
            .map(|(i, n)| IncomingNumber {
                sid: format!("PN{i:032x}"),
                phone_number: n.to_owned(),
                friendly_name: None,
            })
            .collect();
    }

    /// Replaces every call of the account.
    pub fn set_calls(&self, calls: impl IntoIterator<Item = Call>) {
        self.lock().calls = calls.into_iter().map(|c| (c.sid.clone(), c)).collect();
    }

    /// Adds a call, or replaces the one with the same SID (a newer version).
    pub fn upsert(&self, call: Call) {
        self.lock().calls.insert(call.sid.clone(), call);
    }

    /// Removes a call (as if Twilio no longer had it).
    pub fn remove(&self, sid: &str) {
        if let Some(sid) = CallSid::new(sid) {
            self.lock().calls.remove(&sid);
        }
    }

    /// Adds a recording, or replaces the one with the same SID.
    pub fn upsert_recording(&self, recording: Recording) {
        self.lock()
            .recordings
            .insert(recording.sid.clone(), recording);
    }

    /// Deletes a recording (listed no more, fetched as 404).
    pub fn delete_recording(&self, sid: &RecordingSid) {
        let mut state = self.lock();
        state.recordings.remove(sid);
        state.audio.remove(sid);
    }

    /// Sets a recording's audio: its `Content-Type` and bytes (served for
    /// either format).
    pub fn set_audio(&self, sid: &RecordingSid, content_type: &str, bytes: Vec<u8>) {
        self.lock()
            .audio
            .insert(sid.clone(), (content_type.to_owned(), bytes));
    }

    /// Adds a transcript (either product; Voice Intelligence ones with their
    /// sentences, which are served separately), or replaces one.
    pub fn upsert_transcript(&self, transcript: Transcript) {
        self.lock()
            .transcripts
            .insert(transcript.sid.clone(), transcript);
    }

    /// Every call, in the order Twilio lists them (newest first).
    /// Adds or replaces a message.
    pub fn upsert_text(&self, text: Text) {
        self.lock().texts.insert(text.sid.clone(), text);
    }

    /// Gives message `sid` one media item with `content_type` and `bytes`.
    pub fn add_text_media(&self, sid: &MessageSid, media: TextMedia, bytes: Vec<u8>) {
        self.lock()
            .text_media
            .entry(sid.clone())
            .or_default()
            .push((media, bytes));
    }

    /// Makes every later send fail as Twilio refuses one (400 with `code`
    /// and `message`); `None` accepts sends again.
    pub fn refuse_sends(&self, refusal: Option<(i64, &str)>) {
        self.lock().send_refusal = refusal.map(|(code, m)| (code, m.to_owned()));
    }

    /// Every text sent so far, in order.
    pub fn sent(&self) -> Vec<OutgoingText> {
        self.lock().sent.clone()
    }

    /// Every call, by SID.
    pub fn calls(&self) -> Vec<Call> {
        let mut calls: Vec<Call> = self.lock().calls.values().cloned().collect();
        calls.sort_by(newest_first);
        calls
    }

    /// How many pages of calls were requested so far.
    pub fn page_requests(&self) -> u64 {
        self.lock().page_requests
    }

    /// How many single calls were fetched so far.
    pub fn fetch_requests(&self) -> u64 {
        self.lock().fetch_requests
    }
}

fn parse_token(token: &PageToken) -> Option<(usize, usize)> {
    let query = token.0.split_once('?')?.1;
    let mut page = None;
    let mut size = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("Page", v)) => page = v.parse().ok(),
            Some(("PageSize", v)) => size = v.parse().ok(),
            _ => {}
        }
    }
    Some((page?, size?))
}

#[async_trait]
impl TwilioClient for MockTwilio {
    async fn list_calls_page(
        &self,
        filter: &CallFilter,
        page: Option<&PageToken>,
    ) -> Result<CallPage, TwilioError> {
        let (number, size) = match page {
            None => {
                let state = self.lock();
                let size = filter.page_size.clamp(1, crate::twilio::MAX_PAGE_SIZE);
                let size = state.page_size.map_or(size, |cap| size.min(cap));
                (0, size as usize)
            }
            Some(token) => parse_token(token).ok_or_else(|| TwilioError::Api {
                status: 400,
                code: Some(20001),
                message: format!("bad page token {:?}", token.0),
                more_info: None,
            })?,
        };
        // Twilio's order: newest first, calls never dialled ahead of all.
        let mut matching: Vec<Call> = self
            .calls()
            .into_iter()
            .filter(|c| filter.matches(c))
            .collect();
        matching.sort_by(|a, b| {
            (b.start_time.is_none(), b.start_time, &b.sid).cmp(&(
                a.start_time.is_none(),
                a.start_time,
                &a.sid,
            ))
        });
        self.lock().page_requests += 1;
        let start = number.saturating_mul(size).min(matching.len());
        let end = start.saturating_add(size).min(matching.len());
        let next = (end < matching.len()).then(|| {
            PageToken(format!(
                "/2010-04-01/Accounts/ACmock/Calls.json?Page={}&PageSize={size}",
                number + 1
            ))
        });
        let calls = matching.drain(start..end).collect();
        Ok(CallPage {
            calls,
            rejected: Vec::new(),
            next,
        })
    }

    async fn fetch_call(&self, sid: &CallSid) -> Result<Call, TwilioError> {
        let mut state = self.lock();
        state.fetch_requests += 1;
        state
            .calls
            .get(sid)
            .cloned()
            .ok_or_else(|| TwilioError::NotFound {
                what: format!("call {sid}"),
            })
    }

    async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
        Ok(self.lock().numbers.clone())
    }

    async fn list_recordings_page(
        &self,
        filter: &RecordingFilter,
        page: Option<&PageToken>,
    ) -> Result<RecordingPage, TwilioError> {
        let mut matching: Vec<Recording> = self
            .lock()
            .recordings
            .values()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect();
        matching.sort_by(|a, b| (b.date_created, &b.sid).cmp(&(a.date_created, &a.sid)));
        let (recordings, next) = self.slice(matching, filter.page_size, page, "Recordings.json")?;
        Ok(RecordingPage {
            recordings,
            rejected: Vec::new(),
            next,
        })
    }

    async fn fetch_recording(&self, sid: &RecordingSid) -> Result<Recording, TwilioError> {
        self.lock()
            .recordings
            .get(sid)
            .cloned()
            .ok_or_else(|| TwilioError::NotFound {
                what: format!("recording {sid}"),
            })
    }

    async fn list_transcriptions_page(
        &self,
        page_size: u32,
        page: Option<&PageToken>,
    ) -> Result<TranscriptPage, TwilioError> {
        let matching = self.transcripts_of(TranscriptKind::Legacy, |_| true);
        let (transcripts, next) = self.slice(matching, page_size, page, "Transcriptions.json")?;
        Ok(TranscriptPage {
            transcripts,
            rejected: Vec::new(),
            next,
        })
    }

    async fn list_intelligence_transcripts_page(
        &self,
        filter: &TranscriptFilter,
        page: Option<&PageToken>,
    ) -> Result<TranscriptPage, TwilioError> {
        let matching = self.transcripts_of(TranscriptKind::Intelligence, |t| {
            let created = t.date_created;
            let source = t
                .recording_sid
                .as_ref()
                .map(|r| r.as_str())
                .or(t.call_sid.as_ref().map(|c| c.as_str()));
            let after_start = match filter.created_after {
                Some(a) => created.is_some_and(|c| c >= a),
                None => true,
            };
            let before_end = match filter.created_before {
                Some(b) => created.is_some_and(|c| c <= b),
                None => true,
            };
            after_start
                && before_end
                && filter
                    .source_sid
                    .as_deref()
                    .is_none_or(|s| Some(s) == source)
        });
        let (mut transcripts, next) =
            self.slice(matching, filter.page_size, page, "v2/Transcripts")?;
        for t in &mut transcripts {
            t.sentences.clear();
            t.text.clear();
        }
        Ok(TranscriptPage {
            transcripts,
            rejected: Vec::new(),
            next,
        })
    }

    async fn transcript_sentences(
        &self,
        transcript_sid: &str,
    ) -> Result<Vec<Sentence>, TwilioError> {
        self.lock()
            .transcripts
            .get(transcript_sid)
            .map(|t| t.sentences.clone())
            .ok_or_else(|| TwilioError::NotFound {
                what: format!("transcript {transcript_sid}"),
            })
    }

    async fn recording_audio(
        &self,
        sid: &RecordingSid,
        _format: AudioFormat,
    ) -> Result<RecordingAudio, TwilioError> {
        let (content_type, bytes) =
            self.lock()
                .audio
                .get(sid)
                .cloned()
                .ok_or_else(|| TwilioError::NotFound {
                    what: format!("the audio of recording {sid}"),
                })?;
        let length = bytes.len() as u64;
        // In chunks, as a network would deliver them.
        let chunks: Vec<Result<bytes::Bytes, TwilioError>> = bytes
            .chunks(4096)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        Ok(RecordingAudio {
            content_type: Some(content_type),
            content_length: Some(length),
            body: Box::pin(futures::stream::iter(chunks)),
        })
    }

    async fn list_texts_page(
        &self,
        filter: &TextFilter,
        page: Option<&PageToken>,
    ) -> Result<TextPage, TwilioError> {
        let mut matching: Vec<Text> = self
            .lock()
            .texts
            .values()
            .filter(|t| filter.matches(t))
            .cloned()
            .collect();
        // Newest first; unsent messages ahead of all, as calls.
        matching.sort_by(|a, b| {
            (b.date_sent.is_none(), b.date_sent, &b.sid).cmp(&(
                a.date_sent.is_none(),
                a.date_sent,
                &a.sid,
            ))
        });
        self.lock().page_requests += 1;
        let (texts, next) = self.slice(matching, filter.page_size, page, "Messages.json")?;
        Ok(TextPage {
            texts,
            rejected: Vec::new(),
            next,
        })
    }

    async fn text_media(&self, sid: &MessageSid) -> Result<Vec<TextMedia>, TwilioError> {
        let state = self.lock();
        if !state.texts.contains_key(sid) {
            return Err(TwilioError::NotFound {
                what: format!("message {sid}"),
            });
        }
        Ok(state
            .text_media
            .get(sid)
            .map(|m| m.iter().map(|(media, _)| media.clone()).collect())
            .unwrap_or_default())
    }

    async fn text_media_content(
        &self,
        sid: &MessageSid,
        media_sid: &str,
    ) -> Result<RecordingAudio, TwilioError> {
        let (media, bytes) = self
            .lock()
            .text_media
            .get(sid)
            .and_then(|m| m.iter().find(|(media, _)| media.sid == media_sid).cloned())
            .ok_or_else(|| TwilioError::NotFound {
                what: format!("media {media_sid} of message {sid}"),
            })?;
        Ok(RecordingAudio {
            content_type: media.content_type,
            content_length: Some(bytes.len() as u64),
            body: Box::pin(futures::stream::iter([Ok(bytes::Bytes::from(bytes))])),
        })
    }

    async fn send_text(&self, text: &OutgoingText) -> Result<Text, TwilioError> {
        let mut state = self.lock();
        if let Some((code, message)) = state.send_refusal.clone() {
            return Err(TwilioError::Api {
                status: 400,
                code: Some(code),
                message,
                more_info: None,
            });
        }
        state.sent.push(text.clone());
        let sid = MessageSid::new(format!("SM{:032x}", state.sent.len()))
            .unwrap_or_else(|| unreachable!("32 hex digits"));
        let now = chrono::Utc::now();
        let record = Text {
            sid,
            account_sid: Some("ACmock".into()),
            messaging_service_sid: match &text.from {
                TextSender::Service(s) => Some(s.clone()),
                TextSender::Number(_) => None,
            },
            from: match &text.from {
                TextSender::Number(n) => Some(n.clone()),
                TextSender::Service(_) => None,
            },
            to: Some(text.to.clone()),
            body: text.body.clone(),
            num_segments: Some(1),
            num_media: 0,
            direction: TextDirection::OutboundApi,
            status: TextStatus::Queued,
            error_code: None,
            error_message: None,
            price: None,
            price_unit: Some("USD".into()),
            date_created: Some(now),
            date_sent: None,
            date_updated: Some(now),
            raw: serde_json::Value::Null,
        };
        let record = Text {
            raw: record.to_rest_json(),
            ..record
        };
        state.texts.insert(record.sid.clone(), record.clone());
        Ok(record)
    }
}

impl MockTwilio {
    /// Transcripts of `kind` passing `keep`, newest first.
    fn transcripts_of(
        &self,
        kind: TranscriptKind,
        keep: impl Fn(&Transcript) -> bool,
    ) -> Vec<Transcript> {
        let mut out: Vec<Transcript> = self
            .lock()
            .transcripts
            .values()
            .filter(|t| t.kind == kind && keep(t))
            .cloned()
            .collect();
        out.sort_by(|a, b| (b.date_created, &b.sid).cmp(&(a.date_created, &a.sid)));
        out
    }

    /// One page of `items` (already in Twilio's order), with this mock's
    /// page tokens.
    fn slice<T>(
        &self,
        mut items: Vec<T>,
        page_size: u32,
        page: Option<&PageToken>,
        path: &str,
    ) -> Result<(Vec<T>, Option<PageToken>), TwilioError> {
        let (number, size) = match page {
            None => {
                let size = page_size.clamp(1, crate::twilio::MAX_PAGE_SIZE);
                let size = self.lock().page_size.map_or(size, |cap| size.min(cap));
                (0, size as usize)
            }
            Some(token) => parse_token(token).ok_or_else(|| TwilioError::Api {
                status: 400,
                code: Some(20001),
                message: format!("bad page token {:?}", token.0),
                more_info: None,
            })?,
        };
        let start = number.saturating_mul(size).min(items.len());
        let end = start.saturating_add(size).min(items.len());
        let next = (end < items.len())
            .then(|| PageToken(format!("/mock/{path}?Page={}&PageSize={size}", number + 1)));
        Ok((items.drain(start..end).collect(), next))
    }
}
