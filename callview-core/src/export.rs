//! Exports of the call history: one row per stored Twilio call, legs
//! included, as CSV or JSON Lines, read a page at a time.
//!
//! * [`ExportQuery`]: which calls. The conversation list's filters (`q`,
//!   `direction`, `status`, `tag`, `has_recording`), applied to each call's
//!   conversation exactly as the list applies them, plus `since`/`until`
//!   on the call's own start time.
//! * [`Store::export_calls`]: a page of [`ExportRow`]s by keyset on
//!   `messages.id` (the order calls were first stored, which never changes:
//!   a call updated or moved to another conversation while an export runs
//!   keeps its place, and a call stored meanwhile comes after every page
//!   already read, so no call is written twice).
//! * [`ExportWriter`]: the bytes of each page, in an [`ExportFormat`].
//! * [`export_to`]: the whole export into a [`Write`], page by page (what
//!   `callview export` runs); [`pages`]: the same as a [`Stream`], for a
//!   streamed HTTP body.
//!
//! Memory is one page of rows (and the legs of its roots), whatever the
//! size of the store.
//!
//! ## Columns
//!
//! | column | what |
//! |---|---|
//! | `sid`, `parent_call_sid`, `root_call_sid` | the call, its parent, the root of its tree (itself for a root) |
//! | `external_id` | its conversation's `external_id` (the other party's display form) |
//! | `contact_name` | the name people gave the conversation's contact; empty when it only shows the number |
//! | `from`, `to` | as Twilio sent them |
//! | `direction` | Twilio's (`inbound`, `outbound-api`, `outbound-dial`, ...) |
//! | `actual_direction` | callview's (`inbound`, `outbound`, `internal`): of the whole interaction for a root, the leg's own for a leg |
//! | `status` | Twilio's |
//! | `display_status` | for a root, its interaction's (`completed`, `no-answer`, `busy`, ...); for a leg, its own |
//! | `start_time`, `end_time` | RFC 3339, UTC (`2026-02-06T15:17:13Z`); empty when Twilio has none |
//! | `duration` | seconds, as Twilio reports it; empty while unknown |
//! | `talk_time`, `wait_time` | seconds. A root: its interaction's figures ([`summarize`]: talk is the answered legs' durations, or the root's own duration without legs; wait is the rest of the root's duration). A leg: its own duration as talk time, 0 wait |
//! | `price`, `price_unit` | the exact decimal Twilio sent (`-0.0140`) and its currency |
//! | `recording_url` | where the call's newest recording plays |
//! | `notes`, `tags` | what people wrote on the call; in CSV the tags are joined with `"; "` (a tag never holds `;` nor `,`), in JSON Lines an array |
//!
//! JSON Lines rows also carry `raw`: the Twilio record as stored, so that
//! `callview import` of an export restores its calls ([`crate::import`]
//! reads a line with a `raw` object as that record). Notes, tags and
//! recordings are not restored by an import (they are not Twilio's).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use futures::{Stream, StreamExt};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::call::{CallDirection, CallSid, CallStatus};
use crate::endpoint::ActualDirection;
use crate::model::{summarize, DisplayStatus, StoredCall};
use crate::store::{ConversationQuery, Store, StoreError};

/// The page size of [`export_to`] and [`pages`] when none is asked for.
pub const DEFAULT_PAGE: u32 = 1000;

/// Which calls an export holds: the conversation list's filters, applied to
/// each call's conversation (see [`ConversationQuery`]), and bounds on the
/// call's own start time.
///
/// ```
/// use callview_core::export::ExportQuery;
/// use callview_core::store::{ConversationQuery, StatusFilter};
/// use chrono::{TimeZone, Utc};
/// let since = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
/// // The list's `since` (on conversations) becomes the calls' start time bound.
/// let list = ConversationQuery::page(20, 0).with_status(StatusFilter::Missed).with_since(since);
/// let query = ExportQuery::from_list_filters(list);
/// assert_eq!(query.since, Some(since));
/// assert_eq!(query.filters().since, None);
/// assert_eq!(query.filters().status, Some(StatusFilter::Missed));
/// assert!(ExportQuery::all().filters().has_filters() == false);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportQuery {
    /// The conversation filters (`search`, `direction`, `status`, `tag`,
    /// `has_recording`); its page, cursor and time bounds are unset.
    filters: ConversationQuery,
    /// Only calls that started at or after this (calls never dialled have
    /// no start time and are left out when it is set).
    pub since: Option<DateTime<Utc>>,
    /// Only calls that started before this (calls never dialled are left
    /// out when it is set).
    pub until: Option<DateTime<Utc>>,
}

impl ExportQuery {
    /// Every call.
    pub fn all() -> Self {
        Self::from_list_filters(ConversationQuery::default())
    }

    /// The calls of the conversations `list`'s filters keep, with `list`'s
    /// `since`/`until` taken as bounds on each call's start time (in the
    /// list they bound the conversation's last activity). Its page
    /// (`limit`, `offset`, cursor) is ignored.
    pub fn from_list_filters(list: ConversationQuery) -> Self {
        let (since, until) = (list.since, list.until);
        let mut filters = ConversationQuery::page(0, 0);
        filters.search = list.search;
        filters.direction = list.direction;
        filters.status = list.status;
        filters.tag = list.tag;
        filters.has_recording = list.has_recording;
        Self {
            filters,
            since,
            until,
        }
    }

    /// The conversation filters, as a [`ConversationQuery`] without page,
    /// cursor or time bounds: what a store hands its list's filter builder.
    pub fn filters(&self) -> &ConversationQuery {
        &self.filters
    }

    /// Keeps only calls started at or after `since`.
    pub fn with_since(mut self, since: DateTime<Utc>) -> Self {
        self.since = Some(since);
        self
    }

    /// Keeps only calls started before `until`.
    pub fn with_until(mut self, until: DateTime<Utc>) -> Self {
        self.until = Some(until);
        self
    }

    /// Whether any filter is set.
    pub fn has_filters(&self) -> bool {
        self.filters.has_filters() || self.since.is_some() || self.until.is_some()
    }
}

impl Default for ExportQuery {
    fn default() -> Self {
        Self::all()
    }
}

/// One exported call (see the [module documentation](self) for each field).
#[derive(Clone, Debug, PartialEq)]
pub struct ExportRow {
    /// Its `messages.id`: the export's position (not written).
    pub id: i64,
    /// The call's SID.
    pub sid: CallSid,
    /// Its parent's SID, for a leg.
    pub parent_call_sid: Option<CallSid>,
    /// The root of its tree (itself for a root).
    pub root_call_sid: CallSid,
    /// Its conversation's `external_id`.
    pub external_id: String,
    /// The name people gave its conversation's contact.
    pub contact_name: Option<String>,
    /// Twilio's `from`.
    pub from: Option<String>,
    /// Twilio's `to`.
    pub to: Option<String>,
    /// Twilio's direction.
    pub direction: CallDirection,
    /// callview's direction (the interaction's for a root).
    pub actual_direction: ActualDirection,
    /// Twilio's status.
    pub status: CallStatus,
    /// The interaction's display status for a root, the leg's own for a leg.
    pub display_status: DisplayStatus,
    /// When it started.
    pub start_time: Option<DateTime<Utc>>,
    /// When it ended.
    pub end_time: Option<DateTime<Utc>>,
    /// Twilio's duration, seconds.
    pub duration: Option<u32>,
    /// Seconds talked (see the module documentation).
    pub talk_time: u32,
    /// Seconds waited (see the module documentation).
    pub wait_time: u32,
    /// Twilio's price, exact.
    pub price: Option<Decimal>,
    /// The price's currency.
    pub price_unit: Option<String>,
    /// Where its newest recording plays.
    pub recording_url: Option<String>,
    /// Notes people wrote on it.
    pub notes: Option<String>,
    /// Tags people put on it.
    pub tags: Vec<String>,
    /// The Twilio record as stored.
    pub raw: Value,
}

/// A call as a store read it for an export, with what its conversation
/// adds ([`rows_of`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ExportSource {
    /// The stored call.
    pub call: StoredCall,
    /// Its conversation's `external_id`.
    pub external_id: String,
    /// Its contact's name ([`contact_name`]).
    pub contact_name: Option<String>,
}

/// The name people gave a contact: its `display_name`, unless that is
/// empty or only the number (its display form or key), as it is until
/// someone names the contact. What `contacts.csv` writes too.
///
/// ```
/// use callview_core::export::contact_name;
/// assert_eq!(contact_name(Some("Mrs Alvarez".into()), Some("(978) 844-7773"), "+19788447773").as_deref(), Some("Mrs Alvarez"));
/// assert_eq!(contact_name(Some("(978) 844-7773".into()), Some("(978) 844-7773"), "+19788447773"), None);
/// assert_eq!(contact_name(Some("+19788447773".into()), None, "+19788447773"), None);
/// assert_eq!(contact_name(None, None, "+19788447773"), None);
/// ```
pub fn contact_name(
    display_name: Option<String>,
    formatted_number: Option<&str>,
    key: &str,
) -> Option<String> {
    display_name.filter(|n| {
        !n.trim().is_empty() && Some(n.as_str()) != formatted_number && n.as_str() != key
    })
}

/// The export rows of a page: `page` in its order, each root's
/// `talk_time`/`wait_time`/`display_status` computed from `legs`, which
/// holds every descendant of the page's roots (any order, roots and
/// unrelated rows ignored). A leg's talk time is its own duration, with no
/// wait.
pub fn rows_of(page: Vec<ExportSource>, legs: Vec<StoredCall>) -> Vec<ExportRow> {
    let mut by_root: HashMap<CallSid, Vec<StoredCall>> = HashMap::new();
    for leg in legs.into_iter().filter(|l| !l.is_root()) {
        by_root.entry(leg.root_sid.clone()).or_default().push(leg);
    }
    page.into_iter()
        .map(|source| {
            let ExportSource {
                call: stored,
                external_id,
                contact_name,
            } = source;
            let (talk_time, wait_time, display_status) = if stored.is_root() {
                let own = by_root
                    .get(&stored.call.sid)
                    .map(|legs| legs.iter().map(|l| &l.call).collect::<Vec<_>>())
                    .unwrap_or_default();
                let summary = summarize(&stored.call, &own);
                (summary.talk_time, summary.wait_time, summary.display_status)
            } else {
                (
                    stored.call.duration_secs(),
                    0,
                    stored.derived.display_status.clone(),
                )
            };
            let call = stored.call;
            ExportRow {
                id: stored.id,
                sid: call.sid,
                parent_call_sid: call.parent_call_sid,
                root_call_sid: stored.root_sid,
                external_id,
                contact_name,
                from: call.from,
                to: call.to,
                direction: call.direction,
                actual_direction: stored.derived.actual_direction,
                status: call.status,
                display_status,
                start_time: call.start_time,
                end_time: call.end_time,
                duration: call.duration,
                talk_time,
                wait_time,
                price: call.price,
                price_unit: call.price_unit,
                recording_url: stored.recording_url,
                notes: stored.annotations.notes,
                tags: stored.annotations.tags,
                raw: call.raw,
            }
        })
        .collect()
}

/// What an export is written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    /// Comma-separated values (RFC 4180 quoting), a header row first.
    Csv,
    /// One JSON object per line, `raw` included.
    JsonLines,
}

impl ExportFormat {
    /// Reads `csv` or `jsonl` (also `ndjson`).
    ///
    /// ```
    /// use callview_core::export::ExportFormat;
    /// assert_eq!(ExportFormat::parse("csv"), Some(ExportFormat::Csv));
    /// assert_eq!(ExportFormat::parse("jsonl"), Some(ExportFormat::JsonLines));
    /// assert_eq!(ExportFormat::parse("xml"), None);
    /// ```
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" => Some(Self::JsonLines),
            _ => None,
        }
    }

    /// `csv` or `jsonl`.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::JsonLines => "jsonl",
        }
    }

    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::JsonLines => "application/x-ndjson",
        }
    }

    /// `callview-calls-2026-11-30.csv`: the file name of an export made on `date`.
    ///
    /// ```
    /// use callview_core::export::ExportFormat;
    /// let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    /// assert_eq!(ExportFormat::Csv.file_name(date), "callview-calls-2026-11-30.csv");
    /// ```
    pub fn file_name(self, date: NaiveDate) -> String {
        format!(
            "callview-calls-{}.{}",
            date.format("%Y-%m-%d"),
            self.extension()
        )
    }
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 21] = [
    "sid",
    "parent_call_sid",
    "root_call_sid",
    "external_id",
    "contact_name",
    "from",
    "to",
    "direction",
    "actual_direction",
    "status",
    "display_status",
    "start_time",
    "end_time",
    "duration",
    "talk_time",
    "wait_time",
    "price",
    "price_unit",
    "recording_url",
    "notes",
    "tags",
];

/// How tags are joined in a CSV cell.
pub const CSV_TAG_SEPARATOR: &str = "; ";

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The output could not be written.
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
    /// A row could not be encoded (never expected).
    #[error("cannot encode a row: {0}")]
    Encode(String),
}

fn rfc3339(time: Option<DateTime<Utc>>) -> Option<String> {
    time.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// One JSON line (borrowed from the row).
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    sid: &'a CallSid,
    parent_call_sid: Option<&'a CallSid>,
    root_call_sid: &'a CallSid,
    external_id: &'a str,
    contact_name: Option<&'a str>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    direction: &'a CallDirection,
    actual_direction: ActualDirection,
    status: &'a CallStatus,
    display_status: &'a DisplayStatus,
    start_time: Option<String>,
    end_time: Option<String>,
    duration: Option<u32>,
    talk_time: u32,
    wait_time: u32,
    price: Option<String>,
    price_unit: Option<&'a str>,
    recording_url: Option<&'a str>,
    notes: Option<&'a str>,
    tags: &'a [String],
    raw: &'a Value,
}

impl<'a> From<&'a ExportRow> for JsonLine<'a> {
    fn from(r: &'a ExportRow) -> Self {
        Self {
            sid: &r.sid,
            parent_call_sid: r.parent_call_sid.as_ref(),
            root_call_sid: &r.root_call_sid,
            external_id: &r.external_id,
            contact_name: r.contact_name.as_deref(),
            from: r.from.as_deref(),
            to: r.to.as_deref(),
            direction: &r.direction,
            actual_direction: r.actual_direction,
            status: &r.status,
            display_status: &r.display_status,
            start_time: rfc3339(r.start_time),
            end_time: rfc3339(r.end_time),
            duration: r.duration,
            talk_time: r.talk_time,
            wait_time: r.wait_time,
            price: r.price.map(|p| p.to_string()),
            price_unit: r.price_unit.as_deref(),
            recording_url: r.recording_url.as_deref(),
            notes: r.notes.as_deref(),
            tags: &r.tags,
            raw: &r.raw,
        }
    }
}

/// The cells of one CSV row, in [`CSV_COLUMNS`] order (empty for none).
fn csv_cells(r: &ExportRow) -> [String; 21] {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let number = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
    [
        r.sid.to_string(),
        r.parent_call_sid
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        r.root_call_sid.to_string(),
        r.external_id.clone(),
        text(&r.contact_name),
        text(&r.from),
        text(&r.to),
        r.direction.to_string(),
        r.actual_direction.as_str().to_owned(),
        r.status.to_string(),
        r.display_status.to_string(),
        rfc3339(r.start_time).unwrap_or_default(),
        rfc3339(r.end_time).unwrap_or_default(),
        number(r.duration),
        r.talk_time.to_string(),
        r.wait_time.to_string(),
        r.price.map(|p| p.to_string()).unwrap_or_default(),
        text(&r.price_unit),
        text(&r.recording_url),
        text(&r.notes),
        r.tags.join(CSV_TAG_SEPARATOR),
    ]
}

/// Encodes pages of rows in a format: [`ExportWriter::header`] once, then
/// [`ExportWriter::encode`] for each page, each giving the bytes to send.
///
/// ```
/// use callview_core::export::{ExportFormat, ExportWriter};
/// let writer = ExportWriter::new(ExportFormat::Csv);
/// let header = String::from_utf8(writer.header()).unwrap();
/// assert!(header.starts_with("sid,parent_call_sid,root_call_sid,external_id,"));
/// assert!(header.ends_with(",notes,tags\n"));
/// assert!(writer.encode(&[]).unwrap().is_empty());
/// assert!(ExportWriter::new(ExportFormat::JsonLines).header().is_empty());
/// ```
pub struct ExportWriter {
    format: ExportFormat,
}

impl std::fmt::Debug for ExportWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportWriter")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl ExportWriter {
    /// A writer of `format`.
    pub fn new(format: ExportFormat) -> Self {
        Self { format }
    }

    /// The format.
    pub fn format(&self) -> ExportFormat {
        self.format
    }

    /// What comes before the rows: the CSV header row; nothing for JSON Lines.
    pub fn header(&self) -> Vec<u8> {
        match self.format {
            ExportFormat::Csv => {
                let mut line = CSV_COLUMNS.join(",");
                line.push('\n');
                line.into_bytes()
            }
            ExportFormat::JsonLines => Vec::new(),
        }
    }

    /// The bytes of `rows`.
    pub fn encode(&self, rows: &[ExportRow]) -> Result<Vec<u8>, ExportError> {
        let encode = |e: &dyn std::fmt::Display| ExportError::Encode(e.to_string());
        match self.format {
            ExportFormat::Csv => {
                let mut csv = csv::WriterBuilder::new()
                    .has_headers(false)
                    .terminator(csv::Terminator::Any(b'\n'))
                    .from_writer(Vec::with_capacity(rows.len() * 256));
                for row in rows {
                    csv.write_record(csv_cells(row)).map_err(|e| encode(&e))?;
                }
                csv.into_inner().map_err(|e| encode(e.error()))
            }
            ExportFormat::JsonLines => {
                let mut out = Vec::with_capacity(rows.len() * 1024);
                for row in rows {
                    serde_json::to_writer(&mut out, &JsonLine::from(row))
                        .map_err(|e| encode(&e))?;
                    out.push(b'\n');
                }
                Ok(out)
            }
        }
    }
}

/// Progress of [`export_to`], after each page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportProgress {
    /// Rows written so far.
    pub rows: u64,
    /// Pages read so far.
    pub pages: u64,
}

/// Writes every call `query` keeps from `store` into `output` as `format`,
/// `page_size` rows at a time (memory: one page), passing each row through
/// `map` first (the server shows its own recording URLs). Calls `progress`
/// after each page. Returns how many rows were written; `output` is
/// flushed.
pub async fn export_to(
    store: &dyn Store,
    query: &ExportQuery,
    format: ExportFormat,
    page_size: u32,
    mut output: impl Write,
    map: impl Fn(&mut ExportRow),
    mut progress: impl FnMut(ExportProgress),
) -> Result<u64, ExportError> {
    let page_size = page_size.max(1);
    let writer = ExportWriter::new(format);
    output.write_all(&writer.header())?;
    let mut done = ExportProgress::default();
    let mut after = None;
    loop {
        let mut rows = store.export_calls(query, after, page_size).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last.id);
        rows.iter_mut().for_each(&map);
        output.write_all(&writer.encode(&rows)?)?;
        done.rows += rows.len() as u64;
        done.pages += 1;
        progress(done);
        if rows.len() < page_size as usize {
            break;
        }
    }
    output.flush()?;
    Ok(done.rows)
}

/// The size of the first page of [`pages`] (when `page_size` is larger):
/// small, so that a streamed export's first bytes leave sooner.
pub const FIRST_PAGE: u32 = 100;

/// The pages of an export as a stream: the first of at most
/// [`FIRST_PAGE`] rows, the others of at most `page_size`, each read when
/// the stream is polled for it (so a slow reader holds one page), empty
/// pages never yielded, a store error ending the stream. The stream is
/// fused: polled again after its end, it stays ended.
pub fn pages(
    store: Arc<dyn Store>,
    query: ExportQuery,
    page_size: u32,
) -> impl Stream<Item = Result<Vec<ExportRow>, StoreError>> + Send + 'static {
    let page_size = page_size.max(1);
    // Where the next page starts and its size; `None` once the stream ended.
    let start: Option<(Option<i64>, u32)> = Some((None, FIRST_PAGE.min(page_size)));
    futures::stream::unfold(start, move |state| {
        let store = Arc::clone(&store);
        let query = query.clone();
        async move {
            let (after, limit) = state?;
            match store.export_calls(&query, after, limit).await {
                Err(e) => Some((Err(e), None)),
                Ok(rows) => {
                    let last = rows.last()?.id;
                    let next = (rows.len() >= limit as usize).then_some((Some(last), page_size));
                    Some((Ok(rows), next))
                }
            }
        }
    })
    .fuse()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::Annotations;
    use crate::model::{ConversationId, Derived, RefreshState};
    use crate::Call;
    use proptest::prelude::*;

    fn stored(
        sid: &str,
        parent: Option<&str>,
        root: &str,
        duration: u32,
        status: &str,
    ) -> StoredCall {
        let mut call = Call::new(
            CallSid::new(sid).unwrap(),
            CallStatus::parse(status),
            CallDirection::Inbound,
        );
        call.duration = Some(duration);
        call.parent_call_sid = parent.and_then(CallSid::new);
        call.refresh_raw();
        let derived = Derived::from_stored(&call, None, None, None);
        StoredCall {
            id: 1,
            conversation_id: ConversationId(1),
            root_sid: CallSid::new(root).unwrap(),
            call,
            derived,
            recording_url: None,
            refresh: RefreshState::default(),
            annotations: Annotations::default(),
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        }
    }

    fn source(call: StoredCall) -> ExportSource {
        ExportSource {
            call,
            external_id: "(978) 844-7773".into(),
            contact_name: None,
        }
    }

    #[test]
    fn roots_sum_their_legs_and_legs_stand_alone() {
        let root = stored("CA1", None, "CA1", 100, "completed");
        let leg = stored("CA2", Some("CA1"), "CA1", 60, "completed");
        let grandchild = stored("CA3", Some("CA2"), "CA1", 30, "completed");
        let missed = stored("CA4", Some("CA1"), "CA1", 0, "no-answer");
        let lone = stored("CA5", None, "CA5", 0, "busy");
        let rows = rows_of(
            vec![source(root), source(missed.clone()), source(lone)],
            vec![leg, grandchild, missed],
        );
        let figures: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.sid.as_str(),
                    r.talk_time,
                    r.wait_time,
                    r.display_status.as_str(),
                )
            })
            .collect();
        assert_eq!(
            figures,
            [
                ("CA1", 90, 10, "completed"),
                ("CA4", 0, 0, "no-answer"),
                ("CA5", 0, 0, "busy")
            ]
        );
    }

    fn row(
        notes: Option<String>,
        tags: Vec<String>,
        name: Option<String>,
        from: String,
    ) -> ExportRow {
        let mut r = rows_of(
            vec![source(stored("CA1", None, "CA1", 5, "completed"))],
            vec![],
        )
        .pop()
        .unwrap();
        r.notes = notes;
        r.tags = tags;
        r.contact_name = name;
        r.from = Some(from);
        r.price = Some("-0.0140".parse().unwrap());
        r
    }

    fn read_back(bytes: &[u8]) -> Vec<csv::StringRecord> {
        let mut reader = csv::Reader::from_reader(bytes);
        let headers = reader.headers().unwrap().clone();
        assert_eq!(headers.iter().collect::<Vec<_>>(), CSV_COLUMNS);
        reader.records().map(Result::unwrap).collect()
    }

    #[test]
    fn awkward_cells_are_quoted() {
        let notes = "quoted $240, \"call back\" Friday\nsecond line\r\nthird; café ☎".to_owned();
        let writer = ExportWriter::new(ExportFormat::Csv);
        let mut bytes = writer.header();
        let r = row(
            Some(notes.clone()),
            vec!["VIP".into(), "Ünïcode".into()],
            Some("O'Brien, \"Pat\"".into()),
            "sip:+1978@x.com;transport=udp".into(),
        );
        bytes.extend(writer.encode(&[r.clone(), r]).unwrap());
        let records = read_back(&bytes);
        assert_eq!(records.len(), 2);
        let record = &records[0];
        assert_eq!(&record[19], notes);
        assert_eq!(&record[20], "VIP; Ünïcode");
        assert_eq!(&record[4], "O'Brien, \"Pat\"");
        assert_eq!(&record[5], "sip:+1978@x.com;transport=udp");
        assert_eq!(&record[16], "-0.0140");
        assert_eq!(&record[13], "5");
    }

    #[test]
    fn json_lines_carry_raw_and_fixed_keys() {
        let r = row(None, vec![], None, "+19788447773".into());
        let bytes = ExportWriter::new(ExportFormat::JsonLines)
            .encode(&[r])
            .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text.matches('\n').count(), 1);
        let value: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(value["sid"], "CA1");
        assert_eq!(value["raw"]["sid"], "CA1");
        assert_eq!(value["notes"], Value::Null);
        assert_eq!(value["tags"], serde_json::json!([]));
        assert_eq!(value["price"], "-0.0140");
        assert_eq!(value["talk_time"], 5);
        for column in CSV_COLUMNS {
            assert!(value.get(column).is_some(), "{column}");
        }
    }

    proptest! {
        #[test]
        fn csv_cells_round_trip(
            notes in proptest::option::of("[ -~\n\r\t,\"'é☎中]{0,40}"),
            tags in proptest::collection::vec("[a-zA-Z0-9 éü\"'-]{1,10}", 0..4),
            name in proptest::option::of("[ -~é,\"\n]{1,20}"),
            from in "[ -~é]{0,20}",
        ) {
            let tags: Vec<String> = tags.into_iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
            let r = row(notes.clone(), tags.clone(), name.clone(), from.clone());
            let writer = ExportWriter::new(ExportFormat::Csv);
            let mut bytes = writer.header();
            bytes.extend(writer.encode(std::slice::from_ref(&r)).unwrap());
            let records = read_back(&bytes);
            prop_assert_eq!(records.len(), 1);
            let record = &records[0];
            let (notes, name) = (notes.unwrap_or_default(), name.unwrap_or_default());
            prop_assert_eq!(&record[19], notes.as_str());
            prop_assert_eq!(&record[4], name.as_str());
            prop_assert_eq!(&record[5], from.as_str());
            let read_tags: Vec<&str> = if record[20].is_empty() { vec![] } else { record[20].split(';').map(str::trim).collect() };
            prop_assert_eq!(read_tags, tags.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }
}
