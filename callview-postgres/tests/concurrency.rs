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
