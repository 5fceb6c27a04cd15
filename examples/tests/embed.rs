//! The embedding example works: the host's routes and the nested API answer.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use callview_core::{Store, SyncMode};
use callview_examples::{host_app, simulated_sync};
use callview_server::SyncTrigger;
use tower::ServiceExt;

async fn get(
    app: &axum::Router,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::builder().uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn the_host_serves_its_routes_and_the_nested_api() {
    let store: Arc<dyn Store> = Arc::new(callview_sqlite::SqliteStore::open_in_memory().unwrap());
    let sync = simulated_sync(&store, 200, 4);
    sync.run(
        SyncMode::Since(chrono::Utc::now() - chrono::Duration::days(31)),
        SyncTrigger::Other,
    )
    .await
    .unwrap();
    let app = host_app(Arc::clone(&store), Some(sync), Some("tok"));

    let (status, stats) = get(&app, "/stats", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(stats["calls"].as_u64().unwrap() > 0);

    let (status, body) = get(&app, "/calls/api/conversations", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = get(&app, "/calls/api/conversations?limit=3", Some("tok")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["conversations"].as_array().unwrap().len(), 3);
    let id = body["conversations"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = get(
        &app,
        &format!("/calls/api/conversations/{id}/messages"),
        Some("tok"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["total"].as_u64().unwrap() > 0);
    let (status, body) = get(&app, "/calls/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    let (status, body) = get(&app, "/calls/api/nope", Some("tok")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}
