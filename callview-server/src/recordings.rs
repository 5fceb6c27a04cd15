//! Recordings in the API: `metadata.recordings` of a message, and
//! `GET /api/recordings/{sid}` (one recording with its transcripts). The
//! audio itself is served by [`crate::audio`] at the URL each entry names:
//! a path on this server, never Twilio's URL, so the browser never needs
//! Twilio's credentials.

use std::collections::HashMap;

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use callview_core::model::media::recording_path;
use callview_core::model::MediaBatch;
use callview_core::model::{Interaction, StoredRecording};
use callview_core::recording::{RecordingSid, RecordingStatus, Sentence, Transcript};
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
        // Only a completed recording has audio to play.
        url: (!deleted && r.status == RecordingStatus::Completed).then(|| recording_path(&r.sid)),
        transcripts: own.into_iter().map(transcript_json).collect(),
    }
}

/// The recordings of each interaction of a page (root and legs, oldest
/// first), by root call SID.
pub fn by_interaction<'a>(
    interactions: impl IntoIterator<Item = &'a Interaction>,
    media: &CallMedia,
) -> HashMap<String, Vec<RecordingJson>> {
    let mut of_call: HashMap<&str, Vec<&StoredRecording>> = HashMap::new();
    for r in &media.recordings {
        if let Some(call) = &r.recording.call_sid {
            of_call.entry(call.as_str()).or_default().push(r);
        }
    }
    interactions
        .into_iter()
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

/// Adds their recordings to messages built from `interactions` (in the
/// same order): one read for all of them.
pub async fn attach(
    state: &AppState,
    interactions: &[&Interaction],
    messages: Vec<&mut crate::views::MessageJson>,
) -> Result<(), ApiError> {
    let calls: Vec<callview_core::CallSid> = interactions
        .iter()
        .flat_map(|i| std::iter::once(&i.root).chain(&i.legs))
        .map(|c| c.call.sid.clone())
        .collect();
    if calls.is_empty() {
        return Ok(());
    }
    let media = state.store().media_of_calls(&calls).await?;
    let mut recordings = by_interaction(interactions.iter().copied(), &media);
    for (interaction, message) in interactions.iter().zip(messages) {
        let own = recordings
            .remove(interaction.root.call.sid.as_str())
            .unwrap_or_default();
        message.set_recordings(own);
    }
    Ok(())
}

/// What the API shows for a stored `recording_url`: this server's path.
/// Rows adopted from the original application may hold Twilio's URL of
/// the recording: it becomes this server's path for the same SID (played
/// by asking Twilio); a URL naming no recording SID is not shown. The
/// browser never gets a Twilio URL.
///
/// ```
/// use callview_server::recordings::served_url;
/// let sid = "RE0123456789abcdef0123456789abcdef";
/// assert_eq!(served_url(&format!("/api/recordings/{sid}/audio")).unwrap(), format!("/api/recordings/{sid}/audio"));
/// assert_eq!(
///     served_url(&format!("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/{sid}.mp3")).unwrap(),
///     format!("/api/recordings/{sid}/audio")
/// );
/// assert_eq!(served_url("https://api.twilio.com/rec/RE1"), None);
/// ```
pub fn served_url(stored: &str) -> Option<String> {
    if stored.starts_with("/api/recordings/") {
        return Some(stored.to_owned());
    }
    let bytes = stored.as_bytes();
    (0..bytes.len().saturating_sub(33)).find_map(|i| {
        let sid = stored.get(i..i + 34)?;
        sid.starts_with("RE")
            .then(|| RecordingSid::new(sid))
            .flatten()
            .map(|sid| recording_path(&sid))
    })
}

/// The newest playable recording of a list (oldest first), as its URL.
pub fn newest_url(recordings: &[RecordingJson]) -> Option<String> {
    recordings.iter().rev().find_map(|r| r.url.clone())
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
    let Some(source) = state.recordings() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "recordings_unavailable",
            "this server has no Twilio account to fetch recordings from",
        ));
    };
    let stored = match state.store().recording(&sid).await {
        Ok(stored) => stored,
        // Not synced (yet): a database adopted from the original
        // application names recordings no sync window covered. Ask Twilio,
        // and keep what it says.
        Err(callview_core::StoreError::NotFound(_)) => {
            let recording = match source.client.fetch_recording(&sid).await {
                Ok(recording) => recording,
                Err(callview_core::TwilioError::NotFound { .. }) => {
                    return Err(ApiError::not_found(format!("no recording {sid}")))
                }
                Err(e) => return Ok(crate::audio::AudioError::from_twilio(&sid, e).into_response()),
            };
            write_media(
                &state,
                MediaBatch {
                    recordings: vec![recording.clone()],
                    ..MediaBatch::default()
                },
            )
            .await;
            StoredRecording {
                recording,
                deleted_at: None,
            }
        }
        Err(e) => return Err(e.into()),
    };
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
    if stored.recording.status != RecordingStatus::Completed {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "recording_not_ready",
            format!(
                "recording {sid} has no audio yet (Twilio's status: {})",
                stored.recording.status
            ),
        ));
    }
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
        Err(e) if e.is_gone() => {
            // The audio is gone; is the recording? Only Twilio's own answer
            // for the recording marks it deleted (a storage host's 404 or a
            // recording still being processed does not).
            match source.client.fetch_recording(&sid).await {
                Err(callview_core::TwilioError::NotFound { .. }) => {
                    if let Some(cache) = &source.cache {
                        cache.remove_recording(&sid).await;
                    }
                    write_media(
                        &state,
                        MediaBatch {
                            gone: vec![sid.clone()],
                            ..MediaBatch::default()
                        },
                    )
                    .await;
                    Ok(e.into_response())
                }
                other => {
                    if let Ok(recording) = other {
                        write_media(
                            &state,
                            MediaBatch {
                                recordings: vec![recording],
                                ..MediaBatch::default()
                            },
                        )
                        .await;
                    }
                    Err(ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "audio_unavailable",
                        format!("Twilio has recording {sid} but served no audio for it"),
                    ))
                }
            }
        }
        Err(e) => Ok(e.into_response()),
    }
}

/// Writes what Twilio just said about a recording (a version fetched, or
/// that it is gone), through the same planner and transaction as the
/// sync; a failure is logged (the answer does not depend on it).
async fn write_media(state: &AppState, batch: MediaBatch) {
    let result = async {
        let tx = state.store().begin_ingest().await?;
        callview_core::sync::write_media_in(tx, batch).await
    }
    .await;
    match result {
        Ok(written) if !written.is_empty() => {
            if written.deleted > 0 {
                tracing::info!(
                    deleted = written.deleted,
                    "Twilio no longer has a recording: marked deleted"
                );
            }
            state
                .events()
                .publish(crate::events::ServerEvent::changed(0, 1));
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not store what Twilio said about a recording"),
    }
}

/// `POST /api/session`: sets the cookie that lets the viewer's audio
/// element play recordings ([`crate::media_cookie`]), for the caller's
/// token (revoking it ends the cookie too); it needs a token like the rest
/// of the API. When the API is open there is nothing to set.
pub async fn start_session(
    State(state): State<AppState>,
    caller: Option<axum::Extension<crate::auth::Caller>>,
    OriginalUri(original): OriginalUri,
) -> Result<Response, ApiError> {
    // An open API's caller has no name: no cookie is needed.
    let Some(subject) = caller.and_then(|axum::Extension(c)| c.name) else {
        return Ok(Json(serde_json::json!({"media_cookie": false})).into_response());
    };
    let key = crate::auth::media_key(&state).await?;
    let now = chrono::Utc::now();
    let value = crate::media_cookie::issue(&key, &subject, now);
    // Under a prefix (the router nested at `/calls`), the cookie's path is
    // the prefixed one the browser asks for audio at.
    let prefix = original
        .path()
        .strip_suffix("/api/session")
        .unwrap_or("")
        .to_owned();
    let mut response = Json(serde_json::json!({
        "media_cookie": true,
        "expires_at": iso(now + crate::media_cookie::LIFETIME),
    }))
    .into_response();
    if let Ok(header) = HeaderValue::from_str(&crate::media_cookie::set_cookie(&value, &prefix)) {
        response.headers_mut().insert(header::SET_COOKIE, header);
    }
    Ok(response)
}
