//! Text messages as the model sees them: a stored text, a text to write, and
//! what a conversation's counters keep of its newest text.
//!
//! A text needs no folding: it lands, alone, in the conversation of its
//! external party ([`crate::PartyRules::party_of`]), which its own `from`
//! and `to` decide. The planner ([`super::Prepared::with_texts`]) merges
//! texts into the plan of a batch beside calls, so a conversation created
//! by a text is the one a later call finds, and counters are recomputed
//! from rows of both kinds.

use chrono::{DateTime, Utc};

use crate::endpoint::ActualDirection;
use crate::text::{MessageSid, Text, TextKind, TextMedia};

use super::plan::ConversationRef;
use super::types::ConversationId;

/// A `texts` row as a store hands it back.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredText {
    /// `texts.id`.
    pub id: i64,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// The message, parsed from the stored record.
    pub text: Text,
    /// Inbound, outbound or internal, from the business's point of view.
    pub actual_direction: ActualDirection,
    /// Its media (MMS), as listed when it was stored.
    pub media: Vec<TextMedia>,
}

/// One `texts` row to insert or update.
#[derive(Clone, Debug, PartialEq)]
pub struct TextWrite {
    /// The message as it should be stored.
    pub text: Text,
    /// Its conversation.
    pub conversation: ConversationRef,
    /// Inbound, outbound or internal.
    pub actual_direction: ActualDirection,
    /// Its media.
    pub media: Vec<TextMedia>,
}

impl TextWrite {
    /// `texts.media` as JSON text.
    pub fn media_json(&self) -> String {
        serde_json::to_string(&self.media).expect("media always serialize")
    }

    /// The record as JSON text (`texts.raw`).
    pub fn raw_json(&self) -> String {
        self.text.raw.to_string()
    }
}

/// A text arriving in a batch: the record and, when it was listed, its
/// media (`None` keeps what is stored).
#[derive(Clone, Debug, PartialEq)]
pub struct IncomingText {
    /// The message.
    pub text: Text,
    /// Its media list, when fetched.
    pub media: Option<Vec<TextMedia>>,
}

impl From<Text> for IncomingText {
    fn from(text: Text) -> Self {
        Self { text, media: None }
    }
}

/// The newest text of a conversation, as its counters need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewestText {
    /// When it was sent ([`Text::at`]; `None` sorts oldest).
    pub at: Option<DateTime<Utc>>,
    /// Its SID (ties broken by the greater SID).
    pub sid: MessageSid,
    /// SMS or MMS.
    pub kind: TextKind,
}

impl NewestText {
    /// The ordering key: newer is greater; a missing time is oldest.
    pub fn order_key(&self) -> (bool, Option<DateTime<Utc>>, &MessageSid) {
        (self.at.is_some(), self.at, &self.sid)
    }

    /// The newer of `current` and `candidate`.
    pub fn newer(current: Option<Self>, candidate: Option<&Self>) -> Option<Self> {
        match (current, candidate) {
            (Some(c), Some(n)) if n.order_key() > c.order_key() => Some(n.clone()),
            (Some(c), _) => Some(c),
            (None, n) => n.cloned(),
        }
    }
}

/// What a conversation's newest message is: the `type` of the seed's
/// message model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// A call (an interaction, legs folded in).
    Call,
    /// A text without media.
    Sms,
    /// A text with media.
    Mms,
}

impl MessageType {
    /// `call`, `sms` or `mms`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Sms => "sms",
            Self::Mms => "mms",
        }
    }

    /// Reads `call`, `sms` or `mms`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "call" => Some(Self::Call),
            "sms" => Some(Self::Sms),
            "mms" => Some(Self::Mms),
            _ => None,
        }
    }
}

impl From<TextKind> for MessageType {
    fn from(kind: TextKind) -> Self {
        match kind {
            TextKind::Sms => Self::Sms,
            TextKind::Mms => Self::Mms,
        }
    }
}

impl serde::Serialize for MessageType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for MessageType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        Self::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown message type {text:?}")))
    }
}

/// Which kinds of messages to show: a thread's items, or the conversations
/// listed (the API's `type` filter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ThreadKinds {
    /// Calls and texts.
    #[default]
    All,
    /// Calls only (conversations with a call).
    Calls,
    /// Texts (SMS and MMS) only (conversations with a text).
    Texts,
}

impl ThreadKinds {
    /// Reads the API's `type`: `call`, `sms` (texts of either kind), `mms`
    /// is accepted as `sms`; `all` or empty for both.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "" | "all" => Some(Self::All),
            "call" | "calls" => Some(Self::Calls),
            "sms" | "mms" | "text" | "texts" => Some(Self::Texts),
            _ => None,
        }
    }
}
