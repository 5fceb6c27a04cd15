//! The filters of `GET /api/conversations` (`q`, `direction`, `status`,
//! `since`, `until`) on both stores: what they find, how they combine with
//! paging, that the status filter follows calls as they change, and that
//! bad values are answered like every other parameter.

mod common;

use std::sync::Arc;

use callview_core::testkit::{
    at, CallBuilder, Harness, AGENT_CELL, AGENT_SIP, ALICE, COMPANY, CUSTOMER, CUSTOMER2,
    UK_CUSTOMER,
};
use callview_core::Call;
use callview_server::AppState;
use common::*;
use serde_json::Value;

on_both_stores!(
    numbers_are_found_however_they_are_written,
    direction_status_and_time_filters_and_their_totals,
    the_status_filter_follows_calls_as_they_change,
    bad_filter_values_are_400_naming_the_parameter,
);

/// Six conversations, newest activity first:
/// AGENT_CELL (inbound, ringing, 120 min), AGENT_SIP (internal, answered,
/// 100), UK_CUSTOMER (inbound, busy, 90), CUSTOMER (answered at 0, missed
/// at 60), anonymous (inbound, no answer, 45), CUSTOMER2 (outbound,
/// answered, 30).
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

async fn served(backend: Backend) -> (TestServer, Harness) {
    let store = store(backend).await;
    let harness = Harness::new(Arc::clone(&store));
    harness.ingest(calls()).await;
    (spawn(AppState::new(store)).await, harness)
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The contact handles listed for a query string, after checking the
/// answer's shape and that `total` counts them.
async fn handles(server: &TestServer, query: &str) -> Vec<String> {
    let (status, body) = server
        .get(&format!("/api/conversations?limit=200&{query}"))
        .await;
    assert_eq!(status, 200, "{query}: {body}");
    let list = body["conversations"].as_array().unwrap();
    for c in list {
        assert_conversation(c);
    }
    assert_eq!(
        body["total"].as_u64().unwrap(),
        list.len() as u64,
        "{query}"
    );
    list.iter()
        .map(|c| c["contact"]["handle"].as_str().unwrap().to_owned())
        .collect()
}

async fn numbers_are_found_however_they_are_written(backend: Backend) {
    let (server, _h) = served(backend).await;
    for typed in [
        "(978) 844-7773",
        "978.844.7773",
        "+1 978-844-7773",
        "1 978 844 7773",
        "9788447773",
        "844-77",
    ] {
        assert_eq!(
            handles(&server, &format!("q={}", encode(typed))).await,
            [CUSTOMER],
            "{typed:?}"
        );
    }
    for typed in ["020 7946 0958", "+44 20 7946 0958"] {
        assert_eq!(
            handles(&server, &format!("q={}", encode(typed))).await,
            [UK_CUSTOMER],
            "{typed:?}"
        );
    }
    // Names and internal endpoints, ignoring case.
    assert_eq!(handles(&server, "q=AGENT1").await, [AGENT_SIP]);
    assert_eq!(handles(&server, "q=Anonymous").await, ["anonymous"]);
    // Wildcards are literal; nothing matches these.
    for typed in ["%", "_", "nobody", "555-0000"] {
        assert!(
            handles(&server, &format!("q={}", encode(typed)))
                .await
                .is_empty(),
            "{typed:?}"
        );
    }
    // An empty search is no search.
    assert_eq!(handles(&server, "q=").await.len(), 6);
    assert_eq!(handles(&server, "q=+++").await.len(), 6);
}

async fn direction_status_and_time_filters_and_their_totals(backend: Backend) {
    let (server, _h) = served(backend).await;
    assert_eq!(
        handles(&server, "direction=inbound").await,
        [AGENT_CELL, UK_CUSTOMER, CUSTOMER, "anonymous"]
    );
    assert_eq!(handles(&server, "direction=outbound").await, [CUSTOMER2]);
    assert_eq!(handles(&server, "direction=internal").await, [AGENT_SIP]);

    assert_eq!(
        handles(&server, "status=missed").await,
        [UK_CUSTOMER, CUSTOMER, "anonymous"]
    );
    assert_eq!(
        handles(&server, "status=answered").await,
        [AGENT_SIP, CUSTOMER2]
    );
    assert_eq!(
        handles(&server, "status=completed").await,
        [AGENT_SIP, CUSTOMER2]
    );
    assert_eq!(handles(&server, "status=in-progress").await, [AGENT_CELL]);
    assert_eq!(handles(&server, "status=busy").await, [UK_CUSTOMER]);
    assert_eq!(
        handles(&server, "status=no-answer").await,
        [CUSTOMER, "anonymous"]
    );
    assert!(handles(&server, "status=canceled").await.is_empty());

    // Every conversation the missed filter lists has a missed last call.
    let (_, body) = server
        .get("/api/conversations?status=missed&limit=200")
        .await;
    for c in body["conversations"].as_array().unwrap() {
        let display = c["last_message"]["metadata"]["display_status"]
            .as_str()
            .unwrap();
        assert!(
            ["no-answer", "busy", "failed", "canceled"].contains(&display),
            "{display}"
        );
    }

    // since (inclusive) and until (exclusive), as Unix ms or RFC 3339.
    let ms = |minutes| at(minutes).timestamp_millis();
    assert_eq!(
        handles(&server, &format!("since={}&until={}", ms(60), ms(100))).await,
        [UK_CUSTOMER, CUSTOMER]
    );
    let rfc = |minutes| encode(&at(minutes).to_rfc3339());
    assert_eq!(
        handles(&server, &format!("since={}&until={}", rfc(60), rfc(100))).await,
        [UK_CUSTOMER, CUSTOMER]
    );
    let offset = encode(
        &at(60)
            .with_timezone(&chrono::FixedOffset::west_opt(5 * 3600).unwrap())
            .to_rfc3339(),
    );
    assert_eq!(
        handles(&server, &format!("since={offset}")).await,
        [AGENT_CELL, AGENT_SIP, UK_CUSTOMER, CUSTOMER]
    );
    assert!(handles(&server, &format!("since={}", ms(121)))
        .await
        .is_empty());

    // All together.
    assert_eq!(
        handles(
            &server,
            &format!("q=978&direction=inbound&status=missed&since={}", ms(0))
        )
        .await,
        [CUSTOMER]
    );

    // Paging through a filtered list: the total is every match.
    let mut seen = Vec::new();
    for offset in 0..4 {
        let (status, body) = server
            .get(&format!(
                "/api/conversations?status=missed&limit=1&offset={offset}"
            ))
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["total"], 3);
        for c in body["conversations"].as_array().unwrap() {
            seen.push(c["contact"]["handle"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen, [UK_CUSTOMER, CUSTOMER, "anonymous"]);
}

async fn the_status_filter_follows_calls_as_they_change(backend: Backend) {
    let (server, h) = served(backend).await;
    assert_eq!(handles(&server, "status=in-progress").await, [AGENT_CELL]);

    // The ringing call is answered and ends.
    let done = CallBuilder::from_call(&ringing())
        .status("completed")
        .duration(30)
        .updated(at(122))
        .build();
    h.ingest(vec![done]).await;
    assert!(handles(&server, "status=in-progress").await.is_empty());
    assert_eq!(
        handles(&server, "status=answered").await,
        [AGENT_CELL, AGENT_SIP, CUSTOMER2]
    );

    // A forwarded leg nobody answered arrives before its parent: once the
    // parent is there, the interaction is missed (talk time 0) although
    // the parent call completed, and the leg's first conversation is back
    // to its own newest call.
    let leg = CallBuilder::new("CA11")
        .parent("CA10")
        .from(COMPANY)
        .to(AGENT_SIP)
        .direction("outbound-dial")
        .status("no-answer")
        .start(at(130))
        .duration(0)
        .build();
    let root = CallBuilder::new("CA10")
        .from(CUSTOMER2)
        .to(COMPANY)
        .start(at(130))
        .duration(20)
        .build();
    h.ingest(vec![leg]).await;
    h.ingest(vec![root]).await;
    assert_eq!(
        handles(&server, "status=missed").await,
        [CUSTOMER2, UK_CUSTOMER, CUSTOMER, "anonymous"]
    );
    assert_eq!(
        handles(&server, "status=answered").await,
        [AGENT_CELL, AGENT_SIP]
    );
    assert_eq!(
        handles(&server, "direction=inbound&status=missed&q=508").await,
        [CUSTOMER2]
    );
}

async fn bad_filter_values_are_400_naming_the_parameter(backend: Backend) {
    let (server, _h) = served(backend).await;
    let long = "9".repeat(101);
    let cases: Vec<(String, &str)> = vec![
        ("direction=sideways".into(), "direction"),
        ("direction=".into(), "direction"),
        ("direction=Inbound".into(), "direction"),
        ("status=lost".into(), "status"),
        ("status=".into(), "status"),
        ("since=yesterday".into(), "since"),
        ("since=".into(), "since"),
        ("until=2026-02-30T00:00:00Z".into(), "until"),
        ("until=99999999999999999999".into(), "until"),
        ("since=2026-02-06".into(), "since"),
        (format!("q={long}"), "q"),
        ("q=a%00b".into(), "q"),
        ("q=a&q=b".into(), "q"),
        ("status=missed&status=busy".into(), "status"),
        (
            "since=2026-02-07T00:00:00Z&until=2026-02-06T00:00:00Z".into(),
            "since",
        ),
    ];
    for (query, param) in cases {
        let (status, body) = server.get(&format!("/api/conversations?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(assert_error(&body), "invalid_parameter", "{query}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("`{param}`")),
            "{query}: {message}"
        );
    }
    // The allowed values are listed.
    let (_, body) = server.get("/api/conversations?status=lost").await;
    let message: &Value = &body["error"]["message"];
    assert!(message.as_str().unwrap().contains("missed"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_written_before_the_filters_is_filled_in_by_its_migration() {
    use callview_core::store::{ConversationQuery, StatusFilter};
    use callview_core::Store;

    let url = callview_postgres::testing::fresh_database_url().await;
    {
        let store: Arc<dyn Store> = Arc::new(
            callview_postgres::PostgresStore::connect(&url)
                .await
                .unwrap(),
        );
        Harness::new(store).ingest(calls()).await;
    }
    // Make it look like a database migrated before the filters existed.
    let store = callview_postgres::PostgresStore::connect(&url)
        .await
        .unwrap();
    sqlx::raw_sql(
        "UPDATE conversations SET metadata = metadata - 'last_display_status';
         DELETE FROM _sqlx_migrations WHERE description LIKE 'conversation filters%';",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let keys = |page: callview_core::store::ConversationPage| -> Vec<String> {
        page.conversations
            .into_iter()
            .map(|v| v.contact.phone_number)
            .collect()
    };
    let missed = ConversationQuery::page(50, 0).with_status(StatusFilter::Missed);
    assert!(keys(store.list_conversations(&missed).await.unwrap()).is_empty());
    drop(store);

    let store = callview_postgres::PostgresStore::connect(&url)
        .await
        .unwrap();
    assert_eq!(
        keys(store.list_conversations(&missed).await.unwrap()),
        [UK_CUSTOMER, CUSTOMER, "anonymous"]
    );
    let live = ConversationQuery::page(50, 0).with_status(StatusFilter::InProgress);
    assert_eq!(
        keys(store.list_conversations(&live).await.unwrap()),
        [AGENT_CELL]
    );
}
