//! The generic store conformance suite (`callview_core::testkit`) on the
//! SQLite store: every test on a new in-memory database.

callview_core::conformance_tests!(
    callview_sqlite::SqliteStore::open_in_memory().expect("an in-memory SQLite store")
);
