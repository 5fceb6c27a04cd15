//! Conformance tests for several writers on one database: two store handles
//! (as two processes would hold) writing the same call trees at once.
//!
//! Each test takes a factory of **pairs**: two handles opened separately on
//! one new database (a SQLite file opened twice, two PostgreSQL pools). The
//! stores' [`crate::store::IngestTx`] must serialise the writers so that
//! every plan is computed from what its own transaction read: the final
//! state is then exactly that of one clean ingest, whatever interleaving
//! the scheduler picks.

use std::future::Future;
use std::sync::Arc;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

use crate::call::Call;
use crate::store::Store;
use crate::sync::{ingest_in, SyncEngine};

use super::builder::rules;
use super::check::{assert_invariants, snapshot};
use super::mock::MockTwilio;
use super::props::{build_calls, call_trees, earlier_version};

/// How many rounds each test runs (each on new databases, new call trees).
const ROUNDS: usize = 6;

/// Two store handles on one new database.
pub type StorePair = (Arc<dyn Store>, Arc<dyn Store>);

/// A small deterministic generator (no clock, no global state), for
/// shuffles and splits that are the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Call trees for round `round`: three samples of the property tests'
/// generator (up to 18 trees, legs and grandchildren included).
fn round_calls(runner: &mut TestRunner) -> Vec<Call> {
    let mut trees = Vec::new();
    for _ in 0..3 {
        let tree = call_trees()
            .new_tree(runner)
            .unwrap_or_else(|e| panic!("generating call trees: {e}"));
        trees.extend(tree.current());
    }
    build_calls(&trees)
}

/// The state one clean ingest of `calls` leaves.
async fn reference(store: Arc<dyn Store>, calls: Vec<Call>) -> super::StoreSnapshot {
    let engine = SyncEngine::new(Arc::new(MockTwilio::new()), store.clone(), rules());
    engine
        .ingest(&rules(), calls)
        .await
        .unwrap_or_else(|e| panic!("clean ingest failed: {e}"));
    snapshot(store.as_ref()).await.expect("snapshot")
}

/// Splits `calls`, shuffled, into small pages for two writers: children
/// and parents land on either side, and about a third of the pages go to
/// both (overlapping writes of the same trees).
fn split_for_two(calls: &[Call], rng: &mut Lcg) -> (Vec<Vec<Call>>, Vec<Vec<Call>>) {
    let mut shuffled = calls.to_vec();
    rng.shuffle(&mut shuffled);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut rest = shuffled.as_slice();
    while !rest.is_empty() {
        let size = (1 + rng.below(3)).min(rest.len());
        let (page, tail) = rest.split_at(size);
        rest = tail;
        match rng.below(3) {
            0 => a.push(page.to_vec()),
            1 => b.push(page.to_vec()),
            _ => {
                a.push(page.to_vec());
                b.push(page.to_vec());
            }
        }
    }
    (a, b)
}

/// Two engines on two handles of one database ingest overlapping pages of
/// the same call trees at once (children and parents split across them),
/// for several rounds: counters equal rows, no duplicates, every leg in its
/// root's conversation, and the final state equals one clean ingest.
pub async fn concurrent_writers_stay_exact<F, Fut>(pair: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = StorePair>,
{
    let mut runner = TestRunner::deterministic();
    let mut rng = Lcg(12_345);
    for round in 0..ROUNDS {
        let calls = round_calls(&mut runner);
        let (clean, _) = pair().await;
        let expected = reference(clean, calls.clone()).await;

        let (a, b) = pair().await;
        let writer =
            |store: Arc<dyn Store>| SyncEngine::new(Arc::new(MockTwilio::new()), store, rules());
        let (engine_a, engine_b) = (writer(a.clone()), writer(b.clone()));
        let (pages_a, pages_b) = split_for_two(&calls, &mut rng);
        let rules = rules();
        let run = |engine: SyncEngine, pages: Vec<Vec<Call>>| {
            let rules = rules.clone();
            async move {
                for page in pages {
                    engine
                        .ingest(&rules, page)
                        .await
                        .unwrap_or_else(|e| panic!("round {round}: a writer failed: {e}"));
                    tokio::task::yield_now().await;
                }
            }
        };
        let (ra, rb) = tokio::join!(
            tokio::spawn(run(engine_a, pages_a)),
            tokio::spawn(run(engine_b, pages_b))
        );
        ra.expect("writer A");
        rb.expect("writer B");

        assert_invariants(a.as_ref()).await;
        let actual = snapshot(b.as_ref()).await.expect("snapshot");
        assert_eq!(
            actual, expected,
            "round {round}: two concurrent writers left another state than one clean ingest"
        );
    }
}

/// A sync on one handle while a status-callback writer on the other reads,
/// merges and writes calls of the same trees (one transaction each, as the
/// webhook does), some with older versions: nothing is lost, no older
/// version wins, and the final state equals one clean ingest.
pub async fn callback_writer_races_a_sync<F, Fut>(pair: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = StorePair>,
{
    let mut runner = TestRunner::deterministic();
    let mut rng = Lcg(777);
    for round in 0..ROUNDS {
        let calls = round_calls(&mut runner);
        let (clean, _) = pair().await;
        let expected = reference(clean, calls.clone()).await;

        let (a, b) = pair().await;
        let twilio = Arc::new(MockTwilio::new().with_page_size(2));
        twilio.set_calls(calls.clone());
        let syncer = SyncEngine::new(twilio, a.clone(), rules());
        let mut callbacks: Vec<Call> = calls
            .iter()
            .flat_map(|c| {
                let earlier = earlier_version(c, rng.below(2) == 0);
                [earlier, c.clone()]
            })
            .collect();
        rng.shuffle(&mut callbacks);
        let store_b = b.clone();
        let callback_writer = async move {
            let rules = rules();
            for call in callbacks {
                let mut tx = store_b.begin_ingest().await.expect("begin");
                // Read what is stored, as the webhook does, then write.
                tx.load_trees(std::slice::from_ref(&call.sid))
                    .await
                    .expect("load_trees");
                ingest_in(tx.as_mut(), &rules, vec![call])
                    .await
                    .unwrap_or_else(|e| panic!("round {round}: a callback failed: {e}"));
                tx.commit().await.expect("commit");
                tokio::task::yield_now().await;
            }
        };
        let sync = async move {
            syncer
                .run(
                    crate::sync::SyncMode::Since(super::at(-60 * 24 * 100)),
                    None,
                )
                .await
                .unwrap_or_else(|e| panic!("round {round}: the sync failed: {e}"))
        };
        let (synced, written) = tokio::join!(tokio::spawn(sync), tokio::spawn(callback_writer));
        synced.expect("sync task");
        written.expect("callback task");

        assert_invariants(b.as_ref()).await;
        let actual = snapshot(a.as_ref()).await.expect("snapshot");
        assert_eq!(
            actual, expected,
            "round {round}: a callback writer racing a sync left another state than one clean ingest"
        );
    }
}

/// A [`crate::TwilioClient`] that waits before every page: a run slow
/// enough for another process to take its sync lock over mid-way.
struct SlowPages {
    inner: MockTwilio,
    delay: std::time::Duration,
}

#[async_trait::async_trait]
impl crate::TwilioClient for SlowPages {
    async fn list_calls_page(
        &self,
        filter: &crate::twilio::CallFilter,
        page: Option<&crate::twilio::PageToken>,
    ) -> Result<crate::twilio::CallPage, crate::TwilioError> {
        tokio::time::sleep(self.delay).await;
        self.inner.list_calls_page(filter, page).await
    }

    async fn fetch_call(&self, sid: &crate::CallSid) -> Result<Call, crate::TwilioError> {
        self.inner.fetch_call(sid).await
    }

    async fn list_incoming_numbers(
        &self,
    ) -> Result<Vec<crate::twilio::IncomingNumber>, crate::TwilioError> {
        self.inner.list_incoming_numbers().await
    }

    crate::forward_media_methods!(inner);
}

/// A sync loses its lock mid-run (`steal` makes that happen the store's
/// way: a lease left to run out, a session ended) and another process
/// takes it over: the first run stops with [`crate::StoreError::LockLost`]
/// at its next page, having written nothing of that page; the second
/// completes; the store ends exactly as after one clean ingest.
///
/// `pair().0` must take the lock with a short lease (SQLite) so that
/// `steal` can let it run out.
pub async fn lost_sync_lock_stops_the_run<F, Fut, S, SFut>(pair: F, steal: S)
where
    F: Fn() -> Fut,
    Fut: Future<Output = StorePair>,
    S: Fn(StorePair) -> SFut,
    SFut: Future<Output = ()>,
{
    let mut runner = TestRunner::deterministic();
    let mut calls = Vec::new();
    while calls.len() < 12 {
        calls = round_calls(&mut runner);
    }
    let (clean, _) = pair().await;
    let expected = reference(clean, calls.clone()).await;

    let (a, b) = pair().await;
    let mock = MockTwilio::new().with_page_size(2);
    mock.set_calls(calls.clone());
    let slow = SlowPages {
        inner: mock,
        delay: std::time::Duration::from_millis(600),
    };
    let first = SyncEngine::new(Arc::new(slow), a.clone(), rules()).with_concurrency(1);
    let since = crate::sync::SyncMode::Since(super::at(-60 * 24 * 100));
    let first_run = tokio::spawn(async move { first.run(since, None).await });
    // Let the first run apply a page or two, then take its lock away.
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    steal((a.clone(), b.clone())).await;
    let second_twilio = MockTwilio::new().with_page_size(5);
    second_twilio.set_calls(calls.clone());
    let second = SyncEngine::new(Arc::new(second_twilio), b.clone(), rules());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let report = loop {
        match second.run(since, None).await {
            Ok(report) => break report,
            Err(crate::SyncError::Busy) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the second run failed: {e}"),
        }
    };
    assert!(report.fetched > 0, "{report:?}");
    let stopped = first_run.await.expect("the first run's task");
    match stopped {
        Err(e) => assert!(
            e.is_lock_lost(),
            "the first run stops on the lost lock: {e}"
        ),
        Ok(report) => panic!("the first run went on without its lock: {report:?}"),
    }
    assert_invariants(a.as_ref()).await;
    let actual = snapshot(b.as_ref()).await.expect("snapshot");
    assert_eq!(
        actual, expected,
        "a run that lost its lock left something inconsistent"
    );
}
