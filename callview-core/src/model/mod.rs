//! The call model: how raw calls become contacts, conversations and
//! messages (`call-model.md` sections 3 to 5). Everything here is pure.
//!
//! * [`facts`]: what the statistics keep of each interaction.
//! * [`interaction`]: one entry per root call with its legs folded in, with
//!   talk/wait time, display status and the human-readable texts.
//! * [`media`]: which versions of recordings and transcripts to keep, and
//!   which recordings Twilio no longer has.
//! * [`plan`]: given a batch of calls and what the store holds about the call
//!   trees they touch, compute the exact writes (the [`Plan`]).

pub mod facts;
pub mod interaction;
pub mod media;
pub mod plan;
pub mod texts;
mod types;

pub use facts::{Cost, InteractionFacts, Outcome};
pub use interaction::{fold_interactions, summarize, Interaction, Summary};
pub use media::{plan_media, MediaBatch, MediaPlan, RecordingWrite, StoredRecording};
pub use plan::{
    CallWrite, ConversationLookup, ConversationRef, CounterUpdate, FoundConversations,
    NewConversation, Plan, PlanStats, Prepared,
};
pub use texts::{IncomingText, MessageType, NewestText, StoredText, TextWrite, ThreadKinds};
pub use types::{
    Aggregate, ConversationCounters, ConversationId, ConversationState, Derived, DisplayStatus,
    NewestRoot, RefreshState, StoredCall,
};
