//! # callview-server
//!
//! The HTTP API over a callview store, the sync scheduler that keeps the
//! store current while serving, and (in `src/main.rs`) the `callview`
//! command line.
//!
//! * [`router`] builds the API as an axum [`Router`](axum::Router) over an
//!   [`AppState`]; mount it in another application with
//!   [`Router::nest`](axum::Router::nest).
//! * [`serve`] serves it on a listener with an initial sync, a periodic
//!   incremental sync and graceful shutdown.
//! * [`SyncRunner`] runs one sync at a time and remembers the last outcome.
//! * [`db::open_store`] opens SQLite or PostgreSQL from a database URL.
//! * [`demo`] keeps a simulated account busy for the demo mode.
//! * [`viewer`] is the web viewer ("Call Viewer") the router serves at `/`:
//!   plain HTML, CSS and JavaScript modules embedded in the binary.
//! * [`events`] streams live updates (`GET /api/events`) to the viewer.
//! * [`health`] answers the probes and `/metrics`; [`metrics`] is the
//!   Prometheus registry; [`request_id`] gives every request its id.
//! * [`config`] resolves settings from flags, environment and a TOML file.
//! * [`healthcheck`] asks a running server's `/healthz` (container checks).
//!
//! ## Endpoints
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the web viewer |
//! | `GET /api/conversations?limit=20&offset=0` | `{"conversations": [Conversation], "total": n}`; filters `q`, `direction`, `status`, `since`, `until`, `tag`, `has_recording` |
//! | `GET /api/conversations/{id}` | `Conversation` |
//! | `GET /api/conversations/{id}/messages?limit=50&cursor=` | `{"messages": [Message], "total": n, "next_cursor"}` |
//! | `GET /api/contacts/{id}`, `PATCH /api/contacts/{id}` | a `Contact` with an `ETag`; the patch takes `name`, `company_name`, `notes`, `tags` (412 on a stale `If-Match`) |
//! | `PATCH /api/messages/{id}` | the `Message` with its new `notes`, `tags` |
//! | `GET /api/tags` | `{"tags": [{"tag", "contacts", "calls"}], "total": n}` |
//! | `GET /api/contacts.csv` | every contact as CSV (`phone,name,company,notes,tags`) |
//! | `GET /api/export/calls.csv`, `GET /api/export/calls.jsonl` | every call the list's filters keep (legs included), streamed; `since`/`until` on each call's start |
//! | `GET /api/recordings/{sid}` | one recording with its transcripts (`url`: where this server plays it) |
//! | `GET /api/recordings/{sid}/audio` | its audio, streamed from Twilio (ranges; `?format=wav`) |
//! | `POST /api/session` | the cookie that lets an `<audio>` element play recordings |
//! | `GET /api/calls/active` | `{"calls": [Call + conversation_id], "total": n}` |
//! | `POST /api/sync/today`, `POST /api/sync/recent` | `{"success", "message", "synced", "skipped", "total", "report"}` |
//! | `GET /api/openapi.json` | the OpenAPI 3.1 document |
//! | `GET /api/events` | `text/event-stream` of live updates (`sync_started`, `sync_progress`, `sync`, `changed`) |
//! | `GET /api/me` | `{"name", "role", "auth_required"}`: who the token is |
//! | `GET /api/tokens`, `POST /api/tokens`, `DELETE /api/tokens/{name}` | list, create (the token's text shown once), revoke tokens (admin) |
//! | `GET /healthz` | liveness: `{"status", "store", "sync_running", "last_sync"}` (200 while serving) |
//! | `GET /readyz` | readiness: `{"status", "checks"}` (503 when a check fails) |
//! | `GET /metrics` | Prometheus metrics ([`metrics`]; the API token when one is set) |
//!
//! Every route needs a role ([`auth::ROUTE_ROLES`]); a token below it gets
//! 403 `forbidden`. Errors are `{"error": {"code", "message"}}`. One sync runs at a time: a
//! sync request while another runs is answered 409 `sync_in_progress`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use callview_server::{router, AppState};
//! # async fn demo(store: Arc<dyn callview_core::Store>) {
//! let app = axum::Router::new().nest("/calls", router(AppState::new(store)));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```

// The OpenAPI document is one large `serde_json::json!` literal.
#![recursion_limit = "256"]

pub mod api;
pub mod audio;
pub mod audio_cache;
pub mod auth;
pub mod config;
pub mod contacts_csv;
pub mod db;
pub mod demo;
pub mod edits;
pub mod error;
pub mod events;
pub mod export;
pub mod health;
pub mod healthcheck;
pub mod media_cookie;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod recordings;
pub mod request_id;
pub mod server;
pub mod signature;
pub mod state;
pub mod stats;
pub mod sync_runner;
pub mod texts;
pub mod trigger;
pub mod viewer;
pub mod views;
pub mod webhook;

pub use api::{router, EVENTS_PATH, ROUTES};
pub use error::ApiError;
pub use events::{EventHub, ServerEvent};
pub use metrics::Metrics;
pub use server::{
    check_exposure, serve, serve_with_shutdown, ServeError, ServerConfig, DEFAULT_SHUTDOWN_GRACE,
};
pub use state::AppState;
pub use sync_runner::{SyncOutcome, SyncRunError, SyncRunner, SyncTrigger};
