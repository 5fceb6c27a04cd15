//! Both stores hold identical data for the same input: one simulated
//! account (forwarded and transferred legs, anonymous and internal calls,
//! international numbers, calls never dialled) synced into SQLite and into
//! PostgreSQL, then compared field by field: every conversation, contact,
//! counter and call row (all but database ids and row timestamps), and
//! what the API shows.

mod common;

use std::collections::BTreeMap;

use callview_core::stats::{Bound, Bucket, StatsRange, StatsReport};
use callview_core::testkit::{all_conversations, snapshot};
use callview_core::{Store, StoredCall};
use common::{load, sim, store, Backend};

/// Every row of a store, keyed by what does not depend on the database:
/// conversation key → (conversation fields, contact fields, call rows by SID).
async fn rows(store: &dyn Store) -> BTreeMap<String, (String, String, BTreeMap<String, String>)> {
    let mut out = BTreeMap::new();
    for view in all_conversations(store).await.unwrap() {
        let c = &view.conversation;
        let conversation = format!(
            "external_id={:?} subject={:?} status={:?} counters={:?}",
            c.external_id, c.subject, c.status, c.counters
        );
        let k = &view.contact;
        let contact = format!(
            "phone_number={:?} formatted={:?} name={:?} metadata={}",
            k.phone_number, k.formatted_number, k.display_name, k.metadata
        );
        let calls: BTreeMap<String, String> = store
            .conversation_calls(c.id)
            .await
            .unwrap()
            .into_iter()
            .map(|row: StoredCall| {
                let fields = format!(
                    "root={} call={:?} derived={:?} recording={:?} refresh={:?}",
                    row.root_sid, row.call, row.derived, row.recording_url, row.refresh
                );
                (row.call.sid.to_string(), fields)
            })
            .collect();
        out.insert(k.phone_number.clone(), (conversation, contact, calls));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_hold_the_same_data_for_the_same_account() {
    let account = sim(500, 23);
    let sqlite = store(Backend::Sqlite).await;
    let postgres = store(Backend::Postgres).await;
    load(&sqlite, &account).await;
    load(&postgres, &account).await;

    let (a, b) = (rows(sqlite.as_ref()).await, rows(postgres.as_ref()).await);
    assert!(a.len() > 20, "the account makes many conversations");
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same conversations"
    );
    for (key, (conversation, contact, calls)) in &a {
        let (other_conversation, other_contact, other_calls) = &b[key];
        assert_eq!(conversation, other_conversation, "{key}: conversation");
        assert_eq!(contact, other_contact, "{key}: contact");
        assert_eq!(
            calls.keys().collect::<Vec<_>>(),
            other_calls.keys().collect::<Vec<_>>(),
            "{key}: the same calls"
        );
        for (sid, fields) in calls {
            assert_eq!(fields, &other_calls[sid], "{key}: call {sid}");
        }
    }
    assert_eq!(
        snapshot(sqlite.as_ref()).await.unwrap(),
        snapshot(postgres.as_ref()).await.unwrap(),
        "the same interactions, folded the same way"
    );

    // The same statistics, whatever the zone and bucket (conversations
    // named by external id: row ids may differ between databases).
    for (tz, bucket) in [
        ("UTC", Bucket::Day),
        ("America/New_York", Bucket::Hour),
        ("Asia/Kolkata", Bucket::Week),
        ("Europe/Paris", Bucket::Month),
    ] {
        let a = stats(sqlite.as_ref(), tz, bucket).await;
        let b = stats(postgres.as_ref(), tz, bucket).await;
        assert!(
            a.totals.interactions > 100,
            "{tz}: the account's calls are counted"
        );
        assert_eq!(a.totals, b.totals, "{tz} by {bucket:?}: totals");
        assert_eq!(a.series, b.series, "{tz} by {bucket:?}: series");
        assert_eq!(a.by_hour_of_week, b.by_hour_of_week, "{tz}: hour of week");
        assert_eq!(a.by_owned_number, b.by_owned_number, "{tz}: lines");
        assert_eq!(a.top_contacts, b.top_contacts, "{tz}: top contacts");
        assert_eq!(a, b, "{tz} by {bucket:?}: the same statistics");
    }
}

/// A year of statistics up to the simulated account's present.
async fn stats(store: &dyn Store, tz: &str, bucket: Bucket) -> StatsReport {
    let range = StatsRange::new(
        tz.parse().unwrap(),
        Bound::Date(chrono::Utc::now().date_naive() - chrono::Days::new(365)),
        Bound::Date(chrono::Utc::now().date_naive() + chrono::Days::new(1)),
        bucket,
    )
    .unwrap();
    let mut rows = store.stats(&range.query(10)).await.unwrap();
    for top in rows
        .top_by_calls
        .iter_mut()
        .chain(rows.top_by_missed.iter_mut())
    {
        top.conversation_id = callview_core::ConversationId(0);
    }
    StatsReport::build(&range, rows)
}
