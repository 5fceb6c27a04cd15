//! API tokens (`api_tokens`, migration 8): the statements behind
//! `Store::create_token`, `tokens`, `revoke_token` and `authenticate`.
//!
//! Token writes run in a short `BEGIN IMMEDIATE` transaction of their own
//! on the writer connection, not in an `IngestTx`: they share nothing with
//! what plans write, and SQLite serialises them with every other writer
//! of the file (in every process) all the same.

use callview_core::access::{NewToken, Role, TokenHash, TokenRecord};
use callview_core::store::StoreError;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior};

use crate::queries::db;
use crate::time;

const COLUMNS: &str =
    "id, name, role, created_at, last_used_at, expires_at, revoked_at, token_hash";

fn corrupt(what: String) -> StoreError {
    StoreError::Backend {
        message: what,
        source: None,
    }
}

/// A row of [`COLUMNS`] as stored: id, name, role, created, the three
/// optional times (last used, expires, revoked) and the hash.
type RawRow = (i64, String, String, String, [Option<String>; 3], String);

fn read_row(row: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        [row.get(4)?, row.get(5)?, row.get(6)?],
        row.get(7)?,
    ))
}

fn record(raw: RawRow) -> Result<(i64, TokenRecord, TokenHash), StoreError> {
    let (id, name, role, created_at, [last_used_at, expires_at, revoked_at], hash) = raw;
    let role = Role::parse(&role)
        .map_err(|e| corrupt(format!("token {name:?} has an unknown role: {e}")))?;
    let when = |text: Option<String>, column: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        text.map(|t| {
            time::parse(&t)
                .ok_or_else(|| corrupt(format!("token {name:?}: {column} {t:?} is not a time")))
        })
        .transpose()
    };
    let created_at = when(Some(created_at), "created_at")?.unwrap_or_default();
    let record = TokenRecord {
        last_used_at: when(last_used_at, "last_used_at")?,
        expires_at: when(expires_at, "expires_at")?,
        revoked_at: when(revoked_at, "revoked_at")?,
        name,
        role,
        created_at,
    };
    Ok((id, record, TokenHash::from_stored(hash)))
}

/// `Store::create_token`.
pub(crate) fn create_token(
    conn: &mut Connection,
    token: &NewToken,
) -> Result<TokenRecord, StoreError> {
    let what = "creating a token";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db(what))?;
    let created = time::format(&token.created_at);
    // An expired token gives its name up.
    tx.execute(
        "UPDATE api_tokens SET revoked_at = ?2
         WHERE name = ?1 AND revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ?2",
        rusqlite::params![token.name, created],
    )
    .map_err(db(what))?;
    let taken: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL)",
            [&token.name],
            |r| r.get(0),
        )
        .map_err(db(what))?;
    if taken {
        return Err(taken_error(&token.name));
    }
    tx.execute(
        "INSERT INTO api_tokens (name, role, token_hash, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![
            token.name,
            token.role.as_str(),
            token.hash.as_str(),
            created,
            token.expires_at.as_ref().map(time::format),
        ],
    )
    .map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => taken_error(&token.name),
        _ => db(what)(e),
    })?;
    tx.commit().map_err(db(what))?;
    Ok(TokenRecord {
        name: token.name.clone(),
        role: token.role,
        created_at: time::parse(&created).unwrap_or(token.created_at),
        last_used_at: None,
        expires_at: token
            .expires_at
            .as_ref()
            .and_then(|t| time::parse(&time::format(t))),
        revoked_at: None,
    })
}

fn taken_error(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a token named {name:?} already exists; revoke it first or choose another name"
    ))
}

/// `Store::tokens`.
pub(crate) fn tokens(conn: &Connection) -> Result<Vec<TokenRecord>, StoreError> {
    let what = "listing tokens";
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM api_tokens ORDER BY created_at, id"
        ))
        .map_err(db(what))?;
    let rows = stmt.query_map([], read_row).map_err(db(what))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(record(row.map_err(db(what))?)?.1);
    }
    Ok(out)
}

/// `Store::revoke_token`.
pub(crate) fn revoke_token(
    conn: &mut Connection,
    name: &str,
    at: DateTime<Utc>,
) -> Result<TokenRecord, StoreError> {
    let what = "revoking a token";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db(what))?;
    let changed = tx
        .execute(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            rusqlite::params![name, time::format(&at)],
        )
        .map_err(db(what))?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!(
            "no token named {name:?} (that is not revoked already)"
        )));
    }
    let raw = tx
        .query_row(
            &format!("SELECT {COLUMNS} FROM api_tokens WHERE name = ?1 ORDER BY id DESC LIMIT 1"),
            [name],
            read_row,
        )
        .map_err(db(what))?;
    tx.commit().map_err(db(what))?;
    Ok(record(raw)?.1)
}

/// The active token with `hash` at `now`: its id and record.
pub(crate) fn find_active(
    conn: &Connection,
    hash: &TokenHash,
    now: DateTime<Utc>,
) -> Result<Option<(i64, TokenRecord)>, StoreError> {
    let what = "looking a token up";
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM api_tokens
             WHERE token_hash = ?1 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > ?2)"
        ))
        .map_err(db(what))?
        .query_row(
            rusqlite::params![hash.as_str(), time::format(&now)],
            read_row,
        )
        .optional()
        .map_err(db(what))?;
    let Some(raw) = raw else {
        return Ok(None);
    };
    let (id, record, stored) = record(raw)?;
    // The lookup was by hash; check it once more in constant time.
    Ok(stored.matches(hash).then_some((id, record)))
}

/// Sets `last_used_at` of token `id` to `now` unless it is within the
/// granularity of `now` or later already.
pub(crate) fn touch(conn: &Connection, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    let before = now - callview_core::access::LAST_USED_GRANULARITY;
    conn.prepare_cached(
        "UPDATE api_tokens SET last_used_at = ?2
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?3)",
    )
    .map_err(db("recording a token's use"))?
    .execute(rusqlite::params![
        id,
        time::format(&now),
        time::format(&before)
    ])
    .map_err(db("recording a token's use"))?;
    Ok(())
}
