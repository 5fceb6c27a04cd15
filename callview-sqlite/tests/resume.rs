//! An uncapped sync that stops half-way (Twilio failing, the process
//! killed) resumes: the day slices it completed are not fetched again, and
//! the final state equals a clean sync.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use callview_core::sync::{SyncMode, RESUME_CURSOR};
use callview_core::testkit::{self, CallBuilder, MockTwilio, COMPANY};
use callview_core::twilio::{CallFilter, CallPage, IncomingNumber, PageToken};
use callview_core::{Call, CallSid, Store, SyncEngine, SyncError, TwilioClient, TwilioError};
use callview_sqlite::SqliteStore;
use chrono::{DateTime, Duration, Utc};

/// Serves `inner` but fails every call-list request after the first `ok`.
struct FailingAfter {
    inner: Arc<MockTwilio>,
    ok: u64,
    served: AtomicU64,
}

#[async_trait]
impl TwilioClient for FailingAfter {
    async fn list_calls_page(
        &self,
        filter: &CallFilter,
        page: Option<&PageToken>,
    ) -> Result<CallPage, TwilioError> {
        if self.served.fetch_add(1, Ordering::SeqCst) >= self.ok {
            return Err(TwilioError::Transport("connection reset by peer".into()));
        }
        self.inner.list_calls_page(filter, page).await
    }
    async fn fetch_call(&self, sid: &CallSid) -> Result<Call, TwilioError> {
        self.inner.fetch_call(sid).await
    }
    async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
        self.inner.list_incoming_numbers().await
    }
    callview_core::forward_media_methods!(inner);
}

fn account(now: DateTime<Utc>) -> Arc<MockTwilio> {
    let mock = MockTwilio::new()
        .with_page_size(2)
        .with_owned_numbers([COMPANY]);
    mock.set_calls((0..60u64).map(|i| {
        CallBuilder::new(&testkit::sid(i + 1))
            .from(&format!("+1978844{:04}", 7000 + i % 7))
            .to(COMPANY)
            .direction("inbound")
            .status("completed")
            .start(now - Duration::hours(12 + 15 * i as i64))
            .duration(30)
            .build()
    }));
    Arc::new(mock)
}

fn engine(client: Arc<dyn TwilioClient>, store: Arc<dyn Store>) -> SyncEngine {
    SyncEngine::new(client, store, testkit::rules())
        .with_page_size(2)
        .with_concurrency(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_backfill_resumes_without_fetching_completed_slices_again() {
    let now = Utc::now();
    let since = SyncMode::Since(now - Duration::days(40));

    // A clean sync, for reference: the state and how many pages it takes.
    let mock = account(now);
    let clean: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let report = engine(mock.clone(), clean.clone())
        .run(since, None)
        .await
        .unwrap();
    assert_eq!(report.inserted, 60);
    let full_pages = mock.page_requests();
    let expected = testkit::snapshot(clean.as_ref()).await.unwrap();

    // The same sync, failing after 20 pages: an error, committed pages kept.
    let mock = account(now);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let failing = Arc::new(FailingAfter {
        inner: mock.clone(),
        ok: 20,
        served: AtomicU64::new(0),
    });
    let err = engine(failing, store.clone())
        .run(since, None)
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Twilio(_)), "{err}");
    testkit::assert_invariants(store.as_ref()).await;
    let resume = store.read_cursor(RESUME_CURSOR).await.unwrap().unwrap();
    assert!(resume.contains("done"), "{resume}");
    let pages_before = mock.page_requests();

    // The next run skips what was completed and ends in the clean state.
    let report = engine(mock.clone(), store.clone())
        .run(since, None)
        .await
        .unwrap();
    assert!(report.resumed_slices > 0, "{report:?}");
    let resumed_pages = mock.page_requests() - pages_before;
    assert!(
        resumed_pages < full_pages,
        "the resumed run fetched {resumed_pages} pages, a full run {full_pages}"
    );
    testkit::assert_invariants(store.as_ref()).await;
    assert_eq!(testkit::snapshot(store.as_ref()).await.unwrap(), expected);
    let cleared = store.read_cursor(RESUME_CURSOR).await.unwrap().unwrap();
    assert_eq!(
        cleared, r#"{"done":[]}"#,
        "a complete run clears the resume cursor"
    );
}

/// A scheduled incremental run between a killed backfill and its restart
/// leaves the backfill's completed slices alone: the restart still skips
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_run_keeps_a_killed_backfills_progress() {
    let now = Utc::now();
    let since = SyncMode::Since(now - Duration::days(40));
    let mock = account(now);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let failing = Arc::new(FailingAfter {
        inner: mock.clone(),
        ok: 20,
        served: AtomicU64::new(0),
    });
    engine(failing, store.clone())
        .run(since, None)
        .await
        .unwrap_err();
    let progress = store.read_cursor(RESUME_CURSOR).await.unwrap().unwrap();
    assert!(
        progress.contains("done") && progress != r#"{"done":[]}"#,
        "{progress}"
    );

    let report = engine(mock.clone(), store.clone())
        .run(SyncMode::incremental(), None)
        .await
        .unwrap();
    assert_eq!(
        report.resumed_slices, 0,
        "an incremental run reads its own window"
    );
    assert_eq!(
        store.read_cursor(RESUME_CURSOR).await.unwrap().unwrap(),
        progress,
        "the backfill's progress is untouched"
    );

    let report = engine(mock.clone(), store.clone())
        .run(since, None)
        .await
        .unwrap();
    assert!(report.resumed_slices > 0, "{report:?}");
    testkit::assert_invariants(store.as_ref()).await;
}

/// A backfill asked to stop (a graceful shutdown) ends after the page it
/// is applying: whole pages only, consistent, and the next run resumes
/// and ends in the clean state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_backfill_keeps_whole_pages_and_the_next_run_resumes() {
    let now = Utc::now();
    let since = SyncMode::Since(now - Duration::days(40));
    let clean: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    engine(account(now), clean.clone())
        .run(since, None)
        .await
        .unwrap();
    let expected = testkit::snapshot(clean.as_ref()).await.unwrap();

    let mock = account(now);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let stopping = engine(mock.clone(), store.clone());
    let flag = stopping.stop_flag().clone();
    let applied = AtomicU64::new(0);
    let fetched = AtomicU64::new(0);
    // Raised while the 12th page is being reported: that page is applied,
    // no later one is.
    let on_page = |p: callview_core::sync::Progress| {
        if applied.fetch_add(1, Ordering::SeqCst) + 1 == 12 {
            fetched.store(p.fetched, Ordering::SeqCst);
            flag.stop();
        }
    };
    let err = stopping.run(since, Some(&on_page)).await.unwrap_err();
    assert!(matches!(err, SyncError::Stopped), "{err}");
    assert_eq!(applied.load(Ordering::SeqCst), 12, "no page after the stop");
    testkit::assert_invariants(store.as_ref()).await;
    // Every call of the 12 pages, each page applied whole.
    assert_eq!(
        store.counts().await.unwrap().calls,
        fetched.load(Ordering::SeqCst)
    );
    assert!(store.read_cursor("watermark").await.unwrap().is_none());

    // A stopped engine stays stopped; a new one resumes.
    assert!(matches!(
        stopping.run(since, None).await,
        Err(SyncError::Stopped)
    ));
    let report = engine(mock, store.clone()).run(since, None).await.unwrap();
    assert!(report.resumed_slices > 0, "{report:?}");
    testkit::assert_invariants(store.as_ref()).await;
    assert_eq!(testkit::snapshot(store.as_ref()).await.unwrap(), expected);
}
