//! The simulated Twilio account: determinism, realism of the generated
//! traffic, live progress, paging semantics, and the HTTP server read back
//! with plain reqwest and with `HttpTwilioClient`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures::TryStreamExt;
use serde_json::Value;

use callview_core::recording::RecordingStatus;
use callview_core::twilio::{
    call_pages, CallFilter, Credentials, HttpTwilioClient, PageToken, RecordingFilter, RetryPolicy,
    Secret, TwilioConfig,
};
use callview_core::{Call, CallDirection, CallSid, CallStatus, TwilioClient, TwilioError};
use callview_sim::{serve, ServerOptions, SimConfig, SimulatedAccount, SimulatedTwilio};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 6, 15, 30, 0).unwrap()
}

fn config(seed: u64, calls: usize) -> SimConfig {
    SimConfig {
        now: now(),
        ..SimConfig::new(seed, calls)
    }
}

fn sids(calls: &[Call]) -> Vec<String> {
    calls.iter().map(|c| c.sid.to_string()).collect()
}

async fn all_pages(client: &dyn TwilioClient, filter: CallFilter) -> Vec<Call> {
    let pages: Vec<_> = call_pages(client, filter).try_collect().await.unwrap();
    for page in &pages {
        assert!(page.rejected.is_empty(), "{:?}", page.rejected);
    }
    pages.into_iter().flat_map(|p| p.calls).collect()
}

const ANONYMOUS: &[&str] = &[
    "anonymous",
    "Anonymous",
    "+266696687",
    "restricted",
    "unknown",
    "+7378742833",
];

fn is_sip_phone(value: &str) -> bool {
    value
        .strip_prefix("sip:")
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c == '+' || c.is_ascii_digit())
}

fn is_sip_endpoint(value: &str) -> bool {
    value.starts_with("sip:") && !is_sip_phone(value)
}

fn is_international(value: &str) -> bool {
    value.starts_with('+') && !value.starts_with("+1") && !ANONYMOUS.contains(&value)
}

#[test]
fn same_seed_same_calls_different_seed_different_calls() {
    let a = SimulatedAccount::new(config(7, 1_500));
    let b = SimulatedAccount::new(config(7, 1_500));
    let c = SimulatedAccount::new(config(8, 1_500));
    assert_eq!(a.len(), 1_500);
    assert_eq!(a.calls(), b.calls());
    assert_eq!(a.owned_numbers(), b.owned_numbers());
    let a_sids: HashSet<_> = sids(&a.calls()).into_iter().collect();
    let c_sids: HashSet<_> = sids(&c.calls()).into_iter().collect();
    assert!(a_sids.is_disjoint(&c_sids));
    assert_ne!(a.account_sid(), c.account_sid());
}

#[test]
fn default_config_is_sensible() {
    let config = SimConfig::default();
    assert_eq!(config.seed, 42);
    assert_eq!(config.calls, 2_000);
    assert_eq!(config.days, 30);
    assert!(config.account_sid.starts_with("AC"));
    assert_eq!(config.account_sid.len(), 34);
    assert!(config.account_sid[2..]
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert!((Utc::now() - config.now).num_seconds().abs() < 60);
}

#[test]
fn the_mix_contains_every_scenario_kind() {
    let account = SimulatedAccount::new(config(42, 3_000));
    let calls = account.calls();
    assert_eq!(calls.len(), 3_000);
    let by_sid: HashMap<&str, &Call> = calls.iter().map(|c| (c.sid.as_str(), c)).collect();
    assert_eq!(by_sid.len(), calls.len(), "SIDs are unique");

    let any = |what: &str, f: &dyn Fn(&Call) -> bool| {
        assert!(calls.iter().any(f), "no call shows: {what}");
    };
    let raw = |c: &Call| {
        [c.from.clone(), c.to.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
    };

    any("a child whose parent is stored", &|c| {
        c.parent_call_sid
            .as_ref()
            .is_some_and(|p| by_sid.contains_key(p.as_str()))
    });
    any("an outbound-dial child to a SIP dispatcher", &|c| {
        c.direction == CallDirection::OutboundDial
            && c.to.as_deref() == Some("sip:dispatcher@acme.sip.twilio.com")
    });
    any("a dispatcher dialling out from SIP", &|c| {
        c.direction == CallDirection::Inbound
            && c.from.as_deref().is_some_and(is_sip_endpoint)
            && c.to.as_deref().is_some_and(is_sip_phone)
    });
    any("a SIP parent to the company number", &|c| {
        c.parent_call_sid.is_none()
            && c.from.as_deref().is_some_and(is_sip_endpoint)
            && c.to.as_deref() == Some("+19788447773")
    });
    any("a sip-phone URI with parameters", &|c| {
        c.to.as_deref()
            .is_some_and(|t| is_sip_phone(t) && t.contains(";transport="))
    });
    any("a client: endpoint", &|c| {
        raw(c).iter().any(|v| v.starts_with("client:"))
    });
    any("an anonymous caller", &|c| {
        c.from.as_deref().is_some_and(|f| ANONYMOUS.contains(&f))
    });
    any("an international number", &|c| {
        raw(c).iter().any(|v| is_international(v))
    });
    any("a 10-digit national number", &|c| {
        raw(c)
            .iter()
            .any(|v| v.len() == 10 && v.chars().all(|ch| ch.is_ascii_digit()))
    });
    any("a (978) 844-7773 style number", &|c| {
        raw(c)
            .iter()
            .any(|v| v.starts_with('(') && v.contains(") "))
    });
    any("an outbound-api call", &|c| {
        c.direction == CallDirection::OutboundApi
    });
    any("a missed inbound call", &|c| {
        c.direction == CallDirection::Inbound
            && matches!(
                c.status,
                CallStatus::NoAnswer | CallStatus::Busy | CallStatus::Canceled
            )
            && c.duration.unwrap_or(0) == 0
    });
    any("a call never dialled", &|c| c.start_time.is_none());
    any("a ringing or in-progress call", &|c| {
        matches!(c.status, CallStatus::Ringing | CallStatus::InProgress)
            && c.duration.is_none()
            && c.end_time.is_none()
            && c.price.is_none()
    });
    any("a queued call", &|c| c.status == CallStatus::Queued);
    any("a completed call still waiting for its price", &|c| {
        c.status == CallStatus::Completed && c.price.is_none()
    });
    any("answering machine detection", &|c| c.answered_by.is_some());
    any("caller ID name", &|c| c.caller_name.is_some());
    any("forwarded_from", &|c| c.forwarded_from.is_some());

    // Simultaneous ring (a parent with several legs) and transfers
    // (grandchildren).
    let mut children: HashMap<&str, usize> = HashMap::new();
    for c in &calls {
        if let Some(p) = &c.parent_call_sid {
            *children.entry(p.as_str()).or_default() += 1;
        }
    }
    assert!(children.values().any(|n| *n >= 2), "no simultaneous ring");
    assert!(
        calls.iter().any(|c| c
            .parent_call_sid
            .as_ref()
            .and_then(|p| by_sid.get(p.as_str()))
            .is_some_and(|p| p.parent_call_sid.is_some())),
        "no transfer (grandchild)"
    );

    // Customers: about calls / 10, some calling often.
    let mut per_customer: HashMap<&str, usize> = HashMap::new();
    for c in calls
        .iter()
        .filter(|c| c.direction == CallDirection::Inbound)
    {
        if let Some(from) = c.from.as_deref().filter(|f| f.starts_with("+1")) {
            *per_customer.entry(from).or_default() += 1;
        }
    }
    assert!(per_customer.len() > 50, "{}", per_customer.len());
    assert!(per_customer.values().any(|n| *n >= 8), "no frequent caller");

    // Recordings.
    let recorded = calls
        .iter()
        .find(|c| !account.recordings(&c.sid).is_empty())
        .expect("some call has recordings");
    let recordings = account.recordings(&recorded.sid);
    assert!(recordings[0].sid.as_str().starts_with("RE"));
    assert_eq!(recordings[0].call_sid.as_ref(), Some(&recorded.sid));
    assert!(recordings[0].raw["uri"]
        .as_str()
        .unwrap()
        .ends_with(".json"));
    assert_eq!(
        account.recording(&recordings[0].sid),
        Some(recordings[0].clone())
    );
}

#[test]
fn every_field_is_realistic() {
    let account = SimulatedAccount::new(config(3, 800));
    let ac = account.account_sid().to_owned();
    let numbers: HashSet<String> = account
        .owned_numbers()
        .into_iter()
        .map(|n| n.phone_number)
        .collect();
    assert_eq!(numbers.len(), 3);
    assert!(numbers.contains("+19788447773"));
    for n in account.owned_numbers() {
        assert!(n.sid.starts_with("PN") && n.sid.len() == 34);
    }
    let calls = account.calls();
    for c in &calls {
        let sid = c.sid.as_str();
        assert!(sid.starts_with("CA") && sid.len() == 34, "{sid}");
        assert!(sid[2..]
            .chars()
            .all(|ch| matches!(ch, '0'..='9' | 'a'..='f')));
        assert_eq!(c.account_sid.as_deref(), Some(ac.as_str()));
        assert_eq!(c.api_version.as_deref(), Some("2010-04-01"));
        assert_eq!(c.price_unit.as_deref(), Some("USD"));
        assert_eq!(
            c.uri.as_deref(),
            Some(format!("/2010-04-01/Accounts/{ac}/Calls/{sid}.json").as_str())
        );
        let subresources = c.subresource_uris.as_ref().unwrap();
        assert_eq!(
            subresources["recordings"],
            format!("/2010-04-01/Accounts/{ac}/Calls/{sid}/Recordings.json")
        );
        assert!(subresources.contains_key("user_defined_message_subscriptions"));
        assert!(c.date_created.is_some() && c.date_updated.is_some());
        assert!(c.date_updated >= c.date_created);
        assert!(c.queue_time.is_some());
        assert!(c.to_formatted.is_some() || c.to.is_none());
        if c.from.as_deref() == Some("+19788447773") {
            assert_eq!(c.from_formatted.as_deref(), Some("(978) 844-7773"));
        }
        if let Some(price) = c.price {
            assert!(price.is_sign_negative());
            assert_eq!(price.scale(), 5);
            assert_eq!(c.status, CallStatus::Completed);
        }
        match c.status {
            CallStatus::Completed => {
                assert!(c.duration.is_some() && c.end_time.is_some(), "{sid}");
                let d = (c.end_time.unwrap() - c.start_time.unwrap()).num_seconds();
                assert_eq!(d, i64::from(c.duration.unwrap()));
            }
            CallStatus::Ringing | CallStatus::InProgress | CallStatus::Queued => {
                assert!(c.duration.is_none() && c.end_time.is_none() && c.price.is_none());
            }
            _ => assert!(c.duration.unwrap_or(0) == 0 && c.price.is_none()),
        }
        let from_network = c
            .from
            .as_deref()
            .is_none_or(|f| !f.starts_with("sip:") && !f.starts_with("client:"));
        if c.direction == CallDirection::Inbound
            && from_network
            && c.to.as_deref().is_some_and(|t| numbers.contains(t))
        {
            assert!(c.phone_number_sid.is_some(), "{sid}");
        }
        assert_eq!(c.raw, c.to_rest_json());
    }
    // The wire form round-trips exactly.
    for c in calls.iter().take(50) {
        assert_eq!(&Call::from_json(&c.to_rest_json()).unwrap(), c);
    }
    let example = calls.iter().find(|c| c.price.is_some()).unwrap();
    let price = example.to_rest_json()["price"].as_str().unwrap().to_owned();
    assert!(price.starts_with("-0.") && price.len() == 8, "{price}");
}

#[test]
fn children_have_stored_parents_that_start_first_and_cover_them() {
    let account = SimulatedAccount::new(config(11, 4_000));
    let calls = account.calls();
    let by_sid: HashMap<&str, &Call> = calls.iter().map(|c| (c.sid.as_str(), c)).collect();
    let mut children = 0;
    for c in &calls {
        let Some(parent) = &c.parent_call_sid else {
            continue;
        };
        children += 1;
        let parent = by_sid
            .get(parent.as_str())
            .unwrap_or_else(|| panic!("{}'s parent {parent} is not stored", c.sid));
        assert_eq!(c.direction, CallDirection::OutboundDial);
        let (ps, cs) = (parent.start_time.unwrap(), c.start_time.unwrap());
        assert!(ps < cs, "{} starts before its parent", c.sid);
        assert!((cs - ps).num_seconds() < 3_600);
        if let (Some(pe), Some(ce)) = (parent.end_time, c.end_time) {
            assert!(pe >= ce, "{} ends after its parent", c.sid);
        }
        if parent.status.is_final() {
            assert!(c.status.is_final(), "{} outlives its parent", c.sid);
        }
    }
    assert!(children > 1_000, "{children}");
    // History spreads over the configured window.
    let oldest = calls.iter().filter_map(|c| c.start_time).min().unwrap();
    let span = (now() - oldest).num_days();
    assert!((25..=30).contains(&span), "{span}");
}

#[tokio::test]
async fn paging_returns_every_call_once_newest_first() {
    let sim = SimulatedTwilio::new(config(5, 700));
    let expected = sim.calls();
    for page_size in [1, 7, 1000] {
        let filter = CallFilter {
            page_size,
            ..CallFilter::default()
        };
        let got = all_pages(&sim, filter).await;
        assert_eq!(sids(&got), sids(&expected), "page size {page_size}");
        assert_eq!(got, expected, "page size {page_size}");
    }
    // Newest first: by start time (calls without one first), then SID.
    let keys: Vec<_> = expected
        .iter()
        .map(|c| (c.start_time.is_none(), c.start_time, c.sid.to_string()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(keys, sorted);
}

#[tokio::test]
async fn page_tokens_are_twilio_style_uris() {
    let sim = SimulatedTwilio::new(config(5, 120));
    let after = now() - chrono::Duration::days(20);
    let filter = CallFilter {
        page_size: 10,
        ..CallFilter::started_after(after)
    };
    let page = sim.list_calls_page(&filter, None).await.unwrap();
    assert_eq!(page.calls.len(), 10);
    let PageToken(next) = page.next.unwrap();
    let prefix = format!(
        "/2010-04-01/Accounts/{}/Calls.json?PageSize=10&Page=1&PageToken=PA",
        sim.account_sid()
    );
    assert!(next.starts_with(&prefix), "{next}");
    assert!(
        next.contains("&StartTime%3E=2026-01-17T15:30:00Z"),
        "{next}"
    );
    let bad = PageToken(format!(
        "/2010-04-01/Accounts/{}/Calls.json?PageToken=PAgarbage!",
        sim.account_sid()
    ));
    let err = sim.list_calls_page(&filter, Some(&bad)).await.unwrap_err();
    assert!(matches!(err, TwilioError::Api { status: 400, .. }), "{err}");
}

#[tokio::test]
async fn filters_return_exactly_the_matching_calls() {
    let sim = SimulatedTwilio::new(config(9, 1_200));
    let all = sim.calls();
    let mut starts: Vec<_> = all.iter().filter_map(|c| c.start_time).collect();
    starts.sort();
    let median = starts[starts.len() / 2];
    let quarter = starts[starts.len() / 4];
    let parent = all.iter().find_map(|c| c.parent_call_sid.clone()).unwrap();
    let filters = [
        CallFilter::started_after(median),
        CallFilter {
            start_time_after: Some(quarter),
            start_time_before: Some(median),
            page_size: 33,
            ..CallFilter::default()
        },
        CallFilter {
            status: Some(CallStatus::Completed),
            page_size: 100,
            ..CallFilter::started_after(quarter)
        },
        CallFilter {
            status: Some(CallStatus::NoAnswer),
            ..CallFilter::default()
        },
        CallFilter {
            parent_call_sid: Some(parent),
            page_size: 1,
            ..CallFilter::default()
        },
    ];
    for filter in filters {
        let timed = filter.start_time_after.is_some() || filter.start_time_before.is_some();
        let expected: Vec<_> = all
            .iter()
            .filter(|c| filter.matches(c) && (!timed || c.start_time.is_some()))
            .cloned()
            .collect();
        assert!(!expected.is_empty(), "{filter:?}");
        let got = all_pages(&sim, filter.clone()).await;
        assert_eq!(sids(&got), sids(&expected), "{filter:?}");
    }
    // Unfiltered lists include calls that never started.
    let unfiltered = all_pages(&sim, CallFilter::default()).await;
    assert!(unfiltered.iter().any(|c| c.start_time.is_none()));
}

#[tokio::test]
async fn new_calls_between_pages_cause_no_duplicate_and_no_gap() {
    let sim = SimulatedTwilio::new(config(21, 900));
    let snapshot = sim.calls();
    let filter = CallFilter {
        page_size: 40,
        ..CallFilter::default()
    };
    let mut got: Vec<Call> = Vec::new();
    let mut token: Option<PageToken> = None;
    let mut clock = now();
    let mut pages = 0;
    loop {
        let page = sim.list_calls_page(&filter, token.as_ref()).await.unwrap();
        got.extend(page.calls);
        pages += 1;
        // Between requests: new live traffic, a hand-made call, time passing.
        clock += chrono::Duration::seconds(20);
        sim.advance_to(clock);
        sim.generate_live(2);
        let mut extra = Call::new(
            CallSid::new(format!("CA{:032x}", pages)).unwrap(),
            CallStatus::Ringing,
            CallDirection::Inbound,
        );
        extra.start_time = Some(clock);
        extra.from = Some("+16175550100".into());
        extra.to = Some("+19788447773".into());
        sim.insert(extra);
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 900 / 40 + 1);
    let got_sids = sids(&got);
    let unique: HashSet<_> = got_sids.iter().collect();
    assert_eq!(unique.len(), got_sids.len(), "duplicates");
    assert_eq!(got_sids, sids(&snapshot), "gaps or new calls mixed in");
    assert!(sim.calls().len() > 900 + pages);
}

#[test]
fn advancing_time_completes_calls_and_fills_prices_later() {
    let mut account = SimulatedAccount::new(config(13, 2_000));
    let before: HashMap<String, Call> = account
        .calls()
        .into_iter()
        .map(|c| (c.sid.to_string(), c))
        .collect();
    let ongoing = account.ongoing();
    assert!(ongoing.len() >= 3, "{ongoing:?}");
    let unpriced: Vec<String> = before
        .values()
        .filter(|c| c.status == CallStatus::Completed && c.price.is_none())
        .map(|c| c.sid.to_string())
        .collect();
    assert!(!unpriced.is_empty());
    let queued: Vec<String> = before
        .values()
        .filter(|c| c.status == CallStatus::Queued)
        .map(|c| c.sid.to_string())
        .collect();
    assert!(!queued.is_empty());

    // An hour and a half later every call has ended.
    account.advance_to(now() + chrono::Duration::minutes(90));
    assert_eq!(account.now(), now() + chrono::Duration::minutes(90));
    for sid in &ongoing {
        let call = account.call(sid).unwrap();
        let old = &before[sid.as_str()];
        assert!(call.status.is_final(), "{sid} is still {}", call.status);
        assert!(call.date_updated > old.date_updated);
        if call.status == CallStatus::Completed {
            assert!(call.duration.is_some() && call.end_time.is_some());
        }
    }
    for sid in &queued {
        let call = account.call(&CallSid::new(sid.clone()).unwrap()).unwrap();
        assert_ne!(call.status, CallStatus::Queued);
        assert!(call.start_time.is_some() || call.status == CallStatus::Failed);
    }
    for sid in &unpriced {
        let call = account.call(&CallSid::new(sid.clone()).unwrap()).unwrap();
        assert!(call.price.is_some(), "{sid} has no price yet");
    }
    // Later still, every completed call is priced and nothing changes.
    account.advance_to(now() + chrono::Duration::hours(3));
    assert!(account.ongoing().is_empty());
    let settled = account.calls();
    assert!(settled
        .iter()
        .filter(|c| c.status == CallStatus::Completed)
        .all(|c| c.price.is_some()));
    account.advance_to(now() + chrono::Duration::hours(4));
    assert_eq!(account.calls(), settled);
    // Time does not go back.
    account.advance_to(now());
    assert_eq!(account.calls(), settled);
}

#[test]
fn complete_call_and_live_traffic() {
    let mut account = SimulatedAccount::new(config(17, 500));
    let live = account
        .calls()
        .into_iter()
        .find(|c| c.status == CallStatus::InProgress)
        .unwrap();
    let done = account.complete_call(&live.sid).unwrap();
    assert_eq!(done.status, CallStatus::Completed);
    assert_eq!(done.end_time, Some(account.now()));
    assert_eq!(
        done.duration,
        Some((account.now() - live.start_time.unwrap()).num_seconds() as u32)
    );
    assert!(done.price.is_none());
    account.advance_to(now() + chrono::Duration::minutes(15));
    let priced = account.call(&live.sid).unwrap();
    assert!(priced.price.is_some());
    assert_eq!(priced.duration, done.duration);
    assert!(account
        .complete_call(&CallSid::new("CAnope").unwrap())
        .is_none());

    // Hand-made calls: insert, update, complete.
    let sid = CallSid::new("CA00000000000000000000000000000abc").unwrap();
    let mut call = Call::new(sid.clone(), CallStatus::Ringing, CallDirection::Inbound);
    call.start_time = Some(account.now() - chrono::Duration::seconds(30));
    assert!(account.insert(call.clone()).is_none());
    assert_eq!(account.call(&sid), Some(call.clone()));
    call.status = CallStatus::InProgress;
    assert!(account.update(call.clone()));
    let completed = account.complete_call(&sid).unwrap();
    assert_eq!(completed.status, CallStatus::Completed);
    assert_eq!(completed.duration, Some(30));
    assert!(!account.update(Call::new(
        CallSid::new("CAunknown").unwrap(),
        CallStatus::Completed,
        CallDirection::Inbound
    )));

    // Live traffic: new interactions appear, some of them ringing.
    let len = account.len();
    let roots = account.generate_live(5);
    assert_eq!(roots.len(), 5);
    for root in &roots {
        let call = account.call(root).unwrap();
        assert!(call.parent_call_sid.is_none());
    }
    assert!(roots
        .iter()
        .any(|r| !account.call(r).unwrap().status.is_final()));
    assert!(account.len() >= len + 5);
    account.set_live_rate(6.0);
    let t = account.now() + chrono::Duration::minutes(10);
    let new_roots = account.tick(t);
    assert!(new_roots.len() > 20, "{}", new_roots.len());
    assert_eq!(account.now(), t);
    for root in &new_roots {
        let call = account.call(root).unwrap();
        assert!(call.start_time.is_none_or(|s| s <= t));
    }
}

#[test]
fn twenty_thousand_calls() {
    let started = std::time::Instant::now();
    let account = SimulatedAccount::new(config(99, 20_000));
    assert_eq!(account.len(), 20_000);
    let calls = account.calls();
    let customers: HashSet<&str> = calls
        .iter()
        .filter(|c| c.direction == CallDirection::Inbound)
        .filter_map(|c| c.from.as_deref())
        .filter(|f| f.starts_with('+'))
        .collect();
    assert!(customers.len() > 500, "{}", customers.len());
    assert!(started.elapsed() < Duration::from_secs(60));
}

// ----- over HTTP ---------------------------------------------------------

async fn start(sim: SimulatedTwilio, options: ServerOptions) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, sim, options));
    base
}

fn http_client(base: &str, account_sid: &str, token: &str) -> HttpTwilioClient {
    HttpTwilioClient::new(TwilioConfig {
        credentials: Credentials::AuthToken {
            account_sid: account_sid.into(),
            auth_token: Secret::new(token),
        },
        base_url: base.into(),
        intelligence_base_url: base.into(),
    })
    .unwrap()
    .with_retry_policy(RetryPolicy {
        max_attempts: 8,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    })
}

#[tokio::test]
async fn http_envelope_paging_and_errors() {
    let sim = SimulatedTwilio::new(config(31, 130));
    let ac = sim.account_sid().to_owned();
    let base = start(sim.clone(), ServerOptions::default()).await;
    let http = reqwest::Client::new();
    let get = |uri: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let response = http.get(format!("{base}{uri}")).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };

    let (status, body) = get(format!("/2010-04-01/Accounts/{ac}/Calls.json?PageSize=50")).await;
    assert_eq!(status, 200);
    for key in [
        "calls",
        "first_page_uri",
        "next_page_uri",
        "previous_page_uri",
        "page",
        "page_size",
        "start",
        "end",
        "uri",
    ] {
        assert!(body.get(key).is_some(), "missing {key}");
    }
    assert_eq!(body["page"], 0);
    assert_eq!(body["page_size"], 50);
    assert_eq!(body["start"], 0);
    assert_eq!(body["end"], 49);
    assert!(body["previous_page_uri"].is_null());
    assert_eq!(
        body["first_page_uri"],
        format!("/2010-04-01/Accounts/{ac}/Calls.json?PageSize=50&Page=0")
    );
    let first = &body["calls"][0];
    assert!(first["sid"].as_str().unwrap().starts_with("CA"));
    assert!(first.get("start_time").is_some() && first.get("subresource_uris").is_some());

    // Following next_page_uri as given reaches every call once.
    let mut seen: Vec<String> = Vec::new();
    let mut body = body;
    let mut pages = 1;
    loop {
        for call in body["calls"].as_array().unwrap() {
            seen.push(call["sid"].as_str().unwrap().to_owned());
        }
        let Some(next) = body["next_page_uri"].as_str().map(str::to_owned) else {
            break;
        };
        assert!(next.contains("PageToken=PA"));
        let (status, next_body) = get(next).await;
        assert_eq!(status, 200);
        assert!(next_body["previous_page_uri"]
            .as_str()
            .unwrap()
            .contains("PageToken=PB"));
        body = next_body;
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(body["page"], 2);
    assert_eq!(body["start"], 100);
    assert_eq!(seen, sids(&sim.calls()));

    // The previous page link goes back to the same records.
    let prev = body["previous_page_uri"].as_str().unwrap().to_owned();
    let (_, prev_body) = get(prev).await;
    let prev_sids: Vec<_> = prev_body["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(prev_sids, seen[50..100]);

    // Filters with the comparison in the name; unknown names are ignored.
    let all = sim.calls();
    let mid = all[60].start_time.unwrap();
    let stamp = mid.format("%Y-%m-%dT%H:%M:%SZ");
    let (_, filtered) = get(format!(
        "/2010-04-01/Accounts/{ac}/Calls.json?PageSize=1000&StartTime%3E={stamp}"
    ))
    .await;
    let expected = all
        .iter()
        .filter(|c| c.start_time.is_some_and(|s| s > mid))
        .count();
    assert_eq!(filtered["calls"].as_array().unwrap().len(), expected);
    let (_, ignored) = get(format!(
        "/2010-04-01/Accounts/{ac}/Calls.json?PageSize=1000&StartTimeAfter={stamp}"
    ))
    .await;
    assert_eq!(ignored["calls"].as_array().unwrap().len(), all.len());
    let (_, by_status) = get(format!(
        "/2010-04-01/Accounts/{ac}/Calls.json?Status=busy&PageSize=1000"
    ))
    .await;
    assert!(by_status["calls"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "busy"));

    // One call, numbers, recordings.
    let sid = all[0].sid.to_string();
    let (status, call) = get(format!("/2010-04-01/Accounts/{ac}/Calls/{sid}.json")).await;
    assert_eq!(status, 200);
    assert_eq!(call, all[0].to_rest_json());
    let (_, numbers) = get(format!(
        "/2010-04-01/Accounts/{ac}/IncomingPhoneNumbers.json"
    ))
    .await;
    assert_eq!(
        numbers["incoming_phone_numbers"].as_array().unwrap().len(),
        3
    );
    assert!(numbers["next_page_uri"].is_null());

    // Errors in Twilio's shape.
    let (status, error) = get(format!(
        "/2010-04-01/Accounts/{ac}/Calls/CA0000000000000000000000000000beef.json"
    ))
    .await;
    assert_eq!(status, 404);
    assert_eq!(error["code"], 20404);
    assert_eq!(error["status"], 404);
    assert_eq!(
        error["more_info"],
        "https://www.twilio.com/docs/errors/20404"
    );
    assert!(error["message"].as_str().unwrap().contains("not found"));
    let wrong = "AC0123456789abcdef0123456789abcdef";
    let (status, error) = get(format!("/2010-04-01/Accounts/{wrong}/Calls.json")).await;
    assert_eq!((status, error["code"].as_i64()), (404, Some(20404)));
    let (status, error) = get(format!("/2010-04-01/Accounts/{ac}/Calls.json?PageSize=0")).await;
    assert_eq!((status, error["code"].as_i64()), (400, Some(20001)));
    let (status, _) = get("/nothing/here".into()).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn http_basic_auth_is_required_when_configured() {
    let sim = SimulatedTwilio::new(config(32, 40));
    let ac = sim.account_sid().to_owned();
    let options = ServerOptions {
        credentials: Some((ac.clone(), "s3cret".into())),
        ..ServerOptions::default()
    };
    assert!(!format!("{options:?}").contains("s3cret"));
    let base = start(sim.clone(), options).await;
    let url = format!("{base}/2010-04-01/Accounts/{ac}/Calls.json");
    let http = reqwest::Client::new();

    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 20003);
    assert_eq!(body["status"], 401);

    let wrong = http
        .get(&url)
        .basic_auth(&ac, Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let ok = http
        .get(&url)
        .basic_auth(&ac, Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);

    let err = http_client(&base, &ac, "nope")
        .list_calls_page(&CallFilter::default(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TwilioError::Unauthorized { status: 401, .. }),
        "{err}"
    );
    let calls = all_pages(&http_client(&base, &ac, "s3cret"), CallFilter::default()).await;
    assert_eq!(calls.len(), 40);
}

#[tokio::test]
async fn http_injects_429_and_5xx() {
    let sim = SimulatedTwilio::new(config(33, 60));
    let ac = sim.account_sid().to_owned();
    let base = start(
        sim.clone(),
        ServerOptions {
            fail_every_nth_with_429: Some(2),
            ..ServerOptions::default()
        },
    )
    .await;
    let url = format!("{base}/2010-04-01/Accounts/{ac}/Calls.json");
    let http = reqwest::Client::new();
    let first = http.get(&url).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let second = http.get(&url).send().await.unwrap();
    assert_eq!(second.status().as_u16(), 429);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["code"], 20429);
    assert_eq!(
        body["more_info"],
        "https://www.twilio.com/docs/errors/20429"
    );

    // The real client retries through the faults and still sees every call once.
    let client = http_client(&base, &ac, "unused");
    let filter = CallFilter {
        page_size: 7,
        ..CallFilter::default()
    };
    assert_eq!(all_pages(&client, filter.clone()).await, sim.calls());

    let flaky = start(
        sim.clone(),
        ServerOptions {
            error_rate_5xx: 0.3,
            latency_per_page: Duration::from_millis(2),
            ..ServerOptions::default()
        },
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let url = format!("{flaky}/2010-04-01/Accounts/{ac}/Calls.json?PageSize=1");
        statuses.push(http.get(&url).send().await.unwrap().status().as_u16());
    }
    assert!(statuses.iter().any(|s| *s >= 500), "{statuses:?}");
    assert!(statuses.contains(&200));
    let client = http_client(&flaky, &ac, "unused");
    assert_eq!(all_pages(&client, filter).await, sim.calls());
}

#[tokio::test]
async fn http_client_sees_what_the_in_process_client_sees() {
    let sim = SimulatedTwilio::new(config(34, 600));
    let ac = sim.account_sid().to_owned();
    let base = start(sim.clone(), ServerOptions::default()).await;
    let client = http_client(&base, &ac, "unused");

    for filter in [
        CallFilter {
            page_size: 50,
            ..CallFilter::default()
        },
        CallFilter {
            page_size: 13,
            ..CallFilter::started_after(now() - chrono::Duration::days(10))
        },
        CallFilter {
            status: Some(CallStatus::Completed),
            start_time_before: Some(now() - chrono::Duration::days(3)),
            ..CallFilter::default()
        },
    ] {
        let over_http = all_pages(&client, filter.clone()).await;
        let in_process = all_pages(&sim, filter.clone()).await;
        assert!(!in_process.is_empty());
        assert_eq!(over_http, in_process, "{filter:?}");
    }

    let some = &sim.calls()[3];
    assert_eq!(
        client.fetch_call(&some.sid).await.unwrap(),
        sim.fetch_call(&some.sid).await.unwrap()
    );
    let missing = CallSid::new("CA0000000000000000000000000000beef").unwrap();
    assert!(matches!(
        client.fetch_call(&missing).await.unwrap_err(),
        TwilioError::NotFound { .. }
    ));
    assert!(matches!(
        sim.fetch_call(&missing).await.unwrap_err(),
        TwilioError::NotFound { .. }
    ));
    assert_eq!(
        client.list_incoming_numbers().await.unwrap(),
        sim.list_incoming_numbers().await.unwrap()
    );
    let recorded = sim
        .lock()
        .all_recordings()
        .into_iter()
        .find(|r| r.status == RecordingStatus::Completed)
        .unwrap();
    let filter = RecordingFilter::of_call(recorded.call_sid.clone().unwrap());
    let recordings = client
        .list_recordings_page(&filter, None)
        .await
        .unwrap()
        .recordings;
    assert!(recordings.contains(&recorded));
    assert_eq!(
        recordings,
        sim.list_recordings_page(&filter, None)
            .await
            .unwrap()
            .recordings
    );

    // The recording's media is served (or redirected to the storage).
    let audio = reqwest::get(format!(
        "{base}{}",
        recorded.raw["uri"]
            .as_str()
            .unwrap()
            .replace(".json", ".wav")
    ))
    .await
    .unwrap();
    assert_eq!(audio.status().as_u16(), 200);
    assert!(audio.bytes().await.unwrap().starts_with(b"RIFF"));

    // Live changes show up over HTTP too.
    let ongoing = sim.lock().ongoing();
    let sid = ongoing
        .iter()
        .find(|s| sim.lock().call(s).unwrap().start_time.is_some())
        .unwrap()
        .clone();
    sim.complete_call(&sid);
    let fetched = client.fetch_call(&sid).await.unwrap();
    assert_eq!(fetched.status, CallStatus::Completed);
}
