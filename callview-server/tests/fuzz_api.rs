//! Fuzzing the API (proptest): random paths, ids, query strings, methods,
//! bearer tokens and webhook bodies against the router over both stores.
//! Every API answer and every error is JSON; errors are a 4xx `{"error": {"code", "message"}}`;
//! nothing is ever a 5xx or a panic.
//!
//! `CALLVIEW_FUZZ_CASES` sets the number of cases per store (default 400).

mod common;
mod reliability;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use callview_core::{PartyRules, SyncEngine};
use callview_server::webhook::WebhookConfig;
use callview_server::{router, AppState, SyncRunner};
use common::{load, sim, store, Backend};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;
use tower::ServiceExt;

const TOKEN: &str = "fuzz-token";

/// Text that is hard on parsers: numbers at and past every integer limit,
/// signs, spaces, encodings, unicode, nothing at all.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("1".to_owned()),
        Just("200".to_owned()),
        Just("201".to_owned()),
        Just("2147483647".to_owned()),
        Just("2147483648".to_owned()),
        Just("4294967296".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("9223372036854775808".to_owned()),
        Just("18446744073709551615".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("99999999999999999999999999999".to_owned()),
        Just("1e3".to_owned()),
        Just("0x10".to_owned()),
        Just(" 1".to_owned()),
        Just("+1".to_owned()),
        Just("1.5".to_owned()),
        Just("NaN".to_owned()),
        Just("null".to_owned()),
        Just("%00".to_owned()),
        Just("\u{0}".to_owned()),
        Just("..".to_owned()),
        Just("../../etc/passwd".to_owned()),
        Just("é".to_owned()),
        Just("🙂".to_owned()),
        Just("' OR 1=1 --".to_owned()),
        "[0-9]{1,30}",
        "-?[0-9]{1,25}",
        "\\PC{0,24}",
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        nasty().prop_map(|s| encode(&s)),
        "[a-zA-Z0-9%._~-]{0,12}",
        (1u32..80).prop_map(|n| n.to_string()),
    ];
    prop_oneof![
        6 => Just("/api/conversations".to_owned()),
        3 => Just("/api/calls/active".to_owned()),
        6 => (1u32..80).prop_map(|n| format!("/api/conversations/{n}/messages")),
        1 => Just("/api/sync/today".to_owned()),
        1 => Just("/api/sync/recent".to_owned()),
        1 => Just("/api/openapi.json".to_owned()),
        1 => Just("/healthz".to_owned()),
        1 => Just("/webhooks/twilio/call-status".to_owned()),
        1 => Just("/api".to_owned()),
        1 => Just("/".to_owned()),
        1 => segment.clone().prop_map(|id| format!("/api/conversations/{id}")),
        1 => segment
            .clone()
            .prop_map(|id| format!("/api/conversations/{id}/messages")),
        1 => (segment.clone(), segment.clone())
            .prop_map(|(a, b)| format!("/api/conversations/{a}/{b}")),
        1 => proptest::collection::vec(segment, 0..5).prop_map(|s| format!("/{}", s.join("/"))),
        1 => proptest::collection::vec("[a-z]{1,8}", 1..4)
            .prop_map(|s| format!("/api/{}", s.join("/"))),
    ]
}

fn query() -> impl Strategy<Value = Option<String>> {
    let name = prop_oneof![
        Just("limit".to_owned()),
        Just("offset".to_owned()),
        Just("cursor".to_owned()),
        Just("page".to_owned()),
        Just("status".to_owned()),
        "[a-z_]{0,8}",
        nasty(),
    ];
    let pairs = proptest::collection::vec((name, nasty()), 0..4).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    });
    let raw = prop_oneof![
        Just("limit".to_owned()),
        Just("limit=".to_owned()),
        Just("&&=&".to_owned()),
        Just("limit=%zz".to_owned()),
        Just("limit=%".to_owned()),
        Just("limit=1&limit=2".to_owned()),
        Just("offset=%FF%FE".to_owned()),
        // A well-formed cursor (after conversation 1 at 2026-02-06T15:17:13Z),
        // alone and with an offset.
        Just("cursor=djE6MTc3MDM5MTAzMzAwMDAwMDox".to_owned()),
        Just("cursor=djE6MTc3MDM5MTAzMzAwMDAwMDox&offset=3".to_owned()),
        Just("cursor=djE6OjE".to_owned()),
        Just("limit=+5".to_owned()),
        "[a-z0-9=&%+;]{0,40}",
    ];
    proptest::option::of(prop_oneof![pairs, raw])
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        16 => Just(Method::GET),
        2 => Just(Method::POST),
        1 => Just(Method::PUT),
        1 => Just(Method::DELETE),
        1 => Just(Method::PATCH),
        1 => Just(Method::HEAD),
        1 => Just(Method::OPTIONS),
    ]
}

fn auth() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        20 => Just(Some(format!("Bearer {TOKEN}"))),
        1 => Just(None),
        1 => Just(Some("Bearer".to_owned())),
        1 => Just(Some(format!("Basic {TOKEN}"))),
        1 => "[ -~]{0,30}".prop_map(Some),
    ]
}

fn body() -> impl Strategy<Value = (Vec<u8>, Option<String>)> {
    let form = proptest::collection::vec(
        (
            prop_oneof![
                Just("CallSid".to_owned()),
                Just("CallStatus".to_owned()),
                Just("SequenceNumber".to_owned()),
                Just("Timestamp".to_owned()),
                "[A-Za-z]{0,10}",
            ],
            nasty(),
        ),
        0..6,
    )
    .prop_map(|pairs| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish()
            .into_bytes()
    });
    (
        prop_oneof![
            Just(Vec::new()),
            form,
            proptest::collection::vec(any::<u8>(), 0..200)
        ],
        proptest::option::of(prop_oneof![
            Just("x".repeat(28)),
            "[A-Za-z0-9+/=]{0,40}",
            Just("GvWf1cFY/Q7PnoempGyD5oXAezc=".to_owned()),
        ]),
    )
}

async fn app(backend: Backend) -> axum::Router {
    let store = store(backend).await;
    let sim = sim(120, 3);
    load(&store, &sim).await;
    let runner = SyncRunner::new(SyncEngine::new(
        Arc::new(sim.clone()),
        Arc::clone(&store),
        PartyRules::default(),
    ));
    let state = AppState::new(store)
        .with_sync(runner)
        .with_api_token(Some(TOKEN))
        .with_webhook(
            WebhookConfig::new(Some(callview_core::twilio::Secret::new("fuzz-auth-token")))
                .with_client(Arc::new(sim)),
        );
    router(state)
}

type Case = (
    Method,
    String,
    Option<String>,
    Option<String>,
    (Vec<u8>, Option<String>),
);

/// How many answers each status got (0: not a valid HTTP request).
type Statuses = std::sync::Mutex<std::collections::BTreeMap<u16, usize>>;

fn count(statuses: &Statuses, status: u16) {
    if let Ok(mut map) = statuses.lock() {
        *map.entry(status).or_default() += 1;
    }
}

async fn check(app: axum::Router, case: Case, statuses: &Statuses) -> Result<(), TestCaseError> {
    let (method, path, query, auth, (body, signature)) = case;
    let uri = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let mut request = Request::builder().method(method.clone()).uri(&uri);
    if let Some(auth) = &auth {
        request = request.header("authorization", auth);
    }
    if let Some(signature) = &signature {
        request = request.header("x-twilio-signature", signature);
    }
    request = request.header("content-type", "application/x-www-form-urlencoded");
    let Ok(request) = request.body(Body::from(body)) else {
        // Not a valid HTTP request (the URI or a header): nothing to serve.
        count(statuses, 0);
        return Ok(());
    };
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    count(statuses, status.as_u16());
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap();
    let what = format!("{method} {uri} (auth {auth:?}) → {status}");
    prop_assert!(
        status.is_success() || status.is_client_error(),
        "{}: {}",
        what,
        String::from_utf8_lossy(&bytes)
    );
    if method == Method::HEAD {
        return Ok(());
    }
    // The viewer's pages and assets (outside /api, /healthz and the
    // webhook) are not JSON; every error and every API answer is.
    let api =
        path.starts_with("/api") || path.starts_with("/healthz") || path.starts_with("/webhooks");
    if status.is_success() && !api {
        return Ok(());
    }
    prop_assert!(
        content_type.starts_with("application/json"),
        "{}: {}",
        what,
        content_type
    );
    let json: Result<Value, _> = serde_json::from_slice(&bytes);
    prop_assert!(
        json.is_ok(),
        "{}: not JSON: {}",
        what,
        String::from_utf8_lossy(&bytes)
    );
    if status.is_client_error() {
        let json = json.unwrap_or_default();
        prop_assert!(json["error"]["code"].is_string(), "{}: {}", what, json);
        prop_assert!(json["error"]["message"].is_string(), "{}: {}", what, json);
    }
    Ok(())
}

fn fuzz(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(app(backend));
    let cases = reliability::env_number("CALLVIEW_FUZZ_CASES", 400) as u32;
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (method(), path(), query(), auth(), body());
    let statuses = Statuses::default();
    let result = runner.run(&strategy, |case| {
        runtime.block_on(check(app.clone(), case, &statuses))
    });
    if let Err(e) = result {
        panic!("{backend:?}: {e}");
    }
    eprintln!(
        "{backend:?}: {cases} cases, answers by status: {:?}",
        statuses.lock().map(|m| m.clone()).unwrap_or_default()
    );
}

#[test]
fn fuzz_every_route_on_sqlite() {
    fuzz(Backend::Sqlite);
}

#[test]
fn fuzz_every_route_on_postgres() {
    fuzz(Backend::Postgres);
}
