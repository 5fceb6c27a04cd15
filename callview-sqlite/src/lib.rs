//! # callview-sqlite
//!
//! The embedded SQLite [`Store`] for callview: one file (or a private
//! in-memory database), no server to run. SQLite is compiled in (rusqlite's
//! `bundled` feature).
//!
//! ```
//! use callview_core::Store;
//! use callview_sqlite::SqliteStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), callview_core::StoreError> {
//! let store = SqliteStore::open("sqlite::memory:")?;
//! store.health().await?;
//! assert_eq!(store.counts().await?.conversations, 0);
//! # Ok(())
//! # }
//! ```
//!
//! ## Schema
//!
//! The tables of `docs/storage.md` (`contacts`, `conversations`, `messages`,
//! `sync_cursors`) with its indexes, plus `schema_migrations` and
//! `sync_locks`. The migrations in `callview-sqlite/migrations/` are
//! embedded in the binary and applied at [`SqliteStore::open`], each once,
//! inside a transaction. JSON columns are `TEXT` holding valid JSON;
//! timestamps are `TEXT` in the fixed-width UTC form
//! `2026-02-06T15:17:13.000000Z` (text order is time order); `price` is
//! `TEXT` holding the exact decimal Twilio sent; `updated_at` is set by
//! every write and by triggers for updates made outside callview.
//!
//! ## Connections
//!
//! A file database runs in WAL mode with `synchronous = NORMAL`,
//! `foreign_keys = ON` and a 5 s busy timeout. One connection writes;
//! reads use a pool of four read-only connections (more concurrent reads
//! wait for one), so listing conversations does not wait for a sync's
//! transaction. Every call runs on tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]), never on the async runtime's threads;
//! a plan is applied in place ([`tokio::task::block_in_place`]) on a
//! multi-thread runtime. An in-memory database has one connection.
//!
//! ## The sync lock
//!
//! [`Store::try_lock_sync`] takes a lease stored in the database, so it
//! excludes syncs in other processes using the same file as well as in this
//! one. The lease lasts [`DEFAULT_SYNC_LEASE`] and is renewed by every
//! [`Store::apply`] and [`Store::write_cursor`] of the holder; a holder that
//! crashed stops blocking others when its lease runs out.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use callview_core::call::CallSid;
use callview_core::model::{
    ConversationId, ConversationLookup, ConversationState, Plan, StoredCall,
};
use callview_core::store::{
    ConversationPage, ConversationQuery, ConversationView, Store, StoreCounts, StoreError,
};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::runtime::RuntimeFlavor;

mod queries;
mod rows;
mod schema;
mod time;

use queries::SyncLease;

/// How long a sync lock lasts without being renewed.
pub const DEFAULT_SYNC_LEASE: Duration = Duration::from_secs(5 * 60);

/// Read connections (file databases): at most this many reads run at once,
/// each on a connection kept open for reuse; more wait for a free one.
/// Opening a connection per read (parsing the schema, preparing every
/// statement anew) cost a quarter of the CPU of 32 concurrent API clients.
const MAX_READERS: usize = 4;

/// A callview store in a SQLite database.
///
/// Cheap to clone: clones share the connections. Use it as
/// `Arc<dyn Store>`.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    lease: Duration,
}

struct Inner {
    /// The file, or `None` for a private in-memory database.
    path: Option<PathBuf>,
    /// How errors name the database.
    label: String,
    /// The one connection that writes (and, in memory, also reads).
    writer: Mutex<Connection>,
    /// Idle read-only connections (file databases only).
    readers: Mutex<Vec<Connection>>,
    /// One permit per read that may run ([`MAX_READERS`]).
    read_permits: tokio::sync::Semaphore,
    /// This store's identity in `sync_locks`.
    lock_holder: String,
    /// Whether this store holds the sync lock.
    holds_lock: AtomicBool,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("database", &self.inner.label)
            .finish_non_exhaustive()
    }
}

/// Where a URL or path points.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Memory,
    File(PathBuf),
}

/// Reads `sqlite://path`, `sqlite:path`, `sqlite::memory:`, `:memory:` or a
/// plain path. The only query parameter accepted is sqlx's `mode=rwc`
/// (which is what opening does anyway).
fn parse_target(url_or_path: &str) -> Result<Target, StoreError> {
    let text = url_or_path.trim();
    let rest = match text
        .strip_prefix("sqlite://")
        .or_else(|| text.strip_prefix("sqlite:"))
    {
        Some(rest) => {
            let (path, query) = match rest.split_once('?') {
                Some((path, query)) => (path, Some(query)),
                None => (rest, None),
            };
            if let Some(query) = query.filter(|q| !q.is_empty() && *q != "mode=rwc") {
                return Err(StoreError::Invalid(format!(
                    "unsupported parameters {query:?} in the SQLite URL {text:?}; \
                     use sqlite://path/to/file.db or sqlite::memory:"
                )));
            }
            path
        }
        None => text,
    };
    if rest.is_empty() {
        return Err(StoreError::Invalid(format!(
            "no database path in {url_or_path:?}; use sqlite://path/to/file.db or sqlite::memory:"
        )));
    }
    if rest == ":memory:" {
        return Ok(Target::Memory);
    }
    Ok(Target::File(PathBuf::from(rest)))
}

/// Names a lock holder uniquely among the stores of every process:
/// `pid <pid> on <host> store <n> at <time>`. The pid and host let another
/// process on the same machine see that a holder has died
/// ([`queries::holder_is_dead`]).
fn new_holder() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "pid {} on {} store {} at {}",
        std::process::id(),
        queries::this_host(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        time::format(&time::now())
    )
}

/// A clear error for a database that cannot be opened.
fn open_error(label: &str, error: rusqlite::Error) -> StoreError {
    let message = match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => {
            format!("{label} is not a SQLite database (it may be another kind of file, encrypted or damaged)")
        }
        Some(ErrorCode::DatabaseCorrupt) => format!("the SQLite database {label} is damaged"),
        Some(ErrorCode::CannotOpen) => format!(
            "cannot open or create the SQLite database {label}: check that its directory exists \
             and that callview may write there"
        ),
        Some(ErrorCode::ReadOnly) | Some(ErrorCode::PermissionDenied) => format!(
            "the SQLite database {label} is read-only: callview needs to write to the file \
             and to its directory (for the -wal and -shm files)"
        ),
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            format!("the SQLite database {label} is locked by another process")
        }
        _ => format!("cannot open the SQLite database {label}"),
    };
    StoreError::backend(message, error)
}

fn read_only_error(label: &str) -> StoreError {
    StoreError::Backend {
        message: format!(
            "the SQLite database {label} is read-only: callview needs to write to the file \
             and to its directory (for the -wal and -shm files)"
        ),
        source: None,
    }
}

impl SqliteStore {
    /// Opens (creating it if needed) the database named by `url_or_path`
    /// and brings its schema up to date.
    ///
    /// Accepts `sqlite://path/to/file.db`, `sqlite:path/to/file.db`, a
    /// plain path, or `sqlite::memory:` (also `sqlite://:memory:` and
    /// `:memory:`) for a new in-memory database private to this store.
    /// This blocks while it opens and migrates; from async code, prefer
    /// [`SqliteStore::connect`].
    ///
    /// Fails with [`StoreError::Backend`], naming the path, when the file
    /// cannot be created or opened, is read-only, or is not a SQLite
    /// database; with [`StoreError::Invalid`] for a malformed URL.
    ///
    /// ```
    /// use callview_core::Store;
    /// use callview_sqlite::SqliteStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), callview_core::StoreError> {
    /// let store = SqliteStore::open("sqlite::memory:")?;
    /// assert_eq!(store.read_cursor("watermark").await?, None);
    /// store.write_cursor("watermark", "2026-02-06T00:00:00Z").await?;
    /// assert_eq!(
    ///     store.read_cursor("watermark").await?.as_deref(),
    ///     Some("2026-02-06T00:00:00Z")
    /// );
    /// # Ok(())
    /// # }
    /// ```
    pub fn open(url_or_path: &str) -> Result<Self, StoreError> {
        match parse_target(url_or_path)? {
            Target::Memory => Self::open_in_memory(),
            Target::File(path) => Self::open_file(path),
        }
    }

    /// [`SqliteStore::open`] on tokio's blocking pool.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), callview_core::StoreError> {
    /// let store = callview_sqlite::SqliteStore::connect("sqlite::memory:").await?;
    /// assert!(store.path().is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url_or_path: &str) -> Result<Self, StoreError> {
        let url = url_or_path.to_owned();
        tokio::task::spawn_blocking(move || Self::open(&url))
            .await
            .map_err(|e| StoreError::backend("opening the SQLite database", e))?
    }

    /// A new, empty in-memory database private to this store (and its
    /// clones); it disappears when the last clone is dropped.
    ///
    /// ```
    /// let store = callview_sqlite::SqliteStore::open_in_memory().unwrap();
    /// assert!(store.path().is_none());
    /// ```
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let label = "the in-memory database".to_owned();
        let mut conn = Connection::open_in_memory().map_err(|e| open_error(&label, e))?;
        schema::configure_writer(&conn, true).map_err(|e| open_error(&label, e))?;
        schema::migrate(&mut conn, &label)?;
        Ok(Self::from_parts(None, label, conn))
    }

    fn open_file(path: PathBuf) -> Result<Self, StoreError> {
        let label = path.display().to_string();
        if path.is_dir() {
            return Err(StoreError::Backend {
                message: format!("{label} is a directory, not a SQLite database file"),
                source: None,
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(&path, flags).map_err(|e| open_error(&label, e))?;
        // SQLite silently opens a write-protected file read-only.
        if conn
            .is_readonly(rusqlite::MAIN_DB)
            .map_err(|e| open_error(&label, e))?
        {
            return Err(read_only_error(&label));
        }
        schema::configure_writer(&conn, false).map_err(|e| open_error(&label, e))?;
        schema::migrate(&mut conn, &label)?;
        tracing::debug!(database = %label, "opened the SQLite store");
        Ok(Self::from_parts(Some(path), label, conn))
    }

    fn from_parts(path: Option<PathBuf>, label: String, writer: Connection) -> Self {
        Self {
            inner: Arc::new(Inner {
                path,
                label,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                read_permits: tokio::sync::Semaphore::new(MAX_READERS),
                lock_holder: new_holder(),
                holds_lock: AtomicBool::new(false),
            }),
            lease: DEFAULT_SYNC_LEASE,
        }
    }

    /// Sets how long this store's sync lock lasts without renewal
    /// (default [`DEFAULT_SYNC_LEASE`]; at most ten years).
    ///
    /// ```
    /// use std::time::Duration;
    /// let store = callview_sqlite::SqliteStore::open_in_memory()
    ///     .unwrap()
    ///     .with_sync_lease(Duration::from_secs(60));
    /// # drop(store);
    /// ```
    pub fn with_sync_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The database file, or `None` for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    fn sync_lease(&self) -> SyncLease<'_> {
        // At most ten years, so that expiry times stay four-digit years.
        let longest = chrono::Duration::days(3650);
        SyncLease {
            holder: &self.inner.lock_holder,
            duration: chrono::Duration::from_std(self.lease)
                .map_or(longest, |lease| lease.min(longest)),
        }
    }

    /// Runs `f` with the write connection on the blocking pool.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &SqliteStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = store
                .inner
                .writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            f(&mut conn, &store).map_err(|e| store.inner.name_database(e))
        })
        .await
        .map_err(|e| StoreError::backend("running a database task", e))?
    }

    /// Runs `f` with a read connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        // Waiting for a permit takes no blocking thread; the semaphore is
        // never closed.
        let _permit = self.inner.read_permits.acquire().await.ok();
        tokio::task::spawn_blocking(move || {
            inner.with_reader(f).map_err(|e| inner.name_database(e))
        })
        .await
        .map_err(|e| StoreError::backend("running a database task", e))?
    }
}

impl Inner {
    /// Adds which database failed to a backend error's message.
    fn name_database(&self, error: StoreError) -> StoreError {
        match error {
            StoreError::Backend { message, source } if !message.contains(&self.label) => {
                StoreError::Backend {
                    message: format!("{message} (in {})", self.label),
                    source,
                }
            }
            other => other,
        }
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Some(path) = &self.path else {
            let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            return f(&mut conn);
        };
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => self.open_reader(path)?,
        };
        let result = f(&mut conn);
        if conn.is_autocommit() {
            let mut idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_READERS {
                idle.push(conn);
            }
        }
        result
    }

    fn open_reader(&self, path: &Path) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| open_error(&self.label, e))?;
        schema::configure_reader(&conn).map_err(|e| open_error(&self.label, e))?;
        Ok(conn)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if *self.holds_lock.get_mut() {
            let conn = self
                .writer
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            let lease = SyncLease {
                holder: &self.lock_holder,
                duration: chrono::Duration::zero(),
            };
            if let Err(e) = lease.release(conn) {
                tracing::warn!(error = %e, "could not release the sync lock");
            }
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn load_trees(&self, sids: &[CallSid]) -> Result<Vec<StoredCall>, StoreError> {
        if sids.is_empty() {
            return Ok(Vec::new());
        }
        let sids = sids.to_vec();
        self.read(move |conn| queries::load_trees(conn, &sids))
            .await
    }

    async fn load_conversations(
        &self,
        lookup: &ConversationLookup,
    ) -> Result<Vec<ConversationState>, StoreError> {
        if lookup.keys.is_empty() && lookup.ids.is_empty() {
            return Ok(Vec::new());
        }
        let lookup = lookup.clone();
        self.read(move |conn| {
            let tx = conn
                .transaction()
                .map_err(|e| StoreError::backend("loading the conversations of a batch", e))?;
            let states = queries::load_conversations(&tx, &lookup)?;
            tx.finish()
                .map_err(|e| StoreError::backend("loading the conversations of a batch", e))?;
            Ok(states)
        })
        .await
    }

    async fn apply(&self, plan: &Plan) -> Result<(), StoreError> {
        if plan.is_empty() {
            return Ok(());
        }
        let apply = |conn: &mut Connection, store: &SqliteStore, plan: &Plan| {
            let lease = store.sync_lease();
            let held = store.inner.holds_lock.load(Ordering::Acquire);
            queries::apply(conn, plan, held.then_some(&lease))
        };
        // A plan holds a page of calls: on a multi-thread runtime it is
        // written in place (the worker hands its other tasks to another
        // thread meanwhile); a current-thread runtime cannot block, so the
        // plan is copied to the blocking pool.
        if tokio::runtime::Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
            return tokio::task::block_in_place(|| {
                let mut conn = self
                    .inner
                    .writer
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                apply(&mut conn, self, plan).map_err(|e| self.inner.name_database(e))
            });
        }
        let plan = plan.clone();
        self.write(move |conn, store| apply(conn, store, &plan))
            .await
    }

    async fn read_cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn| queries::read_cursor(conn, &name))
            .await
    }

    async fn write_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.write(move |conn, store| {
            let lease = store.sync_lease();
            let held = store.inner.holds_lock.load(Ordering::Acquire);
            queries::write_cursor(conn, &name, &value, held.then_some(&lease))
        })
        .await
    }

    async fn newest_call_start(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read(|conn| queries::newest_call_start(conn)).await
    }

    async fn unfinished_calls(&self, limit: u32) -> Result<Vec<StoredCall>, StoreError> {
        self.read(move |conn| queries::unfinished_calls(conn, limit))
            .await
    }

    async fn set_recording_url(&self, sid: &CallSid, url: Option<&str>) -> Result<(), StoreError> {
        let sid = sid.clone();
        let url = url.map(str::to_owned);
        self.write(move |conn, _| queries::set_recording_url(conn, &sid, url.as_deref()))
            .await
    }

    async fn list_conversations(
        &self,
        query: &ConversationQuery,
    ) -> Result<ConversationPage, StoreError> {
        let query = query.clone();
        self.read(move |conn| queries::list_conversations(conn, &query))
            .await
    }

    async fn conversation(&self, id: ConversationId) -> Result<ConversationView, StoreError> {
        self.read(move |conn| queries::conversation(conn, id)).await
    }

    async fn conversation_calls(&self, id: ConversationId) -> Result<Vec<StoredCall>, StoreError> {
        self.read(move |conn| queries::conversation_calls(conn, id))
            .await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.read(|conn| queries::counts(conn)).await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.read(|conn| queries::health(conn)).await
    }

    async fn try_lock_sync(&self) -> Result<bool, StoreError> {
        self.write(|conn, store| {
            let taken = store.sync_lease().try_acquire(conn)?;
            if taken {
                store.inner.holds_lock.store(true, Ordering::Release);
            }
            Ok(taken)
        })
        .await
    }

    async fn unlock_sync(&self) -> Result<(), StoreError> {
        self.write(|conn, store| {
            store.sync_lease().release(conn)?;
            store.inner.holds_lock.store(false, Ordering::Release);
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths() {
        let file = |p: &str| Ok::<_, ()>(Target::File(PathBuf::from(p)));
        let parse = |s: &str| parse_target(s).map_err(|_| ());
        assert_eq!(parse("sqlite::memory:"), Ok(Target::Memory));
        assert_eq!(parse("sqlite://:memory:"), Ok(Target::Memory));
        assert_eq!(parse(":memory:"), Ok(Target::Memory));
        assert_eq!(parse("sqlite://data/callview.db"), file("data/callview.db"));
        assert_eq!(
            parse("sqlite:///var/lib/callview.db"),
            file("/var/lib/callview.db")
        );
        assert_eq!(parse("sqlite:callview.db"), file("callview.db"));
        assert_eq!(parse("sqlite://callview.db?mode=rwc"), file("callview.db"));
        assert_eq!(parse("/tmp/x.db"), file("/tmp/x.db"));
        assert_eq!(parse("  x.db "), file("x.db"));
        assert!(matches!(
            parse_target("sqlite://"),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(parse_target(""), Err(StoreError::Invalid(_))));
        assert!(matches!(
            parse_target("sqlite://x.db?mode=ro"),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn dead_holders_on_this_machine_are_recognised() {
        let host = queries::this_host();
        // A pid far above Linux's pid_max cannot be running.
        assert!(queries::holder_is_dead(&format!(
            "pid 99999999 on {host} store 1 at x"
        )));
        assert!(
            !queries::holder_is_dead(&new_holder()),
            "this process is alive"
        );
        assert!(!queries::holder_is_dead(
            "pid 99999999 on another-machine store 1 at x"
        ));
        assert!(!queries::holder_is_dead("garbage"));
        assert!(!queries::holder_is_dead("pid notanumber on x"));
    }

    #[test]
    fn holders_are_unique() {
        assert_ne!(new_holder(), new_holder());
    }
}
