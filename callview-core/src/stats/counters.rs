//! The summary rows statistics read: per quarter hour (UTC), per currency
//! and per business line, the counters of the interactions that started
//! then. Stores keep them exact in the ingest transaction by adding what
//! [`slot_deltas`] computes from the figures they replace.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::call::CallSid;
use crate::endpoint::ActualDirection;
use crate::model::{InteractionFacts, Outcome};

/// Seconds per slot: a quarter hour, so that a local day, hour, week or
/// month starts on a slot boundary in every time zone in use today
/// (their offsets and daylight-saving changes are whole quarter hours).
pub const SLOT_SECONDS: i64 = 900;

/// The lower edges of the wait-time distribution's bins, seconds (the
/// last bin is open).
pub const WAIT_EDGES: [u32; 15] = [0, 5, 10, 15, 20, 25, 30, 40, 50, 60, 90, 120, 180, 300, 600];

/// The lower edges of the talk-time distribution's bins, seconds.
pub const TALK_EDGES: [u32; 12] = [0, 10, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600];

const FIXED: [&str; 13] = [
    "inbound",
    "inbound_answered",
    "inbound_missed",
    "outbound",
    "outbound_answered",
    "outbound_missed",
    "internal",
    "internal_answered",
    "internal_missed",
    "live",
    "talk_sum",
    "wait_sum",
    "cost_nanos",
];

/// How many counters a summary row holds.
pub const WIDTH: usize = FIXED.len() + WAIT_EDGES.len() + TALK_EDGES.len();

const LIVE: usize = 9;
const TALK_SUM: usize = 10;
const WAIT_SUM: usize = 11;
const COST_NANOS: usize = 12;
const WAIT_BINS: usize = FIXED.len();
const TALK_BINS: usize = WAIT_BINS + WAIT_EDGES.len();

/// The summary table's counter columns, in [`Counters`] order:
/// `inbound`, `inbound_answered`, ..., `wait_0` ... `wait_14`,
/// `talk_0` ... `talk_11`.
pub fn columns() -> Vec<String> {
    let mut names: Vec<String> = FIXED.iter().map(|s| (*s).to_owned()).collect();
    names.extend((0..WAIT_EDGES.len()).map(|i| format!("wait_{i}")));
    names.extend((0..TALK_EDGES.len()).map(|i| format!("talk_{i}")));
    names
}

/// One summary row's counters (or a sum or difference of rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters(pub [i64; WIDTH]);

impl Default for Counters {
    fn default() -> Self {
        Self([0; WIDTH])
    }
}

/// Where a direction's three counters (interactions, answered, missed)
/// start in [`FIXED`].
fn direction_offset(direction: ActualDirection) -> usize {
    match direction {
        ActualDirection::Inbound => 0,
        ActualDirection::Outbound => 3,
        ActualDirection::Internal => 6,
    }
}

fn bin(edges: &[u32], value: u32) -> usize {
    edges
        .partition_point(|edge| *edge <= value)
        .saturating_sub(1)
}

impl Counters {
    /// The counters of one interaction.
    pub fn of(row: &FactsRow) -> Self {
        let mut c = Self::default();
        let d = direction_offset(row.direction);
        c.0[d] = 1;
        match row.outcome {
            Outcome::Answered => c.0[d + 1] = 1,
            Outcome::Missed => c.0[d + 2] = 1,
            Outcome::Live => c.0[LIVE] = 1,
            Outcome::Other => {}
        }
        if matches!(row.outcome, Outcome::Answered | Outcome::Missed) {
            c.0[WAIT_SUM] = i64::from(row.wait_time);
            c.0[WAIT_BINS + bin(&WAIT_EDGES, row.wait_time)] = 1;
        }
        if row.outcome == Outcome::Answered {
            c.0[TALK_SUM] = i64::from(row.talk_time);
            c.0[TALK_BINS + bin(&TALK_EDGES, row.talk_time)] = 1;
        }
        c.0[COST_NANOS] = row.cost_nanos;
        c
    }

    /// Adds `other` (`sign` 1) or takes it away (`sign` -1).
    pub fn add(&mut self, other: &Counters, sign: i64) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += sign * b;
        }
    }

    /// Whether every counter is zero.
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|v| *v == 0)
    }

    /// Interactions, answered, missed in `direction`.
    pub fn direction(&self, direction: ActualDirection) -> [i64; 3] {
        let d = direction_offset(direction);
        [self.0[d], self.0[d + 1], self.0[d + 2]]
    }

    /// Interactions still running.
    pub fn live(&self) -> i64 {
        self.0[LIVE]
    }

    /// Sum of answered interactions' talk times, seconds.
    pub fn talk_sum(&self) -> i64 {
        self.0[TALK_SUM]
    }

    /// Sum of finished interactions' wait times, seconds.
    pub fn wait_sum(&self) -> i64 {
        self.0[WAIT_SUM]
    }

    /// Sum of prices, billionths.
    pub fn cost_nanos(&self) -> i64 {
        self.0[COST_NANOS]
    }

    /// The wait-time distribution, one count per [`WAIT_EDGES`] bin.
    pub fn wait_bins(&self) -> &[i64] {
        &self.0[WAIT_BINS..TALK_BINS]
    }

    /// The talk-time distribution, one count per [`TALK_EDGES`] bin.
    pub fn talk_bins(&self) -> &[i64] {
        &self.0[TALK_BINS..]
    }
}

/// The slot of an instant.
pub fn slot_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(SLOT_SECONDS)
}

/// When a slot starts.
pub fn slot_start(slot: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(slot * SLOT_SECONDS, 0).unwrap_or_default()
}

/// What the `interactions` table holds of one interaction: the columns
/// its counters come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactsRow {
    /// [`slot_of`] its time; `None` when it has none.
    pub slot: Option<i64>,
    /// Its actual direction.
    pub direction: ActualDirection,
    /// How it ended.
    pub outcome: Outcome,
    /// Seconds somebody talked.
    pub talk_time: u32,
    /// Seconds of waiting.
    pub wait_time: u32,
    /// The business's line.
    pub line: String,
    /// The currency of its cost (empty: none yet).
    pub currency: String,
    /// Its cost, billionths.
    pub cost_nanos: i64,
}

impl From<&InteractionFacts> for FactsRow {
    fn from(f: &InteractionFacts) -> Self {
        Self {
            slot: f.at.map(slot_of),
            direction: f.direction,
            outcome: f.outcome,
            talk_time: f.talk_time,
            wait_time: f.wait_time,
            line: f.line.clone(),
            currency: f.cost.currency.clone(),
            cost_nanos: f.cost.nanos,
        }
    }
}

/// A summary row's key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotKey {
    /// The quarter hour.
    pub slot: i64,
    /// The currency of the costs counted.
    pub currency: String,
    /// The business's line.
    pub line: String,
}

/// What to add to the summary rows when the stored figures `old` (by
/// root SID; absent ones were not stored) are replaced by `new` and the
/// roots `dropped` lose theirs. Pure; rows whose change is zero are left
/// out.
pub fn slot_deltas<'a>(
    old: &[(CallSid, FactsRow)],
    new: impl IntoIterator<Item = &'a FactsRow>,
) -> Vec<(SlotKey, Counters)> {
    let mut deltas: BTreeMap<SlotKey, Counters> = BTreeMap::new();
    let mut add = |row: &FactsRow, sign: i64| {
        if let Some(slot) = row.slot {
            let key = SlotKey {
                slot,
                currency: row.currency.clone(),
                line: row.line.clone(),
            };
            deltas.entry(key).or_default().add(&Counters::of(row), sign);
        }
    };
    for (_, row) in old {
        add(row, -1);
    }
    for row in new {
        add(row, 1);
    }
    deltas.into_iter().filter(|(_, c)| !c.is_zero()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(outcome: Outcome, talk: u32, wait: u32) -> FactsRow {
        FactsRow {
            slot: Some(10),
            direction: ActualDirection::Inbound,
            outcome,
            talk_time: talk,
            wait_time: wait,
            line: "+1".into(),
            currency: "USD".into(),
            cost_nanos: -5,
        }
    }

    #[test]
    fn bins_hold_their_lower_edge() {
        assert_eq!(bin(&WAIT_EDGES, 0), 0);
        assert_eq!(bin(&WAIT_EDGES, 4), 0);
        assert_eq!(bin(&WAIT_EDGES, 5), 1);
        assert_eq!(bin(&WAIT_EDGES, 100_000), WAIT_EDGES.len() - 1);
        assert_eq!(columns().len(), WIDTH);
        assert_eq!(
            [
                FIXED[LIVE],
                FIXED[TALK_SUM],
                FIXED[WAIT_SUM],
                FIXED[COST_NANOS]
            ],
            ["live", "talk_sum", "wait_sum", "cost_nanos"]
        );
        assert_eq!(
            FIXED[direction_offset(ActualDirection::Outbound)],
            "outbound"
        );
        assert_eq!(
            FIXED[direction_offset(ActualDirection::Internal) + 2],
            "internal_missed"
        );
    }

    #[test]
    fn an_answered_call_counts_talk_and_wait_a_missed_one_only_wait() {
        let a = Counters::of(&row(Outcome::Answered, 30, 7));
        assert_eq!(a.direction(ActualDirection::Inbound), [1, 1, 0]);
        assert_eq!((a.talk_sum(), a.wait_sum(), a.cost_nanos()), (30, 7, -5));
        assert_eq!(a.wait_bins()[1], 1);
        assert_eq!(a.talk_bins()[2], 1);
        let m = Counters::of(&row(Outcome::Missed, 0, 20));
        assert_eq!(m.direction(ActualDirection::Inbound), [1, 0, 1]);
        assert_eq!((m.talk_sum(), m.wait_sum()), (0, 20));
        assert_eq!(m.talk_bins().iter().sum::<i64>(), 0);
        let l = Counters::of(&row(Outcome::Live, 0, 0));
        assert_eq!((l.live(), l.wait_bins().iter().sum::<i64>()), (1, 0));
    }

    #[test]
    fn replacing_figures_moves_them_between_slots_and_unchanged_ones_cancel() {
        let sid = CallSid::new("CA1").unwrap();
        let before = row(Outcome::Live, 0, 0);
        let mut after = row(Outcome::Answered, 30, 7);
        after.slot = Some(11);
        let deltas = slot_deltas(&[(sid.clone(), before.clone())], [&after]);
        assert_eq!(deltas.len(), 2);
        assert_eq!(deltas[0].0.slot, 10);
        assert_eq!(deltas[0].1.live(), -1);
        assert_eq!(deltas[1].1.direction(ActualDirection::Inbound), [1, 1, 0]);
        assert!(slot_deltas(&[(sid, before.clone())], [&before]).is_empty());
    }
}
