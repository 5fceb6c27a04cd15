//! Faults from Twilio, on both stores: a sync through a faulty API ends
//! with exactly the state a clean sync produces (same snapshot), within
//! bounded retries.
//!
//! * the simulator's own faults: a 429 on every third request, 10 % 5xx;
//! * a layer in front of it: truncated JSON bodies, connections reset
//!   mid-body, stalls longer than the client's timeout;
//! * a retry budget that runs out: a clear error, every committed page
//!   kept (counters exact), and the next run completes the rest;
//! * a page with a record that does not parse (wiremock): the record is
//!   reported with its SID and reason, every other record is stored;
//! * pages that change between requests (calls completing, new calls
//!   arriving while the backfill pages through): nothing missed, nothing
//!   duplicated.

mod common;
mod reliability;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use callview_core::testkit::{assert_invariants, snapshot, StoreSnapshot};
use callview_core::twilio::{
    CallFilter, CallPage, Credentials, HttpTwilioClient, IncomingNumber, PageToken, RetryPolicy,
    Secret, TwilioConfig,
};
use callview_core::{
    Call, CallSid, PartyRules, Store, SyncEngine, SyncError, SyncMode, TwilioClient, TwilioError,
};
use callview_sim::{ServerOptions, SimConfig, SimulatedTwilio};
use chrono::Utc;
use common::{store, Backend};

const CALLS: usize = 600;
const PAGE_SIZE: u32 = 25;

fn since() -> SyncMode {
    SyncMode::Since(Utc::now() - chrono::Duration::days(40))
}

fn account(seed: u64) -> SimulatedTwilio {
    SimulatedTwilio::new(SimConfig::new(seed, CALLS))
}

fn http_client(base: &str, account: &str, attempts: u32, timeout: Duration) -> HttpTwilioClient {
    HttpTwilioClient::new(TwilioConfig {
        credentials: Credentials::AuthToken {
            account_sid: account.to_owned(),
            auth_token: Secret::new("unused"),
        },
        base_url: base.to_owned(),
        intelligence_base_url: base.to_owned(),
    })
    .unwrap()
    .with_retry_policy(RetryPolicy {
        max_attempts: attempts,
        initial_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(40),
    })
    .with_timeout(timeout)
}

fn engine(client: Arc<dyn TwilioClient>, store: &Arc<dyn Store>) -> SyncEngine {
    SyncEngine::new(client, Arc::clone(store), PartyRules::default()).with_page_size(PAGE_SIZE)
}

/// What a clean sync of `sim` gives on a fresh store of `backend`.
async fn clean(backend: Backend, sim: &SimulatedTwilio) -> StoreSnapshot {
    let store = store(backend).await;
    engine(Arc::new(sim.clone()), &store)
        .run(since(), None)
        .await
        .unwrap();
    snapshot(store.as_ref()).await.unwrap()
}

/// Panics with the first difference when two snapshots differ.
fn assert_same(actual: &StoreSnapshot, expected: &StoreSnapshot, what: &str) {
    assert_eq!(actual.counts, expected.counts, "{what}: counts");
    assert_eq!(actual.keys(), expected.keys(), "{what}: conversations");
    for (key, conversation) in &expected.conversations {
        assert_eq!(
            actual.conversations.get(key),
            Some(conversation),
            "{what}: conversation {key}"
        );
    }
}

/// Faults injected in front of the simulator, by request number.
#[derive(Default)]
struct Faults {
    requests: AtomicU64,
    /// Every n-th list request gets its body cut in half.
    truncate_every: u64,
    /// Every n-th list request has its connection reset mid-body.
    reset_every: u64,
    /// Every n-th list request stalls for `stall`.
    stall_every: u64,
    stall: Duration,
    /// After this many list requests, every request is a 503.
    fail_after: Option<u64>,
    /// Switches `fail_after` off.
    healed: AtomicBool,
    /// List requests served.
    served: AtomicU64,
}

async fn inject(State(faults): State<Arc<Faults>>, request: Request, next: Next) -> Response {
    if !request.uri().path().ends_with("/Calls.json") {
        return next.run(request).await;
    }
    let n = faults.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let every = |k: u64| k > 0 && n % k == 0;
    if let Some(after) = faults.fail_after {
        if n > after && !faults.healed.load(Ordering::SeqCst) {
            return Response::builder()
                .status(503)
                .header("content-type", "application/json")
                .body(Body::from(
                    r#"{"code":20503,"message":"Service Unavailable","status":503}"#,
                ))
                .unwrap();
        }
    }
    if every(faults.stall_every) {
        tokio::time::sleep(faults.stall).await;
    }
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    if parts.status.is_success() {
        faults.served.fetch_add(1, Ordering::SeqCst);
    }
    if parts.status.is_success() && every(faults.truncate_every) {
        let mut parts = parts;
        parts.headers.remove("content-length");
        return Response::from_parts(parts, Body::from(bytes.slice(..bytes.len() / 2)));
    }
    if parts.status.is_success() && every(faults.reset_every) {
        let half = bytes.slice(..bytes.len() / 2);
        let stream = futures::stream::iter(vec![
            Ok(half),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset mid-body",
            )),
        ]);
        let mut parts = parts;
        parts.headers.remove("content-length");
        return Response::from_parts(parts, Body::from_stream(stream));
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Serves `sim` with `options`, behind `faults`.
async fn faulty(
    sim: &SimulatedTwilio,
    options: ServerOptions,
    faults: Arc<Faults>,
) -> FaultyServer {
    let app = callview_sim::router(sim.clone(), options)
        .layer(middleware::from_fn_with_state(faults, inject));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    FaultyServer { base, handle }
}

struct FaultyServer {
    base: String,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

on_both_stores!(
    throttling_and_server_errors_end_in_the_clean_state,
    truncated_reset_and_stalled_responses_end_in_the_clean_state,
    an_exhausted_retry_budget_keeps_what_was_committed_and_the_next_run_completes,
    a_record_that_does_not_parse_is_reported_and_the_rest_stored,
    pages_changing_between_requests_miss_and_duplicate_nothing,
);

async fn throttling_and_server_errors_end_in_the_clean_state(backend: Backend) {
    let sim = account(101);
    let expected = clean(backend, &sim).await;
    let server = faulty(
        &sim,
        ServerOptions {
            fail_every_nth_with_429: Some(3),
            error_rate_5xx: 0.10,
            ..ServerOptions::default()
        },
        Arc::new(Faults::default()),
    )
    .await;
    let store = store(backend).await;
    let client = http_client(&server.base, sim.account_sid(), 10, Duration::from_secs(10));
    let report = engine(Arc::new(client), &store)
        .run(since(), None)
        .await
        .unwrap();
    assert!(report.pages > 10, "{report:?}");
    assert_invariants(store.as_ref()).await;
    assert_same(
        &snapshot(store.as_ref()).await.unwrap(),
        &expected,
        "429 + 5xx",
    );
}

async fn truncated_reset_and_stalled_responses_end_in_the_clean_state(backend: Backend) {
    let sim = account(102);
    let expected = clean(backend, &sim).await;
    let faults = Arc::new(Faults {
        truncate_every: 5,
        reset_every: 7,
        stall_every: 11,
        // Scaled down from Twilio's worst case (a 10 s stall against a 30 s
        // client timeout): the stall is always longer than the timeout.
        stall: Duration::from_millis(800),
        ..Faults::default()
    });
    let server = faulty(&sim, ServerOptions::default(), Arc::clone(&faults)).await;
    let store = store(backend).await;
    let client = http_client(
        &server.base,
        sim.account_sid(),
        10,
        Duration::from_millis(300),
    );
    let report = engine(Arc::new(client), &store)
        .run(since(), None)
        .await
        .unwrap();
    assert!(
        faults.requests.load(Ordering::SeqCst) > faults.served.load(Ordering::SeqCst) / 2,
        "faults were injected"
    );
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_invariants(store.as_ref()).await;
    assert_same(
        &snapshot(store.as_ref()).await.unwrap(),
        &expected,
        "truncated/reset/stalled",
    );
}

async fn an_exhausted_retry_budget_keeps_what_was_committed_and_the_next_run_completes(
    backend: Backend,
) {
    let sim = account(103);
    let expected = clean(backend, &sim).await;
    let faults = Arc::new(Faults {
        fail_after: Some(6),
        ..Faults::default()
    });
    let server = faulty(&sim, ServerOptions::default(), Arc::clone(&faults)).await;
    let store = store(backend).await;
    let client: Arc<dyn TwilioClient> = Arc::new(http_client(
        &server.base,
        sim.account_sid(),
        3,
        Duration::from_secs(10),
    ));
    let error = engine(Arc::clone(&client), &store)
        .with_concurrency(1)
        .run(since(), None)
        .await
        .unwrap_err();
    // A clear error: Twilio, the status, the attempts.
    let message = error.to_string();
    eprintln!("{backend:?}: the sync stopped with: {message}");
    assert!(matches!(error, SyncError::Twilio(_)), "{error:?}");
    assert!(message.contains("503"), "{message}");
    assert!(message.contains('3'), "{message}");
    // The pages applied before the failure are kept, and consistent.
    let kept = store.counts().await.unwrap();
    assert!(kept.calls > 0, "{kept:?}");
    assert!(kept.calls < expected.counts.calls, "{kept:?}");
    assert_invariants(store.as_ref()).await;
    // Twilio recovers: the next run completes the rest.
    faults.healed.store(true, Ordering::SeqCst);
    engine(client, &store).run(since(), None).await.unwrap();
    assert_invariants(store.as_ref()).await;
    assert_same(
        &snapshot(store.as_ref()).await.unwrap(),
        &expected,
        "after the next run",
    );
}

async fn a_record_that_does_not_parse_is_reported_and_the_rest_stored(backend: Backend) {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let sim = SimulatedTwilio::new(SimConfig::new(104, 40));
    let mut records: Vec<serde_json::Value> =
        sim.calls().iter().take(8).map(Call::to_rest_json).collect();
    let bad_sid = records[3]["sid"].as_str().unwrap().to_owned();
    records[3]["start_time"] = "the day before yesterday".into();
    records.push(serde_json::json!({"to": "+19788447773", "status": "completed"}));
    records.push(serde_json::json!("not even an object"));

    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(r"/IncomingPhoneNumbers\.json$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "incoming_phone_numbers": [], "next_page_uri": null
        })))
        .mount(&server)
        .await;
    // The window's listing gets the records; the sync's sweeps (calls never
    // dialled, calls started since the run began) get empty pages.
    Mock::given(method("GET"))
        .and(path_regex(r"/Calls\.json$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "calls": records, "next_page_uri": null, "page": 0, "page_size": 50
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"/Calls\.json$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "calls": [], "next_page_uri": null, "page": 0, "page_size": 50
        })))
        .mount(&server)
        .await;
    // An account without recordings or transcriptions.
    Mock::given(method("GET"))
        .and(path_regex(r"/Recordings\.json$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "recordings": [], "next_page_uri": null
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"/Transcriptions\.json$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "transcriptions": [], "next_page_uri": null
        })))
        .mount(&server)
        .await;
    // Texts: one that parses, one whose date is garbled.
    Mock::given(method("GET"))
        .and(path_regex(r"/Messages\.json$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "messages": [
                {"sid": "SM00000000000000000000000000000001", "from": "+19788447773",
                 "to": "+16175006181", "body": "On my way", "status": "received",
                 "direction": "inbound", "num_media": "0",
                 "date_sent": "Fri, 06 Feb 2026 15:18:00 +0000"},
                {"sid": "SM00000000000000000000000000000002", "from": "+19788447773",
                 "to": "+16175006181", "body": "?", "status": "received",
                 "direction": "inbound", "date_sent": "yesterday-ish"}
            ],
            "next_page_uri": null
        })))
        .mount(&server)
        .await;

    let store = store(backend).await;
    let client = http_client(&server.uri(), sim.account_sid(), 2, Duration::from_secs(10));
    let report = engine(Arc::new(client), &store)
        .with_concurrency(1)
        .run(
            SyncMode::Since(Utc::now() - chrono::Duration::days(400)),
            None,
        )
        .await
        .unwrap();
    assert_eq!(report.fetched, 10, "{report:?}");
    assert_eq!(report.texts.fetched, 2, "{report:?}");
    assert_eq!(report.texts.inserted, 1, "{report:?}");
    assert_eq!(report.skipped.len(), 4, "{:?}", report.skipped);
    let garbled = report
        .skipped
        .iter()
        .find(|s| s.sid.as_deref() == Some("SM00000000000000000000000000000002"))
        .unwrap_or_else(|| panic!("the garbled text is not reported: {:?}", report.skipped));
    assert!(garbled.reason.contains("date_sent"), "{}", garbled.reason);
    assert_eq!(store.counts().await.unwrap().texts, 1);
    let bad = report
        .skipped
        .iter()
        .find(|s| s.sid.as_deref() == Some(bad_sid.as_str()))
        .unwrap_or_else(|| panic!("{bad_sid} is not reported: {:?}", report.skipped));
    assert!(bad.reason.contains("start_time"), "{}", bad.reason);
    assert!(report.skipped.iter().all(|s| !s.reason.is_empty()));
    // Every other record of the page is stored.
    let stored = store.counts().await.unwrap().calls;
    assert_eq!(stored, 7);
    for record in &records[..8] {
        let sid = CallSid::new(record["sid"].as_str().unwrap()).unwrap();
        let found = store.load_trees(std::slice::from_ref(&sid)).await.unwrap();
        assert_eq!(
            found.iter().any(|r| r.call.sid == sid),
            sid.as_str() != bad_sid,
            "{sid}"
        );
    }
    assert_invariants(store.as_ref()).await;
}

/// The simulated account, changing after every page request: the oldest
/// unfinished call completes and new calls arrive on top.
struct Changing {
    sim: SimulatedTwilio,
    pages: AtomicU64,
    added: std::sync::Mutex<Vec<CallSid>>,
    /// Stops the changes.
    frozen: AtomicBool,
}

#[async_trait]
impl TwilioClient for Changing {
    async fn list_calls_page(
        &self,
        filter: &CallFilter,
        page: Option<&PageToken>,
    ) -> Result<CallPage, TwilioError> {
        let result = self.sim.list_calls_page(filter, page).await;
        self.pages.fetch_add(1, Ordering::SeqCst);
        if self.frozen.load(Ordering::SeqCst) {
            return result;
        }
        let unfinished = self.sim.calls().into_iter().find(|c| !c.status.is_final());
        if let Some(call) = unfinished {
            self.sim.complete_call(&call.sid);
        }
        let added = self.sim.generate_live(2);
        if let Ok(mut list) = self.added.lock() {
            list.extend(added);
        }
        result
    }

    async fn fetch_call(&self, sid: &CallSid) -> Result<Call, TwilioError> {
        self.sim.fetch_call(sid).await
    }

    async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
        self.sim.list_incoming_numbers().await
    }

    callview_core::forward_media_methods!(sim);
}

async fn pages_changing_between_requests_miss_and_duplicate_nothing(backend: Backend) {
    let sim = account(105);
    let before_calls = sim.calls();
    // Calls never dialled (no start time) included: the sync's sweep of
    // undated calls lists them.
    let before: Vec<CallSid> = before_calls.iter().map(|c| c.sid.clone()).collect();
    let changing = Arc::new(Changing {
        sim: sim.clone(),
        pages: AtomicU64::new(0),
        added: std::sync::Mutex::new(Vec::new()),
        frozen: AtomicBool::new(false),
    });
    let store = store(backend).await;
    let engine = engine(changing.clone(), &store);
    engine.run(since(), None).await.unwrap();
    assert!(changing.pages.load(Ordering::SeqCst) > 10);
    assert_invariants(store.as_ref()).await;
    // Nothing that existed when the sync started is missed.
    for chunk in before.chunks(200) {
        let rows = store.load_trees(chunk).await.unwrap();
        for sid in chunk {
            if !rows.iter().any(|r| &r.call.sid == sid) {
                let now = sim.calls().into_iter().find(|c| &c.sid == sid);
                let was = before_calls.iter().find(|c| &c.sid == sid);
                panic!(
                    "{sid} is missing: was {:?} {:?}, now {:?} {:?}",
                    was.map(|c| &c.status),
                    was.map(|c| c.start_time),
                    now.as_ref().map(|c| &c.status),
                    now.as_ref().map(|c| c.start_time)
                );
            }
        }
    }
    assert!(!changing.added.lock().unwrap().is_empty());
    changing.frozen.store(true, Ordering::SeqCst);
    // The next (incremental) run catches up with what changed meanwhile;
    // the result is what a clean sync of the account as it is now gives.
    engine.run(SyncMode::incremental(), None).await.unwrap();
    assert_invariants(store.as_ref()).await;
    let expected = clean(backend, &sim).await;
    let actual = snapshot(store.as_ref()).await.unwrap();
    assert_same(
        &actual,
        &expected,
        "after the account changed during the sync",
    );
}
