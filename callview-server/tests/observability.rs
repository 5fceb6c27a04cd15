//! Observability: `/metrics` (families, HTTP counters by route template,
//! sync and Twilio counters after a sync, the live stream gauge, the
//! token), `/readyz` turning false and true again with the database,
//! request ids, and the binary's JSON log lines.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use callview_core::twilio::{Credentials, HttpTwilioClient, RetryPolicy, Secret, TwilioConfig};
use callview_core::{PartyRules, Store, SyncEngine};
use callview_server::{AppState, SyncRunner};
use callview_sim::ServerOptions;
use common::*;

const TOKEN: &str = "metrics-token-of-the-test";

on_both_stores!(
    metrics_show_every_family_and_count_requests_by_route_template,
    sync_counters_move_after_a_sync,
    readyz_turns_false_when_the_database_goes_away_and_true_when_it_returns,
);

/// `GET /metrics` (with `token` when given): the text, after checking the
/// status and the content type.
async fn scrape(server: &TestServer, token: Option<&str>) -> String {
    let mut request = server.http.get(server.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// The value of one series (`name` or `name{labels}` exactly as printed).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().unwrap())
        })
}

/// The sum of every series of a family whose labels contain `with`.
fn sum(text: &str, name: &str, with: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) && line.contains(with))
        .map(|line| line.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum()
}

async fn metrics_show_every_family_and_count_requests_by_route_template(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    // Families with fixed labels (or none) show from the first scrape;
    // those labelled by what happened (route, status, outcome) with their
    // first series.
    let text = scrape(&server, None).await;
    for family in [
        "callview_sync_duration_seconds",
        "callview_sync_last_success_timestamp_seconds",
        "callview_calls_fetched_total",
        "callview_calls_ingested_total",
        "callview_recordings_ingested_total",
        "callview_transcripts_ingested_total",
        "callview_twilio_request_duration_seconds",
        "callview_db_pool_connections",
        "callview_db_pool_max_connections",
        "callview_sse_subscribers",
        "callview_sync_lag_seconds",
        "callview_build_info",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing from\n{text}"
        );
    }
    let max = value(&text, "callview_db_pool_max_connections").unwrap();
    assert_eq!(max, if backend == Backend::Sqlite { 1.0 } else { 4.0 });

    // Two conversations, one missing, one unknown route.
    let (_, list) = server.get("/api/conversations?limit=2").await;
    for c in list["conversations"].as_array().unwrap() {
        let (status, _) = server
            .get(&format!("/api/conversations/{}", c["id"].as_str().unwrap()))
            .await;
        assert_eq!(status, 200);
    }
    let (status, _) = server.get("/api/conversations/999999").await;
    assert_eq!(status, 404);
    let (status, _) = server.get("/no/such/route/42").await;
    assert_eq!(status, 404);

    let text = scrape(&server, None).await;
    for family in [
        "callview_http_requests_total",
        "callview_http_request_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing from\n{text}"
        );
    }
    let one = "callview_http_requests_total{route=\"/api/conversations/{id}\",method=\"GET\"";
    assert_eq!(
        value(&text, &format!("{one},status=\"200\"}}")),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, &format!("{one},status=\"404\"}}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "callview_http_requests_total{route=\"/api/conversations\",method=\"GET\",status=\"200\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "callview_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}"
        ),
        Some(1.0),
        "{text}"
    );
    // The previous scrape counts as a request to /metrics.
    assert_eq!(
        value(
            &text,
            "callview_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"200\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "callview_http_request_duration_seconds_count{route=\"/api/conversations/{id}\",method=\"GET\"}"
        ),
        Some(3.0),
        "{text}"
    );
    // Never a raw path: no id, no unknown path in a label.
    // (As a path: a duration's sum may well print as 0.0052...999999.)
    assert!(!text.contains("/999999"), "{text}");
    assert!(!text.contains("/no/such/route"), "{text}");
    for c in list["conversations"].as_array().unwrap() {
        let raw = format!("/api/conversations/{}\"", c["id"].as_str().unwrap());
        assert!(!text.contains(&raw), "{raw} in\n{text}");
    }
}

async fn sync_counters_move_after_a_sync(backend: Backend) {
    let (server, sim) = loaded(backend).await;
    let before = scrape(&server, None).await;
    let success = "callview_sync_runs_total{trigger=\"manual\",outcome=\"success\"}";
    assert_eq!(value(&before, success), None, "{before}");
    assert_eq!(value(&before, "callview_calls_fetched_total"), Some(0.0));
    assert_eq!(
        value(&before, "callview_sync_last_success_timestamp_seconds"),
        Some(0.0)
    );
    // The helper's sync wrote the watermark: the lag is known already.
    let lag_before = value(&before, "callview_sync_lag_seconds").unwrap();
    assert!(lag_before >= 0.0, "{lag_before}");

    // New calls, then "Sync now".
    sim.generate_live(5);
    let (status, body) = server.post("/api/sync/today").await;
    assert_eq!(status, 200, "{body}");
    let fetched = body["report"]["fetched"].as_f64().unwrap();
    let inserted = body["report"]["inserted"].as_f64().unwrap();
    assert!(fetched > 0.0 && inserted > 0.0, "{body}");

    let after = scrape(&server, None).await;
    assert_eq!(value(&after, success), Some(1.0), "{after}");
    assert_eq!(
        value(&after, "callview_sync_duration_seconds_count"),
        Some(1.0)
    );
    assert_eq!(value(&after, "callview_calls_fetched_total"), Some(fetched));
    assert_eq!(
        value(&after, "callview_calls_ingested_total{result=\"inserted\"}"),
        Some(inserted),
        "{after}"
    );
    let report = &body["report"];
    for (result, key) in [
        ("updated", "updated"),
        ("unchanged", "unchanged"),
        ("moved", "moved"),
    ] {
        assert_eq!(
            value(
                &after,
                &format!("callview_calls_ingested_total{{result=\"{result}\"}}")
            ),
            report[key].as_f64(),
            "{result}: {after}"
        );
    }
    for result in ["fetched", "inserted", "updated", "unchanged"] {
        assert_eq!(
            value(
                &after,
                &format!("callview_texts_ingested_total{{result=\"{result}\"}}")
            ),
            report["texts"][result].as_f64(),
            "texts {result}: {after}"
        );
    }
    assert!(
        report["texts"]["fetched"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert_eq!(
        value(
            &after,
            "callview_recordings_ingested_total{result=\"fetched\"}"
        ),
        report["media"]["recordings_fetched"].as_f64(),
        "{after}"
    );
    let last = value(&after, "callview_sync_last_success_timestamp_seconds").unwrap();
    let now = chrono::Utc::now().timestamp() as f64;
    assert!((now - 600.0..=now + 1.0).contains(&last), "{last} vs {now}");
    assert!(value(&after, "callview_sync_lag_seconds").is_some());

    // A failing sync counts under its outcome.
    let store = Arc::clone(&server.store);
    let failing = SyncRunner::new(SyncEngine::new(
        Arc::new(RejectingTwilio),
        Arc::clone(&store),
        PartyRules::default(),
    ));
    let failing = spawn(AppState::new(store).with_sync(failing)).await;
    let (status, _) = failing.post("/api/sync/recent").await;
    assert_eq!(status, 502);
    let text = scrape(&failing, None).await;
    assert_eq!(
        value(
            &text,
            "callview_sync_runs_total{trigger=\"recent\",outcome=\"twilio_error\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(value(&text, "callview_calls_fetched_total"), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_requests_are_counted_by_status_with_429s_and_retries() {
    // The real client against the simulated account served over HTTP,
    // every third request throttled.
    let sim = sim(120, 11);
    let app = callview_sim::router(
        sim.clone(),
        ServerOptions {
            fail_every_nth_with_429: Some(3),
            ..ServerOptions::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let twilio = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let metrics = callview_server::Metrics::new();
    let client = HttpTwilioClient::new(TwilioConfig {
        credentials: Credentials::AuthToken {
            account_sid: sim.account_sid().to_owned(),
            auth_token: Secret::new("unused"),
        },
        base_url: base.clone(),
        intelligence_base_url: base,
    })
    .unwrap()
    .with_retry_policy(RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    })
    .with_observer(metrics.twilio_observer());
    let store = store(Backend::Sqlite).await;
    let runner = SyncRunner::with_metrics(
        SyncEngine::new(Arc::new(client), Arc::clone(&store), PartyRules::default()),
        metrics,
    );
    let server = spawn(AppState::new(store).with_sync(runner)).await;
    let (status, body) = server.post("/api/sync/today").await;
    assert_eq!(status, 200, "{body}");

    let text = scrape(&server, None).await;
    let ok = value(&text, "callview_twilio_requests_total{status=\"200\"}").unwrap();
    let throttled = value(&text, "callview_twilio_requests_total{status=\"429\"}").unwrap();
    assert!(ok >= 2.0, "{text}");
    assert!(throttled >= 1.0, "{text}");
    let retried = value(&text, "callview_twilio_retries_total{status=\"429\"}").unwrap();
    assert_eq!(retried, throttled, "every 429 was retried: {text}");
    // Each answer timed once.
    assert_eq!(
        value(&text, "callview_twilio_request_duration_seconds_count"),
        Some(sum(&text, "callview_twilio_requests_total", "status=")),
        "{text}"
    );
    assert_eq!(
        sum(&text, "callview_twilio_requests_total", "status=\"5"),
        0.0
    );
    twilio.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_gauge_follows_open_streams() {
    let state = AppState::new(store(Backend::Sqlite).await);
    let hub = state.events().clone();
    let server = spawn(state).await;
    assert_eq!(
        value(&scrape(&server, None).await, "callview_sse_subscribers"),
        Some(0.0)
    );
    let mut stream = server
        .http
        .get(server.url("/api/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    // The first event (hello) arrived: the stream is subscribed.
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("hello"));
    assert_eq!(
        value(&scrape(&server, None).await, "callview_sse_subscribers"),
        Some(1.0)
    );
    drop(stream);
    // The server notices a closed stream when it next writes to it.
    let mut subscribers = 1.0;
    for _ in 0..200 {
        hub.publish(callview_server::ServerEvent::changed(0, 0));
        subscribers = value(&scrape(&server, None).await, "callview_sse_subscribers").unwrap();
        if subscribers == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(subscribers, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_on_the_api_listener_and_not_on_the_private_one() {
    let state = AppState::new(store(Backend::Sqlite).await).with_api_token(Some(TOKEN));
    let server = spawn(state.clone()).await;
    for token in [None, Some("wrong")] {
        let (status, body) = server.get_with("/metrics", token).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(assert_error(&body), "unauthorized");
    }
    let text = scrape(&server, Some(TOKEN)).await;
    assert!(text.contains("callview_http_requests_total"));
    // Probes need no token.
    assert_eq!(server.get("/readyz").await.0, 200);
    assert_eq!(server.get("/healthz").await.0, 200);

    // The private listener: no token, and OpenMetrics on request.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let private = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(callview_server::health::serve_private(
        listener,
        state,
        async move {
            let _ = stopped.await;
        },
    ));
    let http = reqwest::Client::new();
    let response = http
        .get(format!("{private}/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    // The scrape with the token on the API listener was counted there.
    assert!(
        text.contains(
            "callview_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"401\"} 2"
        ),
        "{text}"
    );
    for path in ["/readyz", "/healthz"] {
        let response = http.get(format!("{private}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// Makes the database of `store` unreachable (`false`) or reachable again.
enum Outage {
    /// A SQLite file, moved away and back.
    Sqlite {
        path: std::path::PathBuf,
        _dir: tempfile::TempDir,
    },
    /// A PostgreSQL database: connections refused and ended, then allowed.
    Postgres { database: String },
}

impl Outage {
    async fn store(backend: Backend) -> (Arc<dyn Store>, Self) {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("ready.db");
                let store = callview_sqlite::SqliteStore::open(path.to_str().unwrap()).unwrap();
                (Arc::new(store), Self::Sqlite { path, _dir: dir })
            }
            Backend::Postgres => {
                let store = callview_postgres::testing::fresh_store().await;
                let database: String = sqlx::query_scalar("SELECT current_database()::text")
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
                (Arc::new(store), Self::Postgres { database })
            }
        }
    }

    async fn set_reachable(&self, reachable: bool) {
        match self {
            Self::Sqlite { path, .. } => {
                let away = path.with_extension("away");
                if reachable {
                    std::fs::rename(&away, path).unwrap();
                } else {
                    std::fs::rename(path, &away).unwrap();
                }
            }
            Self::Postgres { database } => {
                use sqlx::Connection;
                let admin = callview_postgres::testing::admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS {reachable}"
                )))
                .execute(&mut conn)
                .await
                .unwrap();
                if !reachable {
                    sqlx::query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = $1 AND pid <> pg_backend_pid()",
                    )
                    .bind(database)
                    .execute(&mut conn)
                    .await
                    .unwrap();
                }
                conn.close().await.unwrap();
            }
        }
    }
}

async fn readyz_turns_false_when_the_database_goes_away_and_true_when_it_returns(backend: Backend) {
    let (store, outage) = Outage::store(backend).await;
    let server = spawn(AppState::new(store)).await;

    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"]["status"], "ok");
    let migrations = &body["checks"]["migrations"];
    assert_eq!(migrations["status"], "ok", "{body}");
    assert_eq!(migrations["applied"], migrations["expected"]);
    assert!(migrations["expected"].as_i64().unwrap() >= 7, "{body}");
    assert_eq!(body["checks"]["sync"]["status"], "skip", "{body}");
    // A first scrape: the server learns that no token exists (while the
    // database is away that answer stands; one that never reached its
    // database refuses what needs a token, tests/tokens.rs).
    scrape(&server, None).await;

    outage.set_reachable(false).await;
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["database"]["status"], "fail", "{body}");
    assert!(body["checks"]["database"]["message"].is_string());
    assert_eq!(body["checks"]["migrations"]["status"], "skip", "{body}");
    // Liveness holds: the process still serves.
    let (status, health) = server.get("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(health["store"], "unreachable");
    // Metrics still answer, without what the database would tell.
    let text = scrape(&server, None).await;
    assert!(!text.contains("callview_sync_lag_seconds "), "{text}");

    outage.set_reachable(true).await;
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    let (_, health) = server.get("/healthz").await;
    assert_eq!(health["store"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_on_a_missing_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.db");
    let store = callview_sqlite::SqliteStore::open(path.to_str().unwrap()).unwrap();
    let server = spawn(AppState::new(Arc::new(store))).await;
    assert_eq!(server.get("/readyz").await.0, 200);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("DELETE FROM schema_migrations WHERE version = 2", [])
        .unwrap();
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    let migrations = &body["checks"]["migrations"];
    assert_eq!(migrations["status"], "fail", "{body}");
    assert!(
        migrations["message"].as_str().unwrap().contains("[2]"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_checks_the_age_of_the_last_successful_sync() {
    let store = store(Backend::Sqlite).await;
    let max_age = Some(Duration::from_secs(600));
    // No runner, no watermark: nothing ever synced.
    let server = spawn(AppState::new(Arc::clone(&store)).with_ready_max_sync_age(max_age)).await;
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["sync"]["status"], "fail");
    assert_eq!(body["checks"]["sync"]["max_age_seconds"], 600);

    // A sync by another process (the watermark), two hours ago: too old.
    let old = chrono::Utc::now() - chrono::Duration::hours(2);
    store
        .write_cursor("watermark", &old.to_rfc3339())
        .await
        .unwrap();
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    let sync = &body["checks"]["sync"];
    assert_eq!(sync["status"], "fail");
    assert!(sync["age_seconds"].as_i64().unwrap() >= 7200, "{body}");
    assert_eq!(sync["last_success_at"], old.timestamp_millis());

    // A recent one.
    store
        .write_cursor("watermark", &chrono::Utc::now().to_rfc3339())
        .await
        .unwrap();
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["sync"]["status"], "ok");

    // With a runner whose first sync has not finished: waiting is ready;
    // once it failed, with no success anywhere, not ready.
    let store = common::store(Backend::Sqlite).await;
    let runner = SyncRunner::new(SyncEngine::new(
        Arc::new(RejectingTwilio),
        Arc::clone(&store),
        PartyRules::default(),
    ));
    let server = spawn(
        AppState::new(store)
            .with_sync(runner)
            .with_ready_max_sync_age(max_age),
    )
    .await;
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["sync"]["status"], "ok");
    assert_eq!(server.post("/api/sync/recent").await.0, 502);
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["sync"]["status"], "fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_is_echoed_or_generated() {
    let server =
        spawn(AppState::new(store(Backend::Sqlite).await).with_api_token(Some(TOKEN))).await;
    let send = |path: &'static str, id: Option<String>| {
        let mut request = server.http.get(server.url(path));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        async move {
            let response = request.send().await.unwrap();
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    // Kept, on success and on errors (401, 404) alike.
    for path in ["/healthz", "/api/conversations", "/no/such/route"] {
        assert_eq!(
            send(path, Some("edge-7f3c:42".into())).await,
            "edge-7f3c:42",
            "{path}"
        );
    }
    // Generated: a UUID, a new one each time.
    let a = send("/healthz", None).await;
    let b = send("/healthz", None).await;
    assert_ne!(a, b);
    for id in [&a, &b] {
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(id.matches('-').count(), 4, "{id}");
    }
    // Replaced when not plain or too long.
    for bad in [
        "two words".to_owned(),
        "x".repeat(129),
        "quote\"d".to_owned(),
    ] {
        let given = send("/healthz", Some(bad.clone())).await;
        assert_ne!(given, bad);
        assert_eq!(given.len(), 36, "{given}");
    }
    assert_eq!(
        send("/healthz", Some("x".repeat(128))).await,
        "x".repeat(128)
    );
}

/// A free port on the loopback address.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_binary_writes_json_log_lines_with_request_ids_and_serves_the_private_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_callview"));
    command.current_dir(dir.path());
    for (key, _) in std::env::vars() {
        if key.starts_with("TWILIO_")
            || key.starts_with("CALLVIEW_")
            || key == "DATABASE_URL"
            || key == "RUST_LOG"
        {
            command.env_remove(key);
        }
    }
    let mut child = command
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
            "--no-initial-sync",
            "--sync-interval",
            "0",
            "--log-format",
            "json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _child = Kill(child);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Every line is one JSON object; read up to the line that satisfies `want`.
    let next_until = |want: &dyn Fn(&serde_json::Value) -> bool| -> Vec<serde_json::Value> {
        let mut seen = Vec::new();
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|e| panic!("{e}; lines so far: {seen:?}"));
            let value: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            assert!(value["timestamp"].is_string(), "{line}");
            assert!(value["level"].is_string(), "{line}");
            let done = want(&value);
            seen.push(value);
            if done {
                return seen;
            }
        }
    };
    next_until(&|v| v["fields"]["message"] == "callview is listening");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let response = http
            .get(format!("{base}/api/conversations?token=sekrit-in-the-query"))
            .header("x-request-id", "json-log-test-1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-request-id"], "json-log-test-1");
        let response = http
            .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(
            text.contains("callview_http_requests_total{route=\"/api/conversations\",method=\"GET\",status=\"200\"} 1"),
            "{text}"
        );
    });
    let lines = next_until(&|v| v["span"]["request_id"] == "json-log-test-1");
    let line = lines.last().unwrap();
    assert_eq!(line["span"]["path"], "/api/conversations", "{line}");
    assert_eq!(line["span"]["method"], "GET", "{line}");
    for line in &lines {
        assert!(
            !line.to_string().contains("sekrit"),
            "a query string was logged: {line}"
        );
    }
}
