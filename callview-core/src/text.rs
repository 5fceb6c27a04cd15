//! Text messages (SMS and MMS), typed.
//!
//! A [`Text`] is one of Twilio's Message resources (`SM...` for SMS, `MM...`
//! for MMS): every field callview uses, typed, and the record exactly as
//! received. It parses Twilio's REST JSON (snake_case, RFC 2822 dates) and
//! the CLI's camelCase form; a record of the wrong shape is a
//! [`TextParseError`] naming the field, reported and never a panic.
//!
//! A text lands in the conversation of its external party by the rules
//! calls follow ([`crate::PartyRules::party_of`]); the call model's folding
//! does not apply (a text has no legs).

use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::call::open_enum;
use crate::wire::{self, Record, RecordError};

/// The longest body callview sends: Twilio's limit (1,600 characters, ten
/// segments).
pub const MAX_BODY_CHARS: usize = 1600;

/// A Twilio Message SID (`SM` or `MM` followed by 32 hex digits).
///
/// Only SIDs of that shape are accepted: the SID becomes part of URL paths
/// on the callview server and on Twilio.
///
/// ```
/// use callview_core::text::MessageSid;
/// assert!(MessageSid::new("SM0123456789abcdef0123456789abcdef").is_some());
/// assert!(MessageSid::new("SM../../etc").is_none());
/// assert!(MessageSid::new("CA0123456789abcdef0123456789abcdef").is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct MessageSid(String);

impl MessageSid {
    /// Wraps a SID: `SM` or `MM` then 32 hex digits.
    pub fn new(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        (matches!(value.get(..2), Some("SM" | "MM")) && is_sid(&value)).then_some(Self(value))
    }

    /// The SID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `value` has the shape of a Twilio SID: two letters, then 32 hex
/// digits (`ME...` media, `MG...` messaging services, ...).
pub fn is_sid(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 34
        && bytes[..2].iter().all(u8::is_ascii_alphabetic)
        && bytes[2..].iter().all(u8::is_ascii_hexdigit)
}

impl<'de> serde::Deserialize<'de> for MessageSid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::new(text.clone())
            .ok_or_else(|| serde::de::Error::custom(format!("not a message SID: {text:?}")))
    }
}

impl fmt::Debug for MessageSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for MessageSid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

open_enum! {
    /// A message's status as Twilio reports it.
    ///
    /// ```
    /// use callview_core::text::TextStatus;
    /// assert!(TextStatus::parse("delivered").is_final());
    /// assert!(TextStatus::Sent.rank() > TextStatus::Queued.rank());
    /// ```
    TextStatus {
        /// Accepted by Twilio, waiting to be sent.
        Queued => "queued",
        /// Being sent.
        Sending => "sending",
        /// Handed to the carrier.
        Sent => "sent",
        /// The carrier confirmed delivery.
        Delivered => "delivered",
        /// The carrier could not deliver it.
        Undelivered => "undelivered",
        /// Twilio could not send it.
        Failed => "failed",
        /// An inbound message being received.
        Receiving => "receiving",
        /// An inbound message, received.
        Received => "received",
        /// Accepted by a messaging service.
        Accepted => "accepted",
        /// Scheduled to be sent later.
        Scheduled => "scheduled",
        /// Read by the recipient (WhatsApp, RCS).
        Read => "read",
        /// Some of a multi-recipient send delivered.
        PartiallyDelivered => "partially_delivered",
        /// A scheduled message canceled.
        Canceled => "canceled",
    }
}

impl TextStatus {
    /// How far along a message is: a status callback or an older record
    /// never moves a message back to a lower rank.
    pub fn rank(&self) -> u8 {
        match self {
            Self::Scheduled | Self::Accepted | Self::Queued | Self::Receiving => 0,
            Self::Sending => 1,
            Self::Sent | Self::Other(_) => 2,
            Self::Delivered | Self::PartiallyDelivered | Self::Received => 3,
            Self::Undelivered | Self::Failed | Self::Canceled => 3,
            Self::Read => 4,
        }
    }

    /// Whether the status can still change (`read` aside).
    pub fn is_final(&self) -> bool {
        self.rank() >= 3
    }

    /// Whether delivery failed.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Undelivered | Self::Failed)
    }
}

open_enum! {
    /// A message's direction as Twilio reports it.
    TextDirection {
        /// Received by one of the account's numbers.
        Inbound => "inbound",
        /// Sent through the REST API.
        OutboundApi => "outbound-api",
        /// Sent by `<Message>` during a call.
        OutboundCall => "outbound-call",
        /// Sent as the reply to an inbound message (TwiML).
        OutboundReply => "outbound-reply",
    }
}

impl TextDirection {
    /// Whether the account sent it.
    pub fn is_outbound(&self) -> bool {
        self.as_str().starts_with("outbound")
    }
}

/// SMS or MMS: the `type` of a text in the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TextKind {
    /// Text only.
    Sms,
    /// With media (or an `MM...` SID).
    Mms,
}

impl TextKind {
    /// `sms` or `mms`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Mms => "mms",
        }
    }

    /// Reads `sms` or `mms`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "sms" => Some(Self::Sms),
            "mms" => Some(Self::Mms),
            _ => None,
        }
    }
}

/// Why a message record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message record {}: {reason}", sid.as_deref().unwrap_or("without a sid"))]
pub struct TextParseError {
    /// The record's SID when it had one.
    pub sid: Option<String>,
    /// What was wrong.
    pub reason: String,
}

impl From<RecordError> for TextParseError {
    fn from(e: RecordError) -> Self {
        Self {
            sid: e.sid,
            reason: e.reason,
        }
    }
}

/// One text message with every field callview uses typed, and the record as
/// received.
///
/// ```
/// use callview_core::text::{Text, TextKind, TextStatus};
/// let t = Text::from_value(serde_json::json!({
///     "sid": "SM0123456789abcdef0123456789abcdef",
///     "from": "+19788447773", "to": "+15085140320", "body": "On my way ",
///     "status": "delivered", "direction": "outbound-api", "num_media": "0",
///     "num_segments": "1", "price": "-0.00790", "price_unit": "USD",
///     "date_sent": "Fri, 06 Feb 2026 15:18:00 +0000"
/// })).unwrap();
/// assert_eq!(t.status, TextStatus::Delivered);
/// assert_eq!(t.body, "On my way "); // bodies are kept exactly
/// assert_eq!(t.kind(), TextKind::Sms);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Text {
    /// `SM...` or `MM...`.
    pub sid: MessageSid,
    /// The account.
    pub account_sid: Option<String>,
    /// The messaging service it was sent through, if any.
    pub messaging_service_sid: Option<String>,
    /// Sender, as Twilio gives it.
    pub from: Option<String>,
    /// Recipient, as Twilio gives it.
    pub to: Option<String>,
    /// The text, exactly as sent (not trimmed).
    pub body: String,
    /// SMS segments billed.
    pub num_segments: Option<u32>,
    /// Media attached (MMS).
    pub num_media: u32,
    /// Twilio's direction.
    pub direction: TextDirection,
    /// Twilio's status.
    pub status: TextStatus,
    /// Twilio's error code when delivery failed (e.g. 30003).
    pub error_code: Option<i64>,
    /// Twilio's error message.
    pub error_message: Option<String>,
    /// Cost, exact; `None` until Twilio fills it in.
    pub price: Option<Decimal>,
    /// Currency of `price`.
    pub price_unit: Option<String>,
    /// When Twilio created it.
    pub date_created: Option<DateTime<Utc>>,
    /// When it was sent or received (the list's `DateSent` filter).
    pub date_sent: Option<DateTime<Utc>>,
    /// When Twilio last changed it.
    pub date_updated: Option<DateTime<Utc>>,
    /// The record exactly as received.
    pub raw: Value,
}

impl Text {
    /// Parses one message record, taking it by value (it becomes `raw`).
    pub fn from_value(value: Value) -> Result<Self, TextParseError> {
        let Value::Object(object) = &value else {
            return Err(TextParseError {
                sid: None,
                reason: format!(
                    "a message record should be an object, found {}",
                    wire::kind_of(&value)
                ),
            });
        };
        let mut record = Record::new(object, &[]);
        let sid_text = record.text("sid")?;
        record.sid = sid_text.clone();
        let sid = match sid_text {
            None => return Err(record.error("field `sid` is missing".into()).into()),
            Some(s) => MessageSid::new(s.clone())
                .ok_or_else(|| record.error(format!("field `sid` is not a message SID: {s:?}")))?,
        };
        let body = match record.get("body") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(record
                    .error(format!(
                        "field `body` should be text, found {}",
                        wire::kind_of(other)
                    ))
                    .into())
            }
        };
        let error_code = match record.text("error_code")? {
            None => None,
            Some(code) => Some(code.parse::<i64>().map_err(|_| {
                record.error(format!("field `error_code` is not an integer: {code:?}"))
            })?),
        };
        let text = Text {
            account_sid: record.text("account_sid")?,
            messaging_service_sid: record.text("messaging_service_sid")?,
            from: record.text("from")?,
            to: record.text("to")?,
            body,
            num_segments: record.integer("num_segments")?,
            num_media: record.integer("num_media")?.unwrap_or(0),
            direction: TextDirection::parse(
                &record
                    .text("direction")?
                    .unwrap_or_else(|| "inbound".into()),
            ),
            status: TextStatus::parse(&record.text("status")?.unwrap_or_else(|| "queued".into())),
            error_code,
            error_message: record.text("error_message")?,
            price: record.decimal("price")?,
            price_unit: record.text("price_unit")?,
            date_created: record.time("date_created")?,
            date_sent: record.time("date_sent")?,
            date_updated: record.time("date_updated")?,
            sid,
            raw: Value::Null,
        };
        Ok(Text { raw: value, ..text })
    }

    /// [`Text::from_value`] of a borrowed record.
    pub fn from_json(value: &Value) -> Result<Self, TextParseError> {
        Self::from_value(value.clone())
    }

    /// When the text happened, as the thread orders it: when it was sent
    /// (or received), else when Twilio created it.
    pub fn at(&self) -> Option<DateTime<Utc>> {
        self.date_sent.or(self.date_created)
    }

    /// SMS or MMS.
    pub fn kind(&self) -> TextKind {
        if self.num_media > 0 || self.sid.as_str().starts_with("MM") {
            TextKind::Mms
        } else {
            TextKind::Sms
        }
    }

    /// Whether `self` is an older version of `current`: Twilio's
    /// `date_updated` says so, or (same instant, as after a status
    /// callback) its status is less far along. Such a record never
    /// overwrites newer data.
    pub fn is_older_than(&self, current: &Text) -> bool {
        match (self.date_updated, current.date_updated) {
            (Some(a), Some(b)) if a != b => a < b,
            _ => self.status.rank() < current.status.rank(),
        }
    }

    /// The record in Twilio's REST form, built from the typed fields (what
    /// a status callback turns into a record, and what simulators serve).
    pub fn to_rest_json(&self) -> Value {
        let (text, time) = (wire::text_value, wire::time_value);
        let mut map = Map::new();
        map.insert("sid".into(), Value::String(self.sid.to_string()));
        map.insert("account_sid".into(), text(&self.account_sid));
        map.insert(
            "messaging_service_sid".into(),
            text(&self.messaging_service_sid),
        );
        map.insert("from".into(), text(&self.from));
        map.insert("to".into(), text(&self.to));
        map.insert("body".into(), Value::String(self.body.clone()));
        map.insert(
            "num_segments".into(),
            text(&self.num_segments.map(|n| n.to_string())),
        );
        map.insert(
            "num_media".into(),
            Value::String(self.num_media.to_string()),
        );
        map.insert(
            "direction".into(),
            Value::String(self.direction.to_string()),
        );
        map.insert("status".into(), Value::String(self.status.to_string()));
        map.insert(
            "error_code".into(),
            self.error_code.map(Value::from).unwrap_or(Value::Null),
        );
        map.insert("error_message".into(), text(&self.error_message));
        map.insert("price".into(), text(&self.price.map(|p| p.to_string())));
        map.insert("price_unit".into(), text(&self.price_unit));
        map.insert("date_created".into(), time(&self.date_created));
        map.insert("date_sent".into(), time(&self.date_sent));
        map.insert("date_updated".into(), time(&self.date_updated));
        if let Some(account) = &self.account_sid {
            let base = format!("/2010-04-01/Accounts/{account}/Messages/{}", self.sid);
            map.insert("uri".into(), Value::String(format!("{base}.json")));
            map.insert(
                "subresource_uris".into(),
                serde_json::json!({
                    "media": format!("{base}/Media.json"),
                    "feedback": format!("{base}/Feedback.json"),
                }),
            );
        }
        Value::Object(map)
    }
}

/// One media item of an MMS (`Media.json`): what callview keeps of it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TextMedia {
    /// `ME...`.
    pub sid: String,
    /// Twilio's `content_type` (`image/jpeg`, ...).
    pub content_type: Option<String>,
}

impl TextMedia {
    /// Parses one record of a `media_list`.
    pub fn from_json(value: &Value) -> Result<Self, TextParseError> {
        let Value::Object(object) = value else {
            return Err(TextParseError {
                sid: None,
                reason: format!(
                    "a media record should be an object, found {}",
                    wire::kind_of(value)
                ),
            });
        };
        let mut record = Record::new(object, &[]);
        record.sid = record.text("sid")?;
        let sid = record
            .sid
            .clone()
            .filter(|s| s.starts_with("ME") && is_sid(s))
            .ok_or_else(|| record.error("field `sid` is not a media SID".into()))?;
        Ok(Self {
            sid,
            content_type: record.text("content_type")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> Value {
        json!({
            "sid": "MM0123456789abcdef0123456789abcdef",
            "account_sid": "AC0123456789abcdef0123456789abcdef",
            "from": "+19788447773", "to": "+15085140320",
            "body": "  photo  ", "num_media": "2", "num_segments": "1",
            "direction": "inbound", "status": "received",
            "error_code": null, "price": "-0.0200", "price_unit": "USD",
            "date_created": "Fri, 06 Feb 2026 15:17:59 +0000",
            "date_sent": "Fri, 06 Feb 2026 15:18:00 +0000",
            "date_updated": "Fri, 06 Feb 2026 15:18:01 +0000"
        })
    }

    #[test]
    fn parses_every_field_and_keeps_the_record() {
        let t = Text::from_json(&record()).unwrap();
        assert_eq!(t.kind(), TextKind::Mms);
        assert_eq!(t.num_media, 2);
        assert_eq!(t.body, "  photo  ");
        assert_eq!(t.direction, TextDirection::Inbound);
        assert_eq!(t.price, Some("-0.0200".parse().unwrap()));
        assert_eq!(t.at(), t.date_sent);
        assert_eq!(t.raw, record());
    }

    #[test]
    fn the_rest_form_parses_back_to_the_same_fields() {
        let t = Text::from_json(&record()).unwrap();
        let back = Text::from_value(t.to_rest_json()).unwrap();
        assert_eq!(
            Text {
                raw: Value::Null,
                ..back
            },
            Text {
                raw: Value::Null,
                ..t
            }
        );
    }

    #[test]
    fn camel_case_records_parse() {
        let t = Text::from_json(&json!({
            "sid": "SM0123456789abcdef0123456789abcdef", "numMedia": 0,
            "dateSent": "2026-02-06T15:18:00Z", "errorCode": 30003,
            "status": "undelivered", "direction": "outbound-api"
        }))
        .unwrap();
        assert_eq!(t.error_code, Some(30003));
        assert!(t.status.is_failure());
        assert!(t.date_sent.is_some());
    }

    #[test]
    fn bad_records_name_the_field() {
        let e = Text::from_json(&json!({"sid": "SM1"})).unwrap_err();
        assert!(e.reason.contains("`sid`"), "{e}");
        let mut r = record();
        r["body"] = json!(12);
        let e = Text::from_json(&r).unwrap_err();
        assert!(e.reason.contains("`body`"), "{e}");
        r = record();
        r["date_sent"] = json!("yesterday");
        assert!(Text::from_json(&r)
            .unwrap_err()
            .reason
            .contains("date_sent"));
        assert!(Text::from_json(&json!([])).is_err());
    }

    #[test]
    fn an_older_version_is_recognised() {
        let newer = Text::from_json(&record()).unwrap();
        let mut older = newer.clone();
        older.date_updated = newer.date_updated.map(|t| t - chrono::Duration::seconds(1));
        assert!(older.is_older_than(&newer));
        assert!(!newer.is_older_than(&older));
        // Same instant: the status decides.
        let mut queued = newer.clone();
        queued.status = TextStatus::Queued;
        assert!(queued.is_older_than(&newer));
        assert!(!newer.is_older_than(&newer));
    }
}
