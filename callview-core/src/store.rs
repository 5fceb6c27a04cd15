//! The [`Store`] trait: what the sync engine and the API need from a database.
//!
//! Implementations live in their own crates (`callview-sqlite`,
//! `callview-postgres`); the generic conformance suite in
//! `callview_core::testkit` (feature `testkit`) checks them all the same way.
//! No database type appears here.

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SubsecRound, Utc};

use crate::access::{NewToken, TokenHash, TokenRecord};
use crate::annotations::{Annotations, CallEdit, ContactEdit, ContactFields, EditMeta};
use crate::call::CallSid;
use crate::endpoint::{ActualDirection, Normalizer};
use crate::export::{ExportQuery, ExportRow};
use crate::model::{
    ConversationCounters, ConversationId, ConversationLookup, Interaction, MediaPlan, Plan,
    RefreshState, StoredCall, StoredRecording, StoredText, ThreadKinds,
};
use crate::recording::{RecordingSid, Transcript};
use crate::stats::{StatsQuery, StatsRows};
use crate::text::MessageSid;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The conversation, call or row asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The write conflicts with another writer (e.g. a sync already running).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request itself is invalid (a bad cursor, a filter out of range).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The edit was made against a version that is no longer the current
    /// one (`If-Match`): someone else changed the resource meanwhile, and
    /// nothing was written.
    #[error("changed elsewhere: {0}")]
    Stale(String),
    /// This store no longer holds the sync lock it took: another process
    /// took it over (after its lease ran out, or its session ended). The
    /// transaction that noticed wrote nothing.
    #[error("the sync lock was lost: {0}")]
    LockLost(String),
    /// The database failed. The message never contains a password.
    #[error("database error: {message}")]
    Backend {
        /// What was being done and what went wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// A backend error with context.
    pub fn backend(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Backend {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl From<CursorError> for StoreError {
    fn from(e: CursorError) -> Self {
        Self::Invalid(e.to_string())
    }
}

/// A contact row.
#[derive(Clone, Debug, PartialEq)]
pub struct ContactRecord {
    /// `contacts.id`.
    pub id: i64,
    /// Canonical key (E.164, `anonymous`, or an internal endpoint).
    pub phone_number: String,
    /// Display form.
    pub formatted_number: Option<String>,
    /// Name shown for the contact.
    pub display_name: Option<String>,
    /// `contacts.metadata`.
    pub metadata: serde_json::Value,
    /// `contacts.company_name`, as people wrote it.
    pub company_name: Option<String>,
    /// Notes and tags people wrote, and who last edited the contact.
    pub annotations: Annotations,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl ContactRecord {
    /// The editable fields.
    pub fn fields(&self) -> ContactFields {
        ContactFields {
            name: self.display_name.clone(),
            company_name: self.company_name.clone(),
            annotations: self.annotations.clone(),
        }
    }
}

/// A conversation row.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationRecord {
    /// `conversations.id`.
    pub id: ConversationId,
    /// `conversations.external_id`: the party's display form.
    pub external_id: String,
    /// `Calls with ...`.
    pub subject: Option<String>,
    /// `active` or `archived`.
    pub status: String,
    /// Counters from `metadata`, and `last_message_at`.
    pub counters: ConversationCounters,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A conversation with its contact and last interaction, as the API lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationView {
    /// The conversation.
    pub conversation: ConversationRecord,
    /// Its contact.
    pub contact: ContactRecord,
    /// Its newest interaction, legs folded in.
    pub last_message: Option<Interaction>,
    /// Its newest text message (`counters.last_text_sid`), when it has
    /// texts; the conversation's last message when
    /// `counters.last_message_type` says a text is newest.
    pub last_text: Option<StoredText>,
}

/// Which conversations to list: a page, and optional filters that every
/// store applies in SQL (all given filters must hold).
///
/// The list is ordered by `last_message_at DESC NULLS LAST, id DESC`. A page
/// starts either `offset` rows into that order ([`ConversationQuery::page`])
/// or just after a [`ConversationCursor`] taken from a previous page
/// ([`ConversationQuery::with_cursor`], keyset pagination: the store seeks
/// to the position in its index instead of skipping rows, so a deep page
/// costs what the first one does). A cursor with an `offset` above 0 is
/// [`StoreError::Invalid`].
///
/// ```
/// use callview_core::store::{ConversationQuery, Search, StatusFilter};
/// use callview_core::{ActualDirection, Normalizer};
/// let query = ConversationQuery::page(50, 0)
///     .with_search(Search::new("(978) 844-7773", &Normalizer::default()))
///     .with_direction(ActualDirection::Inbound)
///     .with_status(StatusFilter::Missed);
/// assert_eq!(query.limit, 50);
/// assert!(query.has_filters());
/// assert!(!ConversationQuery::page(20, 0).has_filters());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConversationQuery {
    /// At most this many.
    pub limit: u32,
    /// Skip this many.
    pub offset: u64,
    /// Only conversations whose contact matches this number or name.
    pub search: Option<Search>,
    /// Only conversations whose newest interaction has this actual
    /// direction (`metadata.last_call_direction`).
    pub direction: Option<ActualDirection>,
    /// Only conversations whose newest interaction's display status is in
    /// this group (`metadata.last_display_status`).
    pub status: Option<StatusFilter>,
    /// Only conversations whose `last_message_at` is at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Only conversations whose `last_message_at` is before this.
    pub until: Option<DateTime<Utc>>,
    /// Start just after this position of the list (keyset pagination)
    /// rather than `offset` rows into it; `offset` must then be 0.
    pub after: Option<ConversationCursor>,
    /// Only conversations whose contact, or one of whose calls, carries
    /// this tag (compared case-insensitively).
    pub tag: Option<String>,
    /// Only conversations with at least one call that has a recording
    /// (one Twilio still has).
    pub has_recording: bool,
    /// Only conversations with a call ([`ThreadKinds::Calls`]) or with a
    /// text ([`ThreadKinds::Texts`]).
    pub kinds: ThreadKinds,
}

impl ConversationQuery {
    /// A page of `limit` starting at `offset`, without filters.
    pub fn page(limit: u32, offset: u64) -> Self {
        Self {
            limit,
            offset,
            search: None,
            direction: None,
            status: None,
            since: None,
            until: None,
            after: None,
            tag: None,
            has_recording: false,
            kinds: ThreadKinds::All,
        }
    }

    /// Starts the page just after `cursor` (a [`ConversationPage::next_cursor`]
    /// of the same list), instead of at `offset`.
    ///
    /// The filters are not part of the cursor: pass the same ones with each
    /// page. Rows whose position changes between two requests (new
    /// activity moves a conversation to the top) are never listed twice:
    /// each page holds only rows after the cursor's position.
    ///
    /// ```
    /// use callview_core::store::{ConversationCursor, ConversationQuery};
    /// use callview_core::ConversationId;
    /// let cursor = ConversationCursor::new(None, ConversationId(7));
    /// let query = ConversationQuery::page(20, 0).with_cursor(cursor.clone());
    /// assert_eq!(query.after, Some(cursor));
    /// assert!(query.validate().is_ok());
    /// // A cursor and an offset together are refused.
    /// assert!(ConversationQuery::page(20, 40).with_cursor(query.after.unwrap()).validate().is_err());
    /// ```
    pub fn with_cursor(mut self, cursor: ConversationCursor) -> Self {
        self.after = Some(cursor);
        self
    }

    /// Checks the query can be run: a cursor and an `offset` above 0
    /// together are [`StoreError::Invalid`] (they are two ways of saying
    /// where the page starts). Every store calls this first.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.after.is_some() && self.offset > 0 {
            return Err(StoreError::Invalid(format!(
                "a cursor and an offset ({}) cannot be used together; \
                 give one or the other",
                self.offset
            )));
        }
        Ok(())
    }

    /// Keeps only conversations matching `search`.
    pub fn with_search(mut self, search: Search) -> Self {
        self.search = Some(search);
        self
    }

    /// Keeps only conversations whose newest interaction has `direction`.
    pub fn with_direction(mut self, direction: ActualDirection) -> Self {
        self.direction = Some(direction);
        self
    }

    /// Keeps only conversations whose newest interaction's display status
    /// is in `status`.
    pub fn with_status(mut self, status: StatusFilter) -> Self {
        self.status = Some(status);
        self
    }

    /// Keeps only conversations active at or after `since` (`last_message_at >= since`).
    pub fn with_since(mut self, since: DateTime<Utc>) -> Self {
        self.since = Some(since);
        self
    }

    /// Keeps only conversations last active before `until` (`last_message_at < until`).
    pub fn with_until(mut self, until: DateTime<Utc>) -> Self {
        self.until = Some(until);
        self
    }

    /// Keeps only conversations whose contact or calls carry `tag`.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Keeps only conversations with a recorded call.
    pub fn with_recording(mut self) -> Self {
        self.has_recording = true;
        self
    }

    /// Keeps only conversations with a call, or with a text.
    pub fn with_kinds(mut self, kinds: ThreadKinds) -> Self {
        self.kinds = kinds;
        self
    }

    /// Whether any filter is set (a cursor is not a filter).
    pub fn has_filters(&self) -> bool {
        self.kinds != ThreadKinds::All
            || self.has_recording
            || self.tag.is_some()
            || self.search.is_some()
            || self.direction.is_some()
            || self.status.is_some()
            || self.since.is_some()
            || self.until.is_some()
    }

    /// The values of `metadata.last_call_direction` that mean the asked
    /// direction: ours (`inbound`, `outbound`, `internal`) and, for
    /// conversations written by the seed's original application, Twilio's
    /// directions that read back as it.
    pub fn direction_values(&self) -> Option<&'static [&'static str]> {
        self.direction.map(|d| match d {
            ActualDirection::Inbound => &["inbound", "inbound-api", "trunking-originating"][..],
            ActualDirection::Outbound => &[
                "outbound",
                "outbound-api",
                "outbound-dial",
                "trunking-terminating",
            ][..],
            ActualDirection::Internal => &["internal"][..],
        })
    }
}

impl Default for ConversationQuery {
    fn default() -> Self {
        Self::page(20, 0)
    }
}

/// A search by number or name, as a person types it.
///
/// A conversation matches when its contact's canonical key
/// (`contacts.phone_number`, E.164 for phones) contains one of
/// [`Search::digits`], or when [`Search::text`] is part of its contact's
/// name, display form, key, company name, notes or one of its tags, or of
/// the notes or a tag of one of its calls (case-insensitive; SQLite folds
/// ASCII letters only).
///
/// ```
/// use callview_core::store::Search;
/// use callview_core::Normalizer;
/// let n = Normalizer::default();
/// // A number written any way finds the E.164 key +19788447773.
/// assert!(Search::new("(978) 844-7773", &n).digits.contains(&"19788447773".to_owned()));
/// assert!(Search::new("978.844.7773", &n).digits.contains(&"19788447773".to_owned()));
/// assert!(Search::new("+1 978 844 7773", &n).digits.contains(&"19788447773".to_owned()));
/// // A part of a number is matched as typed.
/// assert_eq!(Search::new("844-77", &n).digits, vec!["84477".to_owned()]);
/// // Words are matched as text only.
/// let alice = Search::new("  Alice ", &n);
/// assert_eq!(alice.text, "Alice");
/// assert!(alice.digits.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Search {
    /// The text as typed, trimmed.
    pub text: String,
    /// Digit strings (no `+`) to find inside the canonical key: the E.164
    /// form of the text when it is a whole phone number, the digits as
    /// typed, and those without a leading trunk `0`. Empty when the text
    /// is not written like a number or has fewer than 3 digits.
    pub digits: Vec<String>,
}

impl Search {
    /// The shortest run of digits searched as a number.
    pub const MIN_DIGITS: usize = 3;

    /// Builds a search from what a person typed, normalising a phone
    /// number with `normalizer` (its default region applies to numbers
    /// written without a country code).
    pub fn new(text: &str, normalizer: &Normalizer) -> Self {
        let text = text.trim().to_owned();
        let looks_like_number = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().\u{a0}/".contains(c));
        let typed: String = text.chars().filter(char::is_ascii_digit).collect();
        let mut digits = Vec::new();
        if looks_like_number && typed.len() >= Self::MIN_DIGITS {
            let mut add = |d: String| {
                if d.len() >= Self::MIN_DIGITS && !digits.contains(&d) {
                    digits.push(d);
                }
            };
            if let Some(e164) = normalizer.canonical_phone(&text) {
                add(e164.trim_start_matches('+').to_owned());
            }
            add(typed.clone());
            add(typed.trim_start_matches('0').to_owned());
        }
        Self { text, digits }
    }

    /// The strings a trigram index can look up for this search (the digit
    /// strings, then the text), when every one can: at least three
    /// characters and none that JSON escapes (`"`, `\`, control
    /// characters), so that a contact matching one of the search's exact
    /// conditions holds it in its indexed text. `None` when one cannot:
    /// the stores then read every contact. An index lookup finds a
    /// superset, case-insensitively; the exact conditions still decide.
    ///
    /// ```
    /// use callview_core::endpoint::Normalizer;
    /// use callview_core::store::Search;
    /// let n = Normalizer::default();
    /// assert_eq!(Search::new("Whit", &n).trigram_terms(), Some(vec!["Whit"]));
    /// assert_eq!(Search::new("Wh", &n).trigram_terms(), None);
    /// assert_eq!(Search::new("say \"hi\"", &n).trigram_terms(), None);
    /// ```
    pub fn trigram_terms(&self) -> Option<Vec<&str>> {
        let searchable = |t: &str| {
            t.chars().count() >= 3 && !t.chars().any(|c| c == '"' || c == '\\' || c.is_control())
        };
        let terms: Vec<&str> = self
            .digits
            .iter()
            .map(String::as_str)
            .chain((!self.text.is_empty()).then_some(self.text.as_str()))
            .collect();
        (!terms.is_empty() && terms.iter().all(|t| searchable(t))).then_some(terms)
    }
}

/// A group of display statuses of a conversation's newest interaction
/// (`call-model.md` section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusFilter {
    /// Missed: `no-answer`, `busy`, `failed` or `canceled`.
    Missed,
    /// Somebody talked: `completed`.
    Answered,
    /// Still running: `queued`, `initiated`, `ringing` or `in-progress`.
    InProgress,
    /// Exactly `no-answer`.
    NoAnswer,
    /// Exactly `busy`.
    Busy,
    /// Exactly `failed`.
    Failed,
    /// Exactly `canceled`.
    Canceled,
}

impl StatusFilter {
    /// Every filter, in the order the API documents them.
    pub const ALL: [StatusFilter; 7] = [
        Self::Missed,
        Self::Answered,
        Self::InProgress,
        Self::NoAnswer,
        Self::Busy,
        Self::Failed,
        Self::Canceled,
    ];

    /// Reads the API's name (`missed`, `answered`, `in-progress`,
    /// `no-answer`, `busy`, `failed`, `canceled`; also `completed` for
    /// `answered`).
    ///
    /// ```
    /// use callview_core::store::StatusFilter;
    /// assert_eq!(StatusFilter::parse("missed"), Some(StatusFilter::Missed));
    /// assert_eq!(StatusFilter::parse("completed"), Some(StatusFilter::Answered));
    /// assert_eq!(StatusFilter::parse("MISSED"), None);
    /// assert_eq!(StatusFilter::Missed.display_statuses(), ["no-answer", "busy", "failed", "canceled"]);
    /// ```
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "completed" => Some(Self::Answered),
            _ => Self::ALL.into_iter().find(|s| s.as_str() == text),
        }
    }

    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missed => "missed",
            Self::Answered => "answered",
            Self::InProgress => "in-progress",
            Self::NoAnswer => "no-answer",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    /// The display statuses in the group.
    pub fn display_statuses(self) -> &'static [&'static str] {
        match self {
            Self::Missed => &["no-answer", "busy", "failed", "canceled"],
            Self::Answered => &["completed"],
            Self::InProgress => &["queued", "initiated", "ringing", "in-progress"],
            Self::NoAnswer => &["no-answer"],
            Self::Busy => &["busy"],
            Self::Failed => &["failed"],
            Self::Canceled => &["canceled"],
        }
    }
}

impl std::fmt::Display for StatusFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A page of conversations and the total matching.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationPage {
    /// The page, newest activity first.
    pub conversations: Vec<ConversationView>,
    /// How many conversations match in all (whatever the page's position).
    pub total: u64,
    /// Where the next page starts ([`ConversationQuery::with_cursor`]):
    /// the position of this page's last row, when at least one matching
    /// row comes after it; `None` on the last page (and for a `limit` of 0).
    pub next_cursor: Option<ConversationCursor>,
}

/// A position in the conversations list (keyset pagination): just after
/// the row with this `last_message_at` and id, in the list's order
/// `last_message_at DESC NULLS LAST, id DESC`.
///
/// Its text form ([`Display`](std::fmt::Display), [`ConversationCursor::parse`])
/// is opaque to clients and URL-safe: base64url (no padding) of a small
/// versioned string. Only the exact text a store handed out parses back.
///
/// ```
/// use callview_core::store::ConversationCursor;
/// use callview_core::ConversationId;
/// use chrono::{TimeZone, Utc};
///
/// let at = Utc.with_ymd_and_hms(2026, 2, 6, 15, 17, 13).unwrap();
/// let cursor = ConversationCursor::new(Some(at), ConversationId(42));
/// let text = cursor.to_string();
/// assert!(text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
/// assert_eq!(ConversationCursor::parse(&text).unwrap(), cursor);
///
/// // Rows after the cursor: older activity, the same activity with a
/// // smaller id, and every row without activity.
/// assert!(cursor.precedes(Some(at), ConversationId(41)));
/// assert!(!cursor.precedes(Some(at), ConversationId(42)));
/// assert!(cursor.precedes(None, ConversationId(1_000)));
///
/// let err = ConversationCursor::parse("not a cursor").unwrap_err();
/// assert!(err.to_string().contains("cursor"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConversationCursor {
    last_message_at: Option<DateTime<Utc>>,
    id: ConversationId,
}

impl ConversationCursor {
    /// The version tag at the start of the decoded text.
    const VERSION: &'static str = "v1";
    /// The longest text [`ConversationCursor::parse`] looks at.
    pub const MAX_LEN: usize = 64;

    /// The position just after the row with `last_message_at` (truncated to
    /// the microsecond, as both stores keep it) and `id`.
    pub fn new(last_message_at: Option<DateTime<Utc>>, id: ConversationId) -> Self {
        Self {
            last_message_at: last_message_at.map(|t| t.trunc_subsecs(6)),
            id,
        }
    }

    /// The position just after `record`.
    pub fn after(record: &ConversationRecord) -> Self {
        Self::new(record.counters.last_message_at, record.id)
    }

    /// The `last_message_at` of the row the cursor follows (`None`: it is
    /// among the rows without activity, which come last).
    pub fn last_message_at(&self) -> Option<DateTime<Utc>> {
        self.last_message_at
    }

    /// The id of the row the cursor follows.
    pub fn id(&self) -> ConversationId {
        self.id
    }

    /// Whether a row with `last_message_at` and `id` comes after the cursor
    /// in the list's order (and so belongs to the pages it starts).
    pub fn precedes(&self, last_message_at: Option<DateTime<Utc>>, id: ConversationId) -> bool {
        match (self.last_message_at, last_message_at) {
            (Some(mine), Some(theirs)) => theirs < mine || (theirs == mine && id < self.id),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => id < self.id,
        }
    }

    /// Reads the text form; anything but a text this type wrote is a
    /// [`CursorError`] saying why.
    pub fn parse(text: &str) -> Result<Self, CursorError> {
        let (last_message_at, id) = decode_cursor(text, Self::MAX_LEN, Self::VERSION)?;
        if id.contains(':') {
            return Err(CursorError::new("it does not have the cursor's form"));
        }
        let id = ConversationId(
            id.parse()
                .map_err(|_| CursorError::new("its id is not a number"))?,
        );
        let cursor = Self::new(last_message_at, id);
        // Only the canonical text (no `+1`, leading zeros, stray bits).
        if cursor.to_string() != text {
            return Err(CursorError::new("it is not in canonical form"));
        }
        Ok(cursor)
    }
}

/// A cursor's text: base64url (no padding) of
/// `<version>:<unix microseconds, empty for none>:<rest>`.
fn encode_cursor(version: &str, at: Option<DateTime<Utc>>, rest: &str) -> String {
    let at = at
        .map(|t| t.timestamp_micros().to_string())
        .unwrap_or_default();
    URL_SAFE_NO_PAD.encode(format!("{version}:{at}:{rest}"))
}

/// The time and the rest of a cursor's text ([`encode_cursor`]), or why it
/// is not one.
fn decode_cursor(
    text: &str,
    max_len: usize,
    version: &str,
) -> Result<(Option<DateTime<Utc>>, String), CursorError> {
    if text.is_empty() {
        return Err(CursorError::new("it is empty"));
    }
    if text.len() > max_len {
        return Err(CursorError::new("it is too long"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| CursorError::new("it is not base64url"))?;
    let plain = String::from_utf8(bytes).map_err(|_| CursorError::new("it is not text"))?;
    let mut parts = plain.splitn(3, ':');
    let (Some(found), Some(at), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(CursorError::new("it does not have the cursor's form"));
    };
    if found != version {
        return Err(CursorError::new("its version is not supported"));
    }
    let at = if at.is_empty() {
        None
    } else {
        let micros: i64 = at
            .parse()
            .map_err(|_| CursorError::new("its time is not a number"))?;
        Some(
            DateTime::from_timestamp_micros(micros)
                .ok_or_else(|| CursorError::new("its time is out of range"))?,
        )
    };
    Ok((at, rest.to_owned()))
}

impl std::fmt::Display for ConversationCursor {
    /// The opaque, URL-safe text form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&encode_cursor(
            Self::VERSION,
            self.last_message_at,
            &self.id.0.to_string(),
        ))
    }
}

impl std::str::FromStr for ConversationCursor {
    type Err = CursorError;

    fn from_str(text: &str) -> Result<Self, CursorError> {
        Self::parse(text)
    }
}

/// A text that is not a [`ConversationCursor`]; says why, never echoes the
/// text. Converts into [`StoreError::Invalid`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a valid cursor: {reason}")]
pub struct CursorError {
    reason: String,
}

impl CursorError {
    fn new(reason: &str) -> Self {
        Self {
            reason: reason.to_owned(),
        }
    }

    /// Why the text was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// How many rows a store holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreCounts {
    /// Contacts.
    pub contacts: u64,
    /// Conversations.
    pub conversations: u64,
    /// Calls (`messages` rows).
    pub calls: u64,
    /// Text messages (`texts` rows).
    pub texts: u64,
}

/// Whether a database's schema is the one this build of callview expects
/// ([`Store::schema_status`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SchemaStatus {
    /// The migrations this build knows (its latest version).
    pub expected: i64,
    /// The latest migration the database records as applied (0: none).
    pub applied: i64,
    /// Versions this build knows that the database does not record as
    /// applied (a database restored from an old backup, a migration that
    /// failed half-way).
    pub missing: Vec<i64>,
}

impl SchemaStatus {
    /// Every migration this build knows is applied.
    ///
    /// ```
    /// use callview_core::store::SchemaStatus;
    /// assert!(SchemaStatus { expected: 7, applied: 7, missing: vec![] }.is_current());
    /// assert!(!SchemaStatus { expected: 7, applied: 7, missing: vec![3] }.is_current());
    /// ```
    pub fn is_current(&self) -> bool {
        self.missing.is_empty() && self.applied >= self.expected
    }
}

/// How a store's connections are used at one instant
/// ([`Store::pool_status`]), for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolStatus {
    /// The most connections the pool opens.
    pub max: u32,
    /// Connections open and waiting for work.
    pub idle: u32,
    /// Connections (or permits to use one) held by a running operation.
    pub in_use: u32,
}

/// Persistent storage of contacts, conversations and calls.
///
/// Object-safe: use it as `Arc<dyn Store>`. Every write goes through one
/// [`IngestTx`] ([`Store::begin_ingest`]): the reads a plan is computed from
/// and the plan's writes happen in one database transaction, so writers in
/// other processes sharing the database never plan from stale reads.
#[async_trait]
pub trait Store: Send + Sync {
    /// Starts one unit of work: a transaction that serialises every writer
    /// of this database (in every process), in which the planner's reads
    /// and the plan's writes happen. Dropping it without
    /// [`IngestTx::commit`] rolls everything back.
    async fn begin_ingest(&self) -> Result<Box<dyn IngestTx>, StoreError>;

    /// Every stored call of every call tree that contains a stored call whose
    /// SID is in `sids`, or whose `parent_call_sid` is in `sids`.
    ///
    /// A read outside any transaction, for looking: a plan must be computed
    /// from [`IngestTx::load_trees`] instead.
    async fn load_trees(&self, sids: &[CallSid]) -> Result<Vec<StoredCall>, StoreError>;

    /// Reads a named sync cursor.
    async fn read_cursor(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Writes a named sync cursor in a write transaction of its own (see
    /// [`IngestTx::write_cursor`] to write one with a plan).
    async fn write_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_ingest().await?;
        tx.write_cursor(name, value).await?;
        tx.commit().await
    }

    /// Stored calls whose status is not final and that the refresh still
    /// follows ([`RefreshState::unfollowed_at`] unset), due by
    /// `query.due_at`, started before `query.started_before` (or never),
    /// newest first (calls without a start time first), at most
    /// `query.limit`.
    async fn unfinished_calls(
        &self,
        query: &UnfinishedQuery,
    ) -> Result<Vec<StoredCall>, StoreError>;

    /// A page of the conversations matching `query`'s filters, newest
    /// activity first, with how many match in all. The page starts
    /// `query.offset` rows in, or just after `query.after` (keyset
    /// pagination: a seek in the list's index, whatever the depth); both
    /// together are [`StoreError::Invalid`] ([`ConversationQuery::validate`]).
    /// [`ConversationPage::next_cursor`] is the position of the page's last
    /// row when more rows follow. The filters run in the
    /// database (see [`ConversationQuery`]); the status filter reads
    /// `conversations.metadata.last_display_status`, which the plan's
    /// counters set (`docs/storage.md`).
    async fn list_conversations(
        &self,
        query: &ConversationQuery,
    ) -> Result<ConversationPage, StoreError>;

    /// One conversation; `NotFound` when it does not exist.
    async fn conversation(&self, id: ConversationId) -> Result<ConversationView, StoreError>;

    /// Every call row of a conversation; `NotFound` when it does not exist.
    /// Unbounded: for checks and exports. The API pages with
    /// [`Store::messages`].
    async fn conversation_calls(&self, id: ConversationId) -> Result<Vec<StoredCall>, StoreError>;

    /// A page of a conversation's interactions, newest first, legs folded
    /// in (`call-model.md` section 4), read page by page in the database:
    /// the page's root calls by keyset on `(start_time, sid)` (calls
    /// without a start time last), then their legs. `NotFound` when the
    /// conversation does not exist.
    async fn messages(
        &self,
        id: ConversationId,
        query: &MessageQuery,
    ) -> Result<MessagePage, StoreError>;

    /// A page of a conversation's text messages, newest first (`sent_at`
    /// descending, texts without one last, then SID descending), just after
    /// `query.after` (a position in the thread: a root call's or a text's),
    /// at most `query.limit`. `NotFound` when the conversation does not
    /// exist. [`crate::thread::thread_page`] interleaves them with calls.
    async fn texts(
        &self,
        id: ConversationId,
        query: &MessageQuery,
    ) -> Result<Vec<StoredText>, StoreError>;

    /// One text message; `NotFound` when it is not stored.
    async fn text(&self, sid: &MessageSid) -> Result<StoredText, StoreError>;

    /// One contact; `NotFound` when it does not exist.
    async fn contact(&self, id: i64) -> Result<ContactRecord, StoreError>;

    /// The interaction whose root call's row id is `id` (a message of the
    /// API), with its conversation's id; `NotFound` when no root call has it.
    async fn message(&self, id: i64) -> Result<(ConversationId, Interaction), StoreError>;

    /// Up to `limit` contacts with an id above `after`, by id (for exports:
    /// pass the last id of a page to get the next).
    async fn contacts_page(&self, after: i64, limit: u32)
        -> Result<Vec<ContactRecord>, StoreError>;

    /// Up to `limit` calls (legs included) that `query` keeps, whose
    /// `messages.id` is above `after` (all when `None`), by `messages.id`:
    /// pass the last row's [`ExportRow::id`] to get the next page (a short
    /// page is the last). The conversation filters run in the database as
    /// [`Store::list_conversations`] runs them, on each call's
    /// conversation; `since`/`until` bound the call's `start_time`. A
    /// page's rows and the legs its roots' figures are computed from are
    /// read in one read transaction ([`crate::export::rows_of`]).
    async fn export_calls(
        &self,
        query: &ExportQuery,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ExportRow>, StoreError>;

    /// Every tag in use on contacts and calls, with how many carry it:
    /// tags that differ only in case count as one (shown as the most
    /// common spelling, ties to the first in order), most used first.
    async fn tags(&self) -> Result<Vec<TagCount>, StoreError>;

    /// Stores a new API token ([`crate::access`]): its name, role, hash,
    /// creation and expiry. A token of that name that has expired (and
    /// was not revoked) is marked revoked at `token.created_at` first, so
    /// its name can be used again; [`StoreError::Conflict`] when a token
    /// of that name is still active (revoke it first). Its own short write
    /// transaction, not an [`IngestTx`]: tokens share nothing with what
    /// plans write, and a token made while a sync runs need not wait for
    /// the sync's pages.
    async fn create_token(&self, token: &NewToken) -> Result<TokenRecord, StoreError>;

    /// Every stored token (revoked and expired ones included), oldest
    /// first. Never their hashes.
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;

    /// Revokes the token named `name` (every row of that name not revoked
    /// yet) at `at`; `NotFound` when there is none. Every process sharing
    /// the database refuses it from its next request on: nothing caches
    /// tokens.
    async fn revoke_token(&self, name: &str, at: DateTime<Utc>) -> Result<TokenRecord, StoreError>;

    /// The active token (not revoked, not expired at `now`) whose text
    /// hashes to `hash`, or `None`. Sets its `last_used_at` to `now` when
    /// that is at least [`crate::access::LAST_USED_GRANULARITY`] after the
    /// stored one (a store may skip the write while its writer is busy;
    /// the next use writes it), and returns the record as stored then.
    async fn authenticate(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenRecord>, StoreError>;

    /// One recording; `NotFound` when it is not stored (a deleted one is
    /// returned, with its `deleted_at`).
    async fn recording(&self, sid: &RecordingSid) -> Result<StoredRecording, StoreError>;

    /// The oldest `date_created` of the recordings (not deleted) and
    /// transcripts stored with a status that can still change: the sync
    /// reads them again from there.
    async fn unfinished_media_since(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// The recordings of the calls `sids` (deleted ones included), oldest
    /// first, and the transcripts of those recordings or calls.
    async fn media_of_calls(&self, sids: &[CallSid]) -> Result<CallMedia, StoreError>;

    /// Row counts.
    async fn counts(&self) -> Result<StoreCounts, StoreError>;

    /// Up to `limit` SIDs of root calls above `after`, in SID order (for
    /// walking every interaction: [`crate::stats::rebuild`]).
    async fn root_sids_page(
        &self,
        after: Option<&CallSid>,
        limit: u32,
    ) -> Result<Vec<CallSid>, StoreError>;

    /// The summary rows `query` names ([`crate::stats::StatsRange::query`]),
    /// kept by the ingest transaction, and the `query.top` busiest
    /// conversations of `query.period` by interactions and by missed ones.
    async fn stats(&self, query: &StatsQuery) -> Result<StatsRows, StoreError>;

    /// Checks the database answers.
    async fn health(&self) -> Result<(), StoreError>;

    /// Which of this build's migrations the database records as applied
    /// (`/readyz`). `None`: the store does not track migrations (the
    /// default).
    async fn schema_status(&self) -> Result<Option<SchemaStatus>, StoreError> {
        Ok(None)
    }

    /// How the store's connections are used now (`/metrics`), without
    /// waiting or touching the database. `None`: no pool to show (the
    /// default).
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }

    /// Takes the cross-process sync lock without waiting; `false` when
    /// another process holds it. Stores without such a lock return `true`.
    ///
    /// The lock only keeps two processes from doing the same sync work
    /// twice; exactness comes from [`IngestTx`]. A run that holds it calls
    /// [`IngestTx::confirm_sync_lock`] in each of its transactions, so a
    /// lock lost mid-run stops the run before it writes anything more.
    async fn try_lock_sync(&self) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Releases the lock taken by [`Store::try_lock_sync`].
    async fn unlock_sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// One unit of work on a store ([`Store::begin_ingest`]): one database
/// transaction on one connection, in which a writer reads what its plan
/// needs, applies the plan and commits. Stores serialise these
/// transactions across processes (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a
/// transaction-scoped advisory lock), so a second writer waits, then plans
/// from what the first committed.
///
/// Dropping it without [`IngestTx::commit`] rolls back everything it wrote.
///
/// Hold it only as long as the work needs and make no other call on the
/// same store meanwhile: other writers wait for it, and a store with a
/// single connection (an in-memory SQLite database) serves its reads on
/// the connection the transaction holds, so such a read waits for the
/// commit.
#[async_trait]
pub trait IngestTx: Send {
    /// [`Store::load_trees`], inside this transaction.
    async fn load_trees(&mut self, sids: &[CallSid]) -> Result<Vec<StoredCall>, StoreError>;

    /// The stored texts with these SIDs (those that exist).
    async fn load_texts(&mut self, sids: &[MessageSid]) -> Result<Vec<StoredText>, StoreError>;

    /// The conversations with the lookup's keys or ids that exist, each with
    /// totals over its rows whose SIDs are not in `lookup.exclude`, and
    /// which of `lookup.external_ids` are taken.
    async fn load_conversations(
        &mut self,
        lookup: &ConversationLookup,
    ) -> Result<FoundConversations, StoreError>;

    /// Writes a plan (in this order: new conversations, calls, counters,
    /// removed conversations).
    async fn apply(&mut self, plan: Plan) -> Result<(), StoreError>;

    /// Writes a named cursor with the rest of this transaction.
    async fn write_cursor(&mut self, name: &str, value: &str) -> Result<(), StoreError>;

    /// Records refresh attempts of unfinished calls (see
    /// [`crate::sync::RefreshPolicy`]); SIDs not stored are ignored.
    async fn record_refresh(&mut self, updates: &[RefreshUpdate]) -> Result<(), StoreError>;

    /// Checks that this store still holds the sync lock it took with
    /// [`Store::try_lock_sync`] (renewing its lease where it has one):
    /// [`StoreError::LockLost`] when another process has taken it over.
    async fn confirm_sync_lock(&mut self) -> Result<(), StoreError>;

    /// Edits contact `id`: reads it, applies `edit` ([`ContactEdit::apply`])
    /// and writes the result, when `expected_version` (an `If-Match`) is
    /// `None` or its current version; [`StoreError::Stale`] otherwise,
    /// `NotFound` when it does not exist. Returns the contact as written.
    async fn edit_contact(
        &mut self,
        id: i64,
        edit: &ContactEdit,
        expected_version: Option<i64>,
        meta: &EditMeta,
    ) -> Result<ContactRecord, StoreError>;

    /// The id of the contact with canonical key `key`, created (with
    /// `display` as its display form and name) when there is none yet: an
    /// imported contact is there before its first call, which then shows
    /// its name.
    async fn ensure_contact(&mut self, key: &str, display: &str) -> Result<i64, StoreError>;

    /// Edits the notes and tags of the message (a root call) whose row id
    /// is `id`, like [`IngestTx::edit_contact`]; `NotFound` for any other
    /// id (a leg's included). Returns the annotations as written.
    async fn edit_call(
        &mut self,
        id: i64,
        edit: &CallEdit,
        expected_version: Option<i64>,
        meta: &EditMeta,
    ) -> Result<Annotations, StoreError>;

    /// The stored recordings and transcripts with these SIDs (for
    /// [`crate::model::plan_media`]).
    async fn load_media(
        &mut self,
        recordings: &[RecordingSid],
        transcripts: &[String],
    ) -> Result<(Vec<StoredRecording>, Vec<Transcript>), StoreError>;

    /// The SIDs of the stored recordings not marked deleted whose
    /// `date_created` is after `after` and before `before` (each bound
    /// optional): what a complete listing of that window must show again.
    async fn recordings_created_between(
        &mut self,
        after: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<RecordingSid>, StoreError>;

    /// Writes a media plan, then sets the seed's `recording_url` (the
    /// server path of the newest recording Twilio still has) and
    /// `transcription_text` (the newest completed transcript) of every
    /// call it touches.
    async fn apply_media(&mut self, plan: MediaPlan) -> Result<(), StoreError>;

    /// Commits everything this transaction wrote.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

/// The recordings and transcripts of some calls ([`Store::media_of_calls`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallMedia {
    /// Oldest first (by `date_created`, then SID).
    pub recordings: Vec<StoredRecording>,
    /// Of those recordings, or of those calls directly.
    pub transcripts: Vec<Transcript>,
}

/// [`StoreError::Stale`] unless `expected` (an `If-Match`) is absent or the
/// `current` version of `what`: what every store's edits check.
pub fn check_version(what: &str, current: i64, expected: Option<i64>) -> Result<(), StoreError> {
    match expected {
        Some(expected) if expected != current => Err(StoreError::Stale(format!(
            "{what} is at version {current}, the edit was made on version {expected}; \
             reload it and edit again"
        ))),
        _ => Ok(()),
    }
}

/// The message (interaction) whose root call's row id is `id`, folded from
/// `calls` (the rows of its tree), with its conversation: what
/// [`Store::message`] returns; `NotFound` when no root row has the id.
pub fn message_of(
    calls: Vec<StoredCall>,
    id: i64,
) -> Result<(ConversationId, Interaction), StoreError> {
    let not_found = || StoreError::NotFound(format!("message {id}"));
    let conversation = calls
        .iter()
        .find(|c| c.id == id && c.is_root())
        .map(|c| c.conversation_id)
        .ok_or_else(not_found)?;
    let interaction = crate::model::fold_interactions(calls)
        .into_iter()
        .find(|i| i.root.id == id)
        .ok_or_else(not_found)?;
    Ok((conversation, interaction))
}

/// A tag in use ([`Store::tags`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TagCount {
    /// The tag as most often written.
    pub tag: String,
    /// Contacts carrying it.
    pub contacts: u64,
    /// Calls carrying it.
    pub calls: u64,
}

/// Groups tags case-insensitively and counts them ([`Store::tags`]):
/// `rows` are `(tag as written, carried by a contact?)`, one per carrier.
pub fn count_tags(rows: impl IntoIterator<Item = (String, bool)>) -> Vec<TagCount> {
    let mut groups: Vec<(String, TagCount, std::collections::BTreeMap<String, u64>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (tag, on_contact) in rows {
        let key = tag.to_lowercase();
        let i = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((
                key,
                TagCount {
                    tag: tag.clone(),
                    contacts: 0,
                    calls: 0,
                },
                Default::default(),
            ));
            groups.len() - 1
        });
        let (_, count, spellings) = &mut groups[i];
        if on_contact {
            count.contacts += 1;
        } else {
            count.calls += 1;
        }
        *spellings.entry(tag).or_default() += 1;
    }
    let mut out: Vec<TagCount> = groups
        .into_iter()
        .map(|(_, mut count, spellings)| {
            if let Some((tag, _)) = spellings
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
            {
                count.tag = tag;
            }
            count
        })
        .collect();
    out.sort_by(|a, b| {
        (b.contacts + b.calls)
            .cmp(&(a.contacts + a.calls))
            .then_with(|| a.tag.to_lowercase().cmp(&b.tag.to_lowercase()))
    });
    out
}

pub use crate::model::FoundConversations;

/// Which unfinished calls to refresh ([`Store::unfinished_calls`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnfinishedQuery {
    /// At most this many.
    pub limit: u32,
    /// Only calls that started before this (calls without a start time
    /// always qualify); `None`: any.
    pub started_before: Option<DateTime<Utc>>,
    /// Only calls whose next attempt is due at or before this.
    pub due_at: DateTime<Utc>,
}

impl UnfinishedQuery {
    /// Up to `limit` of every followed unfinished call, whenever it is due
    /// (up to the end of year 9999, the last instant both stores keep).
    pub fn any(limit: u32) -> Self {
        Self {
            limit,
            started_before: None,
            due_at: DateTime::from_timestamp(253_402_300_799, 0).unwrap_or_default(),
        }
    }
}

/// A new refresh state for one stored call ([`IngestTx::record_refresh`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshUpdate {
    /// The call.
    pub sid: CallSid,
    /// Its new state.
    pub state: RefreshState,
}

/// A page of a conversation's interactions ([`Store::messages`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageQuery {
    /// At most this many interactions.
    pub limit: u32,
    /// Start just after this position (a [`MessagePage::next_cursor`]).
    pub after: Option<MessageCursor>,
}

impl MessageQuery {
    /// The page size when none is asked for.
    pub const DEFAULT_LIMIT: u32 = 50;
    /// The largest page size.
    pub const MAX_LIMIT: u32 = 500;

    /// The first page of `limit` interactions.
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }
}

/// A page of interactions, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct MessagePage {
    /// The interactions, newest first.
    pub interactions: Vec<Interaction>,
    /// Where the next page starts, when more interactions follow.
    pub next_cursor: Option<MessageCursor>,
}

/// A position in a conversation's thread (keyset pagination): just after
/// the root call (or text) with this start time (or `sent_at`) and SID, in
/// the order `time DESC NULLS LAST, sid DESC` that calls and texts share.
///
/// Its text form is opaque and URL-safe, like [`ConversationCursor`]'s.
///
/// ```
/// use callview_core::store::MessageCursor;
/// use chrono::{TimeZone, Utc};
/// let at = Utc.with_ymd_and_hms(2026, 2, 6, 15, 17, 13).unwrap();
/// let cursor = MessageCursor::new(Some(at), "CA1").unwrap();
/// assert_eq!(MessageCursor::parse(&cursor.to_string()).unwrap(), cursor);
/// assert!(MessageCursor::parse("nope").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MessageCursor {
    start_time: Option<DateTime<Utc>>,
    /// A root call's SID or a text's: both share the thread's order.
    sid: String,
}

impl MessageCursor {
    const VERSION: &'static str = "m1";
    /// The longest text [`MessageCursor::parse`] looks at.
    pub const MAX_LEN: usize = 128;

    /// The position just after the root call or text at `start_time`
    /// (truncated to the microsecond) with `sid`; `None` for an empty SID.
    pub fn new(start_time: Option<DateTime<Utc>>, sid: &str) -> Option<Self> {
        let sid = sid.trim();
        (!sid.is_empty()).then(|| Self::at(start_time, sid.to_owned()))
    }

    fn at(start_time: Option<DateTime<Utc>>, sid: String) -> Self {
        Self {
            start_time: start_time.map(|t| t.trunc_subsecs(6)),
            sid,
        }
    }

    /// The position just after a text in a thread (texts and root calls
    /// share one order: time, then SID).
    pub fn after_text(text: &StoredText) -> Self {
        Self::at(text.text.at(), text.text.sid.to_string())
    }

    /// The position just after `interaction`.
    pub fn after(interaction: &Interaction) -> Self {
        Self::at(
            interaction.root.call.start_time,
            interaction.root.call.sid.to_string(),
        )
    }

    /// The start time of the root the cursor follows.
    pub fn start_time(&self) -> Option<DateTime<Utc>> {
        self.start_time
    }

    /// The SID of the root call or text the cursor follows.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Reads the text form; anything else is a [`CursorError`].
    pub fn parse(text: &str) -> Result<Self, CursorError> {
        let (start_time, sid) = decode_cursor(text, Self::MAX_LEN, Self::VERSION)?;
        let cursor =
            Self::new(start_time, &sid).ok_or_else(|| CursorError::new("its SID is empty"))?;
        if cursor.to_string() != text {
            return Err(CursorError::new("it is not in canonical form"));
        }
        Ok(cursor)
    }
}

impl std::fmt::Display for MessageCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&encode_cursor(
            Self::VERSION,
            self.start_time,
            self.sid.as_str(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_770_000_000 + secs, 123_456_000)
            .unwrap()
    }

    #[test]
    fn cursors_round_trip_and_are_url_safe() {
        for cursor in [
            ConversationCursor::new(Some(at(0)), ConversationId(1)),
            ConversationCursor::new(Some(at(-1_770_000_000 - 86_400)), ConversationId(i64::MAX)),
            ConversationCursor::new(None, ConversationId(42)),
            ConversationCursor::new(None, ConversationId(-3)),
        ] {
            let text = cursor.to_string();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{text}"
            );
            assert!(text.len() <= ConversationCursor::MAX_LEN, "{text}");
            assert_eq!(ConversationCursor::parse(&text), Ok(cursor));
            assert_eq!(text.parse::<ConversationCursor>(), Ok(cursor));
        }
    }

    #[test]
    fn cursors_keep_microseconds() {
        let precise = Utc.timestamp_opt(1_770_000_000, 123_456_789).unwrap();
        let cursor = ConversationCursor::new(Some(precise), ConversationId(1));
        assert_eq!(
            cursor.last_message_at().unwrap().timestamp_nanos_opt(),
            Some(1_770_000_000_123_456_000)
        );
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let encode = |plain: &str| URL_SAFE_NO_PAD.encode(plain);
        let valid = ConversationCursor::new(Some(at(0)), ConversationId(9)).to_string();
        for (text, why) in [
            (String::new(), "empty"),
            ("x".repeat(ConversationCursor::MAX_LEN + 1), "too long"),
            ("not a cursor!".to_owned(), "base64url"),
            (format!("{valid}="), "base64url"),
            (encode("v1:5"), "form"),
            (encode("v1:5:6:7"), "form"),
            (encode("v2:5:6"), "version"),
            (encode("v1:soon:6"), "time"),
            (encode("v1:99999999999999999999:6"), "time"),
            (encode(&format!("v1:{}:6", i64::MAX)), "out of range"),
            (encode("v1:5:x"), "id"),
            (encode("v1:5:"), "id"),
            (encode("v1:+5:6"), "canonical"),
            (encode("v1:5:06"), "canonical"),
            (URL_SAFE_NO_PAD.encode([0xff, 0xfe]), "not text"),
        ] {
            let err = ConversationCursor::parse(&text).unwrap_err();
            assert!(err.reason().contains(why), "{text:?}: {err}");
            assert!(err.to_string().contains("cursor"), "{err}");
            let store: StoreError = err.into();
            assert!(matches!(store, StoreError::Invalid(_)), "{store:?}");
        }
    }

    #[test]
    fn precedes_follows_the_list_order() {
        // The list's order, newest first, rows without activity last.
        let rows = [
            (Some(at(10)), 3),
            (Some(at(10)), 2),
            (Some(at(5)), 9),
            (Some(at(5)), 1),
            (None, 8),
            (None, 4),
        ];
        for (i, (t, id)) in rows.iter().enumerate() {
            let cursor = ConversationCursor::new(*t, ConversationId(*id));
            let after: Vec<_> = rows
                .iter()
                .filter(|(t, id)| cursor.precedes(*t, ConversationId(*id)))
                .copied()
                .collect();
            assert_eq!(after, rows[i + 1..], "after {t:?}/{id}");
        }
    }

    #[test]
    fn a_cursor_and_an_offset_are_refused_together() {
        let cursor = ConversationCursor::new(None, ConversationId(1));
        assert!(ConversationQuery::page(5, 0)
            .with_cursor(cursor)
            .validate()
            .is_ok());
        let err = ConversationQuery::page(5, 1)
            .with_cursor(cursor)
            .validate()
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(m) if m.contains("offset")));
        assert!(ConversationQuery::page(5, 9).validate().is_ok());
    }
}
