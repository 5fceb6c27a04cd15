//! Serves a host application with the callview API mounted under `/calls`.
//!
//! ```text
//! cargo run -p callview-examples --bin embed-router            # http://127.0.0.1:3001
//! EMBED_LISTEN=127.0.0.1:8080 EMBED_API_TOKEN=secret cargo run -p callview-examples --bin embed-router
//! cargo run -p callview-examples --bin embed-router -- --once  # one request to itself, then exit
//! ```
//!
//! The host opens its own store (an in-memory SQLite database), loads it
//! from a simulated Twilio account, and keeps it current with an
//! incremental sync every 30 s while it serves.

use std::sync::Arc;
use std::time::Duration;

use callview_core::{Store, SyncMode};
use callview_examples::{host_app, simulated_sync, CALLVIEW_PREFIX};
use callview_server::SyncTrigger;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let once = std::env::args().any(|a| a == "--once");
    let listen = std::env::var("EMBED_LISTEN").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let token = std::env::var("EMBED_API_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());

    // The host's own store.
    let store: Arc<dyn Store> =
        Arc::new(callview_sqlite::SqliteStore::connect("sqlite::memory:").await?);
    let sync = simulated_sync(&store, 600, 9);
    let report = sync
        .run(
            SyncMode::Since(chrono::Utc::now() - chrono::Duration::days(31)),
            SyncTrigger::Other,
        )
        .await?;
    tracing::info!(inserted = report.inserted, "loaded the simulated account");

    let app = host_app(
        Arc::clone(&store),
        Some(Arc::clone(&sync)),
        token.as_deref(),
    );
    let listener =
        tokio::net::TcpListener::bind(if once { "127.0.0.1:0" } else { &listen }).await?;
    let addr = listener.local_addr()?;
    callview_server::check_exposure(addr, token.is_some(), false)?;
    println!("host app on http://{addr}/ with the call API at http://{addr}{CALLVIEW_PREFIX}/api/conversations");

    // Keep the store current while serving.
    let scheduler = tokio::spawn({
        let sync = Arc::clone(&sync);
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = sync
                    .run(SyncMode::incremental(), SyncTrigger::Scheduled)
                    .await
                {
                    tracing::warn!(error = %e, "sync failed");
                }
            }
        }
    });

    if once {
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let url = format!("http://{addr}{CALLVIEW_PREFIX}/healthz");
        let body = fetch(&url).await?;
        println!("{body}");
        server.abort();
    } else {
        axum::serve(listener, app)
            .with_graceful_shutdown(callview_server::server::shutdown_signal())
            .await?;
    }
    scheduler.abort();
    sync.shutdown(Duration::from_secs(30)).await;
    Ok(())
}

/// A minimal HTTP/1.1 GET (keeps the example free of an HTTP client).
async fn fetch(url: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    stream
        .write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or(response))
}
