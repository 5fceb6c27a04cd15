//! The store on a fresh database: schema, sync round trip, ordering,
//! order independence, updates.

mod common;

use std::sync::Arc;

use callview_core::endpoint::{ActualDirection, Normalizer, OwnedNumbers, PartyRules};
use callview_core::store::ConversationQuery;
use callview_core::{ConversationId, Store, StoreError, SyncEngine, SyncMode};
use callview_postgres::{testing, PostgresStore};
use chrono::{TimeZone, Utc};

use common::{rest_call, FakeTwilio, OWNED};

fn rules() -> PartyRules {
    let n = Normalizer::default();
    PartyRules::new(n, OwnedNumbers::from_raw(&n, [OWNED]))
}

fn since() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// table, column, type, length, nullable, default.
type ColumnInfo = (String, String, String, Option<i32>, String, Option<String>);

#[tokio::test]
async fn migrations_create_the_documented_schema_and_rerun_cleanly() {
    let store = testing::fresh_store().await;
    let columns: Vec<ColumnInfo> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, \
                character_maximum_length::int4, is_nullable::text, column_default::text \
         FROM information_schema.columns WHERE table_schema = 'public' \
           AND table_name IN ('contacts', 'conversations', 'messages', 'sync_cursors') \
         ORDER BY table_name, ordinal_position",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let show: Vec<String> = columns
        .iter()
        .map(|(t, c, ty, len, null, default)| {
            format!(
                "{t}.{c} {ty}{} {}{}",
                len.map(|l| format!("({l})")).unwrap_or_default(),
                if null == "NO" { "NOT NULL" } else { "NULL" },
                default
                    .as_ref()
                    .map(|d| format!(" DEFAULT {d}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let expected = [
        "contacts.id integer NOT NULL DEFAULT nextval('contacts_id_seq'::regclass)",
        "contacts.phone_number text NOT NULL",
        "contacts.formatted_number text NULL",
        "contacts.display_name text NULL",
        "contacts.metadata jsonb NULL DEFAULT '{}'::jsonb",
        "contacts.created_at timestamp without time zone NULL DEFAULT now()",
        "contacts.updated_at timestamp without time zone NULL DEFAULT now()",
        "contacts.company_name text NULL",
        "contacts.notes text NULL",
        "contacts.tags jsonb NOT NULL DEFAULT '[]'::jsonb",
        "contacts.edited_by text NULL",
        "contacts.edited_at timestamp without time zone NULL",
        "contacts.version integer NOT NULL DEFAULT 1",
        "conversations.id integer NOT NULL DEFAULT nextval('conversations_id_seq'::regclass)",
        "conversations.contact_id integer NULL",
        "conversations.external_id text NOT NULL",
        "conversations.subject text NULL",
        "conversations.status character varying(50) NULL DEFAULT 'active'::character varying",
        "conversations.last_message_at timestamp without time zone NULL",
        "conversations.metadata jsonb NULL DEFAULT '{}'::jsonb",
        "conversations.created_at timestamp without time zone NULL DEFAULT now()",
        "conversations.updated_at timestamp without time zone NULL DEFAULT now()",
        "messages.id integer NOT NULL DEFAULT nextval('messages_id_seq'::regclass)",
        "messages.conversation_id integer NULL",
        "messages.twilio_sid character varying(100) NOT NULL",
        "messages.direction character varying(50) NOT NULL",
        "messages.status character varying(50) NOT NULL",
        "messages.from_number text NOT NULL",
        "messages.to_number text NOT NULL",
        "messages.duration integer NULL",
        "messages.price numeric NULL",
        "messages.price_unit character varying(10) NULL",
        "messages.start_time timestamp without time zone NULL",
        "messages.end_time timestamp without time zone NULL",
        "messages.recording_url text NULL",
        "messages.parent_call_sid character varying(100) NULL",
        "messages.metadata jsonb NULL DEFAULT '{}'::jsonb",
        "messages.created_at timestamp without time zone NULL DEFAULT now()",
        "messages.root_call_sid character varying(100) NOT NULL",
        "messages.updated_at timestamp without time zone NULL DEFAULT now()",
        "messages.refresh_attempts integer NOT NULL DEFAULT 0",
        "messages.refresh_due_at timestamp without time zone NULL",
        "messages.unfollowed_at timestamp without time zone NULL",
        "messages.notes text NULL",
        "messages.tags jsonb NOT NULL DEFAULT '[]'::jsonb",
        "messages.edited_by text NULL",
        "messages.edited_at timestamp without time zone NULL",
        "messages.version integer NOT NULL DEFAULT 1",
        "messages.transcription_text text NULL",
        "sync_cursors.name character varying(100) NOT NULL",
        "sync_cursors.value text NOT NULL",
        "sync_cursors.updated_at timestamp without time zone NULL DEFAULT now()",
    ];
    assert_eq!(show, expected);

    let (precision, scale): (i32, i32) = sqlx::query_as(
        "SELECT numeric_precision::int4, numeric_scale::int4 FROM information_schema.columns \
         WHERE table_name = 'messages' AND column_name = 'price'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!((precision, scale), (10, 4));

    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' AND indexname LIKE 'idx_%' ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        indexes,
        [
            "idx_api_tokens_live_name",
            "idx_contacts_search",
            "idx_conversation_stats_interactions",
            "idx_conversation_stats_missed",
            "idx_conversations_activity",
            "idx_conversations_contact",
            "idx_conversations_external_id_text",
            "idx_interactions_conversation",
            "idx_interactions_slot",
            "idx_messages_annotated",
            "idx_messages_annotations_search",
            "idx_messages_conversation_recent",
            "idx_messages_parent",
            "idx_messages_recorded",
            "idx_messages_refresh",
            "idx_messages_root",
            "idx_messages_start_time",
            "idx_recordings_call",
            "idx_recordings_created",
            "idx_texts_thread",
            "idx_transcripts_call",
            "idx_transcripts_recording",
            "idx_transcripts_search",
        ]
    );
    // pg_trgm's operator class answers `=` too: a trigram index on a bare
    // column can be chosen for an equality lookup of that column (it was,
    // for the sync's `external_id = ANY($1)`: a minute per page). Trigram
    // indexes are on expressions, except transcripts' text, which nothing
    // looks up by equality.
    let trigram_on_columns: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_am a ON a.oid = c.relam \
         WHERE a.amname = 'gin' AND pg_get_indexdef(i.indexrelid) LIKE '%gin_trgm_ops%' \
           AND 0 <> ALL (i.indkey::int2[]) ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(trigram_on_columns, ["idx_transcripts_search"]);
    let triggers: Vec<String> =
        sqlx::query_scalar("SELECT tgname::text FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        triggers,
        [
            "conversation_count_delete",
            "conversation_count_insert",
            "conversation_count_truncate",
            "update_contacts_updated_at",
            "update_conversations_updated_at",
            "update_messages_updated_at",
            "update_sync_cursors_updated_at",
        ]
    );
    let uniques: Vec<String> = sqlx::query_scalar(
        "SELECT conname::text FROM pg_constraint WHERE contype IN ('u', 'f', 'p') \
         AND connamespace = 'public'::regnamespace AND conname NOT LIKE '\\_sqlx%' ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        uniques,
        [
            "api_tokens_pkey",
            "api_tokens_token_hash_key",
            "contacts_phone_number_key",
            "contacts_pkey",
            "conversation_count_pkey",
            "conversation_stats_pkey",
            "conversations_contact_id_fkey",
            "conversations_external_id_key",
            "conversations_pkey",
            "interactions_pkey",
            "messages_conversation_id_fkey",
            "messages_pkey",
            "messages_twilio_sid_key",
            "recordings_pkey",
            "stats_hours_pkey",
            "stats_slots_pkey",
            "sync_cursors_pkey",
            "texts_conversation_id_fkey",
            "texts_pkey",
            "texts_twilio_sid_key",
            "transcripts_pkey",
        ]
    );

    // Running the migrations again on the same database is a no-op.
    let url = store_url(&store).await;
    let again = PostgresStore::connect(&url).await.unwrap();
    again.health().await.unwrap();
}

/// The URL of a store's database (the test server has no password).
async fn store_url(store: &PostgresStore) -> String {
    let db: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let mut url = url::Url::parse(&testing::admin_url()).unwrap();
    url.set_path(&db);
    url.to_string()
}

fn calls() -> Vec<callview_core::Call> {
    vec![
        // An inbound call forwarded to a SIP dispatcher.
        rest_call(
            "CA01",
            None,
            "+19788447773",
            OWNED,
            "inbound",
            "completed",
            "Fri, 06 Feb 2026 15:17:05 +0000",
            Some(60),
        ),
        rest_call(
            "CA02",
            Some("CA01"),
            OWNED,
            "sip:dispatcher@acme.sip.twilio.com",
            "outbound-dial",
            "completed",
            "Fri, 06 Feb 2026 15:17:13 +0000",
            Some(40),
        ),
        // Another call from the same customer, later, missed.
        rest_call(
            "CA03",
            None,
            "(978) 844-7773",
            OWNED,
            "inbound",
            "no-answer",
            "Sat, 07 Feb 2026 09:00:00 +0000",
            Some(0),
        ),
        // An outbound call to another customer, still ringing.
        rest_call(
            "CA04",
            None,
            OWNED,
            "+442079460958",
            "outbound-api",
            "ringing",
            "Fri, 06 Feb 2026 12:00:00 +0000",
            None,
        ),
        // An anonymous caller.
        rest_call(
            "CA05",
            None,
            "anonymous",
            OWNED,
            "inbound",
            "busy",
            "Thu, 05 Feb 2026 08:00:00 +0000",
            Some(0),
        ),
        // The dispatcher calls a customer through the company number.
        rest_call(
            "CA06",
            None,
            "sip:dispatcher@acme.sip.twilio.com",
            OWNED,
            "inbound",
            "completed",
            "Sun, 08 Feb 2026 10:00:00 +0000",
            Some(90),
        ),
        rest_call(
            "CA07",
            Some("CA06"),
            OWNED,
            "+15085140320",
            "outbound-dial",
            "completed",
            "Sun, 08 Feb 2026 10:00:05 +0000",
            Some(80),
        ),
    ]
}

#[tokio::test]
async fn a_sync_round_trips_through_every_read() {
    let store = Arc::new(testing::fresh_store().await);
    let twilio = Arc::new(FakeTwilio::new(calls()));
    let engine = SyncEngine::new(twilio.clone(), store.clone(), rules()).with_page_size(3);
    let report = engine.run(SyncMode::Since(since()), None).await.unwrap();
    assert_eq!(report.inserted, 7, "{report:?}");

    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.contacts, counts.conversations, counts.calls),
        (4, 4, 7)
    );

    let page = store
        .list_conversations(&ConversationQuery::page(10, 0))
        .await
        .unwrap();
    assert_eq!(page.total, 4);
    let keys: Vec<&str> = page
        .conversations
        .iter()
        .map(|v| v.contact.phone_number.as_str())
        .collect();
    // Newest activity first.
    assert_eq!(
        keys,
        ["+15085140320", "+19788447773", "+442079460958", "anonymous"]
    );
    let customer = &page.conversations[1];
    assert_eq!(customer.conversation.external_id, "+1 (978) 844-7773");
    assert_eq!(
        customer.conversation.subject.as_deref(),
        Some("Calls with +1 (978) 844-7773")
    );
    assert_eq!(
        customer.contact.formatted_number.as_deref(),
        Some("+1 (978) 844-7773")
    );
    assert_eq!(customer.conversation.counters.total_calls, 2);
    assert_eq!(customer.conversation.counters.total_duration, 60);
    assert_eq!(
        customer
            .conversation
            .counters
            .last_root_sid
            .as_ref()
            .unwrap()
            .as_str(),
        "CA03"
    );
    assert_eq!(
        customer.conversation.counters.last_message_at,
        Some(Utc.with_ymd_and_hms(2026, 2, 7, 9, 0, 0).unwrap())
    );
    assert_eq!(
        customer
            .last_message
            .as_ref()
            .unwrap()
            .root
            .call
            .sid
            .as_str(),
        "CA03"
    );
    let dispatched = &page.conversations[0];
    assert_eq!(
        dispatched.conversation.counters.last_call_direction,
        Some(ActualDirection::Outbound)
    );
    let last = dispatched.last_message.as_ref().unwrap();
    assert_eq!(last.root.call.sid.as_str(), "CA06");
    assert_eq!(last.legs.len(), 1);

    // Pages.
    let second = store
        .list_conversations(&ConversationQuery::page(2, 2))
        .await
        .unwrap();
    assert_eq!(second.total, 4);
    assert_eq!(second.conversations, page.conversations[2..].to_vec());
    let beyond = store
        .list_conversations(&ConversationQuery::page(2, 10))
        .await
        .unwrap();
    assert_eq!((beyond.total, beyond.conversations.len()), (4, 0));

    // Interactions of one conversation, newest first, legs folded in.
    let messages = callview_core::testkit::all_messages(store.as_ref(), customer.conversation.id)
        .await
        .unwrap();
    let roots: Vec<&str> = messages.iter().map(|i| i.root.call.sid.as_str()).collect();
    assert_eq!(roots, ["CA03", "CA01"]);
    assert_eq!(
        messages[1].legs[0].call.to.as_deref(),
        Some("sip:dispatcher@acme.sip.twilio.com")
    );
    assert_eq!(messages[1].legs[0].root_sid.as_str(), "CA01");
    assert_eq!(
        store.conversation(customer.conversation.id).await.unwrap(),
        *customer
    );
    let rows = store
        .conversation_calls(customer.conversation.id)
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].call, calls()[0]);

    // Missing things.
    assert!(matches!(
        store.conversation(ConversationId(999_999)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.conversation_calls(ConversationId(1 << 40)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .messages(
                ConversationId(-1),
                &callview_core::store::MessageQuery::first(10)
            )
            .await,
        Err(StoreError::NotFound(_))
    ));

    // Unfinished calls, newest start, cursors, recordings.
    let unfinished = store
        .unfinished_calls(&callview_core::store::UnfinishedQuery::any(10))
        .await
        .unwrap();
    assert_eq!(
        unfinished
            .iter()
            .map(|c| c.call.sid.as_str())
            .collect::<Vec<_>>(),
        ["CA04"]
    );
    assert!(store.read_cursor("watermark").await.unwrap().is_some());
    assert_eq!(store.read_cursor("nope").await.unwrap(), None);
    store.write_cursor("x", "1").await.unwrap();
    store.write_cursor("x", "2").await.unwrap();
    assert_eq!(store.read_cursor("x").await.unwrap().as_deref(), Some("2"));
    let sid = callview_core::CallSid::new("CA01").unwrap();
    let tree = store.load_trees(std::slice::from_ref(&sid)).await.unwrap();
    assert_eq!(tree.len(), 2);

    // The ringing call completes and gets a price; a new sync updates it.
    let mut done = rest_call(
        "CA04",
        None,
        OWNED,
        "+442079460958",
        "outbound-api",
        "completed",
        "Fri, 06 Feb 2026 12:00:00 +0000",
        Some(125),
    );
    done.date_updated = Some(Utc.with_ymd_and_hms(2026, 2, 6, 12, 3, 0).unwrap());
    done.refresh_raw();
    twilio.put(done);
    let report = engine.run(SyncMode::Since(since()), None).await.unwrap();
    assert_eq!(
        (report.inserted, report.updated, report.unchanged),
        (0, 1, 6),
        "{report:?}"
    );
    assert!(store
        .unfinished_calls(&callview_core::store::UnfinishedQuery::any(10))
        .await
        .unwrap()
        .is_empty());
    let uk = store
        .list_conversations(&ConversationQuery::default())
        .await
        .unwrap()
        .conversations
        .into_iter()
        .find(|v| v.contact.phone_number == "+442079460958")
        .unwrap();
    assert_eq!(uk.conversation.counters.total_duration, 125);
    assert_eq!(uk.conversation.external_id, "+44 20 7946 0958");

    // Once more: nothing changes.
    let report = engine.run(SyncMode::Since(since()), None).await.unwrap();
    assert_eq!(
        (report.inserted, report.updated, report.unchanged),
        (0, 0, 7),
        "{report:?}"
    );
    assert_eq!(store.counts().await.unwrap().calls, 7);
}

#[tokio::test]
async fn a_parent_arriving_late_pulls_its_children_and_removes_empty_conversations() {
    let store = Arc::new(testing::fresh_store().await);
    let engine = SyncEngine::new(Arc::new(FakeTwilio::new(vec![])), store.clone(), rules());
    let rules = rules();
    let all = calls();

    // The legs first, as roots of their own conversations.
    engine
        .ingest(&rules, vec![all[1].clone(), all[6].clone()])
        .await
        .unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.contacts, counts.conversations, counts.calls),
        (2, 2, 2)
    );

    // Then everything, in reverse order.
    let mut rest = all.clone();
    rest.reverse();
    let stats = engine.ingest(&rules, rest).await.unwrap();
    assert_eq!(stats.inserted, 5);

    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.contacts, counts.conversations, counts.calls),
        (4, 4, 7)
    );
    let keys: Vec<String> = store
        .list_conversations(&ConversationQuery::default())
        .await
        .unwrap()
        .conversations
        .into_iter()
        .map(|v| v.contact.phone_number)
        .collect();
    assert!(!keys.iter().any(|k| k.starts_with("sip:")), "{keys:?}");

    // Same final state as syncing in one go into another database.
    let other = Arc::new(testing::fresh_store().await);
    let engine2 = SyncEngine::new(
        Arc::new(FakeTwilio::new(vec![])),
        other.clone(),
        rules.clone(),
    );
    engine2.ingest(&rules, all).await.unwrap();
    let summary = |p: callview_core::store::ConversationPage| {
        p.conversations
            .into_iter()
            .map(|v| {
                let mut c = v.conversation.counters;
                c.last_message_at = c.last_message_at.map(|t| t.with_timezone(&Utc));
                (v.contact.phone_number, v.conversation.external_id, c)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        summary(
            store
                .list_conversations(&ConversationQuery::default())
                .await
                .unwrap()
        ),
        summary(
            other
                .list_conversations(&ConversationQuery::default())
                .await
                .unwrap()
        )
    );
}

#[tokio::test]
async fn large_batches_are_applied_in_one_go() {
    let store = Arc::new(testing::fresh_store().await);
    let calls: Vec<_> = (0..1500)
        .map(|i| {
            let customer = format!("+1978555{:04}", i % 300);
            let start =
                Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(i);
            let mut call = rest_call(
                &format!("CA{i:032}"),
                None,
                &customer,
                OWNED,
                "inbound",
                "completed",
                &callview_core::call::format_rfc2822(&start),
                Some(10),
            );
            if i % 5 == 1 {
                call.parent_call_sid = callview_core::CallSid::new(format!("CA{:032}", i - 1));
                call.refresh_raw();
            }
            call
        })
        .collect();
    let engine = SyncEngine::new(Arc::new(FakeTwilio::new(calls)), store.clone(), rules());
    let report = engine.run(SyncMode::Since(since()), None).await.unwrap();
    assert_eq!(report.inserted, 1500);
    let counts = store.counts().await.unwrap();
    // Customers whose number is `i % 300` with `i % 5 == 1` only ever appear as legs.
    assert_eq!(
        (counts.contacts, counts.conversations, counts.calls),
        (240, 240, 1500)
    );
    let page = store
        .list_conversations(&ConversationQuery::page(1000, 0))
        .await
        .unwrap();
    let total: u64 = page
        .conversations
        .iter()
        .map(|v| v.conversation.counters.total_calls)
        .sum();
    assert_eq!(total, 1200);
}

#[tokio::test]
async fn pool_size_timeouts_and_time_zone_are_applied() {
    let store = testing::fresh_store().await;
    let url = store_url(&store).await;
    // A caller's own time zone option does not change how timestamps are stored.
    let url = format!("{url}?options=-c%20TimeZone%3DAmerica%2FNew_York");
    let options = callview_postgres::PostgresOptions::new(&url)
        .max_connections(3)
        .acquire_timeout(std::time::Duration::from_secs(4))
        .statement_timeout(Some(std::time::Duration::from_millis(1500)));
    let store = PostgresStore::connect_with(options).await.unwrap();
    assert_eq!(store.pool().options().get_max_connections(), 3);
    assert_eq!(
        store.pool().options().get_acquire_timeout(),
        std::time::Duration::from_secs(4)
    );
    let (timeout, zone): (String, String) =
        sqlx::query_as("SELECT current_setting('statement_timeout'), current_setting('TimeZone')")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!((timeout.as_str(), zone.as_str()), ("1500ms", "UTC"));
    let error = sqlx::query("SELECT pg_sleep(5)")
        .execute(store.pool())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("statement timeout"), "{error}");

    // Row timestamps (defaults, triggers) are UTC.
    store.write_cursor("probe", "1").await.unwrap();
    let written: chrono::NaiveDateTime =
        sqlx::query_scalar("SELECT updated_at FROM sync_cursors WHERE name = 'probe'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    let drift = (Utc::now() - written.and_utc()).num_seconds().abs();
    assert!(drift < 120, "updated_at {written} is not UTC");
}

#[tokio::test]
async fn a_display_form_taken_by_another_contact_gets_a_qualified_external_id() {
    let store = Arc::new(testing::fresh_store().await);
    sqlx::raw_sql(
        "INSERT INTO contacts (id, phone_number) VALUES (100, 'legacy-978');
         INSERT INTO conversations (contact_id, external_id) VALUES (100, '+1 (978) 844-7773');",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let engine = SyncEngine::new(Arc::new(FakeTwilio::new(calls())), store.clone(), rules());
    engine.run(SyncMode::Since(since()), None).await.unwrap();
    let page = store
        .list_conversations(&ConversationQuery::page(10, 0))
        .await
        .unwrap();
    let customer = page
        .conversations
        .iter()
        .find(|v| v.contact.phone_number == "+19788447773")
        .unwrap();
    assert_eq!(
        customer.conversation.external_id,
        "+1 (978) 844-7773 (+19788447773)"
    );
    assert_eq!(customer.conversation.counters.total_calls, 2);
    let legacy = page
        .conversations
        .iter()
        .find(|v| v.contact.phone_number == "legacy-978")
        .unwrap();
    assert_eq!(legacy.conversation.external_id, "+1 (978) 844-7773");
    assert!(legacy.last_message.is_none());
}

#[tokio::test]
async fn discard_drops_the_test_database() {
    let store = testing::fresh_store().await;
    let name: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(name.starts_with(testing::DATABASE_PREFIX));
    testing::discard(store).await;
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&testing::admin_url())
        .await
        .unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert!(!exists, "{name} should be gone");
}

/// A call record in Twilio's full REST form: its `uri` and
/// `subresource_uris` follow from the SIDs (under API version `api`).
fn full_record(sid: &str, api: &str) -> serde_json::Value {
    let account = "ACtest";
    let base = format!("/{api}/Accounts/{account}/Calls/{sid}");
    let mut record = rest_call(
        sid,
        None,
        "+16175006181",
        OWNED,
        "inbound",
        "completed",
        "Fri, 06 Feb 2026 15:17:13 +0000",
        Some(30),
    )
    .raw;
    record["uri"] = serde_json::json!(format!("{base}.json"));
    record["subresource_uris"] = serde_json::json!({
        "notifications": format!("{base}/Notifications.json"),
        "recordings": format!("{base}/Recordings.json"),
        "user_defined_messages": format!("{base}/UserDefinedMessages.json"),
        "feedback_summaries": format!("/{api}/Accounts/{account}/Calls/FeedbackSummary.json"),
    });
    record
}

/// [`full_record`] with every sub-resource Twilio sends today.
fn standard_record(sid: &str) -> serde_json::Value {
    use callview_core::raw_uris::{subresource_uri, STANDARD_KEYS};
    let mut record = full_record(sid, "2010-04-01");
    let account = record["account_sid"].as_str().unwrap().to_owned();
    record["subresource_uris"] = STANDARD_KEYS
        .iter()
        .map(|k| {
            (
                k.to_string(),
                serde_json::json!(subresource_uri(&account, sid, k)),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    record
}

/// The stored `metadata` of call `sid`.
async fn metadata_of(pool: sqlx::PgPool, sid: &str) -> serde_json::Value {
    sqlx::query_scalar("SELECT metadata FROM messages WHERE twilio_sid = $1")
        .bind(sid)
        .fetch_one(&pool)
        .await
        .unwrap()
}

/// Migration 0011 converts rows written before it (whole records) in place:
/// the derivable URIs leave the stored record, the rest stays whole, and
/// every record reads back as Twilio sent it.
#[tokio::test]
async fn lean_rows_migration_converts_existing_rows_in_place() {
    let url = testing::fresh_database_url().await;
    let records = [
        full_record("CA1", "2010-04-01"),
        full_record("CA2", "2099-01-01"),
        standard_record("CA3"),
    ];
    let calls: Vec<callview_core::Call> = records
        .iter()
        .map(|r| callview_core::Call::from_json(r).unwrap())
        .collect();
    let store = Arc::new(PostgresStore::connect(&url).await.unwrap());
    SyncEngine::new(
        Arc::new(FakeTwilio::new(calls.clone())),
        store.clone(),
        rules(),
    )
    .run(SyncMode::Since(since()), None)
    .await
    .unwrap();
    let stored = |sid: &'static str| metadata_of(store.pool().clone(), sid);
    let lean = stored("CA1").await;
    assert!(lean["raw"].get("uri").is_none(), "{lean}");
    let mut keys: Vec<&str> = lean["raw_uris"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "feedback_summaries",
            "notifications",
            "recordings",
            "user_defined_messages"
        ]
    );
    assert!(stored("CA2").await["raw"].get("uri").is_some());

    // Back to the form of a database older than 0011.
    for (sid, record) in ["CA1", "CA2", "CA3"].iter().zip(&records) {
        sqlx::query(
            "UPDATE messages SET metadata = jsonb_set(metadata, '{raw}', $2) - 'raw_uris' \
             WHERE twilio_sid = $1",
        )
        .bind(sid)
        .bind(record)
        .execute(store.pool())
        .await
        .unwrap();
    }
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 11")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(stored("CA1").await["raw"], records[0]);
    store.close().await;

    let store = PostgresStore::connect(&url).await.unwrap();
    let stored = |sid: &'static str| metadata_of(store.pool().clone(), sid);
    assert_eq!(
        stored("CA1").await,
        lean,
        "converted in place as a new write stores it"
    );
    assert_eq!(
        stored("CA3").await["raw_uris"],
        serde_json::json!("standard")
    );
    let kept = stored("CA2").await;
    assert_eq!(kept["raw"], records[1]);
    assert!(kept.get("raw_uris").is_none());
    let trees = store
        .load_trees(&[
            callview_core::CallSid::new("CA1").unwrap(),
            callview_core::CallSid::new("CA2").unwrap(),
            callview_core::CallSid::new("CA3").unwrap(),
        ])
        .await
        .unwrap();
    assert_eq!(trees.len(), 3);
    for row in trees {
        let i = usize::from(row.call.sid.as_str()[2..].parse::<u8>().unwrap() - 1);
        assert_eq!(row.call.raw, records[i]);
        assert_eq!(row.call, calls[i]);
    }
    testing::discard(store).await;
}

/// Without the privilege to create pg_trgm (a user of an existing database
/// who may not create objects in it), migration 12 goes on without the
/// trigram indexes and search still finds what it should.
#[tokio::test]
async fn search_works_without_the_trigram_extension() {
    let url = testing::fresh_database_url().await;
    let mut parsed = url::Url::parse(&url).unwrap();
    let database = parsed.path().trim_start_matches('/').to_owned();
    let role = format!("{database}_user");
    // Migrated first by the administrator, as an existing database is.
    PostgresStore::connect(&url).await.unwrap().close().await;
    // A role that may create tables in `public` but not extensions (no
    // CREATE on the database); pg_trgm is not there yet.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    for sql in [
        // (with its indexes)
        "DROP EXTENSION IF EXISTS pg_trgm CASCADE".to_owned(),
        format!("CREATE ROLE \"{role}\" LOGIN"),
        format!("REVOKE CREATE ON DATABASE \"{database}\" FROM PUBLIC"),
        format!("GRANT ALL ON SCHEMA public TO \"{role}\""),
        format!("GRANT ALL ON ALL TABLES IN SCHEMA public TO \"{role}\""),
        format!("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO \"{role}\""),
        // Migrations 12 and 13 create trigram indexes: both run again.
        "DELETE FROM _sqlx_migrations WHERE version IN (12, 13)".to_owned(),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    // Tables created from now on by the role are its own; the ones before
    // belong to postgres: let the role own them, as it would its database.
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    for table in tables {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE public.\"{table}\" OWNER TO \"{role}\""
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    parsed.set_username(&role).unwrap();
    let store = PostgresStore::connect(parsed.as_str()).await.unwrap();
    let extension: Option<String> =
        sqlx::query_scalar("SELECT extname::text FROM pg_extension WHERE extname = 'pg_trgm'")
            .fetch_optional(store.pool())
            .await
            .unwrap();
    assert_eq!(extension, None, "the role could not create it");
    let trigram_indexes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_indexes WHERE indexdef LIKE '%gin_trgm_ops%'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(trigram_indexes, 0);

    let engine = SyncEngine::new(
        Arc::new(FakeTwilio::new(vec![rest_call(
            "CA1",
            None,
            "+16175006181",
            OWNED,
            "inbound",
            "completed",
            "Fri, 06 Feb 2026 15:17:13 +0000",
            Some(30),
        )])),
        Arc::new(store),
        rules(),
    );
    engine.run(SyncMode::Since(since()), None).await.unwrap();
    let store = engine.store();
    let search = |text: &str| {
        ConversationQuery::page(20, 0).with_search(callview_core::store::Search::new(
            text,
            &Normalizer::default(),
        ))
    };
    let found = store.list_conversations(&search("7500618")).await.unwrap();
    assert_eq!(found.total, 1);
    let none = store.list_conversations(&search("999999")).await.unwrap();
    assert_eq!(none.total, 0);
    drop(engine);
    for sql in [
        format!("REASSIGN OWNED BY \"{role}\" TO CURRENT_USER"),
        format!("DROP OWNED BY \"{role}\""),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    // The role's pool may still be closing: dropping the role waits for it.
    for _ in 0..50 {
        let dropped = sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE \"{role}\"")))
            .execute(&mut conn)
            .await;
        if dropped.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
