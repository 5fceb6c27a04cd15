//! Decoding rows into the call model's types.
//!
//! Timestamps are stored in `TIMESTAMP` (without time zone) columns, as the
//! documented schema has them, and always hold UTC: they are bound and read
//! as [`NaiveDateTime`] in UTC, and every connection runs with
//! `TimeZone=UTC` so `NOW()` defaults and triggers write UTC too.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Timelike, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use callview_core::annotations::Annotations;
use callview_core::call::{format_rfc2822, Call, CallDirection, CallSid};
use callview_core::endpoint::ActualDirection;
use callview_core::model::{
    ConversationCounters, ConversationId, Derived, DisplayStatus, MessageType, RefreshState,
    StoredCall,
};
use callview_core::store::{ContactRecord, ConversationRecord};
use callview_core::text::MessageSid;

/// The columns of a `messages` row, in [`MESSAGE_COLUMNS`] order.
#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    pub id: i32,
    pub conversation_id: Option<i32>,
    pub twilio_sid: String,
    pub direction: String,
    pub status: String,
    pub from_number: String,
    pub to_number: String,
    pub duration: Option<i32>,
    pub price: Option<Decimal>,
    pub price_unit: Option<String>,
    pub start_time: Option<NaiveDateTime>,
    pub end_time: Option<NaiveDateTime>,
    pub recording_url: Option<String>,
    pub parent_call_sid: Option<String>,
    pub metadata: Option<Value>,
    pub root_call_sid: String,
    pub created_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
    pub refresh_attempts: i32,
    pub refresh_due_at: Option<NaiveDateTime>,
    pub unfollowed_at: Option<NaiveDateTime>,
    pub notes: Option<String>,
    pub tags: Option<Value>,
    pub edited_by: Option<String>,
    pub edited_at: Option<NaiveDateTime>,
    pub version: i32,
}

/// The select list for [`MessageRow`], for a `messages` table aliased `m`.
pub(crate) const MESSAGE_COLUMNS: &str = "m.id, m.conversation_id, m.twilio_sid, m.direction, \
     m.status, m.from_number, m.to_number, m.duration, m.price, m.price_unit, m.start_time, \
     m.end_time, m.recording_url, m.parent_call_sid, m.metadata, m.root_call_sid, m.created_at, \
     m.updated_at, m.refresh_attempts, m.refresh_due_at, m.unfollowed_at, m.notes, m.tags, \
     m.edited_by, m.edited_at, m.version";

/// Notes, tags, editor, edit time and version as stored.
pub(crate) fn annotations(
    notes: Option<String>,
    tags: Option<Value>,
    edited_by: Option<String>,
    edited_at: Option<NaiveDateTime>,
    version: i32,
) -> Annotations {
    let tags = match tags {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|t| match t {
                Value::String(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Annotations {
        notes,
        tags,
        edited_by,
        edited_at: edited_at.map(from_db_time),
        version: i64::from(version),
    }
}

/// A `contacts` row, in [`CONTACT_COLUMNS`] order.
#[derive(sqlx::FromRow)]
pub(crate) struct ContactRow {
    pub id: i32,
    pub phone_number: String,
    pub formatted_number: Option<String>,
    pub display_name: Option<String>,
    pub metadata: Option<Value>,
    pub created_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
    pub company_name: Option<String>,
    pub notes: Option<String>,
    pub tags: Option<Value>,
    pub edited_by: Option<String>,
    pub edited_at: Option<NaiveDateTime>,
    pub version: i32,
}

/// The select list for [`ContactRow`] (`contacts c`).
pub(crate) const CONTACT_COLUMNS: &str = "c.id, c.phone_number, c.formatted_number, \
     c.display_name, c.metadata, c.created_at, c.updated_at, c.company_name, c.notes, c.tags, \
     c.edited_by, c.edited_at, c.version";

impl ContactRow {
    /// The contact record.
    pub(crate) fn into_record(self) -> ContactRecord {
        ContactRecord {
            id: i64::from(self.id),
            phone_number: self.phone_number,
            formatted_number: self.formatted_number,
            display_name: self.display_name,
            metadata: json_or_empty(self.metadata),
            company_name: self.company_name,
            annotations: annotations(
                self.notes,
                self.tags,
                self.edited_by,
                self.edited_at,
                self.version,
            ),
            created_at: time_or_epoch(self.created_at),
            updated_at: time_or_epoch(self.updated_at.or(self.created_at)),
        }
    }
}

/// A UTC instant as stored.
pub(crate) fn to_db_time(time: DateTime<Utc>) -> NaiveDateTime {
    time.naive_utc()
}

/// A stored instant (UTC) back as `DateTime<Utc>`.
pub(crate) fn from_db_time(time: NaiveDateTime) -> DateTime<Utc> {
    time.and_utc()
}

fn text_field<'a>(metadata: Option<&'a Value>, key: &str) -> Option<&'a str> {
    metadata
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn time_text(time: NaiveDateTime) -> String {
    let time = from_db_time(time);
    if time.nanosecond() == 0 {
        format_rfc2822(&time)
    } else {
        time.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl MessageRow {
    /// The call: `metadata.raw` when it holds a valid record for this SID,
    /// otherwise rebuilt from the columns (rows written by the seed's
    /// original application have no `raw`).
    /// The record moves out of the metadata (no copy); the fallback does
    /// not need it.
    fn call(&mut self) -> Call {
        if let Some(raw @ Value::Object(_)) = self
            .metadata
            .as_mut()
            .and_then(callview_core::raw_uris::take_raw)
        {
            if let Ok(call) = Call::from_value(raw) {
                if call.sid.as_str() == self.twilio_sid.trim() {
                    return call;
                }
            }
        }
        let metadata = self.metadata.as_ref();
        let base = self.rest_json();
        let mut with_extras = base.clone();
        for key in ["answered_by", "queue_time"] {
            if let Some(v @ (Value::String(_) | Value::Number(_))) =
                metadata.and_then(|m| m.get(key))
            {
                with_extras.insert(key.to_owned(), v.clone());
            }
        }
        Call::from_json(&Value::Object(with_extras))
            .or_else(|_| Call::from_json(&Value::Object(base)))
            .unwrap_or_else(|_| {
                // Only an empty SID can fail (the column is NOT NULL but may be blank).
                let sid = CallSid::new(self.twilio_sid.clone()).unwrap_or_else(|| {
                    CallSid::new(format!("row-{}", self.id)).expect("non-empty")
                });
                Call::new(
                    sid,
                    callview_core::CallStatus::parse(&self.status),
                    CallDirection::parse(&self.direction),
                )
            })
    }

    /// The row in Twilio's REST form (snake_case, RFC 2822 dates).
    fn rest_json(&self) -> Map<String, Value> {
        let mut map = Map::new();
        let mut put = |key: &str, value: Option<String>| {
            map.insert(
                key.to_owned(),
                value.map(Value::String).unwrap_or(Value::Null),
            );
        };
        put("sid", Some(self.twilio_sid.clone()));
        put("parent_call_sid", self.parent_call_sid.clone());
        put("from", Some(self.from_number.clone()));
        put("to", Some(self.to_number.clone()));
        put("status", Some(self.status.clone()));
        put("direction", Some(self.direction.clone()));
        put("start_time", self.start_time.map(time_text));
        put("end_time", self.end_time.map(time_text));
        put(
            "duration",
            self.duration.filter(|d| *d >= 0).map(|d| d.to_string()),
        );
        put("price", self.price.map(|p| p.to_string()));
        put("price_unit", self.price_unit.clone());
        map
    }

    /// The row as the call model sees it.
    pub(crate) fn into_stored(mut self) -> StoredCall {
        let call = self.call();
        let metadata = self.metadata.as_ref();
        let derived = Derived::from_stored(
            &call,
            text_field(metadata, "actual_direction"),
            text_field(metadata, "display_status"),
            metadata
                .and_then(|m| m.get("merged_from_parent"))
                .and_then(Value::as_bool),
        );
        let refresh = RefreshState {
            attempts: u32::try_from(self.refresh_attempts).unwrap_or(0),
            due_at: self.refresh_due_at.map(from_db_time),
            unfollowed_at: self.unfollowed_at.map(from_db_time),
        };
        let created_at = self.created_at.or(self.updated_at).map(from_db_time);
        let updated_at = self.updated_at.map(from_db_time).or(created_at);
        StoredCall {
            id: i64::from(self.id),
            conversation_id: ConversationId(i64::from(self.conversation_id.unwrap_or(0))),
            root_sid: CallSid::new(self.root_call_sid).unwrap_or_else(|| call.sid.clone()),
            derived,
            recording_url: self.recording_url.filter(|u| !u.is_empty()),
            refresh,
            annotations: annotations(
                self.notes,
                self.tags,
                self.edited_by,
                self.edited_at,
                self.version,
            ),
            created_at: created_at.unwrap_or(DateTime::UNIX_EPOCH),
            updated_at: updated_at.unwrap_or(DateTime::UNIX_EPOCH),
            call,
        }
    }
}

/// A conversation joined with its contact, as listed.
#[derive(sqlx::FromRow)]
pub(crate) struct ConversationRow {
    pub id: i32,
    pub external_id: String,
    pub subject: Option<String>,
    pub status: Option<String>,
    pub last_message_at: Option<NaiveDateTime>,
    pub metadata: Option<Value>,
    pub created_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
    /// `metadata.last_root_sid`, or the newest root computed from the rows
    /// when the metadata lacks it (rows of the original application).
    pub last_root_sid: Option<String>,
    pub contact_id: Option<i32>,
    pub contact_phone_number: Option<String>,
    pub contact_formatted_number: Option<String>,
    pub contact_display_name: Option<String>,
    pub contact_metadata: Option<Value>,
    pub contact_created_at: Option<NaiveDateTime>,
    pub contact_updated_at: Option<NaiveDateTime>,
    pub contact_company_name: Option<String>,
    pub contact_notes: Option<String>,
    pub contact_tags: Option<Value>,
    pub contact_edited_by: Option<String>,
    pub contact_edited_at: Option<NaiveDateTime>,
    pub contact_version: Option<i32>,
}

/// The select list for [`ConversationRow`] (`conversations v` left-joined
/// with `contacts c`).
pub(crate) const CONVERSATION_COLUMNS: &str = "v.id, v.external_id, v.subject, v.status, \
     v.last_message_at, v.metadata, v.created_at, v.updated_at, \
     COALESCE(NULLIF(v.metadata->>'last_root_sid', ''), ( \
         SELECT m.twilio_sid FROM messages m \
         WHERE m.conversation_id = v.id AND m.root_call_sid = m.twilio_sid \
         ORDER BY m.start_time DESC NULLS LAST, m.twilio_sid COLLATE \"C\" DESC \
         LIMIT 1)) AS last_root_sid, \
     c.id AS contact_id, c.phone_number AS contact_phone_number, \
     c.formatted_number AS contact_formatted_number, c.display_name AS contact_display_name, \
     c.metadata AS contact_metadata, c.created_at AS contact_created_at, \
     c.updated_at AS contact_updated_at, c.company_name AS contact_company_name, \
     c.notes AS contact_notes, c.tags AS contact_tags, c.edited_by AS contact_edited_by, \
     c.edited_at AS contact_edited_at, c.version AS contact_version";

/// A non-negative integer from JSON that may be a number or a string.
fn json_u64(value: Option<&Value>) -> u64 {
    match value {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f > 0.0).map(|f| f as u64))
            .unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse::<u64>().unwrap_or(0),
        _ => 0,
    }
}

/// `last_call_direction`: ours (`inbound`/`outbound`/`internal`) or the
/// seed's Twilio directions (`outbound-api`, `outbound-dial`, ...).
fn json_direction(value: Option<&Value>) -> Option<ActualDirection> {
    let text = value.and_then(Value::as_str)?.trim();
    if text.is_empty() {
        return None;
    }
    Some(ActualDirection::from_stored(
        Some(text),
        &CallDirection::parse(text),
    ))
}

fn time_or_epoch(time: Option<NaiveDateTime>) -> DateTime<Utc> {
    time.map(from_db_time).unwrap_or(DateTime::UNIX_EPOCH)
}

fn json_or_empty(value: Option<Value>) -> Value {
    match value {
        Some(Value::Null) | None => Value::Object(Map::new()),
        Some(v) => v,
    }
}

impl ConversationRow {
    /// The conversation record.
    pub(crate) fn conversation(&self) -> ConversationRecord {
        let metadata = self.metadata.as_ref();
        ConversationRecord {
            id: ConversationId(i64::from(self.id)),
            external_id: self.external_id.clone(),
            subject: self.subject.clone(),
            status: self
                .status
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "active".to_owned()),
            counters: ConversationCounters {
                total_calls: json_u64(metadata.and_then(|m| m.get("total_calls"))),
                total_duration: json_u64(metadata.and_then(|m| m.get("total_duration"))),
                last_call_direction: json_direction(
                    metadata.and_then(|m| m.get("last_call_direction")),
                ),
                last_message_at: self.last_message_at.map(from_db_time),
                last_display_status: metadata
                    .and_then(|m| m.get("last_display_status"))
                    .and_then(Value::as_str)
                    .map(DisplayStatus::parse),
                last_root_sid: self.last_root_sid.clone().and_then(CallSid::new),
                total_messages: json_u64(metadata.and_then(|m| m.get("total_messages"))),
                last_message_type: metadata
                    .and_then(|m| m.get("last_message_type"))
                    .and_then(Value::as_str)
                    .and_then(MessageType::parse),
                last_text_sid: self.last_text_sid(),
            },
            created_at: time_or_epoch(self.created_at),
            updated_at: time_or_epoch(self.updated_at.or(self.created_at)),
        }
    }

    /// The newest text of the conversation (`metadata.last_text_sid`).
    pub(crate) fn last_text_sid(&self) -> Option<MessageSid> {
        self.metadata
            .as_ref()
            .and_then(|m| m.get("last_text_sid"))
            .and_then(Value::as_str)
            .and_then(MessageSid::new)
    }

    /// The contact record (an empty one when the conversation has none).
    pub(crate) fn contact(&self) -> ContactRecord {
        ContactRecord {
            id: self.contact_id.map(i64::from).unwrap_or(0),
            phone_number: self.contact_phone_number.clone().unwrap_or_default(),
            formatted_number: self.contact_formatted_number.clone(),
            display_name: self.contact_display_name.clone(),
            metadata: json_or_empty(self.contact_metadata.clone()),
            company_name: self.contact_company_name.clone(),
            annotations: annotations(
                self.contact_notes.clone(),
                self.contact_tags.clone(),
                self.contact_edited_by.clone(),
                self.contact_edited_at,
                self.contact_version.unwrap_or(1),
            ),
            created_at: time_or_epoch(self.contact_created_at),
            updated_at: time_or_epoch(self.contact_updated_at.or(self.contact_created_at)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed_row(metadata: Option<Value>) -> MessageRow {
        MessageRow {
            id: 7,
            conversation_id: Some(3),
            twilio_sid: "CA01".into(),
            direction: "outbound-dial".into(),
            status: "completed".into(),
            from_number: "+16175006181".into(),
            to_number: "+19788447773".into(),
            duration: Some(40),
            price: Some("-0.0140".parse().unwrap()),
            price_unit: Some("USD".into()),
            start_time: Some(
                chrono::NaiveDate::from_ymd_opt(2026, 2, 6)
                    .unwrap()
                    .and_hms_opt(15, 17, 13)
                    .unwrap(),
            ),
            end_time: None,
            recording_url: None,
            parent_call_sid: Some("CA00".into()),
            metadata,
            root_call_sid: "CA00".into(),
            created_at: None,
            updated_at: None,
            refresh_attempts: 0,
            refresh_due_at: None,
            unfollowed_at: None,
            notes: None,
            tags: None,
            edited_by: None,
            edited_at: None,
            version: 1,
        }
    }

    #[test]
    fn rebuilds_calls_without_raw_from_the_columns() {
        let stored = seed_row(Some(json!({
            "answered_by": null, "queue_time": "0", "twilio_direction": "outbound-dial",
            "twilio_status": "completed", "actual_direction": "outbound",
            "display_status": "completed", "merged_from_parent": true
        })))
        .into_stored();
        assert_eq!(stored.call.sid.as_str(), "CA01");
        assert_eq!(
            stored.call.parent_call_sid.as_ref().unwrap().as_str(),
            "CA00"
        );
        assert_eq!(stored.call.duration, Some(40));
        assert_eq!(stored.call.queue_time, Some(0));
        assert_eq!(stored.call.price.unwrap().to_string(), "-0.0140");
        assert_eq!(
            stored.call.start_time.unwrap().to_rfc3339(),
            "2026-02-06T15:17:13+00:00"
        );
        assert_eq!(stored.derived.actual_direction, ActualDirection::Outbound);
        assert!(stored.derived.merged_from_parent);
        assert_eq!(stored.root_sid.as_str(), "CA00");
        assert!(!stored.is_root());
        assert_eq!(stored.created_at, DateTime::UNIX_EPOCH);
    }

    #[test]
    fn defaults_when_metadata_is_missing_or_odd() {
        let stored = seed_row(None).into_stored();
        assert_eq!(stored.derived.actual_direction, ActualDirection::Outbound);
        assert_eq!(stored.derived.display_status, "completed");
        assert!(stored.derived.merged_from_parent);
        let stored = seed_row(Some(json!({"queue_time": "soon", "raw": "garbage"}))).into_stored();
        assert_eq!(stored.call.queue_time, None);
        assert_eq!(stored.call.duration, Some(40));
    }

    #[test]
    fn raw_wins_when_present() {
        let raw = json!({"sid": "CA01", "status": "busy", "direction": "inbound", "duration": "0"});
        let stored =
            seed_row(Some(json!({"raw": raw, "actual_direction": "inbound"}))).into_stored();
        assert_eq!(stored.call.raw, raw);
        assert_eq!(stored.call.status.as_str(), "busy");
        assert_eq!(stored.derived.actual_direction, ActualDirection::Inbound);
    }

    #[test]
    fn counters_accept_the_seeds_values() {
        assert_eq!(json_u64(Some(&json!(5))), 5);
        assert_eq!(json_u64(Some(&json!("12"))), 12);
        assert_eq!(json_u64(Some(&json!(-3))), 0);
        assert_eq!(json_u64(None), 0);
        assert_eq!(
            json_direction(Some(&json!("outbound-api"))),
            Some(ActualDirection::Outbound)
        );
        assert_eq!(
            json_direction(Some(&json!("internal"))),
            Some(ActualDirection::Internal)
        );
        assert_eq!(json_direction(Some(&json!(null))), None);
    }
}
