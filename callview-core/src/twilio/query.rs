//! The query strings of Twilio's list requests, as `HttpTwilioClient` sends
//! them (and as a mock or the simulator must understand them): names and
//! values percent-encoded, dates as `YYYY-MM-DDTHH:MM:SSZ`.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::{CallFilter, RecordingFilter, TranscriptFilter};

/// `YYYY-MM-DDTHH:MM:SSZ`, as Twilio's helper libraries send dates.
pub fn format_query_time(time: &DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A query string of `params`, names and values percent-encoded (so
/// `StartTime>` becomes `StartTime%3E`); `:` is left as is, as Twilio's
/// helper libraries do.
///
/// ```
/// use callview_core::twilio::encode_query;
/// assert_eq!(encode_query(&[("StartTime>", "2026-02-01T00:00:00Z".into())]), "StartTime%3E=2026-02-01T00:00:00Z");
/// ```
pub fn encode_query(params: &[(&str, String)]) -> String {
    let mut query = String::new();
    for (name, value) in params {
        if !query.is_empty() {
            query.push('&');
        }
        encode_component(name, &mut query);
        query.push('=');
        encode_component(value, &mut query);
    }
    query
}

/// Appends `text` percent-encoded (unreserved characters and `:` kept).
pub fn encode_component(text: &str, out: &mut String) {
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                out.push(char::from(byte));
            }
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
}

impl CallFilter {
    /// The first page's query string (`Calls.json?...`).
    pub fn query(&self) -> String {
        let mut params: Vec<(&str, String)> = vec![("PageSize", self.page_size.to_string())];
        if let Some(after) = &self.start_time_after {
            params.push(("StartTime>", format_query_time(after)));
        }
        if let Some(before) = &self.start_time_before {
            params.push(("StartTime<", format_query_time(before)));
        }
        if let Some(status) = &self.status {
            params.push(("Status", status.as_str().to_owned()));
        }
        if let Some(parent) = &self.parent_call_sid {
            params.push(("ParentCallSid", parent.as_str().to_owned()));
        }
        encode_query(&params)
    }
}

impl RecordingFilter {
    /// The first page's query string (`Recordings.json?...`).
    pub fn query(&self) -> String {
        let mut params: Vec<(&str, String)> = vec![("PageSize", self.page_size.to_string())];
        if let Some(after) = &self.created_after {
            params.push(("DateCreated>", format_query_time(after)));
        }
        if let Some(before) = &self.created_before {
            params.push(("DateCreated<", format_query_time(before)));
        }
        if let Some(call) = &self.call_sid {
            params.push(("CallSid", call.as_str().to_owned()));
        }
        encode_query(&params)
    }
}

impl TranscriptFilter {
    /// The first page's query string (`/v2/Transcripts?...`).
    pub fn query(&self) -> String {
        let mut params: Vec<(&str, String)> = vec![("PageSize", self.page_size.to_string())];
        if let Some(after) = &self.created_after {
            params.push(("AfterDateCreated", format_query_time(after)));
        }
        if let Some(before) = &self.created_before {
            params.push(("BeforeDateCreated", format_query_time(before)));
        }
        if let Some(source) = &self.source_sid {
            params.push(("SourceSid", source.clone()));
        }
        encode_query(&params)
    }
}
