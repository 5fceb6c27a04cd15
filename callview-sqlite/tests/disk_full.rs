//! A full disk: a sync that runs out of space stops with a clear error, the
//! database keeps every page committed before, opens cleanly with exact
//! counters, and once there is room again the next sync completes to
//! exactly the state a clean sync gives.
//!
//! The disk is a 2 MiB tmpfs mounted for the test, so it needs root (as
//! the read-only file system test in `store.rs` does); CI runs as root.

use std::sync::Arc;

use callview_core::testkit::{
    at, check_invariants, rules, sid, snapshot, CallBuilder, Harness, MockTwilio, COMPANY,
};
use callview_core::{Call, Store, StoreError, SyncError, SyncMode};
use callview_sqlite::SqliteStore;

/// Runs `mount`/`umount`, panicking with the reason when it fails.
fn run(command: &str, args: &[&str]) {
    let output = std::process::Command::new(command)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{command} {args:?} failed (this test needs root to mount a tmpfs): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Unmounts when dropped, so a failing assertion leaves no mount behind.
struct Mount(String);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Enough calls (each from its own customer) to need several MiB.
fn calls(n: u64) -> Vec<Call> {
    (0..n)
        .map(|i| {
            CallBuilder::new(&sid(i + 1))
                .from(&format!("+1617555{:04}", i % 10_000))
                .to(COMPANY)
                .direction("inbound")
                .status("completed")
                .start(at(i as i64))
                .duration(30)
                .price("-0.0140")
                .build()
        })
        .collect()
}

fn since() -> SyncMode {
    SyncMode::Since(at(0) - chrono::Duration::days(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_sync_cleanly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mount_point = dir.path().join("small-disk");
    std::fs::create_dir(&mount_point).unwrap();
    let target = mount_point.to_str().unwrap().to_owned();
    run("mount", &["-t", "tmpfs", "-o", "size=2m", "tmpfs", &target]);
    let _mount = Mount(target.clone());
    let path = mount_point.join("calls.db");
    let url = path.to_str().unwrap().to_owned();

    let all = calls(6_000);
    let harness = |store: &Arc<dyn Store>| {
        let h = Harness::with(
            Arc::clone(store),
            MockTwilio::new().with_page_size(250),
            rules(),
        );
        h.mock.set_calls(all.clone());
        h
    };

    // 1. The sync runs out of space part-way and says so.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).unwrap());
    let h = harness(&store);
    let error = h
        .engine
        .run(since(), None)
        .await
        .expect_err("6 000 calls do not fit in 2 MiB");
    let message = error.to_string();
    assert!(
        matches!(error, SyncError::Store(StoreError::Backend { .. })),
        "{error:?}"
    );
    assert!(message.contains("full"), "not a clear error: {message}");
    assert!(
        message.contains(path.to_str().unwrap()),
        "the error names the database: {message}"
    );
    drop(h);
    drop(store);

    // 2. Still no room: the database opens, reads, and is consistent; the
    //    pages committed before the failure are there.
    let store = SqliteStore::open(&url).unwrap();
    let kept = store.counts().await.unwrap().calls;
    assert!(
        kept > 0,
        "the pages applied before the disk filled are kept"
    );
    assert!(kept < all.len() as u64, "{kept}");
    if let Err(v) = check_invariants(&store).await {
        panic!("after the failure: {v}");
    }
    drop(store);

    // 3. With room again, the next sync completes: exactly the clean state.
    run("mount", &["-o", "remount,size=64m", &target]);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).unwrap());
    harness(&store).sync(since()).await;
    assert_eq!(store.counts().await.unwrap().calls, all.len() as u64);

    let reference: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    harness(&reference).sync(since()).await;
    assert_eq!(
        snapshot(store.as_ref()).await.unwrap(),
        snapshot(reference.as_ref()).await.unwrap()
    );
}
