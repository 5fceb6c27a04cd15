//! Paging the conversations list in SQLite at a size where the plan
//! matters: cursor pages seek `idx_conversations_activity` (no scan, no
//! sort), deep offsets step over the index only, following `next_cursor`
//! gives the list's order with and without filters, and the unfiltered
//! total is the count the triggers of migration 3 keep.

mod common;

use callview_core::store::{ConversationCursor, ConversationQuery, StatusFilter};
use callview_core::testkit::walk_by_cursor;
use callview_core::{ConversationId, Store};
use callview_sqlite::SqliteStore;
use chrono::{DateTime, Utc};

/// The columns the store selects (as `rows::CONVERSATION_COLUMNS`).
const COLUMNS: &str = "cv.id, cv.external_id, cv.subject, cv.status, cv.last_message_at, \
     cv.metadata, cv.created_at, cv.updated_at, ct.id, ct.phone_number, ct.formatted_number, \
     ct.display_name, ct.metadata, ct.created_at, ct.updated_at";

/// One conversation as written: `(last_message_at, id, display status)`.
type Row = (Option<String>, i64, &'static str);

/// A file database with `n` conversations written directly: every 7th
/// shares its time with the previous one, every 500th has no activity.
fn database(dir: &tempfile::TempDir, n: i64) -> (std::path::PathBuf, Vec<Row>) {
    let path = dir.path().join("paging.db");
    drop(SqliteStore::open(path.to_str().unwrap()).unwrap());
    let statuses = ["completed", "no-answer", "busy", "ringing"];
    let mut rows = Vec::new();
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    let tx = conn.transaction().unwrap();
    for i in 0..n {
        let minute = i - i64::from(i % 7 == 0 && i > 0);
        let at = (i % 500 != 0).then(|| {
            format!(
                "2026-01-{:02}T{:02}:{:02}:00.000000Z",
                1 + minute / 1440,
                (minute / 60) % 24,
                minute % 60
            )
        });
        let status = statuses[(i % 4) as usize];
        tx.execute(
            "INSERT INTO contacts (id, phone_number) VALUES (?1, ?2)",
            rusqlite::params![i + 1, format!("+1617{i:07}")],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO conversations (id, contact_id, external_id, last_message_at, metadata)
             VALUES (?1, ?1, ?2, ?3, json_object('total_calls', 1,
                 'last_call_direction', 'inbound', 'last_display_status', ?4))",
            rusqlite::params![i + 1, format!("c{i}"), at, status],
        )
        .unwrap();
        rows.push((at, i + 1, status));
    }
    tx.commit().unwrap();
    // The list's order: newest first, no activity last, ties by id.
    rows.sort_by(|a, b| match (&a.0, &b.0) {
        (Some(x), Some(y)) => y.cmp(x).then(b.1.cmp(&a.1)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => b.1.cmp(&a.1),
    });
    (path, rows)
}

fn plan(conn: &rusqlite::Connection, sql: &str) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    // Parameters (a limit) bound to nothing: the plan does not look at them.
    let unbound = vec![rusqlite::types::Null; stmt.parameter_count()];
    let rows: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(unbound), |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.join("\n")
}

fn ids(page: &[callview_core::store::ConversationView]) -> Vec<i64> {
    page.iter().map(|v| v.conversation.id.0).collect()
}

#[tokio::test]
async fn cursor_pages_seek_the_activity_index() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = database(&dir, 2_000);
    // Planned as the store plans them: with the planner stability guarantee
    // (`schema::configure_common`), the limit a parameter the plan does not
    // know.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .unwrap();
    let list = |condition: &str| {
        format!(
            "SELECT {COLUMNS} FROM conversations cv JOIN contacts ct ON ct.id = cv.contact_id
             WHERE {condition}
             ORDER BY cv.last_message_at DESC NULLS LAST, cv.id DESC LIMIT ?"
        )
    };
    // After a cursor with a time: a range of the index, read in order.
    let after = plan(
        &conn,
        &list("(cv.last_message_at, cv.id) < ('2026-01-01T12:00:00.000000Z', 700)"),
    );
    // After a cursor without one, and the rows without activity.
    let unstarted = plan(&conn, &list("cv.last_message_at IS NULL AND cv.id < 1500"));
    let nulls = plan(&conn, &list("cv.last_message_at IS NULL"));
    // (Either index on `last_message_at` serves the rows without one: both
    // hold them in id order, the rowid being the id.)
    for (name, plan) in [
        ("after", &after),
        ("unstarted", &unstarted),
        ("nulls", &nulls),
    ] {
        assert!(
            plan.contains("SEARCH cv USING INDEX idx_conversations_activity")
                || (name != "after"
                    && plan.contains("SEARCH cv USING INDEX idx_conversations_last_message")),
            "{name}: {plan}"
        );
        assert!(!plan.contains("SCAN"), "{name}: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{name}: {plan}");
    }
    // With a status filter matching many, the walk in list order (the
    // filter's expression written `+json_extract`) still starts at the cursor.
    let filtered = plan(
        &conn,
        &list(
            "+json_extract(cv.metadata, '$.last_display_status') IN ('busy', 'no-answer') \
             AND (cv.last_message_at, cv.id) < ('2026-01-01T12:00:00.000000Z', 700)",
        ),
    );
    assert!(
        filtered.contains("SEARCH cv USING INDEX idx_conversations_activity"),
        "{filtered}"
    );
    // A deep offset steps over the covering index only.
    let deep = plan(
        &conn,
        &format!(
            "SELECT {COLUMNS} FROM conversations cv JOIN contacts ct ON ct.id = cv.contact_id
             WHERE cv.id IN (SELECT cv.id FROM conversations cv
                 ORDER BY cv.last_message_at DESC NULLS LAST, cv.id DESC LIMIT ? OFFSET ?)
             ORDER BY cv.last_message_at DESC NULLS LAST, cv.id DESC"
        ),
    );
    assert!(
        deep.contains("SCAN cv USING COVERING INDEX idx_conversations_activity"),
        "{deep}"
    );
    // The unfiltered total is read, not counted.
    let total = plan(&conn, "SELECT n FROM conversation_count WHERE id = 1");
    assert!(!total.contains("conversations"), "{total}");
}

#[tokio::test]
async fn cursor_walks_match_the_list_order_at_size() {
    let dir = tempfile::tempdir().unwrap();
    let (path, rows) = database(&dir, 12_000);
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    let expected: Vec<i64> = rows.iter().map(|r| r.1).collect();

    let walked = walk_by_cursor(&store, &ConversationQuery::page(200, 0))
        .await
        .unwrap();
    assert_eq!(ids(&walked), expected);

    // Filters matching many (walked in list order) and few (read through
    // their index and sorted).
    for (filter, statuses) in [
        (StatusFilter::Missed, &["no-answer", "busy"][..]),
        (StatusFilter::InProgress, &["ringing"][..]),
        (StatusFilter::Busy, &["busy"][..]),
    ] {
        let matching: Vec<i64> = rows
            .iter()
            .filter(|r| statuses.contains(&r.2))
            .map(|r| r.1)
            .collect();
        let query = ConversationQuery::page(97, 0).with_status(filter);
        let walked = walk_by_cursor(&store, &query).await.unwrap();
        assert_eq!(ids(&walked), matching, "{filter}");
    }
    let since = DateTime::parse_from_rfc3339("2026-01-03T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let recent: Vec<i64> = rows
        .iter()
        .filter(|r| r.0.as_deref() >= Some("2026-01-03T00:00:00.000000Z"))
        .map(|r| r.1)
        .collect();
    let walked = walk_by_cursor(&store, &ConversationQuery::page(150, 0).with_since(since))
        .await
        .unwrap();
    assert_eq!(ids(&walked), recent);

    // A cursor at half the list gives the page an offset gives there.
    let half = expected.len() / 2;
    let at = |r: &Row| -> Option<DateTime<Utc>> {
        r.0.as_deref()
            .map(|t| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc))
    };
    let cursor = ConversationCursor::new(at(&rows[half - 1]), ConversationId(rows[half - 1].1));
    let by_cursor = store
        .list_conversations(&ConversationQuery::page(20, 0).with_cursor(cursor))
        .await
        .unwrap();
    let by_offset = store
        .list_conversations(&ConversationQuery::page(20, half as u64))
        .await
        .unwrap();
    assert_eq!(ids(&by_cursor.conversations), ids(&by_offset.conversations));
    assert_eq!(ids(&by_cursor.conversations), expected[half..half + 20]);
    assert_eq!(by_cursor.next_cursor, by_offset.next_cursor);
    assert_eq!(by_cursor.total, 12_000);
}

#[tokio::test]
async fn the_unfiltered_total_follows_inserts_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = database(&dir, 300);
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    let total = |store: SqliteStore| async move {
        let page = store
            .list_conversations(&ConversationQuery::page(1, 0))
            .await
            .unwrap();
        (store, page.total)
    };
    let (store, n) = total(store).await;
    assert_eq!(n, 300);
    drop(store);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("DELETE FROM conversations WHERE id % 3 = 0", [])
            .unwrap();
        let stored: i64 = conn
            .query_row("SELECT n FROM conversation_count", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, 200);
    }
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    let (store, n) = total(store).await;
    assert_eq!(n, 200);
    drop(store);

    // A database written before migration 3 gets its count when opened.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        common::undo_compact_records(&conn);
        conn.execute_batch(common::UNDO_MIGRATIONS_4_TO_7).unwrap();
        conn.execute_batch(
            "DROP TRIGGER conversation_count_insert;
             DROP TRIGGER conversation_count_delete;
             DROP TABLE conversation_count;
             DELETE FROM schema_migrations WHERE version >= 3;
             DELETE FROM conversations WHERE id % 5 = 0;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    let (_, n) = total(store).await;
    assert_eq!(n, 160);
}
