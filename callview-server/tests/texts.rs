//! Text messages through the HTTP API: sending (stored at once, bad input
//! refused with the reason, Twilio's refusals carried back, nothing stored
//! then), the message webhook (signed; inbound texts create their
//! conversation at once, status callbacks move a text forward only), the
//! MMS media proxy and the thread's `type` filter, on both stores.

mod common;

use std::sync::Arc;

use callview_core::text::MessageSid;
use callview_core::twilio::{Secret, TextSender};
use callview_core::{PartyRules, SyncEngine};
use callview_server::texts::{Texting, MESSAGES_WEBHOOK_PATH};
use callview_server::webhook::{twilio_signature, WebhookConfig};
use callview_server::{AppState, SyncRunner};
use callview_sim::SimulatedTwilio;
use common::*;
use serde_json::{json, Value};

const API_TOKEN: &str = "api-token-for-texts";
const AUTH_TOKEN: &str = "texts-test-auth-token-71c2";
const PUBLIC: &str = "https://calls.example.com";

on_both_stores!(
    a_text_sent_is_stored_at_once_and_bad_input_is_refused,
    the_webhook_stores_inbound_texts_and_moves_statuses_forward,
    mms_pictures_stream_through_the_server,
    threads_and_lists_filter_by_type,
);

/// A server over a loaded store; sending on unless `texting` is false.
async fn server(backend: Backend, texting: bool) -> (TestServer, SimulatedTwilio) {
    let store = store(backend).await;
    let sim = sim(300, 23);
    load(&store, &sim).await;
    let runner = SyncRunner::new(SyncEngine::new(
        Arc::new(sim.clone()),
        Arc::clone(&store),
        PartyRules::default(),
    ));
    let mut state = AppState::new(store)
        .with_sync(runner)
        .with_recordings(Arc::new(sim.clone()), None)
        .with_api_token(Some(API_TOKEN))
        .with_webhook(
            WebhookConfig::new(Some(Secret::new(AUTH_TOKEN)))
                .with_public_url(Some(PUBLIC))
                .with_client(Arc::new(sim.clone())),
        );
    if texting {
        let from = sim.with_account(|a| a.owned_numbers()[0].phone_number.clone());
        state = state.with_texting(Texting {
            sender: TextSender::parse(&from),
            client: Arc::new(sim.clone()),
            status_callback: None,
        });
    }
    (spawn(state).await, sim)
}

async fn get(server: &TestServer, path: &str) -> (u16, Value) {
    server.get_with(path, Some(API_TOKEN)).await
}

async fn send(server: &TestServer, conversation: &str, body: Value) -> (u16, Value) {
    let response = server
        .http
        .post(server.url(&format!("/api/conversations/{conversation}/messages")))
        .bearer_auth(API_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    into_json(response).await
}

/// The id of the first conversation whose contact's handle passes `keep`.
async fn conversation_where(server: &TestServer, keep: impl Fn(&str) -> bool) -> String {
    let (_, list) = get(server, "/api/conversations?limit=200").await;
    list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| keep(c["contact"]["handle"].as_str().unwrap()))
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| {
            let handles: Vec<&str> = list["conversations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["contact"]["handle"].as_str().unwrap())
                .collect();
            panic!("no matching conversation among {handles:?} (list {list})")
        })
}

fn encode(params: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// Posts a message webhook signed as Twilio would for the public URL
/// (`sign: false`: without a signature).
async fn webhook(server: &TestServer, pairs: &[(&str, &str)], sign: bool) -> reqwest::Response {
    let params: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut request = server
        .http
        .post(server.url(MESSAGES_WEBHOOK_PATH))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&params));
    if sign {
        let url = format!("{PUBLIC}{MESSAGES_WEBHOOK_PATH}");
        request = request.header(
            "X-Twilio-Signature",
            twilio_signature(AUTH_TOKEN, &url, &params),
        );
    }
    request.send().await.unwrap()
}

async fn a_text_sent_is_stored_at_once_and_bad_input_is_refused(backend: Backend) {
    let (server, sim) = server(backend, true).await;
    // As the account writes it; conversations are keyed by E.164.
    let unsubscribed = sim.with_account(|a| a.unsubscribed_number());
    let unsubscribed = callview_core::Normalizer::default()
        .canonical_phone(&unsubscribed)
        .unwrap_or(unsubscribed);
    let phone = conversation_where(&server, |h| h.starts_with('+') && h != unsubscribed).await;
    let before = server.store.counts().await.unwrap().texts;

    let (status, sent) = send(&server, &phone, json!({"body": "On my way,\nabout 20 min"})).await;
    assert_eq!(status, 201, "{sent}");
    assert_text(&sent, &phone);
    assert_eq!(sent["type"], "sms");
    assert_eq!(sent["body"], "On my way,\nabout 20 min");
    assert_eq!(sent["direction"], "outbound-api");
    assert_eq!(sent["metadata"]["actual_direction"], "outbound");
    assert_eq!(sent["metadata"]["status"], "queued");
    let sid = sent["external_id"].as_str().unwrap().to_owned();
    // Stored at once: the thread starts with it and the simulated account has it.
    let stored = server
        .store
        .text(&MessageSid::new(sid.clone()).unwrap())
        .await
        .unwrap();
    assert_eq!(stored.text.body, "On my way,\nabout 20 min");
    let (_, page) = get(
        &server,
        &format!("/api/conversations/{phone}/messages?limit=1"),
    )
    .await;
    assert_eq!(page["messages"][0]["external_id"], sid.as_str());
    let (_, one) = get(&server, &format!("/api/conversations/{phone}")).await;
    assert_eq!(one["metadata"]["last_message_type"], "sms");
    assert_eq!(one["last_message"]["external_id"], sid.as_str());
    assert!(sim.texts().iter().any(|t| t.sid.as_str() == sid));
    assert_eq!(server.store.counts().await.unwrap().texts, before + 1);

    // Bad input: 400 with the reason, nothing sent or stored.
    let too_long = "x".repeat(1601);
    for (body, code, says) in [
        (json!({"body": ""}), "invalid_body", "empty"),
        (json!({"body": "   "}), "invalid_body", "empty"),
        (json!({"body": too_long}), "invalid_body", "1600"),
        (json!({"text": "hi"}), "invalid_body", "body"),
        (json!({"body": 12}), "invalid_body", "body"),
    ] {
        let (status, error) = send(&server, &phone, body).await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["error"]["code"], code, "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    // Anonymous, SIP or a Voice SDK client.
    let sip = conversation_where(&server, |h| !h.starts_with('+')).await;
    let (status, error) = send(&server, &sip, json!({"body": "Hello"})).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["code"], "cannot_text");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("cannot receive texts"));
    let (status, _) = send(&server, "999999", json!({"body": "Hello"})).await;
    assert_eq!(status, 404);

    // Twilio's refusal comes back with its code; nothing is stored. (The
    // unsubscribed customer's conversation, opened by their STOP.)
    let company = sim.with_account(|a| a.owned_numbers()[0].phone_number.clone());
    let stop = webhook(
        &server,
        &[
            ("MessageSid", "SM0000000000000000000000000000570b"),
            ("SmsStatus", "received"),
            ("From", unsubscribed.as_str()),
            ("To", company.as_str()),
            ("Body", "STOP"),
        ],
        true,
    )
    .await;
    assert_eq!(stop.status(), 200);
    let before = server.store.counts().await.unwrap().texts;
    let refused_to = conversation_where(&server, |h| h == unsubscribed).await;
    let (status, error) = send(&server, &refused_to, json!({"body": "Hello again"})).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["code"], "twilio_refused");
    assert_eq!(error["error"]["twilio_code"], 21610);
    assert!(error["error"]["twilio_message"]
        .as_str()
        .unwrap()
        .contains("unsubscribed"));
    assert_eq!(server.store.counts().await.unwrap().texts, before);

    // Without a sender, sending is off.
    let (off, _sim) = server_without_texting(backend).await;
    let phone = conversation_where(&off, |h| h.starts_with('+')).await;
    let (status, error) = send(&off, &phone, json!({"body": "Hello"})).await;
    assert_eq!(status, 403, "{error}");
    assert_eq!(error["error"]["code"], "sending_disabled");
    let (_, me) = get(&off, "/api/me").await;
    assert_eq!(me["can_send_texts"], false);
    let (_, me) = get(&server, "/api/me").await;
    assert_eq!(me["can_send_texts"], true);
}

async fn server_without_texting(backend: Backend) -> (TestServer, SimulatedTwilio) {
    server(backend, false).await
}

async fn the_webhook_stores_inbound_texts_and_moves_statuses_forward(backend: Backend) {
    let (server, sim) = server(backend, true).await;
    let company = sim.with_account(|a| a.owned_numbers()[0].phone_number.clone());
    let inbound = [
        ("MessageSid", "MM0000000000000000000000000000abcd"),
        ("SmsSid", "MM0000000000000000000000000000abcd"),
        ("SmsStatus", "received"),
        ("From", "+16173721948"),
        ("To", company.as_str()),
        ("Body", "Here is the leak "),
        ("NumMedia", "1"),
        ("MediaUrl0", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM0000000000000000000000000000abcd/Media/ME0000000000000000000000000000abcd"),
        ("MediaContentType0", "image/jpeg"),
        ("AccountSid", "AC00000000000000000000000000000000"),
    ];
    // Unsigned: refused, nothing stored.
    let response = webhook(&server, &inbound, false).await;
    assert_eq!(response.status(), 403);
    assert_eq!(server.store.counts().await.unwrap().texts, {
        let (_, list) = get(&server, "/api/conversations?type=sms&limit=200").await;
        list["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["metadata"]["total_messages"].as_u64().unwrap())
            .sum::<u64>()
    });

    // Signed: stored at once, in a new conversation, answered with TwiML.
    let response = webhook(&server, &inbound, true).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/xml"));
    let (_, list) = get(&server, "/api/conversations?q=6173721948").await;
    let c = &list["conversations"][0];
    assert_eq!(c["metadata"]["total_messages"], 1);
    assert_eq!(c["metadata"]["total_calls"], 0);
    assert_eq!(c["metadata"]["last_message_type"], "mms");
    let last = &c["last_message"];
    assert_text(last, c["id"].as_str().unwrap());
    assert_eq!(last["body"], "Here is the leak ");
    assert_eq!(last["metadata"]["actual_direction"], "inbound");
    assert_eq!(
        last["metadata"]["media"][0]["url"],
        "/api/texts/MM0000000000000000000000000000abcd/media/ME0000000000000000000000000000abcd"
    );
    // The same webhook again changes nothing.
    let response = webhook(&server, &inbound, true).await;
    assert_eq!(response.status(), 200);
    let (_, again) = get(&server, "/api/conversations?q=6173721948").await;
    assert_eq!(again["conversations"][0]["metadata"]["total_messages"], 1);

    // A sent text moves forward with its callbacks, never back.
    let phone = conversation_where(&server, |h| {
        h.starts_with('+') && h != sim.with_account(|a| a.unsubscribed_number())
    })
    .await;
    let (_, sent) = send(&server, &phone, json!({"body": "Confirmed for 3pm"})).await;
    let sid = sent["external_id"].as_str().unwrap().to_owned();
    let status_of = |server: &TestServer| {
        let store = Arc::clone(&server.store);
        let sid = MessageSid::new(sid.clone()).unwrap();
        async move { store.text(&sid).await.unwrap().text.status.to_string() }
    };
    for (status, expected) in [
        ("sent", "sent"),
        ("delivered", "delivered"),
        ("sent", "delivered"),
        ("queued", "delivered"),
    ] {
        let response = webhook(
            &server,
            &[
                ("MessageSid", sid.as_str()),
                ("MessageStatus", status),
                ("AccountSid", "AC00000000000000000000000000000000"),
            ],
            true,
        )
        .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(status_of(&server).await, expected, "after {status}: {body}");
    }
    // A failure after delivery is a status of its own rank: kept with its code.
    let response = webhook(
        &server,
        &[
            ("MessageSid", "SM00000000000000000000000000000bad"),
            ("MessageStatus", "bogus-status"),
        ],
        true,
    )
    .await;
    assert_eq!(
        response.status(),
        200,
        "an unknown message is stored from its callback"
    );
    let response = webhook(&server, &[("MessageStatus", "sent")], true).await;
    assert_eq!(response.status(), 400);
}

async fn mms_pictures_stream_through_the_server(backend: Backend) {
    let (server, _sim) = server(backend, true).await;
    let (_, list) = get(&server, "/api/conversations?type=sms&limit=200").await;
    let mut picture = None;
    for c in list["conversations"].as_array().unwrap() {
        let (_, page) = get(
            &server,
            &format!(
                "/api/conversations/{}/messages?type=sms&limit=500",
                c["id"].as_str().unwrap()
            ),
        )
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
            .next();
        if picture.is_some() {
            break;
        }
    }
    let picture = picture.expect("the simulated account has MMS");
    let url = picture["url"].as_str().unwrap();
    let response = server
        .http
        .get(server.url(url))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        picture["content_type"].as_str().unwrap()
    );
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");

    // Without the token: refused.
    let response = server.http.get(server.url(url)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    // Media the stored text does not list, and texts not stored: 404 JSON.
    let text_sid = url.split('/').nth(3).unwrap();
    for path in [
        format!("/api/texts/{text_sid}/media/ME00000000000000000000000000000000"),
        "/api/texts/SM00000000000000000000000000000000/media/ME00000000000000000000000000000000"
            .to_owned(),
        "/api/texts/not-a-sid/media/ME1".to_owned(),
    ] {
        let (status, body) = get(&server, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
}

async fn threads_and_lists_filter_by_type(backend: Backend) {
    let (server, _sim) = server(backend, true).await;
    let (_, texting) = get(&server, "/api/conversations?type=sms&limit=200").await;
    let (_, calling) = get(&server, "/api/conversations?type=call&limit=200").await;
    let (_, all) = get(&server, "/api/conversations?limit=200").await;
    let total = |v: &Value| v["total"].as_u64().unwrap();
    assert!(total(&texting) > 0 && total(&calling) > 0);
    assert!(total(&texting) <= total(&all) && total(&calling) <= total(&all));
    for c in texting["conversations"].as_array().unwrap() {
        assert!(c["metadata"]["total_messages"].as_u64().unwrap() > 0, "{c}");
    }
    for c in calling["conversations"].as_array().unwrap() {
        assert!(c["metadata"]["total_calls"].as_u64().unwrap() > 0, "{c}");
    }
    // A conversation with both kinds: each filter keeps its own.
    let both = all["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["metadata"]["total_messages"].as_u64().unwrap() > 0
                && c["metadata"]["total_calls"].as_u64().unwrap() > 0
        })
        .expect("a customer who both calls and texts");
    let id = both["id"].as_str().unwrap();
    for (kind, expected, allowed) in [
        (
            "sms",
            &both["metadata"]["total_messages"],
            &["sms", "mms"][..],
        ),
        ("call", &both["metadata"]["total_calls"], &["call"][..]),
    ] {
        let (status, page) = get(
            &server,
            &format!("/api/conversations/{id}/messages?type={kind}&limit=500"),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let messages = page["messages"].as_array().unwrap();
        assert_eq!(&json!(messages.len()), expected);
        assert_eq!(&page["total"], expected);
        assert!(messages
            .iter()
            .all(|m| allowed.contains(&m["type"].as_str().unwrap())));
    }
    let (status, error) = get(
        &server,
        &format!("/api/conversations/{id}/messages?type=fax"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(error["error"]["message"].as_str().unwrap().contains("type"));
    let (status, _) = get(&server, "/api/conversations?type=fax").await;
    assert_eq!(status, 400);
}
