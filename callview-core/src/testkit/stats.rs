//! Conformance tests of statistics: figures computed by hand on a fixed
//! data set, time zones across a daylight-saving change, empty periods,
//! every bucket size, changes as calls move on, and the rebuild of
//! figures for calls stored before they were kept. (The store invariant
//! [`super::check_invariants`] also compares the summary rows with the
//! stored calls after every write of every conformance test.)

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::call::Call;
use crate::stats::{Bound, Bucket, StatsQuery, StatsRange, StatsReport, TOP_CONTACTS};
use crate::store::Store;

use super::builder::*;
use super::harness::Harness;

fn day(y: i32, m: u32, d: u32) -> Bound {
    Bound::Date(NaiveDate::from_ymd_opt(y, m, d).expect("a date"))
}

async fn report(
    store: &dyn Store,
    tz: &str,
    since: Bound,
    until: Bound,
    bucket: Bucket,
) -> StatsReport {
    let tz: Tz = tz.parse().expect("a time zone");
    let range = StatsRange::new(tz, since, until, bucket).expect("a range");
    let rows = store
        .stats(&range.query(TOP_CONTACTS))
        .await
        .unwrap_or_else(|e| panic!("stats failed: {e}"));
    StatsReport::build(&range, rows)
}

fn inbound(sid: &str, from: &str, minute: i64) -> CallBuilder {
    CallBuilder::new(sid)
        .from(from)
        .to(COMPANY)
        .direction("inbound")
        .start(at(minute))
}

/// Five interactions on Friday 2026-02-06 and Saturday 2026-02-07 (UTC):
/// * A 15:00 inbound from CUSTOMER, 60 s, a 45 s leg: answered, talk 45,
///   wait 15, $0.0085 + $0.004;
/// * B 15:30 inbound from CUSTOMER, 25 s, its only leg unanswered: missed,
///   wait 25;
/// * C 16:00 outbound to CUSTOMER2, 120 s: answered, talk 120, $0.014;
/// * E 16:30 inbound from CUSTOMER, still in progress: live;
/// * D next day 15:00 inbound from CUSTOMER2, busy: missed, wait 0.
fn fixed_day() -> Vec<Call> {
    vec![
        inbound(&sid(1), CUSTOMER, 0)
            .duration(60)
            .price("-0.0085")
            .build(),
        CallBuilder::new(&sid(2))
            .parent(&sid(1))
            .from(COMPANY)
            .to(AGENT_SIP)
            .direction("outbound-dial")
            .start(at_secs(15))
            .duration(45)
            .price("-0.004")
            .build(),
        inbound(&sid(3), CUSTOMER, 30).duration(25).build(),
        CallBuilder::new(&sid(4))
            .parent(&sid(3))
            .from(COMPANY)
            .to(AGENT_SIP)
            .direction("outbound-dial")
            .status("no-answer")
            .start(at(30))
            .duration(0)
            .build(),
        CallBuilder::new(&sid(5))
            .from(COMPANY)
            .to(CUSTOMER2)
            .direction("outbound-api")
            .start(at(60))
            .duration(120)
            .price("-0.014")
            .build(),
        inbound(&sid(6), CUSTOMER, 90)
            .status("in-progress")
            .no_duration()
            .build(),
        inbound(&sid(7), CUSTOMER2, 24 * 60)
            .status("busy")
            .duration(0)
            .build(),
    ]
}

/// The figures of [`fixed_day`], counted by hand.
pub async fn stats_match_figures_counted_by_hand(store: Arc<dyn Store>) {
    let h = Harness::new(store.clone());
    h.ingest(fixed_day()).await;
    let r = report(
        store.as_ref(),
        "UTC",
        day(2026, 2, 6),
        day(2026, 2, 7),
        Bucket::Day,
    )
    .await;
    let t = &r.totals;
    assert_eq!((t.interactions, t.answered, t.missed, t.live), (5, 2, 2, 1));
    let inbound = t.by_direction.inbound;
    assert_eq!(
        (inbound.interactions, inbound.answered, inbound.missed),
        (4, 1, 2)
    );
    let outbound = t.by_direction.outbound;
    assert_eq!(
        (outbound.interactions, outbound.answered, outbound.missed),
        (1, 1, 0)
    );
    assert_eq!(t.by_direction.internal.interactions, 0);
    // Waits of answered and missed: 15, 25, 0, 0.
    assert_eq!(t.wait.average, Some(10.0));
    assert_eq!(
        t.wait.p90,
        Some(30),
        "the 4th of 4 waits (25 s) is in [25, 30)"
    );
    // Talk of answered: 45, 120.
    assert_eq!(t.talk.average, Some(82.5));
    assert_eq!(t.talk.p90, Some(180), "120 s is in [120, 180)");
    assert_eq!(t.cost.len(), 1);
    assert_eq!(t.cost[0].currency, "USD");
    assert_eq!(t.cost[0].amount.to_string(), "0.0265");

    assert_eq!(r.series.len(), 2);
    assert_eq!(r.series[0].label, "2026-02-06");
    assert_eq!(r.series[0].start, "2026-02-06T00:00:00+00:00");
    assert_eq!(r.series[0].figures.interactions, 4);
    assert_eq!(r.series[1].figures.interactions, 1);
    assert_eq!(r.series[1].figures.missed, 1);

    let waits: Vec<u64> = r.wait_distribution.iter().map(|b| b.count).collect();
    assert_eq!(&waits[..7], &[2, 0, 0, 1, 0, 1, 0]);
    assert_eq!(waits.iter().sum::<u64>(), 4);

    // Friday is row 4, Saturday row 5 (Monday first).
    assert_eq!(r.by_hour_of_week.inbound[4][15], 2);
    assert_eq!(r.by_hour_of_week.inbound[4][16], 1);
    assert_eq!(r.by_hour_of_week.missed[4][15], 1);
    assert_eq!(r.by_hour_of_week.inbound[5][15], 1);
    assert_eq!(r.by_hour_of_week.missed[5][15], 1);
    let all: u64 = r.by_hour_of_week.inbound.iter().flatten().sum();
    assert_eq!(all, 4);

    let customer = h.id(CUSTOMER).await;
    let customer2 = h.id(CUSTOMER2).await;
    let by_calls: Vec<_> = r
        .top_contacts
        .by_calls
        .iter()
        .map(|c| (c.conversation_id, c.calls, c.missed))
        .collect();
    assert_eq!(by_calls, [(customer, 3, 1), (customer2, 2, 1)]);
    assert_eq!(r.top_contacts.by_calls[0].external_id, CUSTOMER_DISPLAY);
    let by_missed: Vec<_> = r
        .top_contacts
        .by_missed
        .iter()
        .map(|c| c.conversation_id)
        .collect();
    assert_eq!(by_missed, [customer, customer2]);

    assert_eq!(r.by_owned_number.len(), 1);
    let line = &r.by_owned_number[0];
    assert_eq!(
        (
            line.number.as_str(),
            line.interactions,
            line.answered,
            line.missed
        ),
        (COMPANY, 5, 2, 2)
    );

    // All time agrees with the conversations' counters.
    let all = report(
        store.as_ref(),
        "UTC",
        day(2000, 1, 1),
        day(2099, 12, 31),
        Bucket::Month,
    )
    .await;
    let total_calls: u64 = h
        .conversations()
        .await
        .iter()
        .map(|c| c.conversation.counters.total_calls)
        .sum();
    assert_eq!(all.totals.interactions, total_calls);
}

/// Buckets follow the zone's local calendar, across a daylight-saving change.
pub async fn stats_buckets_follow_local_time_across_dst(store: Arc<dyn Store>) {
    let h = Harness::new(store.clone());
    // Paris: CET (+1) until 2026-03-29 01:00 UTC, then CEST (+2).
    let utc = |d, h, m| {
        Utc.with_ymd_and_hms(2026, 3, d, h, m, 0)
            .single()
            .expect("a time")
    };
    let call = |n, start| {
        CallBuilder::new(&sid(n))
            .from(CUSTOMER)
            .to(COMPANY)
            .direction("inbound")
            .start(start)
            .duration(30)
            .build()
    };
    h.ingest(vec![
        call(1, utc(28, 23, 30)), // 00:30 on the 29th in Paris
        call(2, utc(29, 21, 59)), // 23:59 on the 29th in Paris
        call(3, utc(29, 22, 30)), // 00:30 on the 30th in Paris
    ])
    .await;
    let paris = report(
        store.as_ref(),
        "Europe/Paris",
        day(2026, 3, 28),
        day(2026, 3, 30),
        Bucket::Day,
    )
    .await;
    let counts: Vec<u64> = paris
        .series
        .iter()
        .map(|p| p.figures.interactions)
        .collect();
    assert_eq!(counts, [0, 2, 1]);
    assert_eq!(paris.series[1].start, "2026-03-29T00:00:00+01:00");
    assert_eq!(paris.series[1].end, "2026-03-30T00:00:00+02:00");
    let utc_report = report(
        store.as_ref(),
        "UTC",
        day(2026, 3, 28),
        day(2026, 3, 30),
        Bucket::Day,
    )
    .await;
    let counts: Vec<u64> = utc_report
        .series
        .iter()
        .map(|p| p.figures.interactions)
        .collect();
    assert_eq!(counts, [1, 2, 0]);

    // The 29th in Paris has 23 hours; the 00:30 call is in its first.
    let hours = report(
        store.as_ref(),
        "Europe/Paris",
        day(2026, 3, 29),
        day(2026, 3, 29),
        Bucket::Hour,
    )
    .await;
    assert_eq!(hours.series.len(), 23);
    assert_eq!(hours.series[0].figures.interactions, 1);
    assert_eq!(hours.series[22].label, "2026-03-29T23:00");
    assert_eq!(hours.series[22].figures.interactions, 1);
    // Sunday (row 6), 23:00 local.
    assert_eq!(hours.by_hour_of_week.inbound[6][23], 1);
    assert_eq!(hours.by_hour_of_week.inbound[6][0], 1);

    // New York is 5 hours behind UTC in February: 15:00 UTC is 10:00.
    h.ingest(fixed_day()).await;
    let ny = report(
        store.as_ref(),
        "America/New_York",
        day(2026, 2, 6),
        day(2026, 2, 7),
        Bucket::Day,
    )
    .await;
    assert_eq!(ny.series[0].figures.interactions, 4);
    assert_eq!(ny.by_hour_of_week.inbound[4][10], 2);
}

/// An empty period answers every bucket, zero-filled, with no averages.
pub async fn stats_of_an_empty_period_are_zero_filled(store: Arc<dyn Store>) {
    let h = Harness::new(store.clone());
    h.ingest(fixed_day()).await;
    let r = report(
        store.as_ref(),
        "UTC",
        day(2025, 1, 1),
        day(2025, 1, 10),
        Bucket::Day,
    )
    .await;
    assert_eq!(r.series.len(), 10);
    assert!(r.series.iter().all(|p| p.figures.interactions == 0));
    assert_eq!(r.totals.interactions, 0);
    assert_eq!(r.totals.wait.average, None);
    assert_eq!(r.totals.talk.p90, None);
    assert!(r.totals.cost.is_empty());
    assert!(r.top_contacts.by_calls.is_empty());
    assert!(r.by_owned_number.is_empty());
    assert_eq!(r.wait_distribution.iter().map(|b| b.count).sum::<u64>(), 0);
}

/// Hours, days, weeks (from Monday) and months hold the same calls.
pub async fn stats_every_bucket_size(store: Arc<dyn Store>) {
    let h = Harness::new(store.clone());
    h.ingest(fixed_day()).await;
    let counts =
        |r: &StatsReport| -> Vec<u64> { r.series.iter().map(|p| p.figures.interactions).collect() };

    let hours = report(
        store.as_ref(),
        "UTC",
        day(2026, 2, 6),
        day(2026, 2, 6),
        Bucket::Hour,
    )
    .await;
    assert_eq!(hours.series.len(), 24);
    assert_eq!(hours.series[15].figures.interactions, 2);
    assert_eq!(hours.series[16].figures.interactions, 2);
    assert_eq!(counts(&hours).iter().sum::<u64>(), 4);

    let weeks = report(
        store.as_ref(),
        "UTC",
        day(2026, 2, 1),
        day(2026, 2, 14),
        Bucket::Week,
    )
    .await;
    let labels: Vec<&str> = weeks.series.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(labels, ["2026-02-01", "2026-02-02", "2026-02-09"]);
    assert_eq!(counts(&weeks), [0, 5, 0]);

    let months = report(
        store.as_ref(),
        "UTC",
        day(2026, 1, 1),
        day(2026, 3, 31),
        Bucket::Month,
    )
    .await;
    assert_eq!(counts(&months), [0, 5, 0]);
    assert_eq!(months.series[1].label, "2026-02");
    assert_eq!(months.totals, weeks.totals);

    // A period given as instants: 15:15 to 16:15 holds B and C.
    let since = Bound::parse("since", "2026-02-06T15:15:00Z").expect("an instant");
    let until = Bound::parse("until", "2026-02-06T16:15:00Z").expect("an instant");
    let r = report(store.as_ref(), "UTC", since, until, Bucket::Hour).await;
    assert_eq!(counts(&r), [1, 1]);
}

/// Figures follow calls as they move on: a live call ends, a late leg
/// changes the talk time, a late price adds to the cost; rebuilding from
/// the stored calls gives the same figures.
pub async fn stats_follow_changes_and_rebuild_the_same(store: Arc<dyn Store>) {
    let h = Harness::new(store.clone());
    h.ingest(fixed_day()).await;
    let figures = |r: &StatsReport| (r.totals.answered, r.totals.live, r.totals.talk.average);
    let before = report(
        store.as_ref(),
        "UTC",
        day(2026, 2, 6),
        day(2026, 2, 7),
        Bucket::Day,
    )
    .await;
    assert_eq!(figures(&before), (2, 1, Some(82.5)));

    // E ends after 300 s with a 200 s leg and a price.
    h.ingest(vec![
        inbound(&sid(6), CUSTOMER, 90)
            .duration(300)
            .price("-0.01")
            .updated(at(100))
            .build(),
        CallBuilder::new(&sid(8))
            .parent(&sid(6))
            .from(COMPANY)
            .to(AGENT_SIP)
            .direction("outbound-dial")
            .start(at(91))
            .duration(200)
            .build(),
    ])
    .await;
    let after = report(
        store.as_ref(),
        "UTC",
        day(2026, 2, 6),
        day(2026, 2, 7),
        Bucket::Day,
    )
    .await;
    assert_eq!(figures(&after), (3, 0, Some((45.0 + 120.0 + 200.0) / 3.0)));
    assert_eq!(after.totals.cost[0].amount.to_string(), "0.0365");
    assert_eq!(
        after.totals.wait.average,
        Some((15.0 + 25.0 + 0.0 + 0.0 + 100.0) / 5.0)
    );

    // Computing every figure again from the calls changes nothing.
    store
        .write_cursor(crate::stats::REBUILD_CURSOR, "pending")
        .await
        .expect("a cursor");
    let counted = crate::stats::ensure_built(store.as_ref())
        .await
        .expect("a rebuild");
    assert_eq!(counted, 5);
    assert_eq!(
        store
            .read_cursor(crate::stats::REBUILD_CURSOR)
            .await
            .expect("a cursor")
            .as_deref(),
        Some("done")
    );
    assert_eq!(
        crate::stats::ensure_built(store.as_ref())
            .await
            .expect("nothing to do"),
        0
    );
    let rebuilt = report(
        store.as_ref(),
        "UTC",
        day(2026, 2, 6),
        day(2026, 2, 7),
        Bucket::Day,
    )
    .await;
    assert_eq!(rebuilt, after);
}

/// The busiest conversations of a period are found exactly also when the
/// busiest of all time are not the busiest of the period (the search that
/// starts from all-time totals has to widen).
pub async fn stats_busiest_conversations_of_a_period(store: Arc<dyn Store>) {
    let h = Harness::new(store.clone());
    let customer = |i: u64| format!("+1617555{:04}", 1000 + i);
    let mut calls = Vec::new();
    let mut n = 0u64;
    for i in 0..150u64 {
        // All time: the first customers call most (in January); in
        // February the last ones do.
        let january = (150 - i) / 10;
        let february = i / 30 + u64::from(i % 11 == 0);
        for k in 0..january + february {
            n += 1;
            let day = if k < january { 10 } else { 40 };
            let status = if k % 3 == 1 { "no-answer" } else { "completed" };
            calls.push(
                CallBuilder::new(&sid(n))
                    .from(&customer(i))
                    .to(COMPANY)
                    .direction("inbound")
                    .status(status)
                    .start(
                        Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0)
                            .single()
                            .expect("a time")
                            + chrono::Duration::days(day)
                            + chrono::Duration::minutes(k as i64),
                    )
                    .duration(if status == "completed" { 30 } else { 0 })
                    .build(),
            );
        }
    }
    for batch in calls.chunks(500) {
        h.ingest(batch.to_vec()).await;
    }
    let february = StatsRange::new(Tz::UTC, day(2026, 2, 1), day(2026, 2, 28), Bucket::Month)
        .expect("a range");
    let mut all = february.query(1_000);
    let full = store.stats(&all).await.expect("stats");
    assert!(full.top_by_calls.len() > 100);
    // With the period's rows read, a period this small is counted at
    // once; asked for the busiest alone, the store searches from the
    // all-time totals. Both give the first of the full list.
    let search_only = |top| StatsQuery {
        period: all.period,
        top,
        ..StatsQuery::default()
    };
    for top in [1u32, 3, 10] {
        all.top = top;
        let n = top as usize;
        for query in [all.clone(), search_only(top)] {
            let few = store.stats(&query).await.expect("stats");
            assert_eq!(
                few.top_by_calls,
                full.top_by_calls[..n],
                "top {top} by calls"
            );
            assert_eq!(
                few.top_by_missed,
                full.top_by_missed[..n],
                "top {top} by missed"
            );
        }
    }
    // In February customers 121, 132 and 143 lead with 5 calls (4 + 1),
    // tied, in external id order.
    let leaders: Vec<(&str, u64)> = full.top_by_calls[..4]
        .iter()
        .map(|t| (t.external_id.as_str(), t.calls))
        .collect();
    assert_eq!(
        leaders,
        [
            ("+1 (617) 555-1121", 5),
            ("+1 (617) 555-1132", 5),
            ("+1 (617) 555-1143", 5),
            ("+1 (617) 555-1099", 4)
        ]
    );
}
