//! Who is calling, and what they may do (issue 18).
//!
//! Every request to `/api` is resolved to a [`Caller`] before its handler
//! runs ([`authorize`], the router's middleware):
//!
//! * `CALLVIEW_API_TOKEN` (`--api-token`) is an admin token named
//!   [`API_TOKEN_NAME`], as before tokens had names;
//! * a stored token (`callview token create`, `POST /api/tokens`) is found
//!   by the SHA-256 of its text ([`callview_core::Store::authenticate`]) on
//!   every request: nothing caches tokens, so a revocation made by any
//!   process sharing the database holds from the next request on;
//! * with no API token and no stored token at all, the API is open (as
//!   it always was without a token): every caller is an unnamed admin. The
//!   first token created closes it (tokens are never deleted, only revoked:
//!   revoking them all does not open it again).
//!
//! Each route needs a [`Role`] ([`ROUTE_ROLES`], one entry per route of
//! [`crate::ROUTES`]); a caller below it gets 403 `forbidden` naming the
//! role needed. Failed authentications (a token that is not valid) are
//! counted per client address ([`FailureLimiter`]): past
//! [`MAX_FAILURES`] in [`FAILURE_WINDOW`], that address gets 429 with
//! `Retry-After` on every request carrying a token until the window
//! passes. Failures are logged with the address, never the token.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, MatchedPath, OriginalUri, Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use callview_core::access::{
    expiry_after_days, NewToken, Role, TokenRecord, TokenSecret, TokenStatus,
};
use callview_core::StoreError;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

pub use callview_core::access::API_TOKEN_NAME;

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no token (health checks).
    Public,
    /// A token of at least this role.
    Role(Role),
}

/// The access every route of [`crate::ROUTES`] needs, as
/// `(method, path, access)`. A test fails when a route has no entry here.
/// `/api` paths not listed (unknown routes) need a viewer's token, so
/// that an unknown path tells nothing to a caller without one.
pub const ROUTE_ROLES: &[(&str, &str, Access)] = &[
    ("GET", "/api/conversations", Access::Role(Role::Viewer)),
    ("GET", "/api/conversations/{id}", Access::Role(Role::Viewer)),
    (
        "GET",
        "/api/conversations/{id}/messages",
        Access::Role(Role::Viewer),
    ),
    (
        "POST",
        "/api/conversations/{id}/messages",
        Access::Role(Role::Editor),
    ),
    (
        "GET",
        "/api/texts/{sid}/media/{media_sid}",
        Access::Role(Role::Viewer),
    ),
    ("GET", "/api/calls/active", Access::Role(Role::Viewer)),
    ("GET", "/api/contacts/{id}", Access::Role(Role::Viewer)),
    ("PATCH", "/api/contacts/{id}", Access::Role(Role::Editor)),
    ("PATCH", "/api/messages/{id}", Access::Role(Role::Editor)),
    ("GET", "/api/tags", Access::Role(Role::Viewer)),
    ("GET", "/api/stats", Access::Role(Role::Viewer)),
    ("GET", "/api/recordings/{sid}", Access::Role(Role::Viewer)),
    (
        "GET",
        "/api/recordings/{sid}/audio",
        Access::Role(Role::Viewer),
    ),
    ("POST", "/api/session", Access::Role(Role::Viewer)),
    ("GET", "/api/contacts.csv", Access::Role(Role::Viewer)),
    ("GET", crate::export::CSV_PATH, Access::Role(Role::Viewer)),
    ("GET", crate::export::JSONL_PATH, Access::Role(Role::Viewer)),
    ("POST", "/api/sync/today", Access::Role(Role::Admin)),
    ("POST", "/api/sync/recent", Access::Role(Role::Admin)),
    ("GET", "/api/openapi.json", Access::Role(Role::Viewer)),
    ("GET", "/api/events", Access::Role(Role::Viewer)),
    ("GET", "/api/me", Access::Role(Role::Viewer)),
    ("GET", "/api/tokens", Access::Role(Role::Admin)),
    ("POST", "/api/tokens", Access::Role(Role::Admin)),
    ("DELETE", "/api/tokens/{name}", Access::Role(Role::Admin)),
    ("GET", "/healthz", Access::Public),
    ("GET", "/readyz", Access::Public),
    // Counts and route templates, never call data: any token.
    ("GET", "/metrics", Access::Role(Role::Viewer)),
];

/// What `method path` needs: its [`ROUTE_ROLES`] entry (`HEAD` as `GET`);
/// an unlisted `/api` path needs a viewer, anything else is public.
pub fn access_for(method: &Method, path: &str) -> Access {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTE_ROLES
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, access)| *access)
        .unwrap_or(if path == "/api" || path.starts_with("/api/") {
            Access::Role(Role::Viewer)
        } else {
            Access::Public
        })
}

/// Who made a request: a request extension every `/api` handler can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's name; `None` when the API is open (no token at all).
    pub name: Option<String>,
    /// What it may do.
    pub role: Role,
}

impl Caller {
    /// The caller of an open API: an unnamed admin.
    pub fn open() -> Self {
        Self {
            name: None,
            role: Role::Admin,
        }
    }
}

/// At most this many failed authentications per client address within
/// [`FAILURE_WINDOW`]; the next request carrying a token gets 429.
pub const MAX_FAILURES: usize = 10;
/// The window failures are counted over.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most (the oldest are forgotten first).
const MAX_CLIENTS: usize = 65_536;

/// Failed authentications per client address, over a sliding window.
/// IPv6 addresses count per /64 (what one client usually holds). Takes the
/// current instant as an argument, so it is tested without waiting.
#[derive(Debug, Default)]
pub struct FailureLimiter {
    failures: Mutex<HashMap<IpAddr, Vec<Instant>>>,
}

/// The key of a client address: IPv4 as is, IPv6 by its /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl FailureLimiter {
    /// `Some(wait)` when `ip` has failed [`MAX_FAILURES`] times within the
    /// window before `now`: how long until the oldest of them leaves it.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let recent: Vec<&Instant> = failures
            .get(&client_key(ip))?
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < FAILURE_WINDOW)
            .collect();
        if recent.len() < MAX_FAILURES {
            return None;
        }
        let oldest = recent.into_iter().min()?;
        Some(FAILURE_WINDOW.saturating_sub(now.saturating_duration_since(*oldest)))
    }

    /// Counts a failed authentication of `ip` at `now`.
    pub fn record_failure(&self, ip: IpAddr, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_CLIENTS {
            failures.retain(|_, times| {
                times.retain(|t| now.saturating_duration_since(*t) < FAILURE_WINDOW);
                !times.is_empty()
            });
            if failures.len() >= MAX_CLIENTS {
                let oldest = failures
                    .iter()
                    .min_by_key(|(_, times)| times.iter().max().copied())
                    .map(|(ip, _)| *ip);
                if let Some(ip) = oldest {
                    failures.remove(&ip);
                }
            }
        }
        let times = failures.entry(client_key(ip)).or_default();
        times.retain(|t| now.saturating_duration_since(*t) < FAILURE_WINDOW);
        times.push(now);
        // Only the last MAX_FAILURES matter.
        if times.len() > MAX_FAILURES {
            let extra = times.len() - MAX_FAILURES;
            times.drain(..extra);
        }
    }
}

/// What the middleware keeps between requests: the failure counts, and
/// whether tokens are in use (once they are, they stay: rows are never
/// deleted).
#[derive(Debug, Default)]
pub struct AuthState {
    limiter: FailureLimiter,
    tokens_in_use: AtomicBool,
    /// The store answered, at least once, that it holds no token.
    seen_open: AtomicBool,
}

impl AuthState {
    /// The failed-authentication counts.
    pub fn limiter(&self) -> &FailureLimiter {
        &self.limiter
    }
}

/// Whether the API needs a token: an API token is set, or some token was
/// ever stored. When the store does not answer, the last answer stands: an
/// API that was open stays open (tokens live in the database: none can be
/// made while it is away), and one that never got an answer is an error
/// (it never opens because the database is unreachable at start).
pub async fn auth_required(state: &AppState) -> Result<bool, StoreError> {
    let auth = state.auth();
    if state.has_api_token() || auth.tokens_in_use.load(Ordering::Acquire) {
        return Ok(true);
    }
    match state.store().tokens().await {
        Ok(tokens) if tokens.is_empty() => {
            auth.seen_open.store(true, Ordering::Release);
            Ok(false)
        }
        Ok(_) => {
            auth.tokens_in_use.store(true, Ordering::Release);
            Ok(true)
        }
        Err(e) if auth.seen_open.load(Ordering::Acquire) => {
            tracing::warn!(error = %crate::error::ErrorChain(&e), "the store does not answer; the API stays open as it was");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The client's address (the TCP peer), when the server was served with
/// connect info; routers served without it count every client as one.
fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// The bearer token of `Authorization`, or `?token=` on the event stream.
fn given_token(req: &Request) -> Option<String> {
    let header_token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    // An EventSource cannot send headers: the event stream also takes
    // `?token=` (query strings are never logged).
    header_token.or_else(|| {
        (req.uri().path() == crate::api::EVENTS_PATH)
            .then(|| {
                url::form_urlencoded::parse(req.uri().query()?.as_bytes())
                    .find(|(key, _)| key == "token")
                    .map(|(_, value)| value.trim().to_owned())
            })
            .flatten()
    })
}

fn unauthorized(message: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"callview\""),
    );
    response
}

fn too_many(wait: Duration) -> Response {
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("too many failed authentications from this address; try again in {secs} s"),
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The key media cookies are signed with: derived from the API token when
/// one is set (as before), else a random secret kept in the database
/// (cursor `media_cookie_key`), shared by every instance.
pub(crate) async fn media_key(state: &AppState) -> Result<Vec<u8>, StoreError> {
    if let Some(check) = state.token_check() {
        return Ok(check.media_key().to_vec());
    }
    const CURSOR: &str = "media_cookie_key";
    if let Some(key) = state.store().read_cursor(CURSOR).await? {
        return Ok(key.into_bytes());
    }
    let fresh = TokenSecret::generate();
    state.store().write_cursor(CURSOR, fresh.expose()).await?;
    // Read back: when two instances made one at once, both use the one kept.
    Ok(state
        .store()
        .read_cursor(CURSOR)
        .await?
        .unwrap_or_else(|| fresh.expose().to_owned())
        .into_bytes())
}

/// Whether `name` names a token that is active at `now` (the API token's
/// name when one is set).
async fn is_active(state: &AppState, name: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    if name == API_TOKEN_NAME && state.has_api_token() {
        return Ok(true);
    }
    Ok(state
        .store()
        .tokens()
        .await?
        .iter()
        .any(|t| t.name == name && t.status(now) == TokenStatus::Active))
}

/// The route template of a request, as `ROUTES` names it: the matched
/// path without the prefix a host application nested the router under
/// (axum's `MatchedPath` keeps it; the request's own path has lost it).
fn route_of(req: &Request) -> String {
    let Some(matched) = req.extensions().get::<MatchedPath>() else {
        return req.uri().path().to_owned();
    };
    let matched = matched.as_str();
    let prefix = req
        .extensions()
        .get::<OriginalUri>()
        .and_then(|original| original.path().strip_suffix(req.uri().path()))
        .unwrap_or("");
    matched
        .strip_prefix(prefix)
        .filter(|_| !prefix.is_empty())
        .unwrap_or(matched)
        .to_owned()
}

/// The middleware: resolves the [`Caller`] of every request, refuses it
/// when it lacks the route's role, and adds it to the request.
pub async fn authorize(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = route_of(&req);
    let needed = match access_for(req.method(), &path) {
        Access::Public => return next.run(req).await,
        Access::Role(role) => role,
    };
    let caller = match resolve(&state, Credentials::of(&req)).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if !caller.role.allows(needed) {
        let who = caller.name.as_deref().unwrap_or("this caller");
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "`{} {path}` needs the {needed} role; the token {who} is {} {}",
                req.method(),
                if caller.role == Role::Viewer {
                    "a"
                } else {
                    "an"
                },
                caller.role
            ),
        )
        .into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// What [`resolve`] reads of a request (a request's body is not `Sync`, so
/// the request itself is not held across the store's awaits).
struct Credentials {
    ip: IpAddr,
    method: Method,
    path: String,
    token: Option<String>,
    /// Media cookies, on `GET`/`HEAD` of a recording's audio only.
    media_cookies: Vec<String>,
}

impl Credentials {
    fn of(req: &Request) -> Self {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        // An <audio> element cannot send headers: a recording's audio also
        // opens with the media cookie of `POST /api/session`.
        let media_cookies =
            if matches!(method, Method::GET | Method::HEAD) && crate::media_cookie::opens(&path) {
                req.headers()
                    .get_all(header::COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .filter_map(crate::media_cookie::from_cookie_header)
                    .map(str::to_owned)
                    .collect()
            } else {
                Vec::new()
            };
        Self {
            ip: client_ip(req),
            token: given_token(req),
            method,
            path,
            media_cookies,
        }
    }
}

async fn resolve(state: &AppState, given: Credentials) -> Result<Caller, Response> {
    let store_failed = |e: StoreError| ApiError::from(e).into_response();
    let required = auth_required(state).await.map_err(store_failed)?;
    if !required {
        return Ok(Caller::open());
    }
    let now = Utc::now();
    let ip = given.ip;
    let Some(token) = given.token else {
        if !given.media_cookies.is_empty() {
            let key = media_key(state).await.map_err(store_failed)?;
            for value in &given.media_cookies {
                if let Some(name) = crate::media_cookie::verify(&key, value, now) {
                    if is_active(state, &name, now).await.map_err(store_failed)? {
                        return Ok(Caller {
                            name: Some(name),
                            role: Role::Viewer,
                        });
                    }
                }
            }
        }
        return Err(unauthorized(
            "this API needs `Authorization: Bearer <token>`",
        ));
    };
    if let Some(wait) = state.auth().limiter().blocked(ip, Instant::now()) {
        tracing::warn!(client = %ip, "authentication refused: too many failures from this address");
        return Err(too_many(wait));
    }
    if state
        .token_check()
        .is_some_and(|check| check.matches(token.as_bytes()))
    {
        return Ok(Caller {
            name: Some(API_TOKEN_NAME.to_owned()),
            role: Role::Admin,
        });
    }
    let secret = TokenSecret::new(token);
    match state
        .store()
        .authenticate(&secret.hash(), now)
        .await
        .map_err(store_failed)?
    {
        Some(record) => Ok(Caller {
            name: Some(record.name),
            role: record.role,
        }),
        None => {
            state.auth().limiter().record_failure(ip, Instant::now());
            tracing::warn!(
                client = %ip,
                method = %given.method,
                path = %given.path,
                "authentication failed: the token is unknown, expired or revoked"
            );
            Err(unauthorized("the bearer token is not valid"))
        }
    }
}

fn iso(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    })
}

/// A token as the API shows it (never its text or hash).
pub fn token_json(t: &TokenRecord, now: DateTime<Utc>) -> Value {
    json!({
        "name": t.name,
        "role": t.role,
        "created_at": iso(Some(t.created_at)),
        "last_used_at": iso(t.last_used_at),
        "expires_at": iso(t.expires_at),
        "revoked_at": iso(t.revoked_at),
        "status": t.status(now).as_str(),
    })
}

/// `GET /api/me`: who the request's token is.
pub async fn me(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller.map_or_else(Caller::open, |Extension(c)| c);
    let required = auth_required(&state).await?;
    // Whether this caller can send texts (the viewer shows its reply box).
    let texting = state.texting().is_some() && caller.role >= Role::Editor;
    Ok(Json(json!({
        "name": caller.name,
        "role": caller.role,
        "auth_required": required,
        "can_send_texts": texting,
    })))
}

/// `GET /api/tokens`: every token, oldest first.
pub async fn list_tokens(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let now = Utc::now();
    let tokens: Vec<Value> = state
        .store()
        .tokens()
        .await?
        .iter()
        .map(|t| token_json(t, now))
        .collect();
    Ok(Json(json!({"total": tokens.len(), "tokens": tokens})))
}

/// `POST /api/tokens` with `{"name", "role", "expires_in_days"}`: a new
/// token, its text shown in this answer only.
pub async fn create_token(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    let field = |message: String| ApiError::bad_request("invalid_field", message);
    let Some(object) = body.as_object() else {
        return Err(field("the body must be a JSON object".into()));
    };
    if let Some(unknown) = object
        .keys()
        .find(|k| !["name", "role", "expires_in_days"].contains(&k.as_str()))
    {
        return Err(field(format!(
            "`{unknown}` is not a field; give name, role and expires_in_days"
        )));
    }
    let name = object
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| field("`name` must be a string".into()))?;
    let role = object
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| field("`role` must be viewer, editor or admin".into()))?;
    let role = Role::parse(role).map_err(|e| field(format!("`role`: {e}")))?;
    let days = match object.get("expires_in_days") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| field("`expires_in_days` must be a whole number".into()))?,
        ),
    };
    let now = Utc::now();
    let expires_at =
        expiry_after_days(days, now).map_err(|e| field(format!("`expires_in_days`: {e}")))?;
    let (secret, token) = NewToken::generate(name, role, now, expires_at)
        .map_err(|e| field(format!("`name`: {e}")))?;
    let record = state.store().create_token(&token).await?;
    tracing::info!(
        name = %record.name,
        role = %record.role,
        by = caller.as_ref().and_then(|Extension(c)| c.name.as_deref()).unwrap_or("-"),
        "created a token"
    );
    let mut json = token_json(&record, now);
    json["token"] = Value::String(secret.expose().to_owned());
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

/// `DELETE /api/tokens/{name}`: revokes it, from the next request on in
/// every instance.
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = match path {
        Ok(Path(name)) => name,
        Err(rejection) => return Err(ApiError::bad_request("invalid_name", rejection.body_text())),
    };
    let now = Utc::now();
    let record = state
        .store()
        .revoke_token(&name, now)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => {
                ApiError::not_found(format!("no active token is named {name:?}"))
            }
            other => other.into(),
        })?;
    tracing::info!(
        name = %record.name,
        by = caller.as_ref().and_then(|Extension(c)| c.name.as_deref()).unwrap_or("-"),
        "revoked a token"
    );
    Ok(Json(token_json(&record, now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_limited_per_address_over_a_sliding_window() {
        let limiter = FailureLimiter::default();
        let start = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..MAX_FAILURES {
            assert_eq!(limiter.blocked(a, start), None, "after {i}");
            limiter.record_failure(a, start + Duration::from_secs(i as u64));
        }
        let at = start + Duration::from_secs(10);
        let wait = limiter.blocked(a, at).expect("blocked");
        assert_eq!(wait, Duration::from_secs(50));
        assert_eq!(limiter.blocked(b, at), None, "another address");
        // The oldest failure leaves the window: one more attempt allowed.
        assert_eq!(limiter.blocked(a, start + FAILURE_WINDOW), None);
        assert!(limiter
            .blocked(a, start + FAILURE_WINDOW - Duration::from_millis(1))
            .is_some());
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let limiter = FailureLimiter::default();
        let now = Instant::now();
        for i in 0..MAX_FAILURES {
            let ip: IpAddr = format!("2001:db8:1:2::{:x}", i + 1).parse().unwrap();
            limiter.record_failure(ip, now);
        }
        assert!(limiter
            .blocked("2001:db8:1:2::ffff".parse().unwrap(), now)
            .is_some());
        assert!(limiter
            .blocked("2001:db8:1:3::1".parse().unwrap(), now)
            .is_none());
        // An IPv4 client seen through an IPv6 socket is itself.
        let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
        let v4: IpAddr = "192.0.2.9".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            limiter.record_failure(mapped, now);
        }
        assert!(limiter.blocked(v4, now).is_some());
    }

    #[test]
    fn unlisted_api_paths_need_a_viewer_and_others_are_public() {
        assert_eq!(
            access_for(&Method::GET, "/api/nope"),
            Access::Role(Role::Viewer)
        );
        assert_eq!(access_for(&Method::GET, "/"), Access::Public);
        assert_eq!(
            access_for(&Method::HEAD, "/api/recordings/{sid}/audio"),
            Access::Role(Role::Viewer)
        );
        assert_eq!(
            access_for(&Method::POST, "/api/sync/today"),
            Access::Role(Role::Admin)
        );
    }
}
