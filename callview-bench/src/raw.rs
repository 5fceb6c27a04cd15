//! The yardstick for ingest (issue 17, target 2): the same calls an ingest
//! just stored, written as the seed's documented schema stores them
//! (`shared/spec/seed-data-model-and-api.md`, "Database Schema": its
//! `contacts`, `conversations` and `messages` columns, its indexes, the
//! unique `twilio_sid`), by the plainest path of each database, in the same
//! run. It is fixed so that it cannot move with callview's own design.
//!
//! * Source: the database the ingest just wrote (read untimed). Each
//!   `messages` row gives the seed's columns and, as `metadata`, the stored
//!   raw Twilio record (`metadata -> 'raw'`) without `uri` and
//!   `subresource_uris` (removed in the query, so it makes no difference
//!   whether the store kept them).
//! * Contacts and conversations are copied first, untimed, with their ids,
//!   so that the foreign keys hold.
//! * Timed, SQLite: WAL, `synchronous=NORMAL`, `foreign_keys=ON`, one
//!   prepared single-row `INSERT` executed per call, a commit every
//!   [`ROWS_PER_TRANSACTION`] rows.
//! * Timed, PostgreSQL: `COPY messages (...) FROM STDIN` (text format) in
//!   one transaction.
//!
//! Only the writes and the commits are timed.

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

/// Calls per SQLite transaction.
pub const ROWS_PER_TRANSACTION: usize = 1_000;

/// The seed's documented schema for PostgreSQL, as documented, with one
/// change: the columns that hold an endpoint or a name are `TEXT` instead
/// of `VARCHAR(n)` (`messages.from_number`/`to_number` are documented as
/// `VARCHAR(20)`, `contacts.phone_number` `VARCHAR(20)`,
/// `formatted_number` `VARCHAR(30)`, `display_name`/`subject`
/// `VARCHAR(255)`, `external_id` `VARCHAR(100)`). A SIP URI or a `client:`
/// identity (the simulated account has both) does not fit `VARCHAR(20)`,
/// so the documented table would refuse those calls; this is the widening
/// callview's migration 2 applies too. `VARCHAR(n)` and `TEXT` are stored
/// alike, so the yardstick writes the same bytes (only the length check
/// is gone).
///
/// The seed's `update_*_updated_at` triggers are kept (they fire on
/// `UPDATE` only, never in this insert-only load).
pub const POSTGRES_SEED_SCHEMA: &str = r#"
CREATE TABLE contacts (
    id               SERIAL PRIMARY KEY,
    phone_number     TEXT UNIQUE NOT NULL,
    formatted_number TEXT,
    display_name     TEXT,
    metadata         JSONB DEFAULT '{}',
    created_at       TIMESTAMP DEFAULT NOW(),
    updated_at       TIMESTAMP DEFAULT NOW()
);
CREATE TABLE conversations (
    id              SERIAL PRIMARY KEY,
    contact_id      INTEGER REFERENCES contacts(id),
    external_id     TEXT UNIQUE NOT NULL,
    subject         TEXT,
    status          VARCHAR(50) DEFAULT 'active',
    last_message_at TIMESTAMP,
    metadata        JSONB DEFAULT '{}',
    created_at      TIMESTAMP DEFAULT NOW(),
    updated_at      TIMESTAMP DEFAULT NOW()
);
CREATE TABLE messages (
    id              SERIAL PRIMARY KEY,
    conversation_id INTEGER REFERENCES conversations(id),
    twilio_sid      VARCHAR(100) UNIQUE NOT NULL,
    direction       VARCHAR(50) NOT NULL,
    status          VARCHAR(50) NOT NULL,
    from_number     TEXT NOT NULL,
    to_number       TEXT NOT NULL,
    duration        INTEGER,
    price           DECIMAL(10,4),
    price_unit      VARCHAR(10),
    start_time      TIMESTAMP,
    end_time        TIMESTAMP,
    recording_url   TEXT,
    parent_call_sid VARCHAR(100),
    metadata        JSONB DEFAULT '{}',
    created_at      TIMESTAMP DEFAULT NOW()
);
CREATE INDEX idx_contacts_phone ON contacts(phone_number);
CREATE INDEX idx_conversations_contact ON conversations(contact_id);
CREATE INDEX idx_conversations_last_message ON conversations(last_message_at DESC);
CREATE INDEX idx_messages_conversation ON messages(conversation_id);
CREATE INDEX idx_messages_start_time ON messages(start_time DESC);
CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER update_contacts_updated_at BEFORE UPDATE ON contacts
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
CREATE TRIGGER update_conversations_updated_at BEFORE UPDATE ON conversations
    FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
"#;

/// The seed's documented schema translated to SQLite: `INTEGER PRIMARY KEY
/// AUTOINCREMENT` for `SERIAL`, `TEXT` for `VARCHAR(n)` (SQLite does not
/// enforce lengths anyway), for timestamps and for JSON, `NUMERIC` for
/// `DECIMAL(10,4)`; the same `UNIQUE`/`NOT NULL` constraints, foreign keys,
/// defaults and indexes.
///
/// Left out: the seed's `update_*_updated_at` triggers (they fire on
/// `UPDATE` only, never in this insert-only load, and SQLite would need a
/// different form of them), and anything callview adds (its
/// `root_call_sid`/`updated_at` columns, JSON checks, other indexes and
/// triggers, the statistics tables), which is what the yardstick must not
/// include.
pub const SQLITE_SEED_SCHEMA: &str = r#"
CREATE TABLE contacts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    phone_number     TEXT UNIQUE NOT NULL,
    formatted_number TEXT,
    display_name     TEXT,
    metadata         TEXT DEFAULT '{}',
    created_at       TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE conversations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id      INTEGER REFERENCES contacts(id),
    external_id     TEXT UNIQUE NOT NULL,
    subject         TEXT,
    status          TEXT DEFAULT 'active',
    last_message_at TEXT,
    metadata        TEXT DEFAULT '{}',
    created_at      TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER REFERENCES conversations(id),
    twilio_sid      TEXT UNIQUE NOT NULL,
    direction       TEXT NOT NULL,
    status          TEXT NOT NULL,
    from_number     TEXT NOT NULL,
    to_number       TEXT NOT NULL,
    duration        INTEGER,
    price           NUMERIC,
    price_unit      TEXT,
    start_time      TEXT,
    end_time        TEXT,
    recording_url   TEXT,
    parent_call_sid TEXT,
    metadata        TEXT DEFAULT '{}',
    created_at      TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_contacts_phone ON contacts(phone_number);
CREATE INDEX idx_conversations_contact ON conversations(contact_id);
CREATE INDEX idx_conversations_last_message ON conversations(last_message_at DESC);
CREATE INDEX idx_messages_conversation ON messages(conversation_id);
CREATE INDEX idx_messages_start_time ON messages(start_time DESC);
"#;

/// The seed's `contacts` columns, copied with their ids.
const CONTACT_COLUMNS: &str =
    "id, phone_number, formatted_number, display_name, metadata, created_at, updated_at";

/// The seed's `conversations` columns, copied with their ids.
const CONVERSATION_COLUMNS: &str = "id, contact_id, external_id, subject, status, \
     last_message_at, metadata, created_at, updated_at";

/// The seed's `messages` columns the yardstick writes (`id` is the
/// database's, as a seed insert would leave it).
pub const MESSAGE_COLUMNS: &str = "conversation_id, twilio_sid, direction, status, \
     from_number, to_number, duration, price, price_unit, start_time, end_time, \
     recording_url, parent_call_sid, metadata, created_at";

/// How many [`MESSAGE_COLUMNS`].
const MESSAGE_WIDTH: usize = 15;

/// The index of `metadata` in [`MESSAGE_COLUMNS`].
const METADATA: usize = 13;

/// The seed's `metadata` for a record callview keeps compact: the record
/// without `uri` and `subresource_uris` (already left out when derivable).
fn seed_metadata(blob: &[u8]) -> Result<String> {
    let text = callview_sqlite::raw_record::decode(blob)?;
    let mut record: serde_json::Value = serde_json::from_str(&text)?;
    if let Some(map) = record.as_object_mut() {
        if map.remove("uri").is_some() | map.remove("subresource_uris").is_some() {
            return Ok(record.to_string());
        }
    }
    Ok(text)
}

/// [`MESSAGE_COLUMNS`] read from a callview SQLite database, after `id`.
const SQLITE_MESSAGES_SQL: &str = "SELECT id, conversation_id, twilio_sid, direction, status, \
     coalesce(from_number, ''), coalesce(to_number, ''), duration, price, price_unit, \
     start_time, end_time, recording_url, parent_call_sid, \
     coalesce(json_remove(json_extract(metadata, '$.raw'), '$.uri', '$.subresource_uris'), \
              raw_zstd, '{}'), \
     created_at \
     FROM messages WHERE id > ?1 ORDER BY id LIMIT 1000";

/// [`MESSAGE_COLUMNS`] read from a callview PostgreSQL database.
const POSTGRES_MESSAGES_SQL: &str = "SELECT conversation_id, twilio_sid, direction, status, \
     coalesce(from_number, ''), coalesce(to_number, ''), duration, price, price_unit, \
     start_time, end_time, recording_url, parent_call_sid, \
     coalesce((metadata -> 'raw') - 'uri' - 'subresource_uris', '{}'::jsonb), created_at \
     FROM messages ORDER BY id";

/// What the yardstick measured.
#[derive(Clone, Debug, Serialize)]
pub struct YardstickResult {
    /// How the rows were written.
    pub method: String,
    /// Contact rows copied first (untimed).
    pub contacts: u64,
    /// Conversation rows copied first (untimed).
    pub conversations: u64,
    /// Call rows written (timed).
    pub calls: u64,
    /// Bytes of call data written (the `COPY` text, or the SQLite values).
    pub call_bytes: u64,
    /// Time spent writing and committing the calls, seconds.
    pub wall_secs: f64,
    /// Call rows per second of that time.
    pub calls_per_sec: f64,
}

/// Writes the calls of the SQLite database `source` into a fresh database
/// in `scratch` with the seed's schema, and times it.
pub async fn sqlite_yardstick(source: PathBuf, scratch: PathBuf) -> Result<YardstickResult> {
    tokio::task::spawn_blocking(move || sqlite_blocking(&source, &scratch))
        .await
        .context("the SQLite yardstick task")?
}

fn remove_sqlite_files(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn sqlite_blocking(source: &Path, scratch: &Path) -> Result<YardstickResult> {
    let target = scratch.join("yardstick.db");
    remove_sqlite_files(&target);
    let result = sqlite_write(source, &target);
    remove_sqlite_files(&target);
    result
}

fn sqlite_write(source: &Path, target: &Path) -> Result<YardstickResult> {
    let out = rusqlite::Connection::open(target)?;
    out.busy_timeout(Duration::from_secs(5))?;
    out.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )?;
    out.execute_batch(SQLITE_SEED_SCHEMA)
        .context("creating the seed's schema")?;

    // Untimed: the parents, with their ids.
    out.execute("ATTACH DATABASE ?1 AS src", [source.display().to_string()])?;
    out.execute_batch(&format!(
        "BEGIN;
         INSERT INTO main.contacts ({CONTACT_COLUMNS})
             SELECT {CONTACT_COLUMNS} FROM src.contacts ORDER BY id;
         INSERT INTO main.conversations ({CONVERSATION_COLUMNS})
             SELECT {CONVERSATION_COLUMNS} FROM src.conversations ORDER BY id;
         COMMIT;"
    ))?;
    out.execute_batch("DETACH DATABASE src")?;
    let count = |table: &str| -> Result<u64> {
        let n: i64 = out.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    };
    let contacts = count("contacts")?;
    let conversations = count("conversations")?;

    let input = rusqlite::Connection::open_with_flags(
        source,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut select = input.prepare(SQLITE_MESSAGES_SQL)?;
    let marks = (1..=MESSAGE_WIDTH)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    // The one prepared single-row INSERT.
    let mut insert = out.prepare(&format!(
        "INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({marks})"
    ))?;

    let mut timed = Duration::ZERO;
    let mut calls = 0u64;
    let mut call_bytes = 0u64;
    let mut last_id = i64::MIN;
    loop {
        // Untimed: the next transaction's rows.
        let mut rows: Vec<Vec<Value>> = Vec::with_capacity(ROWS_PER_TRANSACTION);
        let mut cursor = select.query([last_id])?;
        while let Some(row) = cursor.next()? {
            last_id = row.get(0)?;
            let mut values = Vec::with_capacity(MESSAGE_WIDTH);
            for i in 1..=MESSAGE_WIDTH {
                values.push(row.get::<_, Value>(i)?);
            }
            // A record callview keeps compact (`raw_record`) is given to
            // the yardstick as the JSON text the seed's schema stores.
            if let Value::Blob(blob) = &values[METADATA] {
                values[METADATA] = Value::Text(seed_metadata(blob)?);
            }
            rows.push(values);
        }
        drop(cursor);
        if rows.is_empty() {
            break;
        }
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
        // Timed: one transaction of single-row inserts.
        let clock = Instant::now();
        out.execute_batch("BEGIN")?;
        for row in &rows {
            insert.execute(rusqlite::params_from_iter(row.iter()))?;
        }
        out.execute_batch("COMMIT")?;
        timed += clock.elapsed();
        calls += rows.len() as u64;
        if rows.len() < ROWS_PER_TRANSACTION {
            break;
        }
    }
    drop(insert);
    drop(out);
    let wall_secs = timed.as_secs_f64();
    Ok(YardstickResult {
        method: format!(
            "SQLite (seed schema, WAL, synchronous=NORMAL, foreign keys on): one prepared \
             single-row INSERT per call, a commit every {ROWS_PER_TRANSACTION}"
        ),
        contacts,
        conversations,
        calls,
        call_bytes,
        wall_secs,
        calls_per_sec: calls as f64 / wall_secs.max(1e-9),
    })
}

/// Copies the result of `query` on `source` out to `path`; returns the bytes.
async fn copy_out(source: &mut PgConnection, query: &str, path: &Path) -> Result<u64> {
    let mut file = tokio::fs::File::create(path).await?;
    let mut bytes = 0u64;
    {
        let mut stream = source
            .copy_out_raw(&format!("COPY ({query}) TO STDOUT"))
            .await?;
        while let Some(chunk) = stream.try_next().await? {
            bytes += chunk.len() as u64;
            file.write_all(&chunk).await?;
        }
    }
    file.flush().await?;
    Ok(bytes)
}

/// Sends the file at `path` through `COPY table (columns) FROM STDIN`.
async fn copy_in(conn: &mut PgConnection, table: &str, columns: &str, path: &Path) -> Result<()> {
    let mut copy = conn
        .copy_in_raw(&format!("COPY {table} ({columns}) FROM STDIN"))
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
    Ok(())
}

async fn pg_count(conn: &mut PgConnection, table: &str) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut *conn)
        .await?;
    Ok(n.max(0) as u64)
}

/// Writes the calls of the PostgreSQL database `source_url` into a fresh
/// database (created on `admin_url` with the seed's schema, dropped
/// afterwards) with `COPY FROM STDIN`, and times it. `scratch` holds the
/// copied-out data meanwhile.
pub async fn postgres_yardstick(
    source_url: &str,
    admin_url: &str,
    scratch: &Path,
) -> Result<YardstickResult> {
    // Untimed: copy the rows out to files.
    let mut source = PgConnection::connect(source_url).await?;
    let contacts_file = scratch.join("contacts.copy");
    let conversations_file = scratch.join("conversations.copy");
    let messages_file = scratch.join("messages.copy");
    let files = [&contacts_file, &conversations_file, &messages_file];
    let copied = async {
        copy_out(
            &mut source,
            &format!("SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY id"),
            &contacts_file,
        )
        .await?;
        copy_out(
            &mut source,
            &format!("SELECT {CONVERSATION_COLUMNS} FROM conversations ORDER BY id"),
            &conversations_file,
        )
        .await?;
        let bytes = copy_out(&mut source, POSTGRES_MESSAGES_SQL, &messages_file).await?;
        let calls = pg_count(&mut source, "messages").await?;
        Ok::<_, anyhow::Error>((bytes, calls))
    }
    .await;
    let _ = source.close().await;

    let result = match copied {
        Ok((call_bytes, calls)) => {
            let target = PgDatabase::create(admin_url).await?;
            let written = async {
                let mut conn = PgConnection::connect(&target.url).await?;
                sqlx::raw_sql(POSTGRES_SEED_SCHEMA)
                    .execute(&mut conn)
                    .await
                    .context("creating the seed's schema")?;
                // Untimed: the parents, with their ids.
                let mut tx = conn.begin().await?;
                copy_in(&mut tx, "contacts", CONTACT_COLUMNS, &contacts_file).await?;
                copy_in(
                    &mut tx,
                    "conversations",
                    CONVERSATION_COLUMNS,
                    &conversations_file,
                )
                .await?;
                tx.commit().await?;
                let contacts = pg_count(&mut conn, "contacts").await?;
                let conversations = pg_count(&mut conn, "conversations").await?;
                // Timed: the calls.
                let clock = Instant::now();
                let mut tx = conn.begin().await?;
                copy_in(&mut tx, "messages", MESSAGE_COLUMNS, &messages_file).await?;
                tx.commit().await?;
                let timed = clock.elapsed();
                let written = pg_count(&mut conn, "messages").await?;
                let _ = conn.close().await;
                anyhow::ensure!(
                    written == calls,
                    "the yardstick wrote {written} calls of {calls}"
                );
                Ok::<_, anyhow::Error>((contacts, conversations, timed))
            }
            .await;
            let dropped = target.drop_database().await;
            written.and_then(|w| dropped.map(|()| (w, call_bytes, calls)))
        }
        Err(e) => Err(e),
    };
    for path in files {
        let _ = std::fs::remove_file(path);
    }
    let ((contacts, conversations, timed), call_bytes, calls) = result?;
    let wall_secs = timed.as_secs_f64();
    Ok(YardstickResult {
        method: "PostgreSQL (seed schema): COPY messages FROM STDIN (text), one transaction"
            .to_owned(),
        contacts,
        conversations,
        calls,
        call_bytes,
        wall_secs,
        calls_per_sec: calls as f64 / wall_secs.max(1e-9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sqlite_seed_schema_keeps_sids_unique_and_parents_present() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
        conn.execute_batch(SQLITE_SEED_SCHEMA).unwrap();
        conn.execute_batch(
            "INSERT INTO contacts (id, phone_number) VALUES (1, '+14155550100');
             INSERT INTO conversations (id, contact_id, external_id) VALUES (1, 1, '+14155550100');",
        )
        .unwrap();
        let marks = (1..=MESSAGE_WIDTH)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut insert = conn
            .prepare(&format!(
                "INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({marks})"
            ))
            .unwrap();
        let row = |conversation: i64, sid: &str| {
            vec![
                Value::Integer(conversation),
                Value::Text(sid.to_owned()),
                Value::Text("inbound".into()),
                Value::Text("completed".into()),
                Value::Text("+14155550100".into()),
                Value::Text("sip:agent@example.sip.twilio.com;transport=udp".into()),
                Value::Integer(42),
                Value::Text("-0.00850".into()),
                Value::Text("USD".into()),
                Value::Text("2026-01-01T00:00:00.000000Z".into()),
                Value::Text("2026-01-01T00:00:42.000000Z".into()),
                Value::Null,
                Value::Null,
                Value::Text("{}".into()),
                Value::Text("2026-01-01T00:01:00.000000Z".into()),
            ]
        };
        insert
            .execute(rusqlite::params_from_iter(row(1, "CA1")))
            .unwrap();
        assert!(insert
            .execute(rusqlite::params_from_iter(row(1, "CA1")))
            .is_err());
        assert!(insert
            .execute(rusqlite::params_from_iter(row(2, "CA2")))
            .is_err());
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 5);
    }
}
