//! Syncing while serving: one sync at a time, failures reported, the
//! schedule, and a shutdown that lets the running sync finish.

mod common;

use std::sync::Arc;
use std::time::Duration;

use callview_core::{PartyRules, Store, SyncEngine, SyncMode};
use callview_server::{
    serve_with_shutdown, AppState, ServerConfig, SyncRunError, SyncRunner, SyncTrigger,
};
use common::*;

fn slow_runner(store: &Arc<dyn Store>, delay: Duration) -> Arc<SyncRunner> {
    let client = SlowTwilio {
        inner: sim(300, 3),
        delay,
    };
    SyncRunner::new(
        SyncEngine::new(Arc::new(client), Arc::clone(store), PartyRules::default())
            .with_page_size(100),
    )
}

on_both_stores!(
    two_concurrent_syncs_one_is_refused_with_409,
    serve_runs_the_initial_sync_and_the_schedule,
);

async fn two_concurrent_syncs_one_is_refused_with_409(backend: Backend) {
    let store = store(backend).await;
    let runner = slow_runner(&store, Duration::from_millis(400));
    let server = spawn(AppState::new(store).with_sync(runner)).await;
    let (a, b) = tokio::join!(
        server.post("/api/sync/today"),
        server.post("/api/sync/today")
    );
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let refused = if a.0 == 409 { &a.1 } else { &b.1 };
    assert_eq!(assert_error(refused), "sync_in_progress");
    let ok = if a.0 == 200 { &a.1 } else { &b.1 };
    assert!(ok["synced"].as_u64().unwrap() > 0);
    // Once it has finished, the next one runs.
    let (status, body) = server.post("/api/sync/recent").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_sync_keeps_running_when_its_client_hangs_up() {
    let store = store(Backend::Sqlite).await;
    let runner = slow_runner(&store, Duration::from_millis(300));
    let server = spawn(AppState::new(Arc::clone(&store)).with_sync(Arc::clone(&runner))).await;
    let request = server
        .http
        .post(server.url("/api/sync/today"))
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(request.is_err(), "the client gave up");
    assert!(runner.is_running());
    let (_, health) = server.get("/healthz").await;
    assert_eq!(health["sync_running"], true);
    while runner.is_running() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = runner.last_outcome().unwrap();
    assert!(last.ok && last.inserted > 0, "{last:?}");
    assert_eq!(last.trigger, SyncTrigger::Manual);
    assert!(store.counts().await.unwrap().calls > 0);
}

#[tokio::test]
async fn a_failing_sync_is_502_with_the_reason_and_shown_by_healthz() {
    let store = store(Backend::Sqlite).await;
    let runner = SyncRunner::new(SyncEngine::new(
        Arc::new(RejectingTwilio),
        Arc::clone(&store),
        PartyRules::default(),
    ));
    let server = spawn(AppState::new(store).with_sync(runner)).await;
    for path in ["/api/sync/today", "/api/sync/recent"] {
        let (status, body) = server.post(path).await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(assert_error(&body), "sync_failed");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("rejected the credentials"), "{message}");
    }
    let (status, health) = server.get("/healthz").await;
    assert_eq!(status, 200, "the store is fine: {health}");
    let last = &health["last_sync"];
    assert_eq!(last["ok"], false);
    assert!(
        last["error"].as_str().unwrap().contains("credentials"),
        "{last}"
    );
    assert!(last.get("last_success_at").is_none());
    // The API goes on serving.
    let (status, _) = server.get("/api/conversations").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_runner_refuses_a_second_sync_and_new_syncs_after_shutdown() {
    let store = store(Backend::Sqlite).await;
    let runner = slow_runner(&store, Duration::from_millis(200));
    let first = {
        let runner = Arc::clone(&runner);
        tokio::spawn(async move {
            runner
                .run(SyncMode::incremental(), SyncTrigger::Other)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        runner
            .run(SyncMode::incremental(), SyncTrigger::Other)
            .await
            .unwrap_err(),
        SyncRunError::InProgress
    );
    assert!(
        runner.shutdown(Duration::from_secs(30)).await,
        "idle once the first stopped"
    );
    assert_eq!(
        first.await.unwrap().unwrap_err(),
        SyncRunError::ShuttingDown,
        "the running sync stopped after its current page"
    );
    callview_core::testkit::assert_invariants(store.as_ref()).await;
    assert_eq!(
        runner
            .run(SyncMode::incremental(), SyncTrigger::Other)
            .await
            .unwrap_err(),
        SyncRunError::ShuttingDown
    );
}

async fn serve_runs_the_initial_sync_and_the_schedule(backend: Backend) {
    let store = store(backend).await;
    let account = sim(200, 11);
    let runner = SyncRunner::new(SyncEngine::new(
        Arc::new(account.clone()),
        Arc::clone(&store),
        PartyRules::default(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = ServerConfig {
        initial_sync: Some(SyncMode::Since(
            chrono::Utc::now() - chrono::Duration::days(31),
        )),
        sync_interval: Some(Duration::from_millis(300)),
        ..ServerConfig::new(AppState::new(Arc::clone(&store)).with_sync(Arc::clone(&runner)))
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_with_shutdown(listener, config, async move {
        let _ = stopped.await;
    }));

    // The initial sync loads the account.
    let initial = wait_for(|| async { runner.last_outcome() }).await;
    assert!(initial.ok, "{initial:?}");
    assert_eq!(initial.trigger, SyncTrigger::Initial);
    let body: serde_json::Value = reqwest::get(format!("{base}/api/conversations"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["total"].as_u64().unwrap() > 0, "{body}");
    let before = store.counts().await.unwrap().calls;

    // New traffic shows up through the schedule.
    account.generate_live(4);
    let generated_at = chrono::Utc::now().timestamp_millis();
    let outcome = wait_for(|| async {
        runner
            .last_outcome()
            .filter(|o| o.at > generated_at && o.trigger == SyncTrigger::Scheduled)
    })
    .await;
    assert!(outcome.ok, "{outcome:?}");
    assert!(store.counts().await.unwrap().calls > before);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("shuts down")
        .unwrap()
        .unwrap();
    assert!(!runner.is_running());
}

#[tokio::test]
async fn shutdown_stops_the_running_sync_after_its_current_page() {
    let store = store(Backend::Sqlite).await;
    let runner = slow_runner(&store, Duration::from_millis(300));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServerConfig {
        initial_sync: Some(SyncMode::Since(
            chrono::Utc::now() - chrono::Duration::days(31),
        )),
        ..ServerConfig::new(AppState::new(Arc::clone(&store)).with_sync(Arc::clone(&runner)))
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_with_shutdown(listener, config, async move {
        let _ = stopped.await;
    }));
    wait_for(|| async { runner.is_running().then_some(()) }).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    assert!(!runner.is_running());
    let outcome = runner
        .last_outcome()
        .expect("the initial sync ended before serve returned");
    assert!(!outcome.ok, "{outcome:?}");
    assert_eq!(
        outcome.error.as_deref(),
        Some("the server is shutting down"),
        "{outcome:?}"
    );
    assert_eq!(outcome.trigger, SyncTrigger::Initial);
    // Whole pages only; the rest is for the next start.
    callview_core::testkit::assert_invariants(store.as_ref()).await;
    assert!(store.counts().await.unwrap().calls < 300);
}

/// Polls `f` every 50 ms for up to 60 s.
async fn wait_for<T, F, Fut>(f: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
