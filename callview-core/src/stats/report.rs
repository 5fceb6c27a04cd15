//! The answer of `/api/stats`, computed from what a store summed.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Timelike, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::endpoint::ActualDirection;
use crate::model::{ConversationId, Cost};

use super::counters::{slot_start, Counters, SLOTS_PER_HOUR, TALK_EDGES, WAIT_EDGES};
#[cfg(doc)]
use super::query::StatsQuery;
use super::range::{Bucket, StatsRange};

/// What a store read for a [`StatsQuery`] ([`crate::Store::stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsRows {
    /// The `stats_hours` rows of `query.hours` (`slot` is the hour).
    pub hours: Vec<SlotRow>,
    /// The `stats_slots` rows of `query.quarters`.
    pub quarters: Vec<SlotRow>,
    /// When `query.heat` is set: per quarter hour of the period, its
    /// inbound interactions and missed ones (every line and currency).
    pub heat: Option<Vec<HeatRow>>,
    /// The conversations with the most interactions in the period (ties
    /// by external id, in byte order), at most `query.top`.
    pub top_by_calls: Vec<TopContact>,
    /// The conversations with the most missed interactions (at least
    /// one; ties by interactions, then external id).
    pub top_by_missed: Vec<TopContact>,
    /// The text messages sent or received in `query.period`.
    pub texts: TextCounts,
}

/// Text messages of a period, counted from the `texts` rows whose
/// `sent_at` is in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TextCounts {
    /// Every text.
    pub total: u64,
    /// Received from outside.
    pub inbound: u64,
    /// Sent to outside.
    pub outbound: u64,
    /// Between the business's own numbers.
    pub internal: u64,
    /// Sent texts Twilio could not deliver (`undelivered`, `failed`).
    pub undelivered: u64,
}

impl TextCounts {
    /// Adds `n` texts of `actual_direction` (`inbound`, `outbound`,
    /// `internal`), `failed` when they were not delivered.
    pub fn add(&mut self, actual_direction: &str, failed: bool, n: u64) {
        self.total += n;
        match actual_direction {
            "inbound" => self.inbound += n,
            "internal" => self.internal += n,
            _ => self.outbound += n,
        }
        if failed {
            self.undelivered += n;
        }
    }
}

/// One summary row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotRow {
    /// The quarter hour, or the hour.
    pub slot: i64,
    /// The currency of `counters.cost_nanos()`.
    pub currency: String,
    /// The business's line.
    pub line: String,
    /// Its counters.
    pub counters: Counters,
}

/// A quarter hour's inbound interactions, for the hour-of-week map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeatRow {
    /// The quarter hour.
    pub slot: i64,
    /// Inbound interactions.
    pub inbound: i64,
    /// Of which missed.
    pub missed: i64,
}

/// A conversation among the most active of the period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopContact {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Its external id (the customer's number as shown).
    pub external_id: String,
    /// The contact's display name (its number's display form until people
    /// name it).
    pub name: Option<String>,
    /// Its interactions in the period.
    pub calls: u64,
    /// Of which missed.
    pub missed: u64,
}

/// Counts of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DirectionFigures {
    /// Interactions.
    pub interactions: u64,
    /// Answered ones.
    pub answered: u64,
    /// Missed ones.
    pub missed: u64,
}

/// The three directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ByDirection {
    /// Customers calling in.
    pub inbound: DirectionFigures,
    /// The business calling out.
    pub outbound: DirectionFigures,
    /// Between the business's own numbers.
    pub internal: DirectionFigures,
}

/// Average and 90th percentile of a duration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Spread {
    /// Mean, seconds; `None` when nothing was measured.
    pub average: Option<f64>,
    /// The upper edge of the distribution bin holding the 90th
    /// percentile (at least 90% took no longer), seconds; for the open
    /// last bin its lower edge. `None` when nothing was measured.
    pub p90: Option<u32>,
}

/// A sum of prices in one currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CostFigure {
    /// ISO 4217 code.
    pub currency: String,
    /// What Twilio charged: the negated sum of its prices (Twilio writes a
    /// charge as a negative price), exact.
    pub amount: Decimal,
}

/// The figures of a period or bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Interactions (root calls).
    pub interactions: u64,
    /// Somebody talked.
    pub answered: u64,
    /// Nobody did (`no-answer`, `busy`, `failed`, `canceled`).
    pub missed: u64,
    /// Still running.
    pub live: u64,
    /// The same per direction.
    pub by_direction: ByDirection,
    /// Waiting before an answer (or in vain): over answered and missed
    /// interactions.
    pub wait: Spread,
    /// Talking: over answered interactions.
    pub talk: Spread,
    /// Per currency, in code order.
    pub cost: Vec<CostFigure>,
}

/// One bucket of the series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// Its first instant, in the zone's offset.
    pub start: String,
    /// The instant after it.
    pub end: String,
    /// Its local name (`2026-03-01`, `2026-03`, `2026-03-01T14:00`).
    pub label: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// One bin of the wait-time distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Bin {
    /// Lower edge, seconds (inclusive).
    pub from: u32,
    /// Upper edge, seconds (exclusive); `None` for the last bin.
    pub to: Option<u32>,
    /// Interactions in it.
    pub count: u64,
}

/// Inbound interactions per local weekday (Monday first) and hour.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HourOfWeek {
    /// All inbound interactions.
    pub inbound: [[u64; 24]; 7],
    /// The missed ones.
    pub missed: [[u64; 24]; 7],
}

/// The busiest conversations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TopContacts {
    /// By interactions.
    pub by_calls: Vec<TopContact>,
    /// By missed interactions.
    pub by_missed: Vec<TopContact>,
}

/// One business line's figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineFigures {
    /// The number (or SIP address) as Twilio sent it.
    pub number: String,
    /// Interactions on it.
    pub interactions: u64,
    /// Answered.
    pub answered: u64,
    /// Missed.
    pub missed: u64,
}

/// The whole answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatsReport {
    /// The IANA zone of the buckets.
    pub tz: String,
    /// The bucket size.
    pub bucket: Bucket,
    /// The period's start, in the zone's offset.
    pub since: String,
    /// The instant after the period.
    pub until: String,
    /// The whole period.
    pub totals: Figures,
    /// Every bucket, in order, zero-filled.
    pub series: Vec<SeriesPoint>,
    /// Wait times of answered and missed interactions.
    pub wait_distribution: Vec<Bin>,
    /// The staffing heat map.
    pub by_hour_of_week: HourOfWeek,
    /// The busiest conversations.
    pub top_contacts: TopContacts,
    /// Which company line rang, busiest first.
    pub by_owned_number: Vec<LineFigures>,
    /// Text messages of the period.
    pub texts: TextCounts,
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

/// Sums of counters, with the cost per currency.
#[derive(Clone, Debug, Default)]
struct Sum {
    counters: Counters,
    cost: BTreeMap<String, i128>,
}

impl Sum {
    fn add(&mut self, row: &SlotRow) {
        self.counters.add(&row.counters, 1);
        if !row.currency.is_empty() {
            *self.cost.entry(row.currency.clone()).or_default() +=
                i128::from(row.counters.cost_nanos());
        }
    }

    fn figures(&self) -> Figures {
        let c = &self.counters;
        let direction = |d| {
            let [interactions, answered, missed] = c.direction(d);
            DirectionFigures {
                interactions: count(interactions),
                answered: count(answered),
                missed: count(missed),
            }
        };
        let by_direction = ByDirection {
            inbound: direction(ActualDirection::Inbound),
            outbound: direction(ActualDirection::Outbound),
            internal: direction(ActualDirection::Internal),
        };
        let all = [
            by_direction.inbound,
            by_direction.outbound,
            by_direction.internal,
        ];
        let answered: u64 = all.iter().map(|d| d.answered).sum();
        let missed: u64 = all.iter().map(|d| d.missed).sum();
        Figures {
            interactions: all.iter().map(|d| d.interactions).sum(),
            answered,
            missed,
            live: count(c.live()),
            by_direction,
            wait: spread(c.wait_sum(), answered + missed, c.wait_bins(), &WAIT_EDGES),
            talk: spread(c.talk_sum(), answered, c.talk_bins(), &TALK_EDGES),
            cost: self
                .cost
                .iter()
                .map(|(currency, nanos)| CostFigure {
                    currency: currency.clone(),
                    amount: money(-nanos),
                })
                .collect(),
        }
    }
}

/// An exact amount, with at least two decimals.
fn money(nanos: i128) -> Decimal {
    let amount = Cost::decimal_of(nanos).normalize();
    if amount.scale() < 2 {
        let mut padded = amount;
        padded.rescale(2);
        padded
    } else {
        amount
    }
}

fn spread(sum: i64, n: u64, bins: &[i64], edges: &[u32]) -> Spread {
    if n == 0 {
        return Spread::default();
    }
    // The 90th percentile is the k-th smallest value, k = ceil(0.9 n).
    let k = (n * 9).div_ceil(10);
    let mut seen = 0u64;
    let mut p90 = None;
    for (i, c) in bins.iter().enumerate() {
        seen += count(*c);
        if seen >= k {
            p90 = Some(edges.get(i + 1).copied().unwrap_or(edges[i]));
            break;
        }
    }
    Spread {
        average: Some(sum as f64 / n as f64),
        p90,
    }
}

impl StatsReport {
    /// Builds the answer for `range` from what the store read for
    /// `range.query(..)`.
    pub fn build(range: &StatsRange, rows: StatsRows) -> Self {
        let buckets = range.edges.len() - 1;
        let mut total = Sum::default();
        let mut series = vec![Sum::default(); buckets];
        let mut lines: BTreeMap<String, Counters> = BTreeMap::new();
        let mut week = HourOfWeek::default();
        let mut count_heat = |at: DateTime<Utc>, inbound: i64, missed: i64| {
            let local = at.with_timezone(&range.tz);
            let day = local.weekday().num_days_from_monday() as usize;
            let hour = local.hour() as usize;
            week.inbound[day][hour] += count(inbound);
            week.missed[day][hour] += count(missed);
        };
        let hours = rows
            .hours
            .iter()
            .map(|row| (slot_start(row.slot * SLOTS_PER_HOUR), row));
        let quarters = rows.quarters.iter().map(|row| (slot_start(row.slot), row));
        for (at, row) in hours.chain(quarters) {
            // No bucket starts inside a row the query asked for.
            let Some(bucket) = range.bucket_of(at) else {
                continue;
            };
            total.add(row);
            series[bucket].add(row);
            lines
                .entry(row.line.clone())
                .or_default()
                .add(&row.counters, 1);
            if rows.heat.is_none() {
                let [inbound, _, missed] = row.counters.direction(ActualDirection::Inbound);
                count_heat(at, inbound, missed);
            }
        }
        for row in rows.heat.iter().flatten() {
            let at = slot_start(row.slot);
            if range.bucket_of(at).is_some() {
                count_heat(at, row.inbound, row.missed);
            }
        }
        let local = |t: DateTime<Utc>| t.with_timezone(&range.tz).to_rfc3339();
        let wait_bins = total.counters.wait_bins();
        let wait_distribution = WAIT_EDGES
            .iter()
            .enumerate()
            .map(|(i, from)| Bin {
                from: *from,
                to: WAIT_EDGES.get(i + 1).copied(),
                count: count(wait_bins[i]),
            })
            .collect();
        let mut by_owned_number: Vec<LineFigures> = lines
            .into_iter()
            .map(|(number, counters)| {
                let figures = Sum {
                    counters,
                    cost: BTreeMap::new(),
                }
                .figures();
                LineFigures {
                    number,
                    interactions: figures.interactions,
                    answered: figures.answered,
                    missed: figures.missed,
                }
            })
            .filter(|l| l.interactions > 0)
            .collect();
        by_owned_number.sort_by(|a, b| {
            b.interactions
                .cmp(&a.interactions)
                .then_with(|| a.number.cmp(&b.number))
        });
        Self {
            tz: range.tz.name().to_owned(),
            bucket: range.bucket,
            since: local(range.start()),
            until: local(range.end()),
            totals: total.figures(),
            series: series
                .iter()
                .enumerate()
                .map(|(i, sum)| SeriesPoint {
                    start: local(range.edges[i]),
                    end: local(range.edges[i + 1]),
                    label: range.label(i),
                    figures: sum.figures(),
                })
                .collect(),
            wait_distribution,
            by_hour_of_week: week,
            top_contacts: TopContacts {
                by_calls: rows.top_by_calls,
                by_missed: rows.top_by_missed,
            },
            by_owned_number,
            texts: rows.texts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p90_is_the_upper_edge_of_the_bin_holding_it() {
        // 10 values: nine in [0, 5), one in [600, ...): k = 9.
        let mut bins = [0i64; WAIT_EDGES.len()];
        bins[0] = 9;
        bins[WAIT_EDGES.len() - 1] = 1;
        let s = spread(9 * 2 + 700, 10, &bins, &WAIT_EDGES);
        assert_eq!(s.p90, Some(5));
        assert_eq!(s.average, Some(71.8));
        bins[0] = 8;
        bins[WAIT_EDGES.len() - 1] = 2;
        assert_eq!(spread(0, 10, &bins, &WAIT_EDGES).p90, Some(600));
        assert_eq!(spread(0, 0, &bins, &WAIT_EDGES), Spread::default());
    }

    #[test]
    fn money_is_exact_with_two_decimals_at_least() {
        assert_eq!(money(12_500_000_000).to_string(), "12.50");
        assert_eq!(money(17_500_000).to_string(), "0.0175");
        assert_eq!(money(0).to_string(), "0.00");
    }
}
