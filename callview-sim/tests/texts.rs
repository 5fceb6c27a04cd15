//! Text messages (SMS / MMS): what the simulated account generates, the
//! Messages API over HTTP (read with reqwest and the real
//! `HttpTwilioClient`), sending with Twilio's validation, and signed status
//! callbacks received by a listener in the test.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use futures::TryStreamExt;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Sha1;
use tokio::sync::mpsc;

use callview_core::text::{Text, TextDirection, TextKind, TextStatus};
use callview_core::twilio::{
    Credentials, HttpTwilioClient, OutgoingText, PageToken, RetryPolicy, Secret, TextFilter,
    TextSender, TwilioConfig,
};
use callview_core::{TwilioClient, TwilioError};
use callview_sim::{serve, ServerOptions, SimConfig, SimulatedAccount, SimulatedTwilio};

const TOKEN: &str = "s3cret";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 6, 15, 30, 0).unwrap()
}

fn config(seed: u64, calls: usize) -> SimConfig {
    SimConfig {
        now: now(),
        days: 10,
        ..SimConfig::new(seed, calls)
    }
}

/// Serves `sim` with Basic auth; returns the base URL.
async fn start(sim: &SimulatedTwilio) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let options = ServerOptions {
        credentials: Some((sim.account_sid().to_owned(), TOKEN.into())),
        ..ServerOptions::default()
    };
    tokio::spawn(serve(listener, sim.clone(), options));
    base
}

fn client(base: &str, sim: &SimulatedTwilio) -> HttpTwilioClient {
    HttpTwilioClient::new(TwilioConfig {
        credentials: Credentials::AuthToken {
            account_sid: sim.account_sid().into(),
            auth_token: Secret::new(TOKEN),
        },
        base_url: base.into(),
        intelligence_base_url: base.into(),
    })
    .unwrap()
    .with_retry_policy(RetryPolicy {
        max_attempts: 1,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    })
}

async fn get_json(http: &reqwest::Client, sim: &SimulatedTwilio, url: &str) -> (u16, Value) {
    let response = http
        .get(url)
        .basic_auth(sim.account_sid(), Some(TOKEN))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn without_raw(texts: Vec<Text>) -> Vec<Text> {
    texts
        .into_iter()
        .map(|t| Text {
            raw: Value::Null,
            ..t
        })
        .collect()
}

#[test]
fn texts_are_deterministic_and_plausible() {
    let a = SimulatedAccount::new(config(7, 800));
    let b = SimulatedAccount::new(config(7, 800));
    let texts = a.texts();
    assert_eq!(texts, b.texts());
    assert_eq!(texts.len(), 200, "one text per four calls by default");
    assert_ne!(texts, SimulatedAccount::new(config(8, 800)).texts());
    // Texts never change the calls a seed gives.
    let quiet = SimulatedAccount::new(SimConfig {
        texts: Some(0),
        ..config(7, 800)
    });
    assert_eq!(quiet.calls(), a.calls());
    assert!(quiet.texts().is_empty());

    let owned: HashSet<String> = a
        .owned_numbers()
        .into_iter()
        .map(|n| n.phone_number)
        .collect();
    let mut kinds = HashSet::new();
    let mut statuses = HashSet::new();
    let mut directions = HashSet::new();
    let mut previous: Option<Option<DateTime<Utc>>> = None;
    for t in &texts {
        let sid = t.sid.as_str();
        assert_eq!(sid.len(), 34);
        assert!(sid[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(&sid[..2], if t.num_media > 0 { "MM" } else { "SM" });
        assert!(
            owned.contains(t.from.as_deref().unwrap()) || owned.contains(t.to.as_deref().unwrap()),
            "{t:?}"
        );
        if t.direction == TextDirection::Inbound {
            assert_eq!(t.status, TextStatus::Received);
            assert!(owned.contains(t.to.as_deref().unwrap()));
        } else {
            assert!(owned.contains(t.from.as_deref().unwrap()));
        }
        match t.status {
            TextStatus::Undelivered => {
                assert_eq!(t.error_code, Some(30003));
                assert_eq!(
                    t.error_message.as_deref(),
                    Some("Unreachable destination handset")
                );
            }
            TextStatus::Failed => assert_eq!(t.error_code, Some(30008)),
            _ => assert_eq!(t.error_code, None),
        }
        if let Some(price) = t.price {
            let expected = if t.kind() == TextKind::Mms {
                "-0.02000".to_owned()
            } else {
                format!("{:.5}", -0.0079 * f64::from(t.num_segments.unwrap()))
            };
            if t.status != TextStatus::Failed {
                assert_eq!(price.to_string(), expected, "{t:?}");
            }
        }
        assert_eq!(t.raw["date_created"].as_str().unwrap().len(), 31);
        // Newest first, unsent ones first.
        if let Some(prev) = previous {
            match (prev, t.date_sent) {
                (Some(p), Some(c)) => assert!(p >= c),
                (Some(_), None) => panic!("an unsent text after a sent one"),
                _ => {}
            }
        }
        previous = Some(t.date_sent);
        kinds.insert(t.kind());
        statuses.insert(t.status.to_string());
        directions.insert(t.direction.to_string());
    }
    assert!(kinds.contains(&TextKind::Mms) && kinds.contains(&TextKind::Sms));
    for s in ["received", "delivered"] {
        assert!(statuses.contains(s), "{statuses:?}");
    }
    for d in ["inbound", "outbound-api", "outbound-reply"] {
        assert!(directions.contains(d), "{directions:?}");
    }
    // Internal messages: between two company numbers.
    let internal = SimulatedAccount::new(config(7, 4_000))
        .texts()
        .into_iter()
        .filter(|t| {
            owned.contains(t.from.as_deref().unwrap()) && owned.contains(t.to.as_deref().unwrap())
        })
        .count();
    assert!(internal > 0);

    let no_mms = SimulatedAccount::new(SimConfig {
        media: false,
        ..config(7, 800)
    });
    assert!(no_mms.texts().iter().all(|t| t.kind() == TextKind::Sms));
}

#[test]
fn texts_involve_the_customers_who_call() {
    let account = SimulatedAccount::new(config(3, 1_200));
    let owned: HashSet<String> = account
        .owned_numbers()
        .into_iter()
        .map(|n| n.phone_number)
        .collect();
    let in_calls: HashSet<String> = account
        .calls()
        .into_iter()
        .flat_map(|c| [c.from, c.to])
        .flatten()
        .collect();
    let customers: Vec<String> = account
        .texts()
        .into_iter()
        .flat_map(|t| [t.from, t.to])
        .flatten()
        .filter(|n| !owned.contains(n))
        .collect();
    assert!(!customers.is_empty());
    let shared = customers.iter().filter(|n| in_calls.contains(*n)).count();
    assert!(
        shared * 10 >= customers.len() * 7,
        "{shared} of {} texts' customers also call",
        customers.len()
    );
    let unsubscribed = account.unsubscribed_number();
    let to_unsubscribed = account
        .texts()
        .into_iter()
        .filter(|t| t.to.as_deref() == Some(&unsubscribed))
        .count();
    assert_eq!(to_unsubscribed, 0, "nobody texts the unsubscribed customer");
    assert!(account
        .texts()
        .iter()
        .any(|t| t.from.as_deref() == Some(&unsubscribed) && t.body == "STOP"));
}

#[test]
fn recent_texts_move_on_with_the_clock_and_live_texts_arrive() {
    let mut account = SimulatedAccount::new(config(5, 600));
    let pending: Vec<Text> = account
        .texts()
        .into_iter()
        .filter(|t| t.date_created >= Some(now() - chrono::Duration::minutes(2)))
        .filter(|t| t.direction.is_outbound())
        .collect();
    assert!(pending.len() >= 3);
    assert!(pending
        .iter()
        .any(|t| t.status == TextStatus::Queued && t.date_sent.is_none()));
    assert!(pending.iter().any(|t| t.status == TextStatus::Sent));
    let before = account.text_count();
    account.advance_to(now() + chrono::Duration::minutes(10));
    for t in &pending {
        let later = account.text(&t.sid).unwrap();
        assert_eq!(later.status, TextStatus::Delivered, "{later:?}");
        assert!(later.price.is_some());
        assert!(later.date_updated > t.date_updated);
    }
    assert_eq!(account.text_count(), before);
    account.set_live_rate(30.0);
    account.tick(now() + chrono::Duration::minutes(30));
    let arrived: Vec<Text> = account
        .texts()
        .into_iter()
        .filter(|t| t.date_created > Some(now() + chrono::Duration::minutes(10)))
        .collect();
    assert!(arrived.len() >= 50, "{}", arrived.len());
    assert!(arrived
        .iter()
        .all(|t| t.direction == TextDirection::Inbound));
}

#[tokio::test]
async fn the_messages_list_filters_and_pages_like_twilio() {
    let sim = SimulatedTwilio::new(config(11, 1_000));
    let base = start(&sim).await;
    let ac = sim.account_sid().to_owned();
    let http = reqwest::Client::new();
    let all = sim.texts();
    assert_eq!(all.len(), 250);

    // Unauthenticated: 401 with Twilio's body.
    let denied = http
        .get(format!("{base}/2010-04-01/Accounts/{ac}/Messages.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 401);

    // Paging through everything, seven at a time.
    let mut url = format!("{base}/2010-04-01/Accounts/{ac}/Messages.json?PageSize=7");
    let mut sids = Vec::new();
    let mut pages = 0;
    loop {
        let (status, body) = get_json(&http, &sim, &url).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["page"], pages);
        assert_eq!(body["page_size"], 7);
        assert!(body["uri"].as_str().unwrap().contains("/Messages.json"));
        assert!(body["first_page_uri"].as_str().unwrap().contains("Page=0"));
        if pages == 0 {
            assert!(body["previous_page_uri"].is_null());
        } else {
            assert!(body["previous_page_uri"].is_string());
        }
        for m in body["messages"].as_array().unwrap() {
            sids.push(m["sid"].as_str().unwrap().to_owned());
            assert_eq!(m["api_version"], "2010-04-01");
        }
        pages += 1;
        match body["next_page_uri"].as_str() {
            Some(next) => url = format!("{base}{next}"),
            None => break,
        }
    }
    assert_eq!(pages, 250usize.div_ceil(7));
    let expected: Vec<String> = all.iter().map(|t| t.sid.to_string()).collect();
    assert_eq!(sids, expected);

    // To / From.
    let customer = all
        .iter()
        .find(|t| t.direction == TextDirection::Inbound)
        .and_then(|t| t.from.clone())
        .unwrap();
    let url = format!(
        "{base}/2010-04-01/Accounts/{ac}/Messages.json?From={}",
        customer.replace('+', "%2B")
    );
    let (_, body) = get_json(&http, &sim, &url).await;
    let from: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sid"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = all
        .iter()
        .filter(|t| t.from.as_deref() == Some(&customer))
        .map(|t| t.sid.as_str())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(from, expected);

    // DateSent (a day), DateSent> and DateSent<.
    let day = now().date_naive() - chrono::Duration::days(2);
    let on_day = |t: &&Text| t.date_sent.is_some_and(|d| d.date_naive() == day);
    let url = format!("{base}/2010-04-01/Accounts/{ac}/Messages.json?DateSent={day}&PageSize=1000");
    let (_, body) = get_json(&http, &sim, &url).await;
    assert_eq!(
        body["messages"].as_array().unwrap().len(),
        all.iter().filter(on_day).count()
    );
    let url =
        format!("{base}/2010-04-01/Accounts/{ac}/Messages.json?DateSent%3E={day}&PageSize=1000");
    let (_, body) = get_json(&http, &sim, &url).await;
    let after = all
        .iter()
        .filter(|t| t.date_sent.is_some_and(|d| d.date_naive() >= day))
        .count();
    assert_eq!(body["messages"].as_array().unwrap().len(), after);
    assert!(after > 0 && after < all.len());
    let url = format!("{base}/2010-04-01/Accounts/{ac}/Messages.json?DateSent%3C={day}");
    let (_, body) = get_json(&http, &sim, &url).await;
    for m in body["messages"].as_array().unwrap() {
        let sent = DateTime::parse_from_rfc2822(m["date_sent"].as_str().unwrap()).unwrap();
        assert!(sent.date_naive() <= day);
    }
    let (status, body) = get_json(
        &http,
        &sim,
        &format!("{base}/2010-04-01/Accounts/{ac}/Messages.json?DateSent%3E=soon"),
    )
    .await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(20001)));

    // One message, and an unknown one.
    let first = &all[0];
    let (status, body) = get_json(
        &http,
        &sim,
        &format!(
            "{base}/2010-04-01/Accounts/{ac}/Messages/{}.json",
            first.sid
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, first.raw);
    let (status, body) = get_json(
        &http,
        &sim,
        &format!(
            "{base}/2010-04-01/Accounts/{ac}/Messages/SM00000000000000000000000000000000.json"
        ),
    )
    .await;
    assert_eq!((status, body["code"].as_i64()), (404, Some(20404)));
}

#[tokio::test]
async fn the_http_client_and_the_in_process_client_agree() {
    let sim = SimulatedTwilio::new(config(12, 400));
    let base = start(&sim).await;
    let http = client(&base, &sim);
    let filter = TextFilter {
        page_size: 9,
        sent_after: Some(now() - chrono::Duration::days(4)),
        ..TextFilter::default()
    };
    async fn everything(client: &dyn TwilioClient, filter: &TextFilter) -> Vec<Text> {
        let mut out = Vec::new();
        let mut token: Option<PageToken> = None;
        loop {
            let page = client
                .list_texts_page(filter, token.as_ref())
                .await
                .unwrap();
            assert!(page.rejected.is_empty());
            out.extend(page.texts);
            match page.next {
                Some(next) => token = Some(next),
                None => return out,
            }
        }
    }
    let over_http = everything(&http, &filter).await;
    let in_process = everything(&sim, &filter).await;
    assert!(over_http.len() > 9);
    assert!(over_http.iter().all(|t| filter.matches(t)));
    assert_eq!(without_raw(over_http), without_raw(in_process.clone()));
    let expected: Vec<Text> = sim
        .texts()
        .into_iter()
        .filter(|t| filter.matches(t))
        .collect();
    assert_eq!(without_raw(in_process), without_raw(expected));
}

/// Checks a PNG: signature, IHDR, CRCs, and that its image data inflates
/// to the rows its header announces.
fn check_png(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let mut at = 8;
    let mut header = None;
    let mut idat = Vec::new();
    while at < bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = &bytes[at + 8..at + 8 + len];
        let crc = u32::from_be_bytes(bytes[at + 8 + len..at + 12 + len].try_into().unwrap());
        let mut digest = crc32(kind);
        digest = crc32_continue(digest, data);
        assert_eq!(!digest, crc, "CRC of {}", String::from_utf8_lossy(kind));
        match kind {
            b"IHDR" => {
                let w = u32::from_be_bytes(data[0..4].try_into().unwrap());
                let h = u32::from_be_bytes(data[4..8].try_into().unwrap());
                assert_eq!(&data[8..10], &[8, 2], "8-bit RGB");
                header = Some((w, h));
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    let (w, h) = header.expect("an IHDR chunk");
    let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&idat).expect("valid zlib data");
    assert_eq!(raw.len(), (h * (1 + 3 * w)) as usize);
    (w, h)
}

fn crc32(data: &[u8]) -> u32 {
    crc32_continue(0xffff_ffff, data)
}

fn crc32_continue(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[tokio::test]
async fn mms_media_are_listed_and_served_as_png() {
    let sim = SimulatedTwilio::new(config(13, 2_000));
    let base = start(&sim).await;
    let ac = sim.account_sid().to_owned();
    let http = reqwest::Client::new();
    let api = client(&base, &sim);
    let mms: Vec<Text> = sim
        .texts()
        .into_iter()
        .filter(|t| t.kind() == TextKind::Mms)
        .collect();
    assert!(mms.len() >= 5, "{}", mms.len());
    let mut served = 0;
    for text in &mms {
        let url = format!(
            "{base}/2010-04-01/Accounts/{ac}/Messages/{}/Media.json",
            text.sid
        );
        let (status, body) = get_json(&http, &sim, &url).await;
        assert_eq!(status, 200);
        let list = body["media_list"].as_array().unwrap();
        assert_eq!(list.len() as u32, text.num_media);
        assert!(body["next_page_uri"].is_null());
        for m in list {
            assert!(m["sid"].as_str().unwrap().starts_with("ME"));
            assert_eq!(m["parent_sid"], text.sid.as_str());
            assert_eq!(m["content_type"], "image/png");
            assert_eq!(m["account_sid"], ac.as_str());
            assert!(m["uri"].as_str().unwrap().ends_with(".json"));
        }
        let media = api.text_media(&text.sid).await.unwrap();
        assert_eq!(media.len(), list.len());
        let local = sim.with_account(|a| a.text_media(&text.sid));
        for (item, (expected, bytes)) in media.iter().zip(&local) {
            assert_eq!(item, expected);
            let content = api.text_media_content(&text.sid, &item.sid).await.unwrap();
            assert_eq!(content.content_type.as_deref(), Some("image/png"));
            let body: Vec<u8> = content
                .body
                .try_fold(Vec::new(), |mut all, chunk| async move {
                    all.extend_from_slice(&chunk);
                    Ok(all)
                })
                .await
                .unwrap();
            assert_eq!(&body[..], &bytes[..]);
            assert_eq!(check_png(&body), (48, 48));
            assert!((2_000..20_000).contains(&body.len()));
            served += 1;
        }
    }
    assert!(served >= 5);
    let storage = sim.storage_requests();
    assert!(storage.total > 0, "some media redirect to the storage");
    assert_eq!(storage.with_authorization, 0);
    // Unknown media and SMS media lists.
    let sms = sim
        .texts()
        .into_iter()
        .find(|t| t.kind() == TextKind::Sms)
        .unwrap();
    assert!(api.text_media(&sms.sid).await.unwrap().is_empty());
    let missing = api
        .text_media_content(&mms[0].sid, "ME00000000000000000000000000000000")
        .await;
    assert!(
        matches!(missing, Err(TwilioError::NotFound { .. })),
        "{missing:?}"
    );
}

async fn post_form(
    http: &reqwest::Client,
    base: &str,
    sim: &SimulatedTwilio,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = http
        .post(format!(
            "{base}/2010-04-01/Accounts/{}/Messages.json",
            sim.account_sid()
        ))
        .basic_auth(sim.account_sid(), Some(TOKEN))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn sends_are_validated_like_twilio() {
    let sim = SimulatedTwilio::new(config(14, 300));
    let base = start(&sim).await;
    let http = reqwest::Client::new();
    let main = sim.with_account(|a| a.owned_numbers()[0].phone_number.clone());
    let unsubscribed = sim.with_account(|a| a.unsubscribed_number());
    let long = "x".repeat(1_601);
    let cases: Vec<(Vec<(&str, &str)>, i64)> = vec![
        (vec![("To", "+15085140320"), ("From", &main)], 21602),
        (
            vec![("To", "+15085140320"), ("From", &main), ("Body", "  ")],
            21602,
        ),
        (
            vec![("To", "+15085140320"), ("From", &main), ("Body", &long)],
            21617,
        ),
        (vec![("To", "12"), ("From", &main), ("Body", "Hi")], 21211),
        (
            vec![
                ("To", "+15085140320"),
                ("From", "+15550000000"),
                ("Body", "Hi"),
            ],
            21606,
        ),
        (
            vec![("To", &unsubscribed), ("From", &main), ("Body", "Hi")],
            21610,
        ),
    ];
    let before = sim.texts().len();
    for (form, code) in cases {
        let (status, body) = post_form(&http, &base, &sim, &form).await;
        assert_eq!(status, 400, "{form:?}: {body}");
        assert_eq!(body["code"].as_i64(), Some(code), "{form:?}: {body}");
        assert_eq!(body["status"], 400);
        assert_eq!(
            body["more_info"],
            format!("https://www.twilio.com/docs/errors/{code}")
        );
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(sim.texts().len(), before, "refused sends store nothing");

    // A picture without a body is fine (an MMS).
    let (status, body) = post_form(
        &http,
        &base,
        &sim,
        &[
            ("To", "+15085140320"),
            ("From", &main),
            ("MediaUrl", "https://example.com/a.png"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["sid"].as_str().unwrap().starts_with("MM"));
    assert_eq!(body["num_media"], "1");

    // The in-process client refuses the same way.
    let refused = TwilioClient::send_text(
        &sim,
        &OutgoingText {
            to: unsubscribed.clone(),
            from: TextSender::parse(&main),
            body: "Hi".into(),
            status_callback: None,
        },
    )
    .await;
    match refused {
        Err(TwilioError::Api { status, code, .. }) => {
            assert_eq!((status, code), (400, Some(21610)))
        }
        other => panic!("{other:?}"),
    }
    // And the HTTP client reads Twilio's error.
    let api = client(&base, &sim);
    let refused = api
        .send_text(&OutgoingText {
            to: "+15085140320".into(),
            from: TextSender::parse("+15550000000"),
            body: "Hi".into(),
            status_callback: None,
        })
        .await;
    match refused {
        Err(TwilioError::Api { code, .. }) => assert_eq!(code, Some(21606)),
        other => panic!("{other:?}"),
    }
}

/// A webhook receiver: every POST's signature header, URL path and form.
type Received = (String, String, Vec<(String, String)>);

async fn receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel::<Received>();
    let app = axum::Router::new()
        .route(
            "/hooks/{name}",
            post(
                |State(tx): State<mpsc::UnboundedSender<Received>>,
                 uri: axum::http::Uri,
                 headers: HeaderMap,
                 body: String| async move {
                    let signature = headers
                        .get("X-Twilio-Signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let form = url::form_urlencoded::parse(body.as_bytes())
                        .into_owned()
                        .collect();
                    let _ = tx.send((signature, uri.to_string(), form));
                    ""
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, rx)
}

/// Twilio's scheme, computed independently of the simulator.
fn expected_signature(token: &str, url: &str, form: &[(String, String)]) -> String {
    let mut sorted = form.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(&name);
        data.push_str(&value);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn next_callback(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a status callback within 10 s")
        .expect("the receiver runs")
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn a_sent_text_is_delivered_with_signed_status_callbacks() {
    let sim = SimulatedTwilio::new(config(15, 300));
    let base = start(&sim).await;
    let (hooks, mut rx) = receiver().await;
    let http = reqwest::Client::new();
    let main = sim.with_account(|a| a.owned_numbers()[0].phone_number.clone());
    let callback = format!("{hooks}/hooks/status?x=1");
    let (status, body) = post_form(
        &http,
        &base,
        &sim,
        &[
            ("To", "+15085140320"),
            ("From", &main),
            ("Body", "Your technician is on the way"),
            ("StatusCallback", &callback),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["direction"], "outbound-api");
    assert!(body["date_sent"].is_null());
    assert!(body["price"].is_null());
    let sid = body["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("SM"));
    // Listed with the unsent ones, first.
    assert!(sim
        .texts()
        .iter()
        .take_while(|t| t.date_sent.is_none())
        .any(|t| t.sid.as_str() == sid));

    let mut statuses = Vec::new();
    for step in [0, 1, 3] {
        sim.advance_to(now() + chrono::Duration::seconds(step));
        let (signature, path, form) = next_callback(&mut rx).await;
        assert_eq!(path, "/hooks/status?x=1");
        assert_eq!(signature, expected_signature(TOKEN, &callback, &form));
        assert_ne!(signature, expected_signature("wrong", &callback, &form));
        assert_eq!(field(&form, "MessageSid"), Some(sid.as_str()));
        assert_eq!(field(&form, "SmsSid"), Some(sid.as_str()));
        assert_eq!(field(&form, "From"), Some(main.as_str()));
        assert_eq!(field(&form, "To"), Some("+15085140320"));
        assert_eq!(field(&form, "AccountSid"), Some(sim.account_sid()));
        assert_eq!(field(&form, "ApiVersion"), Some("2010-04-01"));
        assert_eq!(field(&form, "MessageStatus"), field(&form, "SmsStatus"));
        assert_eq!(field(&form, "ErrorCode"), None);
        statuses.push(field(&form, "MessageStatus").unwrap().to_owned());
    }
    assert_eq!(statuses, ["queued", "sent", "delivered"]);
    let record = sim
        .with_account(|a| a.text(&callview_core::text::MessageSid::new(sid.clone()).unwrap()))
        .unwrap();
    assert_eq!(record.status, TextStatus::Delivered);
    assert!(record.date_sent.is_some());
    assert!(record.price.is_none(), "the price arrives later");
    sim.advance_to(now() + chrono::Duration::seconds(30));
    let record = sim
        .texts()
        .into_iter()
        .find(|t| t.sid.as_str() == sid)
        .unwrap();
    assert_eq!(
        record.price.map(|p| p.to_string()).as_deref(),
        Some("-0.00790")
    );

    // An unreachable handset: undelivered, with the error code.
    let (status, body) = post_form(
        &http,
        &base,
        &sim,
        &[
            ("To", "+15085550142"),
            ("From", &main),
            ("Body", "Hello?"),
            ("StatusCallback", &callback),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (_, _, queued) = next_callback(&mut rx).await;
    assert_eq!(field(&queued, "MessageStatus"), Some("queued"));
    sim.advance_to(now() + chrono::Duration::seconds(40));
    let (_, _, sent) = next_callback(&mut rx).await;
    assert_eq!(field(&sent, "MessageStatus"), Some("sent"));
    let (signature, _, failed) = next_callback(&mut rx).await;
    assert_eq!(field(&failed, "MessageStatus"), Some("undelivered"));
    assert_eq!(field(&failed, "ErrorCode"), Some("30003"));
    assert_eq!(signature, expected_signature(TOKEN, &callback, &failed));
}

#[tokio::test]
async fn the_in_process_client_sends_and_the_live_ticker_delivers() {
    let sim = SimulatedTwilio::new(SimConfig {
        now: Utc::now(),
        ..SimConfig::new(16, 200)
    });
    let (hooks, mut rx) = receiver().await;
    let main = sim.with_account(|a| a.owned_numbers()[1].phone_number.clone());
    let callback = format!("{hooks}/hooks/live");
    let sent = TwilioClient::send_text(
        &sim,
        &OutgoingText {
            to: "+442079460123".into(),
            from: TextSender::parse(&main),
            body: "On my way".into(),
            status_callback: Some(callback.clone()),
        },
    )
    .await
    .unwrap();
    assert_eq!(sent.status, TextStatus::Queued);
    assert_eq!(sent.raw["status"], "queued");
    // As in `callview simulate`: the wall clock drives the account.
    let live = sim.spawn_live_traffic(Duration::from_millis(200));
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("delivered") {
        let (signature, _, form) = next_callback(&mut rx).await;
        assert_eq!(
            signature,
            expected_signature(callview_sim::DEFAULT_AUTH_TOKEN, &callback, &form)
        );
        statuses.push(field(&form, "MessageStatus").unwrap().to_owned());
    }
    live.abort();
    assert_eq!(statuses, ["queued", "sent", "delivered"]);
}
