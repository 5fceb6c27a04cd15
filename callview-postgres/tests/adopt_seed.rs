//! Adopting a database created by the seed's original application: the
//! documented schema made by hand, rows stored the way that application
//! stored them (display-format phone keys, no `metadata.raw`, no
//! `root_call_sid`, incremented `total_calls`), then the migrations, then a
//! sync of the same calls.

mod common;

use std::sync::Arc;

use callview_core::endpoint::{ActualDirection, Normalizer, OwnedNumbers, PartyRules};
use callview_core::store::ConversationQuery;
use callview_core::{Store, SyncEngine, SyncMode};
use callview_postgres::{testing, PostgresStore};
use chrono::{TimeZone, Utc};
use sqlx::{Connection, PgConnection, Row};

use common::{rest_call, FakeTwilio, OWNED};

/// The seed's schema as its original application created it.
const SEED_SCHEMA: &str = r#"
CREATE TABLE contacts (
    id SERIAL PRIMARY KEY,
    phone_number VARCHAR(20) UNIQUE NOT NULL,
    formatted_number VARCHAR(30),
    display_name VARCHAR(255),
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
CREATE TABLE conversations (
    id SERIAL PRIMARY KEY,
    contact_id INTEGER REFERENCES contacts(id),
    external_id VARCHAR(100) UNIQUE NOT NULL,
    subject VARCHAR(255),
    status VARCHAR(50) DEFAULT 'active',
    last_message_at TIMESTAMP,
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
CREATE TABLE messages (
    id SERIAL PRIMARY KEY,
    conversation_id INTEGER REFERENCES conversations(id),
    twilio_sid VARCHAR(100) UNIQUE NOT NULL,
    direction VARCHAR(50) NOT NULL,
    status VARCHAR(50) NOT NULL,
    from_number VARCHAR(20) NOT NULL,
    to_number VARCHAR(20) NOT NULL,
    duration INTEGER,
    price DECIMAL(10,4),
    price_unit VARCHAR(10),
    start_time TIMESTAMP,
    end_time TIMESTAMP,
    recording_url TEXT,
    parent_call_sid VARCHAR(100),
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX idx_contacts_phone ON contacts(phone_number);
CREATE INDEX idx_conversations_contact ON conversations(contact_id);
CREATE INDEX idx_conversations_last_message ON conversations(last_message_at DESC);
CREATE INDEX idx_messages_conversation ON messages(conversation_id);
CREATE INDEX idx_messages_start_time ON messages(start_time DESC);
CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ language 'plpgsql';
CREATE TRIGGER update_contacts_updated_at BEFORE UPDATE ON contacts
    FOR EACH ROW EXECUTE PROCEDURE update_updated_at_column();
CREATE TRIGGER update_conversations_updated_at BEFORE UPDATE ON conversations
    FOR EACH ROW EXECUTE PROCEDURE update_updated_at_column();
"#;

/// Rows as the original application wrote them.
const SEED_ROWS: &str = r#"
INSERT INTO contacts (id, phone_number, formatted_number, display_name, created_at, updated_at) VALUES
    (1, '+1 (978) 844-7773', '+1 (978) 844-7773', '+1 (978) 844-7773', '2026-02-06 15:17:06', '2026-02-06 15:17:06'),
    (2, '+1 (415) 555-1234', NULL, 'Bob', '2026-02-05 10:00:00', '2026-02-05 10:00:00'),
    (3, '+1 (212) 555-0000', '+1 (212) 555-0000', NULL, '2026-02-01 00:00:00', '2026-02-01 00:00:00'),
    (4, '+12125550000', '+1 (212) 555-0000', NULL, '2026-02-01 00:00:00', '2026-02-01 00:00:00');
SELECT setval('contacts_id_seq', 4);

INSERT INTO conversations (id, contact_id, external_id, subject, status, last_message_at, metadata, created_at, updated_at) VALUES
    (1, 1, '+1 (978) 844-7773', 'Calls with +1 (978) 844-7773', 'active', '2026-02-06 15:17:13',
     '{"total_calls": 2, "total_duration": 100, "last_call_direction": "outbound-dial"}',
     '2026-02-06 15:17:06', '2026-02-06 15:18:00'),
    (2, 2, '+1 (415) 555-1234', 'Calls with +1 (415) 555-1234', 'archived', '2026-02-05 10:00:00',
     '{"total_calls": "1"}', '2026-02-05 10:00:00', '2026-02-05 10:00:00');
SELECT setval('conversations_id_seq', 2);

INSERT INTO messages (id, conversation_id, twilio_sid, direction, status, from_number, to_number,
                      duration, price, price_unit, start_time, end_time, recording_url,
                      parent_call_sid, metadata, created_at) VALUES
    (1, 1, 'CAe4616d11d7f38afcfaf0bb73a0c55820', 'inbound', 'completed', '+19788447773', '+16175006181',
     60, -0.0085, 'USD', '2026-02-06 15:17:05', '2026-02-06 15:18:05', NULL, NULL,
     '{"answered_by": null, "queue_time": "0", "twilio_direction": "inbound", "twilio_status": "completed",
       "actual_direction": "inbound", "display_status": "completed", "merged_from_parent": false}',
     '2026-02-06 15:18:10'),
    (2, 1, 'CA5bef499f976fd46ea521f3da237abf27', 'outbound-dial', 'completed', '+16175006181', '+15085140320',
     40, -0.0140, 'USD', '2026-02-06 15:17:13', '2026-02-06 15:17:53', 'https://api.twilio.com/rec/RE1',
     'CAe4616d11d7f38afcfaf0bb73a0c55820',
     '{"answered_by": null, "queue_time": "0", "twilio_direction": "outbound-dial", "twilio_status": "completed",
       "actual_direction": "outbound", "display_status": "completed", "merged_from_parent": true}',
     '2026-02-06 15:18:11'),
    (3, 2, 'CA00000000000000000000000000000003', 'inbound', 'no-answer', '+14155551234', '+16175006181',
     0, NULL, NULL, '2026-02-05 10:00:00', NULL, NULL, NULL, NULL, '2026-02-05 10:01:00');
SELECT setval('messages_id_seq', 3);
"#;

const PARENT: &str = "CAe4616d11d7f38afcfaf0bb73a0c55820";
const CHILD: &str = "CA5bef499f976fd46ea521f3da237abf27";
const MISSED: &str = "CA00000000000000000000000000000003";

async fn seed_database() -> String {
    let url = testing::fresh_database_url().await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(SEED_SCHEMA).execute(&mut conn).await.unwrap();
    sqlx::raw_sql(SEED_ROWS).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    url
}

fn at(h: u32, m: u32, s: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 6, h, m, s).unwrap()
}

#[tokio::test]
async fn an_original_database_is_upgraded_in_place_and_reads_back() {
    let url = seed_database().await;
    let store = PostgresStore::connect(&url).await.unwrap();

    // Every row survived.
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.contacts, counts.conversations, counts.calls),
        (4, 2, 3)
    );
    assert!(testing_table_exists(&store, "_sqlx_migrations").await);

    // Phone keys in the seed's display format are canonical now; a value
    // whose canonical form already exists is left alone.
    let contacts: Vec<(i32, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT id, phone_number, formatted_number, display_name FROM contacts ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        contacts,
        vec![
            (
                1,
                "+19788447773".into(),
                Some("+1 (978) 844-7773".into()),
                Some("+1 (978) 844-7773".into())
            ),
            (
                2,
                "+14155551234".into(),
                Some("+1 (415) 555-1234".into()),
                Some("Bob".into())
            ),
            (
                3,
                "+1 (212) 555-0000".into(),
                Some("+1 (212) 555-0000".into()),
                None
            ),
            (
                4,
                "+12125550000".into(),
                Some("+1 (212) 555-0000".into()),
                None
            ),
        ]
    );

    // root_call_sid was backfilled from the parent chain; created_at kept;
    // updated_at starts at created_at.
    let roots: Vec<(String, String, chrono::NaiveDateTime, chrono::NaiveDateTime)> =
        sqlx::query_as(
            "SELECT twilio_sid, root_call_sid, created_at, updated_at FROM messages ORDER BY id",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(roots[0].0, PARENT);
    assert_eq!(roots[0].1, PARENT);
    assert_eq!(roots[1].1, PARENT);
    assert_eq!(roots[2].1, MISSED);
    for (_, _, created, updated) in &roots {
        assert_eq!(created, updated);
    }
    assert_eq!(roots[0].2.and_utc(), at(15, 18, 10));

    // The documented deviations are in place.
    let types: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text, is_nullable::text FROM information_schema.columns \
         WHERE table_name = 'messages' AND column_name IN ('from_number', 'to_number', 'root_call_sid', 'updated_at') \
         ORDER BY column_name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        types,
        vec![
            ("from_number".into(), "text".into(), "NO".into()),
            (
                "root_call_sid".into(),
                "character varying".into(),
                "NO".into()
            ),
            ("to_number".into(), "text".into(), "NO".into()),
            (
                "updated_at".into(),
                "timestamp without time zone".into(),
                "YES".into()
            ),
        ]
    );

    // The list, newest activity first, with the seed's counters as stored.
    let page = store
        .list_conversations(&ConversationQuery::default())
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    let ids: Vec<i64> = page
        .conversations
        .iter()
        .map(|v| v.conversation.id.0)
        .collect();
    assert_eq!(ids, vec![1, 2]);
    let first = &page.conversations[0];
    assert_eq!(first.contact.phone_number, "+19788447773");
    assert_eq!(first.conversation.external_id, "+1 (978) 844-7773");
    assert_eq!(first.conversation.counters.total_calls, 2);
    assert_eq!(first.conversation.counters.total_duration, 100);
    assert_eq!(
        first.conversation.counters.last_call_direction,
        Some(ActualDirection::Outbound)
    );
    assert_eq!(
        first.conversation.counters.last_message_at,
        Some(at(15, 17, 13))
    );
    assert_eq!(
        first
            .conversation
            .counters
            .last_root_sid
            .as_ref()
            .map(|s| s.as_str()),
        Some(PARENT)
    );
    let last = first.last_message.as_ref().expect("a last message");
    assert_eq!(last.root.call.sid.as_str(), PARENT);
    assert_eq!(last.legs.len(), 1);
    assert_eq!(last.legs[0].call.sid.as_str(), CHILD);
    assert_eq!(last.summary.talk_time, 40);
    assert_eq!(last.summary.wait_time, 20);
    assert_eq!(last.actual_direction, ActualDirection::Inbound);
    let second = &page.conversations[1];
    assert_eq!(second.conversation.status, "archived");
    assert_eq!(second.conversation.counters.total_calls, 1);
    assert_eq!(second.contact.display_name.as_deref(), Some("Bob"));

    // One conversation, and its interactions rebuilt from the columns.
    let view = store.conversation(first.conversation.id).await.unwrap();
    assert_eq!(view, *first);
    let messages = callview_core::testkit::all_messages(&store, first.conversation.id)
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    let root = &messages[0].root;
    assert_eq!(root.call.from.as_deref(), Some("+19788447773"));
    assert_eq!(root.call.to.as_deref(), Some(OWNED));
    assert_eq!(root.call.duration, Some(60));
    assert_eq!(root.call.price.unwrap().to_string(), "-0.0085");
    assert_eq!(root.call.price_unit.as_deref(), Some("USD"));
    assert_eq!(root.call.start_time, Some(at(15, 17, 5)));
    assert_eq!(root.call.end_time, Some(at(15, 18, 5)));
    assert_eq!(root.call.queue_time, Some(0));
    assert_eq!(root.call.status.as_str(), "completed");
    assert_eq!(root.call.direction.as_str(), "inbound");
    let leg = &messages[0].legs[0];
    assert_eq!(leg.call.parent_call_sid.as_ref().unwrap().as_str(), PARENT);
    assert_eq!(
        leg.recording_url.as_deref(),
        Some("https://api.twilio.com/rec/RE1")
    );
    assert!(leg.derived.merged_from_parent);
    assert_eq!(leg.derived.actual_direction, ActualDirection::Outbound);

    // A row with NULL metadata and NULL price still reads back.
    let missed = callview_core::testkit::all_messages(&store, second.conversation.id)
        .await
        .unwrap();
    assert_eq!(missed.len(), 1);
    assert_eq!(missed[0].summary.display_status, "no-answer");
    assert_eq!(
        missed[0].root.derived.actual_direction,
        ActualDirection::Inbound
    );
    assert!(missed[0].root.call.price.is_none());

    // The statistics of the adopted calls are computed once, on open (the
    // migration asked for it), and then equal what the rows say.
    assert_eq!(
        store
            .read_cursor(callview_core::stats::REBUILD_CURSOR)
            .await
            .unwrap()
            .as_deref(),
        Some("pending")
    );
    assert_eq!(
        callview_core::stats::ensure_built(&store).await.unwrap(),
        2,
        "two interactions: one with a leg, one missed"
    );
    let all = (i64::MIN / 8, i64::MAX / 8);
    let stats = store
        .stats(&callview_core::stats::StatsQuery {
            quarters: vec![all],
            period: all,
            top: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let missed: u64 = stats.top_by_calls.iter().map(|t| t.missed).sum();
    assert_eq!((stats.top_by_calls.len(), missed), (2, 1));
    let counted: i64 = stats
        .quarters
        .iter()
        .map(|r| r.counters.direction(ActualDirection::Inbound)[0])
        .sum();
    assert_eq!(counted, 2, "both interactions came in");
    assert_eq!(callview_core::stats::ensure_built(&store).await.unwrap(), 0);

    // Connecting again (the migrations are recorded) changes nothing.
    drop(store);
    let store = PostgresStore::connect(&url).await.unwrap();
    let again = store
        .list_conversations(&ConversationQuery::default())
        .await
        .unwrap();
    assert_eq!(again, page);
}

async fn testing_table_exists(store: &PostgresStore, name: &str) -> bool {
    sqlx::query("SELECT to_regclass($1) IS NOT NULL AS present")
        .bind(name)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get::<bool, _>("present")
}

#[tokio::test]
async fn a_sync_of_the_same_calls_lands_in_the_same_conversations() {
    let url = seed_database().await;
    let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let before = store
        .list_conversations(&ConversationQuery::default())
        .await
        .unwrap();

    let twilio = Arc::new(FakeTwilio::new(vec![
        rest_call(
            PARENT,
            None,
            "+19788447773",
            OWNED,
            "inbound",
            "completed",
            "Fri, 06 Feb 2026 15:17:05 +0000",
            Some(60),
        ),
        rest_call(
            CHILD,
            Some(PARENT),
            OWNED,
            "sip:+15085140320@acme.sip.twilio.com;transport=udp",
            "outbound-dial",
            "completed",
            "Fri, 06 Feb 2026 15:17:13 +0000",
            Some(40),
        ),
        rest_call(
            MISSED,
            None,
            "+14155551234",
            OWNED,
            "inbound",
            "no-answer",
            "Thu, 05 Feb 2026 10:00:00 +0000",
            Some(0),
        ),
    ]));
    let n = Normalizer::default();
    let rules = PartyRules::new(n, OwnedNumbers::from_raw(&n, [OWNED]));
    let engine = SyncEngine::new(twilio, store.clone(), rules);
    let since = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();

    let report = engine.run(SyncMode::Since(since), None).await.unwrap();
    assert_eq!(report.inserted, 0, "{report:?}");
    assert_eq!(report.updated, 3, "{report:?}");

    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.contacts, counts.conversations, counts.calls),
        (4, 2, 3)
    );
    let after = store
        .list_conversations(&ConversationQuery::default())
        .await
        .unwrap();
    let ids = |p: &callview_core::store::ConversationPage| {
        p.conversations
            .iter()
            .map(|v| {
                (
                    v.conversation.id,
                    v.contact.id,
                    v.conversation.external_id.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&after), ids(&before));

    // Counters are now recomputed from the rows; other metadata keys stay.
    let first = &after.conversations[0];
    assert_eq!(first.conversation.counters.total_calls, 1);
    assert_eq!(first.conversation.counters.total_duration, 60);
    assert_eq!(
        first.conversation.counters.last_call_direction,
        Some(ActualDirection::Inbound)
    );
    assert_eq!(first.conversation.status, "active");
    assert_eq!(after.conversations[1].conversation.status, "archived");

    // Rows now carry the raw record, and the SIP URI fits.
    let (to, has_raw, recording): (String, bool, Option<String>) = sqlx::query_as(
        "SELECT to_number, metadata ? 'raw', recording_url FROM messages WHERE twilio_sid = $1",
    )
    .bind(CHILD)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(to, "sip:+15085140320@acme.sip.twilio.com;transport=udp");
    assert!(has_raw);
    assert_eq!(recording.as_deref(), Some("https://api.twilio.com/rec/RE1"));
    let messages = callview_core::testkit::all_messages(store.as_ref(), first.conversation.id)
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].legs.len(), 1);
    assert_eq!(messages[0].root.call.price.unwrap().to_string(), "-0.01400");

    // Syncing again changes nothing.
    let report = engine.run(SyncMode::Since(since), None).await.unwrap();
    assert_eq!(
        (report.inserted, report.updated, report.unchanged),
        (0, 0, 3),
        "{report:?}"
    );
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.contacts, counts.conversations, counts.calls),
        (4, 2, 3)
    );
    assert_eq!(
        store
            .list_conversations(&ConversationQuery::default())
            .await
            .unwrap(),
        after
    );

    // People name the adopted contact and tag its call; another sync keeps both.
    let meta = callview_core::annotations::EditMeta {
        by: None,
        at: Utc::now(),
    };
    let contact = callview_core::annotations::ContactEdit::from_json(&serde_json::json!({
        "name": "Front desk", "tags": ["VIP"]
    }))
    .unwrap();
    let call =
        callview_core::annotations::CallEdit::from_json(&serde_json::json!({"notes": "adopted"}))
            .unwrap();
    let message_id = messages[0].root.id;
    let mut tx = store.begin_ingest().await.unwrap();
    tx.edit_contact(first.contact.id, &contact, Some(1), &meta)
        .await
        .unwrap();
    tx.edit_call(message_id, &call, Some(1), &meta)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    engine.run(SyncMode::Since(since), None).await.unwrap();
    let named = store.contact(first.contact.id).await.unwrap();
    assert_eq!(named.display_name.as_deref(), Some("Front desk"));
    assert_eq!(named.annotations.tags, ["VIP"]);
    let (_, message) = store.message(message_id).await.unwrap();
    assert_eq!(message.root.annotations.notes.as_deref(), Some("adopted"));
}
