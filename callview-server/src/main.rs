//! The `callview` command line: `sync`, `serve`, `simulate`, `import`,
//! `export`, `contacts`, `token`, `backup`, `config check` and
//! `healthcheck`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use callview_core::sync::Progress;
use callview_core::twilio::{Credentials, HttpTwilioClient, Secret, TextSender, TwilioConfig};
use callview_core::{
    Normalizer, OwnedNumbers, PartyRules, Preset, Store, SyncEngine, SyncMode, SyncReport,
    TwilioClient,
};
use callview_server::contacts_csv;
use callview_server::{check_exposure, db, demo, AppState, Metrics, ServerConfig, SyncRunner};
use callview_sim::SimConfig;
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

mod lifecycle;
use lifecycle::{backup, config_check, healthcheck};

/// Keeps a business's Twilio call history in its own database and shows it
/// as conversations: one per outside party, forwarded legs folded in.
#[derive(Debug, Parser)]
#[command(name = "callview", version, propagate_version = true)]
#[command(after_help = "\
Twilio credentials come from the environment: TWILIO_ACCOUNT_SID plus either
TWILIO_AUTH_TOKEN or TWILIO_API_KEY and TWILIO_API_SECRET. TWILIO_API_BASE_URL
points the client elsewhere (e.g. at `callview simulate`); set alone, dummy
credentials are used. RUST_LOG sets the log filter (logs go to stderr).

Examples:
  callview simulate --listen 127.0.0.1:4010 &
  TWILIO_API_BASE_URL=http://127.0.0.1:4010 callview sync --since 30d
  callview serve                       # demo mode without credentials")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// Read settings from this TOML file: keys named like the long flags
    /// (`database_url`, `listen`, `api_token`, ...), top level or in a
    /// table named after the command (`[serve]`). A flag given, or its
    /// environment variable, wins over the file. `callview config check`
    /// shows what applies.
    #[arg(long, env = "CALLVIEW_CONFIG", global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Where the call history is stored. The scheme picks the backend:
    /// `sqlite://PATH` (or a plain file path) for SQLite, `postgres://` or
    /// `postgresql://` for PostgreSQL. Passwords are never printed.
    /// [default: `sqlite://callview.db`; the demo (`serve` without Twilio
    /// credentials) uses `sqlite://callview-demo.db`, and never a database
    /// named here unless `--demo` is given]
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,

    /// Extra numbers that belong to the business, comma-separated, in any
    /// format (the account's own Twilio numbers are listed automatically).
    #[arg(
        long,
        env = "CALLVIEW_OWNED_NUMBERS",
        value_delimiter = ',',
        global = true
    )]
    owned_numbers: Vec<String>,

    /// Region for numbers written without a country code (ISO 3166: US, GB, ...).
    #[arg(
        long,
        env = "CALLVIEW_DEFAULT_REGION",
        default_value = "US",
        global = true
    )]
    default_region: String,

    /// How log lines are written to stderr: `text` for people, `json` (one
    /// object per line) for log shippers.
    #[arg(
        long,
        env = "CALLVIEW_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`
    /// (`message` and the event's fields) and `span` (a request's
    /// `method`, `path` and `request_id`).
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one sync from Twilio into the database and print its report.
    Sync(SyncArgs),
    /// Import Twilio call history from a file, stored exactly as a sync
    /// stores it (no Twilio access needed).
    Import(ImportArgs),
    /// Export calls (legs included, one row per Twilio call) as CSV or
    /// JSON Lines.
    Export(ExportArgs),
    /// Serve the HTTP API, syncing in the background.
    Serve(ServeArgs),
    /// Serve a simulated Twilio account over HTTP (Twilio's REST wire format).
    Simulate(SimulateArgs),
    /// Import or export contacts (names, companies, notes, tags) as CSV.
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// Create, list and revoke the API's named tokens (roles viewer,
    /// editor, admin).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Copy the SQLite database to FILE, consistently, while servers and
    /// syncs keep writing to it (SQLite's online backup API).
    Backup(BackupArgs),
    /// Check the configuration (file, environment, flags).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Ask a server on this host whether it is healthy (`GET /healthz`):
    /// exit 0 when it answers 2xx, 1 otherwise. For container health checks.
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it (once: only its hash is stored).
    Create {
        /// Who or what holds it (letters, digits, `.`, `_`, `-`, `@`):
        /// edits made with it are recorded under this name.
        name: String,
        /// What it may do: `viewer` reads; `editor` also edits contacts,
        /// notes and tags; `admin` also runs syncs and manages tokens.
        #[arg(long, value_parser = parse_role)]
        role: callview_core::access::Role,
        /// When it stops working: a number of days (`90d` or `90`). Never
        /// by default.
        #[arg(long, value_parser = parse_days)]
        expires: Option<i64>,
    },
    /// List every token: name, role, created, last used, expires, status.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: every server sharing the database refuses it from
    /// its next request on.
    Revoke {
        /// The token's name.
        name: String,
    },
}

fn parse_role(text: &str) -> Result<callview_core::access::Role, String> {
    callview_core::access::Role::parse(text).map_err(|e| e.to_string())
}

fn parse_days(text: &str) -> Result<i64, String> {
    let digits = text.trim().trim_end_matches(['d', 'D']);
    digits
        .parse::<i64>()
        .ok()
        .filter(|d| (1..=callview_core::access::MAX_EXPIRY_DAYS).contains(d))
        .ok_or_else(|| {
            format!(
                "{text:?} is not a number of days from 1 to {} (such as 90d)",
                callview_core::access::MAX_EXPIRY_DAYS
            )
        })
}

#[derive(Debug, Args)]
#[command(after_help = "\
To restore: stop every callview process using the database, delete its
`-wal` and `-shm` files, copy the backup over the database file, start
again. PostgreSQL databases are backed up with pg_dump.")]
struct BackupArgs {
    /// Where to write the copy (a new file; see --force).
    file: PathBuf,

    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate the settings `callview serve` would use (config file,
    /// environment, flags) and print each with where it came from; secrets
    /// are redacted. Exits 1 when something is wrong.
    Check {
        /// Print the settings as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct HealthcheckArgs {
    /// The address the server listens on (an unspecified address such as
    /// 0.0.0.0 is reached on loopback) [default: what `serve` would listen
    /// on with the same settings, e.g. a config file's `[serve]` table].
    #[arg(long, env = "CALLVIEW_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,

    /// The path to ask.
    #[arg(long, default_value = "/healthz")]
    path: String,

    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

#[derive(Debug, Subcommand)]
enum ContactsCommand {
    /// Import `phone,name,company,notes,tags` rows (tags separated by `;`;
    /// numbers in any format). Rows that do not parse are reported with
    /// their line number; the rest are imported.
    Import {
        /// The CSV file (`-` for standard input).
        file: std::path::PathBuf,
    },
    /// Write every contact as CSV (the form `import` reads).
    Export {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PresetArg {
    /// Last 7 days, at most 100 calls.
    Initial,
    /// Last 3 days, at most 500 calls.
    Manual,
    /// Last hour, at most 50 calls.
    Recent,
}

impl From<PresetArg> for Preset {
    fn from(p: PresetArg) -> Self {
        match p {
            PresetArg::Initial => Preset::Initial,
            PresetArg::Manual => Preset::Manual,
            PresetArg::Recent => Preset::Recent,
        }
    }
}

#[derive(Debug, Args)]
struct SyncArgs {
    /// Sync every call since then, without a cap: a duration back from now
    /// (`90m`, `12h`, `3d`, `2w`), a date (`2026-02-01`, UTC midnight) or an
    /// RFC 3339 time (`2026-02-01T08:00:00Z`).
    #[arg(long, value_parser = parse_since, conflicts_with_all = ["preset", "incremental"])]
    since: Option<DateTime<Utc>>,

    /// Sync one of the named windows with its cap.
    #[arg(long, value_enum, conflicts_with = "incremental")]
    preset: Option<PresetArg>,

    /// Sync since the last complete sync (minus a 2 h lookback) and refresh
    /// unfinished calls. This is the default when no window is given.
    #[arg(long)]
    incremental: bool,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Accepted forms: the Twilio CLI's JSON (`twilio api:core:calls:list -o json`,
camelCase), the REST API's (a page `{\"calls\": [...]}` or an array of
snake_case records), and JSON Lines of records or of pages. Records that are
not calls are listed with their position (record number and line) and the
rest imported; input that is not JSON fails before anything is written.
Importing a file again changes nothing. Owned numbers come from
--owned-numbers / CALLVIEW_OWNED_NUMBERS and from the last sync.

Examples:
  twilio api:core:calls:list --start-time-after 2026-01-01 -o json > calls.json
  callview import calls.json
  cat pages/*.jsonl | callview import - --json")]
struct ImportArgs {
    /// The file to read (`-` for standard input).
    file: PathBuf,

    /// Records applied per transaction.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    batch: u64,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormatArg {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line, with `raw` (the Twilio record): what
    /// `callview import` reads back.
    Jsonl,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Columns: sid, parent_call_sid, root_call_sid, external_id, contact_name, from,
to, direction, actual_direction, status, display_status, start_time, end_time
(RFC 3339, UTC), duration, talk_time, wait_time, price, price_unit,
recording_url, notes, tags. The filters are those of the conversation list
(GET /api/conversations), applied to each call's conversation; --since and
--until bound each call's own start time. A progress bar shows on a terminal.

Examples:
  callview export --format csv --since 30d --output calls.csv
  callview export --format jsonl --status missed > missed.jsonl
  callview export --format jsonl | callview import - --database-url sqlite://copy.db")]
struct ExportArgs {
    /// The output format.
    #[arg(long, value_enum, default_value = "csv")]
    format: ExportFormatArg,

    /// Only calls that started at or after then: a duration back from now
    /// (`90m`, `12h`, `3d`, `2w`), a date (`2026-02-01`, UTC midnight) or
    /// an RFC 3339 time.
    #[arg(long, value_parser = parse_since)]
    since: Option<DateTime<Utc>>,

    /// Only calls that started before then (the forms of --since).
    #[arg(long, value_parser = parse_since)]
    until: Option<DateTime<Utc>>,

    /// Write to this file (replaced only once the export is complete)
    /// instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,

    /// Only conversations matching a number in any format or a word (of a
    /// name, company, note or tag, or said in a call).
    #[arg(long, short = 'q')]
    search: Option<String>,

    /// Only conversations whose newest call has this direction: inbound,
    /// outbound or internal.
    #[arg(long)]
    direction: Option<String>,

    /// Only conversations whose newest call's status is in this group:
    /// missed, answered, in-progress, no-answer, busy, failed or canceled.
    #[arg(long)]
    status: Option<String>,

    /// Only conversations whose contact or one of whose calls carries this tag.
    #[arg(long)]
    tag: Option<String>,

    /// Only conversations with a recorded call.
    #[arg(long)]
    has_recording: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on. A non-loopback address needs --api-token (or --insecure-no-auth).
    #[arg(long, env = "CALLVIEW_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,

    /// Do not sync when starting.
    #[arg(long)]
    no_initial_sync: bool,

    /// Seconds between incremental syncs; 0 turns them off [default: 60, or 5 in demo mode].
    #[arg(long, env = "CALLVIEW_SYNC_INTERVAL")]
    sync_interval: Option<u64>,

    /// Serve the built-in simulated account (with live traffic) instead of
    /// Twilio. Also chosen when no TWILIO_* variable is set, then always on
    /// its own database (`callview-demo.db`); with --demo, on DATABASE_URL
    /// when it is set.
    #[arg(long)]
    demo: bool,

    /// Require `Authorization: Bearer <TOKEN>` on every /api route.
    #[arg(long, env = "CALLVIEW_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,

    /// Allow a non-loopback --listen address without an API token.
    #[arg(long)]
    insecure_no_auth: bool,

    /// The base URL Twilio uses to reach this server (e.g. behind a proxy:
    /// `https://calls.example.com`), to check the signatures of status
    /// callbacks on /webhooks/twilio/call-status and /webhooks/twilio/messages
    /// (signed with TWILIO_AUTH_TOKEN), and to ask for the status callbacks
    /// of texts sent.
    #[arg(long, env = "CALLVIEW_PUBLIC_URL")]
    public_url: Option<String>,

    /// Send texts from this number (one of the account's, E.164) or
    /// messaging service (MG...): turns on `POST
    /// /api/conversations/{id}/messages` and the viewer's reply box.
    /// Needs an API token (--api-token or `callview token create`). The
    /// demo sends from its first number through the simulated account.
    #[arg(long, env = "CALLVIEW_SMS_FROM")]
    sms_from: Option<String>,

    /// Keep fetched recording audio in this directory, so a recording
    /// played twice is fetched from Twilio once.
    #[arg(long, env = "CALLVIEW_RECORDING_CACHE")]
    recording_cache: Option<PathBuf>,

    /// The most the recording cache keeps, in megabytes (least recently
    /// played files go first).
    #[arg(long, env = "CALLVIEW_RECORDING_CACHE_MB", default_value_t = 1024)]
    recording_cache_mb: u64,

    /// The time zone of statistics when a request names none (an IANA
    /// name: Europe/Paris, America/New_York).
    #[arg(long, env = "CALLVIEW_TIMEZONE", default_value = "UTC")]
    timezone: chrono_tz::Tz,

    /// Also serve /metrics, /healthz and /readyz on this address, without
    /// a token (on the main address /metrics needs the API token when one
    /// is set). Bind it to a private address only.
    #[arg(long, env = "CALLVIEW_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,

    /// /readyz fails when the last successful sync is older than this many
    /// seconds; 0 turns the check off [default: 600 when syncs are
    /// scheduled, else off].
    #[arg(long, env = "CALLVIEW_READY_MAX_SYNC_AGE")]
    ready_max_sync_age: Option<u64>,

    /// On SIGTERM or Ctrl-C, the most seconds to wait for requests in
    /// flight and for the running sync to stop after its current page
    /// (open event streams are ended at once); then the server exits.
    #[arg(
        long,
        env = "CALLVIEW_SHUTDOWN_TIMEOUT",
        default_value_t = 30,
        value_name = "SECONDS"
    )]
    shutdown_timeout: u64,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Address to listen on (port 0 picks a free one; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:4010")]
    listen: SocketAddr,

    /// Call records in the account (legs included).
    #[arg(long, default_value_t = 2000)]
    calls: usize,

    /// Days of history the calls spread over.
    #[arg(long, default_value_t = 30)]
    days: u32,

    /// Seed of the generator: the same seed gives the same account.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Text messages (SMS and MMS) in the account; by default one for
    /// every four calls.
    #[arg(long)]
    texts: Option<usize>,

    /// Keep adding traffic while serving: calls ring, end, get prices.
    #[arg(long)]
    live: bool,
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
    // Flags, then environment, then the config file, then defaults.
    let resolved = callview_server::config::resolve(Cli::command(), std::env::args_os())
        .unwrap_or_else(|e| e.exit());
    let cli = Cli::from_arg_matches(&resolved.matches).unwrap_or_else(|e| e.exit());
    let default_level = match cli.command {
        Command::Sync(_)
        | Command::Import(_)
        | Command::Export(_)
        | Command::Backup(_)
        | Command::Config(_)
        | Command::Healthcheck(_)
        | Command::Token(_) => "warn",
        _ => "info",
    };
    init_tracing(default_level, cli.common.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli, resolved));
    // Tasks still running (a connection cut off at the shutdown bound) do
    // not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(default_level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default_level},tower_http=info,sqlx=warn,hyper=warn"
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

async fn run(cli: Cli, resolved: callview_server::config::Resolved) -> Result<()> {
    match cli.command {
        Command::Backup(args) => backup(&cli.common, args).await,
        Command::Config(ConfigCommand::Check { json }) => config_check(&resolved, json),
        Command::Healthcheck(args) => healthcheck(args, &resolved).await,
        Command::Sync(args) => sync(&cli.common, args).await,
        Command::Import(args) => import(&cli.common, args).await,
        Command::Export(args) => export(&cli.common, args).await,
        Command::Serve(args) => serve(&cli.common, args).await,
        Command::Simulate(args) => simulate(args).await,
        Command::Contacts(command) => contacts(&cli.common, command).await,
        Command::Token(command) => token(&cli.common, command).await,
    }
}

async fn token(common: &CommonArgs, command: TokenCommand) -> Result<()> {
    use callview_core::access::{expiry_after_days, NewToken};
    let store = open_store(common).await?;
    let now = Utc::now();
    match command {
        TokenCommand::Create {
            name,
            role,
            expires,
        } => {
            let expires_at = expiry_after_days(expires, now)?;
            let (secret, token) = NewToken::generate(&name, role, now, expires_at)?;
            let record = store
                .create_token(&token)
                .await
                .with_context(|| format!("cannot create the token {:?}", token.name))?;
            eprintln!(
                "Created the {} token {:?}{}. It is shown only now: copy it; the database keeps only its hash.",
                record.role,
                record.name,
                record
                    .expires_at
                    .map(|t| format!(", valid until {}", t.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default()
            );
            println!("{}", secret.expose());
            Ok(())
        }
        TokenCommand::List { json } => {
            let tokens = store.tokens().await?;
            if json {
                let list: Vec<_> = tokens
                    .iter()
                    .map(|t| callview_server::auth::token_json(t, now))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", token_table(&tokens, now));
            }
            Ok(())
        }
        TokenCommand::Revoke { name } => {
            let record = store.revoke_token(&name, now).await.map_err(|e| match e {
                callview_core::StoreError::NotFound(_) => {
                    anyhow::anyhow!("no active token is named {name:?} (see `callview token list`)")
                }
                other => anyhow::Error::new(other).context("cannot revoke the token"),
            })?;
            println!("revoked the {} token {:?}", record.role, record.name);
            Ok(())
        }
    }
}

fn token_table(tokens: &[callview_core::access::TokenRecord], now: DateTime<Utc>) -> String {
    let time = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "-".into())
    };
    let mut out = format!(
        "{:<24} {:<7} {:<17} {:<17} {:<17} {}\n",
        "NAME", "ROLE", "CREATED (UTC)", "LAST USED", "EXPIRES", "STATUS"
    );
    for t in tokens {
        out.push_str(&format!(
            "{:<24} {:<7} {:<17} {:<17} {:<17} {}\n",
            t.name,
            t.role.as_str(),
            time(Some(t.created_at)),
            time(t.last_used_at),
            time(t.expires_at),
            t.status(now).as_str()
        ));
    }
    if tokens.is_empty() {
        out.push_str("(no tokens: create one with `callview token create NAME --role viewer|editor|admin`)\n");
    }
    out
}

async fn contacts(common: &CommonArgs, command: ContactsCommand) -> Result<()> {
    let rules = party_rules(common)?;
    let store = open_store(common).await?;
    match command {
        ContactsCommand::Import { file } => {
            let input: Box<dyn std::io::Read> = if file.as_os_str() == "-" {
                Box::new(std::io::stdin())
            } else {
                Box::new(
                    std::fs::File::open(&file)
                        .with_context(|| format!("cannot open {}", file.display()))?,
                )
            };
            let (rows, rejected) = contacts_csv::parse(input, &rules.normalizer)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let report = contacts_csv::import(&store, rows, rejected).await?;
            for row in &report.rejected {
                eprintln!("line {}: {}", row.line, row.reason);
            }
            println!(
                "imported {} contacts, {} rows rejected",
                report.imported,
                report.rejected.len()
            );
            if !report.rejected.is_empty() {
                anyhow::bail!(
                    "{} rows were not imported (listed above)",
                    report.rejected.len()
                );
            }
            Ok(())
        }
        ContactsCommand::Export { output } => {
            let written = match &output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    contacts_csv::export(store.as_ref(), std::io::BufWriter::new(file)).await?
                }
                None => contacts_csv::export(store.as_ref(), std::io::stdout().lock()).await?,
            };
            eprintln!("exported {written} contacts");
            Ok(())
        }
    }
}

/// Parses `--since`.
fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    parse_since_at(text, Utc::now())
}

fn parse_since_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let help = "expected a duration (90m, 12h, 3d, 2w), a date (2026-02-01) or an RFC 3339 time (2026-02-01T08:00:00Z)";
    if let Some(unit) = text.chars().last().filter(|c| c.is_ascii_alphabetic()) {
        let digits = &text[..text.len() - 1];
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
            let n: i64 = digits
                .parse()
                .map_err(|_| format!("{text:?} is too large"))?;
            let span = match unit {
                'm' => chrono::Duration::try_minutes(n),
                'h' => chrono::Duration::try_hours(n),
                'd' => chrono::Duration::try_days(n),
                'w' => chrono::Duration::try_weeks(n),
                _ => return Err(format!("unknown unit {unit:?} in {text:?}: {help}")),
            }
            .ok_or_else(|| format!("{text:?} is too large"))?;
            return now
                .checked_sub_signed(span)
                .ok_or_else(|| format!("{text:?} is too large"));
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    Err(format!("cannot read {text:?}: {help}"))
}

fn party_rules(common: &CommonArgs) -> Result<PartyRules> {
    let normalizer = Normalizer::new(&common.default_region)
        .context("CALLVIEW_DEFAULT_REGION / --default-region")?;
    let owned = OwnedNumbers::from_raw(
        &normalizer,
        common
            .owned_numbers
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty()),
    );
    let given = common
        .owned_numbers
        .iter()
        .filter(|n| !n.trim().is_empty())
        .count();
    if owned.len() < given {
        tracing::warn!(
            given,
            understood = owned.len(),
            "some CALLVIEW_OWNED_NUMBERS values are not phone numbers and are ignored"
        );
    }
    Ok(PartyRules::new(normalizer, owned))
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The Twilio client the environment asks for: real credentials, or dummy
/// ones when only `TWILIO_API_BASE_URL` is set. `None` when nothing is set.
/// Its requests are counted into `metrics` when given.
fn twilio_from_env(metrics: Option<&Metrics>) -> Result<Option<Arc<dyn TwilioClient>>> {
    let config = match TwilioConfig::from_env().context("Twilio configuration")? {
        Some(config) => config,
        None => match env_var("TWILIO_API_BASE_URL") {
            Some(base_url) => {
                tracing::info!(%base_url, "TWILIO_API_BASE_URL is set without credentials: using dummy ones (for `callview simulate`)");
                TwilioConfig {
                    credentials: Credentials::AuthToken {
                        account_sid: demo::DUMMY_ACCOUNT_SID.to_owned(),
                        auth_token: Secret::new(demo::DUMMY_AUTH_TOKEN),
                    },
                    intelligence_base_url: base_url.clone(),
                    base_url,
                }
            }
            None => return Ok(None),
        },
    };
    let mut client = HttpTwilioClient::new(config).context("Twilio configuration")?;
    if let Some(metrics) = metrics {
        client = client.with_observer(metrics.twilio_observer());
    }
    Ok(Some(Arc::new(client)))
}

/// The database of a normal run, when none is named.
const DEFAULT_DATABASE_URL: &str = "sqlite://callview.db";
/// The database of the demo, when none is named: a file of its own, so
/// simulated calls never mix with real ones.
const DEMO_DATABASE_URL: &str = "sqlite://callview-demo.db";

async fn open_store(common: &CommonArgs) -> Result<Arc<dyn Store>> {
    let url = common
        .database_url
        .as_deref()
        .unwrap_or(DEFAULT_DATABASE_URL);
    Ok(db::open_store(url).await?)
}

/// Which database `serve` uses: the named one, except that the demo (no
/// Twilio credentials) only ever writes into a database the user named
/// when `--demo` says so; without it, naming a database and no credentials
/// is an error that names the missing variables.
fn serve_database(
    named: Option<&str>,
    demo_mode: bool,
    demo_asked: bool,
) -> Result<String, String> {
    match (named, demo_mode) {
        (Some(url), false) => Ok(url.to_owned()),
        (None, false) => Ok(DEFAULT_DATABASE_URL.to_owned()),
        (None, true) => Ok(DEMO_DATABASE_URL.to_owned()),
        (Some(url), true) if demo_asked => Ok(url.to_owned()),
        (Some(url), true) => Err(format!(
            "DATABASE_URL ({}) is set but no Twilio credentials are: set TWILIO_ACCOUNT_SID \
             and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET) to sync your \
             account into it. The demo's simulated calls go only into {DEMO_DATABASE_URL}, \
             unless you pass --demo to put them into this database on purpose",
            db::redact(url)
        )),
    }
}

async fn sync(common: &CommonArgs, args: SyncArgs) -> Result<()> {
    let rules = party_rules(common)?;
    let Some(client) = twilio_from_env(None)? else {
        bail!(
            "no Twilio credentials: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY \
             and TWILIO_API_SECRET), or set TWILIO_API_BASE_URL to the URL printed by \
             `callview simulate` to sync from the simulated account"
        );
    };
    let store = open_store(common).await?;
    let engine = SyncEngine::new(client, store, rules);
    // SIGTERM or Ctrl-C: stop after the page being applied.
    let stop = engine.stop_flag().clone();
    let on_signal = tokio::spawn(async move {
        callview_server::server::shutdown_signal().await;
        tracing::warn!("stopping the sync after its current page");
        stop.stop();
    });
    let mode = match (args.since, args.preset) {
        (Some(since), _) => SyncMode::Since(since),
        (None, Some(preset)) => SyncMode::Preset(preset.into()),
        (None, None) => SyncMode::incremental(),
    };

    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message("asking Twilio for calls...");
        bar
    });
    let on_progress = bar.clone().map(|bar| {
        move |p: Progress| {
            bar.set_message(format!("{} records, {} pages", p.fetched, p.pages));
        }
    });
    let result = engine
        .run(
            mode,
            on_progress
                .as_ref()
                .map(|f| f as &(dyn Fn(Progress) + Send + Sync)),
        )
        .await;
    on_signal.abort();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Err(callview_core::SyncError::Stopped) = result {
        bail!(
            "the sync was stopped (SIGTERM or Ctrl-C) before it finished; every page it applied \
             is kept: run the same command again to complete it{}",
            if matches!(mode, SyncMode::Since(_)) {
                " (the day slices it completed are not read again)"
            } else {
                ""
            }
        );
    }
    let report = result.context("the sync failed")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report_table(&report));
    }
    Ok(())
}

async fn import(common: &CommonArgs, args: ImportArgs) -> Result<()> {
    use callview_core::import::{import_calls, with_cached_owned_numbers, ImportProgress};
    let rules = party_rules(common)?;
    // The input is opened first: a missing file touches no database.
    let (input, size, name): (Box<dyn std::io::Read + Send>, Option<u64>, String) =
        if args.file.as_os_str() == "-" {
            (Box::new(std::io::stdin()), None, "standard input".into())
        } else {
            let file = std::fs::File::open(&args.file)
                .with_context(|| format!("cannot open {}", args.file.display()))?;
            let size = file
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            (Box::new(file), size, args.file.display().to_string())
        };
    let store = open_store(common).await?;
    let rules = with_cached_owned_numbers(store.as_ref(), rules).await?;

    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| {
        let bar = match size {
            Some(size) => {
                let bar = indicatif::ProgressBar::new(size);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} {elapsed} [{bar:30}] {bytes}/{total_bytes} {msg}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar
            }
            None => {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {elapsed} {bytes} {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar
            }
        };
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(format!("reading {name}..."));
        bar
    });
    let on_progress = bar.clone().map(|bar| {
        move |p: ImportProgress| {
            bar.set_position(p.bytes);
            bar.set_message(format!("{} records, {} batches", p.records, p.batches));
        }
    });
    let batch = usize::try_from(args.batch).unwrap_or(callview_core::import::DEFAULT_BATCH);
    let result = import_calls(
        store.as_ref(),
        &rules,
        input,
        batch,
        on_progress
            .as_ref()
            .map(|f| f as &(dyn Fn(ImportProgress) + Send + Sync)),
    )
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let (report, failure) = match result {
        Ok(report) => (report, None),
        Err(failure) => (failure.report.clone(), Some(failure)),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if failure.is_none() || report.sync.fetched > 0 {
        print!("{}", import_table(&name, &report));
    }
    match failure {
        None => Ok(()),
        Some(failure) => {
            Err(anyhow::Error::new(failure).context(format!("the import of {name} stopped")))
        }
    }
}

/// `callview export`: the filters go through the API's parser (the same
/// checks as `GET /api/export/calls.csv`), then the store is read a page at
/// a time into the output.
async fn export(common: &CommonArgs, args: ExportArgs) -> Result<()> {
    use callview_core::export::{export_to, ExportFormat, ExportProgress, DEFAULT_PAGE};
    use callview_server::params::QueryParams;
    let rules = party_rules(common)?;
    let mut pairs = url::form_urlencoded::Serializer::new(String::new());
    let flags = [
        ("q", "--search", args.search.clone()),
        ("direction", "--direction", args.direction.clone()),
        ("status", "--status", args.status.clone()),
        ("tag", "--tag", args.tag.clone()),
        (
            "has_recording",
            "--has-recording",
            args.has_recording.then(|| "true".to_owned()),
        ),
        ("since", "--since", args.since.map(|t| t.to_rfc3339())),
        ("until", "--until", args.until.map(|t| t.to_rfc3339())),
    ];
    for (name, _, value) in &flags {
        if let Some(value) = value {
            pairs.append_pair(name, value);
        }
    }
    let query = QueryParams::parse(Some(&pairs.finish()))
        .and_then(|params| callview_server::export::export_query(&params, &rules.normalizer))
        .map_err(|e| {
            // The API's message names the query parameter; say the flag.
            let message = flags
                .iter()
                .fold(e.message().to_owned(), |m, (name, flag, _)| {
                    m.replace(&format!("`{name}`"), flag)
                });
            anyhow::anyhow!(message)
        })?;
    let format = match args.format {
        ExportFormatArg::Csv => ExportFormat::Csv,
        ExportFormatArg::Jsonl => ExportFormat::JsonLines,
    };
    let store = open_store(common).await?;

    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {pos} calls {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    if let Some(bar) = &bar {
        // Without filters the number of calls is known: a bar, not a spinner.
        if !query.has_filters() {
            if let Ok(counts) = store.counts().await {
                bar.set_length(counts.calls);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} {elapsed} [{bar:30}] {pos}/{len} calls {msg}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
            }
        }
    }
    let on_progress = |p: ExportProgress| {
        if let Some(bar) = &bar {
            bar.set_position(p.rows);
        }
    };
    let map = callview_server::export::served;
    let (result, target) = match &args.output {
        None => (
            export_to(
                store.as_ref(),
                &query,
                format,
                DEFAULT_PAGE,
                std::io::BufWriter::new(std::io::stdout().lock()),
                map,
                on_progress,
            )
            .await,
            "standard output".to_owned(),
        ),
        Some(path) if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) => {
            // A device or a pipe (`/dev/null`, `/dev/stdout`): written as it is.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let result = export_to(
                store.as_ref(),
                &query,
                format,
                DEFAULT_PAGE,
                std::io::BufWriter::new(file),
                map,
                on_progress,
            )
            .await;
            (result, path.display().to_string())
        }
        Some(path) => {
            // Written next to the file, then renamed over it: an export
            // that fails leaves no partial file behind.
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "export".to_owned());
            let partial = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
            let file = std::fs::File::create(&partial)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let result = export_to(
                store.as_ref(),
                &query,
                format,
                DEFAULT_PAGE,
                std::io::BufWriter::new(file),
                map,
                on_progress,
            )
            .await;
            let result = match result {
                Ok(rows) => std::fs::rename(&partial, path)
                    .map(|()| rows)
                    .map_err(callview_core::export::ExportError::from),
                Err(e) => Err(e),
            };
            if result.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            (result, path.display().to_string())
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let rows = result.with_context(|| format!("the export to {target} failed"))?;
    eprintln!("exported {rows} calls to {target}");
    Ok(())
}

fn import_table(name: &str, r: &callview_core::import::ImportReport) -> String {
    use callview_core::import::InputForm;
    let form = match r.form {
        Some(InputForm::Array) => "a JSON array",
        Some(InputForm::Page) => "a REST page",
        Some(InputForm::JsonLines) => "JSON Lines",
        None => "not read to its end",
    };
    let s = &r.sync;
    let mut out = format!(
        "Import of {name} ({form}, {} bytes) finished in {:.2} s\n",
        r.bytes,
        s.elapsed_ms as f64 / 1000.0
    );
    let rows: [(&str, u64); 7] = [
        ("records", s.fetched),
        ("inserted", s.inserted),
        ("updated", s.updated),
        ("unchanged", s.unchanged),
        ("moved", s.moved),
        ("skipped", s.skipped.len() as u64),
        ("batches", s.pages),
    ];
    for (label, value) in rows {
        out.push_str(&format!("  {label:<16}{value:>8}\n"));
    }
    if !s.skipped.is_empty() {
        out.push_str("Skipped records:\n");
        for skipped in &s.skipped {
            out.push_str(&format!(
                "  {} ({})\n",
                skipped.reason,
                skipped.sid.as_deref().unwrap_or("no sid")
            ));
        }
    }
    out
}

fn report_table(r: &SyncReport) -> String {
    let mut out = String::new();
    let time = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| "-".into())
    };
    out.push_str(&format!(
        "Sync finished in {:.2} s (calls since {})\n",
        r.elapsed_ms as f64 / 1000.0,
        time(r.since)
    ));
    let rows: [(&str, String); 10] = [
        ("fetched", r.fetched.to_string()),
        ("inserted", r.inserted.to_string()),
        ("updated", r.updated.to_string()),
        ("unchanged", r.unchanged.to_string()),
        ("moved", r.moved.to_string()),
        ("skipped", r.skipped.len().to_string()),
        ("outside window", r.outside_window.to_string()),
        ("refreshed", r.refreshed.to_string()),
        ("pages", r.pages.to_string()),
        (
            "more available",
            if r.more_available {
                "yes (the cap stopped the run)"
            } else {
                "no"
            }
            .to_owned(),
        ),
    ];
    for (name, value) in rows {
        out.push_str(&format!("  {name:<16}{value:>8}\n"));
    }
    let m = &r.media;
    out.push_str(&format!(
        "Recordings: {} fetched, {} written, {} marked deleted; transcripts: {} fetched, {} written\n",
        m.recordings_fetched,
        m.recordings_written,
        m.recordings_deleted,
        m.transcripts_fetched,
        m.transcripts_written
    ));
    for note in &m.notes {
        out.push_str(&format!("  note: {note}\n"));
    }
    let t = &r.texts;
    out.push_str(&format!(
        "Texts: {} fetched, {} new, {} updated, {} unchanged; media of {} MMS listed{}\n",
        t.fetched,
        t.inserted,
        t.updated,
        t.unchanged,
        t.media_listed,
        if t.more_available {
            " (the cap stopped the listing; more are available)"
        } else {
            ""
        }
    ));
    if !r.skipped.is_empty() {
        out.push_str("Skipped records:\n");
        for s in &r.skipped {
            out.push_str(&format!(
                "  {}: {}\n",
                s.sid.as_deref().unwrap_or("(no sid)"),
                s.reason
            ));
        }
    }
    out
}

async fn serve(common: &CommonArgs, args: ServeArgs) -> Result<()> {
    let twilio_env = TwilioConfig::from_env().context("Twilio configuration")?;
    let base_url_only = twilio_env.is_none() && env_var("TWILIO_API_BASE_URL").is_some();
    let demo_mode = args.demo || (twilio_env.is_none() && !base_url_only);
    // Refused before anything is logged or opened.
    let database_url = serve_database(common.database_url.as_deref(), demo_mode, args.demo)
        .map_err(anyhow::Error::msg)?;
    if demo_mode {
        // The first log line says so.
        if args.demo {
            tracing::info!(
                "demo mode: --demo given, serving a simulated account with live traffic"
            );
        } else {
            tracing::info!("demo mode: no Twilio credentials set, serving a simulated account with live traffic (set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to serve your own)");
        }
    }
    let token = args.api_token.as_deref().filter(|t| !t.is_empty());
    // Tokens stored with `callview token create` protect the API too; a
    // SQLite file that does not exist holds none (and is not created to
    // find out).
    let stored_tokens = has_stored_tokens(&database_url).await?;
    let protected = token.is_some() || stored_tokens;
    check_exposure(args.listen, protected, args.insecure_no_auth)?;
    let sms_from = args
        .sms_from
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if sms_from.is_some() && !protected && !demo_mode {
        bail!(
            "sending texts (CALLVIEW_SMS_FROM) needs the API protected by a token: \
             set --api-token / CALLVIEW_API_TOKEN or create one with `callview token create`"
        );
    }
    if args.insecure_no_auth && !protected && !args.listen.ip().to_canonical().is_loopback() {
        tracing::warn!(listen = %args.listen, "serving without authentication on a non-loopback address (--insecure-no-auth)");
    }
    let rules = party_rules(common)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    let metrics_listener = match args.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (--metrics-listen)"))?,
        ),
        None => None,
    };
    let store = db::open_store(&database_url).await?;
    let metrics = Metrics::new();

    let mut demo_sender = None;
    let (client, live): (Arc<dyn TwilioClient>, Option<demo::LiveTraffic>) = if demo_mode {
        let sim = demo::default_demo_account();
        demo_sender =
            sim.with_account(|a| a.owned_numbers().into_iter().next().map(|n| n.phone_number));
        let live = demo::LiveTraffic::start(sim.clone(), demo::LIVE_TICK);
        (Arc::new(sim), Some(live))
    } else {
        let client = twilio_from_env(Some(&metrics))?.context("no Twilio configuration")?;
        (client, None)
    };
    // The demo's simulated account signs its callbacks with its own token
    // and posts them to this server.
    let public_url = args
        .public_url
        .clone()
        .or_else(|| demo_mode.then(|| format!("http://{local}")));
    let webhook_token = if demo_mode {
        Some(callview_sim::DEFAULT_AUTH_TOKEN.to_owned())
    } else {
        env_var("TWILIO_AUTH_TOKEN")
    };
    let webhook = callview_server::webhook::WebhookConfig::new(webhook_token.map(Secret::new))
        .with_public_url(public_url.as_deref())
        .with_client(Arc::clone(&client));
    let texting =
        sms_from
            .map(str::to_owned)
            .or(demo_sender)
            .map(|from| callview_server::texts::Texting {
                sender: TextSender::parse(&from),
                client: Arc::clone(&client),
                status_callback: public_url.as_deref().map(|base| {
                    format!(
                        "{}{}",
                        base.trim_end_matches('/'),
                        callview_server::texts::MESSAGES_WEBHOOK_PATH
                    )
                }),
            });
    let cache = match &args.recording_cache {
        Some(dir) => Some(
            callview_server::audio_cache::AudioCache::open(
                dir.clone(),
                args.recording_cache_mb.saturating_mul(1024 * 1024),
            )
            .with_context(|| format!("cannot use {} as the recording cache", dir.display()))?,
        ),
        None => None,
    };
    let runner = SyncRunner::with_metrics(
        SyncEngine::new(Arc::clone(&client), Arc::clone(&store), rules.clone()),
        metrics,
    );
    let interval_secs = args.sync_interval.unwrap_or(if demo_mode { 5 } else { 60 });
    let ready_max_sync_age = match args.ready_max_sync_age {
        Some(0) => None,
        Some(secs) => Some(Duration::from_secs(secs)),
        None => (interval_secs > 0).then_some(callview_server::health::DEFAULT_READY_MAX_SYNC_AGE),
    };
    let state = AppState::new(store)
        .with_recordings(client, cache)
        .with_sync(runner)
        .with_webhook(webhook)
        .with_api_token(token)
        .with_timezone(args.timezone)
        .with_normalizer(rules.normalizer)
        .with_ready_max_sync_age(ready_max_sync_age);
    let state = match texting {
        Some(texting) => {
            tracing::info!(from = ?texting.sender, "sending texts is on");
            state.with_texting(texting)
        }
        None => state,
    };
    if let Some(listener) = metrics_listener {
        let private = callview_server::health::serve_private(
            listener,
            state.clone(),
            callview_server::server::shutdown_signal(),
        );
        tokio::spawn(async move {
            if let Err(e) = private.await {
                tracing::error!(error = %e, "the --metrics-listen listener failed");
            }
        });
    }
    let initial_sync = (!args.no_initial_sync).then(|| {
        if demo_mode {
            // The whole simulated history, not only the initial preset's 100 calls.
            SyncMode::Since(Utc::now() - chrono::Duration::days(i64::from(demo::DEMO_DAYS) + 1))
        } else {
            SyncMode::Preset(Preset::Initial)
        }
    });
    let config = ServerConfig {
        initial_sync,
        sync_interval: (interval_secs > 0).then(|| Duration::from_secs(interval_secs)),
        insecure_no_auth: args.insecure_no_auth,
        shutdown_grace: Duration::from_secs(args.shutdown_timeout),
        ..ServerConfig::new(state)
    };
    tracing::info!(
        url = %format!("http://{local}"),
        sync_interval_secs = interval_secs,
        auth = match (token.is_some(), stored_tokens) {
            (true, true) => "api token and stored tokens",
            (true, false) => "api token",
            (false, true) => "stored tokens",
            (false, false) => "none",
        },
        "callview is listening"
    );
    let result = callview_server::serve(listener, config).await;
    if let Some(live) = live {
        live.stop().await;
    }
    result?;
    Ok(())
}

/// Whether the database at `url` holds API tokens; `false`, without
/// creating it, for a SQLite file that does not exist.
async fn has_stored_tokens(url: &str) -> Result<bool> {
    if db::backend_of(url) == Some(db::Backend::Sqlite) {
        let path = url
            .trim()
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || path.contains(":memory:") || !std::path::Path::new(path).exists() {
            return Ok(false);
        }
    }
    let store = db::open_store(url).await?;
    Ok(!store.tokens().await?.is_empty())
}

async fn simulate(args: SimulateArgs) -> Result<()> {
    if args.calls == 0 {
        bail!("--calls must be at least 1");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    let config = SimConfig {
        days: args.days.max(1),
        texts: args.texts,
        ..SimConfig::new(args.seed, args.calls)
    };
    let account_sid = config.account_sid.clone();
    let sim = demo::demo_account(config);
    let live = args
        .live
        .then(|| demo::LiveTraffic::start(sim.clone(), demo::LIVE_TICK));
    let base = format!("http://{local}");
    println!(
        "Simulated Twilio account {account_sid}: {} calls over {} days, at {base}",
        args.calls,
        args.days.max(1)
    );
    println!("Point callview at it with:");
    println!("export TWILIO_INTELLIGENCE_BASE_URL={base}");
    // Last: scripts (and the tests) read up to this line.
    println!("export TWILIO_API_BASE_URL={base}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let result =
        demo::serve_simulator(listener, sim, callview_server::server::shutdown_signal()).await;
    if let Some(live) = live {
        live.stop().await;
    }
    result.context("the simulator stopped")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        let now = DateTime::parse_from_rfc3339("2026-02-07T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |t: &str| parse_since_at(t, now).unwrap().to_rfc3339();
        assert_eq!(at("3d"), "2026-02-04T12:00:00+00:00");
        assert_eq!(at("12h"), "2026-02-07T00:00:00+00:00");
        assert_eq!(at("90m"), "2026-02-07T10:30:00+00:00");
        assert_eq!(at("1w"), "2026-01-31T12:00:00+00:00");
        assert_eq!(at("2026-02-01"), "2026-02-01T00:00:00+00:00");
        assert_eq!(at("2026-02-01T08:00:00+01:00"), "2026-02-01T07:00:00+00:00");
        for bad in [
            "",
            "3x",
            "d",
            "yesterday",
            "2026-13-01",
            "99999999999999999999d",
        ] {
            assert!(parse_since_at(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_demo_never_writes_into_a_named_database_unless_asked() {
        assert_eq!(
            serve_database(None, true, false).unwrap(),
            "sqlite://callview-demo.db"
        );
        assert_eq!(
            serve_database(None, false, false).unwrap(),
            "sqlite://callview.db"
        );
        assert_eq!(
            serve_database(Some("postgres://h/db"), false, false).unwrap(),
            "postgres://h/db"
        );
        assert_eq!(
            serve_database(Some("sqlite://mine.db"), true, true).unwrap(),
            "sqlite://mine.db"
        );
        let err = serve_database(Some("postgres://u:hunter2@h/db"), true, false).unwrap_err();
        assert!(err.contains("TWILIO_ACCOUNT_SID"), "{err}");
        assert!(err.contains("--demo"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn report_table_lists_every_count() {
        let table = report_table(&SyncReport {
            fetched: 3,
            inserted: 2,
            media: callview_core::sync::MediaReport {
                recordings_written: 7,
                notes: vec!["Voice Intelligence transcripts skipped".into()],
                ..Default::default()
            },
            ..SyncReport::default()
        });
        assert!(table.contains("inserted"));
        assert!(table.contains("fetched"));
        assert!(table.contains("7 written"), "{table}");
        assert!(table.contains("note: Voice Intelligence"), "{table}");
    }
}
