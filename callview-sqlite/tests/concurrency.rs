//! Several writers on one SQLite file: the generic concurrency suite
//! (`callview_core::testkit::concurrency`), each test on a new file opened
//! twice, as two processes would open it.

use std::sync::Arc;

use callview_core::testkit::StorePair;
use callview_sqlite::SqliteStore;

/// Two handles on one new database file (kept until the process ends).
fn pair() -> StorePair {
    let dir = tempfile::tempdir().expect("a temporary directory").keep();
    let path = dir.join("callview.db");
    let url = path.to_str().expect("a UTF-8 path");
    let a = SqliteStore::open(url).expect("first handle");
    let b = SqliteStore::open(url).expect("second handle");
    (Arc::new(a), Arc::new(b))
}

callview_core::concurrency_tests!(pair());

/// The first handle's sync lease lasts 200 ms: left without renewal while
/// its run waits for Twilio, it runs out and the second handle takes the
/// sync over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lease_ran_out_and_was_taken_over_stops() {
    let short_lease = || async {
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        let url = dir.join("callview.db");
        let url = url.to_str().expect("a UTF-8 path");
        let a = SqliteStore::open(url)
            .expect("first handle")
            .with_sync_lease(std::time::Duration::from_millis(200));
        let b = SqliteStore::open(url).expect("second handle");
        (
            Arc::new(a) as Arc<dyn callview_core::Store>,
            Arc::new(b) as Arc<dyn callview_core::Store>,
        )
    };
    callview_core::testkit::concurrency::lost_sync_lock_stops_the_run(short_lease, |_| async {
        // The lease was last renewed with the first page; make sure it ran out.
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    })
    .await;
}
