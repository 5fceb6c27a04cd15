//! Runs syncs for the server: one at a time per process, each in its own
//! task, with the outcome of the last one kept for `/healthz`.
//!
//! A sync started by a request runs in a spawned task, so a client that
//! hangs up (or a request timeout) does not cancel it half-way; the request
//! only waits for its result. A second sync asked for while one runs is
//! refused at once with [`SyncRunError::InProgress`] (the API answers 409
//! `sync_in_progress`); the scheduler simply skips that tick.
//!
//! Every sync is announced on the runner's [`EventHub`] (`GET /api/events`):
//! `sync_started`, `sync_progress` after each page it applied, and `sync`
//! with its counts when it finished.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callview_core::sync::{Progress, SyncError};
use callview_core::{SyncEngine, SyncMode, SyncReport};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{ApiError, ErrorChain};
use crate::events::{self, EventHub, ServerEvent};
use crate::metrics::Metrics;
pub use crate::trigger::SyncTrigger;
use axum::http::StatusCode;

/// The outcome of the last finished sync, as `/healthz` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyncOutcome {
    /// When it started, Unix milliseconds.
    pub at: i64,
    /// When it finished, Unix milliseconds.
    pub finished_at: i64,
    /// What started it.
    pub trigger: SyncTrigger,
    /// Whether it succeeded.
    pub ok: bool,
    /// Why it failed (absent on success).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Calls stored for the first time (0 on failure).
    pub inserted: u64,
    /// Stored calls that changed (0 on failure).
    pub updated: u64,
    /// Records received from Twilio (0 on failure).
    pub fetched: u64,
    /// When the last successful sync finished, Unix milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<i64>,
}

/// Why [`SyncRunner::run`] returned no report.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyncRunError {
    /// Another sync is running (in this process, or another process holds the store's sync lock).
    #[error("a sync is already running")]
    InProgress,
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Twilio failed; the message names the cause and never a credential.
    #[error("Twilio: {0}")]
    Twilio(String),
    /// The store failed; the message is for the log.
    #[error("store: {0}")]
    Store(String),
    /// The sync task panicked.
    #[error("the sync task panicked")]
    Panicked,
}

impl From<SyncRunError> for ApiError {
    fn from(e: SyncRunError) -> Self {
        match e {
            SyncRunError::InProgress => Self::new(
                StatusCode::CONFLICT,
                "sync_in_progress",
                "a sync is already running; try again when it has finished",
            ),
            SyncRunError::ShuttingDown => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down and starts no new sync",
            ),
            SyncRunError::Twilio(message) => Self::new(
                StatusCode::BAD_GATEWAY,
                "sync_failed",
                format!("the sync failed: {message}"),
            ),
            SyncRunError::Store(message) => {
                tracing::error!(error = %message, "sync failed in the store");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "sync_failed",
                    "the sync failed writing to the database; the details are in the server log",
                )
            }
            SyncRunError::Panicked => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "sync_failed",
                "the sync stopped unexpectedly; the details are in the server log",
            ),
        }
    }
}

impl SyncRunError {
    fn from_sync(e: SyncError) -> Self {
        match e {
            SyncError::Busy => Self::InProgress,
            SyncError::Twilio(t) => Self::Twilio(ErrorChain(&t).to_string()),
            SyncError::Store(s) => Self::Store(ErrorChain(&s).to_string()),
        }
    }
}

/// Runs syncs one at a time and remembers how the last one went.
pub struct SyncRunner {
    engine: SyncEngine,
    gate: Arc<tokio::sync::Mutex<()>>,
    last: Mutex<Option<SyncOutcome>>,
    closed: AtomicBool,
    events: EventHub,
    metrics: Metrics,
}

impl std::fmt::Debug for SyncRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncRunner")
            .field("engine", &self.engine)
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl SyncRunner {
    /// A runner around an engine, counting its syncs into a registry of
    /// its own.
    pub fn new(engine: SyncEngine) -> Arc<Self> {
        Self::with_metrics(engine, Metrics::new())
    }

    /// A runner counting its syncs into `metrics` (for example the registry
    /// its engine's Twilio client also counts into).
    pub fn with_metrics(engine: SyncEngine, metrics: Metrics) -> Arc<Self> {
        Arc::new(Self {
            engine,
            gate: Arc::new(tokio::sync::Mutex::new(())),
            last: Mutex::new(None),
            closed: AtomicBool::new(false),
            events: EventHub::new(),
            metrics,
        })
    }

    /// Where this runner counts its syncs (`callview_sync_*`,
    /// `callview_*_ingested_total`); `/metrics` shows it.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Where this runner announces syncs (`sync_started`, `sync_progress`,
    /// `sync`); the API's `GET /api/events` streams it.
    pub fn events(&self) -> &EventHub {
        &self.events
    }

    /// The engine.
    pub fn engine(&self) -> &SyncEngine {
        &self.engine
    }

    /// Whether a sync is running now.
    pub fn is_running(&self) -> bool {
        self.gate.try_lock().is_err()
    }

    /// The outcome of the last finished sync (`None` before the first).
    pub fn last_outcome(&self) -> Option<SyncOutcome> {
        self.last.lock().map(|l| l.clone()).unwrap_or(None)
    }

    /// Runs one sync unless one is running already. The sync runs in its own
    /// task: dropping the returned future does not stop it.
    pub async fn run(
        self: &Arc<Self>,
        mode: SyncMode,
        trigger: SyncTrigger,
    ) -> Result<SyncReport, SyncRunError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(SyncRunError::ShuttingDown);
        }
        let guard = self
            .gate
            .clone()
            .try_lock_owned()
            .map_err(|_| SyncRunError::InProgress)?;
        let this = Arc::clone(self);
        let task = tokio::spawn(async move {
            let _guard = guard;
            let clock = std::time::Instant::now();
            let started = Utc::now();
            this.events.publish(ServerEvent::SyncStarted {
                trigger,
                at: started.timestamp_millis(),
            });
            let hub = this.events.clone();
            let on_page = move |p: Progress| {
                hub.publish(ServerEvent::SyncProgress {
                    trigger,
                    fetched: p.fetched,
                    pages: p.pages,
                    at: events::now(),
                });
            };
            let result = this.engine.run(mode, Some(&on_page)).await;
            let result = result.map_err(SyncRunError::from_sync);
            this.metrics.record_sync(
                trigger,
                outcome_label(&result),
                result.as_ref().ok(),
                clock.elapsed(),
            );
            this.record(trigger, started, &result);
            result
        });
        let clock = std::time::Instant::now();
        task.await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "the sync task failed");
            let result = Err(SyncRunError::Panicked);
            self.metrics
                .record_sync(trigger, outcome_label(&result), None, clock.elapsed());
            result
        })
    }

    fn record(
        &self,
        trigger: SyncTrigger,
        started: DateTime<Utc>,
        result: &Result<SyncReport, SyncRunError>,
    ) {
        let finished = Utc::now().timestamp_millis();
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let previous_success = last.as_ref().and_then(|l| l.last_success_at);
        let moved = result.as_ref().map_or(0, |r| r.moved);
        let outcome = match result {
            Ok(report) => SyncOutcome {
                at: started.timestamp_millis(),
                finished_at: finished,
                trigger,
                ok: true,
                error: None,
                inserted: report.inserted,
                updated: report.updated,
                fetched: report.fetched,
                last_success_at: Some(finished),
            },
            // Another process holding the store's lock is not a failure.
            Err(SyncRunError::InProgress) => return,
            Err(e) => {
                let message = match e {
                    SyncRunError::Store(_) => {
                        "the database failed during the sync (details in the server log)".to_owned()
                    }
                    other => other.to_string(),
                };
                SyncOutcome {
                    at: started.timestamp_millis(),
                    finished_at: finished,
                    trigger,
                    ok: false,
                    error: Some(message),
                    inserted: 0,
                    updated: 0,
                    fetched: 0,
                    last_success_at: previous_success,
                }
            }
        };
        self.events.publish(ServerEvent::Sync {
            trigger,
            ok: outcome.ok,
            inserted: outcome.inserted,
            updated: outcome.updated,
            moved,
            fetched: outcome.fetched,
            error: outcome.error.clone(),
            at: finished,
        });
        *last = Some(outcome);
    }

    /// Starts no new sync from now on and waits (at most `grace`) for the
    /// running one to finish. Returns whether the runner is idle.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.closed.store(true, Ordering::SeqCst);
        if self.is_running() {
            tracing::info!("waiting for the running sync to finish");
        }
        tokio::time::timeout(grace, self.gate.lock()).await.is_ok()
    }
}

/// The `outcome` label of `callview_sync_runs_total`.
fn outcome_label(result: &Result<SyncReport, SyncRunError>) -> &'static str {
    match result {
        Ok(_) => "success",
        Err(SyncRunError::InProgress) => "busy",
        Err(SyncRunError::Twilio(_)) => "twilio_error",
        Err(SyncRunError::Store(_)) => "store_error",
        Err(SyncRunError::ShuttingDown) => "shutting_down",
        Err(SyncRunError::Panicked) => "panicked",
    }
}

/// Runs `initial` (when given) and then an incremental sync every `interval`
/// until `stop` resolves. Failures are logged with their reason and
/// recorded for `/healthz`; the loop goes on.
pub async fn run_schedule(
    runner: Arc<SyncRunner>,
    initial: Option<SyncMode>,
    interval: Option<Duration>,
    stop: impl std::future::Future<Output = ()>,
) {
    let schedule = async {
        if let Some(mode) = initial {
            log_result(
                runner.run(mode, SyncTrigger::Initial).await,
                SyncTrigger::Initial,
            );
        }
        let Some(interval) = interval else {
            return std::future::pending().await;
        };
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            log_result(
                runner
                    .run(SyncMode::incremental(), SyncTrigger::Scheduled)
                    .await,
                SyncTrigger::Scheduled,
            );
        }
    };
    tokio::select! {
        () = schedule => {}
        () = stop => {}
    }
}

fn log_result(result: Result<SyncReport, SyncRunError>, trigger: SyncTrigger) {
    match result {
        Ok(report) if report.inserted + report.updated + report.moved > 0 => tracing::info!(
            ?trigger,
            fetched = report.fetched,
            inserted = report.inserted,
            updated = report.updated,
            "sync stored changes"
        ),
        Ok(report) => tracing::debug!(?trigger, fetched = report.fetched, "sync found nothing new"),
        Err(SyncRunError::InProgress) => {
            tracing::debug!(?trigger, "a sync is already running; skipped")
        }
        Err(SyncRunError::ShuttingDown) => {}
        Err(e) => tracing::warn!(?trigger, error = %e, "sync failed; the server keeps serving"),
    }
}
