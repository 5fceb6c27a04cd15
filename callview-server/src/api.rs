//! The HTTP API: routes, handlers and the middleware around them.

use callview_core::thread::{thread_page, ThreadItem, ThreadKinds};
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use callview_core::sync::Preset;
use callview_core::{ConversationId, StoreError, SyncMode};
use serde_json::{json, Value};
use tower_http::compression::predicate::{NotForContentType, Predicate};
use tower_http::compression::{CompressionLayer, DefaultPredicate};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::ApiError;
use crate::params::{self, QueryParams, DEFAULT_ACTIVE_LIMIT, DEFAULT_LIMIT};
use crate::state::AppState;
use crate::trigger::SyncTrigger;
use crate::views;

/// How long one request may take before it is answered 503 `timeout`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request body accepted (1 MiB).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Every route the API serves, as `(method, path)` with axum's `{id}`
/// placeholders. The OpenAPI document describes exactly these.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/conversations"),
    ("GET", "/api/conversations/{id}"),
    ("GET", "/api/conversations/{id}/messages"),
    ("POST", "/api/conversations/{id}/messages"),
    ("GET", "/api/texts/{sid}/media/{media_sid}"),
    ("GET", "/api/calls/active"),
    ("GET", "/api/contacts/{id}"),
    ("PATCH", "/api/contacts/{id}"),
    ("PATCH", "/api/messages/{id}"),
    ("GET", "/api/tags"),
    ("GET", "/api/stats"),
    ("GET", "/api/recordings/{sid}"),
    ("GET", "/api/recordings/{sid}/audio"),
    ("POST", "/api/session"),
    ("GET", "/api/contacts.csv"),
    ("GET", crate::export::CSV_PATH),
    ("GET", crate::export::JSONL_PATH),
    ("POST", "/api/sync/today"),
    ("POST", "/api/sync/recent"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/events"),
    ("GET", "/api/me"),
    ("GET", "/api/tokens"),
    ("POST", "/api/tokens"),
    ("DELETE", "/api/tokens/{name}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
];

/// The path of the server-sent event stream. Besides the bearer header it
/// accepts the token as `?token=` (an `EventSource` cannot send
/// headers); query strings are never logged.
pub const EVENTS_PATH: &str = "/api/events";

/// The API as an axum [`Router`], with its middleware: the caller's token
/// and role on `/api` ([`crate::auth`]), JSON errors for every failure, gzip,
/// a 30 s request timeout, a 1 MiB body limit and request tracing
/// (method and path only).
///
/// The router answers unknown paths with a JSON 404, so it can be
/// [nested](Router::nest) under a prefix of another application but not
/// [merged](Router::merge) with a router that has its own fallback.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/api/conversations", get(list_conversations))
        .route("/api/conversations/{id}", get(get_conversation))
        .route(
            "/api/conversations/{id}/messages",
            get(list_messages).post(crate::texts::send),
        )
        .route("/api/calls/active", get(active_calls))
        .route(
            "/api/contacts/{id}",
            get(crate::edits::get_contact).patch(crate::edits::patch_contact),
        )
        .route("/api/messages/{id}", patch(crate::edits::patch_message))
        .route("/api/tags", get(crate::edits::list_tags))
        .route("/api/stats", get(crate::stats::get_stats))
        .route(
            "/api/recordings/{sid}",
            get(crate::recordings::get_recording),
        )
        .route("/api/session", post(crate::recordings::start_session))
        .route("/api/contacts.csv", get(crate::edits::export_contacts))
        .route("/api/sync/today", post(sync_today))
        .route("/api/sync/recent", post(sync_recent))
        .route("/api/openapi.json", get(openapi))
        .route(EVENTS_PATH, get(events))
        .route("/api/me", get(crate::auth::me))
        .route(
            "/api/tokens",
            get(crate::auth::list_tokens).post(crate::auth::create_token),
        )
        .route(
            "/api/tokens/{name}",
            axum::routing::delete(crate::auth::revoke_token),
        )
        .route("/healthz", get(crate::health::healthz))
        .route("/readyz", get(crate::health::readyz))
        .route("/metrics", get(crate::health::metrics))
        .route("/", get(crate::viewer::index))
        .route("/assets/{*path}", get(crate::viewer::asset))
        .route(
            crate::webhook::CALL_STATUS_PATH,
            post(crate::webhook::call_status),
        )
        .route(
            crate::texts::MESSAGES_WEBHOOK_PATH,
            post(crate::texts::webhook),
        );
    // Audio answers once its first bytes are there; with the cache, a first
    // play downloads the whole recording first, which may take longer than
    // the request timeout: this route has none (its body streams anyway).
    // Exports stream for as long as they take (their first page is read
    // before the answer starts).
    let untimed = Router::new()
        .route(
            "/api/recordings/{sid}/audio",
            get(crate::recordings::get_audio),
        )
        .route(
            "/api/texts/{sid}/media/{media_sid}",
            get(crate::texts::media),
        )
        .route(crate::export::CSV_PATH, get(crate::export::export_csv))
        .route(crate::export::JSONL_PATH, get(crate::export::export_jsonl));
    with_middleware(routes.layer(timeout_layer(REQUEST_TIMEOUT)), untimed, state)
}

/// Answers 503 (made JSON by `json_errors`) when a response's headers are
/// not ready within `timeout`.
fn timeout_layer(timeout: Duration) -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout)
}

/// Adds `untimed` (routes without the request timeout) to `routes` (which
/// carry theirs), the fallbacks and the middleware (innermost first: token
/// check, body limit, JSON errors, compression but never of audio,
/// tracing, metrics, request id).
fn with_middleware(routes: Router<AppState>, untimed: Router<AppState>, state: AppState) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request| {
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                request_id = %crate::request_id::of(req),
            )
        })
        .on_request(())
        .on_response(DefaultOnResponse::new().level(Level::INFO))
        .on_failure(DefaultOnFailure::new().level(Level::WARN));

    // Audio is compressed already, and gzip would drop `Content-Length`
    // and ranges.
    let compress = DefaultPredicate::new().and(NotForContentType::const_new("audio/"));
    routes
        .merge(untimed)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authorize,
        ))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(middleware::from_fn(json_errors))
        .layer(CompressionLayer::new().compress_when(compress))
        .layer(trace)
        .layer(middleware::from_fn_with_state(
            state.metrics().clone(),
            crate::metrics::track_http,
        ))
        .layer(middleware::from_fn(crate::request_id::request_id))
        .with_state(state)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Turns every error response that is not already JSON (axum's
/// rejections, the timeout's and the body limit's) into the API's shape.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::not_found("no such route"),
        StatusCode::METHOD_NOT_ALLOWED => method_not_allowed_error(),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => ApiError::new(
            status,
            "timeout",
            format!(
                "the request did not finish within {} s",
                REQUEST_TIMEOUT.as_secs()
            ),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            "payload_too_large",
            format!("the request body is larger than {BODY_LIMIT} bytes"),
        ),
        s if s.is_server_error() => ApiError::new(
            status,
            "internal",
            "the server failed to handle the request; the details are in the server log",
        ),
        _ => ApiError::new(
            status,
            "bad_request",
            if text.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("the request is not valid")
                    .to_owned()
            } else {
                text
            },
        ),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(error.body().to_string()))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see /api/openapi.json for the API's routes")
}

fn method_not_allowed_error() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method; see /api/openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    method_not_allowed_error()
}

pub(crate) fn path_id(
    path: Result<Path<String>, PathRejection>,
) -> Result<ConversationId, ApiError> {
    match path {
        Ok(Path(text)) => params::conversation_id(&text),
        Err(rejection) => Err(ApiError::bad_request("invalid_id", rejection.body_text())),
    }
}

pub(crate) fn missing_conversation(id: ConversationId) -> impl FnOnce(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound(_) => ApiError::not_found(format!("conversation {id} does not exist")),
        other => other.into(),
    }
}

async fn list_conversations(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<views::ConversationListJson>, ApiError> {
    let params = QueryParams::parse(query.as_deref())?;
    let normalizer = *state.normalizer();
    let query = params.conversation_query(DEFAULT_LIMIT, &normalizer)?;
    let page = state.store().list_conversations(&query).await?;
    let mut conversations: Vec<_> = page
        .conversations
        .iter()
        .map(|c| views::conversation(c, &normalizer))
        .collect();
    let (interactions, messages): (Vec<_>, Vec<_>) = page
        .conversations
        .iter()
        .zip(conversations.iter_mut())
        .filter_map(|(view, json)| {
            Some((
                view.last_message.as_ref()?,
                json.last_message.as_mut()?.as_call_mut()?,
            ))
        })
        .unzip();
    crate::recordings::attach(&state, &interactions, messages).await?;
    Ok(Json(views::ConversationListJson {
        conversations,
        next_cursor: page.next_cursor.map(|c| c.to_string()),
        total: page.total,
    }))
}

async fn get_conversation(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<views::ConversationJson>, ApiError> {
    let id = path_id(path)?;
    let view = state
        .store()
        .conversation(id)
        .await
        .map_err(missing_conversation(id))?;
    let mut json = views::conversation(&view, state.normalizer());
    if let (Some(interaction), Some(message)) = (
        &view.last_message,
        json.last_message
            .as_mut()
            .and_then(views::ThreadMessageJson::as_call_mut),
    ) {
        crate::recordings::attach(&state, &[interaction], vec![message]).await?;
    }
    Ok(Json(json))
}

async fn list_messages(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<views::MessageListJson>, ApiError> {
    let id = path_id(path)?;
    let params = QueryParams::parse(query.as_deref())?;
    let query = params.message_query()?;
    let kinds = params.thread_kinds()?;
    let view = state
        .store()
        .conversation(id)
        .await
        .map_err(missing_conversation(id))?;
    let contact = views::contact(&view.contact, state.normalizer());
    let page = thread_page(state.store().as_ref(), id, &query, kinds)
        .await
        .map_err(missing_conversation(id))?;
    let mut messages = Vec::with_capacity(page.items.len());
    let mut interactions = Vec::new();
    for item in &page.items {
        match item {
            ThreadItem::Call(i) => {
                interactions.push(i.as_ref());
                messages.push(views::ThreadMessageJson::Call(Box::new(views::message(
                    i, &contact,
                ))));
            }
            ThreadItem::Text(t) => messages.push(views::ThreadMessageJson::Text(Box::new(
                crate::texts::text_json(t, &contact),
            ))),
        }
    }
    let calls: Vec<&mut views::MessageJson> = messages
        .iter_mut()
        .filter_map(views::ThreadMessageJson::as_call_mut)
        .collect();
    crate::recordings::attach(&state, &interactions, calls).await?;
    // The conversation's counters, which every write keeps equal to its
    // rows: root calls and texts.
    let counters = &view.conversation.counters;
    let total = match kinds {
        ThreadKinds::All => counters.total_calls + counters.total_messages,
        ThreadKinds::Calls => counters.total_calls,
        ThreadKinds::Texts => counters.total_messages,
    };
    Ok(Json(views::MessageListJson {
        messages,
        total,
        next_cursor: page.next_cursor.map(|c| c.to_string()),
    }))
}

async fn active_calls(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<views::ActiveCallListJson>, ApiError> {
    let params = QueryParams::parse(query.as_deref())?;
    let limit = params.limit(DEFAULT_ACTIVE_LIMIT)?;
    let calls = state
        .store()
        .unfinished_calls(&callview_core::store::UnfinishedQuery::any(limit))
        .await?;
    let calls: Vec<_> = calls.iter().map(views::active_call).collect();
    Ok(Json(views::ActiveCallListJson {
        total: calls.len(),
        calls,
    }))
}

async fn run_sync(
    state: &AppState,
    preset: Preset,
    trigger: SyncTrigger,
) -> Result<Json<Value>, ApiError> {
    let Some(runner) = state.sync_runner() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sync_unavailable",
            "this server was started without a Twilio account to sync from",
        ));
    };
    let report = runner.run(SyncMode::Preset(preset), trigger).await?;
    let window = match preset {
        Preset::Initial => "last 7 days",
        Preset::Manual => "last 3 days",
        Preset::Recent => "last hour",
    };
    Ok(Json(json!({
        "success": true,
        "message": format!("Synced {} new calls from {window}", report.inserted),
        "synced": report.inserted,
        "skipped": report.skipped.len(),
        "total": report.fetched,
        "report": report,
    })))
}

async fn sync_today(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    run_sync(&state, Preset::Manual, SyncTrigger::Manual).await
}

async fn sync_recent(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    run_sync(&state, Preset::Recent, SyncTrigger::Recent).await
}

async fn events(State(state): State<AppState>) -> Response {
    state.events().sse().into_response()
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document().clone())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_slow_request_times_out_with_a_json_503() {
        use tower::ServiceExt;
        let store = Arc::new(callview_sqlite::SqliteStore::open_in_memory().unwrap());
        let routes = Router::new().route(
            "/api/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
        let app = with_middleware(
            routes.layer(timeout_layer(Duration::from_millis(50))),
            Router::new(),
            AppState::new(store),
        );
        let response = app
            .oneshot(
                Request::builder()
                    .uri("/api/slow")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(is_json(response.headers()));
        let body = axum::body::to_bytes(response.into_body(), 10_000)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "timeout");
    }
}
