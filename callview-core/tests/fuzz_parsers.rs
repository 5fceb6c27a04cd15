//! Fuzzing the parsers (proptest): Twilio call records with every known
//! field (REST and CLI names) holding values of any JSON type, whole pages
//! and CLI arrays cut at any byte, timestamps, phone values in any region,
//! owned-number lists and the external-party rules. Nothing panics, and a
//! record that parses survives a round trip through Twilio's REST form.
//!
//! (`src/call.rs` already fuzzes arbitrary JSON text and arbitrary field
//! names with string values, `tests/endpoint.rs` the classification of
//! printable strings in the US region, `src/callback.rs` status-callback
//! forms; these go further.)

use callview_core::call::parse_twilio_time;
use callview_core::endpoint::{Normalizer, OwnedNumbers, PartyRules};
use callview_core::{Call, CallDirection, CallSid, CallStatus};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const REST: &[&str] = &[
    "sid",
    "account_sid",
    "parent_call_sid",
    "to",
    "to_formatted",
    "from",
    "from_formatted",
    "phone_number_sid",
    "status",
    "direction",
    "start_time",
    "end_time",
    "date_created",
    "date_updated",
    "duration",
    "price",
    "price_unit",
    "queue_time",
    "answered_by",
    "forwarded_from",
    "caller_name",
    "group_sid",
    "trunk_sid",
    "api_version",
    "uri",
    "subresource_uris",
];

const CLI: &[&str] = &[
    "accountSid",
    "parentCallSid",
    "toFormatted",
    "fromFormatted",
    "startTime",
    "endTime",
    "dateCreated",
    "dateUpdated",
    "priceUnit",
    "queueTime",
    "answeredBy",
    "subresourceUris",
];

/// Strings a Twilio field could plausibly (or implausibly) hold.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("Fri, 18 Oct 2019 17:02:00 +0000".to_owned()),
        Just("2026-02-06T15:17:13.000Z".to_owned()),
        Just("2026-02-30T25:61:61Z".to_owned()),
        Just("Mon, 99 Foo 2019 99:99:99 +9999".to_owned()),
        Just("-0.01400".to_owned()),
        Just("1e400".to_owned()),
        Just("-1".to_owned()),
        Just("4294967296".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("79228162514264337593543950336".to_owned()),
        Just("completed".to_owned()),
        Just("in-progress".to_owned()),
        Just("outbound-dial".to_owned()),
        Just("+19788447773".to_owned()),
        Just("sip:+15085140320@acme.sip.twilio.com;transport=udp".to_owned()),
        Just("client:alice".to_owned()),
        Just("anonymous".to_owned()),
        "[0-9]{1,40}",
        "-?[0-9]{0,12}\\.?[0-9]{0,12}",
        "\\PC{0,40}",
        ".{0,20}",
    ]
}

/// A JSON value of any type, nested a little.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A record with known fields (REST or CLI names) holding anything.
fn record() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        4 => proptest::sample::select(REST),
        2 => proptest::sample::select(CLI),
    ];
    (
        prop_oneof![
            6 => "CA[0-9a-f]{32}".prop_map(Value::String),
            1 => value(),
        ],
        proptest::collection::vec((name, value()), 0..16),
    )
        .prop_map(|(sid, fields)| {
            let mut map = Map::new();
            map.insert("sid".into(), sid);
            for (k, v) in fields {
                if k != "sid" {
                    map.insert(k.to_owned(), v);
                }
            }
            Value::Object(map)
        })
}

/// A well-typed record in REST form whose values are random but valid.
fn valid_record() -> impl Strategy<Value = Value> {
    (
        "[0-9a-f]{32}",
        proptest::option::of("[0-9a-f]{32}"),
        proptest::option::of(0u32..100_000),
        proptest::option::of(-100_000i64..100_000),
        proptest::option::of(0i64..2_000_000_000),
        proptest::sample::select(vec![
            "completed",
            "ringing",
            "no-answer",
            "weird-new-status",
        ]),
        proptest::sample::select(vec!["inbound", "outbound-dial", "trunking-new"]),
        text(),
        text(),
    )
        .prop_map(
            |(sid, parent, duration, price, start, status, direction, from, to)| {
                let time = start.map(|s| {
                    callview_core::call::format_rfc2822(
                        &chrono::DateTime::from_timestamp(s, 0).unwrap_or_default(),
                    )
                });
                json!({
                    "sid": format!("CA{sid}"),
                    "parent_call_sid": parent.map(|p| format!("CA{p}")),
                    "duration": duration.map(|d| d.to_string()),
                    "price": price.map(|p| format!("{}.{:05}", p / 100_000, (p % 100_000).abs())),
                    "start_time": time,
                    "status": status,
                    "direction": direction,
                    "from": from,
                    "to": to,
                })
            },
        )
}

fn regions() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "US", "GB", "DE", "FR", "IN", "BR", "JP", "AU", "NZ", "ZA"
        ])
        .prop_map(str::to_owned),
        "[A-Za-z]{0,3}",
    ]
}

fn phone_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,64}",
        "[0-9]{0,300}",
        "\\+[0-9]{0,40}",
        "[-+0-9 ().]{0,30}",
        "(sip|SIP|sips|tel|client):[-+0-9a-zA-Z@.;=:_]{0,60}",
        "sip:\\+?[0-9]{0,20}@[a-z.]{0,20}(:[0-9]{0,6})?(;[a-z]{0,8}=[a-z]{0,8})?",
        Just("+266696687".to_owned()),
        Just("+00000000000".to_owned()),
        Just("+".to_owned()),
        Just("sip:@".to_owned()),
        Just("sip:A@::".to_owned()),
        Just("sip:a@:1:2".to_owned()),
        Just("sip:a@[::1]:5060".to_owned()),
        Just("sip:a@:5".to_owned()),
        Just("\u{0}\u{200b}+1 978\u{a0}844 7773".to_owned()),
        Just("+１９７８８４４７７７３".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn records_with_any_typed_values_never_panic(record in record()) {
        if let Ok(call) = Call::from_json(&record) {
            // What parsed survives a round trip through the REST form.
            let back = Call::from_json(&call.to_rest_json());
            prop_assert!(back.is_ok(), "{:?}", back);
            let back = back.unwrap_or_else(|_| unreachable!());
            prop_assert_eq!(&back.sid, &call.sid);
            prop_assert_eq!(&back.status, &call.status);
            prop_assert_eq!(&back.direction, &call.direction);
            prop_assert_eq!(back.duration, call.duration);
            prop_assert_eq!(back.price, call.price);
            prop_assert_eq!(back.queue_time, call.queue_time);
            prop_assert_eq!(&back.parent_call_sid, &call.parent_call_sid);
            // Times keep their second (the REST form has no fractions).
            prop_assert_eq!(
                back.start_time.map(|t| t.timestamp()),
                call.start_time.map(|t| t.timestamp())
            );
            let _ = serde_json::to_string(&call);
        }
    }

    #[test]
    fn valid_records_always_parse(record in valid_record()) {
        let call = Call::from_json(&record);
        prop_assert!(call.is_ok(), "{:?} {}", call, record);
    }

    #[test]
    fn pages_and_cli_arrays_cut_anywhere_never_panic(
        records in proptest::collection::vec(record(), 0..6),
        cut in any::<proptest::sample::Index>(),
        camel in any::<bool>(),
    ) {
        let text = if camel {
            serde_json::to_string(&records).unwrap_or_default()
        } else {
            json!({"calls": records, "next_page_uri": null, "page": 0}).to_string()
        };
        let bytes = text.as_bytes();
        let cut = cut.index(bytes.len() + 1);
        for slice in [bytes, &bytes[..cut]] {
            if let Ok(value) = serde_json::from_slice::<Value>(slice) {
                let list = value.get("calls").cloned().unwrap_or(value);
                if let Value::Array(items) = list {
                    for item in &items {
                        let _ = Call::from_json(item);
                    }
                }
            }
        }
    }

    #[test]
    fn timestamps_never_panic(text in prop_oneof!["\\PC{0,40}", "[A-Za-z]{3}, [0-9]{1,2} [A-Za-z]{3} [0-9]{1,6} [0-9:]{0,9} [-+][0-9]{0,5}", "[0-9]{1,6}-[0-9]{1,3}-[0-9]{1,3}T[0-9:.]{0,15}Z?"]) {
        if let Some(t) = parse_twilio_time(&text) {
            let _ = callview_core::call::format_rfc2822(&t);
        }
    }

    #[test]
    fn phone_values_in_any_region_never_panic(region in regions(), raw in phone_value()) {
        let Ok(n) = Normalizer::new(&region) else { return Ok(()) };
        let e = n.classify(Some(&raw));
        let _ = n.display(&e);
        let _ = n.display_key(&e.canonical);
        let _ = n.canonical_phone(&raw);
        // The canonical form is stable.
        let again = n.classify(Some(&e.canonical));
        prop_assert_eq!(&again.canonical, &e.canonical, "{:?} in {}", raw, region);
    }

    #[test]
    fn party_rules_never_panic(
        region in regions(),
        owned in proptest::collection::vec(phone_value(), 0..4),
        from in proptest::option::of(phone_value()),
        to in proptest::option::of(phone_value()),
        outbound in any::<bool>(),
    ) {
        let Ok(n) = Normalizer::new(&region) else { return Ok(()) };
        let owned = OwnedNumbers::from_raw(&n, owned.iter().map(String::as_str));
        let _ = owned.to_sorted_vec();
        let rules = PartyRules::new(n, owned);
        let mut call = Call::new(
            CallSid::new("CA1").unwrap_or_else(|| unreachable!()),
            CallStatus::Completed,
            if outbound { CallDirection::parse("outbound-dial") } else { CallDirection::Inbound },
        );
        call.from = from;
        call.to = to;
        let party = rules.external_party(&call);
        let _ = n.display(&party.endpoint);
    }
}
