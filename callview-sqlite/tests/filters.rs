//! The filters of `list_conversations` in SQLite: search by number (any
//! format) or name, direction, status group, time range; the
//! `last_display_status` the status filter reads follows every change; the
//! migration fills it in for databases written before; the filters use
//! their indexes.

mod common;

use std::sync::Arc;

use callview_core::endpoint::ActualDirection;
use callview_core::store::{ConversationQuery, Search, StatusFilter};
use callview_core::testkit::{
    at, CallBuilder, Harness, AGENT_CELL, AGENT_SIP, ALICE, COMPANY, CUSTOMER, CUSTOMER2,
    UK_CUSTOMER,
};
use callview_core::{Call, Normalizer, Store};
use callview_sqlite::SqliteStore;

/// Six conversations, newest activity first:
/// * AGENT_CELL: inbound, still ringing (at 120 min);
/// * the internal one (ALICE -> AGENT_SIP): answered (100);
/// * UK_CUSTOMER: inbound, busy (90);
/// * CUSTOMER: answered at 0, then a missed inbound call (60);
/// * anonymous: inbound, no answer (45);
/// * CUSTOMER2: outbound, answered (30).
fn calls() -> Vec<Call> {
    vec![
        CallBuilder::new("CA01")
            .from(CUSTOMER)
            .to(COMPANY)
            .start(at(0))
            .duration(60)
            .build(),
        CallBuilder::new("CA02")
            .from(CUSTOMER)
            .to(COMPANY)
            .status("no-answer")
            .start(at(60))
            .duration(0)
            .build(),
        CallBuilder::new("CA03")
            .from(COMPANY)
            .to(CUSTOMER2)
            .direction("outbound-api")
            .start(at(30))
            .duration(95)
            .build(),
        CallBuilder::new("CA04")
            .from(UK_CUSTOMER)
            .to(COMPANY)
            .status("busy")
            .start(at(90))
            .duration(0)
            .build(),
        CallBuilder::new("CA05")
            .from(ALICE)
            .to(AGENT_SIP)
            .start(at(100))
            .duration(12)
            .build(),
        CallBuilder::new("CA06")
            .from("anonymous")
            .to(COMPANY)
            .status("no-answer")
            .start(at(45))
            .duration(0)
            .build(),
        ringing(),
    ]
}

fn ringing() -> Call {
    CallBuilder::new("CA07")
        .from(AGENT_CELL)
        .to(COMPANY)
        .status("ringing")
        .start(at(120))
        .no_duration()
        .updated(at(120))
        .build()
}

async fn loaded() -> (Harness, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let harness = Harness::new(store.clone());
    harness.ingest(calls()).await;
    (harness, store)
}

/// The keys (`contacts.phone_number`) listed for `query`, after checking
/// that the total agrees.
async fn keys(store: &SqliteStore, query: ConversationQuery) -> Vec<String> {
    let page = store.list_conversations(&query).await.unwrap();
    let keys: Vec<String> = page
        .conversations
        .iter()
        .map(|v| v.contact.phone_number.clone())
        .collect();
    if query.offset == 0 && (keys.len() as u64) < u64::from(query.limit) {
        assert_eq!(page.total, keys.len() as u64, "{query:?}");
    }
    keys
}

fn all() -> ConversationQuery {
    ConversationQuery::page(200, 0)
}

fn search(text: &str) -> ConversationQuery {
    all().with_search(Search::new(text, &Normalizer::default()))
}

#[tokio::test]
async fn numbers_are_found_however_they_are_written() {
    let (_h, store) = loaded().await;
    for typed in [
        "(978) 844-7773",
        "978.844.7773",
        "+1 978-844-7773",
        "19788447773",
        "9788447773",
        "844-77",
        " 978 844 7773 ",
    ] {
        assert_eq!(keys(&store, search(typed)).await, [CUSTOMER], "{typed:?}");
    }
    // A UK number written nationally or internationally.
    for typed in ["020 7946 0958", "+44 20 7946 0958", "+442079460958"] {
        assert_eq!(
            keys(&store, search(typed)).await,
            [UK_CUSTOMER],
            "{typed:?}"
        );
    }
    assert!(keys(&store, search("555 000 1234")).await.is_empty());
}

#[tokio::test]
async fn names_and_endpoints_match_as_text_ignoring_case() {
    let (_h, store) = loaded().await;
    assert_eq!(keys(&store, search("AGENT1")).await, [AGENT_SIP]);
    assert_eq!(keys(&store, search("anonymous")).await, ["anonymous"]);
    // The display form is searched too.
    assert_eq!(keys(&store, search("+1 (508)")).await, [CUSTOMER2]);
    // LIKE wildcards are matched literally.
    for typed in ["%", "_", "\\", "nobody"] {
        assert!(keys(&store, search(typed)).await.is_empty(), "{typed:?}");
    }
    // An empty search matches everything.
    assert_eq!(keys(&store, search("  ")).await.len(), 6);
}

#[tokio::test]
async fn direction_status_and_time_filters() {
    let (_h, store) = loaded().await;
    let dir = |d| all().with_direction(d);
    assert_eq!(
        keys(&store, dir(ActualDirection::Inbound)).await,
        [AGENT_CELL, UK_CUSTOMER, CUSTOMER, "anonymous"]
    );
    assert_eq!(
        keys(&store, dir(ActualDirection::Outbound)).await,
        [CUSTOMER2]
    );
    assert_eq!(
        keys(&store, dir(ActualDirection::Internal)).await,
        [AGENT_SIP]
    );

    let status = |s| all().with_status(s);
    assert_eq!(
        keys(&store, status(StatusFilter::Missed)).await,
        [UK_CUSTOMER, CUSTOMER, "anonymous"]
    );
    assert_eq!(
        keys(&store, status(StatusFilter::Answered)).await,
        [AGENT_SIP, CUSTOMER2]
    );
    assert_eq!(
        keys(&store, status(StatusFilter::InProgress)).await,
        [AGENT_CELL]
    );
    assert_eq!(
        keys(&store, status(StatusFilter::Busy)).await,
        [UK_CUSTOMER]
    );
    assert_eq!(
        keys(&store, status(StatusFilter::NoAnswer)).await,
        [CUSTOMER, "anonymous"]
    );
    assert!(keys(&store, status(StatusFilter::Failed)).await.is_empty());

    // since is inclusive, until exclusive, both on last_message_at.
    assert_eq!(
        keys(&store, all().with_since(at(60)).with_until(at(100))).await,
        [UK_CUSTOMER, CUSTOMER]
    );
    assert_eq!(
        keys(&store, all().with_since(at(121))).await,
        Vec::<String>::new()
    );

    // Everything together.
    let query = search("978")
        .with_direction(ActualDirection::Inbound)
        .with_status(StatusFilter::Missed)
        .with_since(at(0));
    assert_eq!(keys(&store, query).await, [CUSTOMER]);
}

#[tokio::test]
async fn pages_of_a_filtered_list_count_every_match() {
    let (_h, store) = loaded().await;
    let mut seen = Vec::new();
    for offset in 0..4 {
        let query = ConversationQuery::page(1, offset).with_status(StatusFilter::Missed);
        let page = store.list_conversations(&query).await.unwrap();
        assert_eq!(page.total, 3);
        seen.extend(
            page.conversations
                .into_iter()
                .map(|v| v.contact.phone_number),
        );
    }
    assert_eq!(seen, [UK_CUSTOMER, CUSTOMER, "anonymous"]);
}

#[tokio::test]
async fn the_status_filter_follows_calls_that_change() {
    let (h, store) = loaded().await;
    let in_progress = all().with_status(StatusFilter::InProgress);
    assert_eq!(keys(&store, in_progress.clone()).await, [AGENT_CELL]);

    // The ringing call is answered and ends.
    let done = CallBuilder::from_call(&ringing())
        .status("completed")
        .duration(30)
        .updated(at(122))
        .build();
    h.ingest(vec![done]).await;
    assert!(keys(&store, in_progress).await.is_empty());
    assert_eq!(
        keys(&store, all().with_status(StatusFilter::Answered)).await,
        [AGENT_CELL, AGENT_SIP, CUSTOMER2]
    );

    // A forwarded leg nobody answered: the interaction is missed, even
    // though its root completed.
    let root = CallBuilder::new("CA10")
        .from(CUSTOMER2)
        .to(COMPANY)
        .start(at(130))
        .duration(20)
        .build();
    let leg = CallBuilder::new("CA11")
        .parent("CA10")
        .from(COMPANY)
        .to(AGENT_SIP)
        .direction("outbound-dial")
        .status("no-answer")
        .start(at(130))
        .duration(0)
        .build();
    // The leg arrives first (stored as a root of its own), then its parent.
    h.ingest(vec![leg]).await;
    h.ingest(vec![root]).await;
    let missed = keys(&store, all().with_status(StatusFilter::Missed)).await;
    assert_eq!(missed[0], CUSTOMER2, "{missed:?}");
    // The leg's first conversation is back to its own newest call.
    assert_eq!(
        keys(&store, all().with_status(StatusFilter::Answered)).await,
        [AGENT_CELL, AGENT_SIP]
    );
}

#[tokio::test]
async fn the_migration_fills_in_the_status_of_conversations_stored_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let url = path.to_str().unwrap().to_owned();
    {
        let store = Arc::new(SqliteStore::open(&url).unwrap());
        Harness::new(store).ingest(calls()).await;
    }
    // Make it look like a database of schema version 1.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        common::undo_compact_records(&conn);
        conn.execute_batch(common::UNDO_MIGRATIONS_4_TO_7).unwrap();
        conn.execute_batch(
            "UPDATE conversations SET metadata = json_remove(metadata, '$.last_display_status');
             DROP INDEX idx_conversations_last_status;
             DROP INDEX idx_conversations_last_direction;
             DROP TRIGGER conversation_count_insert;
             DROP TRIGGER conversation_count_delete;
             DROP TABLE conversation_count;
             DELETE FROM schema_migrations WHERE version >= 2;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&url).unwrap();
    assert_eq!(
        keys(&store, all().with_status(StatusFilter::Missed)).await,
        [UK_CUSTOMER, CUSTOMER, "anonymous"]
    );
    // The statistics of the calls stored before are computed once, and
    // then equal what the rows say (the invariant check compares them).
    assert_eq!(
        callview_core::stats::ensure_built(&store).await.unwrap(),
        7,
        "one figure per interaction"
    );
    callview_core::testkit::assert_invariants(&store).await;
    assert_eq!(
        keys(&store, all().with_status(StatusFilter::InProgress)).await,
        [AGENT_CELL]
    );
}

#[tokio::test]
async fn status_and_direction_filters_read_their_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.db");
    let store = Arc::new(SqliteStore::open(path.to_str().unwrap()).unwrap());
    Harness::new(store).ingest(calls()).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let plan = |sql: &str| -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.join("\n")
    };
    // The expressions the store filters on.
    let status = plan(
        "SELECT count(*) FROM conversations cv \
         WHERE json_extract(cv.metadata, '$.last_display_status') IN ('busy', 'failed')",
    );
    assert!(status.contains("idx_conversations_last_status"), "{status}");
    let direction = plan(
        "SELECT count(*) FROM conversations cv \
         WHERE json_extract(cv.metadata, '$.last_call_direction') IN ('outbound')",
    );
    assert!(
        direction.contains("idx_conversations_last_direction"),
        "{direction}"
    );
}

#[tokio::test]
async fn filters_matching_many_or_few_conversations_page_in_list_order() {
    // Enough conversations that a status matches more than the store sorts
    // in memory (it then walks the list's order) and another fewer.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.db");
    drop(SqliteStore::open(path.to_str().unwrap()).unwrap());
    let statuses = ["completed", "no-answer", "busy", "ringing"];
    let mut expected: Vec<(String, i64, &str, &str)> = Vec::new();
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        for i in 0..12_000_i64 {
            // Every 7th shares its time with the previous one (ties by id).
            let minute = i - i64::from(i % 7 == 0 && i > 0);
            let at = format!(
                "2026-01-{:02}T{:02}:{:02}:00.000000Z",
                1 + minute / 1440,
                (minute / 60) % 24,
                minute % 60
            );
            let status = if i % 50 == 0 {
                "busy"
            } else {
                statuses[(i % 3) as usize]
            };
            let direction = if i % 2 == 0 { "inbound" } else { "outbound" };
            tx.execute(
                "INSERT INTO contacts (id, phone_number) VALUES (?1, ?2)",
                rusqlite::params![i + 1, format!("+1617{i:07}")],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO conversations (id, contact_id, external_id, last_message_at, metadata)
                 VALUES (?1, ?1, ?2, ?3, json_object('total_calls', 1,
                     'last_call_direction', ?4, 'last_display_status', ?5))",
                rusqlite::params![i + 1, format!("c{i}"), at, direction, status],
            )
            .unwrap();
            expected.push((at, i + 1, status, direction));
        }
        tx.commit().unwrap();
    }
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    let ids = |page: callview_core::store::ConversationPage| -> Vec<i64> {
        page.conversations
            .iter()
            .map(|v| v.conversation.id.0)
            .collect()
    };
    for (status, filter) in [
        (&["no-answer", "busy"][..], StatusFilter::Missed),
        (&["busy"][..], StatusFilter::Busy),
    ] {
        let matching: Vec<i64> = expected
            .iter()
            .filter(|e| status.contains(&e.2))
            .map(|e| e.1)
            .collect();
        for offset in [0_u64, 37, matching.len() as u64 - 10] {
            let query = ConversationQuery::page(25, offset).with_status(filter);
            let page = store.list_conversations(&query).await.unwrap();
            assert_eq!(page.total, matching.len() as u64, "{filter}");
            let start = offset as usize;
            let end = (start + 25).min(matching.len());
            assert_eq!(ids(page), matching[start..end], "{filter} at {offset}");
        }
    }
    let outbound_missed: Vec<i64> = expected
        .iter()
        .filter(|e| e.3 == "outbound" && ["no-answer", "busy"].contains(&e.2))
        .map(|e| e.1)
        .collect();
    let query = ConversationQuery::page(30, 5)
        .with_status(StatusFilter::Missed)
        .with_direction(ActualDirection::Outbound);
    let page = store.list_conversations(&query).await.unwrap();
    assert_eq!(page.total, outbound_missed.len() as u64);
    assert_eq!(ids(page), outbound_missed[5..35]);
}
