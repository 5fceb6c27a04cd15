//! The period statistics cover and its buckets: local calendar periods of
//! an IANA time zone, exact across daylight-saving changes.

use chrono::{
    DateTime, Datelike, Days, Duration, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime,
    TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

use super::counters::SLOT_SECONDS;

/// The most buckets one answer holds.
pub const MAX_BUCKETS: usize = 10_000;

/// A bucket size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    /// A local hour.
    Hour,
    /// A local calendar day.
    Day,
    /// A local week, Monday to Sunday.
    Week,
    /// A local calendar month.
    Month,
}

impl Bucket {
    /// Reads `hour`, `day`, `week` or `month`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            _ => None,
        }
    }

    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }
}

/// Why a statistics request cannot be answered, naming the parameter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {reason}")]
pub struct RangeError {
    /// `since`, `until`, `tz` or `bucket`.
    pub parameter: &'static str,
    /// Why.
    pub reason: String,
}

fn invalid(parameter: &'static str, reason: impl Into<String>) -> RangeError {
    RangeError {
        parameter,
        reason: reason.into(),
    }
}

/// One end of the period as given: a local calendar date (`since`
/// inclusive from its start, `until` inclusive to its end) or an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// A date in the statistics' time zone.
    Date(NaiveDate),
    /// An instant (RFC 3339), on a quarter hour.
    Instant(DateTime<Utc>),
}

impl Bound {
    /// Reads `YYYY-MM-DD` or an RFC 3339 instant on a quarter hour.
    pub fn parse(parameter: &'static str, text: &str) -> Result<Self, RangeError> {
        let text = text.trim();
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Ok(Self::Date(date));
        }
        let at = DateTime::parse_from_rfc3339(text)
            .map_err(|_| {
                invalid(
                    parameter,
                    format!("{text:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 time"),
                )
            })?
            .with_timezone(&Utc);
        if at.timestamp().rem_euclid(SLOT_SECONDS) != 0 || at.timestamp_subsec_nanos() != 0 {
            return Err(invalid(
                parameter,
                format!("{text:?} is not on a quarter hour (statistics count by quarter hours)"),
            ));
        }
        Ok(Self::Instant(at))
    }
}

/// The first instant of a local date-time: the earlier of two when the
/// clocks went back, the first existing one after a gap when they went
/// forward.
fn local_start(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    for _ in 0..(4 * 26) {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, b) => return a.min(b).with_timezone(&Utc),
            LocalResult::None => probe += Duration::minutes(15),
        }
    }
    Utc.from_utc_datetime(&local)
}

/// The statistics' period, time zone and buckets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsRange {
    /// The time zone buckets follow.
    pub tz: Tz,
    /// The bucket size.
    pub bucket: Bucket,
    /// Every bucket's start, then the period's end (exclusive).
    pub edges: Vec<DateTime<Utc>>,
}

impl StatsRange {
    /// The period from `since` to `until` in `tz`, cut in `bucket`s. The
    /// first bucket starts at `since`; later ones at local calendar
    /// boundaries; the last ends at `until`.
    ///
    /// ```
    /// use callview_core::stats::{Bound, Bucket, StatsRange};
    /// use chrono::NaiveDate;
    /// let day = |d| Bound::Date(NaiveDate::from_ymd_opt(2026, 3, d).unwrap());
    /// // Daylight saving time started in Paris on 2026-03-29: that day lasts 23 hours.
    /// let r = StatsRange::new("Europe/Paris".parse().unwrap(), day(28), day(30), Bucket::Day).unwrap();
    /// let hours: Vec<i64> = r.edges.windows(2).map(|w| (w[1] - w[0]).num_hours()).collect();
    /// assert_eq!(hours, [24, 23, 24]);
    /// ```
    pub fn new(tz: Tz, since: Bound, until: Bound, bucket: Bucket) -> Result<Self, RangeError> {
        let start = match since {
            Bound::Date(d) => local_start(tz, d.and_time(NaiveTime::MIN)),
            Bound::Instant(t) => t,
        };
        let end = match until {
            Bound::Date(d) => {
                let next = d
                    .checked_add_days(Days::new(1))
                    .ok_or_else(|| invalid("until", "out of range"))?;
                local_start(tz, next.and_time(NaiveTime::MIN))
            }
            Bound::Instant(t) => t,
        };
        if end <= start {
            return Err(invalid("until", "the period ends before it starts"));
        }
        let mut edges = vec![start];
        let mut at = start;
        while at < end {
            let next = next_boundary(tz, bucket, at).min(end);
            edges.push(next);
            if edges.len() > MAX_BUCKETS + 1 {
                return Err(invalid(
                    "bucket",
                    format!(
                        "more than {MAX_BUCKETS} {}s in the period: choose a larger bucket",
                        bucket.as_str()
                    ),
                ));
            }
            at = next;
        }
        Ok(Self { tz, bucket, edges })
    }

    /// The period's first instant.
    pub fn start(&self) -> DateTime<Utc> {
        self.edges[0]
    }

    /// The instant after the period.
    pub fn end(&self) -> DateTime<Utc> {
        self.edges[self.edges.len() - 1]
    }

    /// The slots the period covers: `first..end` (a partial slot at
    /// either end counts whole).
    pub fn slots(&self) -> (i64, i64) {
        let first = self.start().timestamp().div_euclid(SLOT_SECONDS);
        let end = (self.end().timestamp() + SLOT_SECONDS - 1).div_euclid(SLOT_SECONDS);
        (first, end)
    }

    /// Which bucket holds `at`, if any.
    pub fn bucket_of(&self, at: DateTime<Utc>) -> Option<usize> {
        if at < self.start() || at >= self.end() {
            return None;
        }
        Some(self.edges.partition_point(|edge| *edge <= at) - 1)
    }

    /// A bucket's label: `2026-03-01` (day, week: its first day),
    /// `2026-03` (month), `2026-03-01T14:00` (hour), local time.
    pub fn label(&self, index: usize) -> String {
        let local = self.edges[index].with_timezone(&self.tz);
        match self.bucket {
            Bucket::Hour => local.format("%Y-%m-%dT%H:%M").to_string(),
            Bucket::Day | Bucket::Week => local.format("%Y-%m-%d").to_string(),
            Bucket::Month => local.format("%Y-%m").to_string(),
        }
    }
}

/// The start of the local period after the one holding `at`.
fn next_boundary(tz: Tz, bucket: Bucket, at: DateTime<Utc>) -> DateTime<Utc> {
    let local = at.with_timezone(&tz).naive_local();
    let next = match bucket {
        Bucket::Hour => {
            // The next quarter hour at which the local clock shows a whole
            // hour: after the clocks went back, the repeated hour is a
            // bucket of its own; zones that move by half an hour are right
            // too.
            let mut t = DateTime::from_timestamp(
                (at.timestamp().div_euclid(SLOT_SECONDS) + 1) * SLOT_SECONDS,
                0,
            )
            .unwrap_or(at);
            for _ in 0..8 {
                if t.with_timezone(&tz).minute() == 0 {
                    break;
                }
                t += Duration::seconds(SLOT_SECONDS);
            }
            return t;
        }
        Bucket::Day => local.date() + Days::new(1),
        Bucket::Week => {
            let monday =
                local.date() - Days::new(u64::from(local.weekday().num_days_from_monday()));
            monday + Days::new(7)
        }
        Bucket::Month => {
            let first = local.date().with_day(1).unwrap_or(local.date());
            first + Months::new(1)
        }
    };
    local_start(tz, next.and_time(NaiveTime::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> Bound {
        Bound::Date(NaiveDate::from_ymd_opt(y, m, d).unwrap())
    }

    #[test]
    fn hours_across_the_autumn_change_count_the_repeated_hour_twice() {
        let tz: Tz = "America/New_York".parse().unwrap();
        // 2026-11-01: 01:00-02:00 happens twice in New York.
        let r = StatsRange::new(tz, date(2026, 11, 1), date(2026, 11, 1), Bucket::Hour).unwrap();
        assert_eq!(r.edges.len() - 1, 25);
        assert_eq!(r.label(1), "2026-11-01T01:00");
        assert_eq!(r.label(2), "2026-11-01T01:00");
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        let tz = Tz::UTC;
        let r = StatsRange::new(tz, date(2026, 1, 1), date(2026, 1, 31), Bucket::Week).unwrap();
        let labels: Vec<String> = (0..r.edges.len() - 1).map(|i| r.label(i)).collect();
        assert_eq!(
            labels,
            [
                "2026-01-01",
                "2026-01-05",
                "2026-01-12",
                "2026-01-19",
                "2026-01-26"
            ]
        );
        let r = StatsRange::new(tz, date(2026, 1, 15), date(2026, 3, 10), Bucket::Month).unwrap();
        let labels: Vec<String> = (0..r.edges.len() - 1).map(|i| r.label(i)).collect();
        assert_eq!(labels, ["2026-01", "2026-02", "2026-03"]);
    }

    #[test]
    fn half_hour_zones_start_days_on_the_half_hour() {
        let tz: Tz = "Asia/Kolkata".parse().unwrap();
        let r = StatsRange::new(tz, date(2026, 5, 1), date(2026, 5, 1), Bucket::Day).unwrap();
        assert_eq!(r.start().to_rfc3339(), "2026-04-30T18:30:00+00:00");
        assert_eq!(r.slots().1 - r.slots().0, 96);
    }

    #[test]
    fn bad_bounds_are_refused_with_the_parameter() {
        assert_eq!(
            Bound::parse("since", "yesterday").unwrap_err().parameter,
            "since"
        );
        assert!(Bound::parse("since", "2026-01-01T00:07:00Z").is_err());
        assert!(Bound::parse("since", "2026-01-01T00:15:00Z").is_ok());
        let err = StatsRange::new(Tz::UTC, date(2026, 2, 1), date(2026, 1, 1), Bucket::Day);
        assert_eq!(err.unwrap_err().parameter, "until");
        let err = StatsRange::new(Tz::UTC, date(2000, 1, 1), date(2026, 1, 1), Bucket::Hour);
        assert_eq!(err.unwrap_err().parameter, "bucket");
    }
}
