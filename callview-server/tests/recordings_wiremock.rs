//! Recordings end to end against a Twilio account's real wire shapes
//! (wiremock, not the simulator), on both stores: a sync through the real
//! `HttpTwilioClient` lists calls, recordings (two pages, one record that
//! does not parse), legacy transcriptions and Voice Intelligence transcripts
//! with paged sentences on their own host; the API then shows the recording
//! on the server, finds the call by a word said, and plays the audio
//! through a redirect to a storage host that never receives credentials.

mod common;

use std::sync::Arc;
use std::time::Duration;

use callview_core::twilio::{Credentials, HttpTwilioClient, RetryPolicy, Secret, TwilioConfig};
use callview_core::{PartyRules, SyncEngine, SyncMode};
use callview_server::{AppState, SyncRunner};
use common::*;
use serde_json::json;
use wiremock::matchers::{method, path, path_regex, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const CALL: &str = "CA11111111111111111111111111111111";
const LEG: &str = "CA22222222222222222222222222222222";
const REC_ROOT: &str = "RE11111111111111111111111111111111";
const REC_LEG: &str = "RE22222222222222222222222222222222";
const OWNED: &str = "+19788447773";
const CUSTOMER: &str = "+16175006181";

fn call(
    sid: &str,
    parent: Option<&str>,
    from: &str,
    to: &str,
    direction: &str,
) -> serde_json::Value {
    json!({
        "sid": sid, "account_sid": ACCOUNT, "parent_call_sid": parent,
        "from": from, "to": to, "direction": direction, "status": "completed",
        "start_time": "Fri, 06 Feb 2026 15:17:05 +0000",
        "end_time": "Fri, 06 Feb 2026 15:19:05 +0000",
        "date_created": "Fri, 06 Feb 2026 15:17:04 +0000",
        "date_updated": "Fri, 06 Feb 2026 15:19:06 +0000",
        "duration": "120", "price": "-0.0170", "price_unit": "USD",
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json"),
        "subresource_uris": {"recordings": format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}/Recordings.json")}
    })
}

fn recording(sid: &str, call: &str, created: &str) -> serde_json::Value {
    json!({
        "sid": sid, "account_sid": ACCOUNT, "call_sid": call, "conference_sid": null,
        "channels": 2, "status": "completed", "source": "DialVerb", "duration": "115",
        "price": "-0.0025", "price_unit": "USD", "error_code": null, "encryption_details": null,
        "start_time": "Fri, 06 Feb 2026 15:17:08 +0000",
        "date_created": created, "date_updated": created,
        "media_url": format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/{sid}"),
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Recordings/{sid}.json"),
        "subresource_uris": {
            "transcriptions": format!("/2010-04-01/Accounts/{ACCOUNT}/Recordings/{sid}/Transcriptions.json"),
            "add_on_results": format!("/2010-04-01/Accounts/{ACCOUNT}/Recordings/{sid}/AddOnResults.json")
        }
    })
}

async fn twilio(storage: &MockServer) -> MockServer {
    let server = MockServer::start().await;
    let base = format!("/2010-04-01/Accounts/{ACCOUNT}");
    Mock::given(method("GET"))
        .and(path(format!("{base}/IncomingPhoneNumbers.json").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "incoming_phone_numbers": [{"sid": "PN1", "phone_number": OWNED, "friendly_name": "Main"}],
            "next_page_uri": null
        })))
        .mount(&server)
        .await;
    // The window's listing has the call and its leg; sweeps get nothing.
    Mock::given(method("GET"))
        .and(path(format!("{base}/Calls.json").as_str()))
        .and(query_param_is_missing("Status"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "calls": [
                call(LEG, Some(CALL), OWNED, "sip:alice@acme.sip.twilio.com", "outbound-dial"),
                call(CALL, None, CUSTOMER, OWNED, "inbound"),
            ],
            "next_page_uri": null, "page": 0, "page_size": 1000
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{base}/Calls.json").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "calls": [], "next_page_uri": null, "page": 0, "page_size": 1000
        })))
        .mount(&server)
        .await;
    // Recordings: two pages; the first also holds a record that does not parse.
    let next = format!("{base}/Recordings.json?PageSize=1000&Page=1&PageToken=PARE1");
    Mock::given(method("GET"))
        .and(path(format!("{base}/Recordings.json").as_str()))
        .and(query_param_is_missing("Page"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "recordings": [
                recording(REC_ROOT, CALL, "Fri, 06 Feb 2026 15:19:09 +0000"),
                {"sid": "RE33333333333333333333333333333333", "call_sid": CALL, "channels": 7}
            ],
            "next_page_uri": next, "page": 0, "page_size": 1000
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{base}/Recordings.json").as_str()))
        .and(query_param("Page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "recordings": [recording(REC_LEG, LEG, "Fri, 06 Feb 2026 15:19:08 +0000")],
            "next_page_uri": null, "page": 1, "page_size": 1000
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{base}/Transcriptions.json").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "transcriptions": [{
                "sid": "TR11111111111111111111111111111111", "account_sid": ACCOUNT,
                "recording_sid": REC_LEG, "status": "completed", "type": "fast",
                "transcription_text": "Please call me back about the gazebo.",
                "duration": "115", "price": "-0.05", "price_unit": "USD",
                "date_created": "Fri, 06 Feb 2026 15:20:00 +0000",
                "date_updated": "Fri, 06 Feb 2026 15:20:30 +0000",
                "uri": format!("{base}/Transcriptions/TR11111111111111111111111111111111.json")
            }],
            "next_page_uri": null
        })))
        .mount(&server)
        .await;
    // An account without texts.
    Mock::given(method("GET"))
        .and(path(format!("{base}/Messages.json").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messages": [], "next_page_uri": null
        })))
        .mount(&server)
        .await;
    // Voice Intelligence, on the same host here (its own base URL), paging
    // by absolute meta.next_page_url.
    Mock::given(method("GET"))
        .and(path("/v2/Transcripts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "transcripts": [{
                "sid": "GT11111111111111111111111111111111", "account_sid": ACCOUNT,
                "service_sid": "GA11111111111111111111111111111111", "status": "completed",
                "language_code": "en-US", "duration": 115,
                "channel": {"media_properties": {"source_sid": REC_ROOT}},
                "date_created": "2026-02-06T15:21:00Z", "date_updated": "2026-02-06T15:22:00Z",
                "links": {"sentences": format!("{}/v2/Transcripts/GT11111111111111111111111111111111/Sentences", server.uri())}
            }],
            "meta": {"page": 0, "page_size": 50, "first_page_url": "", "previous_page_url": null,
                     "next_page_url": null, "key": "transcripts", "url": ""}
        })))
        .mount(&server)
        .await;
    let sentences = "/v2/Transcripts/GT11111111111111111111111111111111/Sentences";
    Mock::given(method("GET"))
        .and(path(sentences))
        .and(query_param_is_missing("Page"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "sentences": [{"sid": "GX1", "media_channel": 1, "sentence_index": 0, "start_time": 0.4,
                           "end_time": 2.2, "transcript": "My radiator is rattling.", "confidence": 0.9}],
            "meta": {"key": "sentences", "next_page_url": format!("{}{sentences}?Page=1&PageSize=50", server.uri())}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(sentences))
        .and(query_param("Page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "sentences": [{"sid": "GX2", "media_channel": 2, "sentence_index": 1, "start_time": 2.5,
                           "end_time": 4.0, "transcript": "A plumber comes on Tuesday.", "confidence": 0.8}],
            "meta": {"key": "sentences", "next_page_url": null}
        })))
        .mount(&server)
        .await;
    // Audio: Twilio redirects to a storage host of its own.
    Mock::given(method("GET"))
        .and(path_regex(
            format!(r"^{base}/Recordings/{REC_ROOT}\.mp3$").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(302).insert_header(
                "Location",
                format!(
                    "{}/bucket/{REC_ROOT}.mp3?X-Amz-Signature=abc",
                    storage.uri()
                )
                .as_str(),
            ),
        )
        .mount(&server)
        .await;
    server
}

fn audio_bytes() -> Vec<u8> {
    (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

async fn synced_against_wire_shapes(backend: Backend) {
    let storage = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/bucket/{REC_ROOT}.mp3").as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Content-Type", "audio/mpeg")
                .set_body_bytes(audio_bytes()),
        )
        .mount(&storage)
        .await;
    let server = twilio(&storage).await;
    let client = Arc::new(
        HttpTwilioClient::new(TwilioConfig {
            credentials: Credentials::AuthToken {
                account_sid: ACCOUNT.to_owned(),
                auth_token: Secret::new("wire-secret"),
            },
            base_url: server.uri(),
            intelligence_base_url: server.uri(),
        })
        .unwrap()
        .with_retry_policy(RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(20),
        }),
    );
    let store = store(backend).await;
    let engine = SyncEngine::new(client.clone(), Arc::clone(&store), PartyRules::default())
        .with_concurrency(1);
    let report = engine
        .run(
            SyncMode::Since(
                chrono::DateTime::parse_from_rfc3339("2026-02-05T00:00:00Z")
                    .unwrap()
                    .into(),
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!(report.inserted, 2, "{report:?}");
    assert_eq!(report.media.recordings_written, 2, "{report:?}");
    assert_eq!(report.media.transcripts_written, 2, "{report:?}");
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.reason.contains("`channels`")),
        "the bad record is reported: {:?}",
        report.skipped
    );

    let runner = SyncRunner::new(engine);
    let api = spawn(
        AppState::new(store)
            .with_sync(runner)
            .with_recordings(client, None),
    )
    .await;
    let (_, list) = api.get("/api/conversations?has_recording=true").await;
    assert_eq!(list["total"], 1, "{list}");
    let id = list["conversations"][0]["id"].as_str().unwrap().to_owned();
    let (_, page) = api.get(&format!("/api/conversations/{id}/messages")).await;
    let message = &page["messages"][0];
    let recordings = message["metadata"]["recordings"].as_array().unwrap();
    let sids: Vec<&str> = recordings
        .iter()
        .map(|r| r["sid"].as_str().unwrap())
        .collect();
    assert_eq!(sids, [REC_LEG, REC_ROOT], "root and leg, newest last");
    assert_eq!(
        message["metadata"]["recording_url"],
        format!("/api/recordings/{REC_ROOT}/audio")
    );
    let root = &recordings[1];
    assert_eq!(root["transcripts"][0]["kind"], "intelligence");
    assert_eq!(
        root["transcripts"][0]["text"],
        "My radiator is rattling. A plumber comes on Tuesday."
    );
    assert_eq!(root["transcripts"][0]["sentences"][1]["channel"], 1);
    assert_eq!(recordings[0]["transcripts"][0]["kind"], "legacy");
    // Words said, in either product, find the conversation.
    for word in ["rattling", "gazebo"] {
        let (_, found) = api.get(&format!("/api/conversations?q={word}")).await;
        assert_eq!(found["total"], 1, "{word}: {found}");
    }
    // The audio, through the redirect: the bytes, and no credentials at
    // the storage host.
    let response = api
        .http
        .get(api.url(&format!("/api/recordings/{REC_ROOT}/audio")))
        .header("Range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(
        response.bytes().await.unwrap().to_vec(),
        audio_bytes()[100..200]
    );
    let stored = storage.received_requests().await.unwrap();
    assert!(!stored.is_empty());
    assert!(
        stored
            .iter()
            .all(|r| r.headers.get("authorization").is_none()),
        "the storage host never gets Twilio's credentials"
    );
    let asked = server.received_requests().await.unwrap();
    assert!(asked
        .iter()
        .all(|r| r.headers.get("authorization").is_some()));
}

on_both_stores!(synced_against_wire_shapes);
