//! Endpoint classification, canonical and display forms, and the external
//! party of a call (`call-model.md` sections 1 and 2).

use callview_core::endpoint::{
    ActualDirection, EndpointKind, Normalizer, OwnedNumbers, PartyRules,
};
use callview_core::{Call, CallDirection, CallSid, CallStatus};
use proptest::prelude::*;

fn n() -> Normalizer {
    Normalizer::default()
}

#[test]
fn classification_table() {
    use EndpointKind::*;
    let table: &[(&str, EndpointKind, &str)] = &[
        // Phones, every formatting of one number.
        ("+19788447773", Phone, "+19788447773"),
        ("(978) 844-7773", Phone, "+19788447773"),
        ("9788447773", Phone, "+19788447773"),
        ("19788447773", Phone, "+19788447773"),
        ("978.844.7773", Phone, "+19788447773"),
        ("978-844-7773", Phone, "+19788447773"),
        ("+1 978 844 7773", Phone, "+19788447773"),
        ("  +1 (978) 844-7773  ", Phone, "+19788447773"),
        ("tel:+19788447773", Phone, "+19788447773"),
        // International.
        ("+44 20 7946 0958", Phone, "+442079460958"),
        ("+442079460958", Phone, "+442079460958"),
        ("+33 1 42 68 53 00", Phone, "+33142685300"),
        ("+61 2 9374 4000", Phone, "+61293744000"),
        ("011 44 20 7946 0958", Phone, "+442079460958"),
        ("011 33 1 42 68 53 00", Phone, "+33142685300"),
        ("+55 11 98765 4321", Phone, "+5511987654321"),
        // SIP URIs carrying a number.
        (
            "sip:+15085140320@acme.sip.twilio.com",
            SipPhone,
            "+15085140320",
        ),
        (
            "sip:15085140320@host;transport=udp",
            SipPhone,
            "+15085140320",
        ),
        ("sip:5085140320@host", SipPhone, "+15085140320"),
        (
            "sip:+15085140320@acme.sip.twilio.com:5060;transport=tls",
            SipPhone,
            "+15085140320",
        ),
        (
            "SIP:+15085140320@ACME.sip.twilio.com",
            SipPhone,
            "+15085140320",
        ),
        ("sips:+15085140320@host", SipPhone, "+15085140320"),
        // SIP endpoints: lowercased, parameters and port dropped.
        (
            "sip:dispatcher@acme.sip.twilio.com",
            SipEndpoint,
            "sip:dispatcher@acme.sip.twilio.com",
        ),
        (
            "sip:Dispatcher@ACME.sip.twilio.com;transport=udp",
            SipEndpoint,
            "sip:dispatcher@acme.sip.twilio.com",
        ),
        (
            "sip:dispatcher@acme.sip.twilio.com:5060",
            SipEndpoint,
            "sip:dispatcher@acme.sip.twilio.com",
        ),
        (
            "sip:1001@pbx.example.com",
            SipEndpoint,
            "sip:1001@pbx.example.com",
        ),
        // An IPv6 host keeps its address; only a port after it goes.
        (
            "sip:desk@[2001:db8::1]:5060",
            SipEndpoint,
            "sip:desk@[2001:db8::1]",
        ),
        (
            "sip:desk@[2001:db8::1]",
            SipEndpoint,
            "sip:desk@[2001:db8::1]",
        ),
        // Colons that are not a port stay (the canonical form is stable).
        ("sip:A@::", SipEndpoint, "sip:a@::"),
        // Clients.
        ("client:alice", Client, "client:alice"),
        ("client:Bob.Smith", Client, "client:Bob.Smith"),
        // Anonymous sentinels.
        ("", Anonymous, "anonymous"),
        ("   ", Anonymous, "anonymous"),
        ("anonymous", Anonymous, "anonymous"),
        ("Anonymous", Anonymous, "anonymous"),
        ("restricted", Anonymous, "anonymous"),
        ("RESTRICTED", Anonymous, "anonymous"),
        ("unknown", Anonymous, "anonymous"),
        ("private", Anonymous, "anonymous"),
        ("unavailable", Anonymous, "anonymous"),
        ("+266696687", Anonymous, "anonymous"),
        ("+7378742833", Anonymous, "anonymous"),
        ("+2562533", Anonymous, "anonymous"),
        ("+86282452253", Anonymous, "anonymous"),
        ("sip:anonymous@anonymous.invalid", Anonymous, "anonymous"),
        // Garbage.
        ("hello world", Other, "hello world"),
        ("12", Other, "12"),
        ("+1", Other, "+1"),
        ("+++", Other, "+++"),
        ("978-844-777a", Other, "978-844-777a"),
        ("1234567890123456789", Other, "1234567890123456789"),
    ];
    for (raw, kind, canonical) in table {
        let e = n().classify(Some(raw));
        assert_eq!(
            (e.kind, e.canonical.as_str()),
            (*kind, *canonical),
            "classifying {raw:?}"
        );
    }
    assert_eq!(n().classify(None).kind, Anonymous);
}

#[test]
fn display_forms() {
    let d = |raw: &str| n().display(&n().classify(Some(raw)));
    assert_eq!(d("+19788447773"), "+1 (978) 844-7773");
    assert_eq!(
        d("sip:+15085140320@acme.sip.twilio.com"),
        "+1 (508) 514-0320"
    );
    assert_eq!(d("+44 20 7946 0958"), "+44 20 7946 0958");
    assert_eq!(d("+33142685300"), "+33 1 42 68 53 00");
    assert_eq!(d("restricted"), "Anonymous");
    assert_eq!(d("client:alice"), "client:alice");
    assert_eq!(
        d("sip:dispatcher@acme.sip.twilio.com"),
        "sip:dispatcher@acme.sip.twilio.com"
    );
    assert_eq!(n().display_key("anonymous"), "Anonymous");
    assert_eq!(n().display_key("+19788447773"), "+1 (978) 844-7773");
}

#[test]
fn default_region_is_configurable() {
    let gb = Normalizer::new("gb").unwrap();
    assert_eq!(
        gb.classify(Some("020 7946 0958")).canonical,
        "+442079460958"
    );
    assert_eq!(
        gb.classify(Some("00 33 1 42 68 53 00")).canonical,
        "+33142685300"
    );
    assert_eq!(
        gb.classify(Some("+1 978 844 7773")).canonical,
        "+19788447773"
    );
    assert_eq!(
        n().classify(Some("020 7946 0958")).kind,
        EndpointKind::Other
    );
    assert!(Normalizer::new("XX").is_err());
    assert!(Normalizer::new("").is_err());
}

fn call(from: &str, to: &str, direction: &str) -> Call {
    let mut c = Call::new(
        CallSid::new("CA1").unwrap(),
        CallStatus::Completed,
        CallDirection::parse(direction),
    );
    c.from = Some(from.into()).filter(|s: &String| !s.is_empty());
    c.to = Some(to.into());
    c
}

fn rules() -> PartyRules {
    PartyRules::new(
        n(),
        OwnedNumbers::from_raw(&n(), ["+19788447773", "+1 (617) 500-6181"]),
    )
}

#[test]
fn external_party_rules() {
    let r = rules();
    let cases: &[(&str, &str, &str, &str, ActualDirection)] = &[
        // 1. external caller to our number
        (
            "+15551230000",
            "+19788447773",
            "inbound",
            "+15551230000",
            ActualDirection::Inbound,
        ),
        // 2. our number to an external party
        (
            "+19788447773",
            "+15551230000",
            "outbound-api",
            "+15551230000",
            ActualDirection::Outbound,
        ),
        // forwarded leg: customer's caller ID to a SIP dispatcher
        (
            "+15551230000",
            "sip:dispatcher@acme.sip.twilio.com",
            "outbound-dial",
            "+15551230000",
            ActualDirection::Inbound,
        ),
        // dispatcher dials a customer through SIP: Twilio says inbound
        (
            "sip:dispatcher@acme.sip.twilio.com",
            "sip:+15085140320@acme.sip.twilio.com",
            "inbound",
            "+15085140320",
            ActualDirection::Outbound,
        ),
        // 3. both external: Twilio's direction decides
        (
            "+15551230000",
            "+15559990000",
            "inbound",
            "+15551230000",
            ActualDirection::Inbound,
        ),
        (
            "+15551230000",
            "+15559990000",
            "outbound-dial",
            "+15559990000",
            ActualDirection::Outbound,
        ),
        (
            "+15551230000",
            "+15559990000",
            "trunking-originating",
            "+15551230000",
            ActualDirection::Inbound,
        ),
        (
            "+15551230000",
            "+15559990000",
            "trunking-terminating",
            "+15559990000",
            ActualDirection::Outbound,
        ),
        // anonymous caller is external
        (
            "",
            "+19788447773",
            "inbound",
            "anonymous",
            ActualDirection::Inbound,
        ),
        (
            "+266696687",
            "+19788447773",
            "inbound",
            "anonymous",
            ActualDirection::Inbound,
        ),
        // 4. both internal
        (
            "client:alice",
            "sip:dispatcher@acme.sip.twilio.com",
            "inbound",
            "sip:dispatcher@acme.sip.twilio.com",
            ActualDirection::Internal,
        ),
        (
            "sip:dispatcher@acme.sip.twilio.com",
            "+1 617 500 6181",
            "inbound",
            "+16175006181",
            ActualDirection::Internal,
        ),
    ];
    for (from, to, dir, party, actual) in cases {
        let p = r.external_party(&call(from, to, dir));
        assert_eq!(
            (p.endpoint.canonical.as_str(), p.direction),
            (*party, *actual),
            "{from} -> {to} ({dir})"
        );
        assert_eq!(p.external, *actual != ActualDirection::Internal);
    }
}

#[test]
fn owned_numbers_accept_any_format() {
    let owned = OwnedNumbers::from_raw(&n(), ["(978) 844-7773", "not a number", "sip:x@y"]);
    assert_eq!(owned.len(), 1);
    assert!(owned.contains("+19788447773"));
    assert!(!owned.is_empty());
}

fn formattings(area: u16, exchange: u16, line: u16) -> Vec<String> {
    vec![
        format!("+1{area}{exchange}{line:04}"),
        format!("{area}{exchange}{line:04}"),
        format!("1{area}{exchange}{line:04}"),
        format!("({area}) {exchange}-{line:04}"),
        format!("{area}.{exchange}.{line:04}"),
        format!("+1 {area} {exchange} {line:04}"),
        format!("sip:+1{area}{exchange}{line:04}@acme.sip.twilio.com;transport=udp"),
        format!("sip:{area}{exchange}{line:04}@host:5060"),
    ]
}

proptest! {
    #[test]
    fn classification_never_panics(raw in "\\PC{0,64}") {
        let e = n().classify(Some(&raw));
        let _ = n().display(&e);
    }

    #[test]
    fn canonicalisation_is_idempotent(raw in "[-+0-9 ().a-z:@;=]{0,30}") {
        let once = n().classify(Some(&raw));
        let twice = n().classify(Some(&once.canonical));
        prop_assert_eq!(&once.canonical, &twice.canonical);
    }

    #[test]
    fn every_formatting_of_a_number_has_one_canonical_form(
        area in 201u16..990, exchange in 200u16..999, line in 0u16..10000
    ) {
        prop_assume!(area % 100 != 11 && exchange % 100 != 11);
        let forms = formattings(area, exchange, line);
        let first = n().classify(Some(&forms[0]));
        prop_assume!(first.is_phone());
        for form in &forms {
            let e = n().classify(Some(form));
            prop_assert!(e.is_phone(), "{} is not a phone", form);
            prop_assert_eq!(&e.canonical, &first.canonical, "{}", form);
        }
    }

    #[test]
    fn international_numbers_round_trip_through_display(
        national in 2_000_000_000u64..2_099_999_999
    ) {
        let raw = format!("+44{national}");
        let e = n().classify(Some(&raw));
        prop_assume!(e.is_phone());
        let shown = n().display(&e);
        prop_assert_eq!(n().classify(Some(&shown)).canonical, e.canonical);
    }
}
