//! Every error is JSON `{"error": {"code", "message"}}` with the right
//! status, on both stores; a failing database never leaks its details.

mod common;

use std::sync::Arc;

use callview_core::PartyRules;
use callview_core::SyncEngine;
use callview_server::{AppState, SyncRunner};
use common::*;
use reqwest::Method;

on_both_stores!(
    bad_ids_are_400_and_unknown_ids_404,
    bad_paging_parameters_name_the_parameter,
    unknown_routes_and_methods_are_json,
);

async fn bad_ids_are_400_and_unknown_ids_404(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    for path in [
        "/api/conversations/abc",
        "/api/conversations/-1",
        "/api/conversations/0",
        "/api/conversations/1.5",
        "/api/conversations/99999999999999999999999",
        "/api/conversations/abc/messages",
        "/api/conversations/%20/messages",
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(assert_error(&body), "invalid_id", "{path}");
    }
    for path in [
        "/api/conversations/987654321",
        "/api/conversations/987654321/messages",
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(assert_error(&body), "not_found");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("987654321"));
    }
}

async fn bad_paging_parameters_name_the_parameter(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    let cases = [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=-5", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("limit=2.5", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("offset=1e3", "offset"),
        ("limit=5&limit=6", "limit"),
    ];
    for base in [
        "/api/conversations",
        "/api/conversations/1/messages",
        "/api/calls/active",
    ] {
        for (query, param) in cases {
            if base == "/api/calls/active" && param == "offset" {
                continue;
            }
            // A conversation's messages come up to 500 a page.
            let query = match (base.ends_with("/messages"), query) {
                (true, "limit=201") => "limit=501",
                _ => query,
            };
            let path = format!("{base}?{query}");
            let (status, body) = server.get(&path).await;
            assert_eq!(status, 400, "{path}: {body}");
            assert_eq!(assert_error(&body), "invalid_parameter", "{path}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(&format!("`{param}`")), "{path}: {message}");
        }
    }
    let (_, body) = server.get("/api/conversations?limit=201").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("200"));
    let (_, body) = server.get("/api/conversations?offset=-1").await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("negative"));
    // A cursor that is not one a page handed out, or with an offset.
    let (_, page) = server.get("/api/conversations?limit=2").await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    for (query, params) in [
        ("cursor=garbage", &["cursor"][..]),
        ("cursor=%E2%9C%93", &["cursor"]),
        ("cursor=djE6OjEy%3D", &["cursor"]),
        (&*format!("cursor={}", "A".repeat(500)), &["cursor"]),
        (&*format!("cursor={cursor}x"), &["cursor"]),
        (&*format!("cursor={cursor}&cursor={cursor}"), &["cursor"]),
        (&*format!("cursor={cursor}&offset=2"), &["cursor", "offset"]),
        ("offset=1&cursor=x", &["cursor"]),
    ] {
        let path = format!("/api/conversations?{query}");
        let (status, body) = server.get(&path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(assert_error(&body), "invalid_parameter", "{path}");
        let message = body["error"]["message"].as_str().unwrap();
        for param in params {
            assert!(message.contains(&format!("`{param}`")), "{path}: {message}");
        }
        assert!(
            !message.contains("garbage"),
            "the text is not echoed: {message}"
        );
    }
    let (status, _) = server
        .get(&format!("/api/conversations?cursor={cursor}&offset=0"))
        .await;
    assert_eq!(status, 200);
    // Unknown parameters are ignored; the largest limit is fine.
    let (status, _) = server.get("/api/conversations?limit=200&foo=bar").await;
    assert_eq!(status, 200);
}

async fn unknown_routes_and_methods_are_json(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    for path in [
        "/nope",
        "/assets/nope.js",
        "/api",
        "/api/nope",
        "/api/conversations/1/nope",
        "/healthz/x",
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(assert_error(&body), "not_found");
    }
    for (method, path) in [
        (Method::DELETE, "/api/conversations"),
        (Method::POST, "/api/conversations/1"),
        (Method::PUT, "/api/conversations/1/messages"),
        (Method::GET, "/api/sync/today"),
        (Method::GET, "/api/sync/recent"),
        (Method::POST, "/healthz"),
        (Method::PATCH, "/api/calls/active"),
    ] {
        let (status, body) = server.request(method.clone(), path).await;
        assert_eq!(status, 405, "{method} {path}");
        assert_eq!(assert_error(&body), "method_not_allowed");
    }
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413_json() {
    let server = spawn(AppState::new(store(Backend::Sqlite).await)).await;
    let response = server
        .http
        .post(server.url("/api/sync/today"))
        .body(vec![b'x'; 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    let (status, body) = into_json(response).await;
    assert_eq!(status, 413);
    assert_eq!(assert_error(&body), "payload_too_large");
}

#[tokio::test]
async fn a_failing_database_is_a_generic_500_healthz_degraded_and_readyz_503() {
    let store: Arc<dyn callview_core::Store> = Arc::new(BrokenStore);
    let runner = SyncRunner::new(SyncEngine::new(
        Arc::new(sim(20, 1)),
        Arc::clone(&store),
        PartyRules::default(),
    ));
    let server = spawn(AppState::new(store).with_sync(runner)).await;
    for path in [
        "/api/conversations",
        "/api/conversations/1",
        "/api/conversations/1/messages",
        "/api/calls/active",
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 500, "{path}");
        assert_eq!(assert_error(&body), "internal");
        assert!(!body.to_string().contains("10.9.8.7"), "{body}");
    }
    let (status, body) = server.post("/api/sync/today").await;
    assert_eq!(status, 500);
    assert_eq!(assert_error(&body), "sync_failed");
    assert!(!body.to_string().contains(SECRET_DETAIL), "{body}");

    // Liveness: the process serves, the database does not answer.
    let (status, body) = server.get("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["store"], "unreachable");
    assert!(!body.to_string().contains(SECRET_DETAIL), "{body}");
    assert_eq!(body["last_sync"]["ok"], false);
    // Readiness: not ready, without the details.
    let (status, body) = server.get("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["database"]["status"], "fail");
    assert!(!body.to_string().contains(SECRET_DETAIL), "{body}");
}

#[tokio::test]
async fn without_a_sync_runner_sync_is_503() {
    let server = spawn(AppState::new(store(Backend::Sqlite).await)).await;
    let (status, body) = server.post("/api/sync/today").await;
    assert_eq!(status, 503);
    assert_eq!(assert_error(&body), "sync_unavailable");
    let (status, body) = server.get("/api/conversations").await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], 0);
    assert_eq!(body["conversations"].as_array().unwrap().len(), 0);
}
