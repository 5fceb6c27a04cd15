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
//! multi-thread runtime. A file database also has a thread with a
//! connection of its own that checkpoints the WAL after ingest commits
//! (`checkpoint.rs`). An in-memory database has one connection.
//!
//! ## The sync lock
//!
//! [`Store::try_lock_sync`] takes a lease stored in the database, so it
//! excludes syncs in other processes using the same file as well as in this
//! one. The lease lasts [`DEFAULT_SYNC_LEASE`] and is renewed by every
//! [`IngestTx::confirm_sync_lock`] of the holder's run, inside the run's
//! transaction; a holder that crashed stops blocking others when its lease
//! runs out (at once when it was a process of this machine, or a store of
//! this process since dropped, whose release failed), and a holder whose
//! lease another process took over gets [`StoreError::LockLost`] and
//! writes nothing more.
//!
//! ## Writes
//!
//! Every write is one [`IngestTx`] ([`Store::begin_ingest`]): a
//! `BEGIN IMMEDIATE` transaction on the one writer connection, held from
//! the planner's reads to the commit. SQLite lets one such transaction run
//! at a time per database file, across processes (the others wait up to
//! the 5 s busy timeout), so every plan is computed from what its own
//! transaction read.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use std::time::Duration;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use async_trait::async_trait;
use callview_core::access::{NewToken, TokenHash, TokenRecord};
use callview_core::annotations::{Annotations, CallEdit, ContactEdit, EditMeta};
use callview_core::call::CallSid;
use callview_core::export::{ExportQuery, ExportRow};
use callview_core::model::{
    ConversationId, ConversationLookup, FoundConversations, MediaPlan, Plan, StoredCall,
    StoredRecording, StoredText,
};
use callview_core::recording::{RecordingSid, Transcript};
use callview_core::stats::{StatsQuery, StatsRows};
use callview_core::store::{
    CallMedia, ContactRecord, ConversationPage, ConversationQuery, ConversationView, IngestTx,
    MessagePage, MessageQuery, PoolStatus, RefreshUpdate, SchemaStatus, Store, StoreCounts,
    StoreError, TagCount, UnfinishedQuery,
};
use callview_core::text::MessageSid;
use callview_core::Interaction;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, ErrorCode, OpenFlags};

pub mod backup;
mod checkpoint;
mod export;
mod media;
mod queries;
pub mod raw_record;
mod rows;
mod schema;
mod stats;
mod texts;
mod time;
mod tokens;

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
    /// Which file `path` named when the store opened it: `health` fails
    /// when the path no longer names it (the file was moved, deleted or
    /// replaced under the open connections, which would go on writing into
    /// a file no one sees).
    identity: Option<FileIdentity>,
    /// How errors name the database.
    label: String,
    /// The one connection that writes (and, in memory, also reads). An
    /// [`IngestTx`] holds it from `BEGIN IMMEDIATE` to its commit.
    writer: Arc<AsyncMutex<Connection>>,
    /// Idle read-only connections (file databases only).
    readers: Mutex<Vec<Connection>>,
    /// One permit per read that may run ([`MAX_READERS`]).
    read_permits: tokio::sync::Semaphore,
    /// This store's identity in `sync_locks`.
    lock_holder: queries::LockHolder,
    /// Whether this store holds the sync lock.
    holds_lock: AtomicBool,
    /// Checkpoints the WAL beside the writer (file databases only).
    checkpointer: Option<checkpoint::Checkpointer>,
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
        let identity = path.as_deref().and_then(FileIdentity::of);
        let checkpointer = path
            .as_deref()
            .and_then(|path| checkpoint::Checkpointer::start(path, &label));
        Self {
            inner: Arc::new(Inner {
                identity,
                path,
                label,
                writer: Arc::new(AsyncMutex::new(writer)),
                readers: Mutex::new(Vec::new()),
                read_permits: tokio::sync::Semaphore::new(MAX_READERS),
                lock_holder: queries::LockHolder::new(),
                holds_lock: AtomicBool::new(false),
                checkpointer,
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
            holder: self.inner.lock_holder.name(),
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
            let mut conn = store.inner.writer.blocking_lock();
            if !conn.is_autocommit() {
                // Never expected (an ingest rolls back when dropped); never
                // write inside a transaction someone else left open.
                conn.execute_batch("ROLLBACK").map_err(|e| {
                    StoreError::backend(format!("rolling back an abandoned transaction: {e}"), e)
                })?;
            }
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

/// What identifies a file while it exists: its device and inode on Unix
/// (elsewhere nothing: only the path's existence is checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileIdentity {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
}

impl FileIdentity {
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(Self {
                dev: metadata.dev(),
                ino: metadata.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            Some(Self {})
        }
    }
}

impl Inner {
    /// Fails when the database file is no longer at its path, or the path
    /// names another file than the one the store opened.
    fn check_file(&self) -> Result<(), StoreError> {
        let (Some(path), Some(opened)) = (&self.path, self.identity) else {
            return Ok(());
        };
        let problem = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                "is gone (moved or deleted while callview had it open)".to_owned()
            }
            Err(e) => format!("cannot be checked: {e}"),
            Ok(_) if FileIdentity::of(path) != Some(opened) => {
                "was replaced by another file while callview had it open; restart callview \
                 to use the new file"
                    .to_owned()
            }
            Ok(_) => return Ok(()),
        };
        Err(StoreError::Backend {
            message: format!("the SQLite database file {} {problem}", self.label),
            source: None,
        })
    }

    /// How the read connections are used now.
    fn pool_status(&self) -> PoolStatus {
        if self.path.is_none() {
            // One connection does everything.
            let in_use = u32::from(self.writer.try_lock().is_err());
            return PoolStatus {
                max: 1,
                idle: 1 - in_use,
                in_use,
            };
        }
        let max = MAX_READERS as u32;
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len() as u32;
        let available = self.read_permits.available_permits() as u32;
        PoolStatus {
            max,
            idle,
            in_use: max.saturating_sub(available),
        }
    }

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
            let mut conn = self.writer.blocking_lock();
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
            if let Ok(conn) = self.writer.try_lock() {
                let lease = SyncLease {
                    holder: self.lock_holder.name(),
                    duration: chrono::Duration::zero(),
                };
                if let Err(e) = lease.release(&conn) {
                    tracing::warn!(error = %e, "could not release the sync lock");
                }
            }
        }
        // The checkpoint thread goes first, interrupted: the connection
        // that closes last checkpoints the whole WAL into the file and
        // deletes it, and one with an interrupt pending would give that
        // checkpoint up. The writer or a reader closes last instead.
        drop(self.checkpointer.take());
    }
}

/// The writer connection inside an open ingest transaction. Dropped before
/// [`TxConn::committed`] (an error, a cancelled task, wherever the drop
/// happens: on a runtime thread or the blocking pool), it rolls the
/// transaction back before the writer mutex is released, so no other
/// writer ever finds it open.
struct TxConn {
    conn: OwnedMutexGuard<Connection>,
    open: bool,
}

impl TxConn {
    fn committed(&mut self) {
        self.open = false;
    }
}

impl Drop for TxConn {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::warn!(error = %e, "could not roll back an ingest transaction");
            }
        }
    }
}

/// One ingest on the writer connection: `BEGIN IMMEDIATE` at the start,
/// `COMMIT` in [`IngestTx::commit`], `ROLLBACK` when dropped before (by
/// [`TxConn`]).
struct SqliteIngest {
    store: SqliteStore,
    /// The writer connection, inside its open transaction; `None` only
    /// while a statement runs on the blocking pool, or after a task
    /// running one was lost (its [`TxConn`] rolled back when dropped).
    conn: Option<TxConn>,
}

impl SqliteIngest {
    /// Runs `f` on the transaction's connection on the blocking pool.
    async fn run<T, F>(&mut self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &SqliteStore) -> Result<T, StoreError> + Send + 'static,
    {
        let mut conn = self.conn.take().ok_or_else(|| StoreError::Backend {
            message: "the ingest transaction was interrupted by an earlier failure".to_owned(),
            source: None,
        })?;
        let store = self.store.clone();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut conn.conn, &store).map_err(|e| store.inner.name_database(e));
            (conn, result)
        })
        .await
        .map_err(|e| StoreError::backend("running a database task", e))?;
        self.conn = Some(conn);
        result
    }
}

#[async_trait]
impl IngestTx for SqliteIngest {
    async fn load_trees(&mut self, sids: &[CallSid]) -> Result<Vec<StoredCall>, StoreError> {
        if sids.is_empty() {
            return Ok(Vec::new());
        }
        let sids = sids.to_vec();
        self.run(move |conn, _| queries::load_trees(conn, &sids))
            .await
    }

    async fn load_texts(&mut self, sids: &[MessageSid]) -> Result<Vec<StoredText>, StoreError> {
        let sids = sids.to_vec();
        self.run(move |conn, _| texts::load_texts(conn, &sids))
            .await
    }

    async fn load_conversations(
        &mut self,
        lookup: &ConversationLookup,
    ) -> Result<FoundConversations, StoreError> {
        let lookup = lookup.clone();
        self.run(move |conn, _| queries::load_conversations(conn, &lookup))
            .await
    }

    async fn apply(&mut self, plan: Plan) -> Result<(), StoreError> {
        if plan.is_empty() {
            return Ok(());
        }
        self.run(move |conn, _| queries::apply(conn, &plan)).await
    }

    async fn write_cursor(&mut self, name: &str, value: &str) -> Result<(), StoreError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.run(move |conn, _| queries::write_cursor(conn, &name, &value))
            .await
    }

    async fn record_refresh(&mut self, updates: &[RefreshUpdate]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let updates = updates.to_vec();
        self.run(move |conn, _| queries::record_refresh(conn, &updates))
            .await
    }

    async fn confirm_sync_lock(&mut self) -> Result<(), StoreError> {
        self.run(|conn, store| {
            if store.inner.holds_lock.load(Ordering::Acquire) {
                store.sync_lease().renew(conn)?;
            }
            Ok(())
        })
        .await
    }

    async fn edit_contact(
        &mut self,
        id: i64,
        edit: &ContactEdit,
        expected_version: Option<i64>,
        meta: &EditMeta,
    ) -> Result<ContactRecord, StoreError> {
        let (edit, meta) = (edit.clone(), meta.clone());
        self.run(move |conn, _| queries::edit_contact(conn, id, &edit, expected_version, &meta))
            .await
    }

    async fn ensure_contact(&mut self, key: &str, display: &str) -> Result<i64, StoreError> {
        let (key, display) = (key.to_owned(), display.to_owned());
        self.run(move |conn, _| queries::ensure_contact(conn, &key, &display))
            .await
    }

    async fn edit_call(
        &mut self,
        id: i64,
        edit: &CallEdit,
        expected_version: Option<i64>,
        meta: &EditMeta,
    ) -> Result<Annotations, StoreError> {
        let (edit, meta) = (edit.clone(), meta.clone());
        self.run(move |conn, _| queries::edit_call(conn, id, &edit, expected_version, &meta))
            .await
    }

    async fn load_media(
        &mut self,
        recordings: &[RecordingSid],
        transcripts: &[String],
    ) -> Result<(Vec<StoredRecording>, Vec<Transcript>), StoreError> {
        let (recordings, transcripts) = (recordings.to_vec(), transcripts.to_vec());
        self.run(move |conn, _| media::load_media(conn, &recordings, &transcripts))
            .await
    }

    async fn recordings_created_between(
        &mut self,
        after: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<RecordingSid>, StoreError> {
        self.run(move |conn, _| media::recordings_created_between(conn, after, before))
            .await
    }

    async fn apply_media(&mut self, plan: MediaPlan) -> Result<(), StoreError> {
        if plan.is_empty() {
            return Ok(());
        }
        self.run(move |conn, _| media::apply_media(conn, &plan))
            .await
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.run(|conn, _| {
            conn.execute_batch("COMMIT")
                .map_err(|e| StoreError::backend(format!("committing a transaction: {e}"), e))
        })
        .await?;
        if let Some(conn) = self.conn.as_mut() {
            conn.committed();
        }
        if let Some(checkpointer) = &self.store.inner.checkpointer {
            checkpointer.nudge();
        }
        Ok(())
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn begin_ingest(&self) -> Result<Box<dyn IngestTx>, StoreError> {
        let conn = Arc::clone(&self.inner.writer).lock_owned().await;
        let mut tx = SqliteIngest {
            store: self.clone(),
            conn: Some(TxConn { conn, open: true }),
        };
        tx.run(|conn, _| {
            // A transaction left open by a task that was cancelled mid-way.
            if !conn.is_autocommit() {
                conn.execute_batch("ROLLBACK").map_err(|e| {
                    StoreError::backend(format!("rolling back an abandoned transaction: {e}"), e)
                })?;
            }
            conn.execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| StoreError::backend(format!("starting a write transaction: {e}"), e))
        })
        .await?;
        Ok(Box::new(tx))
    }

    async fn load_trees(&self, sids: &[CallSid]) -> Result<Vec<StoredCall>, StoreError> {
        if sids.is_empty() {
            return Ok(Vec::new());
        }
        let sids = sids.to_vec();
        self.read(move |conn| queries::load_trees(conn, &sids))
            .await
    }

    async fn read_cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn| queries::read_cursor(conn, &name))
            .await
    }

    async fn unfinished_calls(
        &self,
        query: &UnfinishedQuery,
    ) -> Result<Vec<StoredCall>, StoreError> {
        let query = *query;
        self.read(move |conn| queries::unfinished_calls(conn, &query))
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

    async fn messages(
        &self,
        id: ConversationId,
        query: &MessageQuery,
    ) -> Result<MessagePage, StoreError> {
        let query = query.clone();
        self.read(move |conn| queries::messages(conn, id, &query))
            .await
    }

    async fn texts(
        &self,
        id: ConversationId,
        query: &MessageQuery,
    ) -> Result<Vec<StoredText>, StoreError> {
        let query = query.clone();
        self.read(move |conn| {
            let what = format!("loading the texts of conversation {id}");
            let tx = conn.transaction().map_err(queries::db(what.clone()))?;
            queries::require_conversation(&tx, id, &what)?;
            let texts = texts::thread_texts(&tx, id, &query)?;
            tx.finish().map_err(queries::db(what))?;
            Ok(texts)
        })
        .await
    }

    async fn text(&self, sid: &MessageSid) -> Result<StoredText, StoreError> {
        let sid = sid.clone();
        self.read(move |conn| texts::text(conn, &sid)).await
    }

    async fn contact(&self, id: i64) -> Result<ContactRecord, StoreError> {
        self.read(move |conn| queries::contact(conn, id)).await
    }

    async fn message(&self, id: i64) -> Result<(ConversationId, Interaction), StoreError> {
        self.read(move |conn| queries::message(conn, id)).await
    }

    async fn contacts_page(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ContactRecord>, StoreError> {
        self.read(move |conn| queries::contacts_page(conn, after, limit))
            .await
    }

    async fn export_calls(
        &self,
        query: &ExportQuery,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ExportRow>, StoreError> {
        let query = query.clone();
        self.read(move |conn| export::export_calls(conn, &query, after, limit))
            .await
    }

    async fn tags(&self) -> Result<Vec<TagCount>, StoreError> {
        self.read(|conn| queries::tags(conn)).await
    }

    async fn create_token(&self, token: &NewToken) -> Result<TokenRecord, StoreError> {
        let token = token.clone();
        self.write(move |conn, _| tokens::create_token(conn, &token))
            .await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.read(|conn| tokens::tokens(conn)).await
    }

    async fn revoke_token(&self, name: &str, at: DateTime<Utc>) -> Result<TokenRecord, StoreError> {
        let name = name.to_owned();
        self.write(move |conn, _| tokens::revoke_token(conn, &name, at))
            .await
    }

    async fn authenticate(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let hash = hash.clone();
        let found = self
            .read(move |conn| tokens::find_active(conn, &hash, now))
            .await?;
        let Some((id, mut record)) = found else {
            return Ok(None);
        };
        if record.last_use_is_stale(now) {
            // Only when the writer is free: a request never waits for a
            // sync's transaction to note a use (the next use notes it).
            if let Ok(conn) = Arc::clone(&self.inner.writer).try_lock_owned() {
                let inner = Arc::clone(&self.inner);
                let touched = tokio::task::spawn_blocking(move || {
                    if !conn.is_autocommit() {
                        return Ok(false);
                    }
                    tokens::touch(&conn, id, now)
                        .map(|()| true)
                        .map_err(|e| inner.name_database(e))
                })
                .await
                .map_err(|e| StoreError::backend("running a database task", e))?;
                match touched {
                    Ok(true) => {
                        record.last_used_at = Some(chrono::SubsecRound::trunc_subsecs(now, 6))
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "could not record a token's last use"),
                }
            }
        }
        Ok(Some(record))
    }

    async fn recording(&self, sid: &RecordingSid) -> Result<StoredRecording, StoreError> {
        let sid = sid.clone();
        self.read(move |conn| media::recording(conn, &sid)).await
    }

    async fn unfinished_media_since(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read(|conn| media::unfinished_media_since(conn)).await
    }

    async fn media_of_calls(&self, sids: &[CallSid]) -> Result<CallMedia, StoreError> {
        let sids = sids.to_vec();
        self.read(move |conn| media::media_of_calls(conn, &sids))
            .await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.read(|conn| queries::counts(conn)).await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.inner.check_file()?;
        self.read(|conn| queries::health(conn)).await
    }

    async fn schema_status(&self) -> Result<Option<SchemaStatus>, StoreError> {
        self.read(|conn| schema::status(conn).map(Some)).await
    }

    fn pool_status(&self) -> Option<PoolStatus> {
        Some(self.inner.pool_status())
    }

    async fn root_sids_page(
        &self,
        after: Option<&CallSid>,
        limit: u32,
    ) -> Result<Vec<CallSid>, StoreError> {
        let after = after.map(|s| s.as_str().to_owned());
        self.read(move |conn| stats::root_sids_page(conn, after.as_deref(), limit))
            .await
    }

    async fn stats(&self, query: &StatsQuery) -> Result<StatsRows, StoreError> {
        let query = query.clone();
        self.read(move |conn| stats::stats(conn, &query)).await
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
        let open = queries::LockHolder::new();
        assert!(
            !queries::holder_is_dead(open.name()),
            "this process runs and the store is open"
        );
        let name = open.name().to_owned();
        drop(open);
        assert!(
            queries::holder_is_dead(&name),
            "a dropped store of this process holds nothing"
        );
        // This pid in another pid namespace (a container with the same
        // host name), a name this process never gave: alive.
        let (pid, other) = (std::process::id(), "store 1 at 2020-01-01T00:00:00.000000Z");
        assert!(!queries::holder_is_dead(&format!(
            "pid {pid} on {host} {other}"
        )));
        assert!(!queries::holder_is_dead(
            "pid 99999999 on another-machine store 1 at x"
        ));
        assert!(!queries::holder_is_dead("garbage"));
        assert!(!queries::holder_is_dead("pid notanumber on x"));
        assert!(!queries::holder_is_dead(&format!(
            "pid {} on {host}",
            std::process::id()
        )));
    }

    #[test]
    fn holders_are_unique() {
        let (a, b) = (queries::LockHolder::new(), queries::LockHolder::new());
        assert_ne!(a.name(), b.name());
    }
}
