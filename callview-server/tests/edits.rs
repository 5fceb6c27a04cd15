//! The editing API on both stores: `GET`/`PATCH /api/contacts/{id}`,
//! `PATCH /api/messages/{id}`, `GET /api/tags`, search and the `tag`
//! filter over what people wrote, `ETag`/`If-Match`, validation naming the
//! field, the API token, and live `edited` events.

mod common;

use std::sync::Arc;

use callview_core::{PartyRules, SyncEngine};
use callview_server::{AppState, SyncRunner};
use common::*;
use futures::StreamExt;
use serde_json::{json, Value};

const TOKEN: &str = "edit-token";

struct Editing {
    server: TestServer,
    events: callview_server::EventHub,
}

async fn server(backend: Backend) -> Editing {
    let store = store(backend).await;
    let sim = sim(200, 5);
    load(&store, &sim).await;
    let runner = SyncRunner::new(SyncEngine::new(
        Arc::new(sim.clone()),
        Arc::clone(&store),
        PartyRules::default(),
    ));
    let state = AppState::new(store)
        .with_sync(runner)
        .with_api_token(Some(TOKEN));
    let events = state.events().clone();
    Editing {
        server: spawn(state).await,
        events,
    }
}

/// A request with the token, an optional `If-Match`; the status, the
/// `ETag` and the JSON body.
async fn send(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut request = server
        .http
        .request(method, server.url(path))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap();
    (status, etag, body)
}

async fn patch(
    server: &TestServer,
    path: &str,
    body: Value,
    if_match: Option<&str>,
) -> (u16, Option<String>, Value) {
    send(server, reqwest::Method::PATCH, path, Some(body), if_match).await
}

async fn first_conversation(server: &TestServer) -> Value {
    let (status, list) = server
        .get_with("/api/conversations?limit=1", Some(TOKEN))
        .await;
    assert_eq!(status, 200, "{list}");
    list["conversations"][0].clone()
}

async fn contacts_are_renamed_noted_and_tagged_with_etags(backend: Backend) {
    let Editing { server, events } = server(backend).await;
    let conversation = first_conversation(&server).await;
    let contact_id = conversation["contact"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/contacts/{contact_id}");

    let (status, etag, contact) = send(&server, reqwest::Method::GET, &path, None, None).await;
    assert_eq!(status, 200, "{contact}");
    assert_eq!(etag.as_deref(), Some("\"1\""));
    assert_eq!(contact["metadata"]["version"], 1);

    let mut stream = Box::pin(events.subscribe());
    let (status, etag, contact) = patch(
        &server,
        &path,
        json!({"name": "Mrs Alvarez", "company_name": "Alvarez Plumbing", "notes": "quoted $240", "tags": ["VIP", "quote"]}),
        Some("\"1\""),
    )
    .await;
    assert_eq!(status, 200, "{contact}");
    assert_eq!(etag.as_deref(), Some("\"2\""));
    assert_eq!(contact["name"], "Mrs Alvarez");
    assert_eq!(contact["metadata"]["company_name"], "Alvarez Plumbing");
    assert_eq!(contact["metadata"]["notes"], "quoted $240");
    assert_eq!(contact["metadata"]["tags"], json!(["VIP", "quote"]));
    assert_eq!(
        contact["handle"], conversation["contact"]["handle"],
        "the number stays"
    );
    // Other viewers are told.
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match stream.next().await {
                Some(e) if e.kind() == "hello" => continue,
                other => return other,
            }
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(event.kind(), "edited", "{event:?}");

    // The list shows the name; the number stays the conversation's external id.
    let cid = conversation["id"].as_str().unwrap();
    let (_, shown) = server
        .get_with(&format!("/api/conversations/{cid}"), Some(TOKEN))
        .await;
    assert_eq!(shown["contact"]["name"], "Mrs Alvarez");
    assert_eq!(shown["external_id"], conversation["external_id"]);

    // A stale If-Match changes nothing.
    let (status, _, body) = patch(
        &server,
        &path,
        json!({"name": "Someone else"}),
        Some("\"1\""),
    )
    .await;
    assert_eq!(status, 412, "{body}");
    assert_eq!(body["error"]["code"], "changed_elsewhere");
    let (_, _, now) = send(&server, reqwest::Method::GET, &path, None, None).await;
    assert_eq!(now["name"], "Mrs Alvarez");
    // Without If-Match the last write wins.
    let (status, etag, _) = patch(&server, &path, json!({"notes": null}), None).await;
    assert_eq!(status, 200);
    assert_eq!(etag.as_deref(), Some("\"3\""));

    // Search by what people wrote, and the tag filter.
    for q in ["alvarez", "PLUMBING", "vip"] {
        let (_, found) = server
            .get_with(&format!("/api/conversations?q={q}"), Some(TOKEN))
            .await;
        let ids: Vec<&str> = found["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&cid), "q={q}: {ids:?}");
    }
    let (_, tagged) = server
        .get_with("/api/conversations?tag=Vip", Some(TOKEN))
        .await;
    assert_eq!(tagged["total"], 1, "{tagged}");
    assert_eq!(tagged["conversations"][0]["id"], cid);
    // The contacts export carries the edit.
    let csv = server
        .http
        .get(server.url("/api/contacts.csv"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("phone,name,company,notes,tags\n"), "{csv}");
    assert!(
        csv.contains(",Mrs Alvarez,Alvarez Plumbing,,VIP; quote"),
        "{csv}"
    );
    let (status, tags) = server.get_with("/api/tags", Some(TOKEN)).await;
    assert_eq!(status, 200, "{tags}");
    assert_eq!(tags["total"], 2, "{tags}");
    assert!(tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["tag"] == "VIP" && t["contacts"] == 1 && t["calls"] == 0));
}

async fn calls_are_noted_and_tagged(backend: Backend) {
    let Editing { server, .. } = server(backend).await;
    let conversation = first_conversation(&server).await;
    let cid = conversation["id"].as_str().unwrap().to_owned();
    let message_id = conversation["last_message"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/messages/{message_id}");
    let (status, etag, message) = patch(
        &server,
        &path,
        json!({"notes": "call back about the gazebo", "tags": ["complaint"]}),
        Some("\"1\""),
    )
    .await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(etag.as_deref(), Some("\"2\""));
    assert_eq!(message["id"], message_id.as_str());
    assert_eq!(message["metadata"]["notes"], "call back about the gazebo");
    assert_eq!(message["metadata"]["tags"], json!(["complaint"]));
    let (_, messages) = server
        .get_with(&format!("/api/conversations/{cid}/messages"), Some(TOKEN))
        .await;
    assert_eq!(
        messages["messages"][0]["metadata"]["notes"],
        "call back about the gazebo"
    );
    let (_, found) = server
        .get_with("/api/conversations?q=gazebo", Some(TOKEN))
        .await;
    assert_eq!(found["total"], 1, "{found}");
    let (_, tagged) = server
        .get_with("/api/conversations?tag=COMPLAINT", Some(TOKEN))
        .await;
    assert_eq!(tagged["conversations"][0]["id"], cid.as_str());
    let (status, _, body) = patch(&server, &path, json!({"notes": "x"}), Some("\"1\"")).await;
    assert_eq!(status, 412, "{body}");

    // A leg's id, or an unknown one, is not a message.
    let (status, _, body) = patch(
        &server,
        "/api/messages/99999999",
        json!({"notes": "x"}),
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

async fn bad_edits_are_400_naming_the_field(backend: Backend) {
    let Editing { server, .. } = server(backend).await;
    let conversation = first_conversation(&server).await;
    let contact = format!(
        "/api/contacts/{}",
        conversation["contact"]["id"].as_str().unwrap()
    );
    let message = format!(
        "/api/messages/{}",
        conversation["last_message"]["id"].as_str().unwrap()
    );
    let long_tags: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let cases: Vec<(&str, Value, &str)> = vec![
        (&contact, json!({"nickname": "x"}), "nickname"),
        (&contact, json!({"name": 5}), "name"),
        (&contact, json!({"name": "x".repeat(201)}), "name"),
        (&contact, json!({"notes": "x".repeat(10_001)}), "notes"),
        (&contact, json!({"tags": long_tags}), "tags"),
        (&contact, json!({"tags": ["x".repeat(51)]}), "tags"),
        (
            &contact,
            json!({"company_name": "a\u{1b}[31m"}),
            "company_name",
        ),
        (&contact, json!(["name"]), "body"),
        (&message, json!({"name": "x"}), "name"),
        (&message, json!({"tags": "vip"}), "tags"),
    ];
    for (path, body, field) in cases {
        let (status, _, answer) = patch(&server, path, body.clone(), None).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        let text = answer["error"]["message"].as_str().unwrap();
        assert!(text.contains(&format!("`{field}`")), "{body}: {text}");
    }
    // Not JSON at all, a bad If-Match, an unknown or malformed id.
    let response = server
        .http
        .patch(server.url(&contact))
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (status, _, _) = patch(&server, &contact, json!({"notes": "x"}), Some("yesterday")).await;
    assert_eq!(status, 400);
    let (status, _, _) = patch(
        &server,
        &contact,
        json!({"notes": "x"}),
        Some("\"1\", \"2\""),
    )
    .await;
    assert_eq!(status, 400, "one ETag, not a list");
    // If-Match compares strongly: a weak tag, or one that is not ours, never matches.
    for tag in ["W/\"1\"", "\"abc\""] {
        let (status, _, body) = patch(&server, &contact, json!({"notes": "x"}), Some(tag)).await;
        assert_eq!(status, 412, "{tag}: {body}");
    }
    // An edit that changes nothing still checks the version.
    let (status, _, _) = patch(&server, &contact, json!({}), Some("\"7\"")).await;
    assert_eq!(status, 412);
    let (status, etag, _) = patch(&server, &contact, json!({}), Some("\"1\"")).await;
    assert_eq!((status, etag.as_deref()), (200, Some("\"1\"")));
    let (status, _, _) = patch(
        &server,
        "/api/contacts/99999999",
        json!({"notes": "x"}),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = patch(&server, "/api/contacts/abc", json!({"notes": "x"}), None).await;
    assert_eq!(status, 400);
    // Nothing was changed by any of them.
    let (_, _, after) = send(&server, reqwest::Method::GET, &contact, None, None).await;
    assert_eq!(after["metadata"]["version"], 1, "{after}");

    // Writes need the token like reads.
    let response = server
        .http
        .patch(server.url(&contact))
        .header("content-type", "application/json")
        .body(json!({"notes": "x"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

on_both_stores!(
    contacts_are_renamed_noted_and_tagged_with_etags,
    calls_are_noted_and_tagged,
    bad_edits_are_400_naming_the_field,
);
