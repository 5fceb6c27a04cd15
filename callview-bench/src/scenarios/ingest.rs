//! `ingest`: backfill N calls (default 100,000) from the simulated account
//! over HTTP into each store, then write the same rows by the database's
//! plainest bulk path (the raw limit) and compare.
//!
//! Targets: SQLite at least 100,000 calls/s, PostgreSQL at least 50,000
//! calls/s, both at least 0.5 of their raw limit.

use anyhow::{ensure, Result};
use callview_core::store::StoreCounts;
use callview_core::SyncMode;
use serde::Serialize;

use crate::db::{BenchDb, StoreKind};
use crate::raw::{self, RawResult};
use crate::report::{mib, secs, thousands, Report, Table, TargetCheck, Verdict};
use crate::sim::SimServer;
use crate::sync::{measured_sync, SyncRun};
use crate::Options;

/// Default size.
pub const DEFAULT_CALLS: usize = 100_000;
/// Smoke size.
pub const SMOKE_CALLS: usize = 2_000;
/// SQLite's target, calls/s.
pub const SQLITE_TARGET: f64 = 100_000.0;
/// PostgreSQL's target, calls/s.
pub const POSTGRES_TARGET: f64 = 50_000.0;
/// Minimum ingest/raw ratio.
pub const RATIO_TARGET: f64 = 0.5;

/// One store's figures.
#[derive(Clone, Debug, Serialize)]
pub struct StoreResult {
    /// Which store.
    pub store: StoreKind,
    /// The sync.
    pub sync: SyncRun,
    /// Rows afterwards.
    pub counts: StoreCounts,
    /// Database size afterwards, bytes.
    pub db_bytes: u64,
    /// The raw limit (`None` when skipped).
    pub raw: Option<RawResult>,
    /// Ingest calls/s divided by raw calls/s (`None` when the raw step was skipped).
    pub ratio: Option<f64>,
}

/// The scenario's figures.
#[derive(Clone, Debug, Serialize)]
pub struct IngestResult {
    /// Call records in the simulated account.
    pub calls_generated: usize,
    /// Where the simulator ran.
    pub simulator: String,
    /// Seconds spent generating the account (not measured).
    pub generate_secs: f64,
    /// Concurrent slice readers.
    pub concurrency: usize,
    /// Per store.
    pub stores: Vec<StoreResult>,
}

/// Runs the scenario.
pub async fn run(options: &Options) -> Result<IngestResult> {
    let calls = options.calls_or(DEFAULT_CALLS, SMOKE_CALLS);
    let stores = options.stores_or(&[StoreKind::Sqlite, StoreKind::Postgres]);
    options.progress(format!(
        "ingest: generating a simulated account of {calls} calls"
    ));
    let sim = SimServer::start(&options.simulator, calls, options.quiet).await?;
    options.progress(format!(
        "ingest: simulator {} at {} ready after {:.1} s",
        sim.location, sim.base_url, sim.generate_secs
    ));
    // Every sync first, then every raw write: the raw writes' buffers
    // would otherwise inflate the RSS before the next store's sync.
    let mut synced = Vec::new();
    for kind in stores {
        let db = options.create_db(kind).await?;
        match sync_one(options, &sim, &db).await {
            Ok(partial) => synced.push((db, partial)),
            Err(e) => {
                db.remove().await?;
                for (db, _) in synced {
                    db.remove().await?;
                }
                return Err(e);
            }
        }
    }
    let mut results = Vec::new();
    let mut failure = None;
    for (db, partial) in synced {
        if failure.is_none() {
            match raw_one(options, &db, partial).await {
                Ok(result) => results.push(result),
                Err(e) => failure = Some(e),
            }
        }
        db.remove().await?;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let result = IngestResult {
        calls_generated: calls,
        simulator: sim.location.clone(),
        generate_secs: sim.generate_secs,
        concurrency: options.concurrency,
        stores: results,
    };
    sim.stop().await;
    Ok(result)
}

async fn sync_one(options: &Options, sim: &SimServer, db: &BenchDb) -> Result<StoreResult> {
    let kind = db.kind;
    let store = db.open_store().await?;
    options.progress(format!("ingest: backfilling into {kind}"));
    let sync = measured_sync(
        sim.client()?,
        store.clone(),
        SyncMode::Since(sim.since()),
        options.concurrency,
        None,
    )
    .await?;
    options.progress(format!(
        "ingest: {kind}: {} calls in {:.2} s ({:.0} calls/s), peak RSS {:.1} MiB",
        sync.report.inserted, sync.wall_secs, sync.calls_per_sec, sync.peak_rss_mib
    ));
    let counts = store.counts().await?;
    ensure!(
        sync.report.skipped.is_empty(),
        "{kind}: {} records were skipped",
        sync.report.skipped.len()
    );
    drop(store);
    let db_bytes = db.size_bytes().await?;
    Ok(StoreResult {
        store: kind,
        ratio: None,
        sync,
        counts,
        db_bytes,
        raw: None,
    })
}

async fn raw_one(options: &Options, db: &BenchDb, mut result: StoreResult) -> Result<StoreResult> {
    if options.skip_raw {
        return Ok(result);
    }
    let kind = db.kind;
    options.progress(format!("ingest: {kind}: raw limit"));
    let raw = match kind {
        StoreKind::Sqlite => {
            let path = db
                .sqlite_path()
                .ok_or_else(|| anyhow::anyhow!("no SQLite path"))?;
            let scratch = db
                .scratch_dir()
                .ok_or_else(|| anyhow::anyhow!("no scratch directory"))?
                .to_path_buf();
            raw::sqlite_raw(path, scratch).await?
        }
        StoreKind::Postgres => {
            let scratch = tempfile::Builder::new()
                .prefix("callview-bench-copy-")
                .tempdir()?;
            raw::postgres_raw(&db.url, &options.pg_url, scratch.path()).await?
        }
    };
    options.progress(format!(
        "ingest: {kind}: raw limit {:.0} calls/s ({:.2} s)",
        raw.calls_per_sec, raw.wall_secs
    ));
    ensure!(
        raw.calls == result.counts.calls,
        "{kind}: the raw write copied {} call rows, the store holds {}",
        raw.calls,
        result.counts.calls
    );
    result.ratio = Some(result.sync.calls_per_sec / raw.calls_per_sec.max(1e-9));
    result.raw = Some(raw);
    Ok(result)
}

impl IngestResult {
    /// The printed report.
    pub fn report(&self, options: &Options) -> Report {
        let mut report = Report::new("ingest", options.smoke);
        let mut table = Table::new(
            format!(
                "Backfill of {} calls over HTTP (concurrency {}), and the raw limit",
                thousands(self.calls_generated as f64),
                self.concurrency
            ),
            &[
                "store",
                "calls stored",
                "wall",
                "calls/s",
                "RSS before",
                "peak RSS",
                "DB size",
                "raw wall",
                "raw calls/s",
                "ingest/raw",
            ],
        );
        for s in &self.stores {
            table.row(vec![
                s.store.label().to_owned(),
                thousands(s.counts.calls as f64),
                secs(s.sync.wall_secs),
                thousands(s.sync.calls_per_sec),
                mib(s.sync.rss_before_mib),
                mib(s.sync.peak_rss_mib),
                mib(s.db_bytes as f64 / 1048576.0),
                s.raw
                    .as_ref()
                    .map_or("skipped".into(), |r| secs(r.wall_secs)),
                s.raw
                    .as_ref()
                    .map_or("-".into(), |r| thousands(r.calls_per_sec)),
                s.ratio.map_or("-".into(), |r| format!("{r:.2}")),
            ]);
        }
        report.tables.push(table);
        for s in &self.stores {
            report.tables.push(super::timing_table(
                &format!(
                    "Where the {} backfill's time went (summed per method; readers overlap)",
                    s.store
                ),
                &s.sync.timings,
            ));
        }
        let large = self.calls_generated >= DEFAULT_CALLS;
        for s in &self.stores {
            let target = match s.store {
                StoreKind::Sqlite => SQLITE_TARGET,
                StoreKind::Postgres => POSTGRES_TARGET,
            };
            let verdict = if large {
                Verdict::from_bool(s.sync.calls_per_sec >= target)
            } else {
                Verdict::NotApplicable
            };
            report.targets.push(TargetCheck::new(
                format!("{} ingest calls/s", s.store),
                thousands(s.sync.calls_per_sec),
                format!(">= {}", thousands(target)),
                verdict,
            ));
            report.targets.push(TargetCheck::new(
                format!("{} ingest / raw limit", s.store),
                s.ratio.map_or("-".into(), |r| format!("{r:.2}")),
                format!(">= {RATIO_TARGET}"),
                match s.ratio {
                    Some(r) if large => Verdict::from_bool(r >= RATIO_TARGET),
                    _ => Verdict::NotApplicable,
                },
            ));
        }
        report.notes.push(format!(
            "simulator: {} (generation {:.1} s, not measured); raw limit: {}",
            self.simulator,
            self.generate_secs,
            self.stores
                .iter()
                .filter_map(|s| s.raw.as_ref().map(|r| r.method.clone()))
                .collect::<Vec<_>>()
                .join("; ")
        ));
        if !large {
            report.notes.push(format!(
                "targets are judged at {} calls or more",
                thousands(DEFAULT_CALLS as f64)
            ));
        }
        if self.stores.len() > 1 {
            report.notes.push(
                "the stores sync one after the other in this process: the RSS before (and so the \
                 peak of) the later ones includes heap the earlier ones freed but the allocator \
                 kept; `memory` measures each sync in a fresh process"
                    .into(),
            );
        }
        if self.stores.iter().any(|s| !s.sync.peak_reset) {
            report
                .notes
                .push("the kernel refused to reset the peak RSS: peaks are the process's".into());
        }
        report.data = serde_json::to_value(self).unwrap_or_default();
        report
    }
}
