//! Query-string and path parameters, parsed by hand so that every mistake
//! is answered with the API's JSON error naming the parameter and the reason.

use callview_core::thread::ThreadKinds;
use std::collections::HashMap;

use callview_core::store::{
    ConversationCursor, ConversationQuery, MessageCursor, MessageQuery, Search, StatusFilter,
};
use callview_core::{ActualDirection, ConversationId, Normalizer};
use chrono::{DateTime, Utc};

use crate::error::ApiError;

/// The largest `limit` a list accepts.
pub const MAX_LIMIT: u32 = 200;
/// The `limit` of `GET /api/conversations` when none is given.
pub const DEFAULT_LIMIT: u32 = 20;
/// The `limit` of `GET /api/calls/active` when none is given.
pub const DEFAULT_ACTIVE_LIMIT: u32 = 100;
/// The longest `q` accepted, in characters.
pub const MAX_SEARCH_CHARS: usize = 100;

/// The decoded query string. A parameter given twice is an error.
#[derive(Debug, Default)]
pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    /// Decodes `a=1&b=2` (percent-encoding and `+` as space).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut map = HashMap::new();
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if map.insert(key.to_string(), value.to_string()).is_some() {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("`{key}` is given more than once; give it once"),
                ));
            }
        }
        Ok(Self(map))
    }

    /// `limit`: a whole number from 1 to [`MAX_LIMIT`], `default` when absent.
    pub fn limit(&self, default: u32) -> Result<u32, ApiError> {
        let Some(text) = self.0.get("limit") else {
            return Ok(default);
        };
        let value = whole_number("limit", text)?;
        if value == 0 || value > u64::from(MAX_LIMIT) {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("`limit` must be between 1 and {MAX_LIMIT}, got {value}"),
            ));
        }
        Ok(value as u32)
    }

    /// `offset`: a whole number, 0 or more, 0 when absent.
    pub fn offset(&self) -> Result<u64, ApiError> {
        match self.0.get("offset") {
            None => Ok(0),
            Some(text) => whole_number("offset", text),
        }
    }

    /// `cursor`: the `next_cursor` of an earlier page, passed back as it
    /// came; absent or empty means the first page.
    pub fn cursor(&self) -> Result<Option<ConversationCursor>, ApiError> {
        match self.0.get("cursor").map(|t| t.trim()) {
            None | Some("") => Ok(None),
            Some(text) => ConversationCursor::parse(text).map(Some).map_err(|e| {
                invalid(format!(
                    "`cursor` is not valid ({}); pass the `next_cursor` of an earlier \
                     response unchanged, or leave it out for the first page",
                    e.reason()
                ))
            }),
        }
    }

    /// `type`: `call` or `sms` (texts of either kind); absent or `all`
    /// for both.
    pub fn thread_kinds(&self) -> Result<ThreadKinds, ApiError> {
        match self.0.get("type") {
            None => Ok(ThreadKinds::All),
            Some(text) => ThreadKinds::parse(text)
                .ok_or_else(|| invalid(format!("`type` must be call, sms or all; got {text:?}"))),
        }
    }

    /// `GET /api/conversations/{id}/messages`: `limit` (default
    /// [`MessageQuery::DEFAULT_LIMIT`], at most [`MessageQuery::MAX_LIMIT`])
    /// and `cursor` (a `next_cursor` of an earlier page). Pages are read
    /// by cursor only: `offset` is refused with a pointer to `cursor`.
    pub fn message_query(&self) -> Result<MessageQuery, ApiError> {
        if self.0.contains_key("offset") {
            return Err(invalid(
                "`offset` is not accepted here: pages of messages follow each other by \
                 `cursor` (pass the `next_cursor` of the previous page)",
            ));
        }
        let limit = match self.0.get("limit") {
            None => MessageQuery::DEFAULT_LIMIT,
            Some(text) => {
                let value = whole_number("limit", text)?;
                if value == 0 || value > u64::from(MessageQuery::MAX_LIMIT) {
                    return Err(invalid(format!(
                        "`limit` must be between 1 and {}, got {value}",
                        MessageQuery::MAX_LIMIT
                    )));
                }
                value as u32
            }
        };
        let after = match self.0.get("cursor").map(|t| t.trim()) {
            None | Some("") => None,
            Some(text) => Some(MessageCursor::parse(text).map_err(|e| {
                invalid(format!(
                    "`cursor` is not valid ({}); pass the `next_cursor` of an earlier \
                     response unchanged, or leave it out for the first page",
                    e.reason()
                ))
            })?),
        };
        Ok(MessageQuery { limit, after })
    }

    /// The raw value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// `GET /api/conversations`: `limit` (default `default_limit`),
    /// `offset` or `cursor` (not both), and the filters `q`, `direction`,
    /// `status`, `since`, `until` (see [`ConversationFilters`]).
    pub fn conversation_query(
        &self,
        default_limit: u32,
        normalizer: &Normalizer,
    ) -> Result<ConversationQuery, ApiError> {
        let offset = self.offset()?;
        let mut query = ConversationQuery::page(self.limit(default_limit)?, offset);
        if let Some(cursor) = self.cursor()? {
            if offset > 0 {
                return Err(invalid(format!(
                    "`cursor` and `offset` ({offset}) cannot be used together: a cursor \
                     already says where the page starts; leave `offset` out"
                )));
            }
            query = query.with_cursor(cursor);
        }
        let filters = ConversationFilters::parse(self, normalizer)?;
        if let Some(search) = filters.search {
            query = query.with_search(search);
        }
        if let Some(direction) = filters.direction {
            query = query.with_direction(direction);
        }
        if let Some(status) = filters.status {
            query = query.with_status(status);
        }
        if let Some(since) = filters.since {
            query = query.with_since(since);
        }
        if let Some(until) = filters.until {
            query = query.with_until(until);
        }
        if let Some(tag) = filters.tag {
            query = query.with_tag(tag);
        }
        if filters.has_recording {
            query = query.with_recording();
        }
        query = query.with_kinds(filters.kinds);
        Ok(query)
    }
}

/// The filters of `GET /api/conversations`, each optional:
///
/// * `q`: a number in any format (`(978) 844-7773`, `978.844.7773`,
///   `+19788447773`, a part like `844-77`) or a name; at most
///   [`MAX_SEARCH_CHARS`] characters; empty means no search.
/// * `direction`: `inbound`, `outbound` or `internal` (the newest call's).
/// * `status`: `missed`, `answered`, `in-progress`, `no-answer`, `busy`,
///   `failed` or `canceled` (the newest call's display status).
/// * `since` / `until`: Unix milliseconds or an RFC 3339 time; the
///   conversation's last activity is at or after `since` and before `until`.
/// * `tag`: the contact or one of the calls carries this tag
///   (case-insensitive).
/// * `has_recording`: `true` keeps conversations with a recorded call
///   (`false` or absent: no filter).
/// * `type`: `call` keeps conversations with a call, `sms` those with a
///   text (`all` or absent: no filter).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConversationFilters {
    /// `q`.
    pub search: Option<Search>,
    /// `direction`.
    pub direction: Option<ActualDirection>,
    /// `status`.
    pub status: Option<StatusFilter>,
    /// `since`.
    pub since: Option<DateTime<Utc>>,
    /// `until`.
    pub until: Option<DateTime<Utc>>,
    /// `tag`.
    pub tag: Option<String>,
    /// `has_recording=true`.
    pub has_recording: bool,
    /// `type`: conversations with a call (`call`) or a text (`sms`).
    pub kinds: ThreadKinds,
}

impl ConversationFilters {
    /// Reads and checks the filters; every mistake is a 400
    /// `invalid_parameter` naming the parameter.
    pub fn parse(params: &QueryParams, normalizer: &Normalizer) -> Result<Self, ApiError> {
        let search = match params.get("q") {
            None => None,
            Some(text) if text.chars().count() > MAX_SEARCH_CHARS => {
                let message = format!("`q` is longer than {MAX_SEARCH_CHARS} characters");
                return Err(invalid(message));
            }
            Some(text) if text.chars().any(char::is_control) => {
                return Err(invalid("`q` contains control characters"))
            }
            Some(text) if text.trim().is_empty() => None,
            Some(text) => Some(Search::new(text, normalizer)),
        };
        let tag = match params.get("tag").map(str::trim) {
            None | Some("") => None,
            Some(text) if text.chars().count() > callview_core::annotations::MAX_TAG_CHARS => {
                return Err(invalid(format!(
                    "`tag` is longer than {} characters",
                    callview_core::annotations::MAX_TAG_CHARS
                )))
            }
            Some(text) if text.chars().any(char::is_control) => {
                return Err(invalid("`tag` contains control characters"))
            }
            Some(text) => Some(text.to_owned()),
        };
        let has_recording = match params.get("has_recording").map(str::trim) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "`has_recording` must be true or false; got {other:?}"
                )))
            }
        };
        let direction = match params.get("direction") {
            None => None,
            Some(text) => Some(ActualDirection::parse(text.trim()).ok_or_else(|| {
                invalid(format!(
                    "`direction` must be one of inbound, outbound, internal; got {text:?}"
                ))
            })?),
        };
        let status = match params.get("status") {
            None => None,
            Some(text) => Some(StatusFilter::parse(text.trim()).ok_or_else(|| {
                let names: Vec<&str> = StatusFilter::ALL.iter().map(|s| s.as_str()).collect();
                invalid(format!(
                    "`status` must be one of {}; got {text:?}",
                    names.join(", ")
                ))
            })?),
        };
        let since = params
            .get("since")
            .map(|t| instant("since", t))
            .transpose()?;
        let until = params
            .get("until")
            .map(|t| instant("until", t))
            .transpose()?;
        if let (Some(since), Some(until)) = (since, until) {
            if since > until {
                return Err(invalid(format!(
                    "`since` ({}) is after `until` ({})",
                    since.to_rfc3339(),
                    until.to_rfc3339()
                )));
            }
        }
        Ok(Self {
            search,
            direction,
            status,
            since,
            until,
            tag,
            has_recording,
            kinds: params.thread_kinds()?,
        })
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_parameter", message)
}

/// An instant: Unix milliseconds (`1770391033000`) or RFC 3339
/// (`2026-02-06T15:17:13Z`, `2026-02-06T10:17:13-05:00`).
fn instant(name: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    let trimmed = text.trim();
    let help = "give Unix milliseconds (1770391033000) or an RFC 3339 time (2026-02-06T15:17:13Z)";
    if trimmed.is_empty() {
        return Err(invalid(format!(
            "`{name}` is empty; {help} or leave it out"
        )));
    }
    let digits = trimmed.strip_prefix('-').unwrap_or(trimmed);
    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        return trimmed
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| invalid(format!("`{name}` is out of range, got {trimmed}")));
    }
    DateTime::parse_from_rfc3339(trimmed)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| invalid(format!("`{name}` is not a time: {help}; got {trimmed:?}")))
}

fn whole_number(name: &str, text: &str) -> Result<u64, ApiError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("`{name}` is empty; give a whole number or leave it out"),
        ));
    }
    if trimmed.starts_with('-')
        && trimmed[1..].chars().all(|c| c.is_ascii_digit())
        && trimmed.len() > 1
    {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("`{name}` must not be negative, got {trimmed}"),
        ));
    }
    if !trimmed.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("`{name}` must be a whole number, got {trimmed:?}"),
        ));
    }
    trimmed.parse::<u64>().map_err(|_| {
        ApiError::bad_request(
            "invalid_parameter",
            format!("`{name}` is too large, got {trimmed}"),
        )
    })
}

/// A conversation id from the path: a positive whole number.
pub fn conversation_id(text: &str) -> Result<ConversationId, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_id",
            format!("conversation id must be a positive whole number, got {text:?}"),
        )
    };
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid());
    }
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(ConversationId(id)),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str) -> QueryParams {
        QueryParams::parse(Some(raw)).unwrap()
    }

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(q("").limit(20).unwrap(), 20);
        assert_eq!(q("").offset().unwrap(), 0);
        assert_eq!(q("limit=200&offset=5").limit(20).unwrap(), 200);
        assert_eq!(q("limit=200&offset=5").offset().unwrap(), 5);
        for bad in [
            "limit=0",
            "limit=201",
            "limit=-1",
            "limit=abc",
            "limit=",
            "limit=1.5",
        ] {
            let e = q(bad).limit(20).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{bad}");
            assert!(e.message().contains("`limit`"), "{bad}: {}", e.message());
        }
        for bad in ["offset=-1", "offset=x", "offset=99999999999999999999999"] {
            let e = q(bad).offset().unwrap_err();
            assert!(e.message().contains("`offset`"), "{bad}: {}", e.message());
        }
        assert!(QueryParams::parse(Some("limit=1&limit=2")).is_err());
    }

    #[test]
    fn conversation_filters() {
        let n = Normalizer::default();
        let query = q("q=%28978%29+844-7773&direction=inbound&status=missed&since=1770391033000&until=2026-02-07T00:00:00%2B01:00&limit=5")
            .conversation_query(20, &n)
            .unwrap();
        assert_eq!(query.limit, 5);
        assert_eq!(query.search.as_ref().unwrap().text, "(978) 844-7773");
        assert!(query
            .search
            .as_ref()
            .unwrap()
            .digits
            .contains(&"19788447773".to_owned()));
        assert_eq!(query.direction, Some(ActualDirection::Inbound));
        assert_eq!(query.status, Some(StatusFilter::Missed));
        assert_eq!(query.since.unwrap().timestamp_millis(), 1_770_391_033_000);
        assert_eq!(
            query.until.unwrap().to_rfc3339(),
            "2026-02-06T23:00:00+00:00"
        );
        // Absent or empty search: no filter at all.
        assert!(!q("").conversation_query(20, &n).unwrap().has_filters());
        assert!(!q("q=+").conversation_query(20, &n).unwrap().has_filters());
        for (bad, name) in [
            ("direction=up", "direction"),
            ("status=", "status"),
            ("since=soon", "since"),
            ("until=", "until"),
            ("since=2&until=1", "since"),
            ("q=%07", "q"),
        ] {
            let e = q(bad).conversation_query(20, &n).unwrap_err();
            assert_eq!(e.code(), "invalid_parameter", "{bad}");
            assert!(
                e.message().contains(&format!("`{name}`")),
                "{bad}: {}",
                e.message()
            );
        }
        let long = format!("q={}", "x".repeat(MAX_SEARCH_CHARS + 1));
        assert!(q(&long).conversation_query(20, &n).is_err());
    }

    #[test]
    fn cursors() {
        let n = Normalizer::default();
        let cursor = ConversationCursor::new(None, ConversationId(12));
        let text = cursor.to_string();
        let query = q(&format!("cursor={text}&limit=5"))
            .conversation_query(20, &n)
            .unwrap();
        assert_eq!(query.after, Some(cursor));
        assert_eq!(query.offset, 0);
        assert!(!query.has_filters());
        // With an offset of 0 it is still the cursor's page; empty is none.
        let query = q(&format!("cursor={text}&offset=0"))
            .conversation_query(20, &n)
            .unwrap();
        assert_eq!(query.after, Some(cursor));
        assert_eq!(q("cursor=").conversation_query(20, &n).unwrap().after, None);
        for bad in [
            "cursor=abc",
            "cursor=%FF",
            "cursor=djE6OjEy%3D",
            "cursor=not+a+cursor",
        ] {
            let e = q(bad).conversation_query(20, &n).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{bad}");
            assert_eq!(e.code(), "invalid_parameter", "{bad}");
            assert!(e.message().contains("`cursor`"), "{bad}: {}", e.message());
        }
        let e = q(&format!("cursor={text}&offset=20"))
            .conversation_query(20, &n)
            .unwrap_err();
        assert_eq!(e.code(), "invalid_parameter");
        assert!(
            e.message().contains("`cursor`") && e.message().contains("`offset`"),
            "{}",
            e.message()
        );
        assert!(QueryParams::parse(Some(&format!("cursor={text}&cursor={text}"))).is_err());
    }

    #[test]
    fn ids() {
        assert_eq!(conversation_id("12").unwrap(), ConversationId(12));
        for bad in ["", "abc", "-1", "0", "1e3", "99999999999999999999", " 1"] {
            assert_eq!(
                conversation_id(bad).unwrap_err().code(),
                "invalid_id",
                "{bad}"
            );
        }
    }
}
