//! `HttpTwilioClient` against a wiremock server.

use std::time::Duration;

use base64::Engine as _;
use callview_core::recording::RecordingSid;
use callview_core::twilio::{
    call_pages, recording_pages, AudioFormat, CallFilter, Credentials, HttpTwilioClient, PageToken,
    RecordingFilter, RetryPolicy, Secret, TranscriptFilter, TwilioConfig,
};
use callview_core::{CallSid, CallStatus, TwilioClient, TwilioError};
use chrono::{TimeZone, Utc};
use futures::TryStreamExt;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
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
