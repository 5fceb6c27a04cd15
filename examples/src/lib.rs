//! Examples of using callview as a library.
//!
//! [`host_app`] is "another application" — here a tiny back office with
//! its own routes and its own state — that mounts the callview API under
//! `/calls` on a store it opened itself. The `embed-router` binary
//! (`cargo run -p callview-examples --bin embed-router`) serves it, with a
//! simulated Twilio account as the data source.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use callview_core::{PartyRules, Store, SyncEngine};
use callview_server::{AppState, SyncRunner};
use callview_sim::{SimConfig, SimulatedTwilio};
use serde_json::{json, Value};

/// Where the callview API is mounted in the host application.
pub const CALLVIEW_PREFIX: &str = "/calls";

/// The host application's own state: nothing callview knows about, plus a
/// handle on the store it shares with callview.
#[derive(Clone)]
pub struct HostState {
    /// The store the host opened and handed to callview.
    pub store: Arc<dyn Store>,
    /// When the host started.
    pub started: Instant,
}

/// Builds the host application: its own `/` and `/stats` routes, and the
/// callview API nested under [`CALLVIEW_PREFIX`] (so the conversations are
/// at `/calls/api/conversations`, the health check at `/calls/healthz`).
///
/// `api_token`, when given, protects callview's `/api` routes; the host's
/// own routes are unaffected.
pub fn host_app(
    store: Arc<dyn Store>,
    sync: Option<Arc<SyncRunner>>,
    api_token: Option<&str>,
) -> Router {
    let mut callview_state = AppState::new(Arc::clone(&store)).with_api_token(api_token);
    if let Some(runner) = sync {
        callview_state = callview_state.with_sync(runner);
    }
    let callview = callview_server::router(callview_state);

    Router::new()
        .route("/", get(index))
        .route("/stats", get(stats))
        .with_state(HostState {
            store,
            started: Instant::now(),
        })
        .nest(CALLVIEW_PREFIX, callview)
}

async fn index() -> Html<&'static str> {
    Html(
        "<h1>Back office</h1>\
         <p><a href=\"/stats\">stats</a> · \
         <a href=\"/calls/api/conversations\">call history</a> · \
         <a href=\"/calls/api/openapi.json\">call API description</a></p>",
    )
}

async fn stats(State(host): State<HostState>) -> Json<Value> {
    let counts = host.store.counts().await.ok();
    Json(json!({
        "uptime_secs": host.started.elapsed().as_secs(),
        "calls": counts.map(|c| c.calls),
        "conversations": counts.map(|c| c.conversations),
    }))
}

/// A sync runner over a simulated account of `calls` records (seed `seed`),
/// writing into `store`.
pub fn simulated_sync(store: &Arc<dyn Store>, calls: usize, seed: u64) -> Arc<SyncRunner> {
    let account = SimulatedTwilio::new(SimConfig::new(seed, calls));
    SyncRunner::new(SyncEngine::new(
        Arc::new(account),
        Arc::clone(store),
        PartyRules::default(),
    ))
}
