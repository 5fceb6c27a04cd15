//! Connection settings and migrations.

use std::time::Duration;

use callview_core::store::{SchemaStatus, StoreError};
use rusqlite::config::DbConfig;
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::time;

/// How long a statement waits for another connection's lock.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One migration: its version, name and SQL.
#[derive(Debug)]
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

/// Every migration, in order. Versions are never reused or edited once
/// released: add a new file instead.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_initial.sql",
        sql: include_str!("../migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "0002_conversation_filters.sql",
        sql: include_str!("../migrations/0002_conversation_filters.sql"),
    },
    Migration {
        version: 3,
        name: "0003_conversation_count.sql",
        sql: include_str!("../migrations/0003_conversation_count.sql"),
    },
    Migration {
        version: 4,
        name: "0004_refresh_tracking.sql",
        sql: include_str!("../migrations/0004_refresh_tracking.sql"),
    },
    Migration {
        version: 5,
        name: "0005_annotations.sql",
        sql: include_str!("../migrations/0005_annotations.sql"),
    },
    Migration {
        version: 6,
        name: "0006_recordings.sql",
        sql: include_str!("../migrations/0006_recordings.sql"),
    },
    Migration {
        version: 7,
        name: "0007_stats.sql",
        sql: include_str!("../migrations/0007_stats.sql"),
    },
    Migration {
        version: 8,
        name: "0008_tokens.sql",
        sql: include_str!("../migrations/0008_tokens.sql"),
    },
    Migration {
        version: 9,
        name: "0009_texts.sql",
        sql: include_str!("../migrations/0009_texts.sql"),
    },
    Migration {
        version: 10,
        name: "0010_lean_rows.sql",
        sql: include_str!("../migrations/0010_lean_rows.sql"),
    },
    Migration {
        version: 11,
        name: "0011_contact_search.sql",
        sql: include_str!("../migrations/0011_contact_search.sql"),
    },
    Migration {
        version: 12,
        name: "0012_partial_parent_index.sql",
        sql: include_str!("../migrations/0012_partial_parent_index.sql"),
    },
    Migration {
        version: 13,
        name: "0013_compact_raw.sql",
        sql: include_str!("../migrations/0013_compact_raw.sql"),
    },
];

/// The `schema_migrations` table itself (not a migration: it must exist
/// before any can be recorded).
const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL
)";

/// Settings every connection gets: the busy timeout, foreign keys,
/// temporary data (statement journals, sorts) in memory rather than in
/// temporary files, a larger statement cache, and the query planner
/// stability guarantee.
///
/// Without that guarantee SQLite plans some statements for the values
/// bound to them: any `LIMIT ?` (since 3.47), and after an `ANALYZE`
/// every parameter compared with an indexed column. Such a statement is
/// marked expired whenever one of those parameters is bound again, so a
/// cached statement was compiled anew on every execution: 6 % of the CPU
/// of `GET /api/conversations` at 32 clients, in its profile. With the
/// guarantee a statement keeps the plan it was prepared with. Its cost:
/// no plan chosen for a particular bound value. callview's `LIKE`
/// patterns start with `%` and could not use an index in any case, and
/// the list's queries keep reading their indexes in order without knowing
/// the limit (`tests/paging.rs` plans them this way).
pub(crate) fn configure_common(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // `cv_fold(text)`: Unicode lower case (SQLite's own `lower()` folds
    // ASCII only), so the tag filter compares tags as the rest of callview
    // does (`callview_core::annotations::same_tag`).
    conn.create_scalar_function(
        "cv_fold",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            Ok(ctx
                .get::<Option<String>>(0)?
                .map(|text| text.to_lowercase()))
        },
    )?;
    Ok(())
}

/// Settings of the write connection: WAL (files only; in-memory databases
/// keep their `memory` journal), `synchronous = NORMAL` (durable at each
/// checkpoint, never corrupt), a 16 MiB page cache, a checkpoint every
/// 16,384 WAL pages (64 MiB) rather than SQLite's 1,000, and a WAL file cut
/// back to 64 MiB after checkpoints.
///
/// A 1,000-call sync page dirties more than 1,000 pages (the random-key
/// indexes on SIDs), so with the default every commit checkpointed:
/// 54.5 ms of commit per page; with 16,384, pages written by several
/// commits reach the database file once, 36.5 ms (issue 17, RESULTS.md).
/// The store's checkpoint thread (`checkpoint.rs`) copies most pages
/// before this threshold comes (at most one checkpoint per 100 ms after
/// ingest commits).
pub(crate) fn configure_writer(conn: &Connection, in_memory: bool) -> rusqlite::Result<()> {
    configure_common(conn)?;
    if !in_memory {
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                Some(format!(
                    "could not switch the journal to WAL (it is {mode})"
                )),
            ));
        }
    }
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA cache_size = -16384;
         PRAGMA journal_size_limit = 67108864;
         PRAGMA wal_autocheckpoint = 16384;",
    )?;
    Ok(())
}

/// Settings of a read connection: it never writes.
pub(crate) fn configure_reader(conn: &Connection) -> rusqlite::Result<()> {
    configure_common(conn)?;
    conn.execute_batch("PRAGMA query_only = ON;")?;
    Ok(())
}

/// Applies the migrations not applied yet, each in the same transaction as
/// its `schema_migrations` row; all of them in one `BEGIN IMMEDIATE`
/// transaction, so two processes opening a new file do not both migrate.
/// Returns the versions applied. Registers the SQL functions migrations
/// call (`cv_raw_zstd`), whatever the connection's settings.
pub(crate) fn migrate(conn: &mut Connection, label: &str) -> Result<Vec<i64>, StoreError> {
    let ctx = |what: &str| format!("{what} ({label})");
    crate::raw_record::register(conn)
        .map_err(|e| StoreError::backend(ctx("registering the migrations' functions"), e))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| StoreError::backend(ctx("starting the migration transaction"), e))?;
    tx.execute_batch(MIGRATIONS_TABLE)
        .map_err(|e| StoreError::backend(ctx("creating schema_migrations"), e))?;
    let current: Option<i64> = tx
        .query_row("SELECT max(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| StoreError::backend(ctx("reading schema_migrations"), e))?
        .flatten();
    let current = current.unwrap_or(0);
    let latest = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > latest {
        return Err(StoreError::Backend {
            message: format!(
                "the database {label} has schema version {current}, newer than this build \
                 of callview supports ({latest}); use a newer callview"
            ),
            source: None,
        });
    }
    let mut applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.execute_batch(migration.sql).map_err(|e| {
            StoreError::backend(ctx(&format!("applying migration {}", migration.name)), e)
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            rusqlite::params![migration.version, time::format(&time::now())],
        )
        .map_err(|e| {
            StoreError::backend(ctx(&format!("recording migration {}", migration.name)), e)
        })?;
        tracing::info!(
            migration = migration.name,
            database = label,
            "applied migration"
        );
        applied.push(migration.version);
    }
    tx.commit()
        .map_err(|e| StoreError::backend(ctx("committing the migrations"), e))?;
    Ok(applied)
}

/// The migrations the database records against those of this build.
pub(crate) fn status(conn: &Connection) -> Result<SchemaStatus, StoreError> {
    let read = |e| StoreError::backend("reading schema_migrations", e);
    let mut statement = conn
        .prepare_cached("SELECT version FROM schema_migrations")
        .map_err(read)?;
    let applied = statement
        .query_map([], |r| r.get::<_, i64>(0))
        .map_err(read)?
        .collect::<Result<std::collections::BTreeSet<i64>, _>>()
        .map_err(read)?;
    Ok(SchemaStatus {
        expected: MIGRATIONS.last().map_or(0, |m| m.version),
        applied: applied.last().copied().unwrap_or(0),
        missing: MIGRATIONS
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How often a cached statement is compiled again when it runs with
    /// three different limits (`?2`), on a table `ANALYZE`d or not.
    fn recompilations(conn: &Connection, analyze: bool, sql: &str) -> i32 {
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT);
             CREATE INDEX t_at ON t (at);
             INSERT INTO t (at) VALUES ('a'), ('b'), ('c');",
        )
        .unwrap();
        if analyze {
            conn.execute_batch("ANALYZE").unwrap();
        }
        for limit in [1_i64, 2, 3] {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            let ids: Vec<i64> = stmt
                .query_map(rusqlite::params!["", limit], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(ids.len() as i64, limit);
        }
        let stmt = conn.prepare_cached(sql).unwrap();
        stmt.get_status(rusqlite::StatementStatus::RePrepare)
    }

    #[test]
    fn cached_statements_keep_their_plan_whatever_is_bound() {
        // A bound limit alone; a parameter compared with an analyzed index.
        let limit_only = "SELECT id FROM t WHERE ?1 = ?1 ORDER BY at DESC LIMIT ?2";
        let indexed = "SELECT id FROM t WHERE at > ?1 ORDER BY at DESC LIMIT ?2";
        for (analyze, sql) in [(false, limit_only), (true, indexed)] {
            let plain = Connection::open_in_memory().unwrap();
            assert!(
                recompilations(&plain, analyze, sql) > 0,
                "{sql}: SQLite no longer recompiles for bound values: the guarantee may be unneeded"
            );
            let configured = Connection::open_in_memory().unwrap();
            configure_common(&configured).unwrap();
            assert_eq!(recompilations(&configured, analyze, sql), 0, "{sql}");
        }
    }

    #[test]
    fn migrations_are_ordered_and_named_after_their_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
            assert!(
                m.name.starts_with(&format!("{:04}_", m.version)),
                "{}",
                m.name
            );
        }
    }

    #[test]
    fn migrating_twice_applies_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        configure_writer(&conn, true).unwrap();
        let all: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(migrate(&mut conn, "test").unwrap(), all);
        assert!(migrate(&mut conn, "test").unwrap().is_empty());
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, MIGRATIONS.len() as i64);
    }

    #[test]
    fn status_names_missing_migrations() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, "test").unwrap();
        let current = status(&conn).unwrap();
        assert!(current.is_current(), "{current:?}");
        assert_eq!(current.applied, MIGRATIONS.len() as i64);
        conn.execute("DELETE FROM schema_migrations WHERE version = 3", [])
            .unwrap();
        let behind = status(&conn).unwrap();
        assert_eq!(behind.missing, vec![3]);
        assert!(!behind.is_current());
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, "test").unwrap();
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (999, 'x')",
            [],
        )
        .unwrap();
        let err = migrate(&mut conn, "test").unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }

    #[test]
    fn the_updated_at_trigger_stamps_rows_updated_without_it() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, "test").unwrap();
        conn.execute(
            "INSERT INTO contacts (phone_number, created_at, updated_at)
             VALUES ('+1', '2000-01-01T00:00:00.000000Z', '2000-01-01T00:00:00.000000Z')",
            [],
        )
        .unwrap();
        conn.execute("UPDATE contacts SET display_name = 'x'", [])
            .unwrap();
        let stamped: String = conn
            .query_row("SELECT updated_at FROM contacts", [], |r| r.get(0))
            .unwrap();
        assert!(stamped.as_str() > "2000-01-01T00:00:00.000000Z");
        assert_eq!(stamped.len(), 27, "{stamped}");
        assert!(time::parse(&stamped).is_some());
        conn.execute(
            "UPDATE contacts SET display_name = 'y', updated_at = '2001-01-01T00:00:00.000000Z'",
            [],
        )
        .unwrap();
        let kept: String = conn
            .query_row("SELECT updated_at FROM contacts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, "2001-01-01T00:00:00.000000Z");
    }
}
