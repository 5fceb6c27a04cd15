//! Statistics of the stored calls (`/api/stats`, the dashboard).
//!
//! Every ingest transaction keeps, per interaction (root call), the
//! figures statistics count ([`crate::model::InteractionFacts`], computed
//! by the planner) and adds their change to summary rows per quarter hour
//! and per hour, and to per-conversation totals ([`counters`]). A
//! statistics request reads the hour rows of its period, and quarter-hour
//! rows where a local bucket starts inside an hour ([`query`]), and folds
//! them into local calendar buckets ([`range`], [`report`]): the answer
//! costs the same whatever the number of calls.
//!
//! * **answered**: display status `completed`; **missed**: `no-answer`,
//!   `busy`, `failed` or `canceled` (the list's `status=missed`); **live**:
//!   still running.
//! * **wait time**: the interaction's duration minus its talk time, over
//!   answered and missed interactions; **talk time** over answered ones.
//! * An interaction counts at its root's start time (else, never dialled,
//!   its creation time).

pub mod busiest;
pub mod counters;
pub mod query;
pub mod range;
mod rebuild;
pub mod report;

pub use counters::{
    deltas, ConversationTotals, Counters, Deltas, FactsRow, SlotKey, SLOTS_PER_HOUR, SLOT_SECONDS,
};
pub use query::StatsQuery;
pub use range::{Bound, Bucket, RangeError, StatsRange};
pub use rebuild::{ensure_built, rebuild, REBUILD_CURSOR};
pub use report::{HeatRow, SlotRow, StatsReport, StatsRows, TextCounts, TopContact};

/// How many conversations `top_contacts` lists.
pub const TOP_CONTACTS: u32 = 10;
