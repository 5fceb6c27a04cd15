//! `stats`: on a database of 1,000,000 calls spread over a year, the
//! statistics `GET /api/stats` answers for periods ending on the day of
//! the newest call: the store's summary rows read
//! and folded into local buckets, serialized to JSON (what the handler
//! does besides HTTP).
//!
//! Target (issue 16): a year's daily statistics under 200 ms on both stores.

use std::time::Instant;

use anyhow::Result;
use callview_core::stats::{Bound, Bucket, StatsRange, StatsReport, TOP_CONTACTS};
use callview_core::store::ConversationQuery;
use callview_core::Store;
use chrono::{DateTime, Days, Utc};
use serde::Serialize;

use crate::db::StoreKind;
use crate::report::{ms, secs, thousands, Report, Table, TargetCheck, Verdict};
use crate::synthetic;
use crate::Options;

/// The bound for a year of daily statistics, milliseconds.
pub const TARGET_MS: f64 = 200.0;

/// The requests measured: name, zone, days back, bucket.
const REQUESTS: [(&str, &str, u64, Bucket); 5] = [
    ("a year by day, UTC", "UTC", 365, Bucket::Day),
    (
        "a year by day, New York",
        "America/New_York",
        365,
        Bucket::Day,
    ),
    ("a year by week, Kolkata", "Asia/Kolkata", 365, Bucket::Week),
    ("30 days by hour, Paris", "Europe/Paris", 30, Bucket::Hour),
    ("7 days by day, UTC", "UTC", 7, Bucket::Day),
];

/// One request's timings.
#[derive(Clone, Debug, Serialize)]
pub struct RequestTiming {
    /// What was asked.
    pub request: &'static str,
    /// Interactions counted.
    pub interactions: u64,
    /// Buckets in the answer.
    pub buckets: usize,
    /// Bytes of JSON.
    pub bytes: usize,
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// Slowest, milliseconds.
    pub max_ms: f64,
}

/// One store's figures.
#[derive(Clone, Debug, Serialize)]
pub struct StoreStats {
    /// Which store.
    pub store: StoreKind,
    /// Calls stored.
    pub calls: u64,
    /// Seconds to load them (not judged).
    pub load_secs: f64,
    /// Per request.
    pub requests: Vec<RequestTiming>,
}

/// The scenario's figures.
#[derive(Clone, Debug, Serialize)]
pub struct StatsResult {
    /// Calls generated.
    pub calls: usize,
    /// Repetitions per request.
    pub repetitions: usize,
    /// Per store.
    pub stores: Vec<StoreStats>,
}

/// Runs the scenario.
pub async fn run(options: &Options) -> Result<StatsResult> {
    let calls = options.calls_or(1_000_000, 2_000);
    let repetitions = options
        .repetitions
        .unwrap_or(if options.smoke { 2 } else { 15 })
        .max(1);
    let shape = synthetic::Shape {
        conversations: (calls / 10).max(2),
        calls,
        big: 0,
    };
    let mut stores = Vec::new();
    for kind in options.stores_or(&[StoreKind::Sqlite, StoreKind::Postgres]) {
        let db = options.create_db(kind).await?;
        let outcome = async {
            let store = db.open_store().await?;
            options.progress(format!("stats: loading {calls} calls into {kind}"));
            let loaded = synthetic::load(&store, shape).await?;
            // The periods end on the day of the newest call (the
            // generated year may end before today).
            let newest = store
                .list_conversations(&ConversationQuery::page(1, 0))
                .await?
                .conversations
                .first()
                .and_then(|c| c.conversation.counters.last_message_at)
                .unwrap_or_else(Utc::now);
            let mut requests = Vec::new();
            for (name, tz, days, bucket) in REQUESTS {
                let timing =
                    measure(store.as_ref(), name, tz, days, bucket, newest, repetitions).await?;
                options.progress(format!(
                    "stats: {kind}: {name}: p50 {:.1} ms",
                    timing.p50_ms
                ));
                requests.push(timing);
            }
            Ok::<_, anyhow::Error>(StoreStats {
                store: kind,
                calls: loaded.calls,
                load_secs: loaded.secs,
                requests,
            })
        }
        .await;
        db.remove().await?;
        stores.push(outcome?);
    }
    Ok(StatsResult {
        calls,
        repetitions,
        stores,
    })
}

/// Times one request `repetitions` times (after one unmeasured warm-up).
async fn measure(
    store: &dyn Store,
    name: &'static str,
    tz: &str,
    days: u64,
    bucket: Bucket,
    newest: DateTime<Utc>,
    repetitions: usize,
) -> Result<RequestTiming> {
    let tz: chrono_tz::Tz = tz.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let today = newest.with_timezone(&tz).date_naive();
    let since = Bound::Date(today - Days::new(days - 1));
    let until = Bound::Date(today);
    let mut times = Vec::with_capacity(repetitions);
    let mut last = None;
    for i in 0..=repetitions {
        let clock = Instant::now();
        let range = StatsRange::new(tz, since, until, bucket)?;
        let rows = store.stats(&range.query(TOP_CONTACTS)).await?;
        let report = StatsReport::build(&range, rows);
        let body = serde_json::to_vec(&report)?;
        if i > 0 {
            times.push(clock.elapsed().as_secs_f64() * 1000.0);
        }
        last = Some((report, body.len()));
    }
    times.sort_by(f64::total_cmp);
    let (report, bytes) = last.unwrap_or_else(|| unreachable!("at least one run"));
    Ok(RequestTiming {
        request: name,
        interactions: report.totals.interactions,
        buckets: report.series.len(),
        bytes,
        p50_ms: times[times.len() / 2],
        max_ms: times[times.len() - 1],
    })
}

impl StatsResult {
    /// The printed report.
    pub fn report(&self, options: &Options) -> Report {
        let mut report = Report::new("stats", options.smoke);
        let mut table = Table::new(
            format!(
                "Statistics on a database of {} calls over the last year ({} runs each)",
                thousands(self.calls as f64),
                self.repetitions
            ),
            &[
                "store",
                "request",
                "interactions",
                "buckets",
                "JSON",
                "p50",
                "max",
            ],
        );
        for s in &self.stores {
            for r in &s.requests {
                table.row(vec![
                    s.store.label().to_owned(),
                    r.request.to_owned(),
                    thousands(r.interactions as f64),
                    r.buckets.to_string(),
                    format!("{} KB", r.bytes / 1024),
                    ms(r.p50_ms),
                    ms(r.max_ms),
                ]);
            }
        }
        report.tables.push(table);
        let full = self.calls >= 1_000_000;
        for s in &self.stores {
            let year = s
                .requests
                .iter()
                .take(2)
                .map(|r| r.p50_ms)
                .fold(0.0, f64::max);
            report.targets.push(TargetCheck::new(
                format!(
                    "{} a year's daily stats, {} calls (slower of UTC and New York, p50)",
                    s.store,
                    thousands(s.calls as f64)
                ),
                ms(year),
                format!("< {TARGET_MS} ms"),
                if full {
                    Verdict::from_bool(year < TARGET_MS)
                } else {
                    Verdict::NotApplicable
                },
            ));
            report.notes.push(format!(
                "{}: loading the {} generated calls took {} (planned and applied in pages of \
                 1,000, statistics kept by each page's transaction; not judged)",
                s.store,
                thousands(s.calls as f64),
                secs(s.load_secs)
            ));
        }
        report.notes.push(
            "each run reads the store's summary rows and the busiest conversations, folds them \
             into local buckets and serializes the JSON, as `GET /api/stats` does (HTTP aside)"
                .into(),
        );
        if !full {
            report
                .notes
                .push("the 200 ms target is judged at 1,000,000 calls".into());
        }
        report.data = serde_json::to_value(self).unwrap_or_default();
        report
    }
}
