//! Recordings and transcripts: the statements behind `IngestTx::load_media`,
//! `recordings_created_between`, `apply_media`, and the reads
//! `Store::recording` and `Store::media_of_calls`. Each function returns
//! sqlx's error; the store names what failed.

use callview_core::call::CallSid;
use callview_core::model::{MediaPlan, StoredRecording};
use callview_core::recording::{Recording, RecordingSid, Sentence, Transcript, TranscriptKind};
use callview_core::store::{CallMedia, StoreError};
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::types::Json;
use sqlx::PgConnection;

use crate::rows::{from_db_time, to_db_time};

/// Why a media statement failed: the database, or a stored row that does
/// not read back.
#[derive(Debug)]
pub(crate) enum MediaError {
    Db(sqlx::Error),
    Corrupt(StoreError),
}

impl From<sqlx::Error> for MediaError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

/// Sets the seed's `recording_url` (the server path of the newest
/// recording Twilio still has) and `transcription_text` (the newest
/// completed transcript of the call's recordings, or of the call) of the
/// calls in `sids` that have any recording or transcript.
pub(crate) async fn refresh_call_columns(
    conn: &mut PgConnection,
    sids: &[String],
) -> Result<(), sqlx::Error> {
    if sids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE messages m SET \
             recording_url = ( \
                 SELECT '/api/recordings/' || r.sid || '/audio' FROM recordings r \
                 WHERE r.call_sid = m.twilio_sid AND r.deleted_at IS NULL \
                   AND r.status = 'completed' \
                 ORDER BY r.date_created DESC NULLS LAST, r.sid COLLATE \"C\" DESC LIMIT 1), \
             transcription_text = ( \
                 SELECT t.text FROM transcripts t \
                 WHERE t.status = 'completed' AND t.text <> '' \
                   AND (t.call_sid = m.twilio_sid \
                        OR t.recording_sid IN (SELECT r.sid FROM recordings r \
                                               WHERE r.call_sid = m.twilio_sid \
                                                 AND r.deleted_at IS NULL)) \
                 ORDER BY t.date_created DESC NULLS LAST, t.sid COLLATE \"C\" DESC LIMIT 1) \
         WHERE m.twilio_sid IN ( \
             SELECT call_sid FROM recordings WHERE call_sid = ANY($1) \
             UNION SELECT call_sid FROM transcripts WHERE call_sid = ANY($1))",
    )
    .bind(sids)
    .execute(conn)
    .await?;
    Ok(())
}

/// `IngestTx::apply_media`.
pub(crate) async fn apply_media(
    conn: &mut PgConnection,
    plan: &MediaPlan,
) -> Result<(), sqlx::Error> {
    let mut calls: Vec<String> = Vec::new();
    for write in &plan.recordings {
        let r = &write.recording;
        sqlx::query(
            "INSERT INTO recordings (sid, call_sid, conference_sid, channels, status, source, \
                 duration, start_time, date_created, date_updated, price, price_unit, error_code, \
                 deleted_at, metadata, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                 NOW() AT TIME ZONE 'UTC', NOW() AT TIME ZONE 'UTC') \
             ON CONFLICT (sid) DO UPDATE SET \
                 call_sid = EXCLUDED.call_sid, conference_sid = EXCLUDED.conference_sid, \
                 channels = EXCLUDED.channels, status = EXCLUDED.status, \
                 source = EXCLUDED.source, duration = EXCLUDED.duration, \
                 start_time = EXCLUDED.start_time, date_created = EXCLUDED.date_created, \
                 date_updated = EXCLUDED.date_updated, price = EXCLUDED.price, \
                 price_unit = EXCLUDED.price_unit, error_code = EXCLUDED.error_code, \
                 deleted_at = EXCLUDED.deleted_at, metadata = EXCLUDED.metadata, \
                 updated_at = EXCLUDED.updated_at",
        )
        .bind(r.sid.as_str())
        .bind(r.call_sid.as_ref().map(CallSid::as_str))
        .bind(r.conference_sid.as_deref())
        .bind(r.channels.map(i16::from))
        .bind(r.status.as_str())
        .bind(r.source.as_ref().map(|s| s.as_str().to_owned()))
        .bind(r.duration.map(|d| i32::try_from(d).unwrap_or(i32::MAX)))
        .bind(r.start_time.map(to_db_time))
        .bind(r.date_created.map(to_db_time))
        .bind(r.date_updated.map(to_db_time))
        .bind(r.price)
        .bind(r.price_unit.as_deref())
        .bind(r.error_code)
        .bind(write.deleted_at.map(to_db_time))
        .bind(Json(&r.raw))
        .execute(&mut *conn)
        .await?;
        calls.extend(r.call_sid.as_ref().map(ToString::to_string));
    }
    for (sid, at) in &plan.deleted {
        let call: Option<Option<String>> = sqlx::query_scalar(
            "UPDATE recordings SET deleted_at = $2, updated_at = NOW() AT TIME ZONE 'UTC' \
             WHERE sid = $1 AND deleted_at IS NULL RETURNING call_sid",
        )
        .bind(sid.as_str())
        .bind(to_db_time(*at))
        .fetch_optional(&mut *conn)
        .await?;
        calls.extend(call.flatten());
    }
    for t in &plan.transcripts {
        sqlx::query(
            "INSERT INTO transcripts (sid, kind, recording_sid, call_sid, status, language_code, \
                 text, sentences, date_created, date_updated, metadata, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                 NOW() AT TIME ZONE 'UTC', NOW() AT TIME ZONE 'UTC') \
             ON CONFLICT (sid) DO UPDATE SET \
                 kind = EXCLUDED.kind, recording_sid = EXCLUDED.recording_sid, \
                 call_sid = EXCLUDED.call_sid, status = EXCLUDED.status, \
                 language_code = EXCLUDED.language_code, text = EXCLUDED.text, \
                 sentences = EXCLUDED.sentences, date_created = EXCLUDED.date_created, \
                 date_updated = EXCLUDED.date_updated, metadata = EXCLUDED.metadata, \
                 updated_at = EXCLUDED.updated_at",
        )
        .bind(&t.sid)
        .bind(t.kind.as_str())
        .bind(t.recording_sid.as_ref().map(RecordingSid::as_str))
        .bind(t.call_sid.as_ref().map(CallSid::as_str))
        .bind(t.status.as_str())
        .bind(t.language_code.as_deref())
        .bind(&t.text)
        .bind(Json(&t.sentences))
        .bind(t.date_created.map(to_db_time))
        .bind(t.date_updated.map(to_db_time))
        .bind(Json(&t.raw))
        .execute(&mut *conn)
        .await?;
        match (&t.call_sid, &t.recording_sid) {
            (Some(call), _) => calls.push(call.to_string()),
            (None, Some(recording)) => {
                let call: Option<Option<String>> =
                    sqlx::query_scalar("SELECT call_sid FROM recordings WHERE sid = $1")
                        .bind(recording.as_str())
                        .fetch_optional(&mut *conn)
                        .await?;
                calls.extend(call.flatten());
            }
            (None, None) => {}
        }
    }
    calls.sort();
    calls.dedup();
    refresh_call_columns(conn, &calls).await
}

type RecordingRow = (Json<serde_json::Value>, Option<NaiveDateTime>);
type TranscriptRow = (String, Json<serde_json::Value>, Json<Vec<Sentence>>, String);

fn corrupt(what: &str, reason: impl std::fmt::Display) -> MediaError {
    MediaError::Corrupt(StoreError::Invalid(format!(
        "a stored {what} cannot be read: {reason}"
    )))
}

fn recording_of(row: RecordingRow) -> Result<StoredRecording, MediaError> {
    Ok(StoredRecording {
        recording: Recording::from_value(row.0 .0).map_err(|e| corrupt("recording", e))?,
        deleted_at: row.1.map(from_db_time),
    })
}

fn transcript_of(row: TranscriptRow) -> Result<Transcript, MediaError> {
    let (kind, raw, sentences, text) = row;
    let kind = TranscriptKind::parse(&kind)
        .ok_or_else(|| corrupt("transcript", format!("unknown kind {kind:?}")))?;
    Transcript::from_stored(kind, raw.0, sentences.0, text).map_err(|e| corrupt("transcript", e))
}

/// `IngestTx::load_media`.
pub(crate) async fn load_media(
    conn: &mut PgConnection,
    recordings: &[RecordingSid],
    transcripts: &[String],
) -> Result<(Vec<StoredRecording>, Vec<Transcript>), MediaError> {
    let sids: Vec<&str> = recordings.iter().map(RecordingSid::as_str).collect();
    let rows: Vec<RecordingRow> = sqlx::query_as(
        "SELECT metadata, deleted_at FROM recordings WHERE sid = ANY($1) ORDER BY sid",
    )
    .bind(&sids)
    .fetch_all(&mut *conn)
    .await?;
    let stored = rows
        .into_iter()
        .map(recording_of)
        .collect::<Result<Vec<_>, _>>()?;
    let rows: Vec<TranscriptRow> = sqlx::query_as(
        "SELECT kind, metadata, sentences, text FROM transcripts WHERE sid = ANY($1) ORDER BY sid",
    )
    .bind(transcripts)
    .fetch_all(&mut *conn)
    .await?;
    let stored_t = rows
        .into_iter()
        .map(transcript_of)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((stored, stored_t))
}

/// `IngestTx::recordings_created_between`.
pub(crate) async fn recordings_created_between(
    conn: &mut PgConnection,
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
) -> Result<Vec<RecordingSid>, sqlx::Error> {
    let sids: Vec<String> = sqlx::query_scalar(
        "SELECT sid FROM recordings \
         WHERE deleted_at IS NULL \
           AND ($1::timestamp IS NULL OR date_created > $1) \
           AND ($2::timestamp IS NULL OR date_created < $2) \
         ORDER BY sid",
    )
    .bind(after.map(to_db_time))
    .bind(before.map(to_db_time))
    .fetch_all(conn)
    .await?;
    Ok(sids.into_iter().filter_map(RecordingSid::new).collect())
}

/// `Store::unfinished_media_since`.
pub(crate) async fn unfinished_media_since(
    conn: &mut PgConnection,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let oldest: Option<NaiveDateTime> = sqlx::query_scalar(
        "SELECT min(d) FROM ( \
             SELECT min(date_created) AS d FROM recordings \
             WHERE deleted_at IS NULL AND status NOT IN ('completed', 'absent', 'deleted') \
             UNION ALL \
             SELECT min(date_created) FROM transcripts \
             WHERE status NOT IN ('completed', 'failed', 'canceled')) AS u",
    )
    .fetch_one(conn)
    .await?;
    Ok(oldest.map(from_db_time))
}

/// `Store::recording`.
pub(crate) async fn recording(
    conn: &mut PgConnection,
    sid: &RecordingSid,
) -> Result<Option<StoredRecording>, MediaError> {
    let row: Option<RecordingRow> =
        sqlx::query_as("SELECT metadata, deleted_at FROM recordings WHERE sid = $1")
            .bind(sid.as_str())
            .fetch_optional(conn)
            .await?;
    row.map(recording_of).transpose()
}

/// `Store::media_of_calls`.
pub(crate) async fn media_of_calls(
    conn: &mut PgConnection,
    sids: &[CallSid],
) -> Result<CallMedia, MediaError> {
    if sids.is_empty() {
        return Ok(CallMedia::default());
    }
    let sids: Vec<&str> = sids.iter().map(CallSid::as_str).collect();
    let rows: Vec<RecordingRow> = sqlx::query_as(
        "SELECT metadata, deleted_at FROM recordings WHERE call_sid = ANY($1) \
         ORDER BY date_created NULLS FIRST, sid COLLATE \"C\"",
    )
    .bind(&sids)
    .fetch_all(&mut *conn)
    .await?;
    let recordings = rows
        .into_iter()
        .map(recording_of)
        .collect::<Result<Vec<_>, _>>()?;
    let rows: Vec<TranscriptRow> = sqlx::query_as(
        "SELECT kind, metadata, sentences, text FROM transcripts \
         WHERE call_sid = ANY($1) \
            OR recording_sid IN (SELECT sid FROM recordings WHERE call_sid = ANY($1)) \
         ORDER BY date_created NULLS FIRST, sid COLLATE \"C\"",
    )
    .bind(&sids)
    .fetch_all(&mut *conn)
    .await?;
    let transcripts = rows
        .into_iter()
        .map(transcript_of)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CallMedia {
        recordings,
        transcripts,
    })
}
