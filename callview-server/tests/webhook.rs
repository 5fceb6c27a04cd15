//! `POST /webhooks/twilio/call-status`: Twilio's signature is required and
//! checked against the URL Twilio saw; verified callbacks update the stored
//! call at once through the planner (counters stay exact), replays and
//! out-of-order events change nothing, and a final status never goes back.

mod common;

use std::sync::Arc;

use callview_core::testkit::assert_invariants;
use callview_core::twilio::Secret;
use callview_core::{CallSid, CallStatus, PartyRules, Store, SyncEngine};
use callview_server::events::EventHub;
use callview_server::webhook::{twilio_signature, WebhookConfig, CALL_STATUS_PATH};
use callview_server::{AppState, SyncRunner};
use common::*;
use futures::StreamExt;
use serde_json::Value;

const TOKEN: &str = "webhook-test-auth-token-5e1b";
const PUBLIC: &str = "https://calls.example.com";

on_both_stores!(
    unsigned_and_wrongly_signed_callbacks_are_403,
    a_callback_updates_the_stored_call_and_its_counters,
    an_unknown_call_is_created_and_events_out_of_order_are_tolerated,
);

type Form = Vec<(String, String)>;

fn form(pairs: &[(&str, &str)]) -> Form {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn encode(params: &Form) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// A test server and the hub of its live events.
struct Hooked {
    server: TestServer,
    events: EventHub,
}

impl std::ops::Deref for Hooked {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

/// A server over a freshly loaded store, with the webhook configured.
async fn server(backend: Backend, config: Option<WebhookConfig>) -> Hooked {
    let store = store(backend).await;
    let sim = sim(60, 11);
    load(&store, &sim).await;
    let runner = SyncRunner::new(SyncEngine::new(
        Arc::new(sim.clone()),
        Arc::clone(&store),
        PartyRules::default(),
    ));
    let mut state = AppState::new(store)
        .with_sync(runner)
        .with_api_token(Some("api-token-for-the-viewer"));
    if let Some(config) = config {
        state = state.with_webhook(config.with_client(Arc::new(sim)));
    }
    let events = state.events().clone();
    Hooked {
        server: spawn(state).await,
        events,
    }
}

fn config() -> WebhookConfig {
    WebhookConfig::new(Some(Secret::new(TOKEN))).with_public_url(Some(PUBLIC))
}

/// Posts `params`, signed for `signed_url` with `token` (no header when `None`).
async fn post(
    server: &TestServer,
    params: &Form,
    signature: Option<String>,
    path_and_query: &str,
) -> (u16, Value) {
    let mut request = server
        .http
        .post(server.url(path_and_query))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(params));
    if let Some(signature) = signature {
        request = request.header("X-Twilio-Signature", signature);
    }
    into_json(request.send().await.unwrap()).await
}

/// Posts `params` signed as Twilio would sign them for the public URL.
async fn signed(server: &TestServer, params: &Form) -> (u16, Value) {
    let url = format!("{PUBLIC}{CALL_STATUS_PATH}");
    post(
        server,
        params,
        Some(twilio_signature(TOKEN, &url, params)),
        CALL_STATUS_PATH,
    )
    .await
}

async fn stored(store: &Arc<dyn Store>, sid: &str) -> Option<callview_core::Call> {
    let sid = CallSid::new(sid).unwrap();
    store
        .load_trees(std::slice::from_ref(&sid))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.call.sid == sid)
        .map(|r| r.call)
}

async fn unsigned_and_wrongly_signed_callbacks_are_403(backend: Backend) {
    let server = server(backend, Some(config())).await;
    let params = form(&[
        ("CallSid", "CA00000000000000000000000000000001"),
        ("CallStatus", "ringing"),
    ]);
    let url = format!("{PUBLIC}{CALL_STATUS_PATH}");
    let cases = [
        ("missing_signature", None),
        ("missing_signature", Some(String::new())),
        ("invalid_signature", Some("not-a-signature".to_owned())),
        (
            "invalid_signature",
            Some(twilio_signature("another-token", &url, &params)),
        ),
        // Signed for the server's own address, not the public URL Twilio uses.
        (
            "invalid_signature",
            Some(twilio_signature(
                TOKEN,
                &server.url(CALL_STATUS_PATH),
                &params,
            )),
        ),
        // Signed for other parameters.
        (
            "invalid_signature",
            Some(twilio_signature(
                TOKEN,
                &url,
                &form(&[
                    ("CallSid", "CA00000000000000000000000000000001"),
                    ("CallStatus", "completed"),
                ]),
            )),
        ),
    ];
    for (code, signature) in cases {
        let (status, body) = post(&server, &params, signature.clone(), CALL_STATUS_PATH).await;
        assert_eq!(status, 403, "{signature:?}: {body}");
        assert_eq!(assert_error(&body), code, "{signature:?}");
    }
    // A query string is part of the signed URL.
    let with_query = format!("{CALL_STATUS_PATH}?tenant=7");
    let sig = twilio_signature(TOKEN, &url, &params);
    let (status, _) = post(&server, &params, Some(sig), &with_query).await;
    assert_eq!(status, 403);
    let sig = twilio_signature(TOKEN, &format!("{PUBLIC}{with_query}"), &params);
    let (status, body) = post(&server, &params, Some(sig), &with_query).await;
    assert_eq!(status, 200, "{body}");
    assert!(stored(&server.store, "CA00000000000000000000000000000001")
        .await
        .is_some());

    // Nothing refused was stored, and the counters still hold.
    assert_invariants(server.store.as_ref()).await;

    // Without an auth token every callback is refused, even a "signed" one.
    let server = self::server(backend, Some(WebhookConfig::new(None))).await;
    let (status, body) = signed(&server, &params).await;
    assert_eq!(status, 403);
    assert_eq!(assert_error(&body), "webhook_disabled");
    let server = self::server(backend, None).await;
    let (status, body) = signed(&server, &params).await;
    assert_eq!(status, 403);
    assert_eq!(assert_error(&body), "webhook_disabled");
}

async fn a_callback_updates_the_stored_call_and_its_counters(backend: Backend) {
    let server = server(backend, Some(config())).await;
    // A root call the sync stored, and its conversation.
    let views = callview_core::testkit::all_conversations(server.store.as_ref())
        .await
        .unwrap();
    let view = &views[0];
    let id = view.conversation.id;
    let sid = view
        .last_message
        .as_ref()
        .unwrap()
        .root
        .call
        .sid
        .to_string();
    let before = stored(&server.store, &sid).await.unwrap();

    let params = form(&[
        ("CallSid", &sid),
        ("AccountSid", before.account_sid.as_deref().unwrap_or("AC1")),
        ("From", before.from.as_deref().unwrap_or("")),
        ("To", before.to.as_deref().unwrap_or("")),
        ("Direction", before.direction.as_str()),
        ("CallStatus", "completed"),
        ("CallDuration", "4321"),
        ("Timestamp", "Thu, 26 Nov 2099 10:00:00 +0000"),
        ("SequenceNumber", "1000"),
        ("CallbackSource", "call-progress-events"),
    ]);
    // No bearer token is needed: the signature is the webhook's authentication.
    let mut events = Box::pin(server.events.subscribe());
    let (status, body) = signed(&server, &params).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "applied");
    let after = stored(&server.store, &sid).await.unwrap();
    assert_eq!(after.status, CallStatus::Completed);
    assert_eq!(after.duration, Some(4321));
    assert_invariants(server.store.as_ref()).await;
    // Open viewers are told at once (after the stream's `hello`).
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match events.next().await {
                Some(e) if e.kind() == "hello" => continue,
                other => return other,
            }
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(event.kind(), "changed", "{event:?}");
    // Exactly once: no second `changed` follows for the same callback.
    let again = tokio::time::timeout(std::time::Duration::from_millis(500), events.next()).await;
    assert!(
        again.is_err(),
        "one callback publishes one event, got another: {again:?}"
    );

    // The viewer shows it at once.
    let (status, messages) = server
        .get_with(
            &format!("/api/conversations/{id}/messages"),
            Some("api-token-for-the-viewer"),
        )
        .await;
    assert_eq!(status, 200);
    assert!(messages.to_string().contains("4321"), "{messages}");

    // A replay changes nothing.
    let snapshot = callview_core::testkit::snapshot(server.store.as_ref())
        .await
        .unwrap();
    let (status, body) = signed(&server, &params).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ignored", "{body}");
    assert_eq!(
        callview_core::testkit::snapshot(server.store.as_ref())
            .await
            .unwrap(),
        snapshot
    );
}

async fn an_unknown_call_is_created_and_events_out_of_order_are_tolerated(backend: Backend) {
    let server = server(backend, Some(config())).await;
    let sid = "CAfeedfeedfeedfeedfeedfeedfeedfeed";
    let event = |status: &str, seq: &str, duration: Option<&str>| {
        let mut params = form(&[
            ("CallSid", sid),
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("From", "+16175550123"),
            ("To", "+19788447773"),
            ("Direction", "inbound"),
            ("CallStatus", status),
            ("Timestamp", "Thu, 26 Nov 2026 10:00:00 +0000"),
            ("SequenceNumber", seq),
        ]);
        if let Some(d) = duration {
            params.push(("CallDuration".into(), d.into()));
        }
        params
    };
    let counts = server.store.counts().await.unwrap();

    let (status, body) = signed(&server, &event("ringing", "1", None)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("applied")),
        "{body}"
    );
    assert_eq!(
        stored(&server.store, sid).await.unwrap().status,
        CallStatus::Ringing
    );
    assert_eq!(server.store.counts().await.unwrap().calls, counts.calls + 1);
    assert_invariants(server.store.as_ref()).await;

    // `completed` (3) arrives before `in-progress` (2); then everything is replayed.
    for (status_name, seq, duration, expected) in [
        ("completed", "3", Some("25"), "applied"),
        ("in-progress", "2", None, "ignored"),
        ("ringing", "1", None, "ignored"),
        ("completed", "3", Some("25"), "ignored"),
    ] {
        let (status, body) = signed(&server, &event(status_name, seq, duration)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], expected, "{status_name} {seq}: {body}");
        let call = stored(&server.store, sid).await.unwrap();
        assert_eq!(
            call.status,
            CallStatus::Completed,
            "after {status_name} {seq}"
        );
        assert_eq!(call.duration, Some(25));
        assert_invariants(server.store.as_ref()).await;
    }
    // Without a sequence number, a non-final status still never replaces a final one.
    let mut late = event("ringing", "", None);
    late.retain(|(k, _)| k != "SequenceNumber");
    let (status, body) = signed(&server, &late).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ignored")));
    assert_eq!(server.store.counts().await.unwrap().calls, counts.calls + 1);

    // A callback that is signed but not a callback is a 400, not a 500.
    let (status, body) = signed(&server, &form(&[("CallStatus", "ringing")])).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(assert_error(&body), "invalid_callback");
    let (status, body) = signed(&server, &form(&[("CallSid", sid), ("SequenceNumber", "x")])).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn without_a_public_url_the_host_header_is_the_signed_url() {
    let server = server(
        Backend::Sqlite,
        Some(WebhookConfig::new(Some(Secret::new(TOKEN)))),
    )
    .await;
    let params = form(&[
        ("CallSid", "CA00000000000000000000000000000009"),
        ("CallStatus", "queued"),
    ]);
    let own = server.url(CALL_STATUS_PATH);
    let (status, body) = post(
        &server,
        &params,
        Some(twilio_signature(TOKEN, &own, &params)),
        CALL_STATUS_PATH,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Behind a TLS proxy that sets X-Forwarded-Proto.
    let https = own.replacen("http://", "https://", 1);
    let response = server
        .http
        .post(&own)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-Forwarded-Proto", "https")
        .header(
            "X-Twilio-Signature",
            twilio_signature(TOKEN, &https, &params),
        )
        .body(encode(&params))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
