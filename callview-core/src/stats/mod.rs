//! Statistics of the stored calls (`/api/stats`, the dashboard).
//!
//! Every ingest transaction keeps, per interaction (root call), the
//! figures statistics count ([`crate::model::InteractionFacts`], computed
//! by the planner) and adds their change to summary rows per quarter hour
//! ([`counters`]). A statistics request reads the summary rows of its
//! period ([`crate::Store::stats`]) and folds them into local calendar
//! buckets ([`range`], [`report`]): the answer costs the same whatever the
//! number of calls.
//!
//! * **answered**: display status `completed`; **missed**: `no-answer`,
//!   `busy`, `failed` or `canceled` (the list's `status=missed`); **live**:
//!   still running.
//! * **wait time**: the interaction's duration minus its talk time, over
//!   answered and missed interactions; **talk time** over answered ones.
//! * An interaction counts at its root's start time (else, never dialled,
//!   its creation time).

pub mod counters;
pub mod range;
mod rebuild;
pub mod report;

pub use counters::{slot_deltas, Counters, FactsRow, SlotKey, SLOT_SECONDS};
pub use range::{Bound, Bucket, RangeError, StatsRange};
pub use rebuild::{ensure_built, rebuild, REBUILD_CURSOR};
pub use report::{LineRow, SlotRow, StatsReport, StatsRows, TopContact};

/// How many conversations `top_contacts` lists.
pub const TOP_CONTACTS: u32 = 10;
