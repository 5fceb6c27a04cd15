//! Online backups while a writer keeps ingesting: the copy is one
//! consistent state (a whole number of committed batches, counters exact),
//! and a restored copy is a working database.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use callview_core::sync::ingest_in;
use callview_core::testkit::{self, CallBuilder, COMPANY};
use callview_core::{Call, Store};
use callview_sqlite::backup::{backup, BackupOptions};
use callview_sqlite::SqliteStore;

const BATCH: u64 = 40;

/// Batch `n`: new calls from a few recurring customers (so conversations'
/// counters change from batch to batch), each second root forwarded to a leg.
fn batch(n: u64) -> Vec<Call> {
    let mut calls = Vec::new();
    for i in 0..BATCH {
        let k = n * BATCH + i;
        let root = testkit::sid(2 * k + 1);
        let start = testkit::at(k as i64);
        calls.push(
            CallBuilder::new(&root)
                .from(&format!("+1978844{:04}", 7000 + k % 37))
                .to(COMPANY)
                .direction("inbound")
                .status(if k % 5 == 0 { "no-answer" } else { "completed" })
                .start(start)
                .duration(if k % 5 == 0 { 0 } else { 30 + (k % 90) as u32 })
                .price("-0.0085")
                .build(),
        );
        if k % 2 == 0 {
            calls.push(
                CallBuilder::new(&testkit::sid(2 * k + 2))
                    .parent(&root)
                    .from(COMPANY)
                    .to("+17815550123")
                    .direction("outbound-dial")
                    .status("completed")
                    .start(start)
                    .duration(20)
                    .build(),
            );
        }
    }
    calls
}

async fn ingest(store: &dyn Store, n: u64) {
    let mut tx = store.begin_ingest().await.unwrap();
    ingest_in(tx.as_mut(), &testkit::rules(), batch(n))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// What a store that ingested batches `0..n` holds.
async fn reference(n: u64) -> testkit::StoreSnapshot {
    let store = SqliteStore::open_in_memory().unwrap();
    for i in 0..n {
        ingest(&store, i).await;
    }
    testkit::snapshot(&store).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_writing_is_one_consistent_state_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calls.db");
    let url = format!("sqlite://{}", db.display());
    let store = SqliteStore::open(&url).unwrap();
    for n in 0..10 {
        ingest(&store, n).await;
    }

    // A writer that keeps committing batches until told to stop.
    let committed = Arc::new(AtomicU64::new(10));
    let stop = Arc::new(AtomicU64::new(0));
    let writer = {
        let store = store.clone();
        let committed = Arc::clone(&committed);
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            while stop.load(Ordering::SeqCst) == 0 {
                let n = committed.load(Ordering::SeqCst);
                ingest(&store, n).await;
                committed.store(n + 1, Ordering::SeqCst);
            }
        })
    };
    // Let it get going, then copy a few pages at a time, slowly.
    while committed.load(Ordering::SeqCst) < 12 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before = committed.load(Ordering::SeqCst);
    let copy = dir.path().join("backup.db");
    let options = BackupOptions {
        pages_per_step: 4,
        pause: Duration::from_millis(10),
        ..BackupOptions::default()
    };
    let report = {
        let (url, copy) = (url.clone(), copy.clone());
        tokio::task::spawn_blocking(move || backup(&url, &copy, &options))
            .await
            .unwrap()
            .unwrap()
    };
    let after = committed.load(Ordering::SeqCst);
    stop.store(1, Ordering::SeqCst);
    writer.await.unwrap();
    assert!(
        after > before,
        "the writer committed during the backup ({before} → {after} batches)"
    );
    assert!(report.steps > 5, "{report:?}");
    assert!(report.bytes > 0 && report.pages > 0, "{report:?}");

    // The copy: exact counters, and exactly the state after a whole
    // number of batches, one committed while the backup ran.
    let copied = SqliteStore::open(&copy.display().to_string()).unwrap();
    testkit::assert_invariants(&copied).await;
    let calls = copied.counts().await.unwrap().calls;
    let per_batch = batch(0).len() as u64;
    assert_eq!(calls % per_batch, 0, "{calls} calls: part of a batch");
    let batches = calls / per_batch;
    assert!(
        (before - 1..=after).contains(&batches),
        "{batches} batches, the writer was at {before}..{after}"
    );
    let expected = reference(batches).await;
    assert_eq!(testkit::snapshot(&copied).await.unwrap(), expected);
    drop(copied);

    let written = committed.load(Ordering::SeqCst);
    assert!(written > batches);
    drop(store);

    // Restore as the README says: everything stopped, the -wal and -shm
    // files removed, the backup copied over the database.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::copy(&copy, &db).unwrap();
    let restored = SqliteStore::open(&url).unwrap();
    testkit::assert_invariants(&restored).await;
    assert_eq!(testkit::snapshot(&restored).await.unwrap(), expected);
    // It takes writes again, as if the later batches had never happened.
    for n in batches..batches + 3 {
        ingest(&restored, n).await;
    }
    testkit::assert_invariants(&restored).await;
    assert_eq!(
        testkit::snapshot(&restored).await.unwrap(),
        reference(batches + 3).await
    );
}

#[tokio::test]
async fn an_in_memory_store_backs_up_through_its_own_connection() {
    let store = SqliteStore::open_in_memory().unwrap();
    for n in 0..3 {
        ingest(&store, n).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("memory.db");
    store
        .backup_to(&copy, &BackupOptions::default())
        .await
        .unwrap();
    let copied = SqliteStore::open(&copy.display().to_string()).unwrap();
    testkit::assert_invariants(&copied).await;
    assert_eq!(
        testkit::snapshot(&copied).await.unwrap(),
        reference(3).await
    );
}
