//! `backfill`: the simulator adds 50 ms to every page; a backfill of
//! 1,000,000 calls with concurrent day slices (default 4 readers) against
//! one reader, and the final states compared (they must be identical).
//!
//! Target: under 20 s on SQLite with concurrent slices.

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

/// Wall-time bound of the concurrent backfill on SQLite, seconds.
pub const TARGET_SECS: f64 = 20.0;
/// Below this many calls the snapshots of both stores are compared too.
pub const SNAPSHOT_LIMIT: usize = 20_000;

/// One backfill.
#[derive(Clone, Debug, Serialize)]
pub struct BackfillRun {
    /// Concurrent slice readers.
    pub concurrency: usize,
    /// The sync.
    pub sync: SyncRun,
    /// The final state.
    pub digest: StateDigest,
}

/// One store's pair of runs.
#[derive(Clone, Debug, Serialize)]
pub struct StoreBackfill {
    /// Which store.
    pub store: StoreKind,
    /// Concurrent, then sequential.
    pub runs: Vec<BackfillRun>,
    /// Whether the two final states have the same fingerprint.
    pub identical: bool,
    /// Whether `callview_core::testkit::snapshot` of both is equal (small runs only).
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
    let mut results = Vec::new();
    for kind in stores {
        let concurrent = options.create_db(kind).await?;
        let sequential = options.create_db(kind).await?;
        let outcome = one_store(options, &sim, &concurrent, &sequential).await;
        concurrent.remove().await?;
        sequential.remove().await?;
        results.push(outcome?);
    }
    sim.stop().await;
    Ok(BackfillResult {
        calls,
        latency_ms: options.latency.as_millis() as u64,
        stores: results,
    })
}

async fn one_store(
    options: &Options,
    sim: &SimServer,
    concurrent: &BenchDb,
    sequential: &BenchDb,
) -> Result<StoreBackfill> {
    let kind = concurrent.kind;
    let mut runs = Vec::new();
    let mut stores = Vec::new();
    for (db, concurrency) in [(concurrent, options.concurrency), (sequential, 1)] {
        let store = db.open_store().await?;
        options.progress(format!("backfill: {kind}, {concurrency} reader(s)"));
        let sync = measured_sync(
            sim.client()?,
            store.clone(),
            SyncMode::Since(sim.since()),
            concurrency,
            None,
        )
        .await?;
        options.progress(format!(
            "backfill: {kind}, {concurrency} reader(s): {:.2} s",
            sync.wall_secs
        ));
        let digest = digest(db).await?;
        runs.push(BackfillRun {
            concurrency,
            sync,
            digest,
        });
        stores.push(store);
    }
    let identical = runs[0].digest == runs[1].digest;
    let snapshots_equal = if sim.calls <= SNAPSHOT_LIMIT {
        let a = callview_core::testkit::snapshot(stores[0].as_ref()).await?;
        let b = callview_core::testkit::snapshot(stores[1].as_ref()).await?;
        Some(a == b)
    } else {
        None
    };
    Ok(StoreBackfill {
        store: kind,
        runs,
        identical,
        snapshots_equal,
    })
}

impl BackfillResult {
    /// The printed report.
    pub fn report(&self, options: &Options) -> Report {
        let mut report = Report::new("backfill", options.smoke);
        let mut table = Table::new(
            format!(
                "Backfill of {} calls with {} ms per page",
                thousands(self.calls as f64),
                self.latency_ms
            ),
            &[
                "store",
                "readers",
                "pages",
                "calls stored",
                "wall",
                "calls/s",
                "sequential latency floor",
                "state",
            ],
        );
        for s in &self.stores {
            for r in &s.runs {
                let floor = r.sync.report.pages as f64 * self.latency_ms as f64 / 1000.0;
                table.row(vec![
                    s.store.label().to_owned(),
                    r.concurrency.to_string(),
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
            if let Some(r) = s.runs.first() {
                if s.store == StoreKind::Sqlite {
                    report.targets.push(TargetCheck::new(
                        format!(
                            "SQLite backfill {} calls, {} ms/page, {} readers",
                            thousands(self.calls as f64),
                            self.latency_ms,
                            r.concurrency
                        ),
                        secs(r.sync.wall_secs),
                        format!("< {TARGET_SECS} s"),
                        if full && self.latency_ms >= 50 {
                            Verdict::from_bool(r.sync.wall_secs < TARGET_SECS)
                        } else {
                            Verdict::NotApplicable
                        },
                    ));
                }
            }
            report.targets.push(TargetCheck::new(
                format!("{} concurrent state = sequential state", s.store),
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
                .push("the 20 s target is judged at 1,000,000 calls and 50 ms per page".into());
        }
        report.notes.push(
            "simulator in process (the latency option needs it); the latency applies to every \
             request, the owned-numbers listing included"
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
