//! The OpenAPI document lists every route the router serves, and nothing else.

mod common;

use std::collections::BTreeSet;

use callview_server::{AppState, ROUTES};
use common::*;
use reqwest::Method;

#[tokio::test]
async fn the_document_lists_every_route_and_every_listed_route_is_served() {
    let (server, _sim) = loaded(Backend::Sqlite).await;
    let (status, doc) = server.get("/api/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string());

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            documented.insert((method.to_uppercase(), path.clone()));
            assert!(
                operation["responses"]["200"].is_object()
                    || operation["responses"]["201"].is_object(),
                "{method} {path}"
            );
            assert!(operation["operationId"].is_string(), "{method} {path}");
            assert!(operation["summary"].is_string(), "{method} {path}");
        }
    }
    let routes: BTreeSet<_> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, routes);

    // Each documented route answers (not 404/405) with the id filled in.
    let (_, list) = server.get("/api/conversations?limit=1").await;
    let id = list["conversations"][0]["id"].as_str().unwrap().to_owned();
    // A recording's SID, for the recording routes.
    let (_, recorded) = server
        .get("/api/conversations?has_recording=true&limit=20")
        .await;
    let mut recording = None;
    for c in recorded["conversations"].as_array().unwrap() {
        let (_, page) = server
            .get(&format!(
                "/api/conversations/{}/messages?limit=500",
                c["id"].as_str().unwrap()
            ))
            .await;
        recording = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|m| {
                m["metadata"]["recordings"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|r| r["url"].is_string())
            .map(|r| r["sid"].as_str().unwrap().to_owned());
        if recording.is_some() {
            break;
        }
    }
    let recording = recording.expect("a playable recording");
    // A picture of an MMS, for the media route.
    let (_, texting) = server.get("/api/conversations?type=sms&limit=100").await;
    let mut picture = None;
    for c in texting["conversations"].as_array().unwrap() {
        let (_, page) = server
            .get(&format!(
                "/api/conversations/{}/messages?type=sms&limit=500",
                c["id"].as_str().unwrap()
            ))
            .await;
        picture = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|m| {
                m["metadata"]["media"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .find_map(|m| m["url"].as_str().map(str::to_owned));
        if picture.is_some() {
            break;
        }
    }
    let picture = picture.expect("an MMS with a picture");
    for (method, path) in &routes {
        if path == callview_server::EVENTS_PATH {
            // A stream that stays open: checked by tests/events.rs.
            continue;
        }
        if path.starts_with("/api/tokens") {
            // Creating a token closes the open API: tests/tokens.rs.
            continue;
        }
        if method == "POST" && path == "/api/conversations/{id}/messages" {
            // Sends a text (this server has sending off): tests/texts.rs.
            continue;
        }
        if path.starts_with("/api/texts/") {
            let response = server.http.get(server.url(&picture)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{picture}");
            assert!(response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("image/"));
            continue;
        }
        // Each path's id is of its own kind.
        let first = &list["conversations"][0];
        let concrete = if path.starts_with("/api/contacts/") {
            path.replace("{id}", first["contact"]["id"].as_str().unwrap())
        } else if path.starts_with("/api/messages/") {
            path.replace("{id}", first["last_message"]["id"].as_str().unwrap())
        } else if path.starts_with("/api/recordings/") {
            path.replace("{sid}", &recording)
        } else {
            path.replace("{id}", &id)
        };
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        if concrete.ends_with("/audio") {
            let response = server.http.get(server.url(&concrete)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{concrete}");
            assert!(response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("audio/"));
            continue;
        }
        if concrete.ends_with(".jsonl") {
            let response = server.http.get(server.url(&concrete)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{concrete}");
            assert!(response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/x-ndjson"));
            continue;
        }
        if concrete == "/metrics" {
            let response = server.http.get(server.url(&concrete)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{concrete}");
            assert!(response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain"));
            continue;
        }
        if concrete.ends_with(".csv") {
            let response = server.http.get(server.url(&concrete)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{concrete}");
            assert!(response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv"));
            continue;
        }
        let (status, body) = if method == Method::PATCH {
            // An edit that changes nothing.
            let response = server
                .http
                .patch(server.url(&concrete))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            into_json(response).await
        } else {
            server.request(method.clone(), &concrete).await
        };
        assert_eq!(status, 200, "{method} {concrete}: {body}");
    }
}

#[tokio::test]
async fn every_reference_resolves_and_errors_use_the_error_schema() {
    let server = spawn(AppState::new(store(Backend::Sqlite).await)).await;
    let (_, doc) = server.get("/api/openapi.json").await;
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Contact",
        "Conversation",
        "Message",
        "Call",
        "ActiveCall",
        "ConversationList",
        "MessageList",
        "ActiveCallList",
        "SyncReport",
        "SyncResult",
        "Health",
        "Readiness",
        "Error",
    ] {
        assert!(schemas.contains_key(name), "{name}");
    }
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap();
        let pointer = target.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {target}");
    }
    // Every 4xx/5xx response refers to the Error schema (readyz's 503 is a Readiness body).
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('2') || path == "/readyz" {
                    continue;
                }
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
            }
        }
    }
    // The query parameters are described.
    let params = &doc["paths"]["/api/conversations"]["get"]["parameters"];
    let names: Vec<_> = params
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "limit",
            "offset",
            "cursor",
            "q",
            "direction",
            "status",
            "since",
            "until",
            "tag",
            "has_recording",
            "type"
        ]
    );
    assert_eq!(
        params[4]["schema"]["enum"],
        serde_json::json!(["inbound", "outbound", "internal"])
    );
    // Keyset pages: the `cursor` parameter and the list's `next_cursor`.
    assert_eq!(params[2]["schema"]["type"], "string");
    let list = &schemas["ConversationList"];
    assert_eq!(
        list["properties"]["next_cursor"]["type"],
        serde_json::json!(["string", "null"])
    );
    assert!(list["required"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("next_cursor")));
    assert_eq!(params[0]["schema"]["maximum"], 200);
    assert_eq!(params[0]["schema"]["minimum"], 1);
    // The models' required fields follow the TypeScript interfaces.
    let required = |schema: &str| -> Vec<String> {
        schemas[schema]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    for field in [
        "id",
        "external_id",
        "last_message",
        "unread_count",
        "contact",
        "metadata",
    ] {
        assert!(
            required("Conversation").contains(&field.to_owned()),
            "{field}"
        );
    }
    for field in [
        "id",
        "type",
        "call",
        "subject",
        "body",
        "blurb",
        "conversation_id",
        "contact",
    ] {
        assert!(required("Message").contains(&field.to_owned()), "{field}");
    }
}
