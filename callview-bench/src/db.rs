//! Databases the benchmarks create and remove: a SQLite file in a
//! temporary directory, or a fresh PostgreSQL database
//! (`callview_bench_<time>_<n>`) dropped when the benchmark ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use callview_core::Store;
use serde::Serialize;
use sqlx::{Connection, PgConnection};

/// The admin URL used when neither `--pg-url` nor `CALLVIEW_BENCH_PG_URL`
/// (nor `CALLVIEW_TEST_PG_URL`) is set.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Prefix of every database the benchmarks create.
pub const DATABASE_PREFIX: &str = "callview_bench_";

/// Benchmark databases older than this are dropped by later runs.
const STALE_AFTER: Duration = Duration::from_secs(6 * 3600);

/// The PostgreSQL admin URL from the environment, or [`DEFAULT_PG_URL`].
pub fn default_pg_url() -> String {
    ["CALLVIEW_BENCH_PG_URL", "CALLVIEW_TEST_PG_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_PG_URL.to_owned())
}

/// Which store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// `callview-sqlite`.
    Sqlite,
    /// `callview-postgres`.
    Postgres,
}

impl StoreKind {
    /// `SQLite` or `PostgreSQL`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// A database made for one measurement.
#[derive(Debug)]
pub struct BenchDb {
    /// Which store.
    pub kind: StoreKind,
    /// The URL `callview` opens it with (`sqlite://...` or `postgres://...`).
    pub url: String,
    dir: Option<tempfile::TempDir>,
    pg: Option<PgDatabase>,
}

impl BenchDb {
    /// A new, empty database. `pg_admin_url` names a PostgreSQL server and
    /// a user that may create databases.
    pub async fn create(kind: StoreKind, pg_admin_url: &str) -> Result<Self> {
        Self::create_with(kind, pg_admin_url, &[]).await
    }

    /// [`BenchDb::create`], with PostgreSQL settings for the new database
    /// (`ALTER DATABASE ... SET name = value`; ignored for SQLite).
    pub async fn create_with(
        kind: StoreKind,
        pg_admin_url: &str,
        pg_settings: &[(&str, &str)],
    ) -> Result<Self> {
        match kind {
            StoreKind::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("callview-bench-")
                    .tempdir()
                    .context("creating a temporary directory")?;
                let path = dir.path().join("callview.db");
                Ok(Self {
                    kind,
                    url: format!("sqlite://{}", path.display()),
                    dir: Some(dir),
                    pg: None,
                })
            }
            StoreKind::Postgres => {
                let pg = PgDatabase::create(pg_admin_url).await?;
                if !pg_settings.is_empty() {
                    let mut conn = admin_connection(pg_admin_url).await?;
                    for (name, value) in pg_settings {
                        anyhow::ensure!(
                            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                                && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                            "unexpected setting {name} = {value}"
                        );
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "ALTER DATABASE \"{}\" SET {name} = {value}",
                            pg.name
                        )))
                        .execute(&mut conn)
                        .await?;
                    }
                    let _ = conn.close().await;
                }
                Ok(Self {
                    kind,
                    url: pg.url.clone(),
                    dir: None,
                    pg: Some(pg),
                })
            }
        }
    }

    /// Opens the store the way the server does (`callview_server::db::open_store`),
    /// creating the schema.
    pub async fn open_store(&self) -> Result<Arc<dyn Store>> {
        callview_server::db::open_store(&self.url)
            .await
            .with_context(|| format!("opening the {} store", self.kind))
    }

    /// The SQLite file.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("callview.db"))
    }

    /// A directory for scratch files next to the database (SQLite only).
    pub fn scratch_dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    /// Bytes on disk: the SQLite file with its WAL, or the PostgreSQL database.
    pub async fn size_bytes(&self) -> Result<u64> {
        match self.kind {
            StoreKind::Sqlite => {
                let mut total = 0;
                if let Some(path) = self.sqlite_path() {
                    for suffix in ["", "-wal", "-shm"] {
                        let file = PathBuf::from(format!("{}{suffix}", path.display()));
                        total += std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
                    }
                }
                Ok(total)
            }
            StoreKind::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await?;
                let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(&mut conn)
                    .await?;
                let _ = conn.close().await;
                Ok(size.max(0) as u64)
            }
        }
    }

    /// Bytes the store's data takes, for the stored size per call (issue
    /// 17, target 1). SQLite: the database file plus its WAL, after a
    /// `PRAGMA wal_checkpoint(TRUNCATE)` (the store should be closed; a
    /// checkpoint that cannot complete leaves the WAL counted).
    /// PostgreSQL: `pg_total_relation_size` (heap, TOAST, indexes, free
    /// space and visibility maps) summed over every table of the schema;
    /// the catalogs and the rest of `pg_database_size` are left out, since
    /// they do not grow with the calls.
    pub async fn stored_bytes(&self) -> Result<u64> {
        match self.kind {
            StoreKind::Sqlite => {
                let path = self.sqlite_path().context("the SQLite file")?;
                tokio::task::spawn_blocking(move || -> Result<u64> {
                    {
                        let conn = rusqlite::Connection::open(&path)?;
                        conn.busy_timeout(Duration::from_secs(5))?;
                        let _: (i64, i64, i64) =
                            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                            })?;
                    }
                    let mut total = 0;
                    for suffix in ["", "-wal"] {
                        let file = PathBuf::from(format!("{}{suffix}", path.display()));
                        total += std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
                    }
                    Ok(total)
                })
                .await
                .context("the SQLite size task")?
            }
            StoreKind::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await?;
                let size: i64 = sqlx::query_scalar(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint \
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'm')",
                )
                .fetch_one(&mut conn)
                .await?;
                let _ = conn.close().await;
                Ok(size.max(0) as u64)
            }
        }
    }

    /// Brings a PostgreSQL database to the state autovacuum keeps a live
    /// one in: `VACUUM (ANALYZE)` after a load, so plans are made with
    /// statistics and index-only scans skip the heap (a server with
    /// `autovacuum = off`, like this machine's, would otherwise be measured
    /// in a state a default server leaves within a minute). `None` for
    /// SQLite, which has no such daemon.
    pub async fn vacuum_analyze(&self) -> Result<Option<Vacuumed>> {
        if self.kind != StoreKind::Postgres {
            return Ok(None);
        }
        let mut conn = PgConnection::connect(&self.url).await?;
        let autovacuum: String = sqlx::query_scalar("SELECT current_setting('autovacuum')")
            .fetch_one(&mut conn)
            .await?;
        let start = std::time::Instant::now();
        sqlx::raw_sql("VACUUM (ANALYZE)")
            .execute(&mut conn)
            .await
            .context("VACUUM (ANALYZE) of the bench database")?;
        let secs = start.elapsed().as_secs_f64();
        let _ = conn.close().await;
        Ok(Some(Vacuumed { secs, autovacuum }))
    }

    /// Removes the database (drops the PostgreSQL database, deletes the
    /// SQLite directory). Connections still open to it are closed by force.
    /// With `CALLVIEW_BENCH_KEEP=1` in the environment it is kept instead,
    /// and its URL printed (to look at it afterwards).
    pub async fn remove(mut self) -> Result<()> {
        if std::env::var("CALLVIEW_BENCH_KEEP").is_ok_and(|v| v == "1") {
            eprintln!(
                "[callview-bench] keeping the {} database {}",
                self.kind, self.url
            );
            if let Some(mut pg) = self.pg.take() {
                pg.dropped = true;
            }
            if let Some(dir) = self.dir.take() {
                let _ = dir.keep();
            }
            return Ok(());
        }
        if let Some(pg) = self.pg.take() {
            pg.drop_database().await?;
        }
        if let Some(dir) = self.dir.take() {
            dir.close()
                .context("removing the temporary SQLite directory")?;
        }
        Ok(())
    }
}

/// What [`BenchDb::vacuum_analyze`] did.
#[derive(Clone, Debug, Serialize)]
pub struct Vacuumed {
    /// Seconds the `VACUUM (ANALYZE)` took.
    pub secs: f64,
    /// The server's `autovacuum` setting (`on` or `off`).
    pub autovacuum: String,
}

/// A PostgreSQL database created for a benchmark.
#[derive(Debug)]
pub struct PgDatabase {
    /// Its URL.
    pub url: String,
    /// Its name.
    pub name: String,
    admin_url: String,
    dropped: bool,
}

fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{DATABASE_PREFIX}{}_{}_{}",
        now.as_secs(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

async fn admin_connection(admin_url: &str) -> Result<PgConnection> {
    let redacted = callview_postgres::redact_url(admin_url);
    match tokio::time::timeout(Duration::from_secs(15), PgConnection::connect(admin_url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => bail!(
            "cannot reach PostgreSQL at {redacted}: {e}. Start it, pass --pg-url, \
             or run with --store sqlite"
        ),
        Err(_) => bail!("timed out connecting to PostgreSQL at {redacted}"),
    }
}

/// Drops `callview_bench_*` databases older than six hours (left by runs
/// that were killed). Best effort.
async fn drop_stale(conn: &mut PgConnection) {
    let Ok(names) = sqlx::query_scalar::<_, String>(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'callview\\_bench\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    for name in names {
        let created = name
            .strip_prefix(DATABASE_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|t| t.parse::<u64>().ok());
        let stale = created.is_some_and(|t| now.saturating_sub(t) > STALE_AFTER.as_secs());
        if stale && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut *conn)
            .await;
        }
    }
}

impl PgDatabase {
    /// Creates an empty database on the server `admin_url` names.
    pub async fn create(admin_url: &str) -> Result<Self> {
        let mut conn = admin_connection(admin_url).await?;
        drop_stale(&mut conn).await;
        let name = unique_name();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating the database {name}"))?;
        let _ = conn.close().await;
        let mut url = url::Url::parse(admin_url).context("the PostgreSQL URL")?;
        url.set_path(&name);
        Ok(Self {
            url: url.to_string(),
            name,
            admin_url: admin_url.to_owned(),
            dropped: false,
        })
    }

    /// Drops the database (closing any connection still open to it).
    pub async fn drop_database(mut self) -> Result<()> {
        self.dropped = true;
        drop_database(&self.admin_url, &self.name).await
    }
}

async fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    let mut conn = admin_connection(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .with_context(|| format!("dropping the database {name}"))?;
    let _ = conn.close().await;
    Ok(())
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Not dropped explicitly (an error or a panic unwound past it): drop
        // it from a thread of its own, which may block here briefly.
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        let worker = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                if let Err(e) = runtime.block_on(drop_database(&admin, &name)) {
                    eprintln!("warning: could not drop the benchmark database {name}: {e:#}");
                }
            }
        });
        let _ = worker.join();
    }
}
