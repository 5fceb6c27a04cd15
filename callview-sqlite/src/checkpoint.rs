//! Checkpoints of the WAL on a thread of their own.
//!
//! A checkpoint copies the pages the WAL holds into the database file and
//! syncs both. Left to SQLite, the writer runs one after the commit that
//! takes the WAL past `wal_autocheckpoint` pages, in the write path: on a
//! 1M-call backfill `COMMIT` averaged 93 ms a page, mostly checkpoints.
//! Here each ingest commit nudges a thread of the store, which runs a
//! `PASSIVE` checkpoint on a connection of its own (one never waits for the
//! writer nor blocks it; while it runs, the writer's own automatic
//! checkpoint is skipped) and then lets [`MIN_GAP`] pass, so a burst of
//! commits gets one checkpoint per gap and pages rewritten by several
//! commits are copied once per gap. An idle store's thread sleeps. The
//! writer's own checkpoints still come at 16,384 pages should the thread
//! fall behind. Durability is no weaker: with `synchronous = NORMAL` a
//! commit is durable at the checkpoint that copies it, here sooner.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, InterruptHandle, OpenFlags};

/// The least time between two checkpoints.
const MIN_GAP: Duration = Duration::from_millis(100);

/// How long a checkpoint waits for a lock to load the schema (a `PASSIVE`
/// checkpoint itself never waits): one that finds the file busy is simply
/// run again after the next commit.
const BUSY_TIMEOUT: Duration = Duration::from_millis(100);

/// The checkpointing thread of a file database. Dropping it interrupts a
/// checkpoint in progress, stops the thread and closes its connection.
pub(crate) struct Checkpointer {
    nudges: Option<SyncSender<()>>,
    interrupt: InterruptHandle,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`; `None`, with a
    /// warning, when no connection or thread can be had (the writer then
    /// checkpoints alone, as SQLite does by default).
    pub(crate) fn start(path: &Path, label: &str) -> Option<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match Connection::open_with_flags(path, flags)
            .and_then(|conn| conn.busy_timeout(BUSY_TIMEOUT).map(|()| conn))
        {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(database = %label, error = %e, "no background checkpoints: opening their connection failed");
                return None;
            }
        };
        let interrupt = conn.get_interrupt_handle();
        // One pending nudge is enough: a commit never waits to send one.
        let (nudges, nudged) = mpsc::sync_channel::<()>(1);
        let thread_label = label.to_owned();
        let thread = std::thread::Builder::new()
            .name("callview-checkpoint".to_owned())
            .spawn(move || run(&conn, &thread_label, &nudged));
        match thread {
            Ok(thread) => Some(Self {
                nudges: Some(nudges),
                interrupt,
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::warn!(database = %label, error = %e, "no background checkpoints: starting their thread failed");
                None
            }
        }
    }

    /// Asks for a checkpoint soon (after a commit); never waits.
    pub(crate) fn nudge(&self) {
        if let Some(nudges) = &self.nudges {
            let _ = nudges.try_send(());
        }
    }
}

/// Until the store goes: wait for a commit, checkpoint, and let
/// [`MIN_GAP`] pass, checkpointing again after it if commits came meanwhile.
fn run(conn: &Connection, label: &str, nudged: &Receiver<()>) {
    let mut failing = false;
    while nudged.recv().is_ok() {
        loop {
            checkpoint(conn, label, &mut failing);
            let until = Instant::now() + MIN_GAP;
            let mut more = false;
            loop {
                match nudged.recv_timeout(until.saturating_duration_since(Instant::now())) {
                    Ok(()) => more = true,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            if !more {
                break;
            }
        }
    }
}

fn checkpoint(conn: &Connection, label: &str, failing: &mut bool) {
    // The first column says whether a lock kept it from finishing (another
    // checkpoint, from another process); the next commit's nudge retries.
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0)) {
        Ok(_) => *failing = false,
        // The store is going away (see `Drop`).
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) => {}
        // Said once per run of failures (a full disk fails every one); the
        // writer's own checkpoints and commits report theirs.
        Err(e) if !*failing => {
            *failing = true;
            tracing::warn!(database = %label, error = %e, "a background checkpoint failed");
        }
        Err(_) => {}
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.nudges.take());
        // Stops a checkpoint in progress at its next page (SQLite leaves
        // the WAL and the file consistent); the connection's own close
        // still runs, so the thread is joined: a store dropped has let go
        // of its files.
        self.interrupt.interrupt();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
