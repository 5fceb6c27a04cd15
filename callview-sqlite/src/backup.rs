//! Online backups of a SQLite database with SQLite's backup API, while
//! servers and syncs keep writing to it (`callview backup FILE`).
//!
//! The copy is one consistent state of the database: the backup reads the
//! source inside one read transaction, so every page it copies belongs to
//! the same snapshot: the last transaction committed when the backup
//! started (a whole sync page, never part of one). In WAL mode (every
//! database callview creates) readers never block the writer, so the
//! backup can take its time, a few pages per step: servers and syncs go on
//! writing meanwhile (the WAL grows until the backup ends, since its
//! snapshot cannot be checkpointed away).
//!
//! The copy is written to a temporary file next to the destination, checked
//! (`PRAGMA quick_check`), switched to the rollback journal (a single file,
//! no `-wal` to carry along; callview switches it back to WAL when it opens
//! it) and renamed into place: the destination is a complete backup or
//! untouched.
//!
//! To restore: stop every process using the database, delete its `-wal`
//! and `-shm` files, copy the backup over the database file, start again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use callview_core::StoreError;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::{open_error, parse_target, schema, SqliteStore, Target};

/// How [`backup`] copies.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// Pages copied per step (default 1024: 4 MiB with 4 KiB pages).
    pub pages_per_step: i32,
    /// Pause between steps (default none: the source's snapshot is pinned,
    /// so pauses only lengthen the backup).
    pub pause: Duration,
    /// Whether an existing destination file may be replaced.
    pub overwrite: bool,
}

impl Default for BackupOptions {
    fn default() -> Self {
        Self {
            pages_per_step: 1024,
            pause: Duration::ZERO,
            overwrite: false,
        }
    }
}

/// What a backup copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupReport {
    /// The destination file.
    pub path: PathBuf,
    /// Pages copied.
    pub pages: u64,
    /// Size of the copy, in bytes.
    pub bytes: u64,
    /// Steps the copy took.
    pub steps: u64,
    /// Wall time, milliseconds.
    pub elapsed_ms: u64,
}

fn io_error(what: String, error: std::io::Error) -> StoreError {
    StoreError::backend(format!("{what}: {error}"), error)
}

fn sqlite_error(what: &str, label: &str, error: rusqlite::Error) -> StoreError {
    StoreError::backend(format!("{what} ({label}): {error}"), error)
}

/// Copies the database `source` (a `sqlite://` URL or a path) to `dest`,
/// consistently, while other connections and processes keep writing to it.
/// See the module documentation.
///
/// Fails for an in-memory database (use [`SqliteStore::backup_to`]), a
/// source that does not exist or is not a SQLite database, a destination
/// that exists (unless [`BackupOptions::overwrite`]) or is the source.
pub fn backup(
    source: &str,
    dest: &Path,
    options: &BackupOptions,
) -> Result<BackupReport, StoreError> {
    let path = match parse_target(source)? {
        Target::Memory => {
            return Err(StoreError::Invalid(
                "an in-memory database exists only inside its process: it cannot be backed up from another one".into(),
            ))
        }
        Target::File(path) => path,
    };
    let label = path.display().to_string();
    if !path.is_file() {
        return Err(StoreError::Backend {
            message: format!("cannot back up {label}: no such database file"),
            source: None,
        });
    }
    if let (Ok(a), Ok(b)) = (path.canonicalize(), dest.canonicalize()) {
        if a == b {
            return Err(StoreError::Invalid(format!(
                "the backup {} is the database itself",
                dest.display()
            )));
        }
    }
    // No CREATE: a missing file is an error, not a new empty database.
    // Read-write so that a WAL database opens whatever its -shm file; the
    // connection never writes (query_only).
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&path, flags).map_err(|e| open_error(&label, e))?;
    schema::configure_common(&conn).map_err(|e| open_error(&label, e))?;
    conn.execute_batch("PRAGMA query_only = ON;")
        .map_err(|e| open_error(&label, e))?;
    backup_from(&conn, &label, dest, options)
}

impl SqliteStore {
    /// [`backup`] of this store's database to `dest` (an in-memory database
    /// too), on tokio's blocking pool. A file database is read through a
    /// connection of its own: this store's writes go on meanwhile.
    pub async fn backup_to(
        &self,
        dest: &Path,
        options: &BackupOptions,
    ) -> Result<BackupReport, StoreError> {
        let store = self.clone();
        let dest = dest.to_owned();
        let options = options.clone();
        tokio::task::spawn_blocking(move || match store.path() {
            Some(path) => backup(&path.display().to_string(), &dest, &options),
            None => {
                // The in-memory database's one connection; its writes wait.
                let conn = store.inner.writer.blocking_lock();
                backup_from(&conn, &store.inner.label, &dest, &options)
            }
        })
        .await
        .map_err(|e| StoreError::backend("running the backup", e))?
    }
}

/// The temporary file a backup to `dest` is written to.
fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".to_owned());
    dest.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

fn backup_from(
    source: &Connection,
    label: &str,
    dest: &Path,
    options: &BackupOptions,
) -> Result<BackupReport, StoreError> {
    let started = Instant::now();
    if dest.is_dir() {
        return Err(StoreError::Invalid(format!(
            "the backup destination {} is a directory; name a file",
            dest.display()
        )));
    }
    if dest.exists() && !options.overwrite {
        return Err(StoreError::Invalid(format!(
            "{} exists; choose another name or allow overwriting it",
            dest.display()
        )));
    }
    let partial = partial_path(dest);
    let _ = std::fs::remove_file(&partial);
    let result = copy(source, label, &partial, options).and_then(|(pages, steps)| {
        finish(&partial, dest).map(|bytes| BackupReport {
            path: dest.to_owned(),
            pages,
            bytes,
            steps,
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
    });
    if result.is_err() {
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let mut name = partial.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
    }
    result
}

/// Copies `source` into the new file `partial`, inside one read
/// transaction of `source`. Returns the pages and steps.
fn copy(
    source: &Connection,
    label: &str,
    partial: &Path,
    options: &BackupOptions,
) -> Result<(u64, u64), StoreError> {
    let partial_label = partial.display().to_string();
    let mut dest = Connection::open(partial).map_err(|e| open_error(&partial_label, e))?;
    // The snapshot every step reads: the read transaction starts at the
    // first read and lasts until the copy is complete.
    source
        .execute_batch("BEGIN DEFERRED; SELECT count(*) FROM sqlite_schema;")
        .map_err(|e| open_error(label, e))?;
    let copied = (|| -> Result<(u64, u64), StoreError> {
        let backup = Backup::new(source, &mut dest)
            .map_err(|e| sqlite_error("starting the backup", &partial_label, e))?;
        let mut steps = 0u64;
        loop {
            steps += 1;
            match backup
                .step(options.pages_per_step.max(1))
                .map_err(|e| sqlite_error("copying pages", &partial_label, e))?
            {
                StepResult::Done => break,
                StepResult::More => {
                    if !options.pause.is_zero() {
                        std::thread::sleep(options.pause);
                    }
                }
                // Locks not available right now: try again shortly.
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let pages = backup.progress().pagecount.max(0) as u64;
        Ok((pages, steps))
    })();
    let _ = source.execute_batch("COMMIT");
    let copied = copied?;
    // A single file: no WAL to carry along with the copy.
    let mode: String = dest
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(|e| sqlite_error("finishing the copy", &partial_label, e))?;
    if !mode.eq_ignore_ascii_case("delete") {
        tracing::warn!(mode, "the backup kept its journal mode");
    }
    let check: String = dest
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| sqlite_error("checking the copy", &partial_label, e))?;
    if check != "ok" {
        return Err(StoreError::Backend {
            message: format!("the copy failed SQLite's check: {check}"),
            source: None,
        });
    }
    dest.close()
        .map_err(|(_, e)| sqlite_error("closing the copy", &partial_label, e))?;
    Ok(copied)
}

/// Makes the copy durable and renames it into place; returns its size.
fn finish(partial: &Path, dest: &Path) -> Result<u64, StoreError> {
    let file = std::fs::File::open(partial)
        .map_err(|e| io_error(format!("reopening {}", partial.display()), e))?;
    file.sync_all()
        .map_err(|e| io_error(format!("writing {} to disk", partial.display()), e))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    drop(file);
    std::fs::rename(partial, dest)
        .map_err(|e| io_error(format!("renaming the copy to {}", dest.display()), e))?;
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("calls.db");
        let copy = dir.path().join("copy.db");
        let options = BackupOptions::default();
        let e = backup("sqlite::memory:", &copy, &options).unwrap_err();
        assert!(e.to_string().contains("in-memory"), "{e}");
        let e = backup(&db.display().to_string(), &copy, &options).unwrap_err();
        assert!(e.to_string().contains("no such database file"), "{e}");
        assert!(!db.exists(), "a missing database is not created");

        drop(SqliteStore::open(&db.display().to_string()).unwrap());
        let e = backup(&db.display().to_string(), &db, &options).unwrap_err();
        assert!(e.to_string().contains("the database itself"), "{e}");
        let e = backup(&db.display().to_string(), dir.path(), &options).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        backup(&format!("sqlite://{}", db.display()), &copy, &options).unwrap();
        let e = backup(&db.display().to_string(), &copy, &options).unwrap_err();
        assert!(e.to_string().contains("exists"), "{e}");
        let again = BackupOptions {
            overwrite: true,
            ..BackupOptions::default()
        };
        backup(&db.display().to_string(), &copy, &again).unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        std::fs::write(
            dir.path().join("text.db"),
            "not a database at all, just text",
        )
        .unwrap();
        let e = backup(
            &dir.path().join("text.db").display().to_string(),
            &dir.path().join("x.db"),
            &options,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a SQLite database"), "{e}");
        assert!(!dir.path().join("x.db").exists());
    }
}
