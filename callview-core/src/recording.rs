//! Call recordings and their transcripts, typed.
//!
//! A [`Recording`] is one of Twilio's recording resources (`RE...`): a call
//! may have several, on the root call or on a leg. A [`Transcript`] is the
//! text of one recording, from either of Twilio's products: the legacy
//! transcriptions of the 2010 API (`TR...`, text only) and Voice
//! Intelligence transcripts (`GT...`, sentence by sentence, with the
//! speaker's channel and timings). Both parse Twilio's REST JSON (and the
//! CLI's camelCase form); a record of the wrong shape is a
//! [`MediaParseError`] naming the field, kept and reported, never a panic.

use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::call::CallSid;
use crate::wire::{self, Record, RecordError};

/// A Twilio Recording SID (`RE` followed by 32 hex digits).
///
/// Only SIDs of that shape are accepted: the SID becomes part of a URL
/// path on the callview server and on Twilio.
///
/// ```
/// use callview_core::recording::RecordingSid;
/// assert!(RecordingSid::new("RE0123456789abcdef0123456789abcdef").is_some());
/// assert!(RecordingSid::new("RE../../etc").is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct RecordingSid(String);

impl RecordingSid {
    /// Wraps a SID: two letters then 32 hex digits (`RE...` on Twilio; the
    /// prefix is not checked so other media SIDs such as `ME...` fit too).
    pub fn new(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        let bytes = value.as_bytes();
        let valid = bytes.len() == 34
            && bytes[..2].iter().all(u8::is_ascii_alphabetic)
            && bytes[2..].iter().all(u8::is_ascii_hexdigit);
        valid.then_some(Self(value))
    }

    /// The SID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RecordingSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for RecordingSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

crate::call::open_enum! {
    /// A recording's status as Twilio reports it.
    RecordingStatus {
        /// Recording.
        InProgress => "in-progress",
        /// Paused by the application.
        Paused => "paused",
        /// Stopped, not yet processed.
        Stopped => "stopped",
        /// Being processed; the duration is not known yet.
        Processing => "processing",
        /// Ready to play.
        Completed => "completed",
        /// Nothing was recorded (silence, an error).
        Absent => "absent",
        /// Deleted at Twilio.
        Deleted => "deleted",
    }
}

impl RecordingStatus {
    /// Whether the status can still change.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Completed | Self::Absent | Self::Deleted)
    }
}

crate::call::open_enum! {
    /// What made a recording.
    RecordingSource {
        /// `<Dial record>`.
        DialVerb => "DialVerb",
        /// A conference.
        Conference => "Conference",
        /// `Record=true` on an outbound API call.
        OutboundApi => "OutboundAPI",
        /// A SIP trunk.
        Trunking => "Trunking",
        /// `<Record>`.
        RecordVerb => "RecordVerb",
        /// The call recordings API.
        StartCallRecordingApi => "StartCallRecordingAPI",
        /// The conference recordings API.
        StartConferenceRecordingApi => "StartConferenceRecordingAPI",
    }
}

/// Why a recording or transcript record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{resource} record {}: {reason}", sid.as_deref().unwrap_or("without a sid"))]
pub struct MediaParseError {
    /// `recording`, `transcription`, `transcript` or `sentence`.
    pub resource: &'static str,
    /// The record's SID when it had one.
    pub sid: Option<String>,
    /// What was wrong.
    pub reason: String,
}

impl MediaParseError {
    fn from_record(resource: &'static str, e: RecordError) -> Self {
        Self {
            resource,
            sid: e.sid,
            reason: e.reason,
        }
    }
}

/// One recording with every field callview uses typed, and the record as
/// received.
///
/// ```
/// use callview_core::recording::{Recording, RecordingStatus};
/// let r = Recording::from_value(serde_json::json!({
///     "sid": "RE0123456789abcdef0123456789abcdef",
///     "call_sid": "CA0123456789abcdef0123456789abcdef",
///     "status": "processing", "duration": "-1", "channels": 2,
///     "date_created": "Fri, 06 Feb 2026 15:18:00 +0000",
///     "price": "-0.0025", "source": "DialVerb"
/// })).unwrap();
/// assert_eq!(r.status, RecordingStatus::Processing);
/// assert_eq!(r.duration, None); // "-1" while processing
/// assert_eq!(r.channels, Some(2));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// `RE...`.
    pub sid: RecordingSid,
    /// The account.
    pub account_sid: Option<String>,
    /// The call (root or leg) it recorded; absent for some conference
    /// recordings.
    pub call_sid: Option<CallSid>,
    /// The conference it recorded, if any.
    pub conference_sid: Option<String>,
    /// 1 (mono) or 2 (one channel per party).
    pub channels: Option<u8>,
    /// Twilio's status.
    pub status: RecordingStatus,
    /// What made it.
    pub source: Option<RecordingSource>,
    /// Length in seconds; `None` while processing (Twilio's `-1`).
    pub duration: Option<u32>,
    /// When recording started.
    pub start_time: Option<DateTime<Utc>>,
    /// When Twilio created the resource (the list's `DateCreated` filter).
    pub date_created: Option<DateTime<Utc>>,
    /// When Twilio last changed it.
    pub date_updated: Option<DateTime<Utc>>,
    /// Cost, exact; `None` until Twilio fills it in.
    pub price: Option<Decimal>,
    /// Currency of `price`.
    pub price_unit: Option<String>,
    /// Twilio's error code when recording failed.
    pub error_code: Option<i64>,
    /// The record exactly as received.
    pub raw: Value,
}

impl Recording {
    /// Parses one recording record, taking it by value (it becomes `raw`).
    pub fn from_value(value: Value) -> Result<Self, MediaParseError> {
        let err = |e| MediaParseError::from_record("recording", e);
        let Value::Object(object) = &value else {
            return Err(MediaParseError {
                resource: "recording",
                sid: None,
                reason: format!(
                    "a recording record should be an object, found {}",
                    wire::kind_of(&value)
                ),
            });
        };
        let mut record = Record::new(object, &[]);
        let sid_text = record.text("sid").map_err(err)?;
        record.sid = sid_text.clone();
        let sid = sid_text.and_then(RecordingSid::new).ok_or_else(|| {
            err(record.error("the record has no valid `sid` (RE + 32 hex digits)".into()))
        })?;
        let duration = match record.text("duration").map_err(err)? {
            None => None,
            Some(d) if d.starts_with('-') => None,
            Some(d) => Some(d.parse::<u32>().map_err(|_| {
                err(record.error(format!(
                    "field `duration` is not a number of seconds: {d:?}"
                )))
            })?),
        };
        let channels = match record.integer::<u8>("channels").map_err(err)? {
            Some(c @ 1..=2) => Some(c),
            None => None,
            Some(other) => {
                return Err(err(record.error(format!(
                    "field `channels` should be 1 or 2, found {other}"
                ))))
            }
        };
        let error_code = match record.text("error_code").map_err(err)? {
            None => None,
            Some(code) => Some(code.parse::<i64>().map_err(|_| {
                err(record.error(format!("field `error_code` is not a number: {code:?}")))
            })?),
        };
        let recording = Recording {
            account_sid: record.text("account_sid").map_err(err)?,
            call_sid: record.text("call_sid").map_err(err)?.and_then(CallSid::new),
            conference_sid: record.text("conference_sid").map_err(err)?,
            channels,
            status: record
                .text("status")
                .map_err(err)?
                .map(|s| RecordingStatus::parse(&s))
                .unwrap_or_else(|| RecordingStatus::Other("unknown".into())),
            source: record
                .text("source")
                .map_err(err)?
                .map(|s| RecordingSource::parse(&s)),
            duration,
            start_time: record.time("start_time").map_err(err)?,
            date_created: record.time("date_created").map_err(err)?,
            date_updated: record.time("date_updated").map_err(err)?,
            price: record.decimal("price").map_err(err)?,
            price_unit: record.text("price_unit").map_err(err)?,
            error_code,
            sid,
            raw: Value::Null,
        };
        Ok(Recording {
            raw: value,
            ..recording
        })
    }

    /// Orders versions of the same recording: the later `date_updated`
    /// first, then a final status over a non-final one, then the record's
    /// text, so that whichever order two versions arrive in, the same one
    /// is kept.
    pub fn version_key(&self) -> (Option<DateTime<Utc>>, bool, String) {
        (
            self.date_updated,
            self.status.is_final(),
            self.raw.to_string(),
        )
    }
}

/// Which of Twilio's products made a transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptKind {
    /// The 2010 API's transcriptions (`TR...`): one text, no timings.
    Legacy,
    /// Voice Intelligence (`GT...`): sentences with speaker and timings.
    Intelligence,
}

impl TranscriptKind {
    /// `legacy` or `intelligence`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::Intelligence => "intelligence",
        }
    }

    /// Reads the stored text.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "legacy" => Some(Self::Legacy),
            "intelligence" => Some(Self::Intelligence),
            _ => None,
        }
    }
}

crate::call::open_enum! {
    /// A transcript's status (both products).
    TranscriptStatus {
        /// Waiting (Voice Intelligence).
        Queued => "queued",
        /// Being transcribed.
        InProgress => "in-progress",
        /// Done: the text is there.
        Completed => "completed",
        /// Transcription failed.
        Failed => "failed",
        /// Canceled (Voice Intelligence).
        Canceled => "canceled",
    }
}

/// One sentence of a Voice Intelligence transcript.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sentence {
    /// Its position in the transcript, from 0.
    pub index: u32,
    /// The media channel (speaker) it was heard on, from 0 (Twilio's
    /// `media_channel`, which counts from 1, minus one).
    pub channel: u32,
    /// Seconds from the start of the recording.
    pub start: f64,
    /// Seconds from the start of the recording.
    pub end: f64,
    /// What was said.
    pub text: String,
    /// The recogniser's confidence, 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}

impl Sentence {
    /// Parses one record of `/v2/Transcripts/{sid}/Sentences`.
    ///
    /// ```
    /// use callview_core::recording::Sentence;
    /// let s = Sentence::from_json(&serde_json::json!({
    ///     "media_channel": 2, "sentence_index": 0, "start_time": "0.48",
    ///     "end_time": 2.1, "transcript": "Hello.", "confidence": "0.93"
    /// })).unwrap();
    /// assert_eq!((s.channel, s.start, s.text.as_str()), (1, 0.48, "Hello."));
    /// ```
    pub fn from_json(value: &Value) -> Result<Self, MediaParseError> {
        let err = |e| MediaParseError::from_record("sentence", e);
        let Value::Object(object) = value else {
            return Err(MediaParseError {
                resource: "sentence",
                sid: None,
                reason: format!(
                    "a sentence should be an object, found {}",
                    wire::kind_of(value)
                ),
            });
        };
        let mut record = Record::new(object, &[]);
        record.sid = record.text("sid").map_err(err)?;
        let seconds = |field: &str| -> Result<f64, MediaParseError> {
            let text = record
                .text(field)
                .map_err(err)?
                .unwrap_or_else(|| "0".into());
            text.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| {
                    err(record.error(format!(
                        "field `{field}` is not a time in seconds: {text:?}"
                    )))
                })
        };
        let confidence =
            match record.text("confidence").map_err(err)? {
                None => None,
                Some(c) => Some(c.parse::<f64>().ok().filter(|c| c.is_finite()).ok_or_else(
                    || err(record.error(format!("field `confidence` is not a number: {c:?}"))),
                )?),
            };
        Ok(Sentence {
            index: record.integer("sentence_index").map_err(err)?.unwrap_or(0),
            channel: record
                .integer::<u32>("media_channel")
                .map_err(err)?
                .unwrap_or(1)
                .saturating_sub(1),
            start: seconds("start_time")?,
            end: seconds("end_time")?,
            text: record.text("transcript").map_err(err)?.unwrap_or_default(),
            confidence,
        })
    }
}

/// A transcript of one recording (or, for Voice Intelligence, of a call).
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    /// `TR...` (legacy) or `GT...` (Voice Intelligence).
    pub sid: String,
    /// Which product.
    pub kind: TranscriptKind,
    /// The recording transcribed.
    pub recording_sid: Option<RecordingSid>,
    /// The call transcribed, when the source was a call rather than a
    /// recording (Voice Intelligence only).
    pub call_sid: Option<CallSid>,
    /// Twilio's status.
    pub status: TranscriptStatus,
    /// `en-US`, ... (Voice Intelligence).
    pub language_code: Option<String>,
    /// The whole text: the legacy `transcription_text`, or the sentences
    /// joined.
    pub text: String,
    /// Sentence by sentence (Voice Intelligence; empty for legacy).
    pub sentences: Vec<Sentence>,
    /// When Twilio created it.
    pub date_created: Option<DateTime<Utc>>,
    /// When Twilio last changed it.
    pub date_updated: Option<DateTime<Utc>>,
    /// The record exactly as received.
    pub raw: Value,
}

impl Transcript {
    /// Parses a legacy transcription (`Transcriptions.json`).
    ///
    /// ```
    /// use callview_core::recording::{Transcript, TranscriptKind};
    /// let t = Transcript::from_legacy(serde_json::json!({
    ///     "sid": "TR0123456789abcdef0123456789abcdef",
    ///     "recording_sid": "RE0123456789abcdef0123456789abcdef",
    ///     "status": "completed", "transcription_text": "Call me back."
    /// })).unwrap();
    /// assert_eq!((t.kind, t.text.as_str()), (TranscriptKind::Legacy, "Call me back."));
    /// ```
    pub fn from_legacy(value: Value) -> Result<Self, MediaParseError> {
        let resource = "transcription";
        let err = |e| MediaParseError::from_record(resource, e);
        let object = object_of(resource, &value)?;
        let mut record = Record::new(object, &[]);
        let sid = required_sid(&mut record).map_err(err)?;
        let transcript = Transcript {
            kind: TranscriptKind::Legacy,
            recording_sid: record
                .text("recording_sid")
                .map_err(err)?
                .and_then(RecordingSid::new),
            call_sid: None,
            status: status_of(&record).map_err(err)?,
            language_code: None,
            text: record
                .text("transcription_text")
                .map_err(err)?
                .unwrap_or_default(),
            sentences: Vec::new(),
            date_created: record.time("date_created").map_err(err)?,
            date_updated: record.time("date_updated").map_err(err)?,
            sid,
            raw: Value::Null,
        };
        Ok(Transcript {
            raw: value,
            ..transcript
        })
    }

    /// Parses a Voice Intelligence transcript (`/v2/Transcripts`), without
    /// its sentences (fetched separately; see [`Transcript::set_sentences`]).
    /// Its source is `channel.media_properties.source_sid`: a recording
    /// (`RE...`) or a call (`CA...`).
    pub fn from_intelligence(value: Value) -> Result<Self, MediaParseError> {
        let resource = "transcript";
        let err = |e| MediaParseError::from_record(resource, e);
        let object = object_of(resource, &value)?;
        let mut record = Record::new(object, &[]);
        let sid = required_sid(&mut record).map_err(err)?;
        let source = value
            .pointer("/channel/media_properties/source_sid")
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default();
        let (recording_sid, call_sid) = if source.starts_with("RE") {
            (RecordingSid::new(source), None)
        } else {
            (None, CallSid::new(source))
        };
        if recording_sid.is_none() && call_sid.is_none() {
            return Err(err(record.error(
                "the record names no source (`channel.media_properties.source_sid`)".into(),
            )));
        }
        let transcript = Transcript {
            kind: TranscriptKind::Intelligence,
            recording_sid,
            call_sid,
            status: status_of(&record).map_err(err)?,
            language_code: record.text("language_code").map_err(err)?,
            text: String::new(),
            sentences: Vec::new(),
            date_created: record.time("date_created").map_err(err)?,
            date_updated: record.time("date_updated").map_err(err)?,
            sid,
            raw: Value::Null,
        };
        Ok(Transcript {
            raw: value,
            ..transcript
        })
    }

    /// Orders versions of the same transcript, like
    /// [`Recording::version_key`] (sentences count: a transcript read with
    /// its sentences beats the same one without).
    pub fn version_key(&self) -> (Option<DateTime<Utc>>, bool, usize, String) {
        let done = matches!(
            self.status,
            TranscriptStatus::Completed | TranscriptStatus::Failed | TranscriptStatus::Canceled
        );
        (
            self.date_updated,
            done,
            self.sentences.len(),
            self.raw.to_string(),
        )
    }

    /// Rebuilds a stored transcript from what a store keeps: its kind, the
    /// record as received, its sentences and its whole text.
    pub fn from_stored(
        kind: TranscriptKind,
        raw: Value,
        sentences: Vec<Sentence>,
        text: String,
    ) -> Result<Self, MediaParseError> {
        let mut t = match kind {
            TranscriptKind::Legacy => Self::from_legacy(raw)?,
            TranscriptKind::Intelligence => Self::from_intelligence(raw)?,
        };
        t.sentences = sentences;
        t.text = text;
        Ok(t)
    }

    /// Sets the sentences (ordered by index) and the whole text from them.
    pub fn set_sentences(&mut self, mut sentences: Vec<Sentence>) {
        sentences.sort_by_key(|s| s.index);
        self.text = sentences
            .iter()
            .map(|s| s.text.trim())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        self.sentences = sentences;
    }
}

fn object_of<'a>(
    resource: &'static str,
    value: &'a Value,
) -> Result<&'a serde_json::Map<String, Value>, MediaParseError> {
    match value {
        Value::Object(object) => Ok(object),
        other => Err(MediaParseError {
            resource,
            sid: None,
            reason: format!(
                "a {resource} record should be an object, found {}",
                wire::kind_of(other)
            ),
        }),
    }
}

/// Reads the record's `sid`, which it must have, and names it in the
/// record's later errors.
fn required_sid(record: &mut Record<'_>) -> Result<String, RecordError> {
    record.sid = record.text("sid")?;
    record
        .sid
        .clone()
        .ok_or_else(|| record.error("the record has no `sid`".into()))
}

fn status_of(record: &Record<'_>) -> Result<TranscriptStatus, RecordError> {
    Ok(record
        .text("status")?
        .map(|s| TranscriptStatus::parse(&s))
        .unwrap_or_else(|| TranscriptStatus::Other("unknown".into())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RE: &str = "RE0123456789abcdef0123456789abcdef";

    #[test]
    fn a_recording_of_the_wrong_shape_names_the_field() {
        let e = Recording::from_value(json!({"sid": RE, "channels": 3})).unwrap_err();
        assert!(e.reason.contains("`channels`"), "{e}");
        let e = Recording::from_value(json!({"sid": "RE1"})).unwrap_err();
        assert!(e.reason.contains("`sid`"), "{e}");
        let e = Recording::from_value(json!({"sid": RE, "start_time": "soon"})).unwrap_err();
        assert_eq!(e.sid.as_deref(), Some(RE));
    }

    #[test]
    fn intelligence_sources_are_recordings_or_calls() {
        let t = Transcript::from_intelligence(json!({
            "sid": "GT1", "status": "completed",
            "channel": {"media_properties": {"source_sid": RE}}
        }))
        .unwrap();
        assert_eq!(t.recording_sid.as_ref().map(RecordingSid::as_str), Some(RE));
        let t = Transcript::from_intelligence(json!({
            "sid": "GT2", "status": "completed",
            "channel": {"media_properties": {"source_sid": "CA9"}}
        }))
        .unwrap();
        assert_eq!(t.call_sid.as_ref().map(CallSid::as_str), Some("CA9"));
        assert!(Transcript::from_intelligence(json!({"sid": "GT3"})).is_err());
    }

    #[test]
    fn sentences_are_ordered_and_joined() {
        let mut t = Transcript::from_intelligence(json!({
            "sid": "GT1", "channel": {"media_properties": {"source_sid": RE}}
        }))
        .unwrap();
        let s = |i: u32, text: &str| Sentence {
            index: i,
            channel: 0,
            start: f64::from(i),
            end: f64::from(i) + 1.0,
            text: text.into(),
            confidence: None,
        };
        t.set_sentences(vec![s(1, "world."), s(0, "Hello")]);
        assert_eq!(t.text, "Hello world.");
        assert_eq!(t.sentences[0].index, 0);
    }
}
