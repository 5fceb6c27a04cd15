//! `HttpTwilioClient` against a wiremock server.

use std::time::Duration;

use base64::Engine as _;
use callview_core::recording::RecordingSid;
use callview_core::text::{MessageSid, TextDirection, TextMedia, TextStatus};
use callview_core::twilio::{
    call_pages, recording_pages, AudioFormat, CallFilter, Credentials, HttpTwilioClient,
    OutgoingText, PageToken, RecordingFilter, RetryPolicy, Secret, TextFilter, TextSender,
    TranscriptFilter, TwilioConfig,
};
use callview_core::{CallSid, CallStatus, TwilioClient, TwilioError};
use chrono::{TimeZone, Utc};
use futures::TryStreamExt;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "s3cr3t-auth-token-value";
const CALLS_PATH: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls.json";

fn fast_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    }
}

fn config(server: &MockServer) -> TwilioConfig {
    TwilioConfig {
        credentials: Credentials::AuthToken {
            account_sid: ACCOUNT.into(),
            auth_token: Secret::new(TOKEN),
        },
        base_url: server.uri(),
        intelligence_base_url: server.uri(),
    }
}

fn client(server: &MockServer) -> HttpTwilioClient {
    HttpTwilioClient::new(config(server))
        .unwrap()
        .with_retry_policy(fast_retries(3))
}

fn call_json(sid: &str) -> Value {
    json!({
        "sid": sid,
        "account_sid": ACCOUNT,
        "from": "+16175006181",
        "to": "+19788447773",
        "status": "completed",
        "direction": "inbound",
        "start_time": "Fri, 06 Feb 2026 15:17:13 +0000",
        "end_time": "Fri, 06 Feb 2026 15:17:53 +0000",
        "duration": "40",
        "price": "-0.01400",
        "price_unit": "USD"
    })
}

fn page(calls: Vec<Value>, next: Option<&str>) -> Value {
    json!({
        "calls": calls,
        "first_page_uri": format!("{CALLS_PATH}?PageSize=1000&Page=0"),
        "next_page_uri": next,
        "previous_page_uri": null,
        "page": 0,
        "page_size": 1000,
        "start": 0,
        "end": 0,
        "uri": CALLS_PATH
    })
}

fn ok_json(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn authorization(request: &Request) -> String {
    request
        .headers
        .get("authorization")
        .expect("an Authorization header")
        .to_str()
        .unwrap()
        .to_owned()
}

fn path_and_query(request: &Request) -> String {
    match request.url.query() {
        Some(q) => format!("{}?{q}", request.url.path()),
        None => request.url.path().to_owned(),
    }
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

#[tokio::test]
async fn first_list_request_has_exact_path_query_and_auth() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CALLS_PATH))
        .respond_with(ok_json(page(vec![call_json("CA1")], None)))
        .mount(&server)
        .await;

    let filter = CallFilter {
        start_time_before: Some(Utc.with_ymd_and_hms(2026, 3, 1, 12, 30, 0).unwrap()),
        status: Some(CallStatus::NoAnswer),
        parent_call_sid: Some(CallSid::new("CAparent").unwrap()),
        ..CallFilter::started_after(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap())
    };
    let page = client(&server)
        .list_calls_page(&filter, None)
        .await
        .unwrap();
    assert_eq!(page.calls.len(), 1);
    assert!(page.next.is_none());

    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.url.path(), CALLS_PATH);
    let query = request.url.query().unwrap();
    assert!(
        query.contains("StartTime%3E=2026-02-01T00:00:00Z"),
        "{query}"
    );
    assert!(
        query.contains("StartTime%3C=2026-03-01T12:30:00Z"),
        "{query}"
    );
    assert!(query.contains("PageSize=1000"), "{query}");
    assert!(query.contains("Status=no-answer"), "{query}");
    assert!(query.contains("ParentCallSid=CAparent"), "{query}");
    assert_eq!(
        query,
        "PageSize=1000&StartTime%3E=2026-02-01T00:00:00Z&StartTime%3C=2026-03-01T12:30:00Z\
         &Status=no-answer&ParentCallSid=CAparent"
    );
    assert_eq!(authorization(request), basic(ACCOUNT, TOKEN));
}

#[tokio::test]
async fn unset_filters_are_not_sent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CALLS_PATH))
        .respond_with(ok_json(page(vec![], None)))
        .mount(&server)
        .await;
    client(&server)
        .list_calls_page(&CallFilter::default(), None)
        .await
        .unwrap();
    let received = requests(&server).await;
    assert_eq!(received[0].url.query(), Some("PageSize=1000"));
}

#[tokio::test]
async fn api_key_credentials_are_sent_as_basic_auth() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CALLS_PATH))
        .respond_with(ok_json(page(vec![], None)))
        .mount(&server)
        .await;
    let config = TwilioConfig {
        credentials: Credentials::ApiKey {
            account_sid: ACCOUNT.into(),
            api_key: "SK0123456789abcdef0123456789abcdef".into(),
            api_secret: Secret::new("key-secret"),
        },
        base_url: server.uri(),
        intelligence_base_url: server.uri(),
    };
    let client = HttpTwilioClient::new(config).unwrap();
    assert_eq!(client.account_sid(), ACCOUNT);
    client
        .list_calls_page(&CallFilter::default(), None)
        .await
        .unwrap();
    let received = requests(&server).await;
    assert_eq!(received[0].url.path(), CALLS_PATH);
    assert_eq!(
        authorization(&received[0]),
        basic("SK0123456789abcdef0123456789abcdef", "key-secret")
    );
}

#[tokio::test]
async fn pages_follow_next_page_uri_verbatim() {
    let server = MockServer::start().await;
    let next1 = format!("{CALLS_PATH}?PageSize=2&Page=1&PageToken=PACA2");
    let next2 = format!("{CALLS_PATH}?PageSize=2&Page=2&PageToken=PACA4");
    Mock::given(method("GET"))
        .and(path(CALLS_PATH))
        .and(query_param_is_missing("PageToken"))
        .respond_with(ok_json(page(
            vec![call_json("CA1"), call_json("CA2")],
            Some(&next1),
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(CALLS_PATH))
        .and(query_param("PageToken", "PACA2"))
        .respond_with(ok_json(page(
            vec![call_json("CA3"), call_json("CA4")],
            Some(&next2),
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(CALLS_PATH))
        .and(query_param("PageToken", "PACA4"))
        .respond_with(ok_json(page(vec![call_json("CA5")], None)))
        .expect(1)
        .mount(&server)
        .await;

    let client = client(&server);
    let filter = CallFilter {
        page_size: 2,
        ..CallFilter::started_after(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap())
    };
    let pages: Vec<_> = call_pages(&client, filter).try_collect().await.unwrap();
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[0].next, Some(PageToken(next1.clone())));
    assert_eq!(pages[1].next, Some(PageToken(next2.clone())));
    assert_eq!(pages[2].next, None);
    let sids: Vec<String> = pages
        .iter()
        .flat_map(|p| p.calls.iter().map(|c| c.sid.to_string()))
        .collect();
    assert_eq!(sids, ["CA1", "CA2", "CA3", "CA4", "CA5"]);

    let received = requests(&server).await;
    assert_eq!(received.len(), 3);
    assert!(received[0]
        .url
        .query()
        .unwrap()
        .contains("StartTime%3E=2026-02-01T00:00:00Z"));
    // The filter is not re-added: the next pages are requested exactly as given.
    assert_eq!(path_and_query(&received[1]), next1);
    assert_eq!(path_and_query(&received[2]), next2);
    for request in &received {
        assert_eq!(authorization(request), basic(ACCOUNT, TOKEN));
    }
}

#[tokio::test]
async fn empty_next_page_uri_is_the_last_page() {
    let server = MockServer::start().await;
    let mut body = page(vec![call_json("CA1")], None);
    body["next_page_uri"] = json!("");
    Mock::given(method("GET"))
        .respond_with(ok_json(body))
        .mount(&server)
        .await;
    let page = client(&server)
        .list_calls_page(&CallFilter::default(), None)
        .await
        .unwrap();
    assert!(page.next.is_none());
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "0")
                .set_body_json(json!({
                    "code": 20429, "message": "Too Many Requests",
                    "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429
                })),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok_json(page(vec![call_json("CA1")], None)))
        .mount(&server)
        .await;

    let page = client(&server)
        .list_calls_page(&CallFilter::default(), None)
        .await
        .unwrap();
    assert_eq!(page.calls.len(), 1);
    assert_eq!(requests(&server).await.len(), 2);
}

/// Records every event an observed client reports.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<callview_core::twilio::TwilioEvent>>);

impl callview_core::twilio::TwilioObserver for Recorder {
    fn observe(&self, event: &callview_core::twilio::TwilioEvent) {
        self.0.lock().unwrap().push(*event);
    }
}

#[tokio::test]
async fn the_observer_hears_each_answer_its_status_and_each_retry() {
    use callview_core::twilio::TwilioEvent;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok_json(page(vec![call_json("CA1")], None)))
        .mount(&server)
        .await;
    let recorder = std::sync::Arc::new(Recorder::default());
    let client = client(&server).with_observer(recorder.clone());
    client
        .list_calls_page(&CallFilter::default(), None)
        .await
        .unwrap();
    let events = recorder.0.lock().unwrap().clone();
    let statuses: Vec<u16> = events
        .iter()
        .filter_map(|e| match e {
            TwilioEvent::Answered { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, vec![429, 200], "{events:?}");
    let retries: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            TwilioEvent::Retry {
                attempt, status, ..
            } => Some((*attempt, *status)),
            _ => None,
        })
        .collect();
    assert_eq!(retries, vec![(1, Some(429))], "{events:?}");

    // A request that gets no answer at all.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let recorder = std::sync::Arc::new(Recorder::default());
    let config = TwilioConfig {
        base_url: format!("http://{closed}"),
        ..config(&server)
    };
    let unreachable = HttpTwilioClient::new(config)
        .unwrap()
        .with_retry_policy(fast_retries(2))
        .with_observer(recorder.clone());
    assert!(unreachable
        .list_calls_page(&CallFilter::default(), None)
        .await
        .is_err());
    let events = recorder.0.lock().unwrap().clone();
    let no_answers = events
        .iter()
        .filter(|e| matches!(e, TwilioEvent::NoAnswer { .. }))
        .count();
    assert_eq!(no_answers, 2, "{events:?}");
    assert!(
        events.iter().any(|e| matches!(
            e,
            TwilioEvent::Retry {
                attempt: 1,
                status: None,
                ..
            }
        )),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_503_storm_exhausts_the_retry_budget() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream unavailable"))
        .mount(&server)
        .await;

    let client = client(&server).with_retry_policy(fast_retries(4));
    let err = client
        .list_calls_page(&CallFilter::default(), None)
        .await
        .unwrap_err();
    match &err {
        TwilioError::RetriesExhausted { attempts, last } => {
            assert_eq!(*attempts, 4);
            assert!(
                matches!(**last, TwilioError::Api { status: 503, .. }),
                "{last:?}"
            );
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(requests(&server).await.len(), 4);
}

#[tokio::test]
async fn a_400_is_an_api_error_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 20001, "message": "Invalid PageSize",
            "more_info": "https://www.twilio.com/docs/errors/20001", "status": 400
        })))
        .mount(&server)
        .await;
    let err = client(&server)
        .list_calls_page(&CallFilter::default(), None)
        .await
        .unwrap_err();
    match &err {
        TwilioError::Api {
            status,
            code,
            message,
            more_info,
        } => {
            assert_eq!(*status, 400);
            assert_eq!(*code, Some(20001));
            assert_eq!(message, "Invalid PageSize");
            assert_eq!(
                more_info.as_deref(),
                Some("https://www.twilio.com/docs/errors/20001")
            );
        }
        other => panic!("expected Api, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn a_401_is_not_retried_and_never_shows_the_secret() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "code": 20003, "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401
        })))
        .mount(&server)
        .await;

    let client = client(&server);
    let err = client
        .list_calls_page(&CallFilter::default(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TwilioError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(requests(&server).await.len(), 1);
    let shown = format!("{err} {err:?} {client:?}");
    assert!(shown.contains("TWILIO_ACCOUNT_SID"), "{shown}");
    assert!(shown.contains("TWILIO_AUTH_TOKEN"), "{shown}");
    assert!(!shown.contains(TOKEN), "{shown}");
}

#[tokio::test]
async fn a_403_is_unauthorized() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    let err = client(&server)
        .fetch_call(&CallSid::new("CA1").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TwilioError::Unauthorized { status: 403, .. }),
        "{err:?}"
    );
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn truncated_json_is_retried_then_reported_as_decode() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/json")
                .set_body_string(r#"{"calls": [{"sid": "CA1""#),
        )
        .mount(&server)
        .await;
    let err = client(&server)
        .list_calls_page(&CallFilter::default(), None)
        .await
        .unwrap_err();
    match &err {
        TwilioError::RetriesExhausted { attempts, last } => {
            assert_eq!(*attempts, 3);
            assert!(matches!(**last, TwilioError::Decode { .. }), "{last:?}");
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn truncated_once_then_good_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"calls": [{"sid": "CA1""#))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok_json(page(vec![call_json("CA1")], None)))
        .mount(&server)
        .await;
    let page = client(&server)
        .list_calls_page(&CallFilter::default(), None)
        .await
        .unwrap();
    assert_eq!(page.calls.len(), 1);
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn a_page_without_calls_array_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok_json(json!({"next_page_uri": null})))
        .mount(&server)
        .await;
    let err = client(&server)
        .list_calls_page(&CallFilter::default(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, TwilioError::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn odd_records_are_parsed_or_rejected_never_dropped() {
    let server = MockServer::start().await;
    let mut on_hold = call_json("CA1");
    on_hold["status"] = json!("on-hold");
    let nulls = json!({
        "sid": "CA2", "account_sid": null, "parent_call_sid": null, "to": null,
        "from": null, "status": null, "direction": null, "start_time": null,
        "end_time": null, "duration": null, "price": null, "price_unit": null,
        "queue_time": null, "answered_by": null, "subresource_uris": null
    });
    let no_sid = json!({"status": "completed", "from": "+15550001111"});
    let bad_duration = json!({"sid": "CA3", "duration": "-3"});
    Mock::given(method("GET"))
        .respond_with(ok_json(page(
            vec![on_hold, nulls, no_sid, bad_duration, call_json("CA4")],
            None,
        )))
        .mount(&server)
        .await;

    let page = client(&server)
        .list_calls_page(&CallFilter::default(), None)
        .await
        .unwrap();
    let sids: Vec<&str> = page.calls.iter().map(|c| c.sid.as_str()).collect();
    assert_eq!(sids, ["CA1", "CA2", "CA4"]);
    assert_eq!(page.calls[0].status, CallStatus::Other("on-hold".into()));
    assert!(page.calls[1].start_time.is_none());
    assert!(page.calls[1].from.is_none());
    assert!(page.calls[1].price.is_none());
    assert_eq!(page.rejected.len(), 2);
    assert_eq!(page.rejected[0].sid, None);
    assert!(
        page.rejected[0].reason.contains("sid"),
        "{:?}",
        page.rejected
    );
    assert_eq!(page.rejected[1].sid.as_deref(), Some("CA3"));
}

#[tokio::test]
async fn fetch_call_gets_one_call_and_404_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Calls/CA0000000000000000000000000000000a.json"
        )))
        .respond_with(ok_json(call_json("CA0000000000000000000000000000000a")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!(
            "/2010-04-01/Accounts/{ACCOUNT}/Calls/CAffffffffffffffffffffffffffffffff.json"
        )))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "code": 20404,
            "message": "The requested resource /2010-04-01/Accounts/AC.../Calls/CAff....json was not found",
            "more_info": "https://www.twilio.com/docs/errors/20404",
            "status": 404
        })))
        .mount(&server)
        .await;

    let client = client(&server);
    let call = client
        .fetch_call(&CallSid::new("CA0000000000000000000000000000000a").unwrap())
        .await
        .unwrap();
    assert_eq!(call.duration, Some(40));

    let err = client
        .fetch_call(&CallSid::new("CAffffffffffffffffffffffffffffffff").unwrap())
        .await
        .unwrap_err();
    match &err {
        TwilioError::NotFound { what } => {
            assert!(
                what.contains("CAffffffffffffffffffffffffffffffff"),
                "{what}"
            )
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn incoming_numbers_are_listed_over_all_pages() {
    let server = MockServer::start().await;
    let numbers_path = format!("/2010-04-01/Accounts/{ACCOUNT}/IncomingPhoneNumbers.json");
    let next = format!("{numbers_path}?PageSize=1&Page=1&PageToken=PAPN1");
    Mock::given(method("GET"))
        .and(path(numbers_path.as_str()))
        .and(query_param_is_missing("PageToken"))
        .respond_with(ok_json(json!({
            "incoming_phone_numbers": [
                {"sid": "PN1", "phone_number": "+19788447773", "friendly_name": "Main line"}
            ],
            "next_page_uri": next,
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(numbers_path.as_str()))
        .and(query_param("PageToken", "PAPN1"))
        .respond_with(ok_json(json!({
            "incoming_phone_numbers": [
                {"sid": "PN2", "phone_number": "+16175006181", "friendly_name": null}
            ],
            "next_page_uri": null,
        })))
        .expect(1)
        .mount(&server)
        .await;

    let numbers = client(&server).list_incoming_numbers().await.unwrap();
    assert_eq!(numbers.len(), 2);
    assert_eq!(numbers[0].sid, "PN1");
    assert_eq!(numbers[0].phone_number, "+19788447773");
    assert_eq!(numbers[0].friendly_name.as_deref(), Some("Main line"));
    assert_eq!(numbers[1].phone_number, "+16175006181");
    assert_eq!(numbers[1].friendly_name, None);
    let received = requests(&server).await;
    assert_eq!(path_and_query(&received[1]), next);
}

const RE1: &str = "RE00000000000000000000000000000001";
const RE2: &str = "RE00000000000000000000000000000002";

fn recording_json(sid: &str, call: &str) -> Value {
    json!({
        "sid": sid, "call_sid": call, "account_sid": ACCOUNT, "duration": "12",
        "status": "completed", "channels": 2, "source": "DialVerb",
        "price": "-0.0025", "price_unit": "USD",
        "start_time": "Fri, 06 Feb 2026 15:17:20 +0000",
        "date_created": "Fri, 06 Feb 2026 15:17:33 +0000",
        "date_updated": "Fri, 06 Feb 2026 15:17:40 +0000",
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Recordings/{sid}.json")
    })
}

#[tokio::test]
async fn recordings_are_listed_by_window_and_paged() {
    let server = MockServer::start().await;
    let recordings_path = format!("/2010-04-01/Accounts/{ACCOUNT}/Recordings.json");
    let next = format!("{recordings_path}?PageSize=1&Page=1&PageToken=PA1");
    Mock::given(method("GET"))
        .and(path(recordings_path.as_str()))
        .and(query_param("DateCreated>", "2026-02-01T00:00:00Z"))
        .and(query_param("PageSize", "1"))
        .and(query_param_is_missing("Page"))
        .respond_with(ok_json(json!({
            "recordings": [recording_json(RE1, "CA1"), {"sid": "RE-broken"}],
            "next_page_uri": next,
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(recordings_path.as_str()))
        .and(query_param("Page", "1"))
        .respond_with(ok_json(json!({
            "recordings": [recording_json(RE2, "CA2")],
            "next_page_uri": null,
        })))
        .expect(1)
        .mount(&server)
        .await;

    let filter = RecordingFilter {
        created_after: Some(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap()),
        page_size: 1,
        ..RecordingFilter::default()
    };
    let client = client(&server);
    let pages: Vec<_> = recording_pages(&client, filter)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 2);
    let first = &pages[0];
    assert_eq!(first.recordings.len(), 1);
    let r = &first.recordings[0];
    assert_eq!(r.sid.as_str(), RE1);
    assert_eq!(r.call_sid.as_ref().map(CallSid::as_str), Some("CA1"));
    assert_eq!((r.duration, r.channels), (Some(12), Some(2)));
    assert_eq!(r.price.map(|p| p.to_string()).as_deref(), Some("-0.0025"));
    assert_eq!(
        r.date_created,
        Some(Utc.with_ymd_and_hms(2026, 2, 6, 15, 17, 33).unwrap())
    );
    // The malformed record is reported with its reason, the rest kept.
    assert_eq!(first.rejected.len(), 1);
    assert!(
        first.rejected[0].reason.contains("`sid`"),
        "{:?}",
        first.rejected
    );
    assert_eq!(pages[1].recordings[0].sid.as_str(), RE2);
}

#[tokio::test]
async fn audio_follows_redirects_without_credentials() {
    let server = MockServer::start().await;
    let audio_path = format!("/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RE1}.mp3");
    let bytes: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    Mock::given(method("GET"))
        .and(path(audio_path.as_str()))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "Location",
            format!("{}/storage/{RE1}.mp3?Signature=abc", server.uri()).as_str(),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/storage/{RE1}.mp3").as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Content-Type", "audio/mpeg")
                .set_body_bytes(bytes.clone()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let sid = RecordingSid::new(RE1).unwrap();
    let audio = client(&server)
        .recording_audio(&sid, AudioFormat::Mp3)
        .await
        .unwrap();
    assert_eq!(audio.content_type.as_deref(), Some("audio/mpeg"));
    assert_eq!(audio.content_length, Some(bytes.len() as u64));
    let chunks: Vec<bytes::Bytes> = audio.body.try_collect().await.unwrap();
    assert_eq!(chunks.concat(), bytes);
    let received = requests(&server).await;
    assert_eq!(received.len(), 2);
    assert!(
        received[0].headers.get("authorization").is_some(),
        "Twilio gets the credentials"
    );
    assert!(
        received[1].headers.get("authorization").is_none(),
        "the storage host never does"
    );
}

#[tokio::test]
async fn deleted_audio_is_not_found_and_failures_say_why() {
    let server = MockServer::start().await;
    let base = format!("/2010-04-01/Accounts/{ACCOUNT}/Recordings");
    Mock::given(method("GET"))
        .and(path(format!("{base}/{RE1}.wav").as_str()))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "code": 20404, "message": "The requested resource was not found", "status": 404
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{base}/{RE2}.mp3").as_str()))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 20001, "message": "Bad request", "status": 400
        })))
        .mount(&server)
        .await;
    let client = client(&server).with_retry_policy(fast_retries(2));
    let gone = client
        .recording_audio(&RecordingSid::new(RE1).unwrap(), AudioFormat::Wav)
        .await
        .unwrap_err();
    assert!(matches!(gone, TwilioError::NotFound { .. }), "{gone:?}");
    let bad = client
        .recording_audio(&RecordingSid::new(RE2).unwrap(), AudioFormat::Mp3)
        .await
        .unwrap_err();
    assert!(
        matches!(
            bad,
            TwilioError::Api {
                status: 400,
                code: Some(20001),
                ..
            }
        ),
        "{bad:?}"
    );
}

#[tokio::test]
async fn transcripts_of_both_products_are_paged() {
    let server = MockServer::start().await;
    // Legacy: the account's list, newest first.
    Mock::given(method("GET"))
        .and(path(
            format!("/2010-04-01/Accounts/{ACCOUNT}/Transcriptions.json").as_str(),
        ))
        .and(query_param("PageSize", "50"))
        .respond_with(ok_json(json!({
            "transcriptions": [{
                "sid": "TR1", "recording_sid": RE1, "status": "completed",
                "transcription_text": "Call me back about the boiler.",
                "date_created": "Fri, 06 Feb 2026 15:18:00 +0000"
            }],
            "next_page_uri": null,
        })))
        .expect(1)
        .mount(&server)
        .await;
    // Voice Intelligence: its own base URL (the same server here), pages by
    // the absolute meta.next_page_url.
    let next = format!(
        "{}/v2/Transcripts?PageSize=1&Page=1&PageToken=PT1",
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path("/v2/Transcripts"))
        .and(query_param("AfterDateCreated", "2026-02-01T00:00:00Z"))
        .and(query_param_is_missing("Page"))
        .respond_with(ok_json(json!({
            "transcripts": [{
                "sid": "GT1", "status": "completed", "language_code": "en-US",
                "channel": {"media_properties": {"source_sid": RE1}},
                "date_created": "2026-02-06T15:20:00Z"
            }],
            "meta": {"next_page_url": next, "page": 0, "page_size": 1, "key": "transcripts"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/Transcripts"))
        .and(query_param("Page", "1"))
        .respond_with(ok_json(json!({
            "transcripts": [],
            "meta": {"next_page_url": null, "page": 1, "page_size": 1, "key": "transcripts"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let sentences_next = format!("{}/v2/Transcripts/GT1/Sentences?Page=1", server.uri());
    Mock::given(method("GET"))
        .and(path("/v2/Transcripts/GT1/Sentences"))
        .and(query_param_is_missing("Page"))
        .respond_with(ok_json(json!({
            "sentences": [{"sid": "GX1", "media_channel": 1, "sentence_index": 0,
                           "start_time": "0.4", "end_time": "1.9", "transcript": "Hello.",
                           "confidence": "0.95"}],
            "meta": {"next_page_url": sentences_next, "key": "sentences"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/Transcripts/GT1/Sentences"))
        .and(query_param("Page", "1"))
        .respond_with(ok_json(json!({
            "sentences": [{"sid": "GX2", "media_channel": 2, "sentence_index": 1,
                           "start_time": 2.0, "end_time": 3.5, "transcript": "A plumber is on the way."}],
            "meta": {"next_page_url": null, "key": "sentences"}
        })))
        .expect(1)
        .mount(&server)
        .await;

    let client = client(&server);
    let legacy = client.list_transcriptions_page(50, None).await.unwrap();
    assert_eq!(legacy.transcripts[0].text, "Call me back about the boiler.");
    assert_eq!(
        legacy.transcripts[0]
            .recording_sid
            .as_ref()
            .map(RecordingSid::as_str),
        Some(RE1)
    );
    let filter = TranscriptFilter {
        created_after: Some(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap()),
        ..TranscriptFilter::default()
    };
    let first = client
        .list_intelligence_transcripts_page(&filter, None)
        .await
        .unwrap();
    assert_eq!(first.transcripts[0].sid, "GT1");
    let token = first.next.clone().expect("a next page");
    let second = client
        .list_intelligence_transcripts_page(&filter, Some(&token))
        .await
        .unwrap();
    assert!(second.transcripts.is_empty() && second.next.is_none());
    let sentences = client.transcript_sentences("GT1").await.unwrap();
    assert_eq!(sentences.len(), 2);
    assert_eq!((sentences[0].channel, sentences[1].channel), (0, 1));
    assert_eq!(sentences[1].text, "A plumber is on the way.");
    // A next page URL on another host is refused: credentials stay home.
    let foreign = PageToken("https://evil.example/v2/Transcripts".into());
    assert!(matches!(
        client
            .list_intelligence_transcripts_page(&filter, Some(&foreign))
            .await,
        Err(TwilioError::Config(_))
    ));
}

#[tokio::test]
async fn a_slow_server_times_out_and_is_retried_as_transport() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok_json(page(vec![], None)).set_delay(Duration::from_millis(500)))
        .mount(&server)
        .await;

    let client = client(&server)
        .with_retry_policy(fast_retries(2))
        .with_timeout(Duration::from_millis(100));
    let err = client
        .list_calls_page(&CallFilter::default(), None)
        .await
        .unwrap_err();
    match &err {
        TwilioError::RetriesExhausted { attempts, last } => {
            assert_eq!(*attempts, 2);
            assert!(matches!(**last, TwilioError::Transport(_)), "{last:?}");
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
    assert!(!err.to_string().contains(TOKEN));
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = TwilioConfig {
        credentials: Credentials::AuthToken {
            account_sid: ACCOUNT.into(),
            auth_token: Secret::new(TOKEN),
        },
        base_url: format!("http://127.0.0.1:{port}"),
        intelligence_base_url: format!("http://127.0.0.1:{port}"),
    };
    let err = HttpTwilioClient::new(config)
        .unwrap()
        .with_retry_policy(fast_retries(2))
        .list_calls_page(&CallFilter::default(), None)
        .await
        .unwrap_err();
    match &err {
        TwilioError::RetriesExhausted { attempts, last } => {
            assert_eq!(*attempts, 2);
            assert!(matches!(**last, TwilioError::Transport(_)), "{last:?}");
        }
        other => panic!("expected RetriesExhausted, got {other:?}"),
    }
}

#[tokio::test]
async fn next_page_uris_outside_the_base_are_refused() {
    let server = MockServer::start().await;
    let err = client(&server)
        .list_calls_page(
            &CallFilter::default(),
            Some(&PageToken("https://evil.example/steal".into())),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TwilioError::Config(_)), "{err:?}");
    assert!(requests(&server).await.is_empty());
}

#[test]
fn bad_base_urls_are_config_errors() {
    for base in ["not a url", "ftp://example.com", "mailto:x@example.com"] {
        let config = TwilioConfig {
            credentials: Credentials::AuthToken {
                account_sid: ACCOUNT.into(),
                auth_token: Secret::new(TOKEN),
            },
            base_url: base.into(),
            intelligence_base_url: base.into(),
        };
        let err = HttpTwilioClient::new(config).unwrap_err();
        assert!(matches!(err, TwilioError::Config(_)), "{base}: {err:?}");
        assert!(!format!("{err} {err:?}").contains(TOKEN));
    }
}

#[test]
fn default_retry_policy() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.max_attempts, 5);
    assert_eq!(policy.initial_backoff, Duration::from_millis(500));
    assert_eq!(policy.max_backoff, Duration::from_secs(30));
}

// ---------------------------------------------------------------------------
// Text messages (SMS / MMS)
// ---------------------------------------------------------------------------

const MESSAGES_PATH: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";
const SM1: &str = "SM00000000000000000000000000000001";
const SM2: &str = "SM00000000000000000000000000000002";
const SM3: &str = "SM00000000000000000000000000000003";
const MM1: &str = "MM0000000000000000000000000000000a";
const ME1: &str = "ME00000000000000000000000000000001";
const ME2: &str = "ME00000000000000000000000000000002";
const MG1: &str = "MG0123456789abcdef0123456789abcdef";

/// Matches a request whose query string is exactly this text, as sent on
/// the wire (no decoding, no reordering).
struct RawQuery(String);

impl wiremock::Match for RawQuery {
    fn matches(&self, request: &Request) -> bool {
        request.url.query() == Some(self.0.as_str())
    }
}

/// Matches a request that carries no `Authorization` header.
struct NoAuthorization;

impl wiremock::Match for NoAuthorization {
    fn matches(&self, request: &Request) -> bool {
        !request.headers.contains_key("authorization")
    }
}

/// A message record as Twilio's REST API returns it.
fn text_json(sid: &str) -> Value {
    json!({
        "sid": sid,
        "account_sid": ACCOUNT,
        "messaging_service_sid": null,
        "from": "+16175006181",
        "to": "+19788447773",
        "body": "See you at 5",
        "num_segments": "1",
        "num_media": "0",
        "direction": "inbound",
        "status": "received",
        "error_code": null,
        "error_message": null,
        "price": "-0.00790",
        "price_unit": "USD",
        "api_version": "2010-04-01",
        "date_created": "Fri, 06 Feb 2026 15:17:59 +0000",
        "date_sent": "Fri, 06 Feb 2026 15:18:00 +0000",
        "date_updated": "Fri, 06 Feb 2026 15:18:01 +0000",
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"),
        "subresource_uris": {
            "media": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}/Media.json"),
            "feedback": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}/Feedback.json")
        }
    })
}

fn text_page(texts: Vec<Value>, next: Option<&str>) -> Value {
    json!({
        "messages": texts,
        "first_page_uri": format!("{MESSAGES_PATH}?PageSize=2&Page=0"),
        "next_page_uri": next,
        "previous_page_uri": null,
        "page": 0,
        "page_size": 2,
        "start": 0,
        "end": 1,
        "uri": MESSAGES_PATH
    })
}

#[tokio::test]
async fn texts_list_sends_the_exact_query_follows_pages_and_parses_every_field() {
    let server = MockServer::start().await;
    let first_query = "PageSize=2&DateSent%3E=2026-02-01T00:00:00Z\
                       &DateSent%3C=2026-03-01T12:30:00Z&To=%2B19788447773&From=%2B16175006181";
    let next = format!("{MESSAGES_PATH}?PageSize=2&Page=1&PageToken=PASM2");

    // An MMS with every field filled in, a failed outbound message with a
    // numeric error code, and two malformed records.
    let mms = json!({
        "sid": MM1,
        "account_sid": ACCOUNT,
        "messaging_service_sid": "MG0123456789abcdef0123456789abcdef",
        "from": "+16175006181",
        "to": "+19788447773",
        "body": "  two photos, see below \n",
        "num_segments": "2",
        "num_media": "2",
        "direction": "inbound",
        "status": "received",
        "error_code": null,
        "error_message": null,
        "price": "-0.02000",
        "price_unit": "USD",
        "date_created": "Fri, 06 Feb 2026 15:17:59 +0000",
        "date_sent": "Fri, 06 Feb 2026 10:18:00 -0500",
        "date_updated": "Fri, 06 Feb 2026 15:18:01 +0000",
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{MM1}.json")
    });
    let mut failed = text_json(SM1);
    failed["direction"] = json!("outbound-api");
    failed["status"] = json!("undelivered");
    failed["error_code"] = json!(30003);
    failed["error_message"] = json!("Unreachable destination handset");
    failed["price"] = json!("-0.00790");
    failed["num_segments"] = json!("3");
    let mut bad_date = text_json(SM2);
    bad_date["date_sent"] = json!("yesterday");
    // Not the shape of a SID at all (it would end up in URL paths).
    let bad_sid = text_json("SM../../Calls/CA1");

    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(RawQuery(first_query.to_owned()))
        .respond_with(ok_json(text_page(
            vec![mms.clone(), bad_date, failed.clone(), bad_sid],
            Some(&next),
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(RawQuery("PageSize=2&Page=1&PageToken=PASM2".to_owned()))
        .respond_with(ok_json(text_page(vec![text_json(SM3)], None)))
        .expect(1)
        .mount(&server)
        .await;

    let filter = TextFilter {
        sent_after: Some(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap()),
        sent_before: Some(Utc.with_ymd_and_hms(2026, 3, 1, 12, 30, 0).unwrap()),
        to: Some("+19788447773".into()),
        from: Some("+16175006181".into()),
        page_size: 2,
    };
    let client = client(&server);
    let first = client.list_texts_page(&filter, None).await.unwrap();

    // The first request: exact path, exact raw query, Basic auth.
    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].url.path(), MESSAGES_PATH);
    assert_eq!(received[0].url.query(), Some(first_query));
    assert_eq!(authorization(&received[0]), basic(ACCOUNT, TOKEN));

    // The good records, every field.
    let sids: Vec<&str> = first.texts.iter().map(|t| t.sid.as_str()).collect();
    assert_eq!(sids, [MM1, SM1]);
    let t = &first.texts[0];
    assert_eq!(t.account_sid.as_deref(), Some(ACCOUNT));
    assert_eq!(t.messaging_service_sid.as_deref(), Some(MG1));
    assert_eq!(t.from.as_deref(), Some("+16175006181"));
    assert_eq!(t.to.as_deref(), Some("+19788447773"));
    assert_eq!(
        t.body, "  two photos, see below \n",
        "the body is kept exactly"
    );
    assert_eq!(t.num_segments, Some(2));
    assert_eq!(t.num_media, 2);
    assert_eq!(t.direction, TextDirection::Inbound);
    assert_eq!(t.status, TextStatus::Received);
    assert_eq!(t.error_code, None);
    assert_eq!(t.error_message, None);
    assert_eq!(t.price, Some("-0.02000".parse().unwrap()));
    assert_eq!(t.price.unwrap().to_string(), "-0.02000");
    assert_eq!(t.price_unit.as_deref(), Some("USD"));
    assert_eq!(
        t.date_created,
        Some(Utc.with_ymd_and_hms(2026, 2, 6, 15, 17, 59).unwrap())
    );
    // `-0500` is converted to UTC.
    assert_eq!(
        t.date_sent,
        Some(Utc.with_ymd_and_hms(2026, 2, 6, 15, 18, 0).unwrap())
    );
    assert_eq!(
        t.date_updated,
        Some(Utc.with_ymd_and_hms(2026, 2, 6, 15, 18, 1).unwrap())
    );
    assert_eq!(t.raw, mms);
    let f = &first.texts[1];
    assert_eq!(f.body, "See you at 5");
    assert_eq!(f.num_segments, Some(3));
    assert_eq!(f.num_media, 0);
    assert_eq!(f.direction, TextDirection::OutboundApi);
    assert_eq!(f.status, TextStatus::Undelivered);
    assert_eq!(f.error_code, Some(30003));
    assert_eq!(
        f.error_message.as_deref(),
        Some("Unreachable destination handset")
    );
    assert_eq!(f.price.unwrap().to_string(), "-0.00790");
    assert_eq!(f.raw, failed);

    // The malformed records are reported with their reason, not dropped.
    assert_eq!(first.rejected.len(), 2, "{:?}", first.rejected);
    assert_eq!(first.rejected[0].sid.as_deref(), Some(SM2));
    assert!(
        first.rejected[0].reason.contains("date_sent"),
        "{:?}",
        first.rejected
    );
    assert_eq!(first.rejected[1].sid.as_deref(), Some("SM../../Calls/CA1"));
    assert!(
        first.rejected[1].reason.contains("not a message SID"),
        "{:?}",
        first.rejected
    );

    // The second page: next_page_uri verbatim, the filter not re-added.
    assert_eq!(first.next, Some(PageToken(next.clone())));
    let second = client
        .list_texts_page(&filter, first.next.as_ref())
        .await
        .unwrap();
    assert_eq!(second.texts.len(), 1);
    assert_eq!(second.texts[0].sid.as_str(), SM3);
    assert!(second.rejected.is_empty());
    assert_eq!(second.next, None);
    let received = requests(&server).await;
    assert_eq!(received.len(), 2);
    assert_eq!(path_and_query(&received[1]), next);
    assert_eq!(authorization(&received[1]), basic(ACCOUNT, TOKEN));
}

/// A record whose `sid` is well formed but names another resource (a call)
/// is not a message: it belongs in `rejected`.
#[tokio::test]
async fn texts_list_rejects_a_record_whose_sid_is_not_sm_or_mm() {
    let server = MockServer::start().await;
    const CA1: &str = "CA00000000000000000000000000000001";
    const RE1: &str = "RE00000000000000000000000000000001";
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .respond_with(ok_json(text_page(
            vec![text_json(SM1), text_json(CA1), text_json(RE1)],
            None,
        )))
        .mount(&server)
        .await;
    let page = client(&server)
        .list_texts_page(&TextFilter::default(), None)
        .await
        .unwrap();
    let sids: Vec<&str> = page.texts.iter().map(|t| t.sid.as_str()).collect();
    assert_eq!(sids, [SM1], "only SM/MM records are messages");
    let rejected: Vec<Option<&str>> = page.rejected.iter().map(|r| r.sid.as_deref()).collect();
    assert_eq!(rejected, [Some(CA1), Some(RE1)]);
    for r in &page.rejected {
        assert!(r.reason.contains("not a message SID"), "{r:?}");
    }
}

#[tokio::test]
async fn texts_list_without_filters_sends_only_the_page_size() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .and(RawQuery("PageSize=1000".to_owned()))
        .respond_with(ok_json(text_page(vec![], None)))
        .expect(1)
        .mount(&server)
        .await;
    let page = client(&server)
        .list_texts_page(&TextFilter::default(), None)
        .await
        .unwrap();
    assert!(page.texts.is_empty() && page.rejected.is_empty() && page.next.is_none());
}

#[tokio::test]
async fn a_texts_page_without_messages_array_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .respond_with(ok_json(json!({"calls": [], "next_page_uri": null})))
        .mount(&server)
        .await;
    let err = client(&server)
        .list_texts_page(&TextFilter::default(), None)
        .await
        .unwrap_err();
    match &err {
        TwilioError::Decode { reason, .. } => {
            assert!(reason.contains("messages"), "{reason}")
        }
        other => panic!("expected Decode, got {other:?}"),
    }
    // A well-formed answer without the array is not retried.
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn texts_list_retries_a_429_with_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "0")
                .set_body_json(json!({
                    "code": 20429, "message": "Too Many Requests",
                    "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429
                })),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(MESSAGES_PATH))
        .respond_with(ok_json(text_page(vec![text_json(SM1)], None)))
        .mount(&server)
        .await;

    let page = client(&server)
        .list_texts_page(&TextFilter::default(), None)
        .await
        .unwrap();
    assert_eq!(page.texts.len(), 1);
    assert_eq!(page.texts[0].sid.as_str(), SM1);
    let received = requests(&server).await;
    assert_eq!(received.len(), 2);
    // The retry is the same request.
    assert_eq!(path_and_query(&received[0]), path_and_query(&received[1]));
    assert_eq!(authorization(&received[1]), basic(ACCOUNT, TOKEN));
}

#[tokio::test]
async fn text_media_lists_every_page_of_media_list() {
    let server = MockServer::start().await;
    let media_path = format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{MM1}/Media.json");
    let next = format!("{media_path}?PageSize=1000&Page=1&PageToken=PAME1");
    let media = |sid: &str, content_type: &str| {
        json!({
            "sid": sid, "account_sid": ACCOUNT, "parent_sid": MM1,
            "content_type": content_type,
            "date_created": "Fri, 06 Feb 2026 15:18:00 +0000",
            "date_updated": "Fri, 06 Feb 2026 15:18:00 +0000",
            "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{MM1}/Media/{sid}.json")
        })
    };
    Mock::given(method("GET"))
        .and(path(media_path.as_str()))
        .and(RawQuery("PageSize=1000".to_owned()))
        .respond_with(ok_json(json!({
            "media_list": [media(ME1, "image/jpeg")],
            "next_page_uri": next,
            "page": 0, "page_size": 1000, "uri": media_path
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(media_path.as_str()))
        .and(query_param("PageToken", "PAME1"))
        .respond_with(ok_json(json!({
            "media_list": [media(ME2, "image/png")],
            "next_page_uri": null,
            "page": 1, "page_size": 1000, "uri": media_path
        })))
        .expect(1)
        .mount(&server)
        .await;

    let media = client(&server)
        .text_media(&MessageSid::new(MM1).unwrap())
        .await
        .unwrap();
    assert_eq!(
        media,
        vec![
            TextMedia {
                sid: ME1.into(),
                content_type: Some("image/jpeg".into()),
            },
            TextMedia {
                sid: ME2.into(),
                content_type: Some("image/png".into()),
            },
        ]
    );
    let received = requests(&server).await;
    assert_eq!(received.len(), 2);
    assert_eq!(path_and_query(&received[1]), next);
    for request in &received {
        assert_eq!(authorization(request), basic(ACCOUNT, TOKEN));
    }
}

#[tokio::test]
async fn text_media_content_follows_a_redirect_to_another_host_without_credentials() {
    let twilio = MockServer::start().await;
    let storage = MockServer::start().await;
    let content_path = format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{MM1}/Media/{ME1}");
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    // Another host: the storage server under the name `localhost`, while
    // the API is configured as 127.0.0.1.
    let storage_port = storage.address().port();
    let location =
        format!("http://localhost:{storage_port}/media/{ME1}?Expires=1770391080&Signature=abc");
    Mock::given(method("GET"))
        .and(path(content_path.as_str()))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", location.as_str()))
        .expect(1)
        .mount(&twilio)
        .await;
    // Only answers a request without credentials.
    Mock::given(method("GET"))
        .and(path(format!("/media/{ME1}").as_str()))
        .and(query_param("Signature", "abc"))
        .and(NoAuthorization)
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Content-Type", "image/jpeg")
                .set_body_bytes(bytes.clone()),
        )
        .expect(1)
        .mount(&storage)
        .await;

    let content = client(&twilio)
        .text_media_content(&MessageSid::new(MM1).unwrap(), ME1)
        .await
        .unwrap();
    assert_eq!(content.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(content.content_length, Some(bytes.len() as u64));
    let chunks: Vec<bytes::Bytes> = content.body.try_collect().await.unwrap();
    assert_eq!(chunks.concat(), bytes);

    let to_twilio = requests(&twilio).await;
    assert_eq!(to_twilio.len(), 1);
    assert_eq!(to_twilio[0].url.path(), content_path);
    assert_eq!(authorization(&to_twilio[0]), basic(ACCOUNT, TOKEN));
    let to_storage = requests(&storage).await;
    assert_eq!(to_storage.len(), 1);
    assert!(
        to_storage[0].headers.get("authorization").is_none(),
        "the storage host must never get the credentials: {:?}",
        to_storage[0].headers
    );
    let storage_headers = format!("{:?}", to_storage[0].headers);
    assert!(!storage_headers.contains(&basic(ACCOUNT, TOKEN)[6..]));
}

#[tokio::test]
async fn send_text_posts_the_form_and_answers_the_parsed_text() {
    let server = MockServer::start().await;
    let body = "Hi Ana & Bo: 2+2=4, 100% sure?\nSee you at the café 👋 ";
    let callback = "https://callview.example/hooks/texts?kind=status&id=a+b";
    let mut created = text_json(SM1);
    created["direction"] = json!("outbound-api");
    created["status"] = json!("queued");
    created["from"] = json!("+19788447773");
    created["to"] = json!("+15085140320");
    created["body"] = json!(body);
    created["num_segments"] = json!("2");
    created["price"] = json!(null);
    created["price_unit"] = json!("USD");
    created["date_sent"] = json!(null);
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created.clone()))
        .expect(1)
        .mount(&server)
        .await;

    let outgoing = OutgoingText {
        to: "+15085140320".into(),
        from: TextSender::parse("+19788447773"),
        body: body.into(),
        status_callback: Some(callback.into()),
    };
    assert_eq!(outgoing.from, TextSender::Number("+19788447773".into()));
    let text = client(&server).send_text(&outgoing).await.unwrap();
    assert_eq!(text.sid.as_str(), SM1);
    assert_eq!(text.status, TextStatus::Queued);
    assert_eq!(text.direction, TextDirection::OutboundApi);
    assert_eq!(text.body, body);
    assert_eq!(text.to.as_deref(), Some("+15085140320"));
    assert_eq!(text.from.as_deref(), Some("+19788447773"));
    assert_eq!(text.num_segments, Some(2));
    assert_eq!(text.price, None);
    assert_eq!(text.date_sent, None);
    assert_eq!(text.raw, created);

    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), MESSAGES_PATH);
    assert_eq!(request.url.query(), None);
    assert_eq!(authorization(request), basic(ACCOUNT, TOKEN));
    // The raw body: one `&` per separator, nothing unencoded that a form
    // parser would misread.
    let raw = std::str::from_utf8(&request.body).expect("an ASCII body");
    assert!(raw.is_ascii(), "{raw}");
    assert!(!raw.contains(' ') && !raw.contains('\n'), "{raw}");
    assert_eq!(raw.matches('&').count(), 3, "{raw}");
    // Decoded as Twilio decodes it: every field round-trips, in order.
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    assert_eq!(
        fields,
        vec![
            ("To".to_owned(), "+15085140320".to_owned()),
            ("From".to_owned(), "+19788447773".to_owned()),
            ("Body".to_owned(), body.to_owned()),
            ("StatusCallback".to_owned(), callback.to_owned()),
        ]
    );
}

#[tokio::test]
async fn send_text_from_a_messaging_service_sends_messaging_service_sid() {
    let server = MockServer::start().await;
    let mut created = text_json(SM2);
    created["messaging_service_sid"] = json!(MG1);
    created["from"] = json!(null);
    created["status"] = json!("accepted");
    created["direction"] = json!("outbound-api");
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created))
        .expect(1)
        .mount(&server)
        .await;

    let outgoing = OutgoingText {
        to: "+15085140320".into(),
        from: TextSender::parse(MG1),
        body: "Reminder".into(),
        status_callback: None,
    };
    assert_eq!(outgoing.from, TextSender::Service(MG1.into()));
    let text = client(&server).send_text(&outgoing).await.unwrap();
    assert_eq!(text.sid.as_str(), SM2);
    assert_eq!(text.status, TextStatus::Accepted);
    assert_eq!(text.messaging_service_sid.as_deref(), Some(MG1));
    assert_eq!(text.from, None);

    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&received[0].body)
        .into_owned()
        .collect();
    assert_eq!(
        fields,
        vec![
            ("To".to_owned(), "+15085140320".to_owned()),
            ("MessagingServiceSid".to_owned(), MG1.to_owned()),
            ("Body".to_owned(), "Reminder".to_owned()),
        ]
    );
}

#[tokio::test]
async fn send_text_refused_by_twilio_is_an_api_error_with_its_code() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 21610,
            "message": "Attempt to send to unsubscribed recipient",
            "more_info": "https://www.twilio.com/docs/errors/21610",
            "status": 400
        })))
        .mount(&server)
        .await;
    let outgoing = OutgoingText {
        to: "+15085140320".into(),
        from: TextSender::parse("+19788447773"),
        body: "Hello again".into(),
        status_callback: None,
    };
    let err = client(&server).send_text(&outgoing).await.unwrap_err();
    match &err {
        TwilioError::Api {
            status,
            code,
            message,
            more_info,
        } => {
            assert_eq!(*status, 400);
            assert_eq!(*code, Some(21610));
            assert_eq!(message, "Attempt to send to unsubscribed recipient");
            assert_eq!(
                more_info.as_deref(),
                Some("https://www.twilio.com/docs/errors/21610")
            );
        }
        other => panic!("expected Api, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("Attempt to send to unsubscribed recipient"),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains(TOKEN));
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn send_text_is_never_retried_even_on_a_500() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({
            "code": 20500, "message": "Internal Server Error",
            "more_info": "https://www.twilio.com/docs/errors/20500", "status": 500
        })))
        .mount(&server)
        .await;
    // A policy that would retry a GET several times.
    let client = client(&server).with_retry_policy(fast_retries(5));
    let outgoing = OutgoingText {
        to: "+15085140320".into(),
        from: TextSender::parse("+19788447773"),
        body: "Only once, please".into(),
        status_callback: None,
    };
    let err = client.send_text(&outgoing).await.unwrap_err();
    assert!(
        matches!(
            err,
            TwilioError::Api {
                status: 500,
                code: Some(20500),
                ..
            }
        ),
        "expected the 500 itself (not RetriesExhausted), got {err:?}"
    );
    // Give a stray retry time to arrive before counting.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        requests(&server).await.len(),
        1,
        "a retried POST could send the text twice"
    );
}
