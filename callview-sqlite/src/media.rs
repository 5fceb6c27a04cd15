//! Recordings and transcripts: the statements behind `IngestTx::load_media`,
//! `recordings_created_between`, `apply_media`, and the reads
//! `Store::recording` and `Store::media_of_calls`.

use callview_core::call::CallSid;
use callview_core::model::{MediaPlan, StoredRecording};
use callview_core::recording::{Recording, RecordingSid, Sentence, Transcript, TranscriptKind};
use callview_core::store::{CallMedia, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::queries::{db, json_array};
use crate::time;

/// The newest recording Twilio still has, as the server path that plays
/// it, and the newest completed transcript of a call's recordings (or of
/// the call), written into the seed's `messages` columns for the calls
/// named in `?1` (a JSON array) that have any recording or transcript.
const REFRESH_CALL_COLUMNS: &str = "
    UPDATE messages SET
        recording_url = (
            SELECT '/api/recordings/' || r.sid || '/audio' FROM recordings r
            WHERE r.call_sid = messages.twilio_sid AND r.deleted_at IS NULL
              AND r.status = 'completed'
            ORDER BY r.date_created DESC, r.sid DESC LIMIT 1),
        transcription_text = (
            SELECT t.text FROM transcripts t
            WHERE t.status = 'completed' AND t.text <> ''
              AND (t.call_sid = messages.twilio_sid
                   OR t.recording_sid IN (SELECT r.sid FROM recordings r
                                          WHERE r.call_sid = messages.twilio_sid
                                            AND r.deleted_at IS NULL))
            ORDER BY t.date_created DESC, t.sid DESC LIMIT 1)
    WHERE twilio_sid IN (
        SELECT call_sid FROM recordings WHERE call_sid IN (SELECT value FROM json_each(?1))
        UNION
        SELECT call_sid FROM transcripts WHERE call_sid IN (SELECT value FROM json_each(?1)))";

/// Sets `recording_url` and `transcription_text` of the calls `sids` that
/// have media (see [`REFRESH_CALL_COLUMNS`]).
pub(crate) fn refresh_call_columns<'a>(
    conn: &Connection,
    sids: impl IntoIterator<Item = &'a str>,
) -> Result<(), StoreError> {
    let sids = json_array(sids);
    if sids == "[]" {
        return Ok(());
    }
    conn.prepare_cached(REFRESH_CALL_COLUMNS)
        .map_err(db("attaching recordings to their calls"))?
        .execute([sids])
        .map_err(db("attaching recordings to their calls"))?;
    Ok(())
}

/// `IngestTx::apply_media`.
pub(crate) fn apply_media(conn: &Connection, plan: &MediaPlan) -> Result<(), StoreError> {
    let now = time::format(&time::now());
    let mut calls: Vec<String> = Vec::new();
    for write in &plan.recordings {
        let r = &write.recording;
        let what = || format!("writing recording {}", r.sid);
        conn.prepare_cached(
            "INSERT INTO recordings (sid, call_sid, conference_sid, channels, status, source,
                                     duration, start_time, date_created, date_updated, price,
                                     price_unit, error_code, deleted_at, metadata,
                                     created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16)
             ON CONFLICT (sid) DO UPDATE SET
                 call_sid = excluded.call_sid, conference_sid = excluded.conference_sid,
                 channels = excluded.channels, status = excluded.status,
                 source = excluded.source, duration = excluded.duration,
                 start_time = excluded.start_time, date_created = excluded.date_created,
                 date_updated = excluded.date_updated, price = excluded.price,
                 price_unit = excluded.price_unit, error_code = excluded.error_code,
                 deleted_at = excluded.deleted_at, metadata = excluded.metadata,
                 updated_at = excluded.updated_at",
        )
        .map_err(db(what()))?
        .execute(params![
            r.sid.as_str(),
            r.call_sid.as_ref().map(CallSid::as_str),
            r.conference_sid,
            r.channels,
            r.status.as_str(),
            r.source.as_ref().map(|s| s.as_str()),
            r.duration,
            r.start_time.as_ref().map(time::format),
            r.date_created.as_ref().map(time::format),
            r.date_updated.as_ref().map(time::format),
            r.price.map(|p| p.to_string()),
            r.price_unit,
            r.error_code,
            write.deleted_at.as_ref().map(time::format),
            r.raw.to_string(),
            now,
        ])
        .map_err(db(what()))?;
        calls.extend(r.call_sid.as_ref().map(ToString::to_string));
    }
    for (sid, at) in &plan.deleted {
        let what = || format!("marking recording {sid} deleted");
        let call: Option<Option<String>> = conn
            .prepare_cached(
                "UPDATE recordings SET deleted_at = ?2, updated_at = ?3
                 WHERE sid = ?1 AND deleted_at IS NULL RETURNING call_sid",
            )
            .map_err(db(what()))?
            .query_row(params![sid.as_str(), time::format(at), now], |r| r.get(0))
            .optional()
            .map_err(db(what()))?;
        calls.extend(call.flatten());
    }
    for t in &plan.transcripts {
        let what = || format!("writing transcript {}", t.sid);
        let sentences = serde_json::to_string(&t.sentences)
            .map_err(|e| StoreError::Invalid(format!("transcript {}: {e}", t.sid)))?;
        conn.prepare_cached(
            "INSERT INTO transcripts (sid, kind, recording_sid, call_sid, status, language_code,
                                      text, sentences, date_created, date_updated, metadata,
                                      created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)
             ON CONFLICT (sid) DO UPDATE SET
                 kind = excluded.kind, recording_sid = excluded.recording_sid,
                 call_sid = excluded.call_sid, status = excluded.status,
                 language_code = excluded.language_code, text = excluded.text,
                 sentences = excluded.sentences, date_created = excluded.date_created,
                 date_updated = excluded.date_updated, metadata = excluded.metadata,
                 updated_at = excluded.updated_at",
        )
        .map_err(db(what()))?
        .execute(params![
            t.sid,
            t.kind.as_str(),
            t.recording_sid.as_ref().map(RecordingSid::as_str),
            t.call_sid.as_ref().map(CallSid::as_str),
            t.status.as_str(),
            t.language_code,
            t.text,
            sentences,
            t.date_created.as_ref().map(time::format),
            t.date_updated.as_ref().map(time::format),
            t.raw.to_string(),
            now,
        ])
        .map_err(db(what()))?;
        match (&t.call_sid, &t.recording_sid) {
            (Some(call), _) => calls.push(call.to_string()),
            (None, Some(recording)) => {
                let call: Option<Option<String>> = conn
                    .prepare_cached("SELECT call_sid FROM recordings WHERE sid = ?1")
                    .map_err(db(what()))?
                    .query_row([recording.as_str()], |r| r.get(0))
                    .optional()
                    .map_err(db(what()))?;
                calls.extend(call.flatten());
            }
            (None, None) => {}
        }
    }
    calls.sort();
    calls.dedup();
    refresh_call_columns(conn, calls.iter().map(String::as_str))
}

/// `IngestTx::load_media`.
pub(crate) fn load_media(
    conn: &Connection,
    recordings: &[RecordingSid],
    transcripts: &[String],
) -> Result<(Vec<StoredRecording>, Vec<Transcript>), StoreError> {
    let what = "reading stored recordings";
    let mut stmt = conn
        .prepare_cached(
            "SELECT metadata, deleted_at FROM recordings
             WHERE sid IN (SELECT value FROM json_each(?1)) ORDER BY sid",
        )
        .map_err(db(what))?;
    let stored = stmt
        .query_map(
            [json_array(recordings.iter().map(RecordingSid::as_str))],
            |row| Ok(recording_row(row)),
        )
        .map_err(db(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db(what))?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let what = "reading stored transcripts";
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {TRANSCRIPT_COLUMNS} FROM transcripts
             WHERE sid IN (SELECT value FROM json_each(?1)) ORDER BY sid"
        ))
        .map_err(db(what))?;
    let stored_t = stmt
        .query_map(
            [json_array(transcripts.iter().map(String::as_str))],
            |row| Ok(transcript_row(row)),
        )
        .map_err(db(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db(what))?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok((stored, stored_t))
}

/// `IngestTx::recordings_created_between`.
pub(crate) fn recordings_created_between(
    conn: &Connection,
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
) -> Result<Vec<RecordingSid>, StoreError> {
    let what = "listing stored recordings of a window";
    let mut stmt = conn
        .prepare_cached(
            "SELECT sid FROM recordings
             WHERE deleted_at IS NULL
               AND (?1 IS NULL OR date_created > ?1)
               AND (?2 IS NULL OR date_created < ?2)
             ORDER BY sid",
        )
        .map_err(db(what))?;
    let sids = stmt
        .query_map(
            params![
                after.as_ref().map(time::format),
                before.as_ref().map(time::format)
            ],
            |row| row.get::<_, String>(0),
        )
        .map_err(db(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db(what))?;
    Ok(sids.into_iter().filter_map(RecordingSid::new).collect())
}

/// `Store::unfinished_media_since`.
pub(crate) fn unfinished_media_since(
    conn: &Connection,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let what = "finding unfinished recordings and transcripts";
    let oldest: Option<String> = conn
        .prepare_cached(
            "SELECT min(d) FROM (
                 SELECT min(date_created) AS d FROM recordings
                 WHERE deleted_at IS NULL AND status NOT IN ('completed', 'absent', 'deleted')
                 UNION ALL
                 SELECT min(date_created) FROM transcripts
                 WHERE status NOT IN ('completed', 'failed', 'canceled'))",
        )
        .map_err(db(what))?
        .query_row([], |r| r.get(0))
        .map_err(db(what))?;
    Ok(oldest.as_deref().and_then(time::parse))
}

/// `Store::recording`.
pub(crate) fn recording(
    conn: &Connection,
    sid: &RecordingSid,
) -> Result<StoredRecording, StoreError> {
    let what = format!("reading recording {sid}");
    conn.prepare_cached("SELECT metadata, deleted_at FROM recordings WHERE sid = ?1")
        .map_err(db(what.clone()))?
        .query_row([sid.as_str()], |row| Ok(recording_row(row)))
        .optional()
        .map_err(db(what))?
        .ok_or_else(|| StoreError::NotFound(format!("recording {sid}")))?
}

/// `Store::media_of_calls`.
pub(crate) fn media_of_calls(conn: &Connection, sids: &[CallSid]) -> Result<CallMedia, StoreError> {
    if sids.is_empty() {
        return Ok(CallMedia::default());
    }
    let list = json_array(sids.iter().map(CallSid::as_str));
    let what = "reading the recordings of calls";
    let mut stmt = conn
        .prepare_cached(
            "SELECT metadata, deleted_at FROM recordings
             WHERE call_sid IN (SELECT value FROM json_each(?1))
             ORDER BY date_created, sid",
        )
        .map_err(db(what))?;
    let recordings = stmt
        .query_map([&list], |row| Ok(recording_row(row)))
        .map_err(db(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db(what))?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let what = "reading the transcripts of calls";
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {TRANSCRIPT_COLUMNS} FROM transcripts
             WHERE call_sid IN (SELECT value FROM json_each(?1))
                OR recording_sid IN (SELECT sid FROM recordings
                                     WHERE call_sid IN (SELECT value FROM json_each(?1)))
             ORDER BY date_created, sid"
        ))
        .map_err(db(what))?;
    let transcripts = stmt
        .query_map([&list], |row| Ok(transcript_row(row)))
        .map_err(db(what))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db(what))?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CallMedia {
        recordings,
        transcripts,
    })
}

const TRANSCRIPT_COLUMNS: &str = "kind, metadata, sentences, text";

fn corrupt(what: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("a stored {what} cannot be read: {reason}"))
}

/// A row of `SELECT metadata, deleted_at FROM recordings`.
fn recording_row(row: &Row<'_>) -> Result<StoredRecording, StoreError> {
    let metadata: String = row.get(0).map_err(db("reading a recording"))?;
    let deleted_at: Option<String> = row.get(1).map_err(db("reading a recording"))?;
    let raw: serde_json::Value =
        serde_json::from_str(&metadata).map_err(|e| corrupt("recording", e))?;
    Ok(StoredRecording {
        recording: Recording::from_value(raw).map_err(|e| corrupt("recording", e))?,
        deleted_at: deleted_at.as_deref().and_then(time::parse),
    })
}

/// A row of `SELECT {TRANSCRIPT_COLUMNS} FROM transcripts`.
fn transcript_row(row: &Row<'_>) -> Result<Transcript, StoreError> {
    let what = "reading a transcript";
    let kind: String = row.get(0).map_err(db(what))?;
    let metadata: String = row.get(1).map_err(db(what))?;
    let sentences: String = row.get(2).map_err(db(what))?;
    let text: String = row.get(3).map_err(db(what))?;
    let raw: serde_json::Value =
        serde_json::from_str(&metadata).map_err(|e| corrupt("transcript", e))?;
    let sentences: Vec<Sentence> =
        serde_json::from_str(&sentences).map_err(|e| corrupt("transcript", e))?;
    let kind = TranscriptKind::parse(&kind)
        .ok_or_else(|| corrupt("transcript", format!("unknown kind {kind:?}")))?;
    Transcript::from_stored(kind, raw, sentences, text).map_err(|e| corrupt("transcript", e))
}
