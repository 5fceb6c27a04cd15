//! Crashes: `callview sync` (and `callview serve` while it serves and
//! syncs) killed with SIGKILL at random points, on both stores. After each
//! kill the database opens cleanly, every conversation counter equals what
//! its rows say, and no call is duplicated or foreign; after a final
//! complete sync the store is exactly what a clean sync gives (no call
//! lost or duplicated).
//!
//! Reduced form (CI): 5 trials × 5 000 calls per store (kill points up to
//! 3 s in), 2 serve trials.
//! Full form, as in the issue:
//!
//! ```sh
//! CALLVIEW_CRASH_TRIALS=20 CALLVIEW_CRASH_CALLS=100000 CALLVIEW_CRASH_MAX_DELAY_MS=8000 \
//!   cargo test --release -p callview-server --test crash -- --nocapture --test-threads=1
//! ```
//!
//! `CALLVIEW_CRASH_SEED` replays the kill points of an earlier run (each
//! run prints its seed).
//!
//! SQLite's sync lock is a lease in the database naming its holder's pid:
//! after each kill the next sync must take over the dead holder's lease at
//! once (the trial checks that it is not refused).

mod common;
mod reliability;

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callview_core::testkit::{check_invariants, snapshot, StoreSnapshot};
use callview_core::{PartyRules, Store, SyncEngine, SyncMode};
use callview_sim::{ServerOptions, SimConfig, SimulatedTwilio};
use chrono::Utc;
use common::Backend;
use reliability::*;

/// A small deterministic generator for the kill points (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

fn seed() -> u64 {
    std::env::var("CALLVIEW_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
                | 1
        })
}

const SINCE: &str = "40d";

fn since() -> SyncMode {
    SyncMode::Since(Utc::now() - chrono::Duration::days(40))
}

async fn database_url(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("crash.db").display()),
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
    .run(since(), None)
    .await
    .unwrap();
    snapshot(store.as_ref()).await.unwrap()
}

/// Every SID a snapshot holds (duplicates kept).
fn sids(snapshot: &StoreSnapshot) -> Vec<String> {
    snapshot
        .conversations
        .values()
        .flat_map(|c| c.messages.iter())
        .flat_map(|m| std::iter::once(&m.root).chain(m.legs.iter()))
        .map(|c| c.sid.clone())
        .collect()
}

/// Opens the store a killed process left and checks it: it opens, the
/// counters equal the rows, no call is stored twice or unknown to Twilio.
/// Returns the number of calls stored.
async fn check_after_kill(url: &str, known: &HashSet<String>, what: &str) -> u64 {
    let store: Arc<dyn Store> = callview_server::db::open_store(url)
        .await
        .unwrap_or_else(|e| panic!("{what}: the database does not open after the kill: {e}"));
    store.health().await.unwrap();
    if let Err(violations) = check_invariants(store.as_ref()).await {
        panic!("{what}: {violations}");
    }
    let snap = snapshot(store.as_ref()).await.unwrap();
    let stored = sids(&snap);
    let distinct: HashSet<&String> = stored.iter().collect();
    assert_eq!(
        distinct.len(),
        stored.len(),
        "{what}: a call is stored twice"
    );
    assert_eq!(
        stored.len() as u64,
        snap.counts.calls,
        "{what}: rows outside conversations"
    );
    for sid in &stored {
        assert!(known.contains(sid), "{what}: {sid} is not a Twilio call");
    }
    snap.counts.calls
}

/// `callview` pointed at the simulated account `account` served at `twilio`.
fn twilio_env(command: &mut std::process::Command, account: &str, twilio: &str) {
    command
        .env("TWILIO_ACCOUNT_SID", account)
        .env("TWILIO_AUTH_TOKEN", "crash-test-token")
        .env("TWILIO_API_BASE_URL", twilio);
}

fn sync_command(
    dir: &std::path::Path,
    url: &str,
    account: &str,
    twilio: &str,
) -> std::process::Command {
    let mut command = callview(dir);
    twilio_env(&mut command, account, twilio);
    command
        .args(["sync", "--since", SINCE, "--json"])
        .env("DATABASE_URL", url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

async fn finish(mut command: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

async fn sync_killed_at_random_points(backend: Backend) {
    let trials = env_number("CALLVIEW_CRASH_TRIALS", 5);
    let calls = env_number("CALLVIEW_CRASH_CALLS", 5_000);
    let max_delay = env_number("CALLVIEW_CRASH_MAX_DELAY_MS", 3_000) as u64;
    let seed = seed();
    let mut rng = Rng(seed);
    eprintln!("{backend:?}: {trials} trials, {calls} calls, CALLVIEW_CRASH_SEED={seed}");

    let sim = SimulatedTwilio::new(SimConfig::new(seed % 1000, calls));
    let known: HashSet<String> = sim.calls().iter().map(|c| c.sid.to_string()).collect();
    let twilio = serve_sim(sim.clone(), ServerOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;

    let mut finished_early = 0;
    for trial in 1..=trials {
        let delay = Duration::from_millis(200 + rng.below(max_delay));
        let mut command = sync_command(dir.path(), &url, sim.account_sid(), &twilio.base);
        command.stderr(Stdio::null());
        let child = command.spawn().unwrap();
        let mut child = Kill(child);
        tokio::time::sleep(delay).await;
        if child.0.try_wait().unwrap().is_some() {
            finished_early += 1;
        }
        child.0.kill().unwrap_or(()); // SIGKILL
        let _ = child.0.wait();
        let what = format!("{backend:?} trial {trial} (killed after {delay:?})");
        let stored = check_after_kill(&url, &known, &what).await;
        eprintln!(
            "{what}: {stored} of {} calls stored, consistent",
            known.len()
        );

        if backend == Backend::Sqlite {
            // The killed process's lease must not block the next sync.
            let mut probe = callview(dir.path());
            twilio_env(&mut probe, sim.account_sid(), &twilio.base);
            probe
                .args(["sync", "--preset", "recent"])
                .env("DATABASE_URL", &url);
            let output = finish(probe).await;
            assert!(
                output.status.success(),
                "{what}: the next sync after a kill failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    // A final complete sync: nothing lost, nothing duplicated.
    let started = Instant::now();
    let output = finish(sync_command(
        dir.path(),
        &url,
        sim.account_sid(),
        &twilio.base,
    ))
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let final_secs = started.elapsed().as_secs_f64();
    let store = callview_server::db::open_store(&url).await.unwrap();
    let actual = snapshot(store.as_ref()).await.unwrap();
    let expected = clean(backend, &sim).await;
    assert_eq!(actual.counts, expected.counts);
    assert_eq!(
        actual, expected,
        "{backend:?}: the final state differs from a clean sync"
    );
    eprintln!(
        "{backend:?}: {trials} kills ({finished_early} after the sync had finished), final sync {final_secs:.1} s, {} calls, state equal to a clean sync",
        actual.counts.calls
    );
}

async fn serve_killed_while_serving_and_syncing(backend: Backend) {
    let trials = env_number("CALLVIEW_CRASH_SERVE_TRIALS", 2);
    let calls = env_number("CALLVIEW_CRASH_CALLS", 5_000);
    let max_delay = env_number("CALLVIEW_CRASH_MAX_DELAY_MS", 3_000) as u64;
    let seed = seed();
    let mut rng = Rng(seed ^ 0x5e7e);
    eprintln!("{backend:?} serve: {trials} trials, CALLVIEW_CRASH_SEED={seed}");

    let sim = SimulatedTwilio::new(SimConfig::new(seed % 1000 + 1, calls));
    let known: HashSet<String> = sim.calls().iter().map(|c| c.sid.to_string()).collect();
    let twilio = serve_sim(sim.clone(), ServerOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;
    let http = reqwest::Client::new();

    for trial in 1..=trials {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut command = callview(dir.path());
        twilio_env(&mut command, sim.account_sid(), &twilio.base);
        let child = command
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--sync-interval",
                "1",
            ])
            .env("DATABASE_URL", &url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = Kill(child);
        wait_until_up(&format!("{base}/healthz"), Duration::from_secs(60)).await;
        // Serve readers until the kill.
        let deadline = Instant::now() + Duration::from_millis(50 + rng.below(max_delay));
        let mut answered = 0;
        while Instant::now() < deadline {
            for path in [
                "/api/conversations?limit=20",
                "/api/calls/active",
                "/healthz",
            ] {
                let response = http.get(format!("{base}{path}")).send().await.unwrap();
                assert!(
                    response.status().is_success(),
                    "{path}: {}",
                    response.status()
                );
                answered += 1;
            }
        }
        child.0.kill().unwrap_or(());
        let _ = child.0.wait();
        let what = format!("{backend:?} serve trial {trial}");
        let stored = check_after_kill(&url, &known, &what).await;
        eprintln!("{what}: {answered} API answers, killed; {stored} calls stored, consistent");
    }
    let output = finish(sync_command(
        dir.path(),
        &url,
        sim.account_sid(),
        &twilio.base,
    ))
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let store = callview_server::db::open_store(&url).await.unwrap();
    let actual = snapshot(store.as_ref()).await.unwrap();
    assert_eq!(
        actual,
        clean(backend, &sim).await,
        "{backend:?} serve: final state"
    );
}

on_both_stores!(
    sync_killed_at_random_points,
    serve_killed_while_serving_and_syncing,
);
