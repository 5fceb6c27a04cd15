//! Named tokens with roles (issue 18): every route has a role and every
//! role is checked against every route; a token's life across processes
//! sharing one database (the `callview token` command and a server);
//! failed authentications rate-limited per client address and logged
//! without the token; the token admin API; `CALLVIEW_API_TOKEN` as an
//! admin named `api-token`; the open API when no token exists.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request};
use callview_core::access::{NewToken, Role};
use callview_core::Store;
use callview_server::auth::{Access, MAX_FAILURES, ROUTE_ROLES};
use callview_server::{router, AppState, ROUTES};
use chrono::{Duration, Utc};
use common::*;
use serde_json::{json, Value};
use tower::ServiceExt;

/// Stores a token named `name` with `role`; returns its text.
async fn token(store: &Arc<dyn Store>, name: &str, role: Role) -> String {
    let (secret, token) = NewToken::generate(name, role, Utc::now(), None).unwrap();
    store.create_token(&token).await.unwrap();
    secret.expose().to_owned()
}

/// A request's status and its JSON body (`Null` for the event stream or a
/// body that is not JSON).
async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = server.http.request(method, server.url(path));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let response = req.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned())
        .unwrap_or_default();
    if content_type.starts_with("text/event-stream") {
        // A stream that stays open: only its status is read.
        return (status, Value::Null);
    }
    // Every other body is read to its end (an export holds a database
    // connection until its body is consumed).
    let body = response.bytes().await.unwrap();
    if !content_type.starts_with("application/json") {
        return (status, Value::Null);
    }
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[test]
fn every_route_has_a_role_and_every_role_a_route() {
    let routes: BTreeSet<(&str, &str)> = ROUTES.iter().copied().collect();
    let roles: BTreeSet<(&str, &str)> = ROUTE_ROLES.iter().map(|(m, p, _)| (*m, *p)).collect();
    let missing: Vec<_> = routes.difference(&roles).collect();
    assert!(
        missing.is_empty(),
        "routes without a role in callview_server::auth::ROUTE_ROLES: {missing:?}"
    );
    let stale: Vec<_> = roles.difference(&routes).collect();
    assert!(
        stale.is_empty(),
        "roles of routes that do not exist: {stale:?}"
    );
    assert_eq!(ROUTE_ROLES.len(), roles.len(), "a route listed twice");
    // Only the health check is public; every /api route needs a token.
    for (method, path, access) in ROUTE_ROLES {
        if path.starts_with("/api/") {
            assert!(matches!(access, Access::Role(_)), "{method} {path}");
        }
    }
}

/// A token that cannot be looked up (the database fails) is refused: the
/// API never opens because the store does not answer, and the failure's
/// details stay in the log.
#[tokio::test]
async fn a_failing_store_refuses_stored_tokens() {
    let state = AppState::new(Arc::new(BrokenStore)).with_api_token(Some("legacy-secret"));
    let server = spawn(state).await;
    let (status, body) = send(
        &server,
        "GET",
        "/api/me",
        Some("cv_some-stored-token"),
        None,
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(assert_error(&body), "internal");
    assert!(!body.to_string().contains(SECRET_DETAIL), "{body}");
    // The API token needs no database.
    let (status, me) = send(&server, "GET", "/api/me", Some("legacy-secret"), None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["name"], "api-token");
}

/// A concrete path and body for each route.
fn request_for(method: &str, path: &str, round: usize) -> (String, Option<Value>) {
    let concrete = path
        .replace("{id}", "1")
        .replace("{sid}", "RE00000000000000000000000000000000")
        .replace("{name}", "nobody");
    let body = match (method, path) {
        ("PATCH", _) => Some(json!({})),
        ("POST", "/api/tokens") => Some(json!({"name": format!("made-{round}"), "role": "viewer"})),
        _ => None,
    };
    (concrete, body)
}

async fn each_role_against_every_route(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    let tokens = [
        (
            Role::Viewer,
            token(&server.store, "wall-screen", Role::Viewer).await,
        ),
        (
            Role::Editor,
            token(&server.store, "alice", Role::Editor).await,
        ),
        (Role::Admin, token(&server.store, "boss", Role::Admin).await),
    ];
    let mut round = 0;
    for (method, path, access) in ROUTE_ROLES {
        // Without a token.
        let (concrete, body) = request_for(method, path, round);
        round += 1;
        // The event stream stays open: `send` reads only its status.
        let (status, answer) = send(&server, method, &concrete, None, body.clone()).await;
        match access {
            Access::Public => {
                assert_eq!(status, 200, "{method} {path}: {answer}");
                continue;
            }
            Access::Role(_) => {
                assert_eq!(status, 401, "{method} {path} without a token: {answer}");
                assert_eq!(assert_error(&answer), "unauthorized");
            }
        }
        let Access::Role(needed) = access else {
            unreachable!()
        };
        for (role, text) in &tokens {
            let (concrete, body) = request_for(method, path, round);
            round += 1;
            let (status, answer) = send(&server, method, &concrete, Some(text), body).await;
            if role >= needed {
                // Past the role check (a handler may still refuse for its
                // own reason, such as sending being off: not `forbidden`).
                assert!(
                    status != 401 && !(status == 403 && assert_error(&answer) == "forbidden"),
                    "{method} {path} as {role}: {status} {answer}"
                );
            } else {
                assert_eq!(status, 403, "{method} {path} as {role}: {answer}");
                assert_eq!(assert_error(&answer), "forbidden");
                let message = answer["error"]["message"].as_str().unwrap();
                assert!(
                    message.contains(&format!("needs the {needed} role")),
                    "{message}"
                );
            }
        }
    }
}

async fn edits_record_the_name_of_the_token_that_made_them(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    let alice = token(&server.store, "alice", Role::Editor).await;
    let viewer = token(&server.store, "wall-screen", Role::Viewer).await;
    let (_, list) = send(
        &server,
        "GET",
        "/api/conversations?limit=1",
        Some(&viewer),
        None,
    )
    .await;
    let first = &list["conversations"][0];
    let contact = first["contact"]["id"].as_str().unwrap().to_owned();
    let message = first["last_message"]["id"].as_str().unwrap().to_owned();

    let path = format!("/api/contacts/{contact}");
    let (status, body) = send(
        &server,
        "PATCH",
        &path,
        Some(&viewer),
        Some(json!({"notes": "no"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = send(
        &server,
        "PATCH",
        &path,
        Some(&alice),
        Some(json!({"notes": "VIP"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metadata"]["edited_by"], "alice");
    assert!(body["metadata"]["edited_at"].is_i64());
    let (_, read) = send(&server, "GET", &path, Some(&viewer), None).await;
    assert_eq!(read["metadata"]["edited_by"], "alice");

    let path = format!("/api/messages/{message}");
    let (status, body) = send(
        &server,
        "PATCH",
        &path,
        Some(&alice),
        Some(json!({"tags": ["quote"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metadata"]["edited_by"], "alice");

    // CALLVIEW_API_TOKEN is an admin named `api-token`, its edits too.
    let store = Arc::clone(&server.store);
    let with_api_token = spawn(AppState::new(store).with_api_token(Some("legacy-secret"))).await;
    let (status, me) = send(
        &with_api_token,
        "GET",
        "/api/me",
        Some("legacy-secret"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        me,
        json!({"name": "api-token", "role": "admin", "auth_required": true, "can_send_texts": false})
    );
    let (status, body) = send(
        &with_api_token,
        "PATCH",
        &path,
        Some("legacy-secret"),
        Some(json!({"notes": "n"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metadata"]["edited_by"], "api-token");
    // Stored tokens work beside it.
    let (_, me) = send(&with_api_token, "GET", "/api/me", Some(&alice), None).await;
    assert_eq!(me["name"], "alice");
}

async fn no_token_at_all_keeps_the_api_open_until_one_is_created(backend: Backend) {
    let store = store(backend).await;
    let server = spawn(AppState::new(Arc::clone(&store))).await;
    let (status, me) = send(&server, "GET", "/api/me", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        me,
        json!({"name": null, "role": "admin", "auth_required": false, "can_send_texts": false})
    );
    // Open: an admin route answers, a token sent along is ignored.
    let (status, _) = send(&server, "GET", "/api/tokens", Some("anything"), None).await;
    assert_eq!(status, 200);
    // The API creates the first token: from then on a token is needed,
    // even once every token is revoked.
    let (status, created) = send(
        &server,
        "POST",
        "/api/tokens",
        None,
        Some(json!({"name": "boss", "role": "admin", "expires_in_days": 30})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let text = created["token"].as_str().unwrap().to_owned();
    assert!(text.starts_with("cv_"), "{text}");
    let expires = iso(created["expires_at"].as_str().unwrap());
    assert!(
        (expires - (Utc::now() + Duration::days(30)))
            .num_minutes()
            .abs()
            < 5
    );
    let (status, _) = send(&server, "GET", "/api/conversations", None, None).await;
    assert_eq!(status, 401);
    let (status, me) = send(&server, "GET", "/api/me", Some(&text), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        me,
        json!({"name": "boss", "role": "admin", "auth_required": true, "can_send_texts": false})
    );
    store.revoke_token("boss", Utc::now()).await.unwrap();
    let (status, _) = send(&server, "GET", "/api/conversations", None, None).await;
    assert_eq!(status, 401, "revoking every token does not open the API");
}

async fn the_token_admin_api(backend: Backend) {
    let store = store(backend).await;
    let boss = token(&store, "boss", Role::Admin).await;
    let editor = token(&store, "alice", Role::Editor).await;
    let server = spawn(AppState::new(Arc::clone(&store))).await;

    let (status, body) = send(
        &server,
        "POST",
        "/api/tokens",
        Some(&editor),
        Some(json!({"name": "x", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("needs the admin role"));
    for (bad, field) in [
        (json!({"name": "wall", "role": "owner"}), "role"),
        (json!({"name": "two words", "role": "viewer"}), "name"),
        (json!({"name": "api-token", "role": "viewer"}), "name"),
        (json!({"role": "viewer"}), "name"),
        (
            json!({"name": "wall", "role": "viewer", "expires_in_days": 0}),
            "expires_in_days",
        ),
        (
            json!({"name": "wall", "role": "viewer", "scope": "all"}),
            "scope",
        ),
    ] {
        let (status, body) = send(
            &server,
            "POST",
            "/api/tokens",
            Some(&boss),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(assert_error(&body), "invalid_field");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{body}"
        );
    }
    let (status, created) = send(
        &server,
        "POST",
        "/api/tokens",
        Some(&boss),
        Some(json!({"name": "wall", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let wall = created["token"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "active");
    assert_eq!(created["expires_at"], Value::Null);
    let (status, body) = send(
        &server,
        "POST",
        "/api/tokens",
        Some(&boss),
        Some(json!({"name": "wall", "role": "editor"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");

    let (status, me) = send(&server, "GET", "/api/me", Some(&wall), None).await;
    assert_eq!(status, 200);
    assert_eq!(me["role"], "viewer");
    let (status, list) = send(&server, "GET", "/api/tokens", Some(&boss), None).await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 3);
    let text = list.to_string();
    for secret in [&boss, &editor, &wall] {
        assert!(
            !text.contains(secret.as_str()),
            "a token's text is never listed"
        );
    }
    let wall_entry = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "wall")
        .unwrap();
    assert!(wall_entry["last_used_at"].is_string(), "{wall_entry}");

    let (status, body) = send(&server, "DELETE", "/api/tokens/wall", Some(&boss), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "revoked");
    let (status, body) = send(&server, "GET", "/api/me", Some(&wall), None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = send(&server, "DELETE", "/api/tokens/wall", Some(&boss), None).await;
    assert_eq!(status, 404, "{body}");
}

/// The router answering one request from `ip`.
async fn from(app: &axum::Router, ip: [u8; 4], bearer: &str) -> (u16, Option<String>, Value) {
    let mut request = Request::builder()
        .uri("/api/conversations")
        .header(header::AUTHORIZATION, format!("Bearer {bearer}"))
        .body(Body::empty())
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, retry, serde_json::from_slice(&body).unwrap())
}

/// Logs written while the test's futures run on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn failed_authentications_are_rate_limited_per_address(backend: Backend) {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let store = store(backend).await;
    let good = token(&store, "alice", Role::Editor).await;
    let app = router(AppState::new(store));
    let (a, b) = ([192, 0, 2, 1], [192, 0, 2, 2]);
    let guess = "cv_not-the-right-token-at-all";
    for i in 0..MAX_FAILURES {
        let (status, _, body) = from(&app, a, guess).await;
        assert_eq!(status, 401, "attempt {i}: {body}");
    }
    let (status, retry, body) = from(&app, a, guess).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(assert_error(&body), "too_many_attempts");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // While blocked, that address gets 429 even with a good token; others
    // are not affected.
    let (status, _, _) = from(&app, a, &good).await;
    assert_eq!(status, 429);
    let (status, _, body) = from(&app, b, &good).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = from(&app, b, guess).await;
    assert_eq!(status, 401);

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("authentication failed"), "{logged}");
    assert!(
        logged.contains("192.0.2.1"),
        "the address is logged: {logged}"
    );
    assert!(
        !logged.contains(guess),
        "the token is never logged: {logged}"
    );
    assert!(
        !logged.contains(&good),
        "the token is never logged: {logged}"
    );
}

/// The media cookie of `POST /api/session` opens a recording's audio for
/// the token that asked for it, and nothing once that token is revoked.
async fn a_media_cookie_ends_with_its_token(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    let alice = token(&server.store, "alice", Role::Viewer).await;
    let (_, recorded) = send(
        &server,
        "GET",
        "/api/conversations?has_recording=true&limit=20",
        Some(&alice),
        None,
    )
    .await;
    let mut audio = None;
    for c in recorded["conversations"].as_array().unwrap() {
        let path = format!(
            "/api/conversations/{}/messages?limit=500",
            c["id"].as_str().unwrap()
        );
        let (_, page) = send(&server, "GET", &path, Some(&alice), None).await;
        audio = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|m| {
                m["metadata"]["recordings"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .find_map(|r| r["url"].as_str().map(str::to_owned));
        if audio.is_some() {
            break;
        }
    }
    let audio = audio.expect("a playable recording");
    let session = server
        .http
        .post(server.url("/api/session"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 200);
    let cookie = session.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let play = || {
        server
            .http
            .get(server.url(&audio))
            .header("cookie", cookie.clone())
            .send()
    };
    assert_eq!(play().await.unwrap().status(), 200);
    // The cookie opens audio only.
    let other = server
        .http
        .get(server.url("/api/conversations"))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 401);
    server
        .store
        .revoke_token("alice", Utc::now())
        .await
        .unwrap();
    assert_eq!(play().await.unwrap().status(), 401);
}

// ---- the token's life across processes ----

const BIN: &str = env!("CARGO_BIN_EXE_callview");

fn cli(url: &str, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("TWILIO_") || key.starts_with("CALLVIEW_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .args(["--database-url", url])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "stdout {stdout}\nstderr {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn database_url(backend: Backend) -> (String, Option<tempfile::TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("tokens.db").display());
            (url, Some(dir))
        }
        Backend::Postgres => (callview_postgres::testing::fresh_database_url().await, None),
    }
}

async fn a_token_lives_across_processes_sharing_the_database(backend: Backend) {
    let (url, _dir) = database_url(backend).await;
    // Process 1: the command line creates the token.
    let created = cli(
        &url,
        &[
            "token",
            "create",
            "alice",
            "--role",
            "editor",
            "--expires",
            "90d",
        ],
    );
    let text = ok(&created).trim().to_owned();
    assert!(
        text.starts_with("cv_") && !text.contains(char::is_whitespace),
        "{text}"
    );
    let stderr = String::from_utf8_lossy(&created.stderr);
    assert!(stderr.contains("shown only now"), "{stderr}");
    let duplicate = cli(&url, &["token", "create", "alice", "--role", "viewer"]);
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));
    let bad = cli(&url, &["token", "create", "bob", "--role", "owner"]);
    assert!(!bad.status.success());

    // Process 2: a server on its own handle of the database.
    let store = callview_server::db::open_store(&url).await.unwrap();
    let mut tx = store.begin_ingest().await.unwrap();
    let contact = tx
        .ensure_contact("+16175550100", "+1 617-555-0100")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let server = spawn(AppState::new(store)).await;
    let (status, me) = send(&server, "GET", "/api/me", Some(&text), None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        me,
        json!({"name": "alice", "role": "editor", "auth_required": true, "can_send_texts": false})
    );
    let (status, body) = send(
        &server,
        "PATCH",
        &format!("/api/contacts/{contact}"),
        Some(&text),
        Some(json!({"name": "Mrs Alvarez"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metadata"]["edited_by"], "alice");

    // The list shows the use, the role and the expiry.
    let listed = ok(&cli(&url, &["token", "list", "--json"]));
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let alice = &listed[0];
    assert_eq!(alice["name"], "alice");
    assert_eq!(alice["role"], "editor");
    assert_eq!(alice["status"], "active");
    assert!(alice["last_used_at"].is_string(), "{alice}");
    let expires = iso(alice["expires_at"].as_str().unwrap());
    assert!(
        (expires - (Utc::now() + Duration::days(90)))
            .num_minutes()
            .abs()
            < 5
    );
    let table = ok(&cli(&url, &["token", "list"]));
    assert!(
        table.contains("alice") && table.contains("editor") && table.contains("active"),
        "{table}"
    );
    assert!(!table.contains(&text) && !listed.to_string().contains(&text));

    // Process 1 revokes it: the server refuses it on its next request.
    let revoked = ok(&cli(&url, &["token", "revoke", "alice"]));
    assert!(revoked.contains("alice"), "{revoked}");
    let (status, body) = send(&server, "GET", "/api/me", Some(&text), None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(assert_error(&body), "unauthorized");
    let table = ok(&cli(&url, &["token", "list"]));
    assert!(table.contains("revoked"), "{table}");
    let again = cli(&url, &["token", "revoke", "alice"]);
    assert!(!again.status.success());

    // An expired token is refused too.
    let (secret, expired) = NewToken::generate(
        "temp",
        Role::Viewer,
        Utc::now() - Duration::days(2),
        Some(Utc::now() - Duration::seconds(1)),
    )
    .unwrap();
    server.store.create_token(&expired).await.unwrap();
    let (status, _) = send(&server, "GET", "/api/me", Some(secret.expose()), None).await;
    assert_eq!(status, 401);
    let table = ok(&cli(&url, &["token", "list"]));
    assert!(table.contains("expired"), "{table}");
}

on_both_stores!(
    each_role_against_every_route,
    edits_record_the_name_of_the_token_that_made_them,
    no_token_at_all_keeps_the_api_open_until_one_is_created,
    the_token_admin_api,
    failed_authentications_are_rate_limited_per_address,
    a_token_lives_across_processes_sharing_the_database,
    a_media_cookie_ends_with_its_token,
);
