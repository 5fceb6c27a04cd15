//! The summary rows statistics read: per quarter hour and per hour (UTC),
//! per currency and per business line, the counters of the interactions
//! that started then, and per conversation its totals. Stores keep them
//! exact in the ingest transaction by adding what [`deltas`] computes
//! from the figures they replace.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

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

    /// Interactions of every direction.
    pub fn interactions(&self) -> i64 {
        [
            ActualDirection::Inbound,
            ActualDirection::Outbound,
            ActualDirection::Internal,
        ]
        .into_iter()
        .map(|d| self.0[direction_offset(d)])
        .sum()
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
    /// Its conversation's id.
    pub conversation_id: i64,
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

impl FactsRow {
    /// The row of `facts`, whose conversation is `conversation_id`.
    pub fn new(facts: &InteractionFacts, conversation_id: i64) -> Self {
        Self {
            conversation_id,
            slot: facts.at.map(slot_of),
            direction: facts.direction,
            outcome: facts.outcome,
            talk_time: facts.talk_time,
            wait_time: facts.wait_time,
            line: facts.line.clone(),
            currency: facts.cost.currency.clone(),
            cost_nanos: facts.cost.nanos,
        }
    }
}

/// A summary row's key: `slot` is a quarter hour in `stats_slots`, an
/// hour (Unix seconds / 3600) in `stats_hours`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotKey {
    /// The quarter hour, or hour.
    pub slot: i64,
    /// The currency of the costs counted.
    pub currency: String,
    /// The business's line.
    pub line: String,
}

/// A conversation's dated interactions and missed ones, all time: an
/// upper bound of its counts in any period (`conversation_stats`), which
/// lets the busiest conversations of a long period be found without
/// counting every conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConversationTotals {
    /// Interactions with a time.
    pub interactions: i64,
    /// Of which missed.
    pub missed: i64,
}

/// What a write adds to the summary tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deltas {
    /// To `stats_slots`, by quarter hour.
    pub quarters: Vec<(SlotKey, Counters)>,
    /// To `stats_hours`, by hour.
    pub hours: Vec<(SlotKey, Counters)>,
    /// To `conversation_stats`, by conversation id.
    pub conversations: Vec<(i64, ConversationTotals)>,
}

/// Quarter hours per hour.
pub const SLOTS_PER_HOUR: i64 = 4;

/// What to add to the summary tables when the stored figures `old` are
/// replaced by `new` (figures of roots that lose theirs are in `old`
/// only). Pure; changes that cancel out are left out.
pub fn deltas<'a>(
    old: impl IntoIterator<Item = &'a FactsRow>,
    new: impl IntoIterator<Item = &'a FactsRow>,
) -> Deltas {
    let mut quarters: BTreeMap<SlotKey, Counters> = BTreeMap::new();
    let mut hours: BTreeMap<SlotKey, Counters> = BTreeMap::new();
    let mut conversations: BTreeMap<i64, ConversationTotals> = BTreeMap::new();
    let mut add = |row: &FactsRow, sign: i64| {
        let Some(slot) = row.slot else {
            return;
        };
        let counters = Counters::of(row);
        let key = SlotKey {
            slot,
            currency: row.currency.clone(),
            line: row.line.clone(),
        };
        let hour = SlotKey {
            slot: slot.div_euclid(SLOTS_PER_HOUR),
            ..key.clone()
        };
        quarters.entry(key).or_default().add(&counters, sign);
        hours.entry(hour).or_default().add(&counters, sign);
        let totals = conversations.entry(row.conversation_id).or_default();
        totals.interactions += sign;
        totals.missed += sign * i64::from(row.outcome == Outcome::Missed);
    };
    for row in old {
        add(row, -1);
    }
    for row in new {
        add(row, 1);
    }
    Deltas {
        quarters: quarters.into_iter().filter(|(_, c)| !c.is_zero()).collect(),
        hours: hours.into_iter().filter(|(_, c)| !c.is_zero()).collect(),
        conversations: conversations
            .into_iter()
            .filter(|(_, t)| *t != ConversationTotals::default())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(outcome: Outcome, talk: u32, wait: u32) -> FactsRow {
        FactsRow {
            conversation_id: 1,
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
        let before = row(Outcome::Live, 0, 0);
        let mut after = row(Outcome::Missed, 0, 7);
        after.slot = Some(11);
        after.conversation_id = 2;
        let d = deltas([&before], [&after]);
        assert_eq!(d.quarters.len(), 2);
        assert_eq!(d.quarters[0].0.slot, 10);
        assert_eq!(d.quarters[0].1.live(), -1);
        assert_eq!(
            d.quarters[1].1.direction(ActualDirection::Inbound),
            [1, 0, 1]
        );
        // Slots 10 and 11 are both in hour 2: the move is one change there.
        assert_eq!(d.hours.len(), 1);
        assert_eq!(d.hours[0].0.slot, 2);
        assert_eq!(d.hours[0].1.live(), -1);
        assert_eq!(d.hours[0].1.direction(ActualDirection::Inbound), [0, 0, 1]);
        let moved: Vec<_> = d
            .conversations
            .iter()
            .map(|(id, t)| (*id, t.interactions, t.missed))
            .collect();
        assert_eq!(moved, [(1, -1, 0), (2, 1, 1)]);
        assert_eq!(deltas([&before], [&before]), Deltas::default());
    }
}
