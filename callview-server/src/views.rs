//! The JSON the API answers with: the TypeScript models of
//! `seed-data-model-and-api.md` (`Contact`, `Conversation`, `Message`,
//! `Call`), built from what the store returns.
//!
//! Conventions: ids are strings, timestamps of the models are Unix
//! milliseconds (integers), the embedded `Call`'s times are ISO 8601
//! strings, optional fields (`?` in TypeScript) are omitted when empty.

use callview_core::model::Interaction;
use callview_core::model::MessageType;
use callview_core::store::{ContactRecord, ConversationView};
use callview_core::{Call, Normalizer, StoredCall};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// `Contact`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContactJson {
    /// Database id.
    pub id: String,
    /// The canonical key: E.164, `anonymous`, or an internal endpoint.
    pub handle: String,
    /// Display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `formatted_number`, `country_code` and `is_mobile` (phones only), and
    /// whatever else the contact's stored metadata holds.
    pub metadata: Map<String, Value>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// `Conversation.metadata`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConversationMetadataJson {
    /// Root calls in the conversation.
    pub total_calls: u64,
    /// Sum of the root calls' durations, seconds.
    pub total_duration: u64,
    /// `inbound`, `outbound` or `internal`: the newest root call's actual direction.
    pub last_call_direction: Option<String>,
    /// SID of the newest root call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_root_sid: Option<String>,
    /// Text messages (SMS and MMS) in the conversation.
    pub total_messages: u64,
    /// `call`, `sms` or `mms`: the kind of the newest message.
    pub last_message_type: Option<&'static str>,
    /// The display status of the newest call's interaction (what the
    /// `status` filter reads), also when a text is the newest message.
    pub last_call_status: Option<String>,
}

/// `Conversation`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConversationJson {
    /// Database id.
    pub id: String,
    /// The party's display form.
    pub external_id: String,
    /// `Calls with ...`.
    pub subject: String,
    /// `active` or `archived`.
    pub status: String,
    /// The newest message: a call (an interaction), or a text when a text
    /// is newer than every call.
    pub last_message: Option<ThreadMessageJson>,
    /// Unix milliseconds of the newest call or text (the conversation's
    /// creation when it has none).
    pub last_message_at: i64,
    /// Always 0: calls have no unread state.
    pub unread_count: u64,
    /// The party.
    pub contact: ContactJson,
    /// Counters.
    pub metadata: ConversationMetadataJson,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// `Call`: one Twilio call, embedded in a message (and in `metadata.legs`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallJson {
    /// Twilio Call SID.
    pub sid: String,
    /// Raw `from` (empty when Twilio sent none).
    pub from: String,
    /// Raw `to` (empty when Twilio sent none).
    pub to: String,
    /// Seconds; 0 while unknown.
    pub duration: u32,
    /// Twilio's status.
    pub status: String,
    /// Twilio's direction.
    pub direction: String,
    /// The recording, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_url: Option<String>,
    /// Cost as Twilio wrote it (`"-0.01400"`), once Twilio has filled it in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// Currency of `price`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_unit: Option<String>,
    /// `human`, `machine_start`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
    /// ISO 8601. For a call never dialled (no start time), when Twilio
    /// created it, or failing that when it was stored.
    pub start_time: String,
    /// ISO 8601, once the call has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// The parent call, for a leg.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_call_sid: Option<String>,
    /// Notes people wrote on this call (a leg keeps those written before
    /// its parent arrived).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Tags people put on this call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// `Message.metadata`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MessageMetadataJson {
    /// The root call's SID.
    pub call_sid: String,
    /// The root call's duration, seconds (0 while unknown).
    pub duration: u32,
    /// The root call's Twilio status.
    pub status: String,
    /// The root call's recording.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_url: Option<String>,
    /// The root call's raw `from`.
    pub from_number: String,
    /// The root call's raw `to`.
    pub to_number: String,
    /// The root call's parent, when it names one that is not stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_call_sid: Option<String>,
    /// The root call's duration.
    pub total_duration: u32,
    /// Seconds somebody talked.
    pub talk_time: u32,
    /// `total_duration - talk_time`.
    pub wait_time: u32,
    /// Whether at least one leg was folded in.
    pub merged_from_parent: bool,
    /// `completed`, `no-answer`, `busy`, `failed`, `canceled`, or the live status.
    pub display_status: String,
    /// `inbound`, `outbound` or `internal`.
    pub actual_direction: String,
    /// Twilio's direction of the root call.
    pub twilio_direction: String,
    /// Twilio's status of the root call.
    pub twilio_status: String,
    /// Every leg, oldest first.
    pub legs: Vec<CallJson>,
    /// The root call's cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// Currency of `price`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_unit: Option<String>,
    /// Who answered the root call.
    pub answered_by: Option<String>,
    /// Twilio's queue time of the root call, milliseconds, as Twilio's string.
    pub queue_time: Option<String>,
    /// Notes people wrote on the call.
    pub notes: Option<String>,
    /// Tags people put on the call.
    pub tags: Vec<String>,
    /// Who last edited the notes or tags.
    pub edited_by: Option<String>,
    /// When, Unix milliseconds.
    pub edited_at: Option<i64>,
    /// Counts edits: the `ETag` of `PATCH /api/messages/{id}`.
    pub version: i64,
    /// The call never reached a final status and the refresh stopped
    /// asking Twilio about it: what is shown is the last known state.
    pub no_longer_followed: bool,
    /// Every recording of the call and its legs, oldest first ("newest
    /// last"), each with its transcripts; omitted when there is none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recordings: Vec<crate::recordings::RecordingJson>,
}

impl MessageJson {
    /// Sets the interaction's recordings: `metadata.recordings`, and
    /// `metadata.recording_url` the newest one still playable.
    pub fn set_recordings(&mut self, recordings: Vec<crate::recordings::RecordingJson>) {
        if let Some(url) = crate::recordings::newest_url(&recordings) {
            self.metadata.recording_url = Some(url);
        }
        self.metadata.recordings = recordings;
    }
}

/// `Message`: one interaction (a root call with its legs folded in).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MessageJson {
    /// The root call's row id.
    pub id: String,
    /// The root call's SID.
    pub external_id: String,
    /// Always `call`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Twilio's direction of the root call.
    pub direction: String,
    /// Unix milliseconds: the root call's start time, or when it was stored.
    pub created_at: i64,
    /// The root call.
    pub call: CallJson,
    /// `📞 Inbound call - 40s`.
    pub subject: String,
    /// A multi-line summary.
    pub body: String,
    /// One short line.
    pub blurb: String,
    /// The conversation's id.
    pub conversation_id: String,
    /// The conversation's contact.
    pub contact: ContactJson,
    /// Figures and Twilio's values.
    pub metadata: MessageMetadataJson,
}

/// One message of a thread: a call (`type` `call`) or a text (`type`
/// `sms` or `mms`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ThreadMessageJson {
    /// An interaction.
    Call(Box<MessageJson>),
    /// A text.
    Text(Box<crate::texts::TextJson>),
}

impl ThreadMessageJson {
    /// The call's JSON, when this is a call.
    pub fn as_call_mut(&mut self) -> Option<&mut MessageJson> {
        match self {
            Self::Call(m) => Some(m),
            Self::Text(_) => None,
        }
    }
}

/// An unfinished call for `GET /api/calls/active`: a `Call` plus where it is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActiveCallJson {
    /// The call.
    #[serde(flatten)]
    pub call: CallJson,
    /// Its conversation's id.
    pub conversation_id: String,
    /// The root of its call tree.
    pub root_call_sid: String,
}

/// `GET /api/conversations`: a page of conversations (keys in
/// alphabetical order, as the seed's examples print them).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConversationListJson {
    /// The page.
    pub conversations: Vec<ConversationJson>,
    /// Where the next page starts (`cursor`), `null` on the last page.
    pub next_cursor: Option<String>,
    /// Conversations matching the filters, in all pages.
    pub total: u64,
}

/// `GET /api/conversations/:id/messages`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MessageListJson {
    /// The page, newest first: calls and texts interleaved.
    pub messages: Vec<ThreadMessageJson>,
    /// Messages of the kinds asked for (`type`), in all pages: calls
    /// (interactions) and texts.
    pub total: u64,
    /// Pass as `cursor` to get the next (older) page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// `GET /api/calls/active`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActiveCallListJson {
    /// The calls not final yet.
    pub calls: Vec<ActiveCallJson>,
    /// How many.
    pub total: usize,
}

/// Unix milliseconds.
pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// ISO 8601 with milliseconds and `Z`, like the Twilio CLI.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Builds a `Contact`.
pub fn contact(record: &ContactRecord, normalizer: &Normalizer) -> ContactJson {
    let mut metadata = match &record.metadata {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let formatted = record
        .formatted_number
        .clone()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| normalizer.display_key(&record.phone_number));
    metadata.insert("formatted_number".into(), Value::String(formatted.clone()));
    let a = &record.annotations;
    let optional = |text: &Option<String>| text.clone().map_or(Value::Null, Value::String);
    metadata.insert("company_name".into(), optional(&record.company_name));
    metadata.insert("notes".into(), optional(&a.notes));
    metadata.insert(
        "tags".into(),
        Value::Array(a.tags.iter().cloned().map(Value::String).collect()),
    );
    metadata.insert("edited_by".into(), optional(&a.edited_by));
    metadata.insert(
        "edited_at".into(),
        a.edited_at.map_or(Value::Null, |t| Value::from(millis(t))),
    );
    metadata.insert("version".into(), Value::from(a.version));
    if let Some(info) = phone_info(&record.phone_number) {
        if let Some(country) = info.country_code {
            metadata.insert("country_code".into(), Value::String(country));
        }
        if let Some(mobile) = info.is_mobile {
            metadata.insert("is_mobile".into(), Value::Bool(mobile));
        }
    }
    ContactJson {
        id: record.id.to_string(),
        handle: record.phone_number.clone(),
        name: Some(
            record
                .display_name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or(formatted),
        ),
        metadata,
        created_at: millis(record.created_at),
        updated_at: millis(record.updated_at),
    }
}

#[derive(Clone)]
struct PhoneInfo {
    country_code: Option<String>,
    is_mobile: Option<bool>,
}

/// Numbers whose [`PhoneInfo`] is remembered; the cache starts over when
/// full. Parsing a number with libphonenumber's metadata costs tens of
/// microseconds, more than the rest of a conversation's JSON.
const PHONE_INFO_CACHE: usize = 100_000;

/// Region and line type of an E.164 key; `None` for keys that are not phones.
fn phone_info(key: &str) -> Option<PhoneInfo> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, PoisonError};
    static CACHE: OnceLock<Mutex<HashMap<String, Option<PhoneInfo>>>> = OnceLock::new();
    if !key.starts_with('+') {
        return None;
    }
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(info) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(key)
    {
        return info.clone();
    }
    let info = parse_phone_info(key);
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= PHONE_INFO_CACHE {
        cache.clear();
    }
    cache.insert(key.to_owned(), info.clone());
    info
}

fn parse_phone_info(key: &str) -> Option<PhoneInfo> {
    let number = phonenumber::parse(None, key).ok()?;
    let country_code = number.country().id().map(|id| id.as_ref().to_owned());
    let is_mobile = match number.number_type(&phonenumber::metadata::DATABASE) {
        phonenumber::Type::Mobile => Some(true),
        phonenumber::Type::FixedLine | phonenumber::Type::TollFree => Some(false),
        _ => None,
    };
    Some(PhoneInfo {
        country_code,
        is_mobile,
    })
}

/// Builds an embedded `Call` from a stored row.
pub fn call(stored: &StoredCall) -> CallJson {
    let recording_url = stored
        .recording_url
        .as_deref()
        .and_then(crate::recordings::served_url);
    let mut json = call_of(&stored.call, recording_url.as_deref(), stored.created_at);
    json.notes = stored.annotations.notes.clone();
    json.tags = stored.annotations.tags.clone();
    json
}

fn call_of(call: &Call, recording_url: Option<&str>, stored_at: DateTime<Utc>) -> CallJson {
    CallJson {
        sid: call.sid.to_string(),
        from: call.from.clone().unwrap_or_default(),
        to: call.to.clone().unwrap_or_default(),
        duration: call.duration_secs(),
        status: call.status.as_str().to_owned(),
        direction: call.direction.as_str().to_owned(),
        recording_url: recording_url.map(str::to_owned),
        price: call.price.map(|p| p.to_string()),
        price_unit: call.price_unit.clone(),
        answered_by: call.answered_by.clone(),
        start_time: iso(call.start_time.or(call.date_created).unwrap_or(stored_at)),
        end_time: call.end_time.map(iso),
        parent_call_sid: call.parent_call_sid.as_ref().map(ToString::to_string),
        notes: None,
        tags: Vec::new(),
    }
}

/// Builds a `Message` from an interaction.
pub fn message(interaction: &Interaction, contact: &ContactJson) -> MessageJson {
    let root = &interaction.root;
    let c = &root.call;
    let summary = &interaction.summary;
    MessageJson {
        id: root.id.to_string(),
        external_id: c.sid.to_string(),
        kind: "call",
        direction: c.direction.as_str().to_owned(),
        // A call never dialled has no start time: Twilio's creation time.
        created_at: millis(c.start_time.or(c.date_created).unwrap_or(root.created_at)),
        call: call(root),
        subject: interaction.subject.clone(),
        body: interaction.body.clone(),
        blurb: interaction.blurb.clone(),
        conversation_id: root.conversation_id.to_string(),
        contact: contact.clone(),
        metadata: MessageMetadataJson {
            call_sid: c.sid.to_string(),
            duration: c.duration_secs(),
            status: c.status.as_str().to_owned(),
            recording_url: root
                .recording_url
                .as_deref()
                .and_then(crate::recordings::served_url),
            from_number: c.from.clone().unwrap_or_default(),
            to_number: c.to.clone().unwrap_or_default(),
            parent_call_sid: c.parent_call_sid.as_ref().map(ToString::to_string),
            total_duration: summary.total_duration,
            talk_time: summary.talk_time,
            wait_time: summary.wait_time,
            merged_from_parent: interaction.merged_from_parent(),
            display_status: summary.display_status.to_string(),
            actual_direction: interaction.actual_direction.as_str().to_owned(),
            twilio_direction: c.direction.as_str().to_owned(),
            twilio_status: c.status.as_str().to_owned(),
            legs: interaction.legs.iter().map(call).collect(),
            price: c.price.map(|p| p.to_string()),
            price_unit: c.price_unit.clone(),
            answered_by: c.answered_by.clone(),
            queue_time: c.queue_time.map(|q| q.to_string()),
            notes: root.annotations.notes.clone(),
            tags: root.annotations.tags.clone(),
            edited_by: root.annotations.edited_by.clone(),
            edited_at: root.annotations.edited_at.map(millis),
            version: root.annotations.version,
            no_longer_followed: root.refresh.unfollowed_at.is_some(),
            recordings: Vec::new(),
        },
    }
}

/// Builds a `Conversation` from a store view.
pub fn conversation(view: &ConversationView, normalizer: &Normalizer) -> ConversationJson {
    let record = &view.conversation;
    let contact = contact(&view.contact, normalizer);
    let counters = &record.counters;
    let text_is_newest = matches!(
        counters.last_message_type,
        Some(MessageType::Sms | MessageType::Mms)
    );
    let last_message = match (&view.last_text, &view.last_message) {
        (Some(text), _) if text_is_newest || view.last_message.is_none() => Some(
            ThreadMessageJson::Text(Box::new(crate::texts::text_json(text, &contact))),
        ),
        (_, Some(m)) => Some(ThreadMessageJson::Call(Box::new(message(m, &contact)))),
        (_, None) => None,
    };
    let last_call_direction = counters
        .last_call_direction
        .or_else(|| view.last_message.as_ref().map(|m| m.actual_direction))
        .map(|d| d.as_str().to_owned());
    ConversationJson {
        id: record.id.to_string(),
        external_id: record.external_id.clone(),
        subject: record
            .subject
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("Calls with {}", record.external_id)),
        status: record.status.clone(),
        last_message,
        last_message_at: millis(counters.last_message_at.unwrap_or(record.created_at)),
        unread_count: 0,
        contact,
        metadata: ConversationMetadataJson {
            total_calls: counters.total_calls,
            total_duration: counters.total_duration,
            last_call_direction,
            last_root_sid: counters.last_root_sid.as_ref().map(ToString::to_string),
            total_messages: counters.total_messages,
            last_message_type: counters.last_message_type.map(MessageType::as_str),
            last_call_status: counters
                .last_display_status
                .as_ref()
                .map(ToString::to_string),
        },
        created_at: millis(record.created_at),
        updated_at: millis(record.updated_at),
    }
}

/// Builds an active-call entry.
pub fn active_call(stored: &StoredCall) -> ActiveCallJson {
    ActiveCallJson {
        call: call(stored),
        conversation_id: stored.conversation_id.to_string(),
        root_call_sid: stored.root_sid.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_keys_get_region_and_others_do_not() {
        let us = phone_info("+19788447773").unwrap();
        assert_eq!(us.country_code.as_deref(), Some("US"));
        let gb = phone_info("+442079460958").unwrap();
        assert_eq!(gb.country_code.as_deref(), Some("GB"));
        assert_eq!(gb.is_mobile, Some(false));
        let mobile = phone_info("+447400123456").unwrap();
        assert_eq!(mobile.is_mobile, Some(true));
        assert!(phone_info("anonymous").is_none());
        assert!(phone_info("sip:dispatcher@acme.sip.twilio.com").is_none());
    }

    #[test]
    fn iso_times_have_millis_and_z() {
        let t = DateTime::parse_from_rfc3339("2026-02-06T15:17:13Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(iso(t), "2026-02-06T15:17:13.000Z");
        assert_eq!(millis(t), 1_770_391_033_000);
    }
}
