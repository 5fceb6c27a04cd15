//! Twilio's message webhooks, typed and merged: the status callbacks of a
//! sent message (`MessageSid`, `MessageStatus`, ...) and the webhook of an
//! inbound message (`MessageSid`, `From`, `To`, `Body`, `NumMedia`,
//! `MediaUrl0`, `MediaContentType0`, ...), both form-encoded.
//!
//! [`TextCallback::merge`] is pure: given what is stored of the message,
//! it says what to store (the stored message with the new status, or a
//! message built from the webhook alone when none is stored), or why the
//! callback changes nothing (a status that is not further along). The
//! server runs it inside one `IngestTx`, between reading the stored text
//! and planning the write.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::IncomingText;
use crate::text::{MessageSid, Text, TextDirection, TextMedia, TextStatus};

/// Why a webhook could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextCallbackError {
    /// No usable `MessageSid` (nor `SmsSid`).
    #[error("the form has no MessageSid (a 34-character SM... or MM... SID)")]
    MissingSid,
    /// A field that should be a number is not.
    #[error("field {field} is not a number: {value:?}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What it held.
        value: String,
    },
}

/// One message webhook, as Twilio posts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextCallback {
    /// `MessageSid` (or `SmsSid`).
    pub sid: MessageSid,
    /// `MessageStatus` (or `SmsStatus`).
    pub status: Option<TextStatus>,
    /// `AccountSid`.
    pub account_sid: Option<String>,
    /// `MessagingServiceSid`.
    pub messaging_service_sid: Option<String>,
    /// `From`.
    pub from: Option<String>,
    /// `To`.
    pub to: Option<String>,
    /// `Body` (inbound messages).
    pub body: Option<String>,
    /// `NumMedia`.
    pub num_media: Option<u32>,
    /// `NumSegments`.
    pub num_segments: Option<u32>,
    /// `ErrorCode`, when delivery failed.
    pub error_code: Option<i64>,
    /// `ErrorMessage`.
    pub error_message: Option<String>,
    /// `MediaUrl{n}` with `MediaContentType{n}`: the media SID read from
    /// the URL's last segment.
    pub media: Vec<TextMedia>,
}

fn non_empty(value: &str) -> Option<String> {
    let t = value.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

impl TextCallback {
    /// Reads the form fields of a webhook.
    pub fn from_form<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, TextCallbackError> {
        let fields: Vec<(&str, &str)> = fields.into_iter().collect();
        let get = |name: &str| {
            fields
                .iter()
                .rev()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| non_empty(v))
        };
        let number = |name: &'static str| -> Result<Option<u32>, TextCallbackError> {
            get(name)
                .map(|v| {
                    v.parse().map_err(|_| TextCallbackError::Invalid {
                        field: name,
                        value: v,
                    })
                })
                .transpose()
        };
        let sid = get("MessageSid")
            .or_else(|| get("SmsSid"))
            .and_then(MessageSid::new)
            .ok_or(TextCallbackError::MissingSid)?;
        let error_code = get("ErrorCode")
            .map(|v| {
                v.parse().map_err(|_| TextCallbackError::Invalid {
                    field: "ErrorCode",
                    value: v,
                })
            })
            .transpose()?;
        let mut media = Vec::new();
        for n in 0..number("NumMedia")?.unwrap_or(0).min(10) {
            let url = get(&format!("MediaUrl{n}"));
            let media_sid = url
                .as_deref()
                .and_then(|u| u.trim_end_matches('/').rsplit('/').next())
                .filter(|s| s.starts_with("ME") && crate::text::is_sid(s));
            if let Some(media_sid) = media_sid {
                media.push(TextMedia {
                    sid: media_sid.to_owned(),
                    content_type: get(&format!("MediaContentType{n}")),
                });
            }
        }
        Ok(Self {
            sid,
            status: get("MessageStatus")
                .or_else(|| get("SmsStatus"))
                .map(|s| TextStatus::parse(&s)),
            account_sid: get("AccountSid"),
            messaging_service_sid: get("MessagingServiceSid"),
            from: get("From"),
            to: get("To"),
            // The body exactly as sent (not trimmed).
            body: fields
                .iter()
                .rev()
                .find(|(n, _)| *n == "Body")
                .map(|(_, v)| (*v).to_owned()),
            num_media: number("NumMedia")?,
            num_segments: number("NumSegments")?,
            error_code,
            error_message: get("ErrorMessage"),
            media,
        })
    }

    /// Whether this is the webhook of a message arriving (not a status
    /// callback of one sent).
    pub fn is_inbound(&self) -> bool {
        matches!(
            self.status,
            Some(TextStatus::Received | TextStatus::Receiving)
        ) || (self.status.is_none() && self.body.is_some())
    }

    /// What to store, given the stored message (if any), at `now`.
    pub fn merge(&self, stored: Option<&Text>, now: DateTime<Utc>) -> TextMerge {
        match stored {
            Some(current) => self.merge_into(current),
            None => TextMerge::Apply(Box::new(self.build(now))),
        }
    }

    fn merge_into(&self, current: &Text) -> TextMerge {
        let Some(status) = &self.status else {
            return TextMerge::Ignore("the callback carries no status");
        };
        if status.rank() < current.status.rank()
            || (*status == current.status && self.error_code == current.error_code)
        {
            return TextMerge::Ignore("the stored message is as far along");
        }
        let mut text = current.clone();
        text.status = status.clone();
        if self.error_code.is_some() {
            text.error_code = self.error_code;
            text.error_message = self.error_message.clone().or(text.error_message);
        }
        if let Value::Object(raw) = &mut text.raw {
            raw.insert("status".into(), Value::String(status.to_string()));
            if let Some(code) = text.error_code {
                raw.insert("error_code".into(), Value::from(code));
            }
            if let Some(message) = &text.error_message {
                raw.insert("error_message".into(), Value::String(message.clone()));
            }
        }
        TextMerge::Apply(Box::new(IncomingText { text, media: None }))
    }

    /// A message from the webhook alone (an inbound message, or a status
    /// callback of a message sent elsewhere): the next sync completes it.
    fn build(&self, now: DateTime<Utc>) -> IncomingText {
        let inbound = self.is_inbound();
        let text = Text {
            sid: self.sid.clone(),
            account_sid: self.account_sid.clone(),
            messaging_service_sid: self.messaging_service_sid.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            body: self.body.clone().unwrap_or_default(),
            num_segments: self.num_segments,
            num_media: self.num_media.unwrap_or(0),
            direction: if inbound {
                TextDirection::Inbound
            } else {
                TextDirection::OutboundApi
            },
            status: self.status.clone().unwrap_or(if inbound {
                TextStatus::Received
            } else {
                TextStatus::Queued
            }),
            error_code: self.error_code,
            error_message: self.error_message.clone(),
            price: None,
            price_unit: None,
            date_created: Some(now),
            date_sent: Some(now),
            date_updated: Some(now),
            raw: Value::Null,
        };
        let raw = text.to_rest_json();
        IncomingText {
            text: Text { raw, ..text },
            // Inbound media are listed in the webhook itself.
            media: inbound.then(|| self.media.clone()),
        }
    }
}

/// What a webhook does to the stored message.
#[derive(Clone, Debug, PartialEq)]
pub enum TextMerge {
    /// Store this version.
    Apply(Box<IncomingText>),
    /// Nothing to change, and why.
    Ignore(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 2, 6, 15, 0, 0).unwrap()
    }

    const SID: &str = "SM0123456789abcdef0123456789abcdef";

    #[test]
    fn an_inbound_webhook_builds_the_message_with_its_media() {
        let cb = TextCallback::from_form([
            ("MessageSid", "MM0123456789abcdef0123456789abcdef"),
            ("SmsStatus", "received"),
            ("From", "+19788447773"),
            ("To", "+16175006181"),
            ("Body", " Photo of the leak "),
            ("NumMedia", "1"),
            ("MediaUrl0", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM0123456789abcdef0123456789abcdef/Media/ME0123456789abcdef0123456789abcdef"),
            ("MediaContentType0", "image/jpeg"),
        ])
        .unwrap();
        assert!(cb.is_inbound());
        let TextMerge::Apply(incoming) = cb.merge(None, now()) else {
            panic!("an unknown message is stored");
        };
        assert_eq!(incoming.text.body, " Photo of the leak ");
        assert_eq!(incoming.text.direction, TextDirection::Inbound);
        assert_eq!(incoming.text.date_sent, Some(now()));
        let media = incoming.media.unwrap();
        assert_eq!(media[0].sid, "ME0123456789abcdef0123456789abcdef");
        assert_eq!(media[0].content_type.as_deref(), Some("image/jpeg"));
        // The record parses back to the same message.
        assert_eq!(
            Text::from_value(incoming.text.raw.clone())
                .unwrap()
                .sid
                .as_str(),
            incoming.text.sid.as_str()
        );
    }

    #[test]
    fn status_callbacks_move_a_message_forward_only() {
        let stored = Text::from_value(serde_json::json!({
            "sid": SID, "status": "sent", "direction": "outbound-api",
            "from": "+16175006181", "to": "+19788447773", "body": "Hi",
            "date_updated": "Fri, 06 Feb 2026 15:00:00 +0000"
        }))
        .unwrap();
        let cb = |status: &str| {
            TextCallback::from_form([("MessageSid", SID), ("MessageStatus", status)]).unwrap()
        };
        match cb("delivered").merge(Some(&stored), now()) {
            TextMerge::Apply(t) => {
                assert_eq!(t.text.status, TextStatus::Delivered);
                assert_eq!(t.text.raw["status"], "delivered");
                assert_eq!(t.text.body, "Hi");
                assert!(t.media.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cb("queued").merge(Some(&stored), now()),
            TextMerge::Ignore(_)
        ));
        assert!(matches!(
            cb("sent").merge(Some(&stored), now()),
            TextMerge::Ignore(_)
        ));
        let failed = TextCallback::from_form([
            ("MessageSid", SID),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
        ])
        .unwrap();
        match failed.merge(Some(&stored), now()) {
            TextMerge::Apply(t) => {
                assert_eq!(t.text.error_code, Some(30003));
                assert_eq!(t.text.raw["error_code"], 30003);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_forms_are_refused_with_the_reason() {
        assert_eq!(
            TextCallback::from_form([("MessageStatus", "sent")]),
            Err(TextCallbackError::MissingSid)
        );
        assert!(matches!(
            TextCallback::from_form([("MessageSid", SID), ("NumMedia", "two")]),
            Err(TextCallbackError::Invalid {
                field: "NumMedia",
                ..
            })
        ));
    }
}
