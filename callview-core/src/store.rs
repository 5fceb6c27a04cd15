//! The [`Store`] trait: what the sync engine and the API need from a database.
//!
//! Implementations live in their own crates (`callview-sqlite`,
//! `callview-postgres`); the generic conformance suite in
//! `callview_core::testkit` (feature `testkit`) checks them all the same way.
//! No database type appears here.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::call::CallSid;
use crate::model::{
    fold_interactions, ConversationCounters, ConversationId, ConversationLookup,
    ConversationState, Interaction, Plan, StoredCall,
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

/// Which conversations to list.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConversationQuery {
    /// At most this many.
    pub limit: u32,
    /// Skip this many.
    pub offset: u64,
}

impl ConversationQuery {
    /// A page of `limit` starting at `offset`.
    pub fn page(limit: u32, offset: u64) -> Self {
        Self { limit, offset }
    }
}

impl Default for ConversationQuery {
    fn default() -> Self {
        Self::page(20, 0)
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

    /// A page of conversations, newest activity first, with the total.
    async fn list_conversations(
        &self,
        query: &ConversationQuery,
    ) -> Result<ConversationPage, StoreError>;

    /// One conversation; `NotFound` when it does not exist.
    async fn conversation(&self, id: ConversationId) -> Result<ConversationView, StoreError>;

    /// Every call row of a conversation; `NotFound` when it does not exist.
    async fn conversation_calls(&self, id: ConversationId)
        -> Result<Vec<StoredCall>, StoreError>;

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
