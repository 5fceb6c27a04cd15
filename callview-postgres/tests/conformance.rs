//! The generic store conformance suite (`callview_core::testkit`) on the
//! Postgres store: every test (and every property-test case) on a new,
//! migrated database of its own (`callview_postgres::testing::fresh_store`,
//! server from `CALLVIEW_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).

callview_core::conformance_tests!(callview_postgres::testing::fresh_store().await);
