//! One Twilio call record, typed.
//!
//! [`Call`] holds every field of Twilio's call resource. It is parsed from
//! either wire form Twilio produces: the REST API's snake_case JSON (dates in
//! RFC 2822) and the Twilio CLI's camelCase JSON (dates in ISO 8601). Nulls,
//! empty strings and missing fields become `None`; a value of the wrong shape
//! is a [`CallParseError`] naming the field, never a panic.

use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::wire::{self, Record, RecordError};

/// A Twilio Call SID (`CA` followed by 32 hex digits for real calls).
///
/// The value is kept as Twilio sent it; only emptiness is rejected.
///
/// ```
/// use callview_core::CallSid;
/// let sid = CallSid::new("CA5bef499f976fd46ea521f3da237abf27").unwrap();
/// assert_eq!(sid.as_str(), "CA5bef499f976fd46ea521f3da237abf27");
/// assert!(CallSid::new("  ").is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CallSid(String);

impl CallSid {
    /// Wraps a SID; `None` when it is empty or only whitespace.
    pub fn new(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        let trimmed = value.trim();
        if trimmed.is_empty() {
            None
        } else if trimmed.len() == value.len() {
            Some(Self(value))
        } else {
            Some(Self(trimmed.to_owned()))
        }
    }

    /// The SID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CallSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for CallSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept exactly as Twilio sent it.
            Other(String),
        }

        impl $name {
            /// Parses Twilio's text; unknown values become `Other`.
            pub fn parse(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }

            /// Twilio's text for this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(other) => other,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                Ok(Self::parse(&text))
            }
        }
    };
}

pub(crate) use open_enum;

open_enum! {
    /// A call's status as Twilio reports it.
    ///
    /// ```
    /// use callview_core::CallStatus;
    /// assert!(CallStatus::parse("no-answer").is_final());
    /// assert!(!CallStatus::parse("ringing").is_final());
    /// assert_eq!(CallStatus::parse("paused"), CallStatus::Other("paused".into()));
    /// ```
    CallStatus {
        /// Waiting to be initiated.
        Queued => "queued",
        /// Initiated (listed by the seed; not returned by the 2010 API).
        Initiated => "initiated",
        /// Ringing.
        Ringing => "ringing",
        /// Connected and active.
        InProgress => "in-progress",
        /// Finished after connecting.
        Completed => "completed",
        /// The callee was busy.
        Busy => "busy",
        /// The call could not be connected.
        Failed => "failed",
        /// Nobody answered.
        NoAnswer => "no-answer",
        /// Canceled before it connected.
        Canceled => "canceled",
    }
}

impl CallStatus {
    /// Whether the status can no longer change (the seed's "Is Final?" column).
    ///
    /// Unknown statuses are treated as not final, so a later sync looks at the
    /// call again.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Busy | Self::Failed | Self::NoAnswer | Self::Canceled
        )
    }
}

open_enum! {
    /// A call's direction as Twilio reports it.
    ///
    /// ```
    /// use callview_core::CallDirection;
    /// assert!(CallDirection::parse("outbound-dial").is_outbound());
    /// assert!(!CallDirection::parse("trunking-originating").is_outbound());
    /// ```
    CallDirection {
        /// A call into one of the account's numbers.
        Inbound => "inbound",
        /// A call created through the REST API.
        OutboundApi => "outbound-api",
        /// A leg created by `<Dial>` (a child call).
        OutboundDial => "outbound-dial",
        /// From the account's SIP trunk out to the network.
        TrunkingTerminating => "trunking-terminating",
        /// From the network into the account's SIP trunk.
        TrunkingOriginating => "trunking-originating",
    }
}

impl CallDirection {
    /// Whether Twilio's direction is an outbound kind (`outbound-*`,
    /// `trunking-terminating`, or an unknown value containing "outbound").
    pub fn is_outbound(&self) -> bool {
        match self {
            Self::OutboundApi | Self::OutboundDial | Self::TrunkingTerminating => true,
            Self::Inbound | Self::TrunkingOriginating => false,
            Self::Other(text) => text.contains("outbound"),
        }
    }
}

impl From<RecordError> for CallParseError {
    fn from(e: RecordError) -> Self {
        Self {
            sid: e.sid,
            reason: e.reason,
        }
    }
}

/// Why a Twilio record could not be turned into a [`Call`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("call record {}: {reason}", sid.as_deref().unwrap_or("without a sid"))]
pub struct CallParseError {
    /// The record's SID when it had one.
    pub sid: Option<String>,
    /// What was wrong.
    pub reason: String,
}

/// One Twilio call record with every field typed.
///
/// Construct it with [`Call::from_json`] (either wire form) or by filling the
/// fields. [`Call::to_rest_json`] gives back Twilio's REST form.
///
/// ```
/// use callview_core::{Call, CallStatus};
/// let json = serde_json::json!({
///     "sid": "CA5bef499f976fd46ea521f3da237abf27",
///     "from": "+16175006181", "to": "+19788447773",
///     "status": "completed", "direction": "outbound-dial",
///     "startTime": "2026-02-06T15:17:13.000Z",
///     "duration": "40", "price": "-0.01400"
/// });
/// let call = Call::from_json(&json).unwrap();
/// assert_eq!(call.status, CallStatus::Completed);
/// assert_eq!(call.duration, Some(40));
/// assert_eq!(call.price.unwrap().to_string(), "-0.01400");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The call's SID.
    pub sid: CallSid,
    /// The account the call belongs to.
    pub account_sid: Option<String>,
    /// The call that created this leg, for `<Dial>` legs and transfers.
    pub parent_call_sid: Option<CallSid>,
    /// The raw `to` value (a phone number, SIP URI, `client:` identity, ...).
    pub to: Option<String>,
    /// Twilio's formatted `to`.
    pub to_formatted: Option<String>,
    /// The raw `from` value.
    pub from: Option<String>,
    /// Twilio's formatted `from`.
    pub from_formatted: Option<String>,
    /// The incoming phone number resource involved, if any.
    pub phone_number_sid: Option<String>,
    /// Twilio's status.
    pub status: CallStatus,
    /// Twilio's direction.
    pub direction: CallDirection,
    /// When the call started; `None` for a call never dialled.
    pub start_time: Option<DateTime<Utc>>,
    /// When it ended; `None` while ongoing or when it never connected.
    pub end_time: Option<DateTime<Utc>>,
    /// When Twilio created the resource.
    pub date_created: Option<DateTime<Utc>>,
    /// When Twilio last updated the resource.
    pub date_updated: Option<DateTime<Utc>>,
    /// Length in seconds; `None` while ongoing or when it never connected.
    pub duration: Option<u32>,
    /// Cost, exact (negative is a charge); `None` until Twilio fills it in.
    pub price: Option<Decimal>,
    /// Currency of `price` (e.g. `USD`).
    pub price_unit: Option<String>,
    /// Time spent queued, in milliseconds.
    pub queue_time: Option<u64>,
    /// `human`, `machine_start`, ... when answering machine detection ran.
    pub answered_by: Option<String>,
    /// The number that forwarded the call, when the carrier says.
    pub forwarded_from: Option<String>,
    /// Caller ID name (CNAM), when looked up.
    pub caller_name: Option<String>,
    /// The group SID, if any.
    pub group_sid: Option<String>,
    /// The SIP trunk SID, if any.
    pub trunk_sid: Option<String>,
    /// API version that created the call.
    pub api_version: Option<String>,
    /// The resource URI.
    pub uri: Option<String>,
    /// Sub-resource URIs (recordings, events, ...), keys in snake_case.
    pub subresource_uris: Option<Map<String, Value>>,
    /// The record exactly as received, kept for `messages.metadata`.
    pub raw: Value,
}

/// Field names in REST (snake_case) and CLI (camelCase) form.
const FIELDS: &[(&str, &str)] = &[
    ("sid", "sid"),
    ("account_sid", "accountSid"),
    ("parent_call_sid", "parentCallSid"),
    ("to", "to"),
    ("to_formatted", "toFormatted"),
    ("from", "from"),
    ("from_formatted", "fromFormatted"),
    ("phone_number_sid", "phoneNumberSid"),
    ("status", "status"),
    ("direction", "direction"),
    ("start_time", "startTime"),
    ("end_time", "endTime"),
    ("date_created", "dateCreated"),
    ("date_updated", "dateUpdated"),
    ("duration", "duration"),
    ("price", "price"),
    ("price_unit", "priceUnit"),
    ("queue_time", "queueTime"),
    ("answered_by", "answeredBy"),
    ("forwarded_from", "forwardedFrom"),
    ("caller_name", "callerName"),
    ("group_sid", "groupSid"),
    ("trunk_sid", "trunkSid"),
    ("api_version", "apiVersion"),
    ("uri", "uri"),
    ("subresource_uris", "subresourceUris"),
];

/// Parses a Twilio timestamp: RFC 2822 (REST), RFC 3339 / ISO 8601 (CLI),
/// or a bare `YYYY-MM-DD HH:MM:SS` taken as UTC.
///
/// ```
/// use callview_core::call::parse_twilio_time;
/// let a = parse_twilio_time("Fri, 18 Oct 2019 17:02:00 +0000").unwrap();
/// let b = parse_twilio_time("2019-10-18T17:02:00.000Z").unwrap();
/// assert_eq!(a, b);
/// assert!(parse_twilio_time("yesterday").is_none());
/// ```
pub fn parse_twilio_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc2822(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// Formats a timestamp the way Twilio's REST API does (RFC 2822, `+0000`).
pub fn format_rfc2822(time: &DateTime<Utc>) -> String {
    time.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

impl Call {
    /// Parses one call record in REST (snake_case) or CLI (camelCase) form.
    ///
    /// The record must be a JSON object with a non-empty `sid`; every other
    /// field may be missing, null or empty. A field of the wrong shape (a date
    /// that is not a date, a negative duration) is an error naming it.
    pub fn from_json(value: &Value) -> Result<Call, CallParseError> {
        Self::from_value(value.clone())
    }

    /// [`Call::from_json`] taking the record by value: it becomes
    /// [`Call::raw`] without a copy (what the HTTP client uses for pages).
    ///
    /// ```
    /// use callview_core::Call;
    /// let call = Call::from_value(serde_json::json!({"sid": "CA1", "status": "busy"})).unwrap();
    /// assert_eq!(call.raw["status"], "busy");
    /// ```
    pub fn from_value(value: Value) -> Result<Call, CallParseError> {
        let mut call = Self::parse_fields(&value)?;
        call.raw = value;
        Ok(call)
    }

    /// Every typed field of a record; `raw` is left null.
    fn parse_fields(value: &Value) -> Result<Call, CallParseError> {
        let Value::Object(object) = value else {
            return Err(CallParseError {
                sid: None,
                reason: format!(
                    "a call record should be an object, found {}",
                    wire::kind_of(value)
                ),
            });
        };
        let mut record = Record::new(object, FIELDS);
        let sid = record
            .text("sid")?
            .and_then(CallSid::new)
            .ok_or_else(|| record.error("the record has no `sid`".into()))?;
        record.sid = Some(sid.to_string());

        let price = record.decimal("price")?;
        let subresource_uris = match record.get("subresource_uris") {
            None => None,
            Some(Value::Object(map)) => Some(map.clone()),
            Some(other) => {
                return Err(record
                    .error(format!(
                        "field `subresource_uris` should be an object, found {}",
                        wire::kind_of(other)
                    ))
                    .into())
            }
        };

        Ok(Call {
            account_sid: record.text("account_sid")?,
            parent_call_sid: record.text("parent_call_sid")?.and_then(CallSid::new),
            to: record.text("to")?,
            to_formatted: record.text("to_formatted")?,
            from: record.text("from")?,
            from_formatted: record.text("from_formatted")?,
            phone_number_sid: record.text("phone_number_sid")?,
            status: record
                .text("status")?
                .map(|s| CallStatus::parse(&s))
                .unwrap_or_else(|| CallStatus::Other("unknown".into())),
            direction: record
                .text("direction")?
                .map(|s| CallDirection::parse(&s))
                .unwrap_or_else(|| CallDirection::Other("unknown".into())),
            start_time: record.time("start_time")?,
            end_time: record.time("end_time")?,
            date_created: record.time("date_created")?,
            date_updated: record.time("date_updated")?,
            duration: record.integer("duration")?,
            price,
            price_unit: record.text("price_unit")?,
            queue_time: record.integer("queue_time")?,
            answered_by: record.text("answered_by")?,
            forwarded_from: record.text("forwarded_from")?,
            caller_name: record.text("caller_name")?,
            group_sid: record.text("group_sid")?,
            trunk_sid: record.text("trunk_sid")?,
            api_version: record.text("api_version")?,
            uri: record.text("uri")?,
            subresource_uris,
            sid,
            raw: Value::Null,
        })
    }

    /// The record in Twilio's REST form (snake_case keys, RFC 2822 dates,
    /// numbers as strings), as the real API and the simulator serve it.
    pub fn to_rest_json(&self) -> Value {
        let (text, time) = (wire::text_value, wire::time_value);
        let mut map = Map::new();
        map.insert("sid".into(), Value::String(self.sid.to_string()));
        map.insert("account_sid".into(), text(&self.account_sid));
        map.insert(
            "parent_call_sid".into(),
            text(&self.parent_call_sid.as_ref().map(|s| s.to_string())),
        );
        map.insert("to".into(), text(&self.to));
        map.insert("to_formatted".into(), text(&self.to_formatted));
        map.insert("from".into(), text(&self.from));
        map.insert("from_formatted".into(), text(&self.from_formatted));
        map.insert("phone_number_sid".into(), text(&self.phone_number_sid));
        map.insert("status".into(), Value::String(self.status.to_string()));
        map.insert(
            "direction".into(),
            Value::String(self.direction.to_string()),
        );
        map.insert("start_time".into(), time(&self.start_time));
        map.insert("end_time".into(), time(&self.end_time));
        map.insert("date_created".into(), time(&self.date_created));
        map.insert("date_updated".into(), time(&self.date_updated));
        map.insert(
            "duration".into(),
            text(&self.duration.map(|d| d.to_string())),
        );
        map.insert("price".into(), text(&self.price.map(|p| p.to_string())));
        map.insert("price_unit".into(), text(&self.price_unit));
        map.insert(
            "queue_time".into(),
            text(&self.queue_time.map(|q| q.to_string())),
        );
        map.insert("answered_by".into(), text(&self.answered_by));
        map.insert("forwarded_from".into(), text(&self.forwarded_from));
        map.insert("caller_name".into(), text(&self.caller_name));
        map.insert("group_sid".into(), text(&self.group_sid));
        map.insert("trunk_sid".into(), text(&self.trunk_sid));
        map.insert("api_version".into(), text(&self.api_version));
        map.insert("uri".into(), text(&self.uri));
        map.insert(
            "subresource_uris".into(),
            self.subresource_uris
                .clone()
                .map(Value::Object)
                .unwrap_or(Value::Null),
        );
        Value::Object(map)
    }

    /// A minimal call with only a SID, status and direction set; the other
    /// fields start empty. Handy in tests and for building records by hand.
    ///
    /// ```
    /// use callview_core::{Call, CallDirection, CallStatus, CallSid};
    /// let call = Call::new(CallSid::new("CA1").unwrap(), CallStatus::Ringing, CallDirection::Inbound);
    /// assert!(call.start_time.is_none());
    /// ```
    pub fn new(sid: CallSid, status: CallStatus, direction: CallDirection) -> Call {
        let mut call = Call {
            sid,
            account_sid: None,
            parent_call_sid: None,
            to: None,
            to_formatted: None,
            from: None,
            from_formatted: None,
            phone_number_sid: None,
            status,
            direction,
            start_time: None,
            end_time: None,
            date_created: None,
            date_updated: None,
            duration: None,
            price: None,
            price_unit: None,
            queue_time: None,
            answered_by: None,
            forwarded_from: None,
            caller_name: None,
            group_sid: None,
            trunk_sid: None,
            api_version: None,
            uri: None,
            subresource_uris: None,
            raw: Value::Null,
        };
        call.raw = call.to_rest_json();
        call
    }

    /// Refreshes `raw` from the typed fields (after editing them by hand).
    pub fn refresh_raw(&mut self) {
        self.raw = self.to_rest_json();
    }

    /// The call's duration in seconds, 0 when unknown.
    pub fn duration_secs(&self) -> u32 {
        self.duration.unwrap_or(0)
    }
}

impl serde::Serialize for Call {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_rest_json().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Call {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Call::from_json(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed_cli_record() -> Value {
        json!({
          "sid": "CA5bef499f976fd46ea521f3da237abf27",
          "accountSid": "AC_YOUR_ACCOUNT_SID",
          "parentCallSid": "CAe4616d11d7f38afcfaf0bb73a0c55820",
          "from": "+16175006181",
          "fromFormatted": "(617) 500-6181",
          "to": "+19788447773",
          "toFormatted": "(978) 844-7773",
          "phoneNumberSid": null,
          "status": "completed",
          "direction": "outbound-dial",
          "startTime": "2026-02-06T15:17:13.000Z",
          "endTime": "2026-02-06T15:17:53.000Z",
          "duration": "40",
          "price": "-0.01400",
          "priceUnit": "USD",
          "answeredBy": null,
          "forwardedFrom": null,
          "queueTime": "0",
          "apiVersion": "2010-04-01",
          "dateCreated": "2026-02-06T15:17:05.000Z",
          "dateUpdated": "2026-02-06T15:17:53.000Z",
          "uri": "/2010-04-01/Accounts/AC.../Calls/CA....json",
          "subresourceUris": {"recordings": "/2010-04-01/Accounts/AC.../Calls/CA.../Recordings.json"}
        })
    }

    #[test]
    fn parses_the_seed_cli_record() {
        let call = Call::from_json(&seed_cli_record()).unwrap();
        assert_eq!(call.sid.as_str(), "CA5bef499f976fd46ea521f3da237abf27");
        assert_eq!(
            call.parent_call_sid.as_ref().unwrap().as_str(),
            "CAe4616d11d7f38afcfaf0bb73a0c55820"
        );
        assert_eq!(call.direction, CallDirection::OutboundDial);
        assert_eq!(call.status, CallStatus::Completed);
        assert_eq!(call.duration, Some(40));
        assert_eq!(call.queue_time, Some(0));
        assert_eq!(call.price, Some("-0.01400".parse().unwrap()));
        assert_eq!(call.price.unwrap().to_string(), "-0.01400");
        assert_eq!(call.price_unit.as_deref(), Some("USD"));
        assert_eq!(
            call.start_time.unwrap().to_rfc3339(),
            "2026-02-06T15:17:13+00:00"
        );
        assert_eq!(call.from_formatted.as_deref(), Some("(617) 500-6181"));
        assert!(call.answered_by.is_none());
        assert!(call.subresource_uris.unwrap().contains_key("recordings"));
        assert_eq!(call.raw, seed_cli_record());
    }

    #[test]
    fn rest_and_cli_forms_give_the_same_call() {
        let cli = Call::from_json(&seed_cli_record()).unwrap();
        let rest_json = cli.to_rest_json();
        assert_eq!(rest_json["start_time"], "Fri, 06 Feb 2026 15:17:13 +0000");
        assert_eq!(rest_json["duration"], "40");
        let rest = Call::from_json(&rest_json).unwrap();
        assert_eq!(
            Call {
                raw: Value::Null,
                ..rest
            },
            Call {
                raw: Value::Null,
                ..cli
            }
        );
    }

    #[test]
    fn nulls_empties_and_missing_fields_are_none() {
        let call = Call::from_json(&json!({
            "sid": "CA1", "start_time": "", "end_time": null, "duration": "",
            "price": null, "status": "busy", "direction": "inbound"
        }))
        .unwrap();
        assert!(call.start_time.is_none());
        assert!(call.end_time.is_none());
        assert!(call.duration.is_none());
        assert!(call.price.is_none());
        assert!(call.from.is_none());
        assert_eq!(call.status, CallStatus::Busy);
    }

    #[test]
    fn unknown_status_and_direction_are_kept() {
        let call = Call::from_json(&json!({
            "sid": "CA1", "status": "on-hold", "direction": "sideways"
        }))
        .unwrap();
        assert_eq!(call.status, CallStatus::Other("on-hold".into()));
        assert_eq!(call.status.as_str(), "on-hold");
        assert!(!call.status.is_final());
        assert_eq!(call.direction.as_str(), "sideways");
    }

    #[test]
    fn missing_status_is_unknown_and_not_final() {
        let call = Call::from_json(&json!({"sid": "CA1"})).unwrap();
        assert_eq!(call.status.as_str(), "unknown");
        assert!(!call.status.is_final());
    }

    #[test]
    fn every_known_status_round_trips_and_finality_follows_the_seed() {
        for (text, fin) in [
            ("queued", false),
            ("initiated", false),
            ("ringing", false),
            ("in-progress", false),
            ("completed", true),
            ("busy", true),
            ("no-answer", true),
            ("canceled", true),
            ("failed", true),
        ] {
            let status = CallStatus::parse(text);
            assert!(!matches!(status, CallStatus::Other(_)), "{text}");
            assert_eq!(status.as_str(), text);
            assert_eq!(status.is_final(), fin, "{text}");
        }
    }

    #[test]
    fn records_without_sid_are_errors_with_reason() {
        let err = Call::from_json(&json!({"status": "completed"})).unwrap_err();
        assert_eq!(err.sid, None);
        assert!(err.reason.contains("sid"));
        let err = Call::from_json(&json!({"sid": "  "})).unwrap_err();
        assert!(err.reason.contains("sid"));
        let err = Call::from_json(&json!([1, 2])).unwrap_err();
        assert!(err.reason.contains("object"));
    }

    #[test]
    fn malformed_fields_name_the_field_and_sid() {
        let err = Call::from_json(&json!({"sid": "CA9", "duration": "-3"})).unwrap_err();
        assert_eq!(err.sid.as_deref(), Some("CA9"));
        assert!(err.reason.contains("duration"), "{err}");
        let err = Call::from_json(&json!({"sid": "CA9", "start_time": "soon"})).unwrap_err();
        assert!(err.to_string().contains("start_time"));
        let err = Call::from_json(&json!({"sid": "CA9", "price": "cheap"})).unwrap_err();
        assert!(err.reason.contains("price"));
        let err = Call::from_json(&json!({"sid": "CA9", "to": {"a": 1}})).unwrap_err();
        assert!(err.reason.contains("`to`"));
    }

    #[test]
    fn numbers_where_strings_are_expected_are_accepted() {
        let call = Call::from_json(&json!({"sid": "CA1", "duration": 12, "price": -0.5})).unwrap();
        assert_eq!(call.duration, Some(12));
        assert_eq!(call.price.unwrap().to_string(), "-0.5");
    }

    #[test]
    fn serde_round_trip() {
        let call = Call::from_json(&seed_cli_record()).unwrap();
        let text = serde_json::to_string(&call).unwrap();
        let back: Call = serde_json::from_str(&text).unwrap();
        assert_eq!(back.sid, call.sid);
        assert_eq!(back.price, call.price);
        assert_eq!(back.start_time, call.start_time);
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_json_never_panics(text in ".{0,200}") {
            if let Ok(value) = serde_json::from_str::<Value>(&text) {
                let _ = Call::from_json(&value);
            }
        }

        #[test]
        fn parsing_records_with_arbitrary_field_values_never_panics(
            fields in proptest::collection::vec(("[a-z_A-Z]{1,16}", ".{0,40}"), 0..12)
        ) {
            let mut map = Map::new();
            map.insert("sid".into(), Value::String("CA1".into()));
            for (k, v) in fields { map.insert(k, Value::String(v)); }
            let _ = Call::from_json(&Value::Object(map));
        }
    }
}
