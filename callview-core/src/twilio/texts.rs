//! What a [`super::TwilioClient`] needs for text messages: the list's filter
//! and page, and a message to send.

use chrono::{DateTime, Utc};

use super::query::{encode_query, format_query_time};
use super::{PageToken, MAX_PAGE_SIZE};
use crate::text::{Text, TextParseError, MAX_BODY_CHARS};

/// Which messages to list (`Messages.json`). Every field is optional; an
/// empty filter lists the whole account, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextFilter {
    /// Only messages sent after this instant (`DateSent>`).
    pub sent_after: Option<DateTime<Utc>>,
    /// Only messages sent before this instant (`DateSent<`).
    pub sent_before: Option<DateTime<Utc>>,
    /// Only messages to this number (`To`).
    pub to: Option<String>,
    /// Only messages from this number (`From`).
    pub from: Option<String>,
    /// Records per page (`PageSize`, 1..=1000).
    pub page_size: u32,
}

impl Default for TextFilter {
    fn default() -> Self {
        Self {
            sent_after: None,
            sent_before: None,
            to: None,
            from: None,
            page_size: MAX_PAGE_SIZE,
        }
    }
}

impl TextFilter {
    /// The first page's query string (`Messages.json?...`).
    ///
    /// ```
    /// use callview_core::twilio::TextFilter;
    /// use chrono::{TimeZone, Utc};
    /// let f = TextFilter { sent_after: Some(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap()), ..TextFilter::default() };
    /// assert_eq!(f.query(), "PageSize=1000&DateSent%3E=2026-02-01T00:00:00Z");
    /// ```
    pub fn query(&self) -> String {
        let mut params: Vec<(&str, String)> = vec![("PageSize", self.page_size.to_string())];
        if let Some(after) = &self.sent_after {
            params.push(("DateSent>", format_query_time(after)));
        }
        if let Some(before) = &self.sent_before {
            params.push(("DateSent<", format_query_time(before)));
        }
        if let Some(to) = &self.to {
            params.push(("To", to.clone()));
        }
        if let Some(from) = &self.from {
            params.push(("From", from.clone()));
        }
        encode_query(&params)
    }

    /// Whether `text` passes this filter, as Twilio decides it (mocks and
    /// the simulator use this). A message not yet sent fails any time
    /// bound.
    pub fn matches(&self, text: &Text) -> bool {
        let bounded = self.sent_after.is_some() || self.sent_before.is_some();
        let in_window = match text.date_sent {
            None => !bounded,
            Some(sent) => {
                self.sent_after.is_none_or(|a| sent > a)
                    && self.sent_before.is_none_or(|b| sent < b)
            }
        };
        if !in_window {
            return false;
        }
        if self
            .to
            .as_ref()
            .is_some_and(|t| text.to.as_ref() != Some(t))
        {
            return false;
        }
        if self
            .from
            .as_ref()
            .is_some_and(|f| text.from.as_ref() != Some(f))
        {
            return false;
        }
        true
    }
}

/// One page of the messages list.
#[derive(Clone, Debug, Default)]
pub struct TextPage {
    /// The records that parsed.
    pub texts: Vec<Text>,
    /// Records that could not be understood, with the reason.
    pub rejected: Vec<TextParseError>,
    /// The next page, `None` on the last one.
    pub next: Option<PageToken>,
}

/// Who a text is sent from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextSender {
    /// One of the account's numbers (`From`).
    Number(String),
    /// A messaging service (`MessagingServiceSid`, `MG...`).
    Service(String),
}

impl TextSender {
    /// `MG...` is a messaging service; anything else a number.
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        if text.starts_with("MG") && text.len() == 34 {
            Self::Service(text.to_owned())
        } else {
            Self::Number(text.to_owned())
        }
    }
}

/// A text to send (`POST Messages.json`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingText {
    /// The recipient (E.164).
    pub to: String,
    /// The sender.
    pub from: TextSender,
    /// The text: 1 to [`MAX_BODY_CHARS`] characters.
    pub body: String,
    /// Where Twilio posts status callbacks.
    pub status_callback: Option<String>,
}

impl OutgoingText {
    /// The form fields Twilio expects, in a stable order.
    ///
    /// ```
    /// use callview_core::twilio::{OutgoingText, TextSender};
    /// let t = OutgoingText { to: "+15085140320".into(), from: TextSender::parse("+19788447773"),
    ///     body: "Hi".into(), status_callback: None };
    /// assert_eq!(t.form(), vec![("To", "+15085140320".to_owned()), ("From", "+19788447773".to_owned()), ("Body", "Hi".to_owned())]);
    /// ```
    pub fn form(&self) -> Vec<(&'static str, String)> {
        let mut form = vec![("To", self.to.clone())];
        match &self.from {
            TextSender::Number(n) => form.push(("From", n.clone())),
            TextSender::Service(s) => form.push(("MessagingServiceSid", s.clone())),
        }
        form.push(("Body", self.body.clone()));
        if let Some(callback) = &self.status_callback {
            form.push(("StatusCallback", callback.clone()));
        }
        form
    }

    /// Why `body` cannot be sent, if it cannot: empty, or longer than
    /// Twilio accepts.
    pub fn check_body(body: &str) -> Result<(), String> {
        if body.trim().is_empty() {
            return Err("the text is empty".into());
        }
        let chars = body.chars().count();
        if chars > MAX_BODY_CHARS {
            return Err(format!(
                "the text has {chars} characters; Twilio accepts at most {MAX_BODY_CHARS}"
            ));
        }
        Ok(())
    }
}
