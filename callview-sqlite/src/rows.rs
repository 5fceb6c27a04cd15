//! Reading rows back into the core's types.

use callview_core::annotations::Annotations;
use callview_core::call::CallSid;
use callview_core::endpoint::ActualDirection;
use callview_core::model::MessageType;
use callview_core::model::{
    ConversationCounters, ConversationId, Derived, DisplayStatus, RefreshState, StoredCall,
};
use callview_core::store::{ContactRecord, ConversationRecord, StoreError};
use callview_core::text::MessageSid;
use callview_core::Call;
use chrono::{DateTime, Utc};
use rusqlite::types::FromSql;
use rusqlite::types::ValueRef;
use rusqlite::Row;
use serde_json::{json, Map, Value};

use crate::time;

/// The `messages` columns [`stored_call`] reads, in order (alias `m`).
pub(crate) const MESSAGE_COLUMNS: &str = "m.id, m.conversation_id, m.twilio_sid, m.direction, \
     m.status, m.from_number, m.to_number, m.duration, m.price, m.price_unit, m.start_time, \
     m.end_time, m.recording_url, m.parent_call_sid, m.root_call_sid, m.metadata, \
     m.created_at, m.updated_at, m.refresh_attempts, m.refresh_due_at, m.unfollowed_at, \
     m.notes, m.tags, m.edited_by, m.edited_at, m.version, m.raw_zstd";

/// How many [`MESSAGE_COLUMNS`]: the index of a column selected after them.
pub(crate) const MESSAGE_WIDTH: usize = 27;

/// The `conversations` (alias `cv`) and `contacts` (alias `ct`) columns
/// [`conversation_and_contact`] reads, in order.
pub(crate) const CONVERSATION_COLUMNS: &str = "cv.id, cv.external_id, cv.subject, cv.status, \
     cv.last_message_at, cv.metadata, cv.created_at, cv.updated_at, ct.id, ct.phone_number, \
     ct.formatted_number, ct.display_name, ct.metadata, ct.created_at, ct.updated_at, \
     ct.company_name, ct.notes, ct.tags, ct.edited_by, ct.edited_at, ct.version";

/// The `contacts` (alias `ct`) columns [`contact`] reads, in order: the
/// same as the tail of [`CONVERSATION_COLUMNS`].
pub(crate) const CONTACT_COLUMNS: &str = "ct.id, ct.phone_number, ct.formatted_number, \
     ct.display_name, ct.metadata, ct.created_at, ct.updated_at, ct.company_name, ct.notes, \
     ct.tags, ct.edited_by, ct.edited_at, ct.version";

/// Reads the columns of one row, naming the row in every error.
struct Columns<'a, 'r> {
    row: &'a Row<'r>,
    what: String,
}

impl Columns<'_, '_> {
    fn get<T: FromSql>(&self, index: usize, column: &str) -> Result<T, StoreError> {
        self.row.get(index).map_err(|e| {
            StoreError::backend(format!("reading column `{column}` of {}", self.what), e)
        })
    }

    fn error(&self, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Backend {
            message: format!("{} is stored incorrectly: {reason}", self.what),
            source: None,
        }
    }

    fn time(&self, index: usize, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        match self.get::<Option<String>>(index, column)? {
            None => Ok(None),
            Some(text) => time::parse(&text)
                .map(Some)
                .ok_or_else(|| self.error(format!("`{column}` is not a timestamp: {text:?}"))),
        }
    }

    fn required_time(&self, index: usize, column: &str) -> Result<DateTime<Utc>, StoreError> {
        self.time(index, column)?
            .ok_or_else(|| self.error(format!("`{column}` is empty")))
    }

    fn json(&self, index: usize, column: &str) -> Result<Value, StoreError> {
        let text: Option<String> = self.get(index, column)?;
        match text.as_deref().map(str::trim) {
            None | Some("") => Ok(Value::Object(Map::new())),
            Some(text) => serde_json::from_str(text).map_err(|e| {
                StoreError::backend(format!("{}: `{column}` is not valid JSON", self.what), e)
            }),
        }
    }
}

/// One `messages` row (selected with [`MESSAGE_COLUMNS`]) as a [`StoredCall`].
///
/// The call is parsed from its record (`raw_zstd`, or `metadata.raw` in
/// rows written before migration 13); rows without one (written by the
/// seed's original application) are rebuilt from the columns. A row that
/// does not parse is an error naming its SID.
pub(crate) fn stored_call(row: &Row<'_>) -> Result<StoredCall, StoreError> {
    let sid: String = row
        .get(2)
        .map_err(|e| StoreError::backend("reading the `twilio_sid` of a messages row", e))?;
    let cols = Columns {
        row,
        what: format!("call {sid}"),
    };
    let id: i64 = cols.get(0, "id")?;
    let conversation_id: i64 = cols.get(1, "conversation_id")?;
    let direction: String = cols.get(3, "direction")?;
    let status: String = cols.get(4, "status")?;
    let recording_url: Option<String> = cols.get(12, "recording_url")?;
    let parent_call_sid: Option<String> = cols.get(13, "parent_call_sid")?;
    let root_call_sid: String = cols.get(14, "root_call_sid")?;
    let mut metadata = cols.json(15, "metadata")?;
    let created_at = cols.required_time(16, "created_at")?;
    let updated_at = cols.required_time(17, "updated_at")?;
    if let Some(record) = compact_record(&cols)? {
        // Kept apart (`raw_record`): back under `metadata.raw`, where the
        // rest of the reading expects it. This version never writes
        // `metadata.raw`; one there was written after the compact record,
        // by a callview older than migration 13 still running on the file,
        // and is the newer of the two.
        let Value::Object(map) = &mut metadata else {
            return Err(cols.error("`metadata` is not a JSON object"));
        };
        if map.get("raw").is_none_or(Value::is_null) {
            map.insert("raw".to_owned(), record);
        }
    }

    // The record moves out of the metadata into the call (no copy), its
    // derivable URIs rebuilt.
    let raw = callview_core::raw_uris::take_raw(&mut metadata);
    let call = match raw {
        Some(raw) => Call::from_value(raw).map_err(|e| {
            StoreError::backend(
                format!("the stored Twilio record of call {sid} does not parse"),
                e,
            )
        })?,
        _ => rebuild_call(
            &cols,
            &sid,
            &direction,
            &status,
            &parent_call_sid,
            &metadata,
        )?,
    };

    let derived = Derived::from_stored(
        &call,
        metadata.get("actual_direction").and_then(Value::as_str),
        metadata.get("display_status").and_then(Value::as_str),
        metadata.get("merged_from_parent").and_then(Value::as_bool),
    );
    let refresh = RefreshState {
        attempts: u32::try_from(cols.get::<i64>(18, "refresh_attempts")?).unwrap_or(0),
        due_at: cols.time(19, "refresh_due_at")?,
        unfollowed_at: cols.time(20, "unfollowed_at")?,
    };
    let annotations = annotations(&cols, 21)?;
    let root_sid =
        CallSid::new(root_call_sid).ok_or_else(|| cols.error("`root_call_sid` is empty"))?;

    Ok(StoredCall {
        id,
        conversation_id: ConversationId(conversation_id),
        root_sid,
        call,
        derived,
        recording_url,
        refresh,
        annotations,
        created_at,
        updated_at,
    })
}

/// The record of `messages.raw_zstd` (the last of [`MESSAGE_COLUMNS`]),
/// if the row keeps it there; a value that does not decode is an error
/// naming the call.
fn compact_record(cols: &Columns<'_, '_>) -> Result<Option<Value>, StoreError> {
    let blob = match cols.row.get_ref(MESSAGE_WIDTH - 1) {
        Ok(ValueRef::Null) => return Ok(None),
        Ok(ValueRef::Blob(blob)) => blob,
        Ok(other) => return Err(cols.error(format!("`raw_zstd` holds {}", other.data_type()))),
        Err(e) => return Err(StoreError::backend(format!("reading {}", cols.what), e)),
    };
    let unreadable = |e| cols.error(format!("its Twilio record does not read back: {e}"));
    let text = crate::raw_record::decode(blob).map_err(|e| unreadable(e.to_string()))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| unreadable(e.to_string()))
}

/// Builds a REST-form record from the columns and parses it.
fn rebuild_call(
    cols: &Columns<'_, '_>,
    sid: &str,
    direction: &str,
    status: &str,
    parent_call_sid: &Option<String>,
    metadata: &Value,
) -> Result<Call, StoreError> {
    let from: String = cols.get(5, "from_number")?;
    let to: String = cols.get(6, "to_number")?;
    let duration: Option<i64> = cols.get(7, "duration")?;
    let price: Option<String> = cols.get(8, "price")?;
    let price_unit: Option<String> = cols.get(9, "price_unit")?;
    let start_time = cols.time(10, "start_time")?;
    let end_time = cols.time(11, "end_time")?;
    let time = |t: Option<DateTime<Utc>>| t.map(|t| Value::String(time::format(&t)));
    let record = json!({
        "sid": sid,
        "parent_call_sid": parent_call_sid,
        "from": from,
        "to": to,
        "status": status,
        "direction": direction,
        "start_time": time(start_time),
        "end_time": time(end_time),
        "duration": duration.map(|d| d.to_string()),
        "price": price,
        "price_unit": price_unit,
        "answered_by": metadata.get("answered_by").cloned().unwrap_or(Value::Null),
        "queue_time": metadata.get("queue_time").cloned().unwrap_or(Value::Null),
    });
    Call::from_json(&record).map_err(|e| {
        StoreError::backend(format!("the stored columns of call {sid} do not parse"), e)
    })
}

/// One row selected with [`CONVERSATION_COLUMNS`].
pub(crate) fn conversation_and_contact(
    row: &Row<'_>,
) -> Result<(ConversationRecord, ContactRecord), StoreError> {
    let id: i64 = row
        .get(0)
        .map_err(|e| StoreError::backend("reading the id of a conversations row", e))?;
    let cols = Columns {
        row,
        what: format!("conversation {id}"),
    };
    let metadata = cols.json(5, "metadata")?;
    let last_message_at = cols.time(4, "last_message_at")?;
    let conversation = ConversationRecord {
        id: ConversationId(id),
        external_id: cols.get(1, "external_id")?,
        subject: cols.get(2, "subject")?,
        status: cols
            .get::<Option<String>>(3, "status")?
            .unwrap_or_else(|| "active".to_owned()),
        counters: counters(&metadata, last_message_at),
        created_at: cols.required_time(6, "created_at")?,
        updated_at: cols.required_time(7, "updated_at")?,
    };
    Ok((conversation, contact_at(row, 8)?))
}

/// One row selected with [`CONTACT_COLUMNS`].
pub(crate) fn contact(row: &Row<'_>) -> Result<ContactRecord, StoreError> {
    contact_at(row, 0)
}

/// The contact whose [`CONTACT_COLUMNS`] start at column `at`.
fn contact_at(row: &Row<'_>, at: usize) -> Result<ContactRecord, StoreError> {
    let contact_id: i64 = row
        .get(at)
        .map_err(|e| StoreError::backend("reading the id of a contacts row", e))?;
    let cols = Columns {
        row,
        what: format!("contact {contact_id}"),
    };
    Ok(ContactRecord {
        id: contact_id,
        phone_number: cols.get(at + 1, "phone_number")?,
        formatted_number: cols.get(at + 2, "formatted_number")?,
        display_name: cols.get(at + 3, "display_name")?,
        metadata: cols.json(at + 4, "metadata")?,
        created_at: cols.required_time(at + 5, "created_at")?,
        updated_at: cols.required_time(at + 6, "updated_at")?,
        company_name: cols.get(at + 7, "company_name")?,
        annotations: annotations(&cols, at + 8)?,
    })
}

/// Notes, tags, editor, edit time and version, from column `at` on.
fn annotations(cols: &Columns<'_, '_>, at: usize) -> Result<Annotations, StoreError> {
    let tags: Option<String> = cols.get(at + 1, "tags")?;
    let tags: Vec<String> = match tags.as_deref().map(str::trim) {
        None | Some("") => Vec::new(),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            StoreError::backend(
                format!("{}: `tags` is not a JSON array of strings", cols.what),
                e,
            )
        })?,
    };
    Ok(Annotations {
        notes: cols.get(at, "notes")?,
        tags,
        edited_by: cols.get(at + 2, "edited_by")?,
        edited_at: cols.time(at + 3, "edited_at")?,
        version: cols.get(at + 4, "version")?,
    })
}

/// The counters kept in `conversations.metadata`; missing or malformed
/// values read as zero / none.
fn counters(metadata: &Value, last_message_at: Option<DateTime<Utc>>) -> ConversationCounters {
    ConversationCounters {
        total_calls: json_u64(metadata.get("total_calls")),
        total_duration: json_u64(metadata.get("total_duration")),
        last_call_direction: metadata
            .get("last_call_direction")
            .and_then(Value::as_str)
            .and_then(ActualDirection::parse),
        last_message_at,
        last_display_status: metadata
            .get("last_display_status")
            .and_then(Value::as_str)
            .map(DisplayStatus::parse),
        last_root_sid: metadata
            .get("last_root_sid")
            .and_then(Value::as_str)
            .and_then(CallSid::new),
        total_messages: json_u64(metadata.get("total_messages")),
        last_message_type: metadata
            .get("last_message_type")
            .and_then(Value::as_str)
            .and_then(MessageType::parse),
        last_text_sid: metadata
            .get("last_text_sid")
            .and_then(Value::as_str)
            .and_then(MessageSid::new),
    }
}

fn json_u64(value: Option<&Value>) -> u64 {
    match value {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// Converts a stored integer to `u64`, negative as 0.
pub(crate) fn non_negative(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_width_counts_the_message_columns_and_the_record_is_last() {
        assert_eq!(MESSAGE_COLUMNS.split(',').count(), MESSAGE_WIDTH);
        assert!(MESSAGE_COLUMNS.ends_with("m.raw_zstd"), "{MESSAGE_COLUMNS}");
    }
}
