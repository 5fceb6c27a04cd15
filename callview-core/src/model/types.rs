//! Rows as the call model sees them: what a store holds and hands back.

use chrono::{DateTime, Utc};

use crate::call::{Call, CallSid, CallStatus};
use crate::endpoint::ActualDirection;
use crate::text::MessageSid;

use super::texts::{MessageType, NewestText};

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

/// The status an interaction shows (`call-model.md` section 4): how it
/// ended, or its live status while it runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DisplayStatus {
    /// Somebody talked.
    Completed,
    /// Nobody answered (also a completed call without talk time).
    NoAnswer,
    /// The callee was busy.
    Busy,
    /// The call could not be placed.
    Failed,
    /// The caller hung up before an answer.
    Canceled,
    /// Live: waiting to be dialled.
    Queued,
    /// Live: dialling.
    Initiated,
    /// Live: ringing.
    Ringing,
    /// Live: connected.
    InProgress,
    /// A status Twilio sent that callview does not know, kept as sent.
    Other(String),
}

impl DisplayStatus {
    /// The wire form (`completed`, `no-answer`, `in-progress`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Completed => "completed",
            Self::NoAnswer => "no-answer",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Queued => "queued",
            Self::Initiated => "initiated",
            Self::Ringing => "ringing",
            Self::InProgress => "in-progress",
            Self::Other(text) => text,
        }
    }

    /// Reads the wire form; an unknown text is [`DisplayStatus::Other`].
    ///
    /// ```
    /// use callview_core::model::DisplayStatus;
    /// assert_eq!(DisplayStatus::parse("no-answer"), DisplayStatus::NoAnswer);
    /// assert_eq!(DisplayStatus::parse("odd").as_str(), "odd");
    /// assert!(DisplayStatus::Ringing.is_live());
    /// ```
    pub fn parse(text: &str) -> Self {
        match text {
            "completed" => Self::Completed,
            "no-answer" => Self::NoAnswer,
            "busy" => Self::Busy,
            "failed" => Self::Failed,
            "canceled" => Self::Canceled,
            "queued" => Self::Queued,
            "initiated" => Self::Initiated,
            "ringing" => Self::Ringing,
            "in-progress" => Self::InProgress,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether the interaction is still running.
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            Self::Queued | Self::Initiated | Self::Ringing | Self::InProgress
        )
    }

    /// The display status of a call with no legs, from its status and
    /// duration: `completed` when it lasted, else how it ended (a final
    /// call without talk time is `no-answer` unless busy, failed or
    /// canceled), else its live status.
    ///
    /// ```
    /// use callview_core::CallStatus;
    /// use callview_core::model::DisplayStatus;
    /// assert_eq!(DisplayStatus::of_lone_call(&CallStatus::Completed, 30), DisplayStatus::Completed);
    /// assert_eq!(DisplayStatus::of_lone_call(&CallStatus::Completed, 0), DisplayStatus::NoAnswer);
    /// assert_eq!(DisplayStatus::of_lone_call(&CallStatus::Busy, 0), DisplayStatus::Busy);
    /// ```
    pub fn of_lone_call(status: &CallStatus, talk_time: u32) -> Self {
        if talk_time > 0 {
            Self::Completed
        } else if status.is_final() {
            match status {
                CallStatus::Busy => Self::Busy,
                CallStatus::Failed => Self::Failed,
                CallStatus::Canceled => Self::Canceled,
                _ => Self::NoAnswer,
            }
        } else {
            Self::parse(status.as_str())
        }
    }
}

impl DisplayStatus {
    /// What a stored row says: the `display_status` callview wrote, else
    /// (a row of the seed's original application) the display status of
    /// the call alone from its status and duration columns.
    /// An empty text counts as missing.
    pub fn from_stored(stored: Option<&str>, status: &CallStatus, duration_secs: u32) -> Self {
        stored
            .filter(|s| !s.trim().is_empty())
            .map_or_else(|| Self::of_lone_call(status, duration_secs), Self::parse)
    }
}

impl std::fmt::Display for DisplayStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for DisplayStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for DisplayStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for DisplayStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self::parse(&text))
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
    pub display_status: DisplayStatus,
    /// A leg placed under its parent: `true`; a root: whether it folded in
    /// at least one leg.
    pub merged_from_parent: bool,
}

impl Derived {
    /// What a stored row says, as a store read it: the `metadata` fields
    /// callview writes, each `None` when the row lacks it (rows written by
    /// the seed's original application). The call model, not the store,
    /// decides what a missing field means: the actual direction from
    /// Twilio's direction, the display status of the call alone, and
    /// `merged_from_parent` from whether it has a parent. Every store reads
    /// rows through this, so all of them show the same thing.
    ///
    /// ```
    /// use callview_core::{ActualDirection, Call, CallDirection, CallSid, CallStatus};
    /// use callview_core::model::{Derived, DisplayStatus};
    /// let mut call = Call::new(CallSid::new("CA1").unwrap(), CallStatus::Completed, CallDirection::OutboundApi);
    /// call.duration = Some(0);
    /// let d = Derived::from_stored(&call, None, None, None);
    /// assert_eq!(d.actual_direction, ActualDirection::Outbound);
    /// assert_eq!(d.display_status, DisplayStatus::NoAnswer);
    /// assert!(!d.merged_from_parent);
    /// ```
    pub fn from_stored(
        call: &Call,
        actual_direction: Option<&str>,
        display_status: Option<&str>,
        merged_from_parent: Option<bool>,
    ) -> Self {
        Self {
            actual_direction: ActualDirection::from_stored(actual_direction, &call.direction),
            display_status: DisplayStatus::from_stored(
                display_status,
                &call.status,
                call.duration_secs(),
            ),
            merged_from_parent: merged_from_parent.unwrap_or(call.parent_call_sid.is_some()),
        }
    }
}

/// How the refresh of unfinished calls follows one stored call: how often
/// it asked Twilio again without seeing the call finish, when it asks next,
/// and since when it no longer asks (the call is kept, shown as no longer
/// followed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefreshState {
    /// Attempts so far that did not see the call finish.
    pub attempts: u32,
    /// When the next attempt is due; `None`: at once.
    pub due_at: Option<DateTime<Utc>>,
    /// Set when the refresh gave up on the call.
    pub unfollowed_at: Option<DateTime<Utc>>,
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
    /// How the refresh of unfinished calls follows it.
    pub refresh: RefreshState,
    /// Notes and tags people wrote on it (syncs never change them).
    pub annotations: crate::annotations::Annotations,
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
    /// Its interaction's display status.
    pub display_status: DisplayStatus,
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
    /// Text messages.
    pub texts: u64,
    /// The newest text.
    pub newest_text: Option<NewestText>,
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
    /// Display status of the newest root call's interaction (what the
    /// status filter reads).
    #[serde(default)]
    pub last_display_status: Option<DisplayStatus>,
    /// Number of text messages (SMS and MMS).
    #[serde(default)]
    pub total_messages: u64,
    /// The kind of the newest message: a call, or a text when the newest
    /// text is newer than every call.
    #[serde(default)]
    pub last_message_type: Option<MessageType>,
    /// SID of the newest text.
    #[serde(default)]
    pub last_text_sid: Option<MessageSid>,
}
