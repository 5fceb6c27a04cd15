//! `ingest`: backfill N calls (default 100,000) from the simulated account
//! over HTTP into each store, measure what the store takes on disk, then
//! write the same calls the way the seed's documented schema stores them
//! (the yardstick, [`crate::raw`]) and compare.
//!
//! Targets (issue 17):
//!
//! 1. stored size per call after the backfill: at most 1.5 KB on SQLite,
//!    1.0 KB on PostgreSQL (KB = 1,000 bytes; see
//!    [`BenchDb::stored_bytes`] for what is counted);
//! 2. ingest of the 100,000-call backfill over HTTP: at least 30,000
//!    calls/s on each store, and at least 0.8 of the yardstick.
//!
//! Judged at 100,000 calls or more.

use anyhow::{ensure, Result};
use callview_core::store::StoreCounts;
use callview_core::SyncMode;
use serde::Serialize;

use crate::db::{BenchDb, StoreKind};
use crate::raw::{self, YardstickResult};
use crate::report::{mib, secs, thousands, Report, Table, TargetCheck, Verdict};
use crate::sim::SimServer;
use crate::sync::{measured_sync, SyncRun};
use crate::Options;

/// Default size.
pub const DEFAULT_CALLS: usize = 100_000;
/// Smoke size.
pub const SMOKE_CALLS: usize = 2_000;
/// Target 2: ingest calls/s, each store.
pub const CALLS_PER_SEC_TARGET: f64 = 30_000.0;
/// Target 2: minimum ingest/yardstick ratio.
pub const RATIO_TARGET: f64 = 0.8;
/// Target 1: stored bytes per call, SQLite (1.5 KB, KB = 1,000 bytes).
pub const SQLITE_BYTES_PER_CALL_TARGET: f64 = 1_500.0;
/// Target 1: stored bytes per call, PostgreSQL (1.0 KB).
pub const POSTGRES_BYTES_PER_CALL_TARGET: f64 = 1_000.0;

/// Target 1's bound for `store`, bytes per call.
pub fn bytes_per_call_target(store: StoreKind) -> f64 {
    match store {
        StoreKind::Sqlite => SQLITE_BYTES_PER_CALL_TARGET,
        StoreKind::Postgres => POSTGRES_BYTES_PER_CALL_TARGET,
    }
}

/// Bytes as KB (1,000 bytes) with two decimals.
fn kb(bytes: f64) -> String {
    format!("{:.2} KB", bytes / 1000.0)
}

/// One store's figures.
#[derive(Clone, Debug, Serialize)]
pub struct StoreResult {
    /// Which store.
    pub store: StoreKind,
    /// The sync.
    pub sync: SyncRun,
    /// Rows afterwards.
    pub counts: StoreCounts,
    /// Database size afterwards, bytes (files, or `pg_database_size`).
    pub db_bytes: u64,
    /// What the store's data takes afterwards, bytes
    /// ([`BenchDb::stored_bytes`]).
    pub stored_bytes: u64,
    /// `stored_bytes` per stored call.
    pub bytes_per_call: f64,
    /// The yardstick (`None` when skipped).
    pub yardstick: Option<YardstickResult>,
    /// Ingest calls/s divided by the yardstick's calls/s (`None` when the
    /// yardstick was skipped).
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
    // Every sync first, then every yardstick: its buffers would otherwise
    // inflate the RSS before the next store's sync.
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
            match yardstick_one(options, &db, partial).await {
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
    let stored_bytes = db.stored_bytes().await?;
    let db_bytes = db.size_bytes().await?;
    let bytes_per_call = stored_bytes as f64 / (counts.calls.max(1)) as f64;
    options.progress(format!(
        "ingest: {kind}: {stored_bytes} bytes stored, {bytes_per_call:.0} bytes per call"
    ));
    Ok(StoreResult {
        store: kind,
        ratio: None,
        sync,
        counts,
        db_bytes,
        stored_bytes,
        bytes_per_call,
        yardstick: None,
    })
}

async fn yardstick_one(
    options: &Options,
    db: &BenchDb,
    mut result: StoreResult,
) -> Result<StoreResult> {
    if options.skip_raw {
        return Ok(result);
    }
    let kind = db.kind;
    options.progress(format!("ingest: {kind}: yardstick"));
    let yardstick = match kind {
        StoreKind::Sqlite => {
            let path = db
                .sqlite_path()
                .ok_or_else(|| anyhow::anyhow!("no SQLite path"))?;
            let scratch = db
                .scratch_dir()
                .ok_or_else(|| anyhow::anyhow!("no scratch directory"))?
                .to_path_buf();
            raw::sqlite_yardstick(path, scratch).await?
        }
        StoreKind::Postgres => {
            let scratch = tempfile::Builder::new()
                .prefix("callview-bench-copy-")
                .tempdir()?;
            raw::postgres_yardstick(&db.url, &options.pg_url, scratch.path()).await?
        }
    };
    options.progress(format!(
        "ingest: {kind}: yardstick {:.0} calls/s ({:.2} s)",
        yardstick.calls_per_sec, yardstick.wall_secs
    ));
    ensure!(
        yardstick.calls == result.counts.calls,
        "{kind}: the yardstick wrote {} call rows, the store holds {}",
        yardstick.calls,
        result.counts.calls
    );
    result.ratio = Some(result.sync.calls_per_sec / yardstick.calls_per_sec.max(1e-9));
    result.yardstick = Some(yardstick);
    Ok(result)
}

impl IngestResult {
    /// The printed report.
    pub fn report(&self, options: &Options) -> Report {
        let mut report = Report::new("ingest", options.smoke);
        let mut table = Table::new(
            format!(
                "Backfill of {} calls over HTTP (concurrency {}), and the yardstick",
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
                "yardstick wall",
                "yardstick calls/s",
                "ingest/yardstick",
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
                s.yardstick
                    .as_ref()
                    .map_or("skipped".into(), |r| secs(r.wall_secs)),
                s.yardstick
                    .as_ref()
                    .map_or("-".into(), |r| thousands(r.calls_per_sec)),
                s.ratio.map_or("-".into(), |r| format!("{r:.2}")),
            ]);
        }
        report.tables.push(table);
        let mut sizes = Table::new(
            "Stored size after the backfill (KB = 1,000 bytes)",
            &[
                "store",
                "calls",
                "stored bytes",
                "bytes/call",
                "KB/call",
                "counted",
            ],
        );
        for s in &self.stores {
            sizes.row(vec![
                s.store.label().to_owned(),
                thousands(s.counts.calls as f64),
                thousands(s.stored_bytes as f64),
                thousands(s.bytes_per_call),
                kb(s.bytes_per_call),
                match s.store {
                    StoreKind::Sqlite => "file + WAL after wal_checkpoint(TRUNCATE)",
                    StoreKind::Postgres => "sum of pg_total_relation_size, schema tables",
                }
                .to_owned(),
            ]);
        }
        report.tables.push(sizes);
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
        let judge = |ok: bool| {
            if large {
                Verdict::from_bool(ok)
            } else {
                Verdict::NotApplicable
            }
        };
        for s in &self.stores {
            let bound = bytes_per_call_target(s.store);
            report.targets.push(TargetCheck::new(
                format!("1: {} stored size per call", s.store),
                format!(
                    "{} ({} B)",
                    kb(s.bytes_per_call),
                    thousands(s.bytes_per_call)
                ),
                format!("<= {}", kb(bound)),
                judge(s.bytes_per_call <= bound),
            ));
        }
        for s in &self.stores {
            report.targets.push(TargetCheck::new(
                format!("2: {} ingest calls/s", s.store),
                thousands(s.sync.calls_per_sec),
                format!(">= {}", thousands(CALLS_PER_SEC_TARGET)),
                judge(s.sync.calls_per_sec >= CALLS_PER_SEC_TARGET),
            ));
            report.targets.push(TargetCheck::new(
                format!("2: {} ingest / yardstick", s.store),
                match (&s.yardstick, s.ratio) {
                    (Some(y), Some(r)) => {
                        format!("{r:.2} (yardstick {} calls/s)", thousands(y.calls_per_sec))
                    }
                    _ => "-".into(),
                },
                format!(">= {RATIO_TARGET}"),
                match s.ratio {
                    Some(r) if large => Verdict::from_bool(r >= RATIO_TARGET),
                    _ => Verdict::NotApplicable,
                },
            ));
        }
        let methods: Vec<String> = self
            .stores
            .iter()
            .filter_map(|s| s.yardstick.as_ref().map(|r| r.method.clone()))
            .collect();
        report.notes.push(format!(
            "simulator: {} (generation {:.1} s, not measured); yardstick: {}",
            self.simulator,
            self.generate_secs,
            if methods.is_empty() {
                "skipped (--no-yardstick)".to_owned()
            } else {
                methods.join("; ")
            }
        ));
        report.notes.push(
            "yardstick: the same calls as the seed's documented schema stores them (its \
             `messages` columns and indexes, the unique SID; `metadata` = the raw record \
             without `uri` and `subresource_uris`); contacts and conversations copied first, \
             untimed"
                .into(),
        );
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
