//! Building [`Call`] records by hand, and the fixed numbers and instants
//! the conformance tests use.

use crate::text::{MessageSid, Text, TextDirection, TextStatus};
use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::call::{Call, CallDirection, CallSid, CallStatus};
use crate::endpoint::{Normalizer, OwnedNumbers, PartyRules};

/// The business's own number in the tests (an IncomingPhoneNumber).
pub const COMPANY: &str = "+16175006181";
/// A customer (NANP).
pub const CUSTOMER: &str = "+19788447773";
/// `CUSTOMER`'s display form.
pub const CUSTOMER_DISPLAY: &str = "+1 (978) 844-7773";
/// A second customer, the one the dispatcher dials in the seed.
pub const CUSTOMER2: &str = "+15085140320";
/// `CUSTOMER2`'s display form.
pub const CUSTOMER2_DISPLAY: &str = "+1 (508) 514-0320";
/// An agent's mobile phone calls are forwarded to (an external number).
pub const AGENT_CELL: &str = "+17815550123";
/// A UK customer.
pub const UK_CUSTOMER: &str = "+442079460958";
/// `UK_CUSTOMER`'s display form.
pub const UK_CUSTOMER_DISPLAY: &str = "+44 20 7946 0958";
/// The dispatcher's SIP phone (an internal SIP endpoint).
pub const DISPATCHER: &str = "sip:dispatcher@acme.sip.twilio.com";
/// An agent's SIP phone (an internal SIP endpoint).
pub const AGENT_SIP: &str = "sip:agent1@acme.sip.twilio.com";
/// A Voice SDK client (internal).
pub const ALICE: &str = "client:alice";

/// The party rules the tests plan with: default region `US`, [`COMPANY`] owned.
pub fn rules() -> PartyRules {
    let normalizer = Normalizer::default();
    PartyRules::new(normalizer, OwnedNumbers::from_raw(&normalizer, [COMPANY]))
}

/// A fixed instant all hand-written test calls are relative to
/// (2026-02-06 15:00:00 UTC).
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 6, 15, 0, 0)
        .single()
        .expect("valid instant")
}

/// [`t0`] plus `minutes`.
pub fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

/// [`t0`] plus `seconds`.
pub fn at_secs(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

/// A Twilio-shaped SID (`CA` + 32 hex digits) made from a number.
///
/// ```
/// assert_eq!(callview_core::testkit::sid(10), "CA0000000000000000000000000000000a");
/// ```
pub fn sid(n: u64) -> String {
    format!("CA{n:032x}")
}

/// Builds a [`Call`] field by field; [`CallBuilder::build`] returns it as
/// if parsed from Twilio's REST JSON (typed fields and `raw` agree).
///
/// Defaults: status `completed`, direction `inbound`, everything else empty.
///
/// ```
/// use callview_core::testkit::{at, CallBuilder};
/// let call = CallBuilder::new("CA1")
///     .from("+19788447773").to("+16175006181")
///     .direction("inbound").status("completed")
///     .start(at(0)).duration(40).price("-0.014")
///     .build();
/// assert_eq!(call.duration, Some(40));
/// assert_eq!(call.price.unwrap().to_string(), "-0.014");
/// assert_eq!(call.raw["from"], "+19788447773");
/// ```
#[derive(Clone, Debug)]
pub struct CallBuilder {
    call: Call,
}

impl CallBuilder {
    /// A completed inbound call with only its SID set.
    ///
    /// # Panics
    /// When `sid` is empty.
    pub fn new(sid: &str) -> Self {
        let sid = CallSid::new(sid).expect("a non-empty SID");
        Self {
            call: Call::new(sid, CallStatus::Completed, CallDirection::Inbound),
        }
    }

    /// Starts from an existing call (to derive a newer or older version).
    pub fn from_call(call: &Call) -> Self {
        Self { call: call.clone() }
    }

    /// The raw `from` value (an empty string is sent as `""`).
    pub fn from(mut self, from: &str) -> Self {
        self.call.from = Some(from.to_owned());
        self
    }

    /// No `from` at all (null).
    pub fn no_from(mut self) -> Self {
        self.call.from = None;
        self
    }

    /// The raw `to` value.
    pub fn to(mut self, to: &str) -> Self {
        self.call.to = Some(to.to_owned());
        self
    }

    /// Twilio's direction, any text.
    pub fn direction(mut self, direction: &str) -> Self {
        self.call.direction = CallDirection::parse(direction);
        self
    }

    /// Twilio's status, any text.
    pub fn status(mut self, status: &str) -> Self {
        self.call.status = CallStatus::parse(status);
        self
    }

    /// The start time (also used as `date_created` when that is not set).
    pub fn start(mut self, start: DateTime<Utc>) -> Self {
        self.call.start_time = Some(start);
        self
    }

    /// No start time (a call never dialled).
    pub fn no_start(mut self) -> Self {
        self.call.start_time = None;
        self
    }

    /// Twilio's `date_created` (defaults to the start time).
    pub fn created(mut self, created: DateTime<Utc>) -> Self {
        self.call.date_created = Some(created);
        self
    }

    /// The end time.
    pub fn end(mut self, end: DateTime<Utc>) -> Self {
        self.call.end_time = Some(end);
        self
    }

    /// The duration in seconds.
    pub fn duration(mut self, seconds: u32) -> Self {
        self.call.duration = Some(seconds);
        self
    }

    /// No duration (an ongoing call or one never connected).
    pub fn no_duration(mut self) -> Self {
        self.call.duration = None;
        self
    }

    /// The parent call's SID.
    pub fn parent(mut self, parent: &str) -> Self {
        self.call.parent_call_sid = CallSid::new(parent);
        self
    }

    /// The price as Twilio sends it (`"-0.01400"`); the unit becomes `USD`.
    ///
    /// # Panics
    /// When `price` is not a decimal number.
    pub fn price(mut self, price: &str) -> Self {
        self.call.price = Some(price.parse().expect("a decimal price"));
        self.call.price_unit = Some("USD".to_owned());
        self
    }

    /// No price (Twilio has not filled it in yet).
    pub fn no_price(mut self) -> Self {
        self.call.price = None;
        self
    }

    /// Twilio's `date_updated` (decides which of two versions is newer).
    pub fn updated(mut self, updated: DateTime<Utc>) -> Self {
        self.call.date_updated = Some(updated);
        self
    }

    /// `answered_by`.
    pub fn answered_by(mut self, answered_by: &str) -> Self {
        self.call.answered_by = Some(answered_by.to_owned());
        self
    }

    /// The call, with `raw` set to its REST JSON and every typed field read
    /// back from it (so seconds-precision times and empty strings behave
    /// exactly as they do for a record received from Twilio).
    ///
    /// # Panics
    /// Never for values set through the builder.
    pub fn build(self) -> Call {
        let mut call = self.call;
        if call.date_created.is_none() {
            call.date_created = call.start_time;
        }
        Call::from_json(&call.to_rest_json()).expect("a builder call parses")
    }
}

/// A Twilio-shaped message SID (`SM` + 32 hex digits) made from a number.
///
/// ```
/// assert_eq!(callview_core::testkit::text_sid(10), "SM0000000000000000000000000000000a");
/// ```
pub fn text_sid(n: u64) -> String {
    format!("SM{n:032x}")
}

/// Builds a [`Text`] field by field; [`TextBuilder::build`] returns it as if
/// parsed from Twilio's REST JSON.
///
/// Defaults: an inbound SMS from [`CUSTOMER`] to [`COMPANY`], `received`,
/// sent at [`t0`].
///
/// ```
/// use callview_core::testkit::{at, TextBuilder, COMPANY, CUSTOMER};
/// let text = TextBuilder::new(1).from(COMPANY).to(CUSTOMER).direction("outbound-api")
///     .status("delivered").sent(at(5)).body("On my way").build();
/// assert_eq!(text.raw["body"], "On my way");
/// ```
#[derive(Clone, Debug)]
pub struct TextBuilder {
    text: Text,
}

impl TextBuilder {
    /// An inbound SMS numbered `n` ([`text_sid`]).
    pub fn new(n: u64) -> Self {
        let sid = MessageSid::new(text_sid(n)).expect("a message SID");
        Self {
            text: Text {
                sid,
                account_sid: Some("AC00000000000000000000000000000000".into()),
                messaging_service_sid: None,
                from: Some(CUSTOMER.into()),
                to: Some(COMPANY.into()),
                body: format!("text {n}"),
                num_segments: Some(1),
                num_media: 0,
                direction: TextDirection::Inbound,
                status: TextStatus::Received,
                error_code: None,
                error_message: None,
                price: None,
                price_unit: Some("USD".into()),
                date_created: Some(t0()),
                date_sent: Some(t0()),
                date_updated: Some(t0()),
                raw: serde_json::Value::Null,
            },
        }
    }

    /// `from`.
    pub fn from(mut self, from: &str) -> Self {
        self.text.from = Some(from.to_owned());
        self
    }

    /// `to`.
    pub fn to(mut self, to: &str) -> Self {
        self.text.to = Some(to.to_owned());
        self
    }

    /// Twilio's direction (`inbound`, `outbound-api`, ...).
    pub fn direction(mut self, direction: &str) -> Self {
        self.text.direction = TextDirection::parse(direction);
        self
    }

    /// Twilio's status.
    pub fn status(mut self, status: &str) -> Self {
        self.text.status = TextStatus::parse(status);
        self
    }

    /// `date_sent` (and `date_created`, `date_updated` when not set later).
    pub fn sent(mut self, sent: DateTime<Utc>) -> Self {
        self.text.date_sent = Some(sent);
        self.text.date_created = Some(sent);
        self.text.date_updated = Some(sent);
        self
    }

    /// Not sent yet: no `date_sent`.
    pub fn unsent(mut self) -> Self {
        self.text.date_sent = None;
        self
    }

    /// `date_updated`.
    pub fn updated(mut self, updated: DateTime<Utc>) -> Self {
        self.text.date_updated = Some(updated);
        self
    }

    /// The body.
    pub fn body(mut self, body: &str) -> Self {
        self.text.body = body.to_owned();
        self
    }

    /// `num_media` (an MMS when above 0).
    pub fn media(mut self, n: u32) -> Self {
        self.text.num_media = n;
        self
    }

    /// `price` (exact decimal text).
    pub fn price(mut self, price: &str) -> Self {
        self.text.price = Some(price.parse().expect("a decimal price"));
        self
    }

    /// A delivery failure.
    pub fn error(mut self, code: i64, message: &str) -> Self {
        self.text.error_code = Some(code);
        self.text.error_message = Some(message.to_owned());
        self
    }

    /// The text, with `raw` set to its REST JSON and read back from it.
    pub fn build(self) -> Text {
        Text::from_value(self.text.to_rest_json()).expect("a builder text parses")
    }
}
