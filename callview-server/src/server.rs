//! Serving the API: the listener check, the sync schedule and graceful shutdown.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use callview_core::SyncMode;
use tokio::net::TcpListener;

use crate::api::router;
use crate::state::AppState;
use crate::sync_runner::run_schedule;

/// How [`serve`] runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The API's state (store, sync runner, token).
    pub state: AppState,
    /// The sync to run at start (`None`: none). Needs a sync runner in `state`.
    pub initial_sync: Option<SyncMode>,
    /// Run [`SyncMode::incremental`] this often (`None`: never).
    pub sync_interval: Option<Duration>,
    /// Allow a non-loopback address without an API token.
    pub insecure_no_auth: bool,
    /// On shutdown, the most time allowed from the signal on for requests
    /// in flight to finish and the running sync to end after its current
    /// page; past it the server stops anyway (what the sync applied is
    /// kept: each page is one transaction).
    pub shutdown_grace: Duration,
}

/// The default of [`ServerConfig::shutdown_grace`] (`--shutdown-timeout`).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

impl ServerConfig {
    /// Serves `state` with no initial sync, no schedule, and a 30 s shutdown
    /// bound ([`DEFAULT_SHUTDOWN_GRACE`]).
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            initial_sync: None,
            sync_interval: None,
            insecure_no_auth: false,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// Why the server did not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without an API token.
    #[error("refusing to listen on {addr} without an API token: anyone who can reach this address could read the call history. Either set a token (CALLVIEW_API_TOKEN or --api-token, or create one with `callview token create NAME --role admin`; clients then send `Authorization: Bearer <token>`), or pass --insecure-no-auth if the network in front of the server already restricts access")]
    Unprotected {
        /// The address.
        addr: SocketAddr,
    },
    /// The socket failed.
    #[error("the listener failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Checks that a server on `addr` would not expose the API unprotected:
/// a non-loopback address needs an API token, or `insecure_no_auth`.
///
/// ```
/// use callview_server::check_exposure;
/// assert!(check_exposure("127.0.0.1:3000".parse().unwrap(), false, false).is_ok());
/// assert!(check_exposure("0.0.0.0:3000".parse().unwrap(), false, false).is_err());
/// assert!(check_exposure("0.0.0.0:3000".parse().unwrap(), true, false).is_ok());
/// assert!(check_exposure("[::]:3000".parse().unwrap(), false, true).is_ok());
/// ```
pub fn check_exposure(
    addr: SocketAddr,
    has_token: bool,
    insecure_no_auth: bool,
) -> Result<(), ServeError> {
    if addr.ip().to_canonical().is_loopback() || has_token || insecure_no_auth {
        Ok(())
    } else {
        Err(ServeError::Unprotected { addr })
    }
}

/// Serves the API on `listener` until SIGINT or SIGTERM, running the
/// initial sync and the schedule of `config`. On shutdown it stops
/// accepting, ends the open event streams, lets requests in flight finish,
/// starts no new sync and stops the running one after the page it is
/// applying; all of it within `shutdown_grace` of the signal, past which
/// it returns anyway.
pub async fn serve(listener: TcpListener, config: ServerConfig) -> Result<(), ServeError> {
    serve_with_shutdown(listener, config, shutdown_signal()).await
}

/// Like [`serve`], stopping when `shutdown` resolves instead of on a signal.
pub async fn serve_with_shutdown(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = listener.local_addr()?;
    // Stored tokens (`callview token create`) protect the API too.
    let protected = config.state.has_api_token()
        || crate::auth::auth_required(&config.state)
            .await
            .unwrap_or(false);
    check_exposure(addr, protected, config.insecure_no_auth)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    let scheduler = config.state.sync_runner().cloned().map(|runner| {
        let mut stop_rx = stop_rx.clone();
        tokio::spawn(run_schedule(
            runner,
            config.initial_sync,
            config.sync_interval,
            async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            },
        ))
    });

    let app = router(config.state.clone());
    let events = config.state.events().clone();
    let runner = config.state.sync_runner().cloned();
    let grace = config.shutdown_grace;
    let signalled_at = Arc::new(OnceLock::new());
    let signal_time = Arc::clone(&signalled_at);
    let signal = async move {
        shutdown.await;
        let _ = signal_time.set(tokio::time::Instant::now());
        tracing::info!(
            bound_secs = grace.as_secs_f64(),
            "shutting down: no new requests or syncs, the running sync stops after its current page"
        );
        let _ = stop_tx.send(true);
        if let Some(runner) = runner {
            runner.stop();
        }
        // Open event streams would otherwise hold the graceful shutdown.
        events.close();
    };
    // From the signal on, requests in flight and the sync share one bound.
    let mut signalled = stop_rx.clone();
    let cut_off = async move {
        let _ = signalled.wait_for(|stop| *stop).await;
        tokio::time::sleep(grace).await;
    };
    tracing::info!(%addr, "serving the API");
    // Without TCP_NODELAY a small response written in two parts (headers,
    // then a short body such as an audio range) waits for the client's
    // delayed ACK: 40 ms per request, measured on the recording proxy.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    // The peer's address: failed authentications are counted per client.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let serving = axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .into_future();
    let served = tokio::select! {
        served = serving => served,
        () = cut_off => {
            tracing::warn!(
                bound_secs = grace.as_secs_f64(),
                "requests still in flight at the shutdown bound are cut off"
            );
            Ok(())
        }
    };

    if let Some(scheduler) = scheduler {
        scheduler.abort();
        let _ = scheduler.await;
    }
    if let Some(runner) = config.state.sync_runner() {
        let left = signalled_at
            .get()
            .map_or(grace, |at: &tokio::time::Instant| {
                grace.saturating_sub(at.elapsed())
            });
        if !runner.shutdown(left).await {
            tracing::warn!(
                bound_secs = grace.as_secs_f64(),
                "the running sync did not stop within the shutdown bound; every page it applied is kept"
            );
        }
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
