//! # callview-core
//!
//! Keeps a business's Twilio call history as conversations: one thread per
//! customer phone number, with forwarded and transferred legs folded into the
//! call they belong to.
//!
//! * [`access`]: named API tokens and their roles.
//! * [`call`]: the typed Twilio call record.
//! * [`endpoint`]: what a `from`/`to` value is, canonical and display forms,
//!   the external party of a call.
//! * [`export`]: every stored call (legs included) as CSV or JSON Lines,
//!   read a page at a time.
//! * [`import`]: Twilio call history dumps (the CLI's JSON, REST pages,
//!   JSON Lines) read as a stream and imported as a sync would store them.
//! * [`model`]: the pure call model: folding legs into interactions and
//!   planning the writes for a batch of calls.
//! * [`recording`]: call recordings and their transcripts (both of
//!   Twilio's products).
//! * [`store`]: the [`Store`] trait that database crates implement.
//! * [`stats`]: statistics of the stored calls, kept exact by every write.
//! * [`sync`]: the [`SyncEngine`], which pages through Twilio and applies plans.
//! * [`twilio`]: the [`TwilioClient`] trait and its HTTP implementation
//!   (feature `http`, on by default).
//!
//! No database or HTTP-server type appears in this crate's public API.
//! Without the `http` feature no HTTP client is built either: an embedder
//! with its own HTTP stack implements [`TwilioClient`].
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod access;
pub mod annotations;
pub mod call;
pub mod callback;
pub mod endpoint;
pub mod export;
pub mod import;
mod media_sync;
pub mod model;
pub mod raw_uris;
pub mod recording;
pub mod stats;
pub mod store;
pub mod sync;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod text;
pub mod text_callback;
pub mod text_sync;
pub mod thread;
pub mod twilio;
mod wire;

pub use call::{Call, CallDirection, CallParseError, CallSid, CallStatus};
pub use endpoint::{ActualDirection, Endpoint, EndpointKind, Normalizer, OwnedNumbers, PartyRules};
pub use model::{ConversationId, Interaction, Plan, StoredCall};
pub use store::{Store, StoreError};
pub use sync::{Preset, StopFlag, SyncEngine, SyncError, SyncMode, SyncReport};
pub use twilio::{TwilioClient, TwilioError};
