//! Load, on both stores: four sync loops (each its own engine, as four
//! processes would be; the store's sync lock lets one run at a time and
//! refuses the others at once) over an account that keeps changing, plus
//! 50 concurrent API clients, for a few seconds. No API answer is an error,
//! nothing deadlocks (everything finishes), no call is duplicated, the
//! counters equal the rows, and a final sync gives exactly what a clean
//! sync gives. The API latency figures (p50, p99, max) are printed, not
//! asserted: speed targets live in the benchmarks (2 shared cores in CI).
//!
//! Reduced form (CI): 5 s per store. Full form, as in the issue:
//!
//! ```sh
//! CALLVIEW_LOAD_SECS=60 cargo test --release -p callview-server --test load -- --nocapture
//! ```

mod common;
mod reliability;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callview_core::testkit::{check_invariants, snapshot};
use callview_core::{PartyRules, Store, SyncEngine, SyncError, SyncMode};
use callview_server::{AppState, SyncRunner};
use callview_sim::{SimConfig, SimulatedTwilio};
use chrono::Utc;
use common::Backend;
use reliability::env_number;

const CLIENTS: usize = 50;
const SYNCS: usize = 4;

fn since() -> SyncMode {
    SyncMode::Since(Utc::now() - chrono::Duration::days(40))
}

async fn open(backend: Backend, dir: &std::path::Path) -> Arc<dyn Store> {
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("load.db").display()),
        Backend::Postgres => callview_postgres::testing::fresh_database_url().await,
    };
    // As the server opens it (pool sizes included).
    callview_server::db::open_store(&url).await.unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn syncs_and_readers_under_load(backend: Backend) {
    let secs = env_number("CALLVIEW_LOAD_SECS", 5) as u64;
    let dir = tempfile::tempdir().unwrap();
    let store = open(backend, dir.path()).await;
    let sim = SimulatedTwilio::new(SimConfig::new(77, env_number("CALLVIEW_LOAD_CALLS", 1_000)));
    // Start from a loaded store, as a running server would be.
    SyncEngine::new(
        Arc::new(sim.clone()),
        Arc::clone(&store),
        PartyRules::default(),
    )
    .run(since(), None)
    .await
    .unwrap();

    let runner = SyncRunner::new(SyncEngine::new(
        Arc::new(sim.clone()),
        Arc::clone(&store),
        PartyRules::default(),
    ));
    let server = common::spawn(AppState::new(Arc::clone(&store)).with_sync(runner)).await;
    let base = server.base.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(secs);

    // The account changes all the time: new calls, calls completing.
    let traffic = {
        let sim = sim.clone();
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                sim.generate_live(3);
                if let Some(call) = sim.calls().into_iter().find(|c| !c.status.is_final()) {
                    sim.complete_call(&call.sid);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let completed = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let mut syncs = Vec::new();
    for i in 0..env_number("CALLVIEW_LOAD_SYNCS", SYNCS) {
        let engine = SyncEngine::new(
            Arc::new(sim.clone()),
            Arc::clone(&store),
            PartyRules::default(),
        );
        let (completed, refused) = (Arc::clone(&completed), Arc::clone(&refused));
        syncs.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let mode = if i % 2 == 0 {
                    SyncMode::incremental()
                } else {
                    since()
                };
                match engine.run(mode, None).await {
                    Ok(_) => {
                        completed.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(SyncError::Busy) => {
                        refused.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("sync {i} failed: {e}"),
                }
            }
        }));
    }

    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (base, latencies, errors) = (base.clone(), Arc::clone(&latencies), Arc::clone(&errors));
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut mine = Vec::new();
            let mut n = c;
            while Instant::now() < deadline {
                n = n.wrapping_mul(31).wrapping_add(7);
                let path = match n % 5 {
                    0 => format!("/api/conversations?limit=20&offset={}", n % 60),
                    1 => format!("/api/conversations/{}", 1 + n % 50),
                    2 => format!("/api/conversations/{}/messages?limit=50", 1 + n % 50),
                    3 => "/api/calls/active".to_owned(),
                    _ => "/healthz".to_owned(),
                };
                let started = Instant::now();
                let response = http.get(format!("{base}{path}")).send().await;
                let elapsed = started.elapsed();
                match response {
                    // A conversation id that does not exist (yet) is a proper 404.
                    Ok(r) if r.status().is_success() || r.status() == 404 => {
                        let _ = r.bytes().await;
                        mine.push(elapsed);
                    }
                    Ok(r) => errors
                        .lock()
                        .unwrap()
                        .push(format!("{path}: {}", r.status())),
                    Err(e) => errors.lock().unwrap().push(format!("{path}: {e}")),
                }
            }
            latencies.lock().unwrap().extend(mine);
        }));
    }

    // Everything finishes: no deadlock.
    let all_done = async {
        for task in clients.into_iter().chain(syncs) {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(secs + 120), all_done)
        .await
        .expect("the syncs and the clients finished (no deadlock)");
    stop.store(true, Ordering::SeqCst);
    traffic.await.unwrap();

    let errors = errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} error answers: {:?}",
        errors.len(),
        &errors[..errors.len().min(10)]
    );
    if env_number("CALLVIEW_LOAD_SYNCS", SYNCS) > 0 {
        assert!(completed.load(Ordering::SeqCst) > 0, "no sync completed");
    }

    // No duplicate, counters exact, and a final sync gives the clean state.
    if let Err(v) = check_invariants(store.as_ref()).await {
        panic!("{v}");
    }
    SyncEngine::new(
        Arc::new(sim.clone()),
        Arc::clone(&store),
        PartyRules::default(),
    )
    .run(since(), None)
    .await
    .unwrap();
    let actual = snapshot(store.as_ref()).await.unwrap();
    let stored: Vec<String> = actual
        .conversations
        .values()
        .flat_map(|c| c.messages.iter())
        .flat_map(|m| std::iter::once(&m.root).chain(m.legs.iter()))
        .map(|c| c.sid.clone())
        .collect();
    let distinct: HashSet<&String> = stored.iter().collect();
    assert_eq!(distinct.len(), stored.len(), "a call is stored twice");
    let reference = common::store(backend).await;
    SyncEngine::new(
        Arc::new(sim.clone()),
        Arc::clone(&reference),
        PartyRules::default(),
    )
    .run(since(), None)
    .await
    .unwrap();
    assert_eq!(actual, snapshot(reference.as_ref()).await.unwrap());

    let mut sorted = latencies.lock().unwrap().clone();
    sorted.sort();
    let total = sorted.len();
    eprintln!(
        "{backend:?} load, {secs} s: {CLIENTS} clients, {total} API answers ({:.0}/s), 0 errors; \
         latency p50 {:?}, p99 {:?}, max {:?}; syncs completed {}, refused (lock held) {}",
        total as f64 / secs as f64,
        percentile(&sorted, 50.0),
        percentile(&sorted, 99.0),
        sorted.last().copied().unwrap_or_default(),
        completed.load(Ordering::SeqCst),
        refused.load(Ordering::SeqCst),
    );
    if percentile(&sorted, 99.0) > Duration::from_millis(50) {
        eprintln!("note: p99 above the issue's 50 ms target (debug build, shared cores?)");
    }
}

on_both_stores!(syncs_and_readers_under_load);
