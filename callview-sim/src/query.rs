//! The calls list's query: ordering keys, page tokens, Twilio's filter
//! parameters and the page URIs built from them.

use std::borrow::Cow;
use std::cmp::Ordering;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callview_core::twilio::{CallFilter, MAX_PAGE_SIZE};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use crate::generator::{hex16, Sid16};

/// Twilio's default page size.
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 50;

/// A call SID as an ordering key: generated SIDs as their 16 bytes (which
/// order exactly like their text), anything else as text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SidKey {
    Hex(Sid16),
    Text(Box<str>),
}

impl SidKey {
    /// The key of a SID; `CA` + 32 lowercase hex digits always becomes `Hex`.
    pub(crate) fn parse(text: &str) -> SidKey {
        if let Some(hex) = text.strip_prefix("CA") {
            if let Some(bytes) = decode_hex16(hex) {
                return SidKey::Hex(bytes);
            }
        }
        SidKey::Text(text.into())
    }

    /// Smaller than every SID.
    pub(crate) fn min() -> SidKey {
        SidKey::Text("".into())
    }

    /// The SID as text.
    pub(crate) fn text(&self) -> Cow<'_, str> {
        match self {
            SidKey::Hex(bytes) => Cow::Owned(format!("CA{}", hex16(bytes))),
            SidKey::Text(text) => Cow::Borrowed(text),
        }
    }
}

impl Ord for SidKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (SidKey::Hex(a), SidKey::Hex(b)) => a.cmp(b),
            _ => self.text().cmp(&other.text()),
        }
    }
}

impl PartialOrd for SidKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// 32 lowercase hex digits as 16 bytes.
pub(crate) fn decode_hex16(hex: &str) -> Option<Sid16> {
    let bytes = hex.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// A start time as an ordering key: calls without one sort after every
/// dated call (so they come first, newest-first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StartKey {
    unset: bool,
    at: DateTime<Utc>,
}

impl StartKey {
    pub(crate) fn of(start: Option<DateTime<Utc>>) -> StartKey {
        match start {
            Some(at) => StartKey { unset: false, at },
            None => StartKey {
                unset: true,
                at: DateTime::UNIX_EPOCH,
            },
        }
    }

    pub(crate) fn secs(start: Option<i64>) -> StartKey {
        StartKey::of(start.map(ts))
    }

    /// Below every key without a start time, above every dated key.
    pub(crate) fn unset_floor() -> StartKey {
        StartKey {
            unset: true,
            at: DateTime::<Utc>::MIN_UTC,
        }
    }

    pub(crate) fn time(&self) -> Option<DateTime<Utc>> {
        (!self.unset).then_some(self.at)
    }
}

/// Unix seconds as a UTC time.
pub(crate) fn ts(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

/// The order of the calls list: ascending here, served in reverse.
pub(crate) type Key = (StartKey, SidKey);

/// A position in the calls list: `PA` = the page after (older than) `key`,
/// `PB` = the page before (newer than) `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) backward: bool,
    pub(crate) key: Key,
}

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        let sid = self.key.1.text();
        let payload = match self.key.0.time() {
            Some(t) => format!("{}.{}|{sid}", t.timestamp(), t.timestamp_subsec_nanos()),
            None => format!("-|{sid}"),
        };
        let prefix = if self.backward { "PB" } else { "PA" };
        format!("{prefix}{}", URL_SAFE_NO_PAD.encode(payload))
    }

    pub(crate) fn decode(token: &str) -> Option<Cursor> {
        let backward = match token.get(..2)? {
            "PA" => false,
            "PB" => true,
            _ => return None,
        };
        let payload = URL_SAFE_NO_PAD.decode(token.get(2..)?).ok()?;
        let payload = String::from_utf8(payload).ok()?;
        let (start, sid) = payload.split_once('|')?;
        let start = if start == "-" {
            None
        } else {
            let (secs, nanos) = start.split_once('.')?;
            Some(DateTime::from_timestamp(
                secs.parse().ok()?,
                nanos.parse().ok()?,
            )?)
        };
        Some(Cursor {
            backward,
            key: (StartKey::of(start), SidKey::parse(sid)),
        })
    }
}

/// A time filter as a half-open range `[lo, hi)`. Once any bound is given,
/// records without the time are excluded (as in Twilio's SQL).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TimeRange {
    pub(crate) set: bool,
    pub(crate) lo: Option<DateTime<Utc>>,
    pub(crate) hi: Option<DateTime<Utc>>,
}

enum TimeValue {
    Instant(DateTime<Utc>),
    Day(NaiveDate),
}

fn parse_time_value(text: &str) -> Option<TimeValue> {
    let text = text.trim();
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(TimeValue::Day(day));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(TimeValue::Instant(t.with_timezone(&Utc)));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        return Some(TimeValue::Instant(t.and_utc()));
    }
    DateTime::parse_from_rfc2822(text)
        .ok()
        .map(|t| TimeValue::Instant(t.with_timezone(&Utc)))
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

fn next_midnight(day: NaiveDate) -> DateTime<Utc> {
    midnight(day.succ_opt().unwrap_or(day))
}

impl TimeRange {
    pub(crate) fn raise(&mut self, lo: DateTime<Utc>) {
        self.set = true;
        self.lo = Some(self.lo.map_or(lo, |l| l.max(lo)));
    }

    pub(crate) fn lower(&mut self, hi: DateTime<Utc>) {
        self.set = true;
        self.hi = Some(self.hi.map_or(hi, |h| h.min(hi)));
    }

    /// `X>` (a date: on or after it; an instant: strictly after).
    pub(crate) fn after(&mut self, value: &str) -> Option<()> {
        match parse_time_value(value)? {
            TimeValue::Day(d) => self.raise(midnight(d)),
            TimeValue::Instant(t) => self.raise(t + chrono::Duration::nanoseconds(1)),
        }
        Some(())
    }

    /// `X<` (a date: on or before it; an instant: strictly before).
    pub(crate) fn before(&mut self, value: &str) -> Option<()> {
        match parse_time_value(value)? {
            TimeValue::Day(d) => self.lower(next_midnight(d)),
            TimeValue::Instant(t) => self.lower(t),
        }
        Some(())
    }

    /// `X` (a date: that day; an instant: that second).
    pub(crate) fn on(&mut self, value: &str) -> Option<()> {
        match parse_time_value(value)? {
            TimeValue::Day(d) => {
                self.raise(midnight(d));
                self.lower(next_midnight(d));
            }
            TimeValue::Instant(t) => {
                self.raise(t);
                self.lower(t + chrono::Duration::seconds(1));
            }
        }
        Some(())
    }

    pub(crate) fn contains(&self, time: Option<DateTime<Utc>>) -> bool {
        if !self.set {
            return true;
        }
        match time {
            None => false,
            Some(t) => self.lo.is_none_or(|lo| t >= lo) && self.hi.is_none_or(|hi| t < hi),
        }
    }
}

/// One request for the calls list, parsed from Twilio's query parameters.
#[derive(Clone, Debug)]
pub(crate) struct ListQuery {
    pub(crate) page_size: u32,
    pub(crate) page: u32,
    pub(crate) cursor: Option<Cursor>,
    pub(crate) start: TimeRange,
    pub(crate) end: TimeRange,
    pub(crate) status: Option<String>,
    pub(crate) parent: Option<SidKey>,
    pub(crate) to: Option<String>,
    pub(crate) from: Option<String>,
    /// The recognised filter parameters, as given, for page URIs.
    params: Vec<(String, String)>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            page_size: DEFAULT_PAGE_SIZE,
            page: 0,
            cursor: None,
            start: TimeRange::default(),
            end: TimeRange::default(),
            status: None,
            parent: None,
            to: None,
            from: None,
            params: Vec::new(),
        }
    }
}

impl ListQuery {
    /// Parses a raw query string. Unknown parameters are ignored, as Twilio
    /// does; malformed known ones are an error message (a 400).
    pub(crate) fn parse(query: &str) -> Result<ListQuery, String> {
        let mut q = ListQuery::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            q.apply(&name, &value)?;
        }
        Ok(q)
    }

    /// The first page for `filter`.
    pub(crate) fn from_filter(filter: &CallFilter) -> ListQuery {
        let mut q = ListQuery {
            page_size: filter.page_size.clamp(1, MAX_PAGE_SIZE),
            ..ListQuery::default()
        };
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let mut params = Vec::new();
        if let Some(after) = &filter.start_time_after {
            params.push(("StartTime>", time(after)));
        }
        if let Some(before) = &filter.start_time_before {
            params.push(("StartTime<", time(before)));
        }
        if let Some(status) = &filter.status {
            params.push(("Status", status.as_str().to_owned()));
        }
        if let Some(parent) = &filter.parent_call_sid {
            params.push(("ParentCallSid", parent.as_str().to_owned()));
        }
        for (name, value) in params {
            // Values built above always parse.
            let _ = q.apply(name, &value);
        }
        q
    }

    fn apply(&mut self, name: &str, value: &str) -> Result<(), String> {
        let invalid = |what: &str| format!("Invalid {what}: {value:?}");
        match name {
            "PageSize" => {
                let size: u32 = value.trim().parse().map_err(|_| invalid("PageSize"))?;
                if size == 0 {
                    return Err(invalid("PageSize"));
                }
                self.page_size = size.min(MAX_PAGE_SIZE);
                return Ok(());
            }
            "Page" => {
                self.page = value.trim().parse().map_err(|_| invalid("Page"))?;
                return Ok(());
            }
            "PageToken" => {
                self.cursor =
                    Some(Cursor::decode(value.trim()).ok_or_else(|| invalid("PageToken"))?);
                return Ok(());
            }
            "StartTime>" => self.start.after(value).ok_or_else(|| invalid(name))?,
            "StartTime<" => self.start.before(value).ok_or_else(|| invalid(name))?,
            "StartTime" => self.start.on(value).ok_or_else(|| invalid(name))?,
            "EndTime>" => self.end.after(value).ok_or_else(|| invalid(name))?,
            "EndTime<" => self.end.before(value).ok_or_else(|| invalid(name))?,
            "EndTime" => self.end.on(value).ok_or_else(|| invalid(name))?,
            "Status" => self.status = Some(value.trim().to_owned()),
            "ParentCallSid" => self.parent = Some(SidKey::parse(value.trim())),
            "To" => self.to = Some(value.trim().to_owned()),
            "From" => self.from = Some(value.trim().to_owned()),
            _ => return Ok(()),
        }
        self.params.push((name.to_owned(), value.to_owned()));
        Ok(())
    }

    /// `/2010-04-01/Accounts/{AC}/Calls.json?PageSize=..&Page=..[&PageToken=..]`
    /// followed by the filter parameters.
    pub(crate) fn uri(&self, account_sid: &str, page: u32, cursor: Option<&Cursor>) -> String {
        list_uri(
            &format!("/2010-04-01/Accounts/{account_sid}/Calls.json"),
            self.page_size,
            page,
            cursor,
            &self.params,
        )
    }
}

/// `{path}?PageSize=..&Page=..[&PageToken=..]` followed by `params`: the
/// URI of a page of a list, as Twilio writes `next_page_uri`.
pub(crate) fn list_uri(
    path: &str,
    page_size: u32,
    page: u32,
    cursor: Option<&Cursor>,
    params: &[(String, String)],
) -> String {
    let mut uri = format!("{path}?PageSize={page_size}&Page={page}");
    if let Some(cursor) = cursor {
        uri.push_str("&PageToken=");
        uri.push_str(&cursor.encode());
    }
    for (name, value) in params {
        uri.push('&');
        encode_component(name, &mut uri);
        uri.push('=');
        encode_component(value, &mut uri);
    }
    uri
}

pub(crate) use callview_core::twilio::encode_component;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let key = (
            StartKey::of(Some(ts(1_770_000_000))),
            SidKey::parse("CA0123456789abcdef0123456789abcdef"),
        );
        for backward in [false, true] {
            let cursor = Cursor {
                backward,
                key: key.clone(),
            };
            assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }
        let odd = Cursor {
            backward: false,
            key: (StartKey::of(None), SidKey::parse("CA1|x")),
        };
        assert_eq!(Cursor::decode(&odd.encode()), Some(odd));
        assert!(Cursor::decode("PAnot base64!").is_none());
    }

    #[test]
    fn sid_keys_order_like_text() {
        let a = SidKey::parse("CA0000000000000000000000000000000a");
        let b = SidKey::parse("CA000000000000000000000000000000b0");
        assert!(matches!(a, SidKey::Hex(_)));
        assert!(a < b);
        assert!(SidKey::parse("CA0") < a);
        assert!(SidKey::parse("CA1") > b);
        assert!(SidKey::min() < SidKey::parse("A"));
        assert!(SidKey::parse("Z") > b);
    }

    #[test]
    fn query_parsing_and_uris() {
        let q =
            ListQuery::parse("StartTime%3E=2026-02-01T00:00:00Z&PageSize=7&Foo=1&Status=completed")
                .unwrap();
        assert_eq!(q.page_size, 7);
        assert_eq!(q.status.as_deref(), Some("completed"));
        assert!(q.start.contains(Some(ts(1_769_904_001))));
        assert!(!q.start.contains(Some(ts(1_769_904_000))));
        assert!(!q.start.contains(None));
        assert_eq!(
            q.uri("AC1", 0, None),
            "/2010-04-01/Accounts/AC1/Calls.json?PageSize=7&Page=0&StartTime%3E=2026-02-01T00:00:00Z&Status=completed"
        );
        let day = ListQuery::parse("StartTime>=2026-02-01").unwrap();
        assert!(day.start.contains(Some(ts(1_769_904_000))));
        assert!(ListQuery::parse("PageSize=0").is_err());
        assert!(ListQuery::parse("PageToken=xyz").is_err());
        assert!(ListQuery::parse("StartTime%3E=soon").is_err());
        assert_eq!(ListQuery::parse("PageSize=5000").unwrap().page_size, 1000);
    }
}
