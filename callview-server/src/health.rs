//! The operational endpoints: `GET /healthz` (liveness), `GET /readyz`
//! (readiness), `GET /metrics` (Prometheus), and [`private_router`], the
//! same three without a token for a separate listener
//! (`callview serve --metrics-listen`).
//!
//! * `/healthz` answers 200 as long as the process serves requests, with
//!   what the viewer shows (`sync_running`, `last_sync`) and whether the
//!   database answered (`store`): a database outage is not a reason to
//!   restart the process.
//! * `/readyz` answers 200 when every check passes and 503 otherwise, each
//!   check with its status (`ok`, `fail` or `skip`): `database` (the store
//!   answers), `migrations` (every migration of this build is applied) and
//!   `sync` (the last successful sync is not older than
//!   [`AppState::ready_max_sync_age`]; `skip` when that is not set).
//! * `/metrics` needs a token (of any role) when tokens are in use, like
//!   `/api` ([`crate::auth::ROUTE_ROLES`]).
//!
//! A store that does not answer within [`CHECK_TIMEOUT`] fails its check
//! (so a probe never hangs); store errors are logged, never shown.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use callview_core::sync::WATERMARK_CURSOR;
use callview_core::StoreError;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::error::ErrorChain;
use crate::metrics::{LiveValues, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};
use crate::state::AppState;

/// How long a probe waits for the store before its check fails.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The default `--ready-max-sync-age` when a sync schedule runs.
pub const DEFAULT_READY_MAX_SYNC_AGE: Duration = Duration::from_secs(10 * 60);

/// Runs a store call within [`CHECK_TIMEOUT`]; a timeout is an error.
async fn bounded<T>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, String> {
    match tokio::time::timeout(CHECK_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            tracing::warn!(error = %ErrorChain(&e), "{what}: the store failed");
            Err("the database does not answer; the details are in the server log".to_owned())
        }
        Err(_) => {
            tracing::warn!(
                timeout_secs = CHECK_TIMEOUT.as_secs(),
                "{what}: the store did not answer in time"
            );
            Err(format!(
                "the database did not answer within {} s",
                CHECK_TIMEOUT.as_secs()
            ))
        }
    }
}

/// `GET /healthz`: liveness. 200 while the process serves.
pub async fn healthz(State(state): State<AppState>) -> Json<Value> {
    let store = bounded("health check", state.store().health()).await;
    let last_sync = state.sync_runner().and_then(|r| r.last_outcome());
    let syncing = state.sync_runner().is_some_and(|r| r.is_running());
    let mut body = json!({
        "status": if store.is_ok() { "ok" } else { "degraded" },
        "store": if store.is_ok() { "ok" } else { "unreachable" },
        "sync_running": syncing,
        "last_sync": last_sync,
    });
    if let Err(message) = store {
        body["error"] = json!({"code": "store_unavailable", "message": message});
    }
    Json(body)
}

/// One check of `/readyz`.
struct Check {
    status: &'static str,
    fields: Map<String, Value>,
}

impl Check {
    fn ok() -> Self {
        Self {
            status: "ok",
            fields: Map::new(),
        }
    }

    fn fail(message: impl Into<String>) -> Self {
        Self::ok().with("message", message.into()).status("fail")
    }

    fn skip(message: &str) -> Self {
        Self::ok().with("message", message).status("skip")
    }

    fn status(mut self, status: &'static str) -> Self {
        self.status = status;
        self
    }

    fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    fn passed(&self) -> bool {
        self.status != "fail"
    }

    fn into_json(self) -> Value {
        let mut fields = self.fields;
        fields.insert("status".to_owned(), self.status.into());
        Value::Object(fields)
    }
}

/// The store's watermark, when it has one.
async fn watermark(state: &AppState) -> Result<Option<DateTime<Utc>>, String> {
    let text = bounded(
        "reading the sync watermark",
        state.store().read_cursor(WATERMARK_CURSOR),
    )
    .await?;
    Ok(text
        .and_then(|w| DateTime::parse_from_rfc3339(&w).ok())
        .map(|w| w.with_timezone(&Utc)))
}

async fn sync_check(state: &AppState, max_age: Duration, database_ok: bool) -> Check {
    let runner = state.sync_runner();
    let outcome = runner.and_then(|r| r.last_outcome());
    let here = outcome
        .as_ref()
        .and_then(|o| o.last_success_at)
        .and_then(DateTime::from_timestamp_millis);
    // The watermark: a sync of any process (a cron `callview sync` too).
    let stored = if database_ok {
        watermark(state).await.ok().flatten()
    } else {
        None
    };
    let max_secs = max_age.as_secs();
    let Some(last) = here.max(stored) else {
        return if runner.is_some() && outcome.is_none() {
            Check::ok()
                .with("message", "waiting for the first sync to finish")
                .with("max_age_seconds", max_secs)
        } else {
            Check::fail("no sync has succeeded yet").with("max_age_seconds", max_secs)
        };
    };
    let age = (Utc::now() - last).num_seconds().max(0);
    let check = if u64::try_from(age).unwrap_or(0) > max_secs {
        Check::fail(format!(
            "the last successful sync is {age} s old, more than {max_secs} s"
        ))
    } else {
        Check::ok()
    };
    check
        .with("last_success_at", last.timestamp_millis())
        .with("age_seconds", age)
        .with("max_age_seconds", max_secs)
}

/// The readiness checks: whether all passed, and the body.
pub async fn readiness(state: &AppState) -> (bool, Value) {
    let store = state.store();
    let database = match bounded("readiness check", store.health()).await {
        Ok(()) => Check::ok(),
        Err(message) => Check::fail(message),
    };
    let database_ok = database.passed();
    let migrations = if !database_ok {
        Check::skip("the database does not answer")
    } else {
        match bounded("reading the migrations", store.schema_status()).await {
            Ok(Some(schema)) => {
                let check = if schema.is_current() {
                    Check::ok()
                } else {
                    Check::fail(format!(
                        "migrations {:?} of this build are not applied; restart callview to apply them",
                        schema.missing
                    ))
                };
                check
                    .with("applied", schema.applied)
                    .with("expected", schema.expected)
            }
            Ok(None) => Check::skip("this store does not track migrations"),
            Err(message) => Check::fail(message),
        }
    };
    let sync = match state.ready_max_sync_age() {
        None => Check::skip("no sync schedule: the sync's age is not checked"),
        Some(max_age) => sync_check(state, max_age, database_ok).await,
    };
    let ready = database.passed() && migrations.passed() && sync.passed();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {
            "database": database.into_json(),
            "migrations": migrations.into_json(),
            "sync": sync.into_json(),
        },
    });
    (ready, body)
}

/// `GET /readyz`: 200 when ready, 503 when not, with each check.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let (ready, body) = readiness(&state).await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics` on the API's listener: the router's authentication
/// ([`crate::auth`]) lets it through only with a token (of any role)
/// when tokens are in use, like `/api`.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    scrape(&state, &headers).await
}

/// `GET /metrics` on the private listener: no token.
async fn open_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    scrape(&state, &headers).await
}

/// Reads the values of the moment and encodes every metric, in
/// OpenMetrics when `Accept` asks for it, else Prometheus 0.0.4.
async fn scrape(state: &AppState, headers: &HeaderMap) -> Response {
    let sync_lag_seconds = match watermark(state).await {
        Ok(Some(mark)) => Some((Utc::now() - mark).num_milliseconds() as f64 / 1000.0),
        _ => None,
    };
    let metrics = state.metrics();
    metrics.set_live(LiveValues {
        sse_subscribers: state.events().subscribers() as u64,
        pool: state.store().pool_status(),
        sync_lag_seconds,
    });
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let content_type = if openmetrics {
        OPENMETRICS_CONTENT_TYPE
    } else {
        PROMETHEUS_CONTENT_TYPE
    };
    (
        [(header::CONTENT_TYPE, content_type)],
        metrics.encode(openmetrics),
    )
        .into_response()
}

/// `/metrics`, `/healthz` and `/readyz` without a token, for a listener
/// of their own on a private address (`--metrics-listen`): whoever reaches
/// it sees the metrics (counts, route templates, never call data).
pub fn private_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(open_metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Serves [`private_router`] on `listener` until `shutdown` resolves.
pub async fn serve_private(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz without a token");
    axum::serve(listener, private_router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
