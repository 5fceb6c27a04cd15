//! The recording audio proxy: serves a recording's audio from Twilio (or
//! from an [`AudioCache`]) to the browser, answering HTTP Range requests so
//! that the `<audio>` element can seek.
//!
//! Twilio (and the simulator) answer a recording's media URL with the whole
//! file, ignoring `Range`. [`serve_recording_audio`] makes ranges work
//! anyway:
//!
//! * **without a cache**, each request fetches the recording from Twilio and
//!   passes on only the requested slice: the bytes before it are read and
//!   dropped, and reading stops at its end. Ranges need Twilio's
//!   `Content-Length`; a response without one is answered `200` with the
//!   whole file and `Accept-Ranges: none`.
//! * **with a cache**, the first request downloads the whole recording into
//!   the cache directory, then every request (that one included) is served
//!   from the file with a seek, without contacting Twilio again.
//!
//! Either way memory use is constant whatever the file's size: the body is
//! streamed chunk by chunk, never held whole.
//!
//! ## Ranges (RFC 9110 §14)
//!
//! The `Range` header is parsed by the `http-range-header` crate (the parser
//! tower-http's `ServeDir` uses). One range (`bytes=a-b`, `bytes=a-`,
//! `bytes=-n`) is answered `206 Partial Content` with `Content-Range: bytes
//! a-b/total`. A range that starts at or past the end is answered `416` with
//! `Content-Range: bytes */total`. A header that does not parse, and a
//! request for several ranges, are ignored: `200` with the whole file (the RFC
//! lets a server ignore `Range`; no browser asks an `<audio>` source for
//! several ranges). `If-Range` is honoured: the range is served only when its
//! value is this response's `ETag` (a strong validator made of the SID, the
//! format and the length: a recording's audio never changes).
//!
//! ## Failures
//!
//! [`AudioError`] answers JSON in the API's shape (`{"error": {"code",
//! "message", ...}}`): a recording Twilio does not have is `404`
//! `recording_gone` ([`AudioError::is_gone`] tells the caller, which can mark
//! the recording deleted); any other Twilio failure, including a stream that
//! breaks before the response starts, is `502` `twilio_error` with Twilio's
//! status, code and message. Once a response has started, a broken upstream
//! stream can only cut the body short (the connection is closed), which the
//! browser sees as a network error.

use std::io;
use std::ops::RangeInclusive;

use axum::body::Body;
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, IF_RANGE, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use callview_core::recording::RecordingSid;
use callview_core::twilio::{AudioFormat, RecordingAudio, TwilioClient, TwilioError};
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::audio_cache::{AudioCache, CachedAudio, FetchError, Fetched};
use crate::error::ApiError;

/// The `Cache-Control` of audio responses: the browser may keep a
/// recording's audio for a day (it never changes), but no shared cache may.
pub const AUDIO_CACHE_CONTROL: &str = "private, max-age=86400";

/// Size of the chunks read from a cached file.
const FILE_CHUNK: usize = 64 * 1024;

/// Why a recording's audio could not be served. Answers JSON (see
/// [`IntoResponse`]) in the API's error shape.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// Twilio does not have the recording (404): it was deleted there, or
    /// never existed. Answered `404` with code `recording_gone`.
    #[error("recording {sid} not found at Twilio (deleted there?)")]
    Gone {
        /// The recording asked for.
        sid: RecordingSid,
    },
    /// Twilio failed otherwise (an error status, a transport failure, a
    /// stream that broke before the response started). Answered `502` with
    /// code `twilio_error` and Twilio's reason.
    #[error("Twilio could not serve the audio of recording {sid}: {source}")]
    Upstream {
        /// The recording asked for.
        sid: RecordingSid,
        /// What Twilio (or the connection to it) said. Never holds a
        /// credential.
        source: TwilioError,
    },
}

impl AudioError {
    /// Maps a Twilio failure: not found is [`AudioError::Gone`].
    pub fn from_twilio(sid: &RecordingSid, error: TwilioError) -> Self {
        let not_found = match innermost(&error) {
            TwilioError::NotFound { .. } => true,
            TwilioError::Api { status, .. } => *status == 404,
            _ => false,
        };
        if not_found {
            Self::Gone { sid: sid.clone() }
        } else {
            Self::Upstream {
                sid: sid.clone(),
                source: error,
            }
        }
    }

    /// Whether Twilio said the recording does not exist (so the caller can
    /// mark it deleted).
    pub fn is_gone(&self) -> bool {
        matches!(self, Self::Gone { .. })
    }

    /// The HTTP status this error is answered with: 404 or 502.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Gone { .. } => StatusCode::NOT_FOUND,
            Self::Upstream { .. } => StatusCode::BAD_GATEWAY,
        }
    }

    /// The JSON body: `{"error": {"code", "message"}}`, plus for an upstream
    /// failure `"twilio": {"status", "code", "message"}` when Twilio answered
    /// with an error.
    pub fn body(&self) -> serde_json::Value {
        match self {
            Self::Gone { .. } => {
                json!({"error": {"code": "recording_gone", "message": self.to_string()}})
            }
            Self::Upstream { source, .. } => {
                let mut error = json!({"code": "twilio_error", "message": self.to_string()});
                let details = match innermost(source) {
                    TwilioError::Api {
                        status,
                        code,
                        message,
                        ..
                    } => Some(json!({"status": status, "code": code, "message": message})),
                    TwilioError::Unauthorized { status, message } => {
                        Some(json!({"status": status, "code": null, "message": message}))
                    }
                    _ => None,
                };
                if let (Some(details), Some(map)) = (details, error.as_object_mut()) {
                    map.insert("twilio".to_owned(), details);
                }
                json!({ "error": error })
            }
        }
    }
}

impl IntoResponse for AudioError {
    fn into_response(self) -> Response {
        if let Self::Upstream { sid, source } = &self {
            tracing::warn!(recording = %sid, error = %source, "recording audio: Twilio failed");
        }
        (self.status(), Json(self.body())).into_response()
    }
}

/// The last failure of a retried request.
fn innermost(error: &TwilioError) -> &TwilioError {
    match error {
        TwilioError::RetriesExhausted { last, .. } => innermost(last),
        other => other,
    }
}

/// Serves one recording's audio from Twilio (or the cache), answering
/// Range requests.
///
/// `request_headers` are the browser's (`Range`, `If-Range` are read). The
/// response carries Twilio's `Content-Type` (or `format`'s), `Accept-Ranges`,
/// `Content-Length` when known, `ETag`, [`AUDIO_CACHE_CONTROL`] and
/// `Content-Disposition: inline; filename="{sid}.{ext}"`. See the
/// [module documentation](self) for ranges, caching and failures. When the
/// cache's directory fails (a full disk), the request is served straight
/// from Twilio instead.
///
/// ```no_run
/// use axum::extract::{Path, State};
/// use axum::http::HeaderMap;
/// use axum::response::{IntoResponse, Response};
/// use callview_core::recording::RecordingSid;
/// use callview_core::twilio::{AudioFormat, TwilioClient};
/// use callview_server::audio::serve_recording_audio;
/// use std::sync::Arc;
///
/// async fn audio(
///     State(client): State<Arc<dyn TwilioClient>>,
///     Path(sid): Path<String>,
///     headers: HeaderMap,
/// ) -> Response {
///     let Some(sid) = RecordingSid::new(sid) else {
///         return axum::http::StatusCode::NOT_FOUND.into_response();
///     };
///     match serve_recording_audio(&*client, None, &sid, AudioFormat::Mp3, &headers).await {
///         Ok(response) => response,
///         Err(e) => {
///             if e.is_gone() { /* mark the recording deleted */ }
///             e.into_response()
///         }
///     }
/// }
/// ```
pub async fn serve_recording_audio(
    client: &dyn TwilioClient,
    cache: Option<&AudioCache>,
    sid: &RecordingSid,
    format: AudioFormat,
    request_headers: &HeaderMap,
) -> Result<Response, AudioError> {
    if let Some(cache) = cache {
        match cache.get_or_fetch(client, sid, format).await {
            Ok(Fetched::File(file)) => match serve_file(file, sid, format, request_headers).await {
                Ok(response) => return Ok(response),
                Err(e) => {
                    tracing::warn!(recording = %sid, error = %e, "audio cache: could not read a cached file; serving straight from Twilio");
                }
            },
            Ok(Fetched::TooLarge(audio)) => {
                return serve_upstream(audio, sid, format, request_headers).await;
            }
            Err(FetchError::Twilio(e)) => return Err(AudioError::from_twilio(sid, e)),
            Err(FetchError::Io(e)) => {
                tracing::warn!(recording = %sid, error = %e, "audio cache failed; serving straight from Twilio");
            }
        }
    }
    let audio = client
        .recording_audio(sid, format)
        .await
        .map_err(|e| AudioError::from_twilio(sid, e))?;
    serve_upstream(audio, sid, format, request_headers).await
}

/// What to answer, given the request's `Range` and the representation.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Plan {
    /// `200` with everything.
    Full,
    /// `206` with these bytes.
    Partial(RangeInclusive<u64>),
    /// `416`.
    Unsatisfiable,
}

/// Decides how to answer `headers` for a representation of `len` bytes
/// (`None`: unknown, so no ranges) whose `ETag` is `etag`.
fn plan(headers: &HeaderMap, len: Option<u64>, etag: Option<&HeaderValue>) -> Plan {
    let (Some(len), Some(range)) = (len, headers.get(RANGE)) else {
        return Plan::Full;
    };
    if let Some(if_range) = headers.get(IF_RANGE) {
        // A date, or another validator: the client's copy may differ.
        if etag != Some(if_range) {
            return Plan::Full;
        }
    }
    let Ok(range) = range.to_str() else {
        return Plan::Full;
    };
    let Ok(parsed) = http_range_header::parse_range_header(range) else {
        // Unparsable: ignored (RFC 9110 §14.2).
        return Plan::Full;
    };
    match parsed.validate(len) {
        Ok(ranges) => match ranges.as_slice() {
            [one] => Plan::Partial(one.clone()),
            // Several ranges (or an empty file): the whole file.
            _ => Plan::Full,
        },
        Err(http_range_header::RangeUnsatisfiableError::Unsatisfiable) => Plan::Unsatisfiable,
        // Too many or overlapping ranges: ignored.
        Err(_) => Plan::Full,
    }
}

/// The headers every successful answer carries.
fn base_headers(
    sid: &RecordingSid,
    format: AudioFormat,
    content_type: &str,
    len: Option<u64>,
    etag: Option<&HeaderValue>,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    // Twilio's type when it is audio; anything else (a storage host
    // answering `text/html`, say) is not rendered on this origin.
    let content_type = Some(content_type)
        .filter(|t| is_audio_type(t))
        .and_then(|t| HeaderValue::from_str(t).ok())
        .unwrap_or_else(|| HeaderValue::from_static(format.content_type()));
    headers.insert(CONTENT_TYPE, content_type);
    headers.insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        axum::http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    headers.insert(
        ACCEPT_RANGES,
        HeaderValue::from_static(if len.is_some() { "bytes" } else { "none" }),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(AUDIO_CACHE_CONTROL));
    // A SID is two letters and 32 hex digits: nothing to escape.
    if let Ok(disposition) = HeaderValue::from_str(&format!(
        "inline; filename=\"{sid}.{}\"",
        format.extension()
    )) {
        headers.insert(CONTENT_DISPOSITION, disposition);
    }
    if let Some(etag) = etag {
        headers.insert(ETAG, etag.clone());
    }
    headers
}

/// Whether a `Content-Type` is one audio may be served with: `audio/*`
/// or `application/octet-stream`.
fn is_audio_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("audio/") || essence == "application/octet-stream"
}

/// The strong validator of a recording's audio of `len` bytes.
fn etag(sid: &RecordingSid, format: AudioFormat, len: Option<u64>) -> Option<HeaderValue> {
    let len = len?;
    HeaderValue::from_str(&format!("\"{sid}-{}-{len}\"", format.extension())).ok()
}

/// Assembles a `200` or `206` (the body already sliced) or a `416`.
fn respond(plan: &Plan, mut headers: HeaderMap, len: Option<u64>, body: Body) -> Response {
    let (status, content_length) = match (plan, len) {
        (Plan::Partial(range), Some(total)) => {
            if let Ok(value) =
                HeaderValue::from_str(&format!("bytes {}-{}/{total}", range.start(), range.end()))
            {
                headers.insert(CONTENT_RANGE, value);
            }
            (StatusCode::PARTIAL_CONTENT, Some(range_len(range)))
        }
        (Plan::Unsatisfiable, Some(total)) => return unsatisfiable(headers, total),
        _ => (StatusCode::OK, len),
    };
    if let Some(n) = content_length {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
    }
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// `416` with `Content-Range: bytes */total` and a JSON explanation.
fn unsatisfiable(headers: HeaderMap, total: u64) -> Response {
    let mut response = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range_not_satisfiable",
        format!("the requested range is outside the recording's {total} bytes"),
    )
    .into_response();
    for name in [ACCEPT_RANGES, CACHE_CONTROL, ETAG] {
        if let Some(value) = headers.get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}")) {
        response.headers_mut().insert(CONTENT_RANGE, value);
    }
    response
}

fn range_len(range: &RangeInclusive<u64>) -> u64 {
    range.end() - range.start() + 1
}

/// Serves a local file (cached, or a temporary download): seeks to the
/// range's start and streams its length, in [`FILE_CHUNK`]s (one buffer of
/// that size at a time: constant memory).
async fn serve_file(
    cached: CachedAudio,
    sid: &RecordingSid,
    format: AudioFormat,
    request_headers: &HeaderMap,
) -> io::Result<Response> {
    let CachedAudio {
        mut file,
        len,
        content_type,
        temporary,
    } = cached;
    let etag = etag(sid, format, Some(len));
    let plan = plan(request_headers, Some(len), etag.as_ref());
    let headers = base_headers(sid, format, &content_type, Some(len), etag.as_ref());
    let (start, take) = match &plan {
        Plan::Partial(range) => (*range.start(), range_len(range)),
        Plan::Full => (0, len),
        Plan::Unsatisfiable => return Ok(unsatisfiable(headers, len)),
    };
    file.seek(io::SeekFrom::Start(start)).await?;
    let mut reader = file.take(take);
    // The first chunk is read before answering, so that the headers and the
    // first bytes leave together: written apart, a small answer (a seek's
    // probe of the last bytes) waits for a delayed ACK (~40 ms) on a
    // connection without TCP_NODELAY.
    let first_len = usize::try_from(take).map_or(FILE_CHUNK, |t| t.min(FILE_CHUNK));
    let mut first = vec![0; first_len];
    reader.read_exact(&mut first).await?;
    let body = if take <= first_len as u64 {
        // All of it: a complete body (a temporary file is deleted now).
        Body::from(first)
    } else {
        let rest = ReaderStream::with_capacity(reader, FILE_CHUNK);
        let body = stream::once(async move { Ok(Bytes::from(first)) })
            .chain(rest)
            // The temporary file (if any) lives as long as the body, then
            // is deleted.
            .map(move |chunk| {
                let _keep = &temporary;
                chunk
            });
        Body::from_stream(body)
    };
    Ok(respond(&plan, headers, Some(len), body))
}

/// Serves Twilio's response as it arrives: the requested slice, cut from the
/// stream. The first bytes are awaited before answering, so that a stream
/// that fails at once is answered `502` rather than cut short.
async fn serve_upstream(
    audio: RecordingAudio,
    sid: &RecordingSid,
    format: AudioFormat,
    request_headers: &HeaderMap,
) -> Result<Response, AudioError> {
    let RecordingAudio {
        content_type,
        content_length: len,
        mut body,
    } = audio;
    let content_type = content_type.unwrap_or_else(|| format.content_type().to_owned());
    let etag = etag(sid, format, len);
    let plan = plan(request_headers, len, etag.as_ref());
    let headers = base_headers(sid, format, &content_type, len, etag.as_ref());
    let (skip, take) = match (&plan, len) {
        (Plan::Unsatisfiable, Some(total)) => return Ok(unsatisfiable(headers, total)),
        (Plan::Partial(range), _) => (*range.start(), Some(range_len(range))),
        (_, len) => (0, len),
    };
    let first = loop {
        match body.next().await {
            Some(Err(e)) => return Err(AudioError::from_twilio(sid, e)),
            Some(Ok(chunk)) if chunk.is_empty() => continue,
            Some(Ok(chunk)) => break Some(chunk),
            None => break None,
        }
    };
    let whole = stream::iter(first.map(Ok)).chain(body).boxed();
    let body = match take {
        Some(take) => Body::from_stream(slice(whole, skip, take)),
        None => Body::from_stream(whole),
    };
    Ok(respond(&plan, headers, len, body))
}

/// The `take` bytes of `upstream` after its first `skip` bytes. Stops
/// reading upstream once they are passed on; ends with an error when
/// upstream ends first.
fn slice(
    upstream: BoxStream<'static, Result<Bytes, TwilioError>>,
    skip: u64,
    take: u64,
) -> impl futures::Stream<Item = io::Result<Bytes>> + Send + 'static {
    struct State {
        upstream: BoxStream<'static, Result<Bytes, TwilioError>>,
        skip: u64,
        remaining: u64,
    }
    stream::unfold(
        Some(State {
            upstream,
            skip,
            remaining: take,
        }),
        |state| async move {
            let mut state = state?;
            while state.remaining > 0 {
                match state.upstream.next().await {
                    None => {
                        let error = io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "Twilio's audio stream ended before the announced length",
                        );
                        return Some((Err(error), None));
                    }
                    Some(Err(e)) => return Some((Err(io::Error::other(e)), None)),
                    Some(Ok(mut chunk)) => {
                        let n = chunk.len() as u64;
                        if state.skip >= n {
                            state.skip -= n;
                            continue;
                        }
                        // `skip` < n ≤ usize::MAX here, and `remaining` is
                        // only cut to below `chunk.len()`.
                        let from = usize::try_from(state.skip).unwrap_or(chunk.len());
                        state.skip = 0;
                        let mut chunk = chunk.split_off(from);
                        if (chunk.len() as u64) > state.remaining {
                            chunk.truncate(usize::try_from(state.remaining).unwrap_or(0));
                        }
                        state.remaining -= chunk.len() as u64;
                        if chunk.is_empty() {
                            continue;
                        }
                        return Some((Ok(chunk), Some(state)));
                    }
                }
            }
            None
        },
    )
}
