//! Checkpoints of the WAL on a thread of their own.
//!
//! A checkpoint copies the pages the WAL holds into the database file and
//! syncs it. Left to SQLite, the writer runs one after the commit that
//! takes the WAL past `wal_autocheckpoint` pages, inside the next write's
//! critical path: on a 1M-call backfill `COMMIT` averaged 93 ms a page,
//! mostly checkpoints. This thread runs a `PASSIVE` checkpoint (it never
//! waits for the writer nor blocks it) every [`INTERVAL`], on the second
//! core, so the pages are already in the file when the writer's own
//! checkpoint comes: that one only copies what the last interval wrote.
//! Durability is unchanged (`synchronous = NORMAL`: a commit is durable
//! at the checkpoint that copies it, whoever runs it).

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How often the thread checkpoints.
const INTERVAL: Duration = Duration::from_millis(100);

/// The checkpointing thread of a file database; dropping it stops the
/// thread (within the checkpoint it may be running) and closes its
/// connection.
pub(crate) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`; `None`, with a
    /// warning, when no connection or thread can be had (the writer then
    /// checkpoints alone, as SQLite does by default).
    pub(crate) fn start(path: &Path, label: &str) -> Option<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match Connection::open_with_flags(path, flags)
            .and_then(|conn| crate::schema::configure_common(&conn).map(|()| conn))
        {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(database = %label, error = %e, "no background checkpoints: opening their connection failed");
                return None;
            }
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let label = label.to_owned();
        let thread = std::thread::Builder::new()
            .name("callview-checkpoint".to_owned())
            .spawn(move || run(&conn, &label, &stopped));
        match thread {
            Ok(thread) => Some(Self {
                stop: Some(stop),
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "no background checkpoints: starting their thread failed");
                None
            }
        }
    }
}

fn run(conn: &Connection, label: &str, stopped: &mpsc::Receiver<()>) {
    let mut failing = false;
    loop {
        match stopped.recv_timeout(INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0)) {
            Ok(_) => failing = false,
            // Said once per run of failures (a full disk fails every one);
            // the writer's own checkpoints and commits report theirs.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(database = %label, error = %e, "a background checkpoint failed");
            }
            Err(_) => {}
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
