//! Paging the conversations list in PostgreSQL at a size where the plan
//! matters: cursor pages are index conditions on `idx_conversations_activity`
//! (no sequential scan, no sort), deep offsets are an index-only walk, and
//! the unfiltered total is the count the triggers of migration 4 keep,
//! without making concurrent writers wait.

use callview_core::store::{ConversationCursor, ConversationQuery, StatusFilter};
use callview_core::testkit::walk_by_cursor;
use callview_core::{ConversationId, Store};
use callview_postgres::{testing, PostgresStore};
use chrono::{DateTime, Utc};
use sqlx::Connection;

/// `n` conversations written directly: every 7th shares its time with the
/// previous one, every 500th has no activity; every 4th is busy.
async fn load(store: &PostgresStore, n: i64) {
    sqlx::query(
        "INSERT INTO contacts (id, phone_number) \
         SELECT i, '+1617' || lpad(i::text, 7, '0') FROM generate_series(1, $1) i",
    )
    .bind(n)
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO conversations (id, contact_id, external_id, last_message_at, metadata) \
         SELECT i, i, 'c' || i, \
                CASE WHEN i % 500 = 0 THEN NULL \
                     ELSE TIMESTAMP '2026-01-01' + make_interval(mins => (i - (i % 7 = 0)::int)::int) END, \
                jsonb_build_object('total_calls', 1, 'last_call_direction', 'inbound', \
                    'last_display_status', CASE WHEN i % 4 = 0 THEN 'busy' ELSE 'completed' END) \
         FROM generate_series(1, $1) i",
    )
    .bind(n)
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("SELECT setval('conversations_id_seq', $1)")
        .bind(n)
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("SELECT setval('contacts_id_seq', $1)")
        .bind(n)
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("VACUUM ANALYZE conversations")
        .execute(store.pool())
        .await
        .unwrap();
}

async fn plan(store: &PostgresStore, sql: &str) -> String {
    let rows: Vec<String> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN (COSTS OFF) {sql}")))
            .fetch_all(store.pool())
            .await
            .unwrap();
    rows.join("\n")
}

fn ids(page: &[callview_core::store::ConversationView]) -> Vec<i64> {
    page.iter().map(|v| v.conversation.id.0).collect()
}

#[tokio::test]
async fn cursor_pages_are_index_conditions() {
    let store = testing::fresh_store().await;
    load(&store, 20_000).await;
    let list = |condition: &str| {
        format!(
            "SELECT v.id, c.phone_number FROM conversations v \
             LEFT JOIN contacts c ON c.id = v.contact_id \
             WHERE {condition} \
             ORDER BY v.last_message_at DESC NULLS LAST, v.id DESC LIMIT 21"
        )
    };
    let after = plan(
        &store,
        &list("(v.last_message_at, v.id) < (TIMESTAMP '2026-01-05 12:00:00', 9000::int8)"),
    )
    .await;
    assert!(
        after.contains("Index Scan using idx_conversations_activity"),
        "{after}"
    );
    assert!(
        after.contains("Index Cond: (ROW(last_message_at, id) < ROW("),
        "{after}"
    );
    assert!(!after.contains("Seq Scan"), "{after}");
    assert!(!after.contains("Sort"), "{after}");
    // The rows without activity are an index condition too (the planner
    // may read the few there are through another index and sort them).
    let unstarted = plan(
        &store,
        &list("v.last_message_at IS NULL AND v.id < 9000::int8"),
    )
    .await;
    assert!(
        unstarted.contains("Index Cond: ((last_message_at IS NULL) AND (id < ")
            || unstarted.contains("Index Cond: (last_message_at IS NULL)"),
        "{unstarted}"
    );
    assert!(!unstarted.contains("Seq Scan"), "{unstarted}");
    // A deep offset walks the index only, then reads its page's rows.
    let deep = plan(
        &store,
        "SELECT v.id FROM conversations v LEFT JOIN contacts c ON c.id = v.contact_id \
         WHERE v.id IN (SELECT v.id FROM conversations v \
             ORDER BY v.last_message_at DESC NULLS LAST, v.id DESC LIMIT 21 OFFSET 10000) \
         ORDER BY v.last_message_at DESC NULLS LAST, v.id DESC",
    )
    .await;
    assert!(
        deep.contains("Index Only Scan using idx_conversations_activity"),
        "{deep}"
    );
    assert!(!deep.contains("Seq Scan"), "{deep}");

    // Through the store: the page after a cursor at half the list is the
    // page an offset gives there, and walks give the list's order.
    let all: Vec<(Option<chrono::NaiveDateTime>, i32)> = sqlx::query_as(
        "SELECT last_message_at, id FROM conversations \
         ORDER BY last_message_at DESC NULLS LAST, id DESC",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let half = all.len() / 2;
    let (at, id) = all[half - 1];
    let cursor = ConversationCursor::new(at.map(|t| t.and_utc()), ConversationId(i64::from(id)));
    let by_cursor = store
        .list_conversations(&ConversationQuery::page(20, 0).with_cursor(cursor))
        .await
        .unwrap();
    let by_offset = store
        .list_conversations(&ConversationQuery::page(20, half as u64))
        .await
        .unwrap();
    assert_eq!(ids(&by_cursor.conversations), ids(&by_offset.conversations));
    assert_eq!(by_cursor.next_cursor, by_offset.next_cursor);
    assert_eq!(by_cursor.total, 20_000);
    let expected: Vec<i64> = all.iter().map(|(_, id)| i64::from(*id)).collect();
    let walked = walk_by_cursor(&store, &ConversationQuery::page(200, 0))
        .await
        .unwrap();
    assert_eq!(ids(&walked), expected);
    let busy: Vec<i64> = expected.iter().copied().filter(|id| id % 4 == 0).collect();
    let walked = walk_by_cursor(
        &store,
        &ConversationQuery::page(150, 0).with_status(StatusFilter::Busy),
    )
    .await
    .unwrap();
    assert_eq!(ids(&walked), busy);
    testing::discard(store).await;
}

async fn total(store: &PostgresStore) -> u64 {
    store
        .list_conversations(&ConversationQuery::page(1, 0))
        .await
        .unwrap()
        .total
}

async fn counted(store: &PostgresStore) -> u64 {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM conversations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    n as u64
}

#[tokio::test]
async fn the_unfiltered_total_is_kept_without_blocking_writers() {
    let url = testing::fresh_database_url().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    load(&store, 300).await;
    assert_eq!(total(&store).await, 300);

    // Two transactions inserting and deleting conversations at once: the
    // second never waits for the first (a lock timeout would fail it).
    let mut first = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut second = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut t1 = first.begin().await.unwrap();
    let mut t2 = second.begin().await.unwrap();
    for (tx, from) in [(&mut t1, 301), (&mut t2, 401)] {
        sqlx::query("SET LOCAL lock_timeout = '2s'")
            .execute(&mut **tx)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO conversations (contact_id, external_id) \
             SELECT i % 300 + 1, 'new' || i FROM generate_series($1::int, $1::int + 49) i",
        )
        .bind(from)
        .execute(&mut **tx)
        .await
        .unwrap();
    }
    sqlx::query("DELETE FROM conversations WHERE id <= 10")
        .execute(&mut *t2)
        .await
        .unwrap();
    // Uncommitted work is not counted by readers.
    assert_eq!(total(&store).await, 300);
    t2.commit().await.unwrap();
    assert_eq!(total(&store).await, 340);
    sqlx::query("DELETE FROM conversations WHERE id BETWEEN 11 AND 15")
        .execute(&mut *t1)
        .await
        .unwrap();
    t1.commit().await.unwrap();
    assert_eq!(total(&store).await, 385);
    assert_eq!(counted(&store).await, 385);
    // The deltas are folded as they are written: the table stays small.
    for _ in 0..20 {
        sqlx::query("DELETE FROM conversations WHERE id = (SELECT max(id) FROM conversations)")
            .execute(store.pool())
            .await
            .unwrap();
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM conversation_count")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(rows <= 2, "{rows} rows");
    assert_eq!(total(&store).await, 365);
    assert_eq!(counted(&store).await, 365);
    // A filtered total is counted.
    let since = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let filtered = store
        .list_conversations(&ConversationQuery::page(1, 0).with_since(since))
        .await
        .unwrap();
    let active: i64 =
        sqlx::query_scalar("SELECT count(*) FROM conversations WHERE last_message_at IS NOT NULL")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(filtered.total, active as u64);
    first.close().await.unwrap();
    second.close().await.unwrap();
    testing::discard(store).await;
}
