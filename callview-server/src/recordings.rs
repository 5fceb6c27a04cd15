//! Recordings in the API: `metadata.recordings` of a message, and
//! `GET /api/recordings/{sid}` (one recording with its transcripts). The
//! audio itself is served by [`crate::audio`] at the URL each entry names:
//! a path on this server, never Twilio's URL, so the browser never needs
//! Twilio's credentials.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use callview_core::model::media::recording_path;
use callview_core::model::MediaBatch;
use callview_core::model::{Interaction, StoredRecording};
use callview_core::recording::{RecordingSid, Sentence, Transcript, TranscriptStatus};
use callview_core::store::CallMedia;
use callview_core::twilio::AudioFormat;
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;
use crate::views::iso;

/// One recording as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordingJson {
    /// `RE...`.
    pub sid: String,
    /// The call (root or leg) it recorded.
    pub call_sid: Option<String>,
    /// Seconds; `null` while Twilio is still processing it.
    pub duration: Option<u32>,
    /// 1 or 2.
    pub channels: Option<u8>,
    /// Twilio's status (`completed`, `processing`, ...), or `deleted` once
    /// Twilio no longer has it.
    pub status: String,
    /// What made it (`DialVerb`, `RecordVerb`, ...).
    pub source: Option<String>,
    /// ISO 8601.
    pub start_time: Option<String>,
    /// ISO 8601.
    pub date_created: Option<String>,
    /// Cost as Twilio wrote it.
    pub price: Option<String>,
    /// Currency of `price`.
    pub price_unit: Option<String>,
    /// Where to play it: a path on this server; `null` once deleted.
    pub url: Option<String>,
    /// Its transcripts, newest first.
    pub transcripts: Vec<TranscriptJson>,
}

/// One transcript (either of Twilio's products).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TranscriptJson {
    /// `TR...` or `GT...`.
    pub sid: String,
    /// `legacy` or `intelligence`.
    pub kind: &'static str,
    /// Twilio's status.
    pub status: String,
    /// `en-US`, ...
    pub language_code: Option<String>,
    /// The whole text.
    pub text: String,
    /// Sentence by sentence, with the speaker's channel and times in
    /// seconds (empty for legacy transcriptions).
    pub sentences: Vec<Sentence>,
}

fn transcript_json(t: &Transcript) -> TranscriptJson {
    TranscriptJson {
        sid: t.sid.clone(),
        kind: t.kind.as_str(),
        status: t.status.as_str().to_owned(),
        language_code: t.language_code.clone(),
        text: t.text.clone(),
        sentences: t.sentences.clone(),
    }
}

/// A stored recording with the transcripts among `transcripts` that are
/// its own, newest first.
pub fn recording_json(stored: &StoredRecording, transcripts: &[Transcript]) -> RecordingJson {
    let r = &stored.recording;
    let mut own: Vec<&Transcript> = transcripts
        .iter()
        .filter(|t| t.recording_sid.as_ref() == Some(&r.sid))
        .collect();
    own.sort_by(|a, b| (b.date_created, &b.sid).cmp(&(a.date_created, &a.sid)));
    let deleted = stored.deleted_at.is_some();
    RecordingJson {
        sid: r.sid.to_string(),
        call_sid: r.call_sid.as_ref().map(ToString::to_string),
        duration: r.duration,
        channels: r.channels,
        status: if deleted {
            "deleted".to_owned()
        } else {
            r.status.as_str().to_owned()
        },
        source: r.source.as_ref().map(|s| s.as_str().to_owned()),
        start_time: r.start_time.map(iso),
        date_created: r.date_created.map(iso),
        price: r.price.map(|p| p.to_string()),
        price_unit: r.price_unit.clone(),
        url: (!deleted).then(|| recording_path(&r.sid)),
        transcripts: own.into_iter().map(transcript_json).collect(),
    }
}

/// The recordings of each interaction of a page (root and legs, oldest
/// first), by root call SID.
pub fn by_interaction(
    interactions: &[Interaction],
    media: &CallMedia,
) -> HashMap<String, Vec<RecordingJson>> {
    let mut of_call: HashMap<&str, Vec<&StoredRecording>> = HashMap::new();
    for r in &media.recordings {
        if let Some(call) = &r.recording.call_sid {
            of_call.entry(call.as_str()).or_default().push(r);
        }
    }
    interactions
        .iter()
        .map(|i| {
            let mut list: Vec<&StoredRecording> = std::iter::once(&i.root)
                .chain(&i.legs)
                .flat_map(|c| {
                    of_call
                        .get(c.call.sid.as_str())
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            list.sort_by(|a, b| {
                (a.recording.date_created, &a.recording.sid)
                    .cmp(&(b.recording.date_created, &b.recording.sid))
            });
            let json = list
                .into_iter()
                .map(|r| recording_json(r, &media.transcripts))
                .collect();
            (i.root.call.sid.to_string(), json)
        })
        .collect()
}

/// The newest playable recording of a list (oldest first), as its URL.
pub fn newest_url(recordings: &[RecordingJson]) -> Option<String> {
    recordings.iter().rev().find_map(|r| r.url.clone())
}

/// Whether a transcript is worth showing (completed, with text).
pub fn is_shown(t: &TranscriptJson) -> bool {
    t.status == TranscriptStatus::Completed.as_str() && !t.text.is_empty()
}

/// `GET /api/recordings/{sid}`: one recording with its transcripts.
pub async fn get_recording(
    State(state): State<AppState>,
    Path(sid): Path<String>,
) -> Result<Json<RecordingJson>, ApiError> {
    let sid = parse_sid(&sid)?;
    let stored = state.store().recording(&sid).await?;
    let media = match &stored.recording.call_sid {
        Some(call) => {
            state
                .store()
                .media_of_calls(std::slice::from_ref(call))
                .await?
        }
        None => CallMedia::default(),
    };
    Ok(Json(recording_json(&stored, &media.transcripts)))
}

/// A recording SID from a path, or a 400 naming the problem.
pub fn parse_sid(text: &str) -> Result<RecordingSid, ApiError> {
    RecordingSid::new(text).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_recording_sid",
            format!("{text:?} is not a recording SID (RE followed by 32 hex digits)"),
        )
    })
}

/// `GET /api/recordings/{sid}/audio?format=mp3|wav`: the recording's audio,
/// streamed from Twilio with the server's credentials (see
/// [`crate::audio`]), HTTP ranges answered. An unknown recording is a
/// JSON 404; one Twilio no longer has is marked deleted (in one
/// [`IngestTx`](callview_core::store::IngestTx)) and answered 404.
pub async fn get_audio(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let sid = parse_sid(&sid)?;
    let params = crate::params::QueryParams::parse(query.as_deref())?;
    let format = match params.get("format").map(str::trim) {
        None | Some("") => AudioFormat::Mp3,
        Some(text) => AudioFormat::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_parameter",
                format!("`format` must be mp3 or wav; got {text:?}"),
            )
        })?,
    };
    let stored = state.store().recording(&sid).await?;
    if let Some(at) = stored.deleted_at {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "recording_gone",
            format!(
                "recording {sid} was deleted at Twilio (noticed {})",
                iso(at)
            ),
        ));
    }
    let Some(source) = state.recordings() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "recordings_unavailable",
            "this server has no Twilio account to fetch recordings from",
        ));
    };
    match crate::audio::serve_recording_audio(
        source.client.as_ref(),
        source.cache.as_ref(),
        &sid,
        format,
        &headers,
    )
    .await
    {
        Ok(response) => Ok(response),
        Err(e) => {
            if e.is_gone() {
                if let Some(cache) = &source.cache {
                    cache.remove_recording(&sid).await;
                }
                mark_deleted(&state, &sid).await;
            }
            Ok(e.into_response())
        }
    }
}

/// Marks a recording Twilio answered 404 for as deleted, through the same
/// planner and transaction as the sync; a failure is logged (the answer is
/// a 404 either way).
async fn mark_deleted(state: &AppState, sid: &RecordingSid) {
    let result = async {
        let mut tx = state.store().begin_ingest().await?;
        let plan = callview_core::sync::plan_media_in(
            tx.as_mut(),
            MediaBatch {
                gone: vec![sid.clone()],
                ..MediaBatch::default()
            },
        )
        .await?;
        let changed = !plan.is_empty();
        tx.apply_media(plan).await?;
        tx.commit().await?;
        Ok::<_, callview_core::StoreError>(changed)
    }
    .await;
    match result {
        Ok(true) => {
            tracing::info!(recording = %sid, "Twilio no longer has this recording: marked deleted");
            state
                .events()
                .publish(crate::events::ServerEvent::changed(0, 1));
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(recording = %sid, error = %e, "could not mark a recording deleted")
        }
    }
}

/// `POST /api/session`: sets the cookie that lets the viewer's audio
/// element play recordings ([`crate::media_cookie`]); it needs the bearer
/// token like the rest of the API. Without an API token there is nothing
/// to set.
pub async fn start_session(State(state): State<AppState>) -> Response {
    let Some(check) = state.token_check() else {
        return Json(serde_json::json!({"media_cookie": false})).into_response();
    };
    let now = chrono::Utc::now();
    let value = crate::media_cookie::issue(check.media_key(), now);
    let mut response = Json(serde_json::json!({
        "media_cookie": true,
        "expires_at": iso(now + crate::media_cookie::LIFETIME),
    }))
    .into_response();
    if let Ok(header) = HeaderValue::from_str(&crate::media_cookie::set_cookie(&value)) {
        response.headers_mut().insert(header::SET_COOKIE, header);
    }
    response
}
