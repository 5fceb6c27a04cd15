//! Rows as the call model sees them: what a store holds and hands back.

use chrono::{DateTime, Utc};

use crate::call::{Call, CallSid};
use crate::endpoint::ActualDirection;

/// A conversation's database id.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ConversationId(pub i64);

impl std::fmt::Display for ConversationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What the call model derives for one stored call and keeps in its row's
/// `metadata` (`actual_direction`, `display_status`, `merged_from_parent`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Derived {
    /// For a root call, the direction of its whole interaction; for a leg,
    /// its own.
    pub actual_direction: ActualDirection,
    /// For a root call, the interaction's display status; for a leg, its own.
    pub display_status: String,
    /// A leg placed under its parent: `true`; a root: whether it folded in
    /// at least one leg.
    pub merged_from_parent: bool,
}

/// One stored call (a `messages` row) as a store returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredCall {
    /// The row id (`messages.id`).
    pub id: i64,
    /// The conversation it is in.
    pub conversation_id: ConversationId,
    /// The root of its call tree (itself for a root call).
    pub root_sid: CallSid,
    /// The call as last received from Twilio.
    pub call: Call,
    /// What the model derived when it was written.
    pub derived: Derived,
    /// The recording's URL, when the call has one.
    pub recording_url: Option<String>,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

impl StoredCall {
    /// Whether this call is the root of its tree.
    pub fn is_root(&self) -> bool {
        self.root_sid == self.call.sid
    }
}

/// The newest root call of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewestRoot {
    /// Its start time (`None` sorts oldest).
    pub start_time: Option<DateTime<Utc>>,
    /// Its SID (ties broken by the greater SID).
    pub sid: CallSid,
    /// Its interaction's actual direction.
    pub direction: ActualDirection,
}

impl NewestRoot {
    /// The ordering key: newer is greater; a missing start time is oldest.
    pub fn order_key(&self) -> (bool, Option<DateTime<Utc>>, &CallSid) {
        (self.start_time.is_some(), self.start_time, &self.sid)
    }
}

/// Totals over a set of a conversation's rows (in the planner: the rows the
/// batch does not touch).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Aggregate {
    /// Rows of any kind.
    pub calls: u64,
    /// Root calls.
    pub root_calls: u64,
    /// Sum of root calls' durations, seconds.
    pub root_duration: u64,
    /// The newest root call.
    pub newest_root: Option<NewestRoot>,
    /// The latest start time of any call.
    pub last_call_at: Option<DateTime<Utc>>,
}

/// A stored conversation as the planner needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationState {
    /// Its id.
    pub id: ConversationId,
    /// Its canonical key (`contacts.phone_number`).
    pub key: String,
    /// Totals over its rows, excluding the calls named in the lookup.
    pub rest: Aggregate,
}

/// A conversation's counters (`call-model.md` section 5).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConversationCounters {
    /// Number of root calls.
    pub total_calls: u64,
    /// Sum of root calls' durations, seconds.
    pub total_duration: u64,
    /// Actual direction of the newest root call.
    pub last_call_direction: Option<ActualDirection>,
    /// Start time of the newest call.
    pub last_message_at: Option<DateTime<Utc>>,
    /// SID of the newest root call (the conversation's last message).
    pub last_root_sid: Option<CallSid>,
}
