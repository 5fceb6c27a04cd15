//! Finding the busiest conversations of a period without counting every
//! conversation: a conversation's all-time totals (`conversation_stats`)
//! bound its counts in any period, so the stores count the conversations
//! with the greatest totals first, in ranking order, and stop as soon as
//! the last one listed outranks every conversation not counted yet.

use std::cmp::Reverse;

use super::report::TopContact;

/// Candidates counted first; each further round counts four times as many.
pub const FIRST_CANDIDATES: i64 = 64;

/// Beyond this many candidates, stores count every conversation of the
/// period instead.
pub const MAX_CANDIDATES: i64 = 4_096;

/// Periods with at most this many interactions are counted directly (one
/// pass over the period's interactions costs less than the search).
pub const DIRECT_LIMIT: u64 = 100_000;

/// Whether to count every conversation of the period at once, given how
/// many interactions the summary rows read for it hold (`None`: none
/// were read, so the number is unknown).
pub fn count_directly(interactions: Option<u64>) -> bool {
    interactions.is_some_and(|n| n <= DIRECT_LIMIT)
}

/// The interactions `rows` count.
pub fn interactions_in(rows: &[super::report::SlotRow]) -> u64 {
    let n: i64 = rows.iter().map(|r| r.counters.interactions()).sum();
    u64::try_from(n).unwrap_or_default()
}

/// What the busiest conversations are ranked by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranking {
    /// Interactions, then external id (byte order).
    Calls,
    /// Missed interactions, then interactions, then external id.
    Missed,
}

/// A conversation's all-time totals: the greatest key any of its counts
/// can reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Totals {
    /// Interactions with a time.
    pub interactions: u64,
    /// Of which missed.
    pub missed: u64,
    /// Its external id.
    pub external_id: String,
}

impl Ranking {
    /// The `ORDER BY` of candidates over `conversation_stats`, which is
    /// the ranking applied to their totals.
    pub fn candidate_order(self) -> &'static str {
        match self {
            Self::Calls => "interactions DESC, external_id",
            Self::Missed => "missed DESC, interactions DESC, external_id",
        }
    }

    /// The `ORDER BY` of counted conversations (`c.calls`, `c.missed`,
    /// `cv.external_id`).
    pub fn order(self) -> &'static str {
        match self {
            Self::Calls => "c.calls DESC, cv.external_id",
            Self::Missed => "c.missed DESC, c.calls DESC, cv.external_id",
        }
    }

    /// The count that must be positive to be listed.
    pub fn listed_if(self) -> &'static str {
        match self {
            Self::Calls => "c.calls > 0",
            Self::Missed => "c.missed > 0",
        }
    }

    fn key(self, calls: u64, missed: u64, external_id: &str) -> (u64, u64, Reverse<&str>) {
        match self {
            Self::Calls => (calls, 0, Reverse(external_id)),
            Self::Missed => (missed, calls, Reverse(external_id)),
        }
    }

    /// Whether `found` (the counted candidates, in ranking order) holds
    /// the final `top`: when no candidate is left (`next` is the first
    /// one not counted), or the `top`-th found outranks `next`'s totals,
    /// hence every count of every conversation not counted.
    ///
    /// ```
    /// use callview_core::stats::busiest::{Ranking, Totals};
    /// use callview_core::stats::TopContact;
    /// use callview_core::ConversationId;
    /// let found = |calls, ext: &str| TopContact {
    ///     conversation_id: ConversationId(1), external_id: ext.into(), name: None, calls, missed: 0,
    /// };
    /// let next = |interactions, ext: &str| Totals { interactions, missed: 0, external_id: ext.into() };
    /// let r = Ranking::Calls;
    /// assert!(r.settled(&[found(5, "b")], 1, Some(&next(4, "a"))));
    /// assert!(r.settled(&[found(5, "b")], 1, Some(&next(5, "c"))), "a tie goes by external id");
    /// assert!(!r.settled(&[found(5, "b")], 1, Some(&next(5, "a"))));
    /// assert!(!r.settled(&[], 1, Some(&next(1, "a"))));
    /// assert!(r.settled(&[], 1, None));
    /// ```
    pub fn settled(self, found: &[TopContact], top: usize, next: Option<&Totals>) -> bool {
        let Some(next) = next else {
            return true;
        };
        let bound = self.key(next.interactions, next.missed, &next.external_id);
        if bound.0 == 0 {
            // Nobody left has anything to count.
            return true;
        }
        match found.get(top.saturating_sub(1)) {
            Some(last) => self.key(last.calls, last.missed, &last.external_id) > bound,
            None => false,
        }
    }
}
