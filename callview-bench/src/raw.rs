//! The raw limit: the rows an ingest wrote (`contacts`, `conversations`,
//! `messages`, same columns and JSON), written again into an identical,
//! fresh schema by the plainest bulk path of the database.
//!
//! * SQLite: one transaction of prepared multi-row `INSERT`s (500 rows per
//!   statement), the same pragmas as the store's writer connection.
//! * PostgreSQL: `COPY ... FROM STDIN` (text format) of each table in one
//!   transaction, from data first copied out of the ingested database.
//!
//! Reading the source rows is not timed; only the writes and the commit are.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::TryStreamExt;
use rusqlite::types::Value;
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use tokio::io::AsyncWriteExt;

use crate::db::PgDatabase;

/// The tables copied, parents first.
pub const TABLES: [&str; 3] = ["contacts", "conversations", "messages"];

/// Rows per SQLite `INSERT` statement.
pub const SQLITE_ROWS_PER_STATEMENT: usize = 500;

/// Rows read from the source at a time (SQLite).
const SQLITE_CHUNK: usize = 10_000;

/// What the raw write measured.
#[derive(Clone, Debug, Serialize)]
pub struct RawResult {
    /// How the rows were written.
    pub method: String,
    /// Contact rows written.
    pub contacts: u64,
    /// Conversation rows written.
    pub conversations: u64,
    /// Call rows written.
    pub calls: u64,
    /// Bytes of call data written (the `COPY` text, or the SQLite values).
    pub call_bytes: u64,
    /// Time spent writing and committing, seconds.
    pub wall_secs: f64,
    /// Call rows per second of that time.
    pub calls_per_sec: f64,
}

/// Writes the rows of the SQLite database `source` into a fresh database
/// in `scratch` with the store's schema, and times it.
pub async fn sqlite_raw(source: PathBuf, scratch: PathBuf) -> Result<RawResult> {
    tokio::task::spawn_blocking(move || sqlite_raw_blocking(&source, &scratch))
        .await
        .context("the raw SQLite task")?
}

fn sqlite_raw_blocking(source: &Path, scratch: &Path) -> Result<RawResult> {
    let target = scratch.join("raw.db");
    // The store's own schema (migrations, indexes, triggers).
    drop(callview_sqlite::SqliteStore::open(
        &target.display().to_string(),
    )?);
    let mut out = rusqlite::Connection::open(&target)?;
    // The store's writer settings (callview-sqlite/src/schema.rs).
    out.busy_timeout(Duration::from_secs(5))?;
    out.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;
         PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         PRAGMA cache_size = -16384; PRAGMA journal_size_limit = 67108864;",
    )?;
    let input = rusqlite::Connection::open_with_flags(
        source,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;

    let mut timed = Duration::ZERO;
    let mut counts = [0u64; 3];
    let mut call_bytes = 0u64;
    let start = Instant::now();
    let tx = out.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    timed += start.elapsed();
    for (t, table) in TABLES.iter().enumerate() {
        let columns: Vec<String> = input
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
            ))?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let list = columns.join(", ");
        let mut select = input.prepare(&format!(
            "SELECT {list} FROM {table} WHERE id > ?1 ORDER BY id LIMIT {SQLITE_CHUNK}"
        ))?;
        let width = columns.len();
        let one_row = format!("({})", vec!["?"; width].join(", "));
        let insert_sql = |rows: usize| {
            format!(
                "INSERT INTO {table} ({list}) VALUES {}",
                vec![one_row.as_str(); rows].join(", ")
            )
        };
        let mut last_id = i64::MIN;
        loop {
            // Untimed: read the next chunk from the source.
            let mut rows: Vec<Vec<Value>> = Vec::with_capacity(SQLITE_CHUNK);
            let mut cursor = select.query([last_id])?;
            while let Some(row) = cursor.next()? {
                let mut values = Vec::with_capacity(width);
                for i in 0..width {
                    values.push(row.get::<_, Value>(i)?);
                }
                rows.push(values);
            }
            drop(cursor);
            let Some(last) = rows.last() else { break };
            last_id = match last[0] {
                Value::Integer(id) => id,
                _ => anyhow::bail!("{table}.id is not an integer"),
            };
            if *table == "messages" {
                call_bytes += rows
                    .iter()
                    .flatten()
                    .map(|v| match v {
                        Value::Text(s) => s.len() as u64,
                        Value::Blob(b) => b.len() as u64,
                        Value::Null => 0,
                        _ => 8,
                    })
                    .sum::<u64>();
            }
            // Timed: the multi-row inserts.
            let clock = Instant::now();
            for group in rows.chunks(SQLITE_ROWS_PER_STATEMENT) {
                let mut stmt = tx.prepare_cached(&insert_sql(group.len()))?;
                stmt.execute(rusqlite::params_from_iter(group.iter().flatten()))?;
            }
            timed += clock.elapsed();
            counts[t] += rows.len() as u64;
            if rows.len() < SQLITE_CHUNK {
                break;
            }
        }
    }
    let clock = Instant::now();
    tx.commit()?;
    timed += clock.elapsed();
    drop(out);
    let _ = std::fs::remove_file(&target);
    let wall_secs = timed.as_secs_f64();
    Ok(RawResult {
        method: format!(
            "SQLite: one transaction, prepared INSERTs of {SQLITE_ROWS_PER_STATEMENT} rows"
        ),
        contacts: counts[0],
        conversations: counts[1],
        calls: counts[2],
        call_bytes,
        wall_secs,
        calls_per_sec: counts[2] as f64 / wall_secs.max(1e-9),
    })
}

/// The columns of `table`, in order.
async fn pg_columns(conn: &mut PgConnection, table: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?)
}

/// Copies the rows of the PostgreSQL database `source_url` into a fresh
/// database (created on `admin_url`, migrated by the store, dropped
/// afterwards) with `COPY FROM STDIN`, and times it. `scratch` holds the
/// copied-out data meanwhile.
pub async fn postgres_raw(source_url: &str, admin_url: &str, scratch: &Path) -> Result<RawResult> {
    // Untimed: copy every table out to a file.
    let mut source = PgConnection::connect(source_url).await?;
    let mut files = Vec::new();
    for table in TABLES {
        let columns = pg_columns(&mut source, table).await?;
        let list = columns
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let path = scratch.join(format!("{table}.copy"));
        let mut file = tokio::fs::File::create(&path).await?;
        let mut bytes = 0u64;
        {
            let mut stream = source
                .copy_out_raw(&format!(
                    "COPY (SELECT {list} FROM {table} ORDER BY id) TO STDOUT"
                ))
                .await?;
            while let Some(chunk) = stream.try_next().await? {
                bytes += chunk.len() as u64;
                file.write_all(&chunk).await?;
            }
        }
        file.flush().await?;
        let rows: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut source)
                .await?;
        files.push((table, list, path, bytes, rows.max(0) as u64));
    }
    let _ = source.close().await;

    let target = PgDatabase::create(admin_url).await?;
    let result = async {
        // The store's own schema.
        let store = callview_postgres::PostgresStore::connect(&target.url).await?;
        store.close().await;
        let mut conn = PgConnection::connect(&target.url).await?;
        let mut timed = Duration::ZERO;
        let clock = Instant::now();
        let mut tx = conn.begin().await?;
        for (table, list, path, _, _) in &files {
            let mut copy = tx
                .copy_in_raw(&format!("COPY {table} ({list}) FROM STDIN"))
                .await?;
            let mut file = std::fs::File::open(path)?;
            let mut buffer = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                copy.send(&buffer[..n]).await?;
            }
            copy.finish().await?;
        }
        tx.commit().await?;
        timed += clock.elapsed();
        let _ = conn.close().await;
        Ok::<_, anyhow::Error>(timed)
    }
    .await;
    let dropped = target.drop_database().await;
    for (_, _, path, _, _) in &files {
        let _ = std::fs::remove_file(path);
    }
    let timed = result?;
    dropped?;
    let calls = files[2].4;
    let wall_secs = timed.as_secs_f64();
    Ok(RawResult {
        method: "PostgreSQL: COPY FROM STDIN (text), one transaction".to_owned(),
        contacts: files[0].4,
        conversations: files[1].4,
        calls,
        call_bytes: files[2].3,
        wall_secs,
        calls_per_sec: calls as f64 / wall_secs.max(1e-9),
    })
}
