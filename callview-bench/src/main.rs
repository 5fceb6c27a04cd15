//! `callview-bench`: runs the benchmark scenarios and prints their tables
//! (or JSON with `--json`). See the library documentation.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use callview_bench::{Options, Report, Scenario, SimulatorMode, StoreKind};
use clap::{Parser, ValueEnum};

/// Benchmarks for callview, measured against issue 17's targets and, for
/// ingest, the yardstick (the seed's documented schema written plainly).
#[derive(Debug, Parser)]
#[command(name = "callview-bench", version)]
#[command(after_help = "\
Examples:
  cargo run --release -p callview-bench -- ingest
  cargo run --release -p callview-bench -- ingest --calls 1000000 --store sqlite
  cargo run --release -p callview-bench -- all --smoke
  cargo run --release -p callview-bench -- api --json > api.json

PostgreSQL: a server on 127.0.0.1:5432 (user postgres, trust auth) or --pg-url;
each run creates databases named callview_bench_* and drops them.")]
struct Cli {
    /// What to measure.
    #[arg(value_enum)]
    scenario: ScenarioArg,

    /// Call records (the scenario's main size; defaults follow the issue).
    #[arg(long)]
    calls: Option<usize>,

    /// Which store(s) [default: per scenario].
    #[arg(long, value_enum)]
    store: Option<StoreArg>,

    /// Print the results as JSON on stdout (the tables go to stderr).
    #[arg(long)]
    json: bool,

    /// Print the tables as Markdown.
    #[arg(long, conflicts_with = "json")]
    markdown: bool,

    /// Tiny sizes and short measurements, for CI.
    #[arg(long)]
    smoke: bool,

    /// PostgreSQL server and a user that may create databases.
    #[arg(long, env = "CALLVIEW_BENCH_PG_URL", hide_env_values = true)]
    pg_url: Option<String>,

    /// Concurrent slice readers of a backfill.
    #[arg(long, default_value_t = callview_core::sync::DEFAULT_CONCURRENCY)]
    concurrency: usize,

    /// Latency the simulator adds to every page in `backfill`, milliseconds.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,

    /// Seconds per `api` measurement [default: 5, smoke 0.15].
    #[arg(long)]
    duration: Option<f64>,

    /// Repetitions of `incremental` [default: 5, smoke 1].
    #[arg(long)]
    repetitions: Option<usize>,

    /// Run the simulator in this process even where a child process is preferred.
    #[arg(long, conflicts_with = "callview_bin")]
    in_process_sim: bool,

    /// The `callview` binary to run the simulator with [default: next to this one, built if missing].
    #[arg(long)]
    callview_bin: Option<PathBuf>,

    /// Skip the yardstick step of `ingest` (to profile the sync alone).
    #[arg(long, alias = "no-yardstick")]
    no_raw: bool,

    /// (internal, `__sync`) The simulator's URL.
    #[arg(long, hide = true)]
    base_url: Option<String>,

    /// (internal, `__sync`) The simulated account.
    #[arg(long, hide = true)]
    account_sid: Option<String>,

    /// (internal, `__sync`) The window's start, RFC 3339.
    #[arg(long, hide = true)]
    since: Option<String>,

    /// (internal, `__sync`) The database.
    #[arg(long, hide = true)]
    db_url: Option<String>,

    /// What-if experiment: create the PostgreSQL databases with `jit = off`.
    #[arg(long)]
    pg_jit_off: bool,

    /// No progress messages.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ScenarioArg {
    /// Backfill throughput and stored size per store, against the yardstick.
    Ingest,
    /// Peak RSS of backfills of N/10 and N calls.
    Memory,
    /// First backfill of 1M calls (calls/s, no latency), then with 50 ms per page: concurrent slices vs one reader.
    Backfill,
    /// HTTP API p50/p99 and requests/s.
    Api,
    /// Recent-preset sync of 50 new calls on a big database.
    Incremental,
    /// Recordings through the audio proxy: time to first byte, without and with the cache.
    Audio,
    /// The dashboard's statistics (`GET /api/stats`) on a database of 1M calls.
    Stats,
    /// Every scenario in turn.
    All,
    /// (internal) One measured backfill in this process, for `memory`.
    #[value(name = "__sync", hide = true)]
    Sync,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StoreArg {
    /// SQLite only.
    Sqlite,
    /// PostgreSQL only.
    Postgres,
    /// Both.
    Both,
}

/// jemalloc, configured in `.cargo/config.toml` (two arenas, freed pages
/// returned after 20 ms): glibc's malloc kept a 100,000-call backfill at
/// about 195 MiB RSS for a live heap under 100 MiB, because each page is
/// parsed on one thread and freed on another (figures in
/// `callview-bench/RESULTS.md`).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    if let ScenarioArg::Sync = cli.scenario {
        let (Some(base), Some(account), Some(since), Some(db)) =
            (&cli.base_url, &cli.account_sid, &cli.since, &cli.db_url)
        else {
            anyhow::bail!("__sync needs --base-url, --account-sid, --since and --db-url");
        };
        let since = chrono::DateTime::parse_from_rfc3339(since)?.with_timezone(&chrono::Utc);
        let result = callview_bench::scenarios::memory::child_sync(
            base,
            account,
            since,
            db,
            cli.concurrency.max(1),
        )
        .await?;
        println!("{}", serde_json::to_string(&result)?);
        return Ok(());
    }
    let mut options = if cli.smoke {
        Options::smoke()
    } else {
        Options::default()
    };
    options.quiet = cli.quiet;
    options.skip_raw = cli.no_raw;
    options.pg_jit_off = cli.pg_jit_off;
    options.calls = cli.calls;
    options.stores = cli.store.map(|s| match s {
        StoreArg::Sqlite => vec![StoreKind::Sqlite],
        StoreArg::Postgres => vec![StoreKind::Postgres],
        StoreArg::Both => vec![StoreKind::Sqlite, StoreKind::Postgres],
    });
    if let Some(url) = cli.pg_url {
        options.pg_url = url;
    }
    options.concurrency = cli.concurrency.max(1);
    if !cli.smoke || cli.latency_ms != 50 {
        options.latency = Duration::from_millis(cli.latency_ms);
    }
    options.api_duration = cli.duration.map(Duration::from_secs_f64);
    options.repetitions = cli.repetitions;
    options.sync_exe = std::env::current_exe().ok();
    if cli.in_process_sim {
        options.simulator = SimulatorMode::InProcess;
    } else if let Some(bin) = cli.callview_bin {
        options.simulator = SimulatorMode::Child(bin);
    }
    let scenarios: Vec<Scenario> = match cli.scenario {
        ScenarioArg::Ingest => vec![Scenario::Ingest],
        ScenarioArg::Memory => vec![Scenario::Memory],
        ScenarioArg::Backfill => vec![Scenario::Backfill],
        ScenarioArg::Api => vec![Scenario::Api],
        ScenarioArg::Incremental => vec![Scenario::Incremental],
        ScenarioArg::Audio => vec![Scenario::Audio],
        ScenarioArg::Stats => vec![Scenario::Stats],
        ScenarioArg::All => Scenario::ALL.to_vec(),
        ScenarioArg::Sync => unreachable!("handled above"),
    };
    let mut reports: Vec<Report> = Vec::new();
    for scenario in scenarios {
        let report = scenario.run(&options).await?;
        if cli.json {
            eprintln!("{}", report.render());
        } else if cli.markdown {
            println!("{}", report.markdown());
        } else {
            println!("{}", report.render());
        }
        reports.push(report);
    }
    if cli.json {
        let json = if reports.len() == 1 {
            serde_json::to_string_pretty(&reports[0])?
        } else {
            serde_json::to_string_pretty(&reports)?
        };
        println!("{json}");
    }
    Ok(())
}
