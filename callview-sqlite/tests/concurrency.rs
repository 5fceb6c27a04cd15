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
