//! `memory`: the peak RSS of backfills of two sizes (100,000 and 1,000,000
//! calls by default; `--calls N` gives N/10 and N), the simulator in a
//! child process so that only the sync's memory counts.
//!
//! Target (issue 17, target 4): the peak RSS of a 1,000,000-call backfill
//! under 150 MB (MB = 10^6 bytes; the tables also give MiB), and flat in
//! N: the larger peak at most [`GROWTH_TARGET`] times the smaller (the
//! bound this bench has used for "flat" since issue 7). Judged at
//! 1,000,000 calls. The runs' calls/s are printed too; target 3 (a first
//! backfill's calls/s) is judged by `backfill`, which also compares states.

use std::path::Path;
use std::process::Stdio;

use anyhow::{bail, Context, Result};
use callview_core::SyncMode;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::{BenchDb, StoreKind};
use crate::report::{mib, secs, thousands, Report, Table, TargetCheck, Verdict};
use crate::sim::SimServer;
use crate::sync::measured_sync;
use crate::Options;

/// Target 4: the peak RSS bound, MB (10^6 bytes).
pub const PEAK_TARGET_MB: f64 = 150.0;
/// Target 4, "flat in N": largest allowed ratio of the larger run's peak
/// to the smaller's (10 times the calls).
pub const GROWTH_TARGET: f64 = 1.25;

/// One backfill.
#[derive(Clone, Debug, Serialize)]
pub struct MemoryRun {
    /// Which store.
    pub store: StoreKind,
    /// Calls in the account.
    pub calls: usize,
    /// Concurrent slice readers.
    pub concurrency: usize,
    /// Calls a backfill can list (the account minus calls not started yet).
    pub listable: usize,
    /// Calls stored.
    pub stored: u64,
    /// Wall time, seconds.
    pub wall_secs: f64,
    /// RSS before the sync, MiB.
    pub rss_before_mib: f64,
    /// Peak RSS during the sync, MiB.
    pub peak_rss_mib: f64,
    /// Where the simulator ran.
    pub simulator: String,
    /// Where the sync ran (`this process`, or a fresh child process).
    pub sync_process: String,
}

/// What a sync in a fresh process reports (one JSON line on its stdout).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ChildSync {
    /// Calls stored.
    pub inserted: u64,
    /// Wall time, seconds.
    pub wall_secs: f64,
    /// RSS before the sync, MiB.
    pub rss_before_mib: f64,
    /// Peak RSS of the process, MiB.
    pub peak_rss_mib: f64,
    /// Which process.
    pub process: String,
}

/// The body of `callview-bench __sync`: backfills the simulated account
/// at `base_url` into the database at `db_url` and measures this process.
pub async fn child_sync(
    base_url: &str,
    account_sid: &str,
    since: DateTime<Utc>,
    db_url: &str,
    concurrency: usize,
) -> Result<ChildSync> {
    let store = callview_server::db::open_store(db_url).await?;
    let sync = measured_sync(
        crate::sim::http_client(base_url, account_sid)?,
        store,
        SyncMode::Since(since),
        concurrency,
        None,
    )
    .await?;
    Ok(ChildSync {
        inserted: sync.report.inserted,
        wall_secs: sync.wall_secs,
        rss_before_mib: sync.rss_before_mib,
        peak_rss_mib: sync.peak_rss_mib,
        process: format!("fresh process {}", std::process::id()),
    })
}

/// Runs [`child_sync`] in a fresh process of `exe` (`exe __sync ...`).
async fn sync_in_child(
    exe: &Path,
    sim: &SimServer,
    db: &BenchDb,
    concurrency: usize,
) -> Result<ChildSync> {
    let output = tokio::process::Command::new(exe)
        .arg("__sync")
        .args(["--base-url", &sim.base_url])
        .args(["--account-sid", &sim.account_sid])
        .args(["--since", &sim.since().to_rfc3339()])
        .args(["--db-url", &db.url])
        .args(["--concurrency", &concurrency.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {} __sync", exe.display()))?;
    if !output.status.success() {
        bail!("the sync process failed ({})", output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("the sync process printed no result")?;
    serde_json::from_str(line).context("reading the sync process's result")
}

/// The scenario's figures.
#[derive(Clone, Debug, Serialize)]
pub struct MemoryResult {
    /// The sizes, smaller first.
    pub sizes: Vec<usize>,
    /// The readers of the main runs (the smaller size also runs with one).
    pub concurrency: usize,
    /// Every run.
    pub runs: Vec<MemoryRun>,
}

impl MemoryResult {
    /// The runs of `store` with the main reader count.
    pub fn main_runs(&self, store: StoreKind) -> impl Iterator<Item = &MemoryRun> {
        self.runs
            .iter()
            .filter(move |r| r.store == store && r.concurrency == self.concurrency)
    }

    /// Larger peak / smaller peak for `store`.
    pub fn growth(&self, store: StoreKind) -> Option<f64> {
        let runs: Vec<&MemoryRun> = self.main_runs(store).collect();
        let small = runs.iter().min_by_key(|r| r.calls)?;
        let large = runs.iter().max_by_key(|r| r.calls)?;
        Some(large.peak_rss_mib / small.peak_rss_mib.max(1e-9))
    }
}

/// Runs the scenario.
pub async fn run(options: &Options) -> Result<MemoryResult> {
    let large = options.calls_or(1_000_000, 4_000);
    let small = (large / 10).max(1);
    let sizes = vec![small, large];
    let stores = options.stores_or(&[StoreKind::Sqlite]);
    let mut runs = Vec::new();
    for &calls in &sizes {
        options.progress(format!(
            "memory: generating a simulated account of {calls} calls"
        ));
        let sim = SimServer::start(&options.simulator, calls, options.quiet).await?;
        let listable = calls;
        // The smaller size also with one reader: how much the concurrent
        // readers' buffered pages weigh.
        let mut readers = vec![options.concurrency];
        if calls == small && options.concurrency > 1 {
            readers.push(1);
        }
        for &kind in &stores {
            for &concurrency in &readers {
                let db = options.create_db(kind).await?;
                options.progress(format!(
                    "memory: backfilling {calls} calls into {kind}, {concurrency} reader(s)"
                ));
                let outcome = match &options.sync_exe {
                    Some(exe) => sync_in_child(exe, &sim, &db, concurrency).await,
                    None => {
                        async {
                            let store = db.open_store().await?;
                            let sync = measured_sync(
                                sim.client()?,
                                store,
                                SyncMode::Since(sim.since()),
                                concurrency,
                                None,
                            )
                            .await?;
                            Ok(ChildSync {
                                inserted: sync.report.inserted,
                                wall_secs: sync.wall_secs,
                                rss_before_mib: sync.rss_before_mib,
                                peak_rss_mib: sync.peak_rss_mib,
                                process: "this process".to_owned(),
                            })
                        }
                        .await
                    }
                };
                db.remove().await?;
                let sync = outcome?;
                options.progress(format!(
                    "memory: {kind} {calls}, {concurrency} reader(s): peak RSS {:.1} MiB",
                    sync.peak_rss_mib
                ));
                runs.push(MemoryRun {
                    store: kind,
                    calls,
                    concurrency,
                    listable,
                    stored: sync.inserted,
                    wall_secs: sync.wall_secs,
                    rss_before_mib: sync.rss_before_mib,
                    peak_rss_mib: sync.peak_rss_mib,
                    simulator: sim.location.clone(),
                    sync_process: sync.process,
                });
            }
        }
        sim.stop().await;
    }
    Ok(MemoryResult {
        sizes,
        concurrency: options.concurrency,
        runs,
    })
}

impl MemoryResult {
    /// The printed report.
    pub fn report(&self, options: &Options) -> Report {
        let mut report = Report::new("memory", options.smoke);
        let mut table = Table::new(
            "Peak RSS of the syncing process during a backfill",
            &[
                "store",
                "calls",
                "readers",
                "stored",
                "wall",
                "calls/s",
                "RSS before",
                "peak RSS",
                "peak RSS (MB)",
            ],
        );
        for r in &self.runs {
            table.row(vec![
                r.store.label().to_owned(),
                thousands(r.calls as f64),
                r.concurrency.to_string(),
                thousands(r.stored as f64),
                secs(r.wall_secs),
                thousands(r.stored as f64 / r.wall_secs.max(1e-9)),
                mib(r.rss_before_mib),
                mib(r.peak_rss_mib),
                format!("{:.1} MB", r.peak_rss_mib * 1.048576),
            ]);
        }
        report.tables.push(table);
        let full = self.sizes.last().copied().unwrap_or(0) >= 1_000_000;
        let mut stores: Vec<StoreKind> = self.runs.iter().map(|r| r.store).collect();
        stores.sort();
        stores.dedup();
        for store in stores {
            if let Some(large) = self.main_runs(store).max_by_key(|r| r.calls) {
                let mb = large.peak_rss_mib * 1.048576;
                report.targets.push(TargetCheck::new(
                    format!(
                        "4: {store} peak RSS, {} calls",
                        thousands(large.calls as f64)
                    ),
                    format!("{mb:.1} MB ({:.1} MiB)", large.peak_rss_mib),
                    format!("< {PEAK_TARGET_MB} MB"),
                    if full {
                        Verdict::from_bool(mb < PEAK_TARGET_MB)
                    } else {
                        Verdict::NotApplicable
                    },
                ));
            }
            if let Some(growth) = self.growth(store) {
                report.targets.push(TargetCheck::new(
                    format!("4: {store} peak RSS flat in N (growth, 10x calls)"),
                    format!("x{growth:.2}"),
                    format!("<= x{GROWTH_TARGET}"),
                    if full {
                        Verdict::from_bool(growth <= GROWTH_TARGET)
                    } else {
                        Verdict::NotApplicable
                    },
                ));
            }
        }
        if let Some(r) = self.runs.first() {
            report.notes.push(format!(
                "simulator: {}; sync: {}",
                r.simulator,
                if r.sync_process.starts_with("fresh") {
                    "a fresh process per run (`callview-bench __sync`)"
                } else {
                    "this process (its heap keeps what earlier runs freed)"
                }
            ));
            if r.simulator.starts_with("in process") {
                report.notes.push(
                    "the simulator ran in process: its account is part of every RSS figure".into(),
                );
            }
        }
        if !full {
            report
                .notes
                .push("the targets are judged at 100,000 and 1,000,000 calls".into());
        }
        report
            .notes
            .push("MB = 10^6 bytes, MiB = 2^20 bytes; the target is in MB".into());
        report.data = serde_json::to_value(self).unwrap_or_default();
        report
    }
}
