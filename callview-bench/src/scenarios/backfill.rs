//! `backfill`: first backfills of 1,000,000 calls into empty stores.
//!
//! * The first backfill as issue 17 measures it: the same simulated
//!   account served without added latency, concurrent day slices (default
//!   4 readers).
//! * With the simulator adding 50 ms to every page (`--latency-ms`): the
//!   concurrent slices against one reader.
//!
//! The three final states are compared: they must be identical.
//!
//! Target (issue 17, target 3): the first backfill of 1,000,000 calls into
//! an empty store at least 100,000 calls/s, ending in the same final state.
//! Judged at 1,000,000 calls (the state at every size).

use anyhow::Result;
use callview_core::SyncMode;
use callview_sim::ServerOptions;
use serde::Serialize;

use crate::db::{BenchDb, StoreKind};
use crate::digest::{digest, StateDigest};
use crate::report::{secs, thousands, Report, Table, TargetCheck, Verdict};
use crate::sim::SimServer;
use crate::sync::{measured_sync, SyncRun};
use crate::Options;

/// Target 3: calls/s of the first backfill (no added latency).
pub const CALLS_PER_SEC_TARGET: f64 = 100_000.0;
/// Below this many calls the snapshots of both stores are compared too.
pub const SNAPSHOT_LIMIT: usize = 20_000;

/// One backfill.
#[derive(Clone, Debug, Serialize)]
pub struct BackfillRun {
    /// Concurrent slice readers.
    pub concurrency: usize,
    /// Latency the simulator added to every page, milliseconds.
    pub latency_ms: u64,
    /// The sync.
    pub sync: SyncRun,
    /// The final state.
    pub digest: StateDigest,
}

/// One store's runs.
#[derive(Clone, Debug, Serialize)]
pub struct StoreBackfill {
    /// Which store.
    pub store: StoreKind,
    /// The first backfill without added latency (target 3).
    pub first: BackfillRun,
    /// With the latency: concurrent, then sequential.
    pub runs: Vec<BackfillRun>,
    /// Whether the two latency runs' final states have the same fingerprint.
    pub identical: bool,
    /// Whether the first backfill's final state has the fingerprint of
    /// both latency runs.
    pub first_identical: bool,
    /// Whether `callview_core::testkit::snapshot` of all three is equal (small runs only).
    pub snapshots_equal: Option<bool>,
}

/// The scenario's figures.
#[derive(Clone, Debug, Serialize)]
pub struct BackfillResult {
    /// Calls in the account.
    pub calls: usize,
    /// Latency per page, milliseconds.
    pub latency_ms: u64,
    /// Per store.
    pub stores: Vec<StoreBackfill>,
}

/// Runs the scenario.
pub async fn run(options: &Options) -> Result<BackfillResult> {
    let calls = options.calls_or(1_000_000, 2_000);
    let stores = options.stores_or(&[StoreKind::Sqlite]);
    options.progress(format!(
        "backfill: generating a simulated account of {calls} calls, {} ms per page",
        options.latency.as_millis()
    ));
    let sim = SimServer::in_process(
        calls,
        ServerOptions {
            latency_per_page: options.latency,
            ..ServerOptions::default()
        },
    )
    .await?;
    // The same account, without the latency: the first backfill.
    let fast = sim.serve_again(ServerOptions::default()).await?;
    let mut results = Vec::new();
    for kind in stores {
        let first = options.create_db(kind).await?;
        let concurrent = options.create_db(kind).await?;
        let sequential = options.create_db(kind).await?;
        let outcome = one_store(options, [&fast, &sim], [&first, &concurrent, &sequential]).await;
        first.remove().await?;
        concurrent.remove().await?;
        sequential.remove().await?;
        results.push(outcome?);
    }
    fast.stop().await;
    sim.stop().await;
    Ok(BackfillResult {
        calls,
        latency_ms: options.latency.as_millis() as u64,
        stores: results,
    })
}

/// The runs of one store: `[fast, slow]` are the account without and with
/// the latency, `[first, concurrent, sequential]` the empty databases.
async fn one_store(
    options: &Options,
    [fast, slow]: [&SimServer; 2],
    [first, concurrent, sequential]: [&BenchDb; 3],
) -> Result<StoreBackfill> {
    let kind = concurrent.kind;
    let latency_ms = options.latency.as_millis() as u64;
    let mut runs = Vec::new();
    let mut stores = Vec::new();
    for (sim, db, concurrency, latency_ms) in [
        (fast, first, options.concurrency, 0),
        (slow, concurrent, options.concurrency, latency_ms),
        (slow, sequential, 1, latency_ms),
    ] {
        let store = db.open_store().await?;
        options.progress(format!(
            "backfill: {kind}, {concurrency} reader(s), {latency_ms} ms per page"
        ));
        let sync = measured_sync(
            sim.client()?,
            store.clone(),
            SyncMode::Since(sim.since()),
            concurrency,
            None,
        )
        .await?;
        options.progress(format!(
            "backfill: {kind}, {concurrency} reader(s), {latency_ms} ms per page: {:.2} s \
             ({:.0} calls/s)",
            sync.wall_secs, sync.calls_per_sec
        ));
        let digest = digest(db).await?;
        runs.push(BackfillRun {
            concurrency,
            latency_ms,
            sync,
            digest,
        });
        stores.push(store);
    }
    let first_run = runs.remove(0);
    let identical = runs[0].digest == runs[1].digest;
    let first_identical = runs.iter().all(|r| r.digest == first_run.digest);
    let snapshots_equal = if slow.calls <= SNAPSHOT_LIMIT {
        let a = callview_core::testkit::snapshot(stores[0].as_ref()).await?;
        let b = callview_core::testkit::snapshot(stores[1].as_ref()).await?;
        let c = callview_core::testkit::snapshot(stores[2].as_ref()).await?;
        Some(a == b && b == c)
    } else {
        None
    };
    Ok(StoreBackfill {
        store: kind,
        first: first_run,
        runs,
        identical,
        first_identical,
        snapshots_equal,
    })
}

impl BackfillResult {
    /// The printed report.
    pub fn report(&self, options: &Options) -> Report {
        let mut report = Report::new("backfill", options.smoke);
        let mut table = Table::new(
            format!(
                "First backfill of {} calls into an empty store, without and with {} ms per page",
                thousands(self.calls as f64),
                self.latency_ms
            ),
            &[
                "store",
                "readers",
                "latency",
                "pages",
                "calls stored",
                "wall",
                "calls/s",
                "sequential latency floor",
                "state",
            ],
        );
        for s in &self.stores {
            for r in std::iter::once(&s.first).chain(&s.runs) {
                let floor = r.sync.report.pages as f64 * r.latency_ms as f64 / 1000.0;
                table.row(vec![
                    s.store.label().to_owned(),
                    r.concurrency.to_string(),
                    format!("{} ms", r.latency_ms),
                    thousands(r.sync.report.pages as f64),
                    thousands(r.sync.report.inserted as f64),
                    secs(r.sync.wall_secs),
                    thousands(r.sync.calls_per_sec),
                    secs(floor),
                    format!(
                        "{} calls / {} conv. #{}",
                        thousands(r.digest.calls as f64),
                        thousands(r.digest.conversations as f64),
                        &r.digest.calls_hash[..8]
                    ),
                ]);
            }
        }
        report.tables.push(table);
        let full = self.calls >= 1_000_000;
        for s in &self.stores {
            let r = &s.first;
            report.targets.push(TargetCheck::new(
                format!(
                    "3: {} first backfill, {} calls, {} readers, no added latency",
                    s.store,
                    thousands(self.calls as f64),
                    r.concurrency
                ),
                format!(
                    "{} calls/s ({})",
                    thousands(r.sync.calls_per_sec),
                    secs(r.sync.wall_secs)
                ),
                format!(">= {} calls/s", thousands(CALLS_PER_SEC_TARGET)),
                if full {
                    Verdict::from_bool(r.sync.calls_per_sec >= CALLS_PER_SEC_TARGET)
                } else {
                    Verdict::NotApplicable
                },
            ));
            report.targets.push(TargetCheck::new(
                format!(
                    "3: {} first backfill's final state = the {} ms runs' state",
                    s.store, self.latency_ms
                ),
                match s.snapshots_equal {
                    Some(eq) => {
                        format!("digest {}, snapshot {}", same(s.first_identical), same(eq))
                    }
                    None => format!("digest {}", same(s.first_identical)),
                },
                "identical",
                Verdict::from_bool(s.first_identical && s.snapshots_equal != Some(false)),
            ));
            report.targets.push(TargetCheck::new(
                format!(
                    "{} concurrent state = sequential state ({} ms per page)",
                    s.store, self.latency_ms
                ),
                match s.snapshots_equal {
                    Some(eq) => format!("digest {}, snapshot {}", same(s.identical), same(eq)),
                    None => format!("digest {}", same(s.identical)),
                },
                "identical",
                Verdict::from_bool(s.identical && s.snapshots_equal != Some(false)),
            ));
        }
        if !full {
            report
                .notes
                .push("the calls/s target is judged at 1,000,000 calls".into());
        }
        report.notes.push(
            "simulator in process (the latency option needs it): the same account served twice, \
             without added latency for the first backfill and with it for the two others; the \
             latency applies to every request, the owned-numbers listing included"
                .into(),
        );
        report.data = serde_json::to_value(self).unwrap_or_default();
        report
    }
}

fn same(ok: bool) -> &'static str {
    if ok {
        "equal"
    } else {
        "DIFFERENT"
    }
}
