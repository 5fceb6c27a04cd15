//! The [`Store`] trait: what the sync engine and the API need from a database.
//!
//! Implementations live in their own crates (`callview-sqlite`,
//! `callview-postgres`); the generic conformance suite in
//! `callview_core::testkit` (feature `testkit`) checks them all the same way.
//! No database type appears here.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::call::CallSid;
use crate::endpoint::{ActualDirection, Normalizer};
use crate::model::{
    fold_interactions, ConversationCounters, ConversationId, ConversationLookup, ConversationState,
    Interaction, Plan, StoredCall,
};

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
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
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
}

/// Which conversations to list: a page, and optional filters that every
/// store applies in SQL (all given filters must hold).
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
        }
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

    /// Whether any filter is set.
    pub fn has_filters(&self) -> bool {
        self.search.is_some()
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
/// [`Search::digits`], or when its display name, display form or key
/// contains [`Search::text`] (case-insensitive; SQLite folds ASCII letters
/// only).
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
    /// How many conversations match in all.
    pub total: u64,
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
}

/// Persistent storage of contacts, conversations and calls.
///
/// Object-safe: use it as `Arc<dyn Store>`. Every method is a complete unit:
/// [`Store::apply`] is one transaction.
#[async_trait]
pub trait Store: Send + Sync {
    /// Every stored call of every call tree that contains a stored call whose
    /// SID is in `sids`, or whose `parent_call_sid` is in `sids`.
    async fn load_trees(&self, sids: &[CallSid]) -> Result<Vec<StoredCall>, StoreError>;

    /// The conversations with the lookup's keys or ids that exist, each with
    /// totals over its rows whose SIDs are not in `lookup.exclude`.
    async fn load_conversations(
        &self,
        lookup: &ConversationLookup,
    ) -> Result<Vec<ConversationState>, StoreError>;

    /// Applies a plan atomically (all of it or nothing).
    async fn apply(&self, plan: &Plan) -> Result<(), StoreError>;

    /// Reads a named sync cursor.
    async fn read_cursor(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Writes a named sync cursor.
    async fn write_cursor(&self, name: &str, value: &str) -> Result<(), StoreError>;

    /// The latest start time of any stored call.
    async fn newest_call_start(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Up to `limit` stored calls whose status is not final, oldest first.
    async fn unfinished_calls(&self, limit: u32) -> Result<Vec<StoredCall>, StoreError>;

    /// Sets the recording URL of a stored call; `NotFound` when it is not stored.
    async fn set_recording_url(&self, sid: &CallSid, url: Option<&str>) -> Result<(), StoreError>;

    /// A page of the conversations matching `query`'s filters, newest
    /// activity first, with how many match in all. The filters run in the
    /// database (see [`ConversationQuery`]); the status filter reads
    /// `conversations.metadata.last_display_status`, which
    /// [`Store::apply`] keeps equal to the display status of the row named
    /// by `last_root_sid` (`docs/storage.md`).
    async fn list_conversations(
        &self,
        query: &ConversationQuery,
    ) -> Result<ConversationPage, StoreError>;

    /// One conversation; `NotFound` when it does not exist.
    async fn conversation(&self, id: ConversationId) -> Result<ConversationView, StoreError>;

    /// Every call row of a conversation; `NotFound` when it does not exist.
    async fn conversation_calls(&self, id: ConversationId) -> Result<Vec<StoredCall>, StoreError>;

    /// Row counts.
    async fn counts(&self) -> Result<StoreCounts, StoreError>;

    /// Checks the database answers.
    async fn health(&self) -> Result<(), StoreError>;

    /// Takes the cross-process sync lock without waiting; `false` when
    /// another process holds it. Stores without such a lock return `true`.
    async fn try_lock_sync(&self) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Releases the lock taken by [`Store::try_lock_sync`].
    async fn unlock_sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// A conversation's interactions, newest first, legs folded in
    /// (`call-model.md` section 4).
    async fn messages(&self, id: ConversationId) -> Result<Vec<Interaction>, StoreError> {
        Ok(fold_interactions(self.conversation_calls(id).await?))
    }
}
