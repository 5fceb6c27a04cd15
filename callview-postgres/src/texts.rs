//! Text messages: the `texts` table (`docs/storage.md`), written by
//! `apply` and read for threads, conversations' totals and last messages.
//! Each function returns [`MediaError`]: the database's error, or a stored
//! row that does not read back; the store names what failed.

use std::collections::HashMap;

use callview_core::model::{ConversationState, NewestText, StoredText, TextWrite};
use callview_core::store::{MessageQuery, StoreError};
use callview_core::text::{MessageSid, Text, TextKind, TextMedia};
use callview_core::{ActualDirection, ConversationId};
use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use sqlx::types::Json;
use sqlx::PgConnection;

use crate::media::MediaError;
use crate::rows::{from_db_time, to_db_time};

/// The columns [`TextRow`] reads.
const TEXT_COLUMNS: &str = "t.id, t.conversation_id, t.actual_direction, t.media, t.raw";

#[derive(sqlx::FromRow)]
struct TextRow {
    id: i64,
    conversation_id: i32,
    actual_direction: String,
    media: Json<serde_json::Value>,
    raw: Json<serde_json::Value>,
}

impl TextRow {
    fn into_stored(self) -> Result<StoredText, MediaError> {
        let corrupt = |reason: String| {
            MediaError::Corrupt(StoreError::Backend {
                message: format!("text row {}: {reason}", self.id),
                source: None,
            })
        };
        let text = Text::from_value(self.raw.0.clone()).map_err(|e| corrupt(e.to_string()))?;
        let media: Vec<TextMedia> = serde_json::from_value(self.media.0.clone())
            .map_err(|e| corrupt(format!("media: {e}")))?;
        Ok(StoredText {
            id: self.id,
            conversation_id: ConversationId(i64::from(self.conversation_id)),
            text,
            actual_direction: ActualDirection::parse(&self.actual_direction)
                .unwrap_or(ActualDirection::Inbound),
            media,
        })
    }
}

fn stored(rows: Vec<TextRow>) -> Result<Vec<StoredText>, MediaError> {
    rows.into_iter().map(TextRow::into_stored).collect()
}

/// `IngestTx::load_texts`, and reads by SID.
pub(crate) async fn load_texts(
    conn: &mut PgConnection,
    sids: &[MessageSid],
) -> Result<Vec<StoredText>, MediaError> {
    if sids.is_empty() {
        return Ok(Vec::new());
    }
    let sids: Vec<&str> = sids.iter().map(MessageSid::as_str).collect();
    let rows: Vec<TextRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TEXT_COLUMNS} FROM texts t WHERE t.twilio_sid = ANY($1) \
         ORDER BY t.twilio_sid COLLATE \"C\""
    )))
    .bind(&sids)
    .fetch_all(&mut *conn)
    .await?;
    stored(rows)
}

/// The texts with these SIDs, by SID (conversations' last messages).
pub(crate) async fn by_sid(
    conn: &mut PgConnection,
    sids: &[MessageSid],
) -> Result<HashMap<MessageSid, StoredText>, MediaError> {
    Ok(load_texts(conn, sids)
        .await?
        .into_iter()
        .map(|t| (t.text.sid.clone(), t))
        .collect())
}

#[derive(sqlx::FromRow)]
struct TotalsRow {
    conversation_id: i32,
    n: i64,
    twilio_sid: String,
    sent_at: Option<NaiveDateTime>,
    kind: String,
}

/// Adds each conversation's text totals (rows outside `exclude`) to its
/// state: how many, and the newest (greatest `(sent_at IS NOT NULL,
/// sent_at, twilio_sid)`).
pub(crate) async fn add_totals(
    conn: &mut PgConnection,
    states: &mut [ConversationState],
    exclude: &[MessageSid],
) -> Result<(), MediaError> {
    if states.is_empty() {
        return Ok(());
    }
    let ids: Vec<i32> = states
        .iter()
        .filter_map(|s| i32::try_from(s.id.0).ok())
        .collect();
    let exclude: Vec<&str> = exclude.iter().map(MessageSid::as_str).collect();
    let rows: Vec<TotalsRow> = sqlx::query_as(
        "SELECT v.id AS conversation_id, a.n, n.twilio_sid, n.sent_at, n.kind \
         FROM unnest($1::int4[]) AS v(id) \
         CROSS JOIN LATERAL ( \
             SELECT count(*) AS n FROM texts t \
             WHERE t.conversation_id = v.id AND t.twilio_sid <> ALL($2)) a \
         JOIN LATERAL ( \
             SELECT t.twilio_sid, t.sent_at, t.kind FROM texts t \
             WHERE t.conversation_id = v.id AND t.twilio_sid <> ALL($2) \
             ORDER BY t.sent_at DESC NULLS LAST, t.twilio_sid COLLATE \"C\" DESC \
             LIMIT 1) n ON true",
    )
    .bind(&ids)
    .bind(&exclude)
    .fetch_all(&mut *conn)
    .await?;
    let index: HashMap<i64, usize> = states
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.0, i))
        .collect();
    for row in rows {
        let Some(&i) = index.get(&i64::from(row.conversation_id)) else {
            continue;
        };
        let rest = &mut states[i].rest;
        rest.texts = row.n.max(0) as u64;
        rest.newest_text = match (MessageSid::new(row.twilio_sid), TextKind::parse(&row.kind)) {
            (Some(sid), Some(kind)) => Some(NewestText {
                at: row.sent_at.map(from_db_time),
                sid,
                kind,
            }),
            _ => None,
        };
    }
    Ok(())
}

/// `apply`, step 2b: the plan's texts, inserted or updated in place (one
/// statement for the whole plan).
pub(crate) async fn upsert_texts(
    conn: &mut PgConnection,
    writes: &[(&TextWrite, i32)],
) -> Result<(), MediaError> {
    if writes.is_empty() {
        return Ok(());
    }
    let n = writes.len();
    let mut conversation_ids = Vec::with_capacity(n);
    let mut sids = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut directions = Vec::with_capacity(n);
    let mut actual = Vec::with_capacity(n);
    let mut froms: Vec<Option<String>> = Vec::with_capacity(n);
    let mut tos: Vec<Option<String>> = Vec::with_capacity(n);
    let mut bodies = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    let mut segments: Vec<Option<i32>> = Vec::with_capacity(n);
    let mut num_media: Vec<i32> = Vec::with_capacity(n);
    let mut error_codes: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut error_messages: Vec<Option<String>> = Vec::with_capacity(n);
    let mut prices: Vec<Option<Decimal>> = Vec::with_capacity(n);
    let mut price_units: Vec<Option<String>> = Vec::with_capacity(n);
    let mut services: Vec<Option<String>> = Vec::with_capacity(n);
    let mut sent: Vec<Option<NaiveDateTime>> = Vec::with_capacity(n);
    let mut created: Vec<Option<NaiveDateTime>> = Vec::with_capacity(n);
    let mut updated: Vec<Option<NaiveDateTime>> = Vec::with_capacity(n);
    let mut media: Vec<Json<&[TextMedia]>> = Vec::with_capacity(n);
    let mut raws: Vec<Json<&serde_json::Value>> = Vec::with_capacity(n);
    for (write, conversation_id) in writes {
        let t = &write.text;
        conversation_ids.push(*conversation_id);
        sids.push(t.sid.as_str());
        kinds.push(t.kind().as_str());
        directions.push(t.direction.as_str());
        actual.push(write.actual_direction.as_str());
        froms.push(t.from.clone());
        tos.push(t.to.clone());
        bodies.push(t.body.as_str());
        statuses.push(t.status.as_str());
        segments.push(t.num_segments.and_then(|s| i32::try_from(s).ok()));
        num_media.push(i32::try_from(t.num_media).unwrap_or(i32::MAX));
        error_codes.push(t.error_code);
        error_messages.push(t.error_message.clone());
        prices.push(t.price);
        price_units.push(t.price_unit.clone());
        services.push(t.messaging_service_sid.clone());
        sent.push(t.at().map(to_db_time));
        created.push(t.date_created.map(to_db_time));
        updated.push(t.date_updated.map(to_db_time));
        media.push(Json(&write.media));
        raws.push(Json(&t.raw));
    }
    sqlx::query(
        "INSERT INTO texts (conversation_id, twilio_sid, kind, direction, actual_direction, \
             from_number, to_number, body, status, num_segments, num_media, error_code, \
             error_message, price, price_unit, messaging_service_sid, sent_at, date_created, \
             date_updated, media, raw) \
         SELECT * FROM UNNEST($1::int4[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::text[], $9::text[], $10::int4[], $11::int4[], \
             $12::int8[], $13::text[], $14::numeric[], $15::text[], $16::text[], \
             $17::timestamp[], $18::timestamp[], $19::timestamp[], $20::jsonb[], $21::jsonb[]) \
         ON CONFLICT (twilio_sid) DO UPDATE SET \
             conversation_id = EXCLUDED.conversation_id, kind = EXCLUDED.kind, \
             direction = EXCLUDED.direction, actual_direction = EXCLUDED.actual_direction, \
             from_number = EXCLUDED.from_number, to_number = EXCLUDED.to_number, \
             body = EXCLUDED.body, status = EXCLUDED.status, \
             num_segments = EXCLUDED.num_segments, num_media = EXCLUDED.num_media, \
             error_code = EXCLUDED.error_code, error_message = EXCLUDED.error_message, \
             price = EXCLUDED.price, price_unit = EXCLUDED.price_unit, \
             messaging_service_sid = EXCLUDED.messaging_service_sid, \
             sent_at = EXCLUDED.sent_at, date_created = EXCLUDED.date_created, \
             date_updated = EXCLUDED.date_updated, media = EXCLUDED.media, \
             raw = EXCLUDED.raw, updated_at = NOW() AT TIME ZONE 'UTC'",
    )
    .bind(&conversation_ids)
    .bind(&sids)
    .bind(&kinds)
    .bind(&directions)
    .bind(&actual)
    .bind(&froms)
    .bind(&tos)
    .bind(&bodies)
    .bind(&statuses)
    .bind(&segments)
    .bind(&num_media)
    .bind(&error_codes)
    .bind(&error_messages)
    .bind(&prices)
    .bind(&price_units)
    .bind(&services)
    .bind(&sent)
    .bind(&created)
    .bind(&updated)
    .bind(&media)
    .bind(&raws)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `Store::texts` (the caller checked the conversation exists, in the same
/// read transaction).
pub(crate) async fn thread_texts(
    conn: &mut PgConnection,
    id: i32,
    query: &MessageQuery,
) -> Result<Vec<StoredText>, MediaError> {
    let (after_at, after_sid) = match &query.after {
        Some(c) => (c.start_time().map(to_db_time), Some(c.sid())),
        None => (None, None),
    };
    // The thread's order, as `messages` reads root calls.
    let rows: Vec<TextRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TEXT_COLUMNS} FROM texts t \
         WHERE t.conversation_id = $1 \
           AND ($3::text IS NULL \
                OR ($2::timestamp IS NOT NULL AND (t.sent_at IS NULL \
                    OR t.sent_at < $2 \
                    OR (t.sent_at = $2 AND t.twilio_sid COLLATE \"C\" < $3 COLLATE \"C\"))) \
                OR ($2::timestamp IS NULL AND t.sent_at IS NULL \
                    AND t.twilio_sid COLLATE \"C\" < $3 COLLATE \"C\")) \
         ORDER BY t.sent_at DESC NULLS LAST, t.twilio_sid COLLATE \"C\" DESC \
         LIMIT $4"
    )))
    .bind(id)
    .bind(after_at)
    .bind(after_sid)
    .bind(i64::from(query.limit))
    .fetch_all(&mut *conn)
    .await?;
    stored(rows)
}
