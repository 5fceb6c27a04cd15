//! Importing Twilio call history dumps, streamed.
//!
//! Twilio call records come as files in three forms, all read here:
//!
//! * the Twilio CLI's JSON (`twilio api:core:calls:list -o json`): one JSON
//!   array of camelCase records;
//! * the REST API's form: a page envelope `{"calls": [...], "next_page_uri":
//!   ...}`, or an array of snake_case records;
//! * JSON Lines of either: one record per line, or one page envelope per
//!   line (top-level values simply follow each other, so concatenated
//!   arrays and pretty-printed envelopes are read too).
//!
//! callview's own JSON Lines export ([`crate::export`]) is read too: a line
//! with a `raw` object is that Twilio record.
//!
//! [`read_calls`] is the parser. It reads through one buffered reader and
//! never holds more than the record it is parsing: a top-level array (or an
//! envelope's `calls` array) is deserialized element by element by a
//! [`serde::de::Visitor`] that hands each element to a callback, and
//! top-level values are deserialized one after the other from the same
//! reader. Every record is reported with its [`Position`] (its number in the
//! file, counted from 1, and the line it starts on).
//!
//! [`import_calls`] is the import: it parses on a thread of its own, cuts
//! the records into batches and applies each batch in one store
//! transaction ([`Store::begin_ingest`] → [`ingest_in`] → commit), exactly
//! as a sync applies a page. So the result equals a sync of the same calls,
//! in any order and any number of files, and importing a file again
//! changes nothing (the planner's order independence and idempotence).
//!
//! What goes wrong is reported, never a panic:
//!
//! * a record that is not a call (no `sid`, a date that is not a date, a
//!   line of JSON Lines that is not JSON) is rejected with its position and
//!   reason; the rest are imported;
//! * input that is not a call dump at all (empty, not JSON, a top level
//!   that is neither an array, an envelope nor JSON Lines of objects) is an
//!   [`ImportError`] before anything is written;
//! * JSON broken in the middle of an array or of a multi-line value (a
//!   truncated file) stops the import with the error's line and column;
//!   the batches before it stay imported, and [`ImportFailure`] says how
//!   many.
//!
//! ```
//! use std::ops::ControlFlow;
//! use callview_core::import::read_calls;
//!
//! let dump = br#"[
//!   {"sid": "CA1", "status": "completed", "startTime": "2026-02-06T15:17:13.000Z"},
//!   {"sid": "CA2", "duration": "-3"}
//! ]"#;
//! let mut good = Vec::new();
//! let mut bad = Vec::new();
//! let summary = read_calls(&dump[..], |position, record| {
//!     match record {
//!         Ok(call) => good.push(call.sid.to_string()),
//!         Err(e) => bad.push((position.record, position.line, e.reason)),
//!     }
//!     ControlFlow::Continue(())
//! })
//! .unwrap();
//! assert_eq!(summary.records, 2);
//! assert_eq!(good, ["CA1"]);
//! assert_eq!((bad[0].0, bad[0].1), (2, 3));
//! ```

use std::cell::Cell;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::call::{Call, CallParseError};
use crate::endpoint::{OwnedNumbers, PartyRules};
use crate::store::{Store, StoreError};
use crate::sync::{ingest_in, Skipped, SyncReport, OWNED_NUMBERS_CURSOR};

/// How many records [`import_calls`] applies per transaction by default.
pub const DEFAULT_BATCH: usize = 1000;

/// Where a record is in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Position {
    /// The record's number in the input, counted from 1 across every array,
    /// page and line.
    pub record: u64,
    /// The line the record starts on, counted from 1.
    pub line: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}, line {}", self.record, self.line)
    }
}

/// The form the input turned out to have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputForm {
    /// One JSON array of records (the Twilio CLI's `-o json`).
    Array,
    /// One REST page envelope, `{"calls": [...], ...}`.
    Page,
    /// Several top-level values, or a lone record: JSON Lines of records
    /// or of page envelopes.
    JsonLines,
}

/// What [`read_calls`] read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadSummary {
    /// The input's form.
    pub form: InputForm,
    /// Records handed to the callback (parsed or not).
    pub records: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Whether the callback stopped the reading.
    pub stopped: bool,
}

/// Why an input could not be read (or imported) to its end.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input could not be read.
    #[error("cannot read the input: {0}")]
    Io(#[from] std::io::Error),
    /// The input holds nothing but whitespace.
    #[error("the input is empty: {EXPECTED}")]
    Empty,
    /// The input is not a call dump: not JSON, or a top level that is not
    /// an array, a page envelope or JSON Lines of objects. Reported before
    /// any record is read, so nothing was written.
    #[error("not a Twilio call dump: {reason} (line {line}, column {column}); {EXPECTED}")]
    Unsupported {
        /// Line of the offending byte.
        line: u64,
        /// Its column (bytes, from 1).
        column: u64,
        /// What is wrong.
        reason: String,
    },
    /// The JSON breaks off or is garbled part-way (a truncated file, a
    /// broken array). The records before it were read.
    #[error("malformed JSON at line {line}, column {column}, after {records} records: {reason}")]
    Malformed {
        /// Line where the error was found.
        line: u64,
        /// Column (bytes, from 1).
        column: u64,
        /// Records read before it.
        records: u64,
        /// The parser's reason.
        reason: String,
    },
    /// The store failed while importing.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The reading thread ended without a result (it panicked).
    #[error("the reader stopped unexpectedly")]
    Interrupted,
}

const EXPECTED: &str =
    "expected a JSON array of call records (`twilio api:core:calls:list -o json`), \
     a REST page `{\"calls\": [...]}`, or JSON Lines of records or pages";

/// Where the reader is, shared between the byte source and the visitors
/// (which run while the JSON deserializer borrows the source).
#[derive(Debug)]
struct Cursor {
    line: Cell<u64>,
    column: Cell<u64>,
    bytes: Cell<u64>,
    last: Cell<u8>,
    /// Waiting for the first byte of the next array element.
    armed: Cell<bool>,
    /// The line that byte was on.
    mark: Cell<u64>,
}

impl Cursor {
    fn new() -> Self {
        Self {
            line: Cell::new(1),
            column: Cell::new(0),
            bytes: Cell::new(0),
            last: Cell::new(0),
            armed: Cell::new(false),
            mark: Cell::new(1),
        }
    }

    fn observe(&self, bytes: &[u8]) {
        self.bytes.set(self.bytes.get() + bytes.len() as u64);
        for &b in bytes {
            if self.armed.get() && !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b',') {
                self.mark.set(self.line.get());
                self.armed.set(false);
            }
            if b == b'\n' {
                self.line.set(self.line.get() + 1);
                self.column.set(0);
            } else {
                self.column.set(self.column.get() + 1);
            }
            self.last.set(b);
        }
    }

    /// The column of the next byte (from 1).
    fn next_column(&self) -> u64 {
        self.column.get() + 1
    }
}

/// The byte source: a buffered reader that counts lines as the JSON
/// deserializer consumes bytes, and lets the top level peek without
/// consuming.
struct Source<R> {
    inner: BufReader<R>,
    cursor: Rc<Cursor>,
    /// JSON Lines: the deserializer sees the end of the input at the end
    /// of the line, so an error never reads past it.
    line_mode: bool,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.line_mode {
            let n = self.inner.read(buf)?;
            self.cursor.observe(&buf[..n]);
            return Ok(n);
        }
        // Only the bytes asked for are looked at (the deserializer asks for
        // one at a time): scanning the whole buffer would be quadratic.
        let available = self.inner.fill_buf()?;
        let wanted = &available[..available.len().min(buf.len())];
        let n = wanted
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(wanted.len());
        buf[..n].copy_from_slice(&wanted[..n]);
        self.cursor.observe(&buf[..n]);
        self.inner.consume(n);
        Ok(n)
    }
}

impl<R: Read> Source<R> {
    /// Skips whitespace (and a UTF-8 byte order mark at the very start);
    /// the next byte without consuming it, `None` at the end.
    fn peek(&mut self) -> std::io::Result<Option<u8>> {
        if self.cursor.bytes.get() == 0 {
            let buf = self.inner.fill_buf()?;
            if buf.starts_with(b"\xEF\xBB\xBF") {
                self.inner.consume(3);
                self.cursor.bytes.set(3);
            }
        }
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            let skip = buf
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                .unwrap_or(buf.len());
            self.cursor.observe(&buf[..skip]);
            let next = buf.get(skip).copied();
            self.inner.consume(skip);
            if let Some(next) = next {
                return Ok(Some(next));
            }
        }
    }

    /// Consumes the rest of the current line, its newline included.
    fn skip_line(&mut self) -> std::io::Result<()> {
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.cursor.observe(&buf[..=i]);
                    self.inner.consume(i + 1);
                    return Ok(());
                }
                None => {
                    let n = buf.len();
                    self.cursor.observe(buf);
                    self.inner.consume(n);
                }
            }
        }
    }
}

/// The error a visitor returns to stop the deserializer when the callback
/// said so (recognised by `Sink::stopped`, never shown).
const STOPPED: &str = "import stopped";

/// Receives the records: numbers them and calls the callback.
struct Sink<'f, F> {
    on_record: &'f mut F,
    cursor: Rc<Cursor>,
    records: u64,
    stopped: bool,
}

impl<F> Sink<'_, F>
where
    F: FnMut(Position, Result<Call, CallParseError>) -> ControlFlow<()>,
{
    fn send(&mut self, line: u64, record: Result<Call, CallParseError>) -> ControlFlow<()> {
        self.records += 1;
        let position = Position {
            record: self.records,
            line,
        };
        let flow = (self.on_record)(position, record);
        if flow.is_break() {
            self.stopped = true;
        }
        flow
    }
}

/// Deserializes an array, handing each element to the sink as it is
/// parsed (the array is never held whole).
struct Elements<'s, 'f, F>(&'s mut Sink<'f, F>);

impl<'de, F> DeserializeSeed<'de> for Elements<'_, '_, F>
where
    F: FnMut(Position, Result<Call, CallParseError>) -> ControlFlow<()>,
{
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F> Visitor<'de> for Elements<'_, '_, F>
where
    F: FnMut(Position, Result<Call, CallParseError>) -> ControlFlow<()>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of call records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            self.0.cursor.armed.set(true);
            let Some(value) = seq.next_element::<Value>()? else {
                self.0.cursor.armed.set(false);
                return Ok(());
            };
            let line = self.0.cursor.mark.get();
            if self.0.send(line, Call::from_value(value)).is_break() {
                return Err(de::Error::custom(STOPPED));
            }
        }
    }
}

/// A top-level object: a page envelope (its `calls` streamed to the sink)
/// or a record (its fields kept, to be parsed once whole).
enum TopObject {
    Page,
    Record(Map<String, Value>),
}

struct Object<'s, 'f, F>(&'s mut Sink<'f, F>);

impl<'de, F> DeserializeSeed<'de> for Object<'_, '_, F>
where
    F: FnMut(Position, Result<Call, CallParseError>) -> ControlFlow<()>,
{
    type Value = TopObject;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<TopObject, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F> Visitor<'de> for Object<'_, '_, F>
where
    F: FnMut(Position, Result<Call, CallParseError>) -> ControlFlow<()>,
{
    type Value = TopObject;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a call record or a page of them")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopObject, A::Error> {
        let mut fields = Map::new();
        let mut page = false;
        while let Some(key) = map.next_key::<String>()? {
            if page {
                // The envelope's other fields (paging links) are not needed.
                map.next_value::<IgnoredAny>()?;
            } else if key == "calls" {
                page = true;
                fields = Map::new();
                map.next_value_seed(Elements(&mut *self.0))?;
            } else {
                let value = map.next_value::<Value>()?;
                fields.insert(key, value);
            }
        }
        Ok(if page {
            TopObject::Page
        } else {
            TopObject::Record(fields)
        })
    }
}

/// The serde_json message without its " at line L column C" (positions are
/// reported from the reader, counted over the whole input).
fn reason_of(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

fn describe(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("`{}`", byte as char)
    } else {
        format!("byte 0x{byte:02X}")
    }
}

/// Reads Twilio call records from `reader` (any of the forms in the
/// [module documentation](self)), handing each to `on_record` with its
/// position as soon as it is parsed: `Ok(call)`, or the reason it is not a
/// call. `on_record` returning [`ControlFlow::Break`] stops the reading
/// (the summary says so).
///
/// Memory: the reader's buffer and the record being parsed; never the
/// array or the file.
///
/// Errors: [`ImportError::Empty`] and [`ImportError::Unsupported`] come
/// before any record is handed over. [`ImportError::Malformed`] comes when
/// the JSON breaks off inside an array or a value spanning several lines,
/// after the records before it were handed over. A line of JSON Lines that
/// is not JSON (or not an object) is handed over as a rejected record, and
/// the reading goes on at the next line, once the input has shown itself
/// to be JSON (the first value parsed). Never panics.
pub fn read_calls<R, F>(reader: R, mut on_record: F) -> Result<ReadSummary, ImportError>
where
    R: Read,
    F: FnMut(Position, Result<Call, CallParseError>) -> ControlFlow<()>,
{
    let cursor = Rc::new(Cursor::new());
    let mut source = Source {
        inner: BufReader::with_capacity(64 * 1024, reader),
        cursor: Rc::clone(&cursor),
        line_mode: false,
    };
    let mut sink = Sink {
        on_record: &mut on_record,
        cursor: Rc::clone(&cursor),
        records: 0,
        stopped: false,
    };
    let mut values = 0u64;
    let mut form = InputForm::JsonLines;
    while let Some(first) = source.peek()? {
        values += 1;
        let line = cursor.line.get();
        let column = cursor.next_column();
        let outcome = match first {
            b'[' => {
                let mut de = serde_json::Deserializer::from_reader(&mut source);
                Elements(&mut sink).deserialize(&mut de).map(|()| None)
            }
            b'{' => {
                let mut de = serde_json::Deserializer::from_reader(&mut source);
                Object(&mut sink).deserialize(&mut de).map(Some)
            }
            other if values == 1 => {
                return Err(ImportError::Unsupported {
                    line,
                    column,
                    reason: format!("the input starts with {}", describe(other)),
                });
            }
            other if source.line_mode => {
                // A line of JSON Lines that is not an object: one bad record.
                source.skip_line()?;
                let reason = format!(
                    "not a JSON object: the line starts with {}",
                    describe(other)
                );
                let rejected = Err(CallParseError { sid: None, reason });
                if sink.send(line, rejected).is_break() {
                    return Ok(summary(form, &sink, &cursor));
                }
                continue;
            }
            other => {
                return Err(ImportError::Malformed {
                    line,
                    column,
                    records: sink.records,
                    reason: format!(
                        "expected another JSON array or object, found {}",
                        describe(other)
                    ),
                });
            }
        };
        match outcome {
            Ok(None) => form = InputForm::Array,
            Ok(Some(TopObject::Page)) => form = InputForm::Page,
            Ok(Some(TopObject::Record(fields))) => {
                if values == 1 && !fields.contains_key("sid") {
                    let mut keys: Vec<&str> = fields.keys().map(String::as_str).take(8).collect();
                    if fields.len() > keys.len() {
                        keys.push("...");
                    }
                    let keys = if keys.is_empty() {
                        "none".to_owned()
                    } else {
                        keys.join(", ")
                    };
                    return Err(ImportError::Unsupported {
                        line,
                        column,
                        reason: format!(
                            "the first object has neither `calls` (a page) nor `sid` (a call record); its keys: {keys}"
                        ),
                    });
                }
                form = InputForm::JsonLines;
                let record = Call::from_value(exported_record(fields));
                if sink.send(line, record).is_break() {
                    return Ok(summary(form, &sink, &cursor));
                }
            }
            Err(_) if sink.stopped => return Ok(summary(form, &sink, &cursor)),
            Err(e) if e.is_io() => return Err(ImportError::Io(e.into())),
            Err(e) if source.line_mode => {
                // JSON Lines: the deserializer stopped at the line's end, so
                // the error is this line's; one bad record, next line.
                source.skip_line()?;
                let (_, at) = absolute(&e, line, column);
                let reason = format!("not valid JSON (column {at}): {}", reason_of(&e));
                let rejected = Err(CallParseError { sid: None, reason });
                if sink.send(line, rejected).is_break() {
                    return Ok(summary(form, &sink, &cursor));
                }
                continue;
            }
            Err(e) => {
                let (error_line, error_column) = absolute(&e, line, column);
                return Err(ImportError::Malformed {
                    line: error_line,
                    column: error_column,
                    records: sink.records,
                    reason: reason_of(&e),
                });
            }
        }
        // A first value that fits on its line makes the input JSON Lines:
        // from here on a line that does not parse is one bad record.
        if values == 1 && cursor.line.get() == line {
            source.line_mode = true;
        }
    }
    if values == 0 {
        return Err(ImportError::Empty);
    }
    if values > 1 {
        form = InputForm::JsonLines;
    }
    Ok(summary(form, &sink, &cursor))
}

/// The Twilio record of a top-level object: the object itself, or, for a
/// line of callview's own JSON Lines export (`callview export --format
/// jsonl`, [`crate::export`]), its `raw` object (the record as stored; the
/// line's other fields are derived from it, or are people's notes, which
/// an import does not write).
fn exported_record(mut fields: Map<String, Value>) -> Value {
    match fields.remove("raw") {
        Some(Value::Object(raw)) => Value::Object(raw),
        Some(other) => {
            fields.insert("raw".to_owned(), other);
            Value::Object(fields)
        }
        None => Value::Object(fields),
    }
}

/// An error's line and column in the whole input, from serde_json's
/// (counted from where its deserializer started: `line`, `column`).
fn absolute(e: &serde_json::Error, line: u64, column: u64) -> (u64, u64) {
    let (l, c) = (e.line() as u64, e.column() as u64);
    if l <= 1 {
        (line, column.saturating_sub(1) + c.max(1))
    } else {
        (line + l - 1, c.max(1))
    }
}

fn summary<F>(form: InputForm, sink: &Sink<'_, F>, cursor: &Cursor) -> ReadSummary {
    ReadSummary {
        form,
        records: sink.records,
        bytes: cursor.bytes.get(),
        stopped: sink.stopped,
    }
}

/// A record that was not imported, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RejectedRecord {
    /// Its number in the input, from 1.
    pub record: u64,
    /// The line it starts on, from 1.
    pub line: u64,
    /// Its SID, when it had one.
    pub sid: Option<String>,
    /// Why it was not imported.
    pub reason: String,
}

/// What an import did: a [`SyncReport`] (serialized flat, so the JSON has
/// the sync report's fields: `fetched` = records read, `inserted`,
/// `updated`, `unchanged`, `moved`, `skipped` with each reason prefixed by
/// the record's position, `pages` = batches applied) plus the import's own
/// fields.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ImportReport {
    /// The counts, as a sync reports them.
    #[serde(flatten)]
    pub sync: SyncReport,
    /// The input's form, once known.
    pub form: Option<InputForm>,
    /// Bytes read.
    pub bytes: u64,
    /// Every record not imported, with its position.
    pub rejected: Vec<RejectedRecord>,
    /// Why the import stopped early, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ImportReport {
    /// Calls written (inserted or updated) before the import ended.
    pub fn written(&self) -> u64 {
        self.sync.inserted + self.sync.updated
    }
}

/// An import that stopped early: the error, and what was imported before
/// it (kept: each batch was committed on its own).
#[derive(Debug)]
pub struct ImportFailure {
    /// Why it stopped.
    pub error: ImportError,
    /// What was imported before (its `error` holds the error's text).
    pub report: ImportReport,
}

impl fmt::Display for ImportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        let batches = self.report.sync.pages;
        if batches > 0 {
            write!(
                f,
                "; the {} records read before it were imported ({} batches, {} calls written) and are kept",
                self.report.sync.fetched,
                batches,
                self.report.written()
            )?;
        } else {
            write!(f, "; nothing was imported")?;
        }
        Ok(())
    }
}

/// Its text already holds the error's, so it names no `source`.
impl std::error::Error for ImportFailure {}

/// Progress of a running import, for progress bars: reported after each
/// batch is applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportProgress {
    /// Records read so far.
    pub records: u64,
    /// Bytes read so far.
    pub bytes: u64,
    /// Batches applied so far.
    pub batches: u64,
}

/// What the reading thread sends: one batch.
struct Chunk {
    calls: Vec<Call>,
    rejected: Vec<RejectedRecord>,
    records: u64,
}

impl Chunk {
    fn new(batch: usize) -> Self {
        Self {
            calls: Vec::with_capacity(batch),
            rejected: Vec::new(),
            records: 0,
        }
    }
}

/// Counts the bytes the reading thread consumed, for progress.
struct Counting<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Imports every call record `reader` holds into `store`, `batch` records
/// per transaction, through the same path as a sync page:
/// [`Store::begin_ingest`], [`ingest_in`] (the pure planner between the
/// transaction's reads and its writes), commit.
///
/// The reader is parsed by [`read_calls`] on a thread of its own, which
/// hands batches over a channel holding one: at most three batches are in
/// memory (one being read, one waiting, one being written), whatever the
/// input's size. `rules` decides which numbers are the business's (see
/// [`with_cached_owned_numbers`]); no Twilio access is needed.
///
/// Records that are not calls are reported (in the report's `skipped` and
/// `rejected`) and the rest imported. Input that is empty or not a call
/// dump fails before anything is written; an input whose JSON breaks off
/// part-way fails with the error's position, keeping the batches read
/// before it ([`ImportFailure::report`]).
pub async fn import_calls<R>(
    store: &dyn Store,
    rules: &PartyRules,
    reader: R,
    batch: usize,
    progress: Option<&(dyn Fn(ImportProgress) + Send + Sync)>,
) -> Result<ImportReport, ImportFailure>
where
    R: Read + Send + 'static,
{
    let clock = Instant::now();
    let batch = batch.max(1);
    let mut report = ImportReport {
        sync: SyncReport {
            started_at: Some(Utc::now()),
            ..SyncReport::default()
        },
        ..ImportReport::default()
    };
    let bytes = Arc::new(AtomicU64::new(0));
    let reader = Counting {
        inner: reader,
        bytes: Arc::clone(&bytes),
    };
    let (chunks, mut received) = tokio::sync::mpsc::channel::<Chunk>(1);
    let (done, outcome) = tokio::sync::oneshot::channel();
    // A thread, not the runtime's blocking pool: a reader that blocks
    // forever (a terminal on stdin) after a store error must not keep the
    // runtime from shutting down.
    let spawned = std::thread::Builder::new()
        .name("callview-import".into())
        .spawn(move || {
            let mut chunk = Chunk::new(batch);
            let result = read_calls(reader, |position, record| {
                chunk.records += 1;
                match record {
                    Ok(call) => chunk.calls.push(call),
                    Err(e) => chunk.rejected.push(RejectedRecord {
                        record: position.record,
                        line: position.line,
                        sid: e.sid,
                        reason: e.reason,
                    }),
                }
                if chunk.calls.len() >= batch || chunk.rejected.len() >= batch {
                    let full = std::mem::replace(&mut chunk, Chunk::new(batch));
                    if chunks.blocking_send(full).is_err() {
                        // The importer stopped (a store error).
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            });
            // The records read before an error are whole: import them too.
            let stopped = matches!(&result, Ok(s) if s.stopped);
            if !stopped && chunk.records > 0 {
                let _ = chunks.blocking_send(chunk);
            }
            drop(chunks);
            let _ = done.send(result);
        });
    if let Err(e) = spawned {
        return Err(fail(report, ImportError::Io(e), clock));
    }

    while let Some(chunk) = received.recv().await {
        report.sync.fetched += chunk.records;
        report.bytes = bytes.load(Ordering::Relaxed);
        for r in chunk.rejected {
            tracing::debug!(record = r.record, line = r.line, sid = ?r.sid, reason = %r.reason, "skipped a call record");
            report.sync.skipped.push(Skipped {
                sid: r.sid.clone(),
                reason: format!("record {}, line {}: {}", r.record, r.line, r.reason),
            });
            report.rejected.push(r);
        }
        if !chunk.calls.is_empty() {
            match ingest(store, rules, chunk.calls).await {
                Ok(stats) => {
                    report.sync.inserted += stats.inserted;
                    report.sync.updated += stats.updated;
                    report.sync.unchanged += stats.unchanged;
                    report.sync.moved += stats.moved;
                    report.sync.pages += 1;
                }
                Err(e) => {
                    // The reading thread sees the channel closed and stops.
                    drop(received);
                    return Err(fail(report, ImportError::Store(e), clock));
                }
            }
        }
        if let Some(progress) = progress {
            progress(ImportProgress {
                records: report.sync.fetched,
                bytes: report.bytes,
                batches: report.sync.pages,
            });
        }
    }
    let result = outcome.await;
    report.bytes = bytes.load(Ordering::Relaxed);
    match result {
        Ok(Ok(summary)) => {
            report.form = Some(summary.form);
            report.sync.elapsed_ms = clock.elapsed().as_millis() as u64;
            if !report.rejected.is_empty() {
                tracing::warn!(
                    skipped = report.rejected.len(),
                    "some records are not calls and were not imported"
                );
            }
            Ok(report)
        }
        Ok(Err(e)) => Err(fail(report, e, clock)),
        Err(_) => Err(fail(report, ImportError::Interrupted, clock)),
    }
}

fn fail(mut report: ImportReport, error: ImportError, clock: Instant) -> ImportFailure {
    report.sync.elapsed_ms = clock.elapsed().as_millis() as u64;
    report.error = Some(error.to_string());
    ImportFailure { error, report }
}

/// One batch in one transaction, as a sync applies a page.
async fn ingest(
    store: &dyn Store,
    rules: &PartyRules,
    batch: Vec<Call>,
) -> Result<crate::model::PlanStats, StoreError> {
    let mut tx = store.begin_ingest().await?;
    let stats = ingest_in(tx.as_mut(), rules, batch).await?;
    tx.commit().await?;
    Ok(stats)
}

/// `rules` with the account's numbers the last sync cached in the store
/// added (what status callbacks use between syncs), so an import into a
/// synced database treats the account's numbers as a sync does. On a store
/// never synced, `rules` as given.
pub async fn with_cached_owned_numbers(
    store: &dyn Store,
    rules: PartyRules,
) -> Result<PartyRules, StoreError> {
    let mut owned = rules.owned.clone();
    if let Some(json) = store.read_cursor(OWNED_NUMBERS_CURSOR).await? {
        let numbers: Vec<String> = serde_json::from_str(&json).unwrap_or_default();
        owned.extend(&OwnedNumbers::from_raw(
            &rules.normalizer,
            numbers.iter().map(String::as_str),
        ));
    }
    Ok(PartyRules::new(rules.normalizer, owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each record's position and SID, or the reason it was refused.
    type Seen = Vec<(Position, Result<String, String>)>;

    fn read(input: &str) -> (Result<ReadSummary, ImportError>, Seen) {
        let mut seen = Vec::new();
        let result = read_calls(input.as_bytes(), |p, r| {
            seen.push((p, r.map(|c| c.sid.to_string()).map_err(|e| e.reason)));
            ControlFlow::Continue(())
        });
        (result, seen)
    }

    #[test]
    fn positions_of_pretty_printed_array_elements() {
        let (result, seen) = read(
            "[\n  {\n    \"sid\": \"CA1\"\n  },\n  {\"sid\": \"CA2\"}, {\"sid\": \"CA3\"}\n]\n",
        );
        assert_eq!(result.unwrap().form, InputForm::Array);
        let lines: Vec<_> = seen.iter().map(|(p, _)| (p.record, p.line)).collect();
        assert_eq!(lines, [(1, 2), (2, 5), (3, 5)]);
    }

    #[test]
    fn the_callback_can_stop() {
        let mut n = 0;
        let summary = read_calls(
            &b"[{\"sid\":\"CA1\"},{\"sid\":\"CA2\"},{\"sid\":\"CA3\"}]"[..],
            |_, _| {
                n += 1;
                if n == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
        .unwrap();
        assert!(summary.stopped);
        assert_eq!(summary.records, 2);
    }

    #[test]
    fn lines_of_callviews_export_are_their_raw_records() {
        let input = concat!(
            r#"{"sid":"CA1","talk_time":5,"notes":"n","raw":{"sid":"CA1","status":"busy"}}"#,
            "\n",
            r#"{"sid":"CA2","status":"completed"}"#,
            "\n",
            r#"{"sid":"CA3","raw":{"status":"busy"}}"#,
            "\n",
        );
        let mut calls = Vec::new();
        let summary = read_calls(input.as_bytes(), |_, record| {
            calls.push(record.map(|c| (c.sid.to_string(), c.status.to_string(), c.raw)));
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(summary.form, InputForm::JsonLines);
        let (sid, status, raw) = calls[0].as_ref().unwrap();
        assert_eq!((sid.as_str(), status.as_str()), ("CA1", "busy"));
        // The record stored is Twilio's, not the export's line.
        assert_eq!(raw, &serde_json::json!({"sid": "CA1", "status": "busy"}));
        assert_eq!(calls[1].as_ref().unwrap().0, "CA2");
        // A `raw` without a SID is a record that is not a call.
        assert!(calls[2].is_err());
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let (result, seen) = read("\u{feff}[{\"sid\":\"CA1\"}]");
        assert!(result.is_ok());
        assert_eq!(seen.len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = read_calls(&bytes[..], |_, _| ControlFlow::Continue(()));
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[\\[\\]{}\",:a-z0-9 \n]{0,200}") {
            let _ = read(&text);
        }
    }
}
