//! [`SimulatedTwilio`]: a shared simulated account as a [`TwilioClient`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use callview_core::call::{Call, CallSid};
use callview_core::recording::{MediaParseError, Recording, RecordingSid, Sentence, Transcript};
use callview_core::text::{MessageSid, Text, TextMedia};
use callview_core::twilio::{
    AudioFormat, CallFilter, CallPage, IncomingNumber, OutgoingText, PageToken, RecordingAudio,
    RecordingFilter, RecordingPage, TextFilter, TextPage, TranscriptFilter, TranscriptPage,
    TwilioClient, TwilioError,
};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::account::{Listing, SimulatedAccount};
use crate::callbacks::Dispatcher;
use crate::media::{ListKind, MediaPage, MediaQuery, INTELLIGENCE_HOST};
use crate::query::ListQuery;
use crate::texts::{SendRequest, TextQuery, TextRefused};
use crate::SimConfig;

/// How many requests reached the simulated storage that recordings' audio
/// redirects to, and how many of them carried an `Authorization` header
/// (Twilio's clients must not forward credentials there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StorageRequests {
    /// Requests to `/storage/recordings/...`.
    pub total: u64,
    /// Of them, requests with an `Authorization` header.
    pub with_authorization: u64,
}

#[derive(Debug, Default)]
struct StorageCounters {
    total: AtomicU64,
    with_authorization: AtomicU64,
}

/// A [`SimulatedAccount`] shared behind a mutex: cheap to clone, usable as
/// `Arc<dyn TwilioClient>` in process, and servable over HTTP with
/// [`router`](crate::router).
///
/// The in-process client never fails on purpose (faults are injected by the
/// HTTP server only). Every record it returns went through Twilio's wire
/// form (`Call::from_json(&call.to_rest_json())`), and `next` tokens are
/// Twilio-style `next_page_uri` strings.
///
/// ```
/// use callview_sim::{SimConfig, SimulatedTwilio};
/// let sim = SimulatedTwilio::new(SimConfig { calls: 50, ..SimConfig::default() });
/// let other_handle = sim.clone();
/// assert_eq!(other_handle.with_account(|a| a.len()), 50);
/// ```
#[derive(Clone)]
pub struct SimulatedTwilio {
    inner: Arc<Mutex<SimulatedAccount>>,
    account_sid: Arc<str>,
    seed: u64,
    storage: Arc<StorageCounters>,
    callbacks: Arc<Dispatcher>,
}

impl fmt::Debug for SimulatedTwilio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedTwilio")
            .field("account_sid", &&*self.account_sid)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl SimulatedTwilio {
    /// Generates an account from `config` and shares it.
    pub fn new(config: SimConfig) -> Self {
        Self::from_account(SimulatedAccount::new(config))
    }

    /// Shares an existing account.
    pub fn from_account(account: SimulatedAccount) -> Self {
        Self {
            account_sid: account.account_sid().into(),
            seed: account.config().seed,
            inner: Arc::new(Mutex::new(account)),
            storage: Arc::default(),
            callbacks: Arc::default(),
        }
    }

    /// The account SID.
    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    /// The seed the account was generated from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Locks the account. Do not hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, SimulatedAccount> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` with the account locked.
    pub fn with_account<R>(&self, f: impl FnOnce(&mut SimulatedAccount) -> R) -> R {
        f(&mut self.lock())
    }

    /// Every call, newest first ([`SimulatedAccount::calls`]).
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls()
    }

    /// See [`SimulatedAccount::advance_to`]; status callbacks that fall
    /// due are POSTed (inside a Tokio runtime).
    pub fn advance_to(&self, now: DateTime<Utc>) {
        let due = {
            let mut account = self.lock();
            account.advance_to(now);
            account.has_status_callbacks()
        };
        if due {
            self.start_callbacks();
        }
    }

    /// See [`SimulatedAccount::tick`]; status callbacks that fall due are
    /// POSTed (inside a Tokio runtime).
    pub fn tick(&self, now: DateTime<Utc>) -> Vec<CallSid> {
        let (roots, due) = {
            let mut account = self.lock();
            let roots = account.tick(now);
            (roots, account.has_status_callbacks())
        };
        if due {
            self.start_callbacks();
        }
        roots
    }

    /// Every text message, newest first ([`SimulatedAccount::texts`]).
    pub fn texts(&self) -> Vec<Text> {
        self.lock().texts()
    }

    /// See [`SimulatedAccount::insert_text`].
    pub fn insert_text(&self, text: Text) {
        self.lock().insert_text(text);
    }

    /// Sends a text ([`SimulatedAccount::send_text`]). Its status callbacks
    /// are POSTed by a background task on the current Tokio runtime (when
    /// there is one; otherwise they wait in
    /// [`SimulatedAccount::take_status_callbacks`]), signed with
    /// [`Self::set_auth_token`]'s token.
    /// (Named apart from [`TwilioClient::send_text`], which answers
    /// Twilio's errors as [`TwilioError`]s.)
    pub fn submit_text(&self, text: &OutgoingText) -> Result<Text, TextRefused> {
        self.start_callbacks();
        self.lock().send_text(text)
    }

    /// [`Self::submit_text`] of a request as the HTTP API received it.
    pub(crate) fn send(&self, request: &SendRequest) -> Result<Text, TextRefused> {
        self.start_callbacks();
        self.lock().send(request)
    }

    /// The auth token status callbacks are signed with
    /// (`X-Twilio-Signature`): [`DEFAULT_AUTH_TOKEN`](crate::DEFAULT_AUTH_TOKEN)
    /// until set; [`router`](crate::router) sets the password of its Basic
    /// auth, as Twilio signs with the account's auth token.
    pub fn set_auth_token(&self, token: &str) {
        self.callbacks.set_auth_token(token);
    }

    /// Makes sure status callbacks are POSTed: starts the delivery task on
    /// the current runtime if none runs, and hands it what is waiting.
    fn start_callbacks(&self) {
        if let Some(queue) = self.callbacks.queue() {
            self.lock().set_callback_sink(queue);
        }
    }

    /// See [`SimulatedAccount::generate_live`].
    pub fn generate_live(&self, n: usize) -> Vec<CallSid> {
        self.lock().generate_live(n)
    }

    /// See [`SimulatedAccount::insert`].
    pub fn insert(&self, call: Call) -> Option<Call> {
        self.lock().insert(call)
    }

    /// See [`SimulatedAccount::update`].
    pub fn update(&self, call: Call) -> bool {
        self.lock().update(call)
    }

    /// See [`SimulatedAccount::complete_call`].
    pub fn complete_call(&self, sid: &CallSid) -> Option<Call> {
        self.lock().complete_call(sid)
    }

    /// Spawns a task (on the current Tokio runtime) that calls
    /// [`SimulatedAccount::tick`] with the wall clock every `every`, so a
    /// demo shows live traffic. Abort the handle to stop it.
    pub fn spawn_live_traffic(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let sim = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every.max(Duration::from_millis(10)));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                sim.tick(Utc::now());
            }
        })
    }

    /// See [`SimulatedAccount::insert_recording`].
    pub fn insert_recording(&self, recording: Recording) {
        self.lock().insert_recording(recording);
    }

    /// See [`SimulatedAccount::delete_recording`].
    pub fn delete_recording(&self, sid: &RecordingSid) -> bool {
        self.lock().delete_recording(sid)
    }

    /// What reached the simulated storage behind audio redirects (counted
    /// by the HTTP server, shared by every clone of this handle): tests
    /// assert `with_authorization == 0`.
    pub fn storage_requests(&self) -> StorageRequests {
        StorageRequests {
            total: self.storage.total.load(Ordering::SeqCst),
            with_authorization: self.storage.with_authorization.load(Ordering::SeqCst),
        }
    }

    /// Counts one request to the storage.
    pub(crate) fn record_storage_request(&self, with_authorization: bool) {
        self.storage.total.fetch_add(1, Ordering::SeqCst);
        if with_authorization {
            self.storage
                .with_authorization
                .fetch_add(1, Ordering::SeqCst);
        }
    }

    /// One page of the calls list for `query`.
    pub(crate) fn list(&self, query: &ListQuery) -> Listing {
        self.lock().list(query)
    }
}

fn bad_request(message: String) -> TwilioError {
    TwilioError::Api {
        status: 400,
        code: Some(20001),
        message,
        more_info: Some("https://www.twilio.com/docs/errors/20001".into()),
    }
}

#[async_trait]
impl TwilioClient for SimulatedTwilio {
    async fn list_calls_page(
        &self,
        filter: &CallFilter,
        page: Option<&PageToken>,
    ) -> Result<CallPage, TwilioError> {
        let query = match page {
            None => ListQuery::from_filter(filter),
            Some(token) => {
                let (path, query) = token.0.split_once('?').unwrap_or((&token.0, ""));
                let expected = format!("/2010-04-01/Accounts/{}/Calls.json", self.account_sid);
                if path != expected {
                    return Err(TwilioError::NotFound {
                        what: format!("the page {:?}", token.0),
                    });
                }
                ListQuery::parse(query).map_err(bad_request)?
            }
        };
        let listing = self.list(&query);
        let mut out = CallPage::default();
        for call in &listing.calls {
            match Call::from_json(&call.to_rest_json()) {
                Ok(call) => out.calls.push(call),
                Err(rejected) => out.rejected.push(rejected),
            }
        }
        out.next = listing
            .next
            .map(|cursor| PageToken(query.uri(&self.account_sid, query.page + 1, Some(&cursor))));
        Ok(out)
    }

    async fn fetch_call(&self, sid: &CallSid) -> Result<Call, TwilioError> {
        let call = self.lock().call(sid).ok_or_else(|| TwilioError::NotFound {
            what: format!("call {sid}"),
        })?;
        Call::from_json(&call.to_rest_json()).map_err(|e| TwilioError::Decode {
            context: format!("call {sid}"),
            reason: e.to_string(),
        })
    }

    async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
        Ok(self.lock().owned_numbers())
    }

    async fn list_recordings_page(
        &self,
        filter: &RecordingFilter,
        page: Option<&PageToken>,
    ) -> Result<RecordingPage, TwilioError> {
        let ac = &self.account_sid;
        let list = format!("/2010-04-01/Accounts/{ac}/Recordings.json");
        let (path, query, call) = match page {
            None => (list, filter.query(), None),
            Some(token) => {
                let (path, query) = token.0.split_once('?').unwrap_or((&token.0, ""));
                let call = path
                    .strip_prefix(&format!("/2010-04-01/Accounts/{ac}/Calls/"))
                    .and_then(|rest| rest.strip_suffix("/Recordings.json"))
                    .map(str::to_owned);
                if path != list && call.is_none() {
                    return Err(unknown_page(token));
                }
                (path.to_owned(), query.to_owned(), call)
            }
        };
        let query = MediaQuery::parse(ListKind::Recordings, &query).map_err(bad_request)?;
        let page = {
            let account = self.lock();
            account
                .media()
                .list_recordings(&query, call.as_deref(), account.now_secs())
        };
        let (recordings, rejected) = parse_all(page.items, Recording::from_value);
        Ok(RecordingPage {
            recordings,
            rejected,
            next: next_token(&query, &path, page.next),
        })
    }

    async fn fetch_recording(&self, sid: &RecordingSid) -> Result<Recording, TwilioError> {
        let value = {
            let account = self.lock();
            account.media().recording(sid.as_str(), account.now_secs())
        };
        let value = value.ok_or_else(|| TwilioError::NotFound {
            what: format!("recording {sid}"),
        })?;
        Recording::from_value(value).map_err(|e| TwilioError::Decode {
            context: format!("recording {sid}"),
            reason: e.to_string(),
        })
    }

    async fn list_transcriptions_page(
        &self,
        page_size: u32,
        page: Option<&PageToken>,
    ) -> Result<TranscriptPage, TwilioError> {
        let ac = &self.account_sid;
        let list = format!("/2010-04-01/Accounts/{ac}/Transcriptions.json");
        let (path, query, recording) = match page {
            None => (list, format!("PageSize={page_size}"), None),
            Some(token) => {
                let (path, query) = token.0.split_once('?').unwrap_or((&token.0, ""));
                let recording = path
                    .strip_prefix(&format!("/2010-04-01/Accounts/{ac}/Recordings/"))
                    .and_then(|rest| rest.strip_suffix("/Transcriptions.json"))
                    .map(str::to_owned);
                if path != list && recording.is_none() {
                    return Err(unknown_page(token));
                }
                (path.to_owned(), query.to_owned(), recording)
            }
        };
        let query = MediaQuery::parse(ListKind::Transcriptions, &query).map_err(bad_request)?;
        let page = {
            let account = self.lock();
            account
                .media()
                .list_transcriptions(&query, recording.as_deref(), account.now_secs())
        };
        let (transcripts, rejected) = parse_all(page.items, Transcript::from_legacy);
        Ok(TranscriptPage {
            transcripts,
            rejected,
            next: next_token(&query, &path, page.next),
        })
    }

    async fn list_intelligence_transcripts_page(
        &self,
        filter: &TranscriptFilter,
        page: Option<&PageToken>,
    ) -> Result<TranscriptPage, TwilioError> {
        let query = match page {
            None => filter.query(),
            Some(token) => {
                let path = token
                    .0
                    .find("/v2/")
                    .map(|at| &token.0[at..])
                    .ok_or_else(|| unknown_page(token))?;
                let (path, query) = path.split_once('?').unwrap_or((path, ""));
                if path != "/v2/Transcripts" {
                    return Err(unknown_page(token));
                }
                query.to_owned()
            }
        };
        let query = MediaQuery::parse(ListKind::Transcripts, &query).map_err(bad_request)?;
        let page: MediaPage = {
            let account = self.lock();
            account.media().list_transcripts(&query, account.now_secs())
        };
        let (transcripts, rejected) = parse_all(page.items, Transcript::from_intelligence);
        let path = format!("{INTELLIGENCE_HOST}/v2/Transcripts");
        Ok(TranscriptPage {
            transcripts,
            rejected,
            next: next_token(&query, &path, page.next),
        })
    }

    async fn transcript_sentences(
        &self,
        transcript_sid: &str,
    ) -> Result<Vec<Sentence>, TwilioError> {
        let values = {
            let account = self.lock();
            account
                .media()
                .sentences(transcript_sid, account.now_secs())
        };
        let values = values.ok_or_else(|| TwilioError::NotFound {
            what: format!("transcript {transcript_sid}"),
        })?;
        values
            .iter()
            .map(|v| {
                Sentence::from_json(v).map_err(|e| TwilioError::Decode {
                    context: format!("the sentences of transcript {transcript_sid}"),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    async fn recording_audio(
        &self,
        sid: &RecordingSid,
        format: AudioFormat,
    ) -> Result<RecordingAudio, TwilioError> {
        let audio = {
            let account = self.lock();
            account
                .media()
                .audio(sid.as_str(), format, account.now_secs())
        };
        let audio = audio.ok_or_else(|| TwilioError::NotFound {
            what: format!("the audio of recording {sid}"),
        })?;
        let file = audio.file;
        Ok(RecordingAudio {
            content_type: Some(file.content_type().to_owned()),
            content_length: Some(file.len()),
            body: Box::pin(futures::stream::iter(file.chunks().map(Ok))),
        })
    }

    async fn list_texts_page(
        &self,
        filter: &TextFilter,
        page: Option<&PageToken>,
    ) -> Result<TextPage, TwilioError> {
        let query = match page {
            None => TextQuery::from_filter(filter).map_err(bad_request)?,
            Some(token) => {
                let (path, query) = token.0.split_once('?').unwrap_or((&token.0, ""));
                let expected = format!("/2010-04-01/Accounts/{}/Messages.json", self.account_sid);
                if path != expected {
                    return Err(unknown_page(token));
                }
                TextQuery::parse(query).map_err(bad_request)?
            }
        };
        let listing = self.lock().list_texts(&query);
        let mut out = TextPage::default();
        for record in listing.records {
            match Text::from_value(record) {
                Ok(text) => out.texts.push(text),
                Err(rejected) => out.rejected.push(rejected),
            }
        }
        out.next = listing
            .next
            .map(|cursor| PageToken(query.uri(&self.account_sid, query.page + 1, Some(&cursor))));
        Ok(out)
    }

    async fn text_media(&self, sid: &MessageSid) -> Result<Vec<TextMedia>, TwilioError> {
        let items = self.lock().text_media_items(sid.as_str());
        let items = items.ok_or_else(|| TwilioError::NotFound {
            what: format!("message {sid}"),
        })?;
        // Through the wire form, as the HTTP client reads it.
        items
            .iter()
            .map(|m| {
                TextMedia::from_json(&m.to_json(&self.account_sid)).map_err(|e| {
                    TwilioError::Decode {
                        context: format!("the media of message {sid}"),
                        reason: e.to_string(),
                    }
                })
            })
            .collect()
    }

    async fn text_media_content(
        &self,
        sid: &MessageSid,
        media_sid: &str,
    ) -> Result<RecordingAudio, TwilioError> {
        let item = self
            .lock()
            .text_media_items(sid.as_str())
            .and_then(|items| items.into_iter().find(|m| m.sid == media_sid));
        let item = item.ok_or_else(|| TwilioError::NotFound {
            what: format!("media {media_sid} of message {sid}"),
        })?;
        let content = bytes::Bytes::from(item.content());
        Ok(RecordingAudio {
            content_type: Some(crate::texts::MEDIA_CONTENT_TYPE.to_owned()),
            content_length: Some(content.len() as u64),
            body: Box::pin(futures::stream::iter([Ok(content)])),
        })
    }

    async fn send_text(&self, text: &OutgoingText) -> Result<Text, TwilioError> {
        let sent = self.submit_text(text).map_err(|refused| TwilioError::Api {
            status: refused.status,
            code: Some(refused.code),
            more_info: Some(format!(
                "https://www.twilio.com/docs/errors/{}",
                refused.code
            )),
            message: refused.message,
        })?;
        Text::from_value(sent.to_rest_json()).map_err(|e| TwilioError::Decode {
            context: format!("a message to {}", text.to),
            reason: e.to_string(),
        })
    }
}

fn unknown_page(token: &PageToken) -> TwilioError {
    TwilioError::NotFound {
        what: format!("the page {:?}", token.0),
    }
}

/// Parses every record, keeping the failures.
fn parse_all<T>(
    items: Vec<Value>,
    parse: fn(Value) -> Result<T, MediaParseError>,
) -> (Vec<T>, Vec<MediaParseError>) {
    let mut parsed = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for item in items {
        match parse(item) {
            Ok(item) => parsed.push(item),
            Err(e) => rejected.push(e),
        }
    }
    (parsed, rejected)
}

fn next_token(
    query: &MediaQuery,
    path: &str,
    next: Option<crate::media::MKey>,
) -> Option<PageToken> {
    next.map(|key| PageToken(query.uri(path, query.page + 1, Some(&key))))
}
