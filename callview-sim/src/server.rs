//! Twilio's REST API over HTTP, served from a [`SimulatedTwilio`]: the
//! same paths, query parameters, envelopes, records and error bodies as
//! `api.twilio.com`, plus injectable faults.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use callview_core::call::{format_rfc2822, Call, CallSid};
use callview_core::twilio::{AudioFormat, MAX_PAGE_SIZE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::client::SimulatedTwilio;
use crate::media::{storage_signature, ListKind, MediaPage, MediaQuery};
use crate::query::{encode_component, ListQuery, DEFAULT_PAGE_SIZE};
use crate::texts::{SendRequest, TextQuery, MEDIA_CONTENT_TYPE};

/// How the simulated API server behaves. The default: no authentication,
/// no latency, no faults.
///
/// `Debug` never shows the password.
#[derive(Clone, Default, PartialEq)]
pub struct ServerOptions {
    /// When set, every request needs HTTP Basic auth with this user and
    /// password; otherwise it gets a 401 with Twilio's error 20003.
    pub credentials: Option<(String, String)>,
    /// Delay added to every request (each is one page).
    pub latency_per_page: Duration,
    /// When `Some(n)`, every n-th authenticated request gets a 429 (error
    /// 20429) and is not processed.
    pub fail_every_nth_with_429: Option<u32>,
    /// Share (0..=1) of authenticated requests answered with a 500 or 503,
    /// chosen by an RNG seeded from the account's seed (deterministic for
    /// a given request order).
    pub error_rate_5xx: f64,
}

impl fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerOptions")
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|(user, _)| (user, "[redacted]")),
            )
            .field("latency_per_page", &self.latency_per_page)
            .field("fail_every_nth_with_429", &self.fail_every_nth_with_429)
            .field("error_rate_5xx", &self.error_rate_5xx)
            .finish()
    }
}

#[derive(Clone)]
struct AppState {
    sim: SimulatedTwilio,
    options: Arc<ServerOptions>,
    requests: Arc<AtomicU64>,
    rng: Arc<Mutex<StdRng>>,
}

/// The simulated Twilio REST API for `sim`:
///
/// * `GET /2010-04-01/Accounts/{AccountSid}.json`
/// * `GET /2010-04-01/Accounts/{AccountSid}/Calls.json` with `PageSize`,
///   `Page`, `PageToken`, `StartTime>`, `StartTime<`, `StartTime`,
///   `EndTime>`, `EndTime<`, `EndTime`, `Status`, `ParentCallSid`, `To`,
///   `From` (unknown parameters are ignored, as Twilio does)
/// * `GET .../Calls/{CallSid}.json`, `GET .../Calls/{CallSid}/Recordings.json`
/// * `GET .../IncomingPhoneNumbers.json`
/// * `GET .../Recordings.json` with `DateCreated>`, `DateCreated<`,
///   `DateCreated`, `CallSid`, `PageSize`, `Page`, `PageToken` (newest
///   first by `date_created`; late recordings appear once the account's
///   clock passes their `date_created`, deleted ones disappear),
///   `GET .../Calls/{CallSid}/Recordings.json`,
///   `GET .../Recordings/{RecordingSid}.json`
/// * the audio: `GET .../Recordings/{RecordingSid}` (WAV, Twilio's
///   default), `.wav` (`audio/x-wav`) and `.mp3` (`audio/mpeg`), whole
///   files with `Content-Length` (no ranges); 404 while processing or once
///   deleted. For about a third of the recordings
///   ([`SimulatedAccount::audio_redirects`](crate::SimulatedAccount::audio_redirects))
///   the answer is a `302` to
///   `/storage/recordings/{RecordingSid}.{ext}?Expires=..&Signature=..` on
///   the same server, which needs no authentication and counts the requests
///   that carried an `Authorization` header anyway
///   ([`SimulatedTwilio::storage_requests`])
/// * legacy transcriptions: `GET .../Transcriptions.json` (newest first,
///   paged), `GET .../Recordings/{RecordingSid}/Transcriptions.json`,
///   `GET .../Transcriptions/{TranscriptionSid}.json`
/// * Voice Intelligence, on the same listener (point the intelligence base
///   URL here): `GET /v2/Transcripts` with `AfterDateCreated`,
///   `BeforeDateCreated`, `SourceSid`, `ServiceSid`, `PageSize` (paged by an
///   absolute `meta.next_page_url` built from the `Host` header),
///   `GET /v2/Transcripts/{TranscriptSid}`,
///   `GET /v2/Transcripts/{TranscriptSid}/Sentences` (paged the same way)
///
/// * messages (SMS / MMS): `GET .../Messages.json` with `To`, `From`,
///   `DateSent`, `DateSent<`, `DateSent>`, `PageSize`, `Page`, `PageToken`
///   (newest first by `date_sent`, unsent ones first),
///   `GET .../Messages/{MessageSid}.json`,
///   `GET .../Messages/{MessageSid}/Media.json` (`media_list`),
///   `GET .../Messages/{MessageSid}/Media/{MediaSid}` (the PNG picture; a
///   third of them through a `302` to the unauthenticated
///   `/storage/media/...`) and `.json` (its record), and
///   `POST .../Messages.json` (`To`, `From` or `MessagingServiceSid`,
///   `Body`, `MediaUrl`, `StatusCallback`): 201 with the record, or 400
///   with Twilio's error (see
///   [`SimulatedAccount::send_text`](crate::SimulatedAccount::send_text)).
///   Status callbacks are signed with the Basic auth password (the auth
///   token), [`DEFAULT_AUTH_TOKEN`](crate::DEFAULT_AUTH_TOKEN) without one.
///
/// Every route but the storage needs the configured Basic auth. Errors use
/// Twilio's body `{"code", "message", "more_info", "status"}`; another
/// account's SID in the path is a 404 (20404).
pub fn router(sim: SimulatedTwilio, options: ServerOptions) -> Router {
    if let Some((_, token)) = &options.credentials {
        sim.set_auth_token(token);
    }
    let state = AppState {
        rng: Arc::new(Mutex::new(StdRng::seed_from_u64(sim.seed() ^ 0x5EED_F417))),
        sim,
        options: Arc::new(options),
        requests: Arc::new(AtomicU64::new(0)),
    };
    const ACCOUNT: &str = "/2010-04-01/Accounts/{account}";
    Router::new()
        .route(ACCOUNT, get(fetch_account))
        .route(&format!("{ACCOUNT}/Calls.json"), get(list_calls))
        .route(&format!("{ACCOUNT}/Calls/{{call}}"), get(fetch_call))
        .route(
            &format!("{ACCOUNT}/Calls/{{call}}/Recordings.json"),
            get(call_recordings),
        )
        .route(
            &format!("{ACCOUNT}/IncomingPhoneNumbers.json"),
            get(list_numbers),
        )
        .route(&format!("{ACCOUNT}/Recordings.json"), get(list_recordings))
        .route(
            &format!("{ACCOUNT}/Recordings/{{recording}}"),
            get(fetch_recording),
        )
        .route(
            &format!("{ACCOUNT}/Recordings/{{recording}}/Transcriptions.json"),
            get(recording_transcriptions),
        )
        .route(
            &format!("{ACCOUNT}/Transcriptions.json"),
            get(list_transcriptions),
        )
        .route(
            &format!("{ACCOUNT}/Transcriptions/{{transcription}}"),
            get(fetch_transcription),
        )
        .route("/v2/Transcripts", get(list_transcripts))
        .route("/v2/Transcripts/{transcript}", get(fetch_transcript))
        .route(
            "/v2/Transcripts/{transcript}/Sentences",
            get(list_sentences),
        )
        .route(
            &format!("{ACCOUNT}/Messages.json"),
            get(list_texts).post(send_text),
        )
        .route(&format!("{ACCOUNT}/Messages/{{message}}"), get(fetch_text))
        .route(
            &format!("{ACCOUNT}/Messages/{{message}}/Media.json"),
            get(list_text_media),
        )
        .route(
            &format!("{ACCOUNT}/Messages/{{message}}/Media/{{media}}"),
            get(fetch_text_media),
        )
        .route("/storage/recordings/{file}", get(storage))
        .route("/storage/media/{file}", get(media_storage))
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

/// Serves [`router`] on `listener` until the task is dropped or fails.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use callview_sim::{serve, ServerOptions, SimConfig, SimulatedTwilio};
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// println!("TWILIO_API_BASE_URL=http://{}", listener.local_addr()?);
/// serve(listener, SimulatedTwilio::new(SimConfig::default()), ServerOptions::default()).await
/// # }
/// ```
pub async fn serve(
    listener: tokio::net::TcpListener,
    sim: SimulatedTwilio,
    options: ServerOptions,
) -> std::io::Result<()> {
    axum::serve(listener, router(sim, options)).await
}

/// Twilio's error body with its status.
fn twilio_error(status: StatusCode, code: u32, message: impl Into<String>) -> Response {
    let body = json!({
        "code": code,
        "message": message.into(),
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, Json(body)).into_response()
}

fn not_found(path: &str) -> Response {
    twilio_error(
        StatusCode::NOT_FOUND,
        20404,
        format!("The requested resource {path} was not found"),
    )
}

/// Authentication, then faults, then latency.
async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // The storage behind audio redirects takes no credentials (its URLs
    // are signed); it only notes whether a client sent them anyway.
    let storage = request.uri().path().starts_with("/storage/");
    if storage {
        state
            .sim
            .record_storage_request(request.headers().contains_key(header::AUTHORIZATION));
    }
    if let (false, Some((user, password))) = (storage, &state.options.credentials) {
        if !authorized(request.headers(), user, password) {
            let mut response = twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
            return response;
        }
    }
    let n = state.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(every) = state.options.fail_every_nth_with_429.filter(|e| *e > 0) {
        if n % u64::from(every) == 0 {
            return twilio_error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
        }
    }
    let rate = state.options.error_rate_5xx;
    if rate > 0.0 {
        let (fail, unavailable) = {
            let mut rng = state.rng.lock().unwrap_or_else(|p| p.into_inner());
            (rng.gen_bool(rate.clamp(0.0, 1.0)), rng.gen_bool(0.5))
        };
        if fail {
            return if unavailable {
                twilio_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    20503,
                    "Service Unavailable",
                )
            } else {
                twilio_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    20500,
                    "An internal server error has occurred",
                )
            };
        }
    }
    if !state.options.latency_per_page.is_zero() {
        tokio::time::sleep(state.options.latency_per_page).await;
    }
    next.run(request).await
}

fn authorized(headers: &HeaderMap, user: &str, password: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
    else {
        return false;
    };
    let expected = format!("{user}:{password}").into_bytes();
    // Constant time over the expected length.
    given.len() == expected.len()
        && given
            .iter()
            .zip(&expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn fallback(uri: Uri) -> Response {
    not_found(uri.path())
}

/// A 404 when `account` is not the simulated account.
fn check_account(state: &AppState, account: &str, uri: &Uri) -> Option<Response> {
    (account != state.sim.account_sid()).then(|| not_found(uri.path()))
}

async fn fetch_account(
    State(state): State<AppState>,
    Path(account): Path<String>,
    uri: Uri,
) -> Response {
    let ac = state.sim.account_sid();
    if account.strip_suffix(".json") != Some(ac) {
        return not_found(uri.path());
    }
    let created = state.sim.with_account(|a| {
        a.owned_number_dates()
            .into_iter()
            .min()
            .unwrap_or_else(|| a.now())
    });
    let base = format!("/2010-04-01/Accounts/{ac}");
    Json(json!({
        "sid": ac,
        "owner_account_sid": ac,
        "friendly_name": "Callview simulated account",
        "status": "active",
        "type": "Full",
        "date_created": format_rfc2822(&created),
        "date_updated": format_rfc2822(&created),
        "uri": format!("{base}.json"),
        "subresource_uris": {
            "calls": format!("{base}/Calls.json"),
            "incoming_phone_numbers": format!("{base}/IncomingPhoneNumbers.json"),
            "recordings": format!("{base}/Recordings.json"),
            "messages": format!("{base}/Messages.json"),
        },
    }))
    .into_response()
}

async fn list_calls(
    State(state): State<AppState>,
    Path(account): Path<String>,
    uri: Uri,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    let query = match ListQuery::parse(uri.query().unwrap_or("")) {
        Ok(query) => query,
        Err(message) => return twilio_error(StatusCode::BAD_REQUEST, 20001, message),
    };
    let listing = state.sim.list(&query);
    let ac = state.sim.account_sid();
    let records: Vec<Value> = listing.calls.iter().map(Call::to_rest_json).collect();
    let start = u64::from(query.page) * u64::from(query.page_size);
    let end = start + (records.len() as u64).saturating_sub(1);
    Json(json!({
        "calls": records,
        "end": end,
        "first_page_uri": query.uri(ac, 0, None),
        "next_page_uri": listing.next.map(|c| query.uri(ac, query.page + 1, Some(&c))),
        "page": query.page,
        "page_size": query.page_size,
        "previous_page_uri": listing
            .prev
            .map(|c| query.uri(ac, query.page.saturating_sub(1), Some(&c))),
        "start": start,
        "uri": query.uri(ac, query.page, query.cursor.as_ref()),
    }))
    .into_response()
}

async fn fetch_call(
    State(state): State<AppState>,
    Path((account, file)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    let call = file
        .strip_suffix(".json")
        .and_then(CallSid::new)
        .and_then(|sid| state.sim.lock().call(&sid));
    match call {
        Some(call) => Json(call.to_rest_json()).into_response(),
        None => not_found(uri.path()),
    }
}

/// `PageSize` and `Page` of an offset-paged list.
struct Offset {
    page: u32,
    size: u32,
    params: Vec<(String, String)>,
}

impl Offset {
    /// Reads `PageSize`, `Page` and the given filter names from the query.
    fn parse(uri: &Uri, filters: &[&str]) -> Result<Offset, String> {
        let mut offset = Offset {
            page: 0,
            size: DEFAULT_PAGE_SIZE,
            params: Vec::new(),
        };
        let bad = |what: &str, value: &str| format!("Invalid {what}: {value:?}");
        for (name, value) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
            match &*name {
                "PageSize" => match value.trim().parse::<u32>() {
                    Ok(size) if size > 0 => offset.size = size.min(MAX_PAGE_SIZE),
                    _ => return Err(bad("PageSize", &value)),
                },
                "Page" => match value.trim().parse::<u32>() {
                    Ok(page) => offset.page = page,
                    Err(_) => return Err(bad("Page", &value)),
                },
                other if filters.contains(&other) => {
                    offset
                        .params
                        .push((name.to_string(), value.trim().to_owned()));
                }
                _ => {}
            }
        }
        Ok(offset)
    }

    fn skip(&self) -> usize {
        self.page as usize * self.size as usize
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn uri(&self, path: &str, page: u32) -> String {
        let mut uri = format!("{path}?");
        for (name, value) in &self.params {
            encode_component(name, &mut uri);
            uri.push('=');
            encode_component(value, &mut uri);
            uri.push('&');
        }
        uri.push_str(&format!("PageSize={}&Page={page}", self.size));
        uri
    }

    /// The envelope for `items`, which starts at this page and may hold
    /// one item more (meaning there is a next page).
    fn envelope(&self, key: &str, path: &str, mut items: Vec<Value>) -> Response {
        let size = self.size as usize;
        let more = items.len() > size;
        items.truncate(size);
        let start = self.skip() as u64;
        let end = start + (items.len() as u64).saturating_sub(1);
        let mut body = Map::new();
        body.insert(key.into(), Value::Array(items));
        body.insert("end".into(), json!(end));
        body.insert("first_page_uri".into(), json!(self.uri(path, 0)));
        body.insert(
            "next_page_uri".into(),
            json!(more.then(|| self.uri(path, self.page + 1))),
        );
        body.insert("page".into(), json!(self.page));
        body.insert("page_size".into(), json!(self.size));
        body.insert(
            "previous_page_uri".into(),
            json!((self.page > 0).then(|| self.uri(path, self.page - 1))),
        );
        body.insert("start".into(), json!(start));
        body.insert("uri".into(), json!(self.uri(path, self.page)));
        Json(Value::Object(body)).into_response()
    }
}

async fn list_numbers(
    State(state): State<AppState>,
    Path(account): Path<String>,
    uri: Uri,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    let offset = match Offset::parse(&uri, &["PhoneNumber", "FriendlyName"]) {
        Ok(offset) => offset,
        Err(message) => return twilio_error(StatusCode::BAD_REQUEST, 20001, message),
    };
    let ac = state.sim.account_sid();
    let (numbers, dates) = state
        .sim
        .with_account(|a| (a.owned_numbers(), a.owned_number_dates()));
    let items: Vec<Value> = numbers
        .iter()
        .zip(dates)
        .filter(|(n, _)| {
            offset
                .param("PhoneNumber")
                .is_none_or(|p| p == n.phone_number)
        })
        .filter(|(n, _)| {
            offset
                .param("FriendlyName")
                .is_none_or(|f| Some(f) == n.friendly_name.as_deref())
        })
        .skip(offset.skip())
        .take(offset.size as usize + 1)
        .map(|(n, created)| {
            let base = format!("/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers/{}", n.sid);
            json!({
                "account_sid": ac,
                "address_requirements": "none",
                "address_sid": null,
                "api_version": "2010-04-01",
                "beta": false,
                "bundle_sid": null,
                "capabilities": {"fax": false, "mms": true, "sms": true, "voice": true},
                "date_created": format_rfc2822(&created),
                "date_updated": format_rfc2822(&created),
                "emergency_status": "Active",
                "friendly_name": n.friendly_name,
                "identity_sid": null,
                "origin": "twilio",
                "phone_number": n.phone_number,
                "sid": n.sid,
                "sms_method": "POST",
                "sms_url": "",
                "status": "in-use",
                "status_callback": "",
                "status_callback_method": "POST",
                "trunk_sid": null,
                "uri": format!("{base}.json"),
                "voice_caller_id_lookup": true,
                "voice_method": "POST",
                "voice_receive_mode": "voice",
                "voice_url": "https://demo.twilio.com/welcome/voice/",
                "subresource_uris": {"assigned_add_ons": format!("{base}/AssignedAddOns.json")},
            })
        })
        .collect();
    offset.envelope("incoming_phone_numbers", uri.path(), items)
}

fn host(headers: &HeaderMap) -> &str {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
}

fn bad_request(message: String) -> Response {
    twilio_error(StatusCode::BAD_REQUEST, 20001, message)
}

/// A 2010 API list envelope (`next_page_uri` relative, as Twilio).
fn envelope(key: &str, query: &MediaQuery, path: &str, page: MediaPage) -> Response {
    let start = u64::from(query.page) * u64::from(query.page_size);
    let end = start + (page.items.len() as u64).saturating_sub(1);
    let mut body = Map::new();
    body.insert(key.into(), Value::Array(page.items));
    body.insert("end".into(), json!(end));
    body.insert("first_page_uri".into(), json!(query.uri(path, 0, None)));
    body.insert(
        "next_page_uri".into(),
        json!(page
            .next
            .map(|next| query.uri(path, query.page + 1, Some(&next)))),
    );
    body.insert("page".into(), json!(query.page));
    body.insert("page_size".into(), json!(query.page_size));
    body.insert(
        "previous_page_uri".into(),
        json!((query.page > 0).then(|| query.uri(path, query.page - 1, None))),
    );
    body.insert("start".into(), json!(start));
    body.insert(
        "uri".into(),
        json!(query.uri(path, query.page, query.cursor())),
    );
    Json(Value::Object(body)).into_response()
}

/// The v2 APIs' `meta`, every URL absolute on this server.
fn meta(
    key: &str,
    page: u32,
    page_size: u32,
    url: impl Fn(u32, bool) -> String,
    next: Option<String>,
) -> Value {
    json!({
        "first_page_url": url(0, false),
        "key": key,
        "next_page_url": next,
        "page": page,
        "page_size": page_size,
        "previous_page_url": (page > 0).then(|| url(page - 1, false)),
        "url": url(page, true),
    })
}

async fn list_recordings(
    State(state): State<AppState>,
    Path(account): Path<String>,
    uri: Uri,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    let query = match MediaQuery::parse(ListKind::Recordings, uri.query().unwrap_or("")) {
        Ok(query) => query,
        Err(message) => return bad_request(message),
    };
    let page = {
        let account = state.sim.lock();
        account
            .media()
            .list_recordings(&query, None, account.now_secs())
    };
    envelope("recordings", &query, uri.path(), page)
}

async fn call_recordings(
    State(state): State<AppState>,
    Path((account, call)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    let query = match MediaQuery::parse(ListKind::Recordings, uri.query().unwrap_or("")) {
        Ok(query) => query,
        Err(message) => return bad_request(message),
    };
    let Some(sid) = CallSid::new(call) else {
        return not_found(uri.path());
    };
    let page = {
        let account = state.sim.lock();
        if account.call(&sid).is_none() {
            return not_found(uri.path());
        }
        account
            .media()
            .list_recordings(&query, Some(sid.as_str()), account.now_secs())
    };
    envelope("recordings", &query, uri.path(), page)
}

/// `Recordings/{sid}.json`, or its audio: `{sid}` (WAV), `{sid}.wav`,
/// `{sid}.mp3`.
async fn fetch_recording(
    State(state): State<AppState>,
    Path((account, file)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    let (sid, format) = match file.rsplit_once('.') {
        Some((sid, "json")) => (sid, None),
        Some((sid, ext)) => match AudioFormat::parse(ext) {
            Some(format) => (sid, Some(format)),
            None => return not_found(uri.path()),
        },
        None => (file.as_str(), Some(AudioFormat::Wav)),
    };
    let Some(format) = format else {
        let record = {
            let account = state.sim.lock();
            account.media().recording(sid, account.now_secs())
        };
        return match record {
            Some(record) => Json(record).into_response(),
            None => not_found(uri.path()),
        };
    };
    let (audio, now) = {
        let account = state.sim.lock();
        let now = account.now_secs();
        (account.media().audio(sid, format, now), now)
    };
    let Some(audio) = audio else {
        return not_found(uri.path());
    };
    if audio.redirect {
        let name = format!("{sid}.{}", format.extension());
        let expires = now + 600;
        let signature = storage_signature(state.sim.seed(), &name, expires);
        let location =
            format!("/storage/recordings/{name}?Expires={expires}&Signature={signature}");
        return match HeaderValue::from_str(&location) {
            Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
            Err(_) => not_found(uri.path()),
        };
    }
    audio_response(audio.file)
}

fn audio_response(file: crate::AudioFile) -> Response {
    let length = file.len();
    let content_type = file.content_type();
    let body = Body::from_stream(futures::stream::iter(
        file.chunks().map(Ok::<_, std::convert::Infallible>),
    ));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_LENGTH, HeaderValue::from(length)),
            (header::ACCEPT_RANGES, HeaderValue::from_static("none")),
        ],
        body,
    )
        .into_response()
}

/// The simulated storage a redirect points to: no authentication, a valid
/// signature required (a 403 otherwise, as S3 answers).
async fn storage(State(state): State<AppState>, Path(file): Path<String>, uri: Uri) -> Response {
    let mut expires = None;
    let mut signature = None;
    for (name, value) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match &*name {
            "Expires" => expires = value.parse::<i64>().ok(),
            "Signature" => signature = Some(value.into_owned()),
            _ => {}
        }
    }
    let valid = match (expires, signature) {
        (Some(expires), Some(signature)) => {
            storage_signature(state.sim.seed(), &file, expires) == signature
        }
        _ => false,
    };
    if !valid {
        return twilio_error(
            StatusCode::FORBIDDEN,
            20403,
            "The request signature does not match",
        );
    }
    let Some((sid, format)) = file
        .rsplit_once('.')
        .and_then(|(sid, ext)| Some((sid, AudioFormat::parse(ext)?)))
    else {
        return not_found(uri.path());
    };
    let audio = {
        let account = state.sim.lock();
        account.media().audio(sid, format, account.now_secs())
    };
    match audio {
        Some(audio) => audio_response(audio.file),
        None => not_found(uri.path()),
    }
}

async fn list_transcriptions(
    State(state): State<AppState>,
    Path(account): Path<String>,
    uri: Uri,
) -> Response {
    transcriptions(state, account, None, uri)
}

async fn recording_transcriptions(
    State(state): State<AppState>,
    Path((account, recording)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    transcriptions(state, account, Some(recording), uri)
}

fn transcriptions(
    state: AppState,
    account: String,
    recording: Option<String>,
    uri: Uri,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    let query = match MediaQuery::parse(ListKind::Transcriptions, uri.query().unwrap_or("")) {
        Ok(query) => query,
        Err(message) => return bad_request(message),
    };
    let page = {
        let account = state.sim.lock();
        let now = account.now_secs();
        if let Some(re) = &recording {
            if account.media().recording(re, now).is_none() {
                return not_found(uri.path());
            }
        }
        account
            .media()
            .list_transcriptions(&query, recording.as_deref(), now)
    };
    envelope("transcriptions", &query, uri.path(), page)
}

async fn fetch_transcription(
    State(state): State<AppState>,
    Path((account, file)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    let record = file.strip_suffix(".json").and_then(|sid| {
        let account = state.sim.lock();
        account.media().transcription(sid, account.now_secs())
    });
    match record {
        Some(record) => Json(record).into_response(),
        None => not_found(uri.path()),
    }
}

async fn list_transcripts(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let query = match MediaQuery::parse(ListKind::Transcripts, uri.query().unwrap_or("")) {
        Ok(query) => query,
        Err(message) => return bad_request(message),
    };
    let page = {
        let account = state.sim.lock();
        account.media().list_transcripts(&query, account.now_secs())
    };
    let base = format!("http://{}{}", host(&headers), uri.path());
    let url = |page: u32, current: bool| {
        let cursor = if current { query.cursor() } else { None };
        query.uri(&base, page, cursor)
    };
    let next = page
        .next
        .as_ref()
        .map(|next| query.uri(&base, query.page + 1, Some(next)));
    let meta = meta("transcripts", query.page, query.page_size, url, next);
    Json(json!({"transcripts": page.items, "meta": meta})).into_response()
}

async fn fetch_transcript(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    uri: Uri,
) -> Response {
    let record = {
        let account = state.sim.lock();
        account.media().transcript(&sid, account.now_secs())
    };
    match record {
        Some(record) => Json(record).into_response(),
        None => not_found(uri.path()),
    }
}

async fn list_sentences(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let offset = match Offset::parse(&uri, &[]) {
        Ok(offset) => offset,
        Err(message) => return bad_request(message),
    };
    let sentences = {
        let account = state.sim.lock();
        account.media().sentences(&sid, account.now_secs())
    };
    let Some(sentences) = sentences else {
        return not_found(uri.path());
    };
    let size = offset.size as usize;
    let more = sentences.len() > offset.skip() + size;
    let items: Vec<Value> = sentences
        .into_iter()
        .skip(offset.skip())
        .take(size)
        .collect();
    let base = format!("http://{}{}", host(&headers), uri.path());
    let url = |page: u32, _current: bool| offset.uri(&base, page);
    let next = more.then(|| offset.uri(&base, offset.page + 1));
    let meta = meta("sentences", offset.page, offset.size, url, next);
    Json(json!({"sentences": items, "meta": meta})).into_response()
}

async fn list_texts(
    State(state): State<AppState>,
    Path(account): Path<String>,
    uri: Uri,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    let query = match TextQuery::parse(uri.query().unwrap_or("")) {
        Ok(query) => query,
        Err(message) => return bad_request(message),
    };
    let listing = state.sim.lock().list_texts(&query);
    let ac = state.sim.account_sid();
    let start = u64::from(query.page) * u64::from(query.page_size);
    let end = start + (listing.records.len() as u64).saturating_sub(1);
    Json(json!({
        "messages": listing.records,
        "end": end,
        "first_page_uri": query.uri(ac, 0, None),
        "next_page_uri": listing.next.map(|c| query.uri(ac, query.page + 1, Some(&c))),
        "page": query.page,
        "page_size": query.page_size,
        "previous_page_uri": (query.page > 0).then(|| query.uri(ac, query.page - 1, None)),
        "start": start,
        "uri": query.uri(ac, query.page, query.cursor.as_ref()),
    }))
    .into_response()
}

async fn send_text(
    State(state): State<AppState>,
    Path(account): Path<String>,
    uri: Uri,
    body: bytes::Bytes,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    match state.sim.send(&SendRequest::from_form(&body)) {
        Ok(text) => (StatusCode::CREATED, Json(text.raw)).into_response(),
        Err(refused) => {
            let status = StatusCode::from_u16(refused.status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, Json(refused.to_json())).into_response()
        }
    }
}

async fn fetch_text(
    State(state): State<AppState>,
    Path((account, file)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    let record = file
        .strip_suffix(".json")
        .and_then(|sid| state.sim.lock().text_record(sid));
    match record {
        Some(record) => Json(record).into_response(),
        None => not_found(uri.path()),
    }
}

async fn list_text_media(
    State(state): State<AppState>,
    Path((account, message)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    let offset = match Offset::parse(&uri, &[]) {
        Ok(offset) => offset,
        Err(message) => return bad_request(message),
    };
    let Some(items) = state.sim.lock().text_media_items(&message) else {
        return not_found(uri.path());
    };
    let ac = state.sim.account_sid();
    let records = items
        .iter()
        .skip(offset.skip())
        .take(offset.size as usize + 1)
        .map(|m| m.to_json(ac))
        .collect();
    offset.envelope("media_list", uri.path(), records)
}

/// `Media/{MediaSid}` (the picture, or a redirect to the storage) or
/// `Media/{MediaSid}.json` (its record).
async fn fetch_text_media(
    State(state): State<AppState>,
    Path((account, message, file)): Path<(String, String, String)>,
    uri: Uri,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    let (media_sid, json) = match file.strip_suffix(".json") {
        Some(sid) => (sid, true),
        None => (file.as_str(), false),
    };
    let (item, now) = {
        let account = state.sim.lock();
        let item = account
            .text_media_items(&message)
            .and_then(|items| items.into_iter().find(|m| m.sid == media_sid));
        (item, account.now_secs())
    };
    let Some(item) = item else {
        return not_found(uri.path());
    };
    if json {
        return Json(item.to_json(state.sim.account_sid())).into_response();
    }
    if item.redirects() {
        let name = format!("{message}.{}", item.sid);
        let expires = now + 600;
        let signature = storage_signature(state.sim.seed(), &name, expires);
        let location = format!("/storage/media/{name}?Expires={expires}&Signature={signature}");
        return match HeaderValue::from_str(&location) {
            Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
            Err(_) => not_found(uri.path()),
        };
    }
    picture_response(item.content())
}

fn picture_response(content: Vec<u8>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(MEDIA_CONTENT_TYPE),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(content.len())),
        ],
        content,
    )
        .into_response()
}

/// The storage an MMS picture redirect points to
/// (`/storage/media/{MessageSid}.{MediaSid}`): no authentication, a valid
/// signature required.
async fn media_storage(
    State(state): State<AppState>,
    Path(file): Path<String>,
    uri: Uri,
) -> Response {
    let mut expires = None;
    let mut signature = None;
    for (name, value) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match &*name {
            "Expires" => expires = value.parse::<i64>().ok(),
            "Signature" => signature = Some(value.into_owned()),
            _ => {}
        }
    }
    let valid = matches!((expires, signature), (Some(expires), Some(signature))
        if storage_signature(state.sim.seed(), &file, expires) == signature);
    if !valid {
        return twilio_error(
            StatusCode::FORBIDDEN,
            20403,
            "The request signature does not match",
        );
    }
    let Some((message, media_sid)) = file.split_once('.') else {
        return not_found(uri.path());
    };
    let item = state
        .sim
        .lock()
        .text_media_items(message)
        .and_then(|items| items.into_iter().find(|m| m.sid == media_sid));
    match item {
        Some(item) => picture_response(item.content()),
        None => not_found(uri.path()),
    }
}
