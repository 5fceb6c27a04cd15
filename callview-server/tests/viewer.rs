//! The viewer's files over HTTP: the page at `/` and everything it loads
//! come from the binary, with strict headers, also when nested under a
//! prefix and when the API needs a token. (The browser tests in
//! `tests/browser.rs` check what a person sees.)

mod common;

use callview_server::viewer::{ASSETS, CONTENT_SECURITY_POLICY};
use callview_server::{router, AppState};
use common::*;

async fn text(server: &TestServer, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let response = server.http.get(server.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

#[tokio::test]
async fn the_page_and_every_file_it_loads_are_served_from_the_binary() {
    let server = spawn(AppState::new(store(Backend::Sqlite).await)).await;
    let (status, headers, page) = text(&server, "/").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["content-security-policy"], CONTENT_SECURITY_POLICY);
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(page.contains("<title>Call Viewer</title>"));
    assert!(page.contains(r#"src="/assets/js/main.js""#));
    assert!(!page.contains("{{"), "the template is filled in");

    for asset in ASSETS {
        let path = format!("/assets/{}", asset.path);
        let response = server.http.get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            asset.content_type,
            "{path}"
        );
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(
            response.bytes().await.unwrap().as_ref(),
            asset.body,
            "{path}"
        );
        // Unchanged: 304 without a body.
        let again = server
            .http
            .get(server.url(&path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    let (status, body) = server.get("/assets/../Cargo.toml").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = server.get("/assets/js/nope.js").await;
    assert_eq!(status, 404);
    assert_eq!(assert_error(&body), "not_found");
}

#[tokio::test]
async fn the_page_needs_no_token_but_the_api_does() {
    let server =
        spawn(AppState::new(store(Backend::Sqlite).await).with_api_token(Some("tok"))).await;
    let (status, _, page) = text(&server, "/?token=tok").await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("tok\""),
        "the token is not echoed into the page"
    );
    let (status, _, _) = text(&server, "/assets/js/main.js").await;
    assert_eq!(status, 200);
    let (status, _) = server.get("/api/conversations").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn nested_under_a_prefix_the_page_loads_its_files_from_there() {
    let store = store(Backend::Sqlite).await;
    let app = axum::Router::new().nest("/calls", router(AppState::new(store)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{base}/calls"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"src="/calls/assets/js/main.js""#), "{page}");
    assert!(page.contains(r#"href="/calls/assets/viewer.css""#));
    for path in ["/calls/assets/js/main.js", "/calls/assets/viewer.css"] {
        let status = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{path}");
    }
    let status = http
        .get(format!("{base}/calls/api/conversations"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    handle.abort();
}
