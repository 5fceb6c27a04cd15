//! # callview-bench
//!
//! Benchmarks for callview, measured against the targets of issue 17
//! ("Performance, round two"), which replace issue 7's. Run them with
//!
//! ```sh
//! cargo run --release -p callview-bench -- <scenario> [--calls N] [--store sqlite|postgres|both] [--json] [--smoke]
//! ```
//!
//! | scenario | what it measures |
//! |---|---|
//! | [`ingest`](scenarios::ingest) | backfill calls/s, wall time, peak RSS and stored size per call per store, the yardstick and the ratio |
//! | [`memory`](scenarios::memory) | peak RSS of backfills of two sizes (does it grow with N?) |
//! | [`backfill`](scenarios::backfill) | first backfills into empty stores: without latency, and with 50 ms per page concurrent vs one reader; same final state |
//! | [`api`](scenarios::api) | p50/p99 and requests/s of the HTTP API at 1 and 32 clients: list, search, messages |
//! | [`incremental`](scenarios::incremental) | a recent-preset sync of 50 new calls on a big database |
//! | [`audio`](scenarios::audio) | time to first byte and download time of recordings through the audio proxy, without and with its cache |
//! | [`stats`](scenarios::stats) | the dashboard's statistics on a big database |
//!
//! Issue 17's targets, each printed with its verdict by the scenario that
//! measures it (none is a timed test; verdicts are "n/a" below the full
//! sizes):
//!
//! | # | figure | target | scenario |
//! |---|---|---|---|
//! | 1 | stored size per call, SQLite / PostgreSQL (100k calls, after the backfill) | ≤ 1.5 KB / ≤ 1.0 KB | `ingest` |
//! | 2 | SQLite and PostgreSQL ingest, 100k-call backfill over HTTP | ≥ 30,000 calls/s each, and ≥ 0.8 of the yardstick | `ingest` |
//! | 3 | first backfill into an empty store, 1M calls | ≥ 100,000 calls/s with the same final state | `backfill` |
//! | 4 | peak RSS of a 1M backfill | < 150 MB, flat in N | `memory` |
//! | 5 | `GET /api/conversations?limit=20`, 100k conversations / 1M calls, 32 clients | ≥ 5,000 req/s SQLite, ≥ 3,000 PostgreSQL; p99 of one client < 2 ms | `api` |
//! | 6 | `q=` search (a number fragment, a name) at 100k conversations | < 10 ms p50 on both stores | `api` |
//! | 7 | first page of messages of a 1,000-call conversation | < 5 ms p50 | `api` |
//! | 8 | recent sync of 50 calls on a 1M-call database | < 50 ms | `incremental` |
//!
//! The **yardstick** for ingest ([`raw`]) is fixed so that it cannot move
//! with callview's design: the same calls as the seed's documented schema
//! stores them, written by prepared single-row `INSERT`s, 1,000 per
//! transaction (SQLite) and by `COPY` (PostgreSQL), in the same run.
//!
//! Each scenario is a library function returning typed results (so the
//! smoke test in `tests/smoke.rs` runs them all at tiny sizes) and a
//! [`Report`] (tables, target checks, notes; JSON with `--json`).
//!
//! The simulated Twilio account is always reached over HTTP on loopback
//! with the real [`HttpTwilioClient`](callview_core::twilio::HttpTwilioClient),
//! so parsing and the client are in the measured path.

pub mod db;
pub mod digest;
pub mod machine;
pub mod raw;
pub mod report;
pub mod scenarios;
pub mod sim;
pub mod sync;
pub mod synthetic;
pub mod timing;

use std::time::Duration;

pub use db::StoreKind;
pub use report::{Report, TargetCheck, Verdict};
pub use sim::SimulatorMode;

/// The scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Backfill throughput and stored size, against the yardstick.
    Ingest,
    /// Peak memory of backfills of two sizes.
    Memory,
    /// First backfill without latency, then with network latency:
    /// concurrent slices vs sequential; same final state.
    Backfill,
    /// HTTP API latency and throughput.
    Api,
    /// A small recent-preset sync on a big database.
    Incremental,
    /// Recordings through the audio proxy, without and with its cache.
    Audio,
    /// The dashboard's statistics on a big database.
    Stats,
}

impl Scenario {
    /// Every scenario, in the issue's order, then `audio` and `stats`.
    pub const ALL: [Scenario; 7] = [
        Scenario::Ingest,
        Scenario::Memory,
        Scenario::Backfill,
        Scenario::Api,
        Scenario::Incremental,
        Scenario::Audio,
        Scenario::Stats,
    ];

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Memory => "memory",
            Self::Backfill => "backfill",
            Self::Api => "api",
            Self::Incremental => "incremental",
            Self::Audio => "audio",
            Self::Stats => "stats",
        }
    }

    /// Runs the scenario and returns its report.
    pub async fn run(self, options: &Options) -> anyhow::Result<Report> {
        let mut report = match self {
            Self::Ingest => scenarios::ingest::run(options).await?.report(options),
            Self::Memory => scenarios::memory::run(options).await?.report(options),
            Self::Backfill => scenarios::backfill::run(options).await?.report(options),
            Self::Api => scenarios::api::run(options).await?.report(options),
            Self::Incremental => scenarios::incremental::run(options).await?.report(options),
            Self::Audio => scenarios::audio::run(options).await?.report(options),
            Self::Stats => scenarios::stats::run(options).await?.report(options),
        };
        if options.pg_jit_off {
            report.notes.push(
                "what-if run: the PostgreSQL databases were created with `jit = off` \
                 (ALTER DATABASE ... SET jit = off); callview-postgres does not do this today"
                    .into(),
            );
        }
        Ok(report)
    }
}

/// Settings shared by the scenarios. `None` fields take the scenario's
/// default (the issue's sizes, or tiny ones with `smoke`).
#[derive(Clone, Debug)]
pub struct Options {
    /// Call records (the scenario's main size).
    pub calls: Option<usize>,
    /// Which stores; `None` for the scenario's default.
    pub stores: Option<Vec<StoreKind>>,
    /// Tiny sizes, one repetition, short measurements (for CI).
    pub smoke: bool,
    /// PostgreSQL server and a user that may create databases.
    pub pg_url: String,
    /// Where the simulator runs for `ingest` and `memory`.
    pub simulator: SimulatorMode,
    /// Concurrent slice readers of a backfill (the engine's default is 4).
    pub concurrency: usize,
    /// Latency the simulator adds to every page in `backfill`.
    pub latency: Duration,
    /// How long each `api` measurement runs.
    pub api_duration: Option<Duration>,
    /// Repetitions of `incremental`.
    pub repetitions: Option<usize>,
    /// No progress messages on stderr.
    pub quiet: bool,
    /// Skip the yardstick step of `ingest` (to profile the sync alone;
    /// `--no-raw` or `--no-yardstick`).
    pub skip_raw: bool,
    /// The `callview-bench` executable, to run each `memory` sync in a
    /// fresh process of its own (`None`: in this process, whose heap keeps
    /// what earlier runs freed).
    pub sync_exe: Option<std::path::PathBuf>,
    /// What-if experiment: create the PostgreSQL databases with
    /// `jit = off` (`ALTER DATABASE ... SET jit = off`), to measure what
    /// turning PostgreSQL's JIT compiler off would change.
    pub pg_jit_off: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            calls: None,
            stores: None,
            smoke: false,
            pg_url: db::default_pg_url(),
            simulator: SimulatorMode::Auto,
            concurrency: callview_core::sync::DEFAULT_CONCURRENCY,
            latency: Duration::from_millis(50),
            api_duration: None,
            repetitions: None,
            quiet: false,
            skip_raw: false,
            sync_exe: None,
            pg_jit_off: false,
        }
    }
}

impl Options {
    /// The smoke settings: tiny sizes, in-process simulator, quiet.
    pub fn smoke() -> Self {
        Self {
            smoke: true,
            simulator: SimulatorMode::InProcess,
            latency: Duration::from_millis(5),
            quiet: true,
            ..Self::default()
        }
    }

    /// `calls`, or `full` (or `smoke` in smoke mode).
    pub fn calls_or(&self, full: usize, smoke: usize) -> usize {
        self.calls
            .unwrap_or(if self.smoke { smoke } else { full })
            .max(1)
    }

    /// The stores asked for, or `default`.
    pub fn stores_or(&self, default: &[StoreKind]) -> Vec<StoreKind> {
        match &self.stores {
            Some(stores) if !stores.is_empty() => stores.clone(),
            _ => default.to_vec(),
        }
    }

    /// Creates a database for `kind` with the options' settings.
    pub async fn create_db(&self, kind: StoreKind) -> anyhow::Result<db::BenchDb> {
        let settings: &[(&str, &str)] = if self.pg_jit_off {
            &[("jit", "off")]
        } else {
            &[]
        };
        db::BenchDb::create_with(kind, &self.pg_url, settings).await
    }

    /// Prints a progress line on stderr unless quiet.
    pub fn progress(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("[callview-bench] {}", message.as_ref());
        }
    }
}
