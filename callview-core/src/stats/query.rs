//! Which summary rows a statistics request reads: whole hours where no
//! bucket starts inside the hour, quarter hours elsewhere, so that a year
//! reads about 9,000 rows instead of 35,000 and every bucket stays exact.

use chrono::Timelike;

use super::counters::{slot_start, SLOTS_PER_HOUR, SLOT_SECONDS};
use super::range::StatsRange;

/// What [`crate::Store::stats`] reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsQuery {
    /// Ranges `first..end` of hours (Unix seconds / 3600) whose
    /// `stats_hours` rows to read, in order, disjoint.
    pub hours: Vec<(i64, i64)>,
    /// Ranges of quarter hours whose `stats_slots` rows to read, in
    /// order, disjoint, never inside `hours`.
    pub quarters: Vec<(i64, i64)>,
    /// When the zone's local hours do not start on UTC hours somewhere in
    /// the period (a half-hour offset), the quarter hours of the whole
    /// period whose inbound counts make the hour-of-week map.
    pub heat: Option<(i64, i64)>,
    /// The quarter hours of the whole period: where the busiest
    /// conversations are counted.
    pub period: (i64, i64),
    /// How many busiest conversations to list.
    pub top: u32,
}

/// Adds `range` to `ranges`, merging it with the last one when adjacent.
fn push(ranges: &mut Vec<(i64, i64)>, range: (i64, i64)) {
    if range.1 <= range.0 {
        return;
    }
    match ranges.last_mut() {
        Some(last) if last.1 == range.0 => last.1 = range.1,
        _ => ranges.push(range),
    }
}

impl StatsRange {
    /// The rows to read for this period, with the `top` busiest
    /// conversations.
    pub fn query(&self, top: u32) -> StatsQuery {
        let period = self.slots();
        let (start, end) = period;
        let first_hour =
            start.div_euclid(SLOTS_PER_HOUR) + i64::from(start.rem_euclid(SLOTS_PER_HOUR) != 0);
        let end_hour = end.div_euclid(SLOTS_PER_HOUR);
        // Hours with a bucket starting inside them are read by quarters.
        let mut split: Vec<i64> = self.edges[1..self.edges.len() - 1]
            .iter()
            .map(|edge| edge.timestamp().div_euclid(SLOT_SECONDS))
            .filter(|slot| slot.rem_euclid(SLOTS_PER_HOUR) != 0)
            .map(|slot| slot.div_euclid(SLOTS_PER_HOUR))
            .filter(|hour| (first_hour..end_hour).contains(hour))
            .collect();
        split.dedup();
        let whole = (end_hour - first_hour).max(0);
        let mut query = StatsQuery {
            period,
            top,
            ..StatsQuery::default()
        };
        if whole == 0 || split.len() as i64 * 4 > whole {
            push(&mut query.quarters, period);
        } else {
            push(&mut query.quarters, (start, first_hour * SLOTS_PER_HOUR));
            let mut hour = first_hour;
            for s in &split {
                push(&mut query.hours, (hour, *s));
                push(
                    &mut query.quarters,
                    (s * SLOTS_PER_HOUR, (s + 1) * SLOTS_PER_HOUR),
                );
                hour = s + 1;
            }
            push(&mut query.hours, (hour, end_hour));
            push(&mut query.quarters, (end_hour * SLOTS_PER_HOUR, end));
        }
        let misaligned = query.hours.iter().any(|(first, end)| {
            (*first..*end).any(|hour| {
                slot_start(hour * SLOTS_PER_HOUR)
                    .with_timezone(&self.tz)
                    .minute()
                    != 0
            })
        });
        if misaligned {
            query.heat = Some(period);
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Bound, Bucket};
    use chrono::NaiveDate;
    use chrono_tz::Tz;

    fn range(tz: &str, bucket: Bucket) -> StatsRange {
        let day = |d| Bound::Date(NaiveDate::from_ymd_opt(2026, 3, d).unwrap());
        StatsRange::new(tz.parse::<Tz>().unwrap(), day(1), day(10), bucket).unwrap()
    }

    #[test]
    fn whole_hour_zones_read_hours_only() {
        let q = range("Europe/Paris", Bucket::Day).query(10);
        assert!(q.quarters.is_empty(), "{q:?}");
        assert_eq!(q.hours.len(), 1);
        assert_eq!(q.hours[0].1 - q.hours[0].0, 10 * 24);
        assert_eq!(q.heat, None);
        assert_eq!(q.period.1 - q.period.0, 10 * 96);
    }

    #[test]
    fn half_hour_zones_read_the_split_hours_by_quarters() {
        let q = range("Asia/Kolkata", Bucket::Day).query(10);
        // Nine days start inside an hour (18:30 UTC); the period's own
        // ends are half hours too.
        let quarters: i64 = q.quarters.iter().map(|(a, b)| b - a).sum();
        let hours: i64 = q.hours.iter().map(|(a, b)| b - a).sum();
        assert_eq!(quarters, 2 + 9 * 4 + 2);
        assert_eq!(hours * 4 + quarters, 10 * 96);
        assert_eq!(q.heat, Some(q.period));
        // Hourly buckets split every hour: quarters only.
        let q = range("Asia/Kolkata", Bucket::Hour).query(10);
        assert!(q.hours.is_empty());
        assert_eq!(q.quarters, [q.period]);
    }
}
