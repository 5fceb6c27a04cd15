//! Several writers on one PostgreSQL database: the generic concurrency
//! suite (`callview_core::testkit::concurrency`), each test on a new
//! database reached through two separate pools, as two processes would.

use std::sync::Arc;

use callview_core::testkit::StorePair;
use callview_postgres::PostgresStore;

async fn pair() -> StorePair {
    let url = callview_postgres::testing::fresh_database_url().await;
    let a = PostgresStore::connect(&url).await.expect("first pool");
    let b = PostgresStore::connect(&url).await.expect("second pool");
    (Arc::new(a), Arc::new(b))
}

callview_core::concurrency_tests!(pair().await);

/// The session holding the first handle's advisory lock ends (as when its
/// connection drops); the second handle takes the sync over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lock_session_ended_stops() {
    use sqlx::Connection;
    let database = Arc::new(std::sync::Mutex::new(String::new()));
    let remember = Arc::clone(&database);
    let pair_here = move || {
        let remember = Arc::clone(&remember);
        async move {
            let url = callview_postgres::testing::fresh_database_url().await;
            *remember.lock().unwrap() = url.clone();
            let a = PostgresStore::connect(&url).await.expect("first pool");
            let b = PostgresStore::connect(&url).await.expect("second pool");
            (
                Arc::new(a) as Arc<dyn callview_core::Store>,
                Arc::new(b) as Arc<dyn callview_core::Store>,
            )
        }
    };
    let steal = |_| {
        let url = database.lock().unwrap().clone();
        async move {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
            let ended: Vec<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
                 JOIN pg_database d ON d.oid = l.database \
                 WHERE l.locktype = 'advisory' AND d.datname = current_database() \
                   AND l.objsubid = 1 AND l.classid::int8 = ($1 >> 32) \
                   AND l.objid::int8 = ($1 & 4294967295)",
            )
            .bind(callview_postgres::SYNC_LOCK_KEY)
            .fetch_all(&mut conn)
            .await
            .expect("ending the lock's session");
            assert_eq!(ended, [true], "one session held the sync lock");
        }
    };
    callview_core::testkit::concurrency::lost_sync_lock_stops_the_run(pair_here, steal).await;
}
