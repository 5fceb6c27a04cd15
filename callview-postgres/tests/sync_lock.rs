//! Several processes on one database: the advisory sync lock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use callview_core::endpoint::{Normalizer, OwnedNumbers, PartyRules};
use callview_core::store::ConversationQuery;
use callview_core::{Store, SyncEngine, SyncError, SyncMode};
use callview_postgres::{testing, PostgresOptions, PostgresStore};
use chrono::{TimeZone, Utc};

use common::{rest_call, FakeTwilio, OWNED};

fn rules() -> PartyRules {
    let n = Normalizer::default();
    PartyRules::new(n, OwnedNumbers::from_raw(&n, [OWNED]))
}

/// A second store on the same database, as another process would open it.
async fn second_store(url: &str, max_connections: u32) -> PostgresStore {
    PostgresStore::connect_with(PostgresOptions::new(url).max_connections(max_connections))
        .await
        .unwrap()
}

async fn advisory_locks_held(store: &PostgresStore) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND objid = ($1::int8 & 4294967295) AND classid = ($1::int8 >> 32)",
    )
    .bind(callview_postgres::SYNC_LOCK_KEY)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn only_one_store_holds_the_lock_at_a_time() {
    let url = testing::fresh_database_url().await;
    let a = second_store(&url, 2).await;
    let b = second_store(&url, 2).await;

    assert!(a.try_lock_sync().await.unwrap());
    assert_eq!(advisory_locks_held(&a).await, 1);
    assert!(
        !b.try_lock_sync().await.unwrap(),
        "b must not get the lock a holds"
    );
    assert!(
        !a.try_lock_sync().await.unwrap(),
        "a holds it already: a second sync in-process is busy too"
    );
    a.unlock_sync().await.unwrap();
    assert_eq!(advisory_locks_held(&a).await, 0);
    a.unlock_sync().await.unwrap(); // unlocking twice is harmless

    assert!(b.try_lock_sync().await.unwrap());
    assert!(!a.try_lock_sync().await.unwrap());
    assert!(
        format!("{b:?}").contains("sync_lock_held: Some(true)"),
        "{b:?}"
    );

    // A holder that goes away (process exit) releases the lock with its session.
    b.close().await;
    drop(b);
    let mut got = false;
    for _ in 0..50 {
        if a.try_lock_sync().await.unwrap() {
            got = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(got, "the lock of a closed store must be released");
    a.unlock_sync().await.unwrap();
}

fn account() -> Vec<callview_core::Call> {
    (0..40)
        .map(|i| {
            let start =
                Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(i);
            let mut call = rest_call(
                &format!("CA{i:032}"),
                None,
                &format!("+1978555{:04}", i % 7),
                OWNED,
                "inbound",
                "completed",
                &callview_core::call::format_rfc2822(&start),
                Some(30),
            );
            if i % 4 == 3 {
                call.parent_call_sid = callview_core::CallSid::new(format!("CA{:032}", i - 1));
                call.refresh_raw();
            }
            call
        })
        .collect()
}

#[tokio::test]
async fn concurrent_syncs_on_one_database_do_not_duplicate() {
    let url = testing::fresh_database_url().await;
    let a: Arc<dyn Store> = Arc::new(second_store(&url, 3).await);
    // The lock connection lives outside the pool: a pool of one still syncs.
    let b: Arc<dyn Store> = Arc::new(second_store(&url, 1).await);
    let twilio = Arc::new(FakeTwilio::new(account()).with_delay(Duration::from_millis(400)));
    let engine_a = SyncEngine::new(twilio.clone(), a.clone(), rules()).with_page_size(10);
    let engine_b = SyncEngine::new(twilio.clone(), b.clone(), rules()).with_page_size(10);
    let since = SyncMode::Since(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());

    let (ra, rb) = tokio::join!(engine_a.run(since, None), engine_b.run(since, None));
    let busy = [&ra, &rb]
        .iter()
        .filter(|r| matches!(r, Err(SyncError::Busy)))
        .count();
    assert_eq!(busy, 1, "exactly one run must be refused: {ra:?} / {rb:?}");
    let report = ra
        .as_ref()
        .ok()
        .or(rb.as_ref().ok())
        .expect("one run succeeds");
    assert_eq!(report.inserted, 40);

    let check = |counts: callview_core::store::StoreCounts| {
        assert_eq!(
            (counts.contacts, counts.conversations, counts.calls),
            (7, 7, 40)
        );
    };
    check(a.counts().await.unwrap());

    // Now one after the other: both succeed, nothing doubles.
    let ra = engine_a.run(since, None).await.unwrap();
    let rb = engine_b.run(since, None).await.unwrap();
    assert_eq!((ra.inserted, ra.updated, ra.unchanged), (0, 0, 40));
    assert_eq!((rb.inserted, rb.updated, rb.unchanged), (0, 0, 40));
    check(b.counts().await.unwrap());
    let page = b
        .list_conversations(&ConversationQuery::page(100, 0))
        .await
        .unwrap();
    let roots: u64 = page
        .conversations
        .iter()
        .map(|v| v.conversation.counters.total_calls)
        .sum();
    assert_eq!(roots, 30);

    // Many runs at once: never more than one at a time, never a duplicate.
    let mut runs = Vec::new();
    for i in 0..6 {
        let engine = if i % 2 == 0 {
            engine_a.clone()
        } else {
            engine_b.clone()
        };
        runs.push(tokio::spawn(async move { engine.run(since, None).await }));
    }
    let mut ok = 0;
    for run in runs {
        match run.await.unwrap() {
            Ok(_) => ok += 1,
            Err(SyncError::Busy) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert!(ok >= 1);
    check(a.counts().await.unwrap());
}
