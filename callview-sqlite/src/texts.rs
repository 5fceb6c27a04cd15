//! Text messages: the `texts` table (`docs/storage.md`), written by
//! `apply` and read for threads, conversations' totals and last messages.

use std::collections::HashMap;

use callview_core::model::{ConversationState, NewestText, StoredText, TextWrite};
use callview_core::store::{MessageQuery, StoreError};
use callview_core::text::{MessageSid, Text, TextKind, TextMedia};
use callview_core::{ActualDirection, ConversationId, Plan};
use rusqlite::{params, Connection, Row};

use crate::queries::{db, json_array, json_ids, resolve};
use crate::rows;
use crate::time;

/// The columns [`stored_text`] reads, in order.
const TEXT_COLUMNS: &str = "t.id, t.conversation_id, t.actual_direction, t.media, t.raw";

/// A `texts` row read with [`TEXT_COLUMNS`].
fn stored_text(row: &Row<'_>) -> Result<StoredText, StoreError> {
    let what = "reading a text message";
    let id: i64 = row.get(0).map_err(db(what))?;
    let conversation_id: i64 = row.get(1).map_err(db(what))?;
    let actual: String = row.get(2).map_err(db(what))?;
    let media: String = row.get(3).map_err(db(what))?;
    let raw: String = row.get(4).map_err(db(what))?;
    let corrupt = |reason: String| StoreError::Backend {
        message: format!("text row {id}: {reason}"),
        source: None,
    };
    let raw: serde_json::Value =
        serde_json::from_str(&raw).map_err(|e| corrupt(format!("raw: {e}")))?;
    let text = Text::from_value(raw).map_err(|e| corrupt(e.to_string()))?;
    let media: Vec<TextMedia> =
        serde_json::from_str(&media).map_err(|e| corrupt(format!("media: {e}")))?;
    Ok(StoredText {
        id,
        conversation_id: ConversationId(conversation_id),
        text,
        actual_direction: ActualDirection::parse(&actual).unwrap_or(ActualDirection::Inbound),
        media,
    })
}

fn query_texts(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    what: &str,
) -> Result<Vec<StoredText>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db(what))?;
    let mut rows = stmt.query(params).map_err(db(what))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db(what))? {
        out.push(stored_text(row)?);
    }
    Ok(out)
}

/// `IngestTx::load_texts`.
pub(crate) fn load_texts(
    conn: &Connection,
    sids: &[MessageSid],
) -> Result<Vec<StoredText>, StoreError> {
    if sids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {TEXT_COLUMNS} FROM texts t
         WHERE t.twilio_sid IN (SELECT value FROM json_each(?1))
         ORDER BY t.twilio_sid"
    );
    let list = json_array(sids.iter().map(MessageSid::as_str));
    query_texts(conn, &sql, [list], "loading the stored texts of a batch")
}

/// Adds each conversation's text totals (rows outside `exclude`) to its
/// state: how many, and the newest (greatest `(sent_at IS NOT NULL,
/// sent_at, twilio_sid)`).
pub(crate) fn add_totals(
    conn: &Connection,
    states: &mut [ConversationState],
    exclude: &[MessageSid],
) -> Result<(), StoreError> {
    let what = "loading the text totals of a batch's conversations";
    let index: HashMap<i64, usize> = states
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.0, i))
        .collect();
    let found = json_ids(states.iter().map(|s| s.id.0));
    let exclude = json_array(exclude.iter().map(MessageSid::as_str));
    let mut stmt = conn
        .prepare_cached(
            "SELECT r.conversation_id, r.n, r.twilio_sid, r.sent_at, r.kind
             FROM (
                 SELECT t.conversation_id, t.twilio_sid, t.sent_at, t.kind,
                        count(*) OVER (PARTITION BY t.conversation_id) AS n,
                        row_number() OVER (
                            PARTITION BY t.conversation_id
                            ORDER BY t.sent_at IS NOT NULL DESC, t.sent_at DESC,
                                     t.twilio_sid DESC
                        ) AS rank
                 FROM texts t
                 WHERE t.conversation_id IN (SELECT value FROM json_each(?1))
                   AND t.twilio_sid NOT IN (SELECT value FROM json_each(?2))
             ) r
             WHERE r.rank = 1",
        )
        .map_err(db(what))?;
    let mut rows = stmt.query([&found, &exclude]).map_err(db(what))?;
    while let Some(row) = rows.next().map_err(db(what))? {
        let id: i64 = row.get(0).map_err(db(what))?;
        let Some(&i) = index.get(&id) else { continue };
        let sid: String = row.get(2).map_err(db(what))?;
        let at: Option<String> = row.get(3).map_err(db(what))?;
        let kind: String = row.get(4).map_err(db(what))?;
        let rest = &mut states[i].rest;
        rest.texts = rows::non_negative(row.get(1).map_err(db(what))?);
        rest.newest_text = match (MessageSid::new(sid), TextKind::parse(&kind)) {
            (Some(sid), Some(kind)) => Some(NewestText {
                at: at.as_deref().and_then(time::parse),
                sid,
                kind,
            }),
            _ => None,
        };
    }
    Ok(())
}

/// `apply`, step 2b: the plan's texts, inserted or updated in place.
pub(crate) fn upsert_texts(
    tx: &Connection,
    plan: &Plan,
    created: &HashMap<&str, i64>,
    now: &str,
) -> Result<(), StoreError> {
    for write in &plan.texts {
        let conversation_id = resolve(tx, created, &write.conversation)?;
        upsert_text(tx, write, conversation_id, now)?;
    }
    Ok(())
}

fn upsert_text(
    tx: &Connection,
    write: &TextWrite,
    conversation_id: i64,
    now: &str,
) -> Result<(), StoreError> {
    let t = &write.text;
    let what = || format!("storing text {}", t.sid);
    tx.prepare_cached(
        "INSERT INTO texts (conversation_id, twilio_sid, kind, direction, actual_direction,
                            from_number, to_number, body, status, num_segments, num_media,
                            error_code, error_message, price, price_unit,
                            messaging_service_sid, sent_at, date_created, date_updated,
                            media, raw, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                 ?17, ?18, ?19, ?20, ?21, ?22, ?22)
         ON CONFLICT (twilio_sid) DO UPDATE SET
             conversation_id = excluded.conversation_id, kind = excluded.kind,
             direction = excluded.direction, actual_direction = excluded.actual_direction,
             from_number = excluded.from_number, to_number = excluded.to_number,
             body = excluded.body, status = excluded.status,
             num_segments = excluded.num_segments, num_media = excluded.num_media,
             error_code = excluded.error_code, error_message = excluded.error_message,
             price = excluded.price, price_unit = excluded.price_unit,
             messaging_service_sid = excluded.messaging_service_sid,
             sent_at = excluded.sent_at, date_created = excluded.date_created,
             date_updated = excluded.date_updated, media = excluded.media,
             raw = excluded.raw, updated_at = excluded.updated_at",
    )
    .map_err(db(what()))?
    .execute(params![
        conversation_id,
        t.sid.as_str(),
        t.kind().as_str(),
        t.direction.as_str(),
        write.actual_direction.as_str(),
        t.from,
        t.to,
        t.body,
        t.status.as_str(),
        t.num_segments,
        t.num_media,
        t.error_code,
        t.error_message,
        t.price.map(|p| p.to_string()),
        t.price_unit,
        t.messaging_service_sid,
        t.at().as_ref().map(time::format),
        t.date_created.as_ref().map(time::format),
        t.date_updated.as_ref().map(time::format),
        write.media_json(),
        write.raw_json(),
        now,
    ])
    .map_err(db(what()))?;
    Ok(())
}

/// `Store::texts` (the caller checked the conversation exists, in the same
/// read transaction).
pub(crate) fn thread_texts(
    conn: &Connection,
    id: ConversationId,
    query: &MessageQuery,
) -> Result<Vec<StoredText>, StoreError> {
    let what = format!("loading the texts of conversation {id}");
    let (after_at, after_sid) = match &query.after {
        Some(c) => (
            c.start_time().as_ref().map(time::format),
            Some(c.sid().to_owned()),
        ),
        None => (None, None),
    };
    // The thread's order, as `queries::messages` reads root calls.
    let sql = format!(
        "SELECT {TEXT_COLUMNS} FROM texts t
         WHERE t.conversation_id = ?1
           AND (?3 IS NULL
                OR (?2 IS NOT NULL AND (t.sent_at IS NULL
                                        OR (t.sent_at, t.twilio_sid) < (?2, ?3)))
                OR (?2 IS NULL AND t.sent_at IS NULL AND t.twilio_sid < ?3))
         ORDER BY t.sent_at DESC, t.twilio_sid DESC
         LIMIT ?4"
    );
    query_texts(
        conn,
        &sql,
        params![id.0, after_at, after_sid, i64::from(query.limit)],
        &what,
    )
}

/// `Store::text`.
pub(crate) fn text(conn: &Connection, sid: &MessageSid) -> Result<StoredText, StoreError> {
    load_texts(conn, std::slice::from_ref(sid))?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("text {sid}")))
}

/// The texts with these SIDs, by SID (conversations' last messages).
pub(crate) fn by_sid(
    conn: &Connection,
    sids: &[MessageSid],
) -> Result<HashMap<MessageSid, StoredText>, StoreError> {
    Ok(load_texts(conn, sids)?
        .into_iter()
        .map(|t| (t.text.sid.clone(), t))
        .collect())
}
