//! Bearer-token access control and the refusal to expose the API unprotected.

mod common;

use std::sync::Arc;
use std::time::Duration;

use callview_server::{serve_with_shutdown, AppState, ServeError, ServerConfig};
use common::*;

const TOKEN: &str = "correct horse battery staple";

#[tokio::test]
async fn every_api_route_needs_the_token() {
    let state = AppState::new(store(Backend::Sqlite).await).with_api_token(Some(TOKEN));
    let server = spawn(state.clone()).await;
    let paths = [
        "/api/conversations",
        "/api/conversations/1",
        "/api/conversations/1/messages",
        "/api/calls/active",
        "/api/openapi.json",
        "/api/does-not-exist",
    ];
    for path in paths {
        // Each path on a server of its own: more than `MAX_FAILURES` wrong
        // tokens from one address in a minute are answered 429
        // (tests/tokens.rs).
        let server =
            spawn(AppState::new(Arc::clone(state.store())).with_api_token(Some(TOKEN))).await;
        for token in [
            None,
            Some("wrong"),
            Some(""),
            Some("correct horse battery stapl"),
        ] {
            let (status, body) = server.get_with(path, token).await;
            assert_eq!(status, 401, "{path} with {token:?}");
            assert_eq!(assert_error(&body), "unauthorized");
        }
    }
    for path in ["/api/sync/today", "/api/sync/recent"] {
        let (status, body) = server.post(path).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(assert_error(&body), "unauthorized");
    }
    // The right token.
    let (status, body) = server.get_with("/api/conversations", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.get_with("/api/openapi.json", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let (status, _) = server.get_with("/api/conversations/1", Some(TOKEN)).await;
    assert_eq!(status, 404);
    // Health checks need no token.
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_scheme_and_header_form_are_checked() {
    let server =
        spawn(AppState::new(store(Backend::Sqlite).await).with_api_token(Some(TOKEN))).await;
    let send = |value: String| {
        let request = server
            .http
            .get(server.url("/api/conversations"))
            .header("authorization", value);
        async move { into_json(request.send().await.unwrap()).await.0 }
    };
    assert_eq!(send(format!("Basic {TOKEN}")).await, 401);
    assert_eq!(send(TOKEN.to_owned()).await, 401);
    assert_eq!(send(format!("bearer {TOKEN}")).await, 200);
    assert_eq!(send(format!("Bearer  {TOKEN} ")).await, 200);
    let response = server
        .http
        .get(server.url("/api/conversations"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers().get("www-authenticate").unwrap(),
        "Bearer realm=\"callview\""
    );
}

#[tokio::test]
async fn no_token_means_open_on_loopback() {
    let server = spawn(AppState::new(store(Backend::Sqlite).await).with_api_token(Some(""))).await;
    let (status, _) = server.get("/api/conversations").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_non_loopback_address_without_token_is_refused() {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let config = ServerConfig::new(AppState::new(store(Backend::Sqlite).await));
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        serve_with_shutdown(listener, config, std::future::pending()),
    )
    .await
    .expect("refused at once");
    let err = result.unwrap_err();
    assert!(matches!(err, ServeError::Unprotected { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("CALLVIEW_API_TOKEN"), "{message}");
    assert!(message.contains("--insecure-no-auth"), "{message}");
}

#[tokio::test]
async fn a_non_loopback_address_with_a_token_or_the_override_serves() {
    for (token, insecure) in [(Some(TOKEN), false), (None, true)] {
        let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = ServerConfig {
            insecure_no_auth: insecure,
            ..ServerConfig::new(AppState::new(store(Backend::Sqlite).await).with_api_token(token))
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve_with_shutdown(listener, config, async move {
            let _ = stopped.await;
        }));
        let response = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }
}
