//! Test support (feature `testing`): every test gets a database of its own,
//! so tests run in parallel against one server. Not part of the stable API.
//!
//! The server is `postgres://postgres@127.0.0.1:5432/postgres`, or the URL in
//! `CALLVIEW_TEST_PG_URL` (a user allowed to create databases). When it
//! cannot be reached the helpers **panic** with a message saying how to
//! start it: a test that silently skips would hide a broken store.
//!
//! ```no_run
//! # async fn demo() {
//! use callview_core::Store;
//! let store = callview_postgres::testing::fresh_store().await;
//! assert_eq!(store.counts().await.unwrap().calls, 0);
//! # }
//! ```

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{Connection, PgConnection};

use crate::{redact_url, PostgresOptions, PostgresStore};

/// The environment variable naming the test server's admin URL.
pub const TEST_URL_ENV: &str = "CALLVIEW_TEST_PG_URL";

/// The admin URL used when [`TEST_URL_ENV`] is not set.
pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Prefix of every database the helpers create.
pub const DATABASE_PREFIX: &str = "callview_test_";

/// Test databases older than this are dropped when no one is connected to
/// them. A test connects right after creating its database and its store
/// keeps the pool's connections open until the test ends, so only finished
/// tests' databases qualify.
const IDLE_AFTER: Duration = Duration::from_secs(60);

/// How many finished tests' databases each new one pays for, so the
/// number of test databases goes down while tests run.
const DROPS_PER_CREATE: usize = 2;

/// Test databases older than this are dropped even with connections open
/// (a test that hung).
const STALE_AFTER: Duration = Duration::from_secs(6 * 3600);

/// The admin URL: [`TEST_URL_ENV`] or [`DEFAULT_TEST_URL`].
///
/// ```
/// let url = callview_postgres::testing::admin_url();
/// assert!(url.starts_with("postgres"));
/// ```
pub fn admin_url() -> String {
    std::env::var(TEST_URL_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_URL.to_owned())
}

fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(now.as_nanos());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!(
        "{DATABASE_PREFIX}{}_{:016x}",
        now.as_secs(),
        hasher.finish()
    )
}

/// When a test database was created, from its name.
fn created_secs(name: &str) -> Option<u64> {
    name.strip_prefix(DATABASE_PREFIX)?
        .split('_')
        .next()?
        .parse()
        .ok()
}

async fn admin_connection(admin: &str) -> PgConnection {
    let attempt = tokio::time::timeout(Duration::from_secs(15), PgConnection::connect(admin)).await;
    match attempt {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!(
            "cannot reach the PostgreSQL test server at {}: {e}. Start it \
             (`pg_ctlcluster --skip-systemctl-redirect 15 main start`) or set {TEST_URL_ENV} \
             to a server where this user may create databases.",
            redact_url(admin)
        ),
        Err(_) => panic!(
            "timed out connecting to the PostgreSQL test server at {}. Start it \
             (`pg_ctlcluster --skip-systemctl-redirect 15 main start`) or set {TEST_URL_ENV}.",
            redact_url(admin)
        ),
    }
}

/// Drops the databases of finished tests once per process, in a
/// background thread so no test waits for it (best effort): those older
/// than a minute that no one is connected to, and any older than 6 hours
/// (a hung test). A drop cut short by the process exiting is finished by a
/// later run (PostgreSQL marks such a database invalid; it keeps its name).
fn spawn_cleanup(admin: String) {
    static STARTED: AtomicBool = AtomicBool::new(false);
    if STARTED.swap(true, Ordering::SeqCst) {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("callview-test-db-cleanup".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    drop_finished_databases(&mut conn, None).await;
                    let _ = conn.close().await;
                }
            });
        });
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Drops up to `limit` (all when `None`) test databases of finished tests,
/// oldest first.
async fn drop_finished_databases(conn: &mut PgConnection, limit: Option<usize>) {
    // Names sort by creation time (a fixed-width timestamp follows the prefix).
    let rows: Vec<(String, bool)> = match sqlx::query_as(
        "SELECT d.datname::text, \
                EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname) \
         FROM pg_database d WHERE d.datname LIKE 'callview\\_test\\_%' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    {
        Ok(rows) => rows,
        Err(_) => return,
    };
    let now = now_secs();
    let mut dropped = 0;
    for (name, in_use) in rows {
        if limit.is_some_and(|l| dropped >= l) {
            break;
        }
        let Some(age) = created_secs(&name).map(|t| now.saturating_sub(t)) else {
            continue;
        };
        let hung = age > STALE_AFTER.as_secs();
        if age < IDLE_AFTER.as_secs()
            || (in_use && !hung)
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        // Without FORCE the drop fails if a connection appeared meanwhile.
        let force = if hung { " WITH (FORCE)" } else { "" };
        if sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\"{force}"
        )))
        .execute(&mut *conn)
        .await
        .is_ok()
        {
            dropped += 1;
        }
    }
}

/// Creates an empty, uniquely named database (`callview_test_...`) and
/// returns its URL. Nothing is created in it: use this to build a database
/// by hand before a store connects (as an adopted seed database).
///
/// Panics when the server cannot be reached or refuses.
///
/// ```no_run
/// # async fn demo() {
/// let url = callview_postgres::testing::fresh_database_url().await;
/// let store = callview_postgres::PostgresStore::connect(&url).await.unwrap();
/// # }
/// ```
pub async fn fresh_database_url() -> String {
    let admin = admin_url();
    let mut conn = admin_connection(&admin).await;
    spawn_cleanup(admin.clone());
    drop_finished_databases(&mut conn, Some(DROPS_PER_CREATE)).await;
    let name = unique_name();
    let mut last_error = None;
    for _ in 0..5 {
        // Several tests creating databases at once may briefly contend for
        // the template database; try again.
        match sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
        {
            Ok(_) => {
                last_error = None;
                break;
            }
            Err(e) => {
                last_error = Some(e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    if let Some(e) = last_error {
        panic!(
            "could not create test database {name} on {}: {e}",
            redact_url(&admin)
        );
    }
    let _ = conn.close().await;
    let mut url = url::Url::parse(&admin)
        .unwrap_or_else(|e| panic!("{TEST_URL_ENV} is not a URL ({}): {e}", redact_url(&admin)));
    url.set_path(&name);
    url.to_string()
}

/// A store connected to a new, empty, migrated database of its own (pool
/// of 4 connections). Panics when the server cannot be reached. The
/// database is dropped by later calls once the test has finished (or at
/// once by [`discard`]).
///
/// ```no_run
/// # async fn demo() {
/// let store = callview_postgres::testing::fresh_store().await;
/// # }
/// ```
pub async fn fresh_store() -> PostgresStore {
    let url = fresh_database_url().await;
    let options = PostgresOptions::new(&url)
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(30));
    PostgresStore::connect_with(options)
        .await
        .unwrap_or_else(|e| panic!("could not open the test database {}: {e}", redact_url(&url)))
}

/// Closes a test store and drops its database now (best effort), instead of
/// leaving it to a later run's cleanup.
///
/// ```no_run
/// # async fn demo() {
/// let store = callview_postgres::testing::fresh_store().await;
/// // ... the test ...
/// callview_postgres::testing::discard(store).await;
/// # }
/// ```
pub async fn discard(store: PostgresStore) {
    let name: Option<String> = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(store.pool())
        .await
        .ok();
    store.close().await;
    drop(store);
    let Some(name) = name.filter(|n| {
        n.starts_with(DATABASE_PREFIX) && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    }) else {
        return;
    };
    if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
        let _ = conn.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_dated() {
        let a = unique_name();
        let b = unique_name();
        assert_ne!(a, b);
        assert!(a.starts_with(DATABASE_PREFIX));
        assert!(a.len() < 63, "{a}");
        assert!(created_secs(&a).is_some());
        assert_eq!(created_secs("callview_test_x"), None);
    }

    #[tokio::test]
    #[should_panic(
        expected = "cannot reach the PostgreSQL test server at postgres://postgres:***@127.0.0.1:1/postgres"
    )]
    async fn an_unreachable_server_panics_instead_of_skipping() {
        admin_connection("postgres://postgres:pw@127.0.0.1:1/postgres").await;
    }
}
