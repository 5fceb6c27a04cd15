//! Twilio's REST API over HTTP, served from a [`SimulatedTwilio`]: the
//! same paths, query parameters, envelopes, records and error bodies as
//! `api.twilio.com`, plus injectable faults.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use callview_core::call::{format_rfc2822, Call, CallSid};
use callview_core::twilio::{Recording, MAX_PAGE_SIZE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::client::SimulatedTwilio;
use crate::query::{encode_component, ListQuery, DEFAULT_PAGE_SIZE};

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
/// * `GET .../Recordings.json` (`CallSid`, `PageSize`, `Page`),
///   `GET .../Recordings/{RecordingSid}.json`, and the audio at
///   `.../Recordings/{RecordingSid}` / `.wav` / `.mp3` (always a short WAV).
///
/// Errors use Twilio's body `{"code", "message", "more_info", "status"}`;
/// another account's SID in the path is a 404 (20404).
pub fn router(sim: SimulatedTwilio, options: ServerOptions) -> Router {
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
    if let Some((user, password)) = &state.options.credentials {
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

fn recording_json(recording: &Recording, account_sid: &str, host: Option<&str>) -> Value {
    let base = format!(
        "/2010-04-01/Accounts/{account_sid}/Recordings/{}",
        recording.sid
    );
    let duration = recording.duration.unwrap_or(0);
    let created = recording
        .start_time
        .map(|t| t + chrono::Duration::seconds(i64::from(duration)));
    let minutes = i64::from(duration.div_ceil(60).max(1));
    let media = match host {
        Some(host) => format!("http://{host}{base}"),
        None => base.clone(),
    };
    json!({
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "call_sid": recording.call_sid,
        "channels": 1,
        "conference_sid": null,
        "date_created": created.as_ref().map(format_rfc2822),
        "date_updated": created.as_ref().map(format_rfc2822),
        "duration": recording.duration.map(|d| d.to_string()),
        "encryption_details": null,
        "error_code": null,
        "media_url": media,
        "price": Decimal::new(-250 * minutes, 5).to_string(),
        "price_unit": "USD",
        "sid": recording.sid,
        "source": "DialVerb",
        "start_time": recording.start_time.as_ref().map(format_rfc2822),
        "status": recording.status,
        "track": "both",
        "uri": recording.uri,
        "subresource_uris": {
            "add_on_results": format!("{base}/AddOnResults.json"),
            "transcriptions": format!("{base}/Transcriptions.json"),
        },
    })
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

async fn list_recordings(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    let offset = match Offset::parse(&uri, &["CallSid"]) {
        Ok(offset) => offset,
        Err(message) => return twilio_error(StatusCode::BAD_REQUEST, 20001, message),
    };
    let take = offset.size as usize + 1;
    let recordings = match offset.param("CallSid") {
        Some(sid) => match CallSid::new(sid) {
            Some(sid) => {
                let all = state.sim.lock().recordings(&sid);
                all.into_iter().skip(offset.skip()).take(take).collect()
            }
            None => Vec::new(),
        },
        None => state.sim.lock().all_recordings(offset.skip(), take),
    };
    let ac = state.sim.account_sid();
    let items = recordings
        .iter()
        .map(|r| recording_json(r, ac, host(&headers)))
        .collect();
    offset.envelope("recordings", uri.path(), items)
}

async fn call_recordings(
    State(state): State<AppState>,
    Path((account, call)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    let offset = match Offset::parse(&uri, &[]) {
        Ok(offset) => offset,
        Err(message) => return twilio_error(StatusCode::BAD_REQUEST, 20001, message),
    };
    let Some(sid) = CallSid::new(call) else {
        return not_found(uri.path());
    };
    let recordings = {
        let account = state.sim.lock();
        if account.call(&sid).is_none() {
            return not_found(uri.path());
        }
        account.recordings(&sid)
    };
    let ac = state.sim.account_sid();
    let items = recordings
        .iter()
        .skip(offset.skip())
        .take(offset.size as usize + 1)
        .map(|r| recording_json(r, ac, host(&headers)))
        .collect();
    offset.envelope("recordings", uri.path(), items)
}

async fn fetch_recording(
    State(state): State<AppState>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Some(response) = check_account(&state, &account, &uri) {
        return response;
    }
    let (sid, json) = match file.rsplit_once('.') {
        Some((sid, "json")) => (sid, true),
        Some((sid, "wav" | "mp3")) => (sid, false),
        Some(_) => return not_found(uri.path()),
        None => (file.as_str(), false),
    };
    let Some(recording) = state.sim.lock().recording(sid) else {
        return not_found(uri.path());
    };
    if json {
        let ac = state.sim.account_sid();
        return Json(recording_json(&recording, ac, host(&headers))).into_response();
    }
    let body = wav(recording.duration.unwrap_or(1));
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"))],
        body,
    )
        .into_response()
}

/// A short, quiet 8 kHz 8-bit mono WAV tone (at most 3 seconds).
fn wav(seconds: u32) -> Vec<u8> {
    let rate: u32 = 8_000;
    let samples = rate * seconds.clamp(1, 3);
    let mut out = Vec::with_capacity(44 + samples as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + samples).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes()); // bytes per second
    out.extend_from_slice(&1u16.to_le_bytes()); // block align
    out.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&samples.to_le_bytes());
    for i in 0..samples {
        let phase = std::f64::consts::TAU * 440.0 * f64::from(i) / f64::from(rate);
        out.push((128.0 + 20.0 * phase.sin()) as u8);
    }
    out
}
