//! Graceful shutdown, on both stores: `callview serve` and `callview sync`
//! get SIGTERM in the middle of a sync (a simulated Twilio answering each
//! page slowly). The server stops accepting, ends its event streams and
//! exits 0 within `--shutdown-timeout`; the sync stops after the page it
//! was applying. The database holds whole pages only (counters exact, no
//! call twice, none unknown to Twilio), and the next start completes the
//! rest: every call of the account, exactly the state of a clean sync.

mod common;
mod reliability;

use std::collections::HashSet;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callview_core::testkit::{check_invariants, snapshot, StoreSnapshot};
use callview_core::{PartyRules, Store, SyncEngine, SyncMode};
use callview_sim::{ServerOptions, SimConfig, SimulatedTwilio};
use chrono::Utc;
use common::Backend;
use reliability::*;

/// The bound given to `--shutdown-timeout`.
const BOUND: Duration = Duration::from_secs(10);

async fn database_url(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("calls.db").display()),
        Backend::Postgres => callview_postgres::testing::fresh_database_url().await,
    }
}

/// What a clean, uninterrupted sync of `sim` gives.
async fn clean(backend: Backend, sim: &SimulatedTwilio) -> StoreSnapshot {
    let store = common::store(backend).await;
    SyncEngine::new(
        Arc::new(sim.clone()),
        Arc::clone(&store),
        PartyRules::default(),
    )
    .run(
        SyncMode::Since(Utc::now() - chrono::Duration::days(40)),
        None,
    )
    .await
    .unwrap();
    snapshot(store.as_ref()).await.unwrap()
}

/// Calls stored so far, read beside the running process (0 before the
/// schema exists).
async fn stored_calls(url: &str) -> u64 {
    if url.starts_with("postgres") {
        let Ok(pool) = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
        else {
            return 0;
        };
        let count: i64 = sqlx::query_scalar("select count(*) from messages")
            .fetch_one(&pool)
            .await
            .unwrap_or(0);
        pool.close().await;
        count as u64
    } else {
        let path = url.trim_start_matches("sqlite://").to_owned();
        tokio::task::spawn_blocking(move || {
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE;
            let Ok(conn) = rusqlite::Connection::open_with_flags(&path, flags) else {
                return 0;
            };
            let _ = conn.busy_timeout(Duration::from_secs(1));
            conn.query_row("select count(*) from messages", [], |r| r.get::<_, i64>(0))
                .unwrap_or(0) as u64
        })
        .await
        .unwrap()
    }
}

/// Opens what the stopped process left: it opens, counters equal the
/// rows, no call twice or unknown to Twilio. Returns the calls stored.
async fn check_consistent(url: &str, known: &HashSet<String>, what: &str) -> u64 {
    let store: Arc<dyn Store> = callview_server::db::open_store(url)
        .await
        .unwrap_or_else(|e| panic!("{what}: the database does not open: {e}"));
    if let Err(violations) = check_invariants(store.as_ref()).await {
        panic!("{what}: {violations}");
    }
    let snap = snapshot(store.as_ref()).await.unwrap();
    let sids: Vec<&String> = snap
        .conversations
        .values()
        .flat_map(|c| c.messages.iter())
        .flat_map(|m| std::iter::once(&m.root).chain(m.legs.iter()))
        .map(|c| &c.sid)
        .collect();
    let distinct: HashSet<&&String> = sids.iter().collect();
    assert_eq!(distinct.len(), sids.len(), "{what}: a call is stored twice");
    assert_eq!(sids.len() as u64, snap.counts.calls, "{what}: stray rows");
    for sid in sids {
        assert!(known.contains(sid), "{what}: {sid} is not a Twilio call");
    }
    snap.counts.calls
}

fn sigterm(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child to exit, at most `limit`; its status and how long
/// it took.
async fn exit_within(
    child: &mut Kill,
    limit: Duration,
    log: &std::path::Path,
) -> (ExitStatus, Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return (status, start.elapsed());
        }
        if start.elapsed() > limit {
            panic!(
                "still running {limit:?} after SIGTERM; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn twilio_env(command: &mut std::process::Command, sim: &SimulatedTwilio, base: &str) {
    command
        .env("TWILIO_ACCOUNT_SID", sim.account_sid())
        .env("TWILIO_AUTH_TOKEN", "shutdown-test-token")
        .env("TWILIO_API_BASE_URL", base)
        .env("TWILIO_INTELLIGENCE_BASE_URL", base);
}

fn serve(
    dir: &std::path::Path,
    url: &str,
    sim: &SimulatedTwilio,
    twilio: &str,
    port: u16,
    log: &std::path::Path,
) -> Kill {
    let mut command = callview(dir);
    twilio_env(&mut command, sim, twilio);
    let child = command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--no-initial-sync",
            "--sync-interval",
            "1",
            "--shutdown-timeout",
            &BOUND.as_secs().to_string(),
        ])
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .unwrap();
    Kill(child)
}

async fn serve_stops_on_sigterm_mid_sync(backend: Backend) {
    // Five days of history: the scheduled incremental sync of an empty
    // store (seven days back) covers all of it, in day slices of one
    // page each, answered after 300 ms.
    // No recordings: each transcript's sentences would be one more slow
    // request.
    let sim = SimulatedTwilio::new(SimConfig {
        days: 5,
        media: false,
        ..SimConfig::new(7101, 3_000)
    });
    let known: HashSet<String> = sim.calls().iter().map(|c| c.sid.to_string()).collect();
    let twilio = serve_sim(
        sim.clone(),
        ServerOptions {
            latency_per_page: Duration::from_millis(300),
            ..ServerOptions::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;
    let log = dir.path().join("serve-1.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = serve(dir.path(), &url, &sim, &twilio.base, port, &log);
    wait_until_up(&format!("{base}/healthz"), Duration::from_secs(60)).await;

    // An open event stream, read until a page of the sync is applied.
    let http = reqwest::Client::new();
    let mut events = http.get(format!("{base}/api/events")).send().await.unwrap();
    assert!(events.status().is_success());
    let mut seen = String::new();
    let waited = Instant::now();
    while !seen.contains("sync_progress") {
        assert!(
            waited.elapsed() < Duration::from_secs(120),
            "no sync_progress event; saw {seen}"
        );
        match tokio::time::timeout(Duration::from_secs(120), events.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("the event stream ended early: {other:?}"),
        }
    }
    assert!(stored_calls(&url).await > 0, "a page was applied");

    sigterm(&child.0);
    // The event stream ends (it would otherwise hold the shutdown).
    let ended = tokio::time::timeout(BOUND, async {
        while let Ok(Some(_)) = events.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the event stream stayed open after SIGTERM");
    let (status, took) = exit_within(&mut child, BOUND + Duration::from_secs(5), &log).await;
    let first_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{status}; log:\n{first_log}");
    assert!(took < BOUND, "exited {took:?} after SIGTERM");
    assert!(
        first_log.contains("sync stopped between pages"),
        "the sync was stopped mid-way; log:\n{first_log}"
    );
    // Nothing listens any more.
    assert!(http.get(format!("{base}/healthz")).send().await.is_err());

    let what = format!("{backend:?} serve after SIGTERM ({took:?})");
    let stored = check_consistent(&url, &known, &what).await;
    assert!(
        stored > 0 && stored < known.len() as u64,
        "{what}: {stored} of {} calls: not mid-way",
        known.len()
    );
    eprintln!(
        "{what}: exit 0, {stored} of {} calls stored, consistent",
        known.len()
    );

    // The next start completes exactly the rest.
    let log = dir.path().join("serve-2.log");
    let mut child = serve(dir.path(), &url, &sim, &twilio.base, port, &log);
    wait_until_up(&format!("{base}/healthz"), Duration::from_secs(60)).await;
    let waited = Instant::now();
    let last = loop {
        let health: serde_json::Value = http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if health["last_sync"]["ok"] == true {
            break health["last_sync"].clone();
        }
        assert!(
            waited.elapsed() < Duration::from_secs(180),
            "no successful sync after the restart: {health}; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    sigterm(&child.0);
    let (status, _) = exit_within(&mut child, BOUND + Duration::from_secs(5), &log).await;
    assert!(status.success(), "{status}");
    assert_eq!(
        last["inserted"].as_u64().unwrap() + stored,
        known.len() as u64,
        "the restart stored exactly the calls missing: {last}"
    );
    check_consistent(&url, &known, &format!("{backend:?} after the restart")).await;
    let store = callview_server::db::open_store(&url).await.unwrap();
    assert_eq!(
        snapshot(store.as_ref()).await.unwrap(),
        clean(backend, &sim).await,
        "{backend:?}: the state after the restart differs from a clean sync"
    );
}

fn sync_command(
    dir: &std::path::Path,
    url: &str,
    sim: &SimulatedTwilio,
    twilio: &str,
) -> std::process::Command {
    let mut command = callview(dir);
    twilio_env(&mut command, sim, twilio);
    command
        .args(["sync", "--since", "40d", "--json"])
        .env("DATABASE_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

async fn sync_stops_on_sigterm_and_the_next_run_resumes(backend: Backend) {
    // Thirty days: sixteen day slices of one page each, 200 ms per page.
    let sim = SimulatedTwilio::new(SimConfig {
        media: false,
        ..SimConfig::new(7102, 3_000)
    });
    let known: HashSet<String> = sim.calls().iter().map(|c| c.sid.to_string()).collect();
    let twilio = serve_sim(
        sim.clone(),
        ServerOptions {
            latency_per_page: Duration::from_millis(200),
            ..ServerOptions::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;
    let child = sync_command(dir.path(), &url, &sim, &twilio.base)
        .spawn()
        .unwrap();
    let mut child = Kill(child);
    let waited = Instant::now();
    while stored_calls(&url).await == 0 {
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "the sync ended before a page was applied"
        );
        assert!(
            waited.elapsed() < Duration::from_secs(120),
            "no page applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sigterm(&child.0);
    let log = dir.path().join("none.log");
    let (status, took) = exit_within(&mut child, BOUND, &log).await;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.0.stderr.take() {
        use std::io::Read;
        pipe.read_to_string(&mut stderr).unwrap();
    }
    assert_eq!(status.code(), Some(1), "{status}: {stderr}");
    assert!(
        stderr.contains("the sync was stopped") && stderr.contains("run the same command again"),
        "{stderr}"
    );
    let what = format!("{backend:?} sync after SIGTERM ({took:?})");
    let stored = check_consistent(&url, &known, &what).await;
    assert!(stored < known.len() as u64, "{what}: not mid-way");
    eprintln!(
        "{what}: {stored} of {} calls stored, consistent",
        known.len()
    );

    // The next run skips the day slices the stopped one completed.
    let command = sync_command(dir.path(), &url, &sim, &twilio.base);
    let output = tokio::task::spawn_blocking(move || {
        let mut command = command;
        command.output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        report["resumed_slices"].as_u64().unwrap() > 0,
        "the next run resumed: {report}"
    );
    assert_eq!(
        report["inserted"].as_u64().unwrap() + stored,
        known.len() as u64,
        "{report}"
    );
    let store = callview_server::db::open_store(&url).await.unwrap();
    assert_eq!(
        snapshot(store.as_ref()).await.unwrap(),
        clean(backend, &sim).await,
        "{backend:?}: the state after the resumed sync differs from a clean sync"
    );
}

on_both_stores!(
    serve_stops_on_sigterm_mid_sync,
    sync_stops_on_sigterm_and_the_next_run_resumes,
);

/// A client that never finishes its request does not hold the shutdown
/// past the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_does_not_hold_the_shutdown_past_its_bound() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = callview_server::AppState::new(common::store(Backend::Sqlite).await);
    let config = callview_server::ServerConfig {
        shutdown_grace: Duration::from_secs(2),
        ..callview_server::ServerConfig::new(state)
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(callview_server::serve_with_shutdown(
        listener,
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    // Half a request, then nothing.
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: callview\r\n")
        .await
        .unwrap();
    // And a request that completes meanwhile.
    let body = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("status"), "{body}");
    let at = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("serve returned")
        .unwrap()
        .unwrap();
    assert!(at.elapsed() < Duration::from_secs(4), "{:?}", at.elapsed());
    drop(stalled);
}

/// A request in flight when the signal comes gets its whole answer: a
/// "Sync now" waiting for its sync hears that the sync stopped for the
/// shutdown (503 `shutting_down`), and the database holds whole pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_the_signal_gets_its_answer() {
    let store = common::store(Backend::Sqlite).await;
    let client = common::SlowTwilio {
        inner: common::sim(300, 3),
        delay: Duration::from_millis(300),
    };
    let runner = callview_server::SyncRunner::new(
        SyncEngine::new(Arc::new(client), Arc::clone(&store), PartyRules::default())
            .with_page_size(50),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = callview_server::ServerConfig::new(
        callview_server::AppState::new(Arc::clone(&store)).with_sync(Arc::clone(&runner)),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(callview_server::serve_with_shutdown(
        listener,
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    let request = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{base}/api/sync/today"))
            .send(),
    );
    let waited = Instant::now();
    while !runner.is_running() {
        assert!(waited.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let at = Instant::now();
    stop.send(()).unwrap();
    let response = request.await.unwrap().expect("an answer, not a reset");
    assert_eq!(response.status().as_u16(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(common::assert_error(&body), "shutting_down");
    tokio::time::timeout(Duration::from_secs(30), served)
        .await
        .expect("serve returned")
        .unwrap()
        .unwrap();
    assert!(at.elapsed() < Duration::from_secs(5), "{:?}", at.elapsed());
    assert!(!runner.is_running());
    callview_core::testkit::assert_invariants(store.as_ref()).await;
}
