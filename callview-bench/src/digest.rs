//! A fingerprint of a store's final state, independent of row ids and
//! write times: every conversation (by contact key) with its counters, and
//! every call row with its conversation's key, columns and metadata. Two
//! syncs of the same account must give the same fingerprint, however the
//! pages arrived. Cheap enough for a million rows (one ordered scan each).

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::path::Path;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use serde::Serialize;
use sqlx::{Connection, PgConnection, Row};

use crate::db::{BenchDb, StoreKind};

/// The fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateDigest {
    /// Conversation rows.
    pub conversations: u64,
    /// Call (message) rows.
    pub calls: u64,
    /// Hash of every conversation row (key, display, subject, status,
    /// `last_message_at`, metadata).
    pub conversations_hash: String,
    /// Hash of every call row (SID, conversation key, root, parent,
    /// columns, metadata, and on SQLite the compact record).
    pub calls_hash: String,
}

const CONVERSATIONS_SQL: &str = "SELECT ct.phone_number, ct.formatted_number, ct.display_name, \
     cv.external_id, cv.subject, cv.status, CAST(cv.last_message_at AS TEXT), CAST(cv.metadata AS TEXT) \
     FROM conversations cv JOIN contacts ct ON ct.id = cv.contact_id \
     ORDER BY ct.phone_number, cv.external_id";

const CALLS_SQL: &str =
    "SELECT m.twilio_sid, ct.phone_number, m.root_call_sid, m.parent_call_sid, \
     m.direction, m.status, m.from_number, m.to_number, CAST(m.duration AS TEXT), \
     CAST(m.price AS TEXT), m.price_unit, CAST(m.start_time AS TEXT), CAST(m.end_time AS TEXT), \
     m.recording_url, CAST(m.metadata AS TEXT) \
     FROM messages m JOIN conversations cv ON cv.id = m.conversation_id \
     JOIN contacts ct ON ct.id = cv.contact_id \
     ORDER BY m.twilio_sid";

/// Adds one row of optional texts to a hash.
fn hash_row(hasher: &mut DefaultHasher, cells: &[Option<String>]) {
    for cell in cells {
        match cell {
            None => hasher.write_u8(0),
            Some(text) => {
                hasher.write_u8(1);
                hasher.write_usize(text.len());
                hasher.write(text.as_bytes());
            }
        }
    }
}

/// The fingerprint of `db`.
pub async fn digest(db: &BenchDb) -> Result<StateDigest> {
    match db.kind {
        StoreKind::Sqlite => {
            let path = db.sqlite_path().context("the SQLite file")?;
            tokio::task::spawn_blocking(move || sqlite_digest(&path))
                .await
                .context("the digest task")?
        }
        StoreKind::Postgres => postgres_digest(&db.url).await,
    }
}

fn sqlite_digest(path: &Path) -> Result<StateDigest> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let scan = |sql: &str, width: usize| -> Result<(u64, String)> {
        let mut stmt = conn.prepare(sql)?;
        let mut rows = stmt.query([])?;
        let mut hasher = DefaultHasher::new();
        let mut count = 0u64;
        let mut cells = Vec::with_capacity(width);
        while let Some(row) = rows.next()? {
            cells.clear();
            for i in 0..width {
                cells.push(row.get::<_, Option<String>>(i)?);
            }
            hash_row(&mut hasher, &cells);
            count += 1;
        }
        Ok((count, format!("{:016x}", hasher.finish())))
    };
    let (conversations, conversations_hash) = scan(CONVERSATIONS_SQL, 8)?;
    // SQLite keeps each call's record apart, compact (`raw_record`; the
    // encoding is deterministic, so equal records hash equal).
    let calls_sql = CALLS_SQL.replace(
        "CAST(m.metadata AS TEXT)",
        "CAST(m.metadata AS TEXT) || coalesce(hex(m.raw_zstd), '')",
    );
    let (calls, calls_hash) = scan(&calls_sql, 15)?;
    Ok(StateDigest {
        conversations,
        calls,
        conversations_hash,
        calls_hash,
    })
}

async fn postgres_digest(url: &str) -> Result<StateDigest> {
    let mut conn = PgConnection::connect(url).await?;
    let mut out = Vec::new();
    for (sql, width) in [(CONVERSATIONS_SQL, 8usize), (CALLS_SQL, 15)] {
        // Byte order for text, as in SQLite.
        let sql = sql
            .replace(
                "ORDER BY ct.phone_number, cv.external_id",
                "ORDER BY ct.phone_number COLLATE \"C\", cv.external_id COLLATE \"C\"",
            )
            .replace(
                "ORDER BY m.twilio_sid",
                "ORDER BY m.twilio_sid COLLATE \"C\"",
            );
        let mut hasher = DefaultHasher::new();
        let mut count = 0u64;
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(&mut conn);
        let mut cells = Vec::with_capacity(width);
        while let Some(row) = rows.try_next().await? {
            cells.clear();
            for i in 0..width {
                cells.push(row.try_get::<Option<String>, _>(i)?);
            }
            hash_row(&mut hasher, &cells);
            count += 1;
        }
        drop(rows);
        out.push((count, format!("{:016x}", hasher.finish())));
    }
    let _ = conn.close().await;
    Ok(StateDigest {
        conversations: out[0].0,
        conversations_hash: out[0].1.clone(),
        calls: out[1].0,
        calls_hash: out[1].1.clone(),
    })
}
