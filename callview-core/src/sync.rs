//! The sync engine: page through Twilio, plan each page, apply it.
//!
//! I/O lives here; every decision about what to write is made by the pure
//! planner in [`crate::model::plan`]. Memory stays bounded by one page
//! whatever the window, and each page is applied in one transaction, so a
//! sync that stops half-way keeps everything it applied.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Datelike, Duration, Utc};
use futures::StreamExt;

use crate::call::{Call, CallParseError, CallSid};
use crate::endpoint::{OwnedNumbers, PartyRules};
pub use crate::media_sync::{plan_media_in, write_media_in, MediaReport, MediaWritten};
use crate::media_sync::{sync_media, MediaWindow};
use crate::model::IncomingText;
use crate::model::{Plan, PlanStats, Prepared, RefreshState};
use crate::store::{IngestTx, RefreshUpdate, Store, StoreError, UnfinishedQuery};
pub use crate::text_sync::TextReport;
use crate::text_sync::{sync_texts, TextWindow};
use crate::twilio::{call_pages, CallFilter, TwilioClient, TwilioError};

/// The seed's named sync windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Last 7 days, at most 100 calls (the first sync).
    Initial,
    /// Last 3 days, at most 500 calls (the "Sync now" button).
    Manual,
    /// Last hour, at most 50 calls.
    Recent,
}

impl Preset {
    /// How far back the window reaches.
    pub fn window(self) -> Duration {
        match self {
            Self::Initial => Duration::days(7),
            Self::Manual => Duration::days(3),
            Self::Recent => Duration::hours(1),
        }
    }

    /// The per-run budget of calls.
    pub fn cap(self) -> usize {
        match self {
            Self::Initial => 100,
            Self::Manual => 500,
            Self::Recent => 50,
        }
    }

    /// Parses `initial`, `manual` or `recent`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "initial" => Some(Self::Initial),
            "manual" => Some(Self::Manual),
            "recent" => Some(Self::Recent),
            _ => None,
        }
    }
}

/// What to sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// A named window with its cap.
    Preset(Preset),
    /// Every call since the instant, no cap (a backfill).
    Since(DateTime<Utc>),
    /// Since the last complete sync minus `lookback` (or the initial
    /// window on a new store), no cap, plus a fresh look at every stored
    /// call that is not final. Repeated runs miss nothing.
    Incremental {
        /// How far before the last complete sync to look again.
        lookback: Duration,
    },
}

impl SyncMode {
    /// Incremental with the default two-hour lookback.
    pub fn incremental() -> Self {
        Self::Incremental {
            lookback: Duration::hours(2),
        }
    }
}

/// One record that was not stored, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// Its SID, when it had one.
    pub sid: Option<String>,
    /// Why.
    pub reason: String,
}

impl From<CallParseError> for Skipped {
    fn from(e: CallParseError) -> Self {
        Self {
            sid: e.sid,
            reason: e.reason,
        }
    }
}

/// What a sync did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SyncReport {
    /// Records received from Twilio (parsed or not).
    pub fetched: u64,
    /// Calls stored for the first time.
    pub inserted: u64,
    /// Stored calls that changed.
    pub updated: u64,
    /// Calls received that were already stored as they are.
    pub unchanged: u64,
    /// Stored calls that moved under a parent that arrived later.
    pub moved: u64,
    /// Records not stored, each with its reason.
    pub skipped: Vec<Skipped>,
    /// Records Twilio returned outside the window (its date filter is coarse).
    pub outside_window: u64,
    /// Stored unfinished calls fetched again.
    pub refreshed: u64,
    /// Unfinished calls the refresh gave up on in this run (404s or calls
    /// that never finished, after [`RefreshPolicy::max_attempts`]): kept,
    /// shown as no longer followed.
    pub unfollowed: u64,
    /// Day slices skipped because an earlier, interrupted run completed them.
    pub resumed_slices: u64,
    /// Pages requested.
    pub pages: u64,
    /// Whether the cap stopped the run before Twilio ran out of calls.
    pub more_available: bool,
    /// The window's start.
    pub since: Option<DateTime<Utc>>,
    /// When the run started (the window's end).
    pub started_at: Option<DateTime<Utc>>,
    /// Wall time, milliseconds.
    pub elapsed_ms: u64,
    /// Recordings and transcripts.
    pub media: MediaReport,
    /// Text messages.
    pub texts: TextReport,
}

impl SyncReport {
    /// Reports (and logs) records Twilio sent that could not be parsed.
    fn note_rejected(&mut self, rejected: Vec<CallParseError>) {
        for rejected in rejected {
            tracing::warn!(sid = ?rejected.sid, reason = %rejected.reason, "skipped a call record Twilio sent");
            self.skipped.push(rejected.into());
        }
    }

    fn add(&mut self, stats: PlanStats) {
        self.inserted += stats.inserted;
        self.updated += stats.updated;
        self.unchanged += stats.unchanged;
        self.moved += stats.moved;
    }
}

/// Why a sync stopped. Everything applied before the error stays applied.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Twilio failed (after retries).
    #[error("Twilio: {0}")]
    Twilio(#[from] TwilioError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Another sync holds the lock.
    #[error("another sync is running; try again when it has finished")]
    Busy,
    /// The engine's [`StopFlag`] was raised: the run stopped after the
    /// page it was applying. Every page applied stays applied; the next run
    /// completes the rest (a backfill skips the day slices it completed).
    #[error("the sync was stopped before it finished; every page it applied is kept")]
    Stopped,
}

impl SyncError {
    /// Whether the run stopped because another process took its sync lock
    /// over ([`StoreError::LockLost`]).
    pub fn is_lock_lost(&self) -> bool {
        matches!(self, Self::Store(StoreError::LockLost(_)))
    }
}

/// Asks the runs of a [`SyncEngine`] to stop, for a graceful shutdown.
///
/// A run checks it between pages: the page being applied is applied (one
/// transaction, committed), a page being fetched is dropped, and the run
/// returns [`SyncError::Stopped`]. Once raised it stays raised: every later
/// run of an engine holding it stops at once. Clones share the flag.
///
/// ```
/// use callview_core::sync::StopFlag;
/// let flag = StopFlag::new();
/// let shared = flag.clone();
/// assert!(!shared.is_stopped());
/// flag.stop();
/// assert!(shared.is_stopped());
/// ```
#[derive(Clone, Debug)]
pub struct StopFlag(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for StopFlag {
    fn default() -> Self {
        Self::new()
    }
}

impl StopFlag {
    /// A flag that is not raised.
    pub fn new() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(false)))
    }

    /// Raises the flag: running syncs stop after their current page.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    /// Whether the flag is raised.
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the flag is raised.
    pub async fn stopped(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`: the wait only ends when raised.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// `Err(SyncError::Stopped)` once raised: the check between pages.
    pub(crate) fn check(&self) -> Result<(), SyncError> {
        if self.is_stopped() {
            tracing::info!("sync stopped between pages; what it applied is kept");
            Err(SyncError::Stopped)
        } else {
            Ok(())
        }
    }
}

/// Progress of a running sync, for progress bars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Records received so far.
    pub fetched: u64,
    /// Pages received so far.
    pub pages: u64,
}

/// The cursor holding the instant up to which the store is complete.
pub const WATERMARK_CURSOR: &str = "watermark";
/// The cursor holding the account's owned numbers (JSON array of E.164).
pub const OWNED_NUMBERS_CURSOR: &str = "owned_numbers";
/// The cursor holding the day slices that unfinished backfills
/// ([`SyncMode::Since`]) completed (JSON `{"done": [[from, to], ...]}`), so
/// a backfill after a crash or an error does not fetch them again, each
/// slice written in the transaction of its last page. Only backfills use
/// it: a completed backfill forgets the slices inside its own window and
/// keeps older ones, and other runs (incremental, presets) never touch it,
/// so a scheduled run cannot erase a killed backfill's progress.
pub const RESUME_CURSOR: &str = "resume";

/// Slices completed by interrupted backfills.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Resume {
    done: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Resume {
    fn covers(&self, slice: &Slice) -> bool {
        slice.to.is_some_and(|to| {
            self.done
                .iter()
                .any(|(from, end)| *from <= slice.from && to <= *end)
        })
    }

    /// Forgets the slices a completed run from `since` on read again.
    fn forget_from(&mut self, since: DateTime<Utc>) {
        self.done.retain(|(from, _)| *from < since);
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// How the refresh of unfinished calls backs off from a call that does not
/// finish (still running, in a status callview does not know, or answered
/// 404 by Twilio), and when it stops following it. Pure: computes the next
/// [`RefreshState`] from the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// The wait after the first attempt; each later one doubles it.
    pub first_delay: Duration,
    /// The longest wait between attempts.
    pub max_delay: Duration,
    /// After this many attempts without seeing the call finish, the call is
    /// no longer followed.
    pub max_attempts: u32,
}

impl Default for RefreshPolicy {
    /// 2 minutes, doubling up to 6 hours; 12 attempts (about a day).
    fn default() -> Self {
        Self {
            first_delay: Duration::minutes(2),
            max_delay: Duration::hours(6),
            max_attempts: 12,
        }
    }
}

impl RefreshPolicy {
    /// The state after one more attempt at `now` that did not see the call
    /// finish.
    ///
    /// ```
    /// use callview_core::model::RefreshState;
    /// use callview_core::sync::RefreshPolicy;
    /// use chrono::{Duration, Utc};
    /// let policy = RefreshPolicy { first_delay: Duration::minutes(2), max_delay: Duration::hours(6), max_attempts: 3 };
    /// let now = Utc::now();
    /// let first = policy.after_attempt(&RefreshState::default(), now);
    /// assert_eq!((first.attempts, first.due_at), (1, Some(now + Duration::minutes(2))));
    /// let second = policy.after_attempt(&first, now);
    /// assert_eq!(second.due_at, Some(now + Duration::minutes(4)));
    /// let third = policy.after_attempt(&second, now);
    /// assert_eq!((third.attempts, third.unfollowed_at), (3, Some(now)));
    /// ```
    pub fn after_attempt(&self, previous: &RefreshState, now: DateTime<Utc>) -> RefreshState {
        let attempts = previous.attempts.saturating_add(1);
        let unfollowed = RefreshState {
            attempts,
            due_at: None,
            unfollowed_at: Some(now),
        };
        if attempts >= self.max_attempts {
            return unfollowed;
        }
        // first_delay × 2^(attempts - 1), within [0, max_delay], in whole
        // milliseconds (no overflow whatever the policy).
        let doubling = 1i64 << attempts.saturating_sub(1).min(40);
        let max = self.max_delay.num_milliseconds().max(0);
        let delay = self
            .first_delay
            .num_milliseconds()
            .max(0)
            .saturating_mul(doubling)
            .min(max);
        match now.checked_add_signed(Duration::milliseconds(delay)) {
            // Both stores keep instants up to the end of year 9999.
            Some(due) if due.year() <= 9999 => RefreshState {
                attempts,
                due_at: Some(due),
                unfollowed_at: None,
            },
            _ => unfollowed,
        }
    }
}
/// How many day slices an uncapped sync reads at once by default.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// How many unfinished calls an incremental run looks at again.
pub const REFRESH_LIMIT: u32 = 500;

/// Syncs one Twilio account into one store.
#[derive(Clone)]
pub struct SyncEngine {
    client: Arc<dyn TwilioClient>,
    store: Arc<dyn Store>,
    rules: PartyRules,
    page_size: u32,
    concurrency: usize,
    refresh: RefreshPolicy,
    media: bool,
    texts: bool,
    stop: StopFlag,
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine")
            .field("rules", &self.rules)
            .field("page_size", &self.page_size)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl SyncEngine {
    /// An engine; `rules` holds the default region and the operator's extra
    /// owned numbers (the account's own are listed from Twilio at each run).
    pub fn new(client: Arc<dyn TwilioClient>, store: Arc<dyn Store>, rules: PartyRules) -> Self {
        Self {
            client,
            store,
            rules,
            page_size: crate::twilio::MAX_PAGE_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
            refresh: RefreshPolicy::default(),
            media: true,
            texts: true,
            stop: StopFlag::new(),
        }
    }

    /// Makes runs stop (between pages) when `flag` is raised
    /// ([`StopFlag`]). By default each engine has a flag of its own,
    /// shared by its clones ([`SyncEngine::stop_flag`]).
    pub fn with_stop_flag(mut self, flag: StopFlag) -> Self {
        self.stop = flag;
        self
    }

    /// The flag that stops this engine's runs (and its clones') after the
    /// page they are applying.
    pub fn stop_flag(&self) -> &StopFlag {
        &self.stop
    }

    /// Whether runs also sync recordings and transcripts (default on).
    pub fn with_media(mut self, media: bool) -> Self {
        self.media = media;
        self
    }

    /// Whether runs also sync text messages (default on).
    pub fn with_texts(mut self, texts: bool) -> Self {
        self.texts = texts;
        self
    }

    /// Sets how the refresh of unfinished calls backs off and gives up.
    pub fn with_refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.refresh = policy;
        self
    }

    /// Sets how many day slices an uncapped sync reads from Twilio at once
    /// (default 4; 1 reads one sequence of pages). Pages are still applied
    /// one at a time, and the final state is the same either way.
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Sets the page size requested from Twilio (1..=1000).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.clamp(1, crate::twilio::MAX_PAGE_SIZE);
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Lists the account's numbers, adds the configured ones, and caches
    /// them in the store.
    pub async fn refresh_owned_numbers(&self) -> Result<PartyRules, SyncError> {
        let listed = self.client.list_incoming_numbers().await?;
        let mut owned = OwnedNumbers::from_raw(
            &self.rules.normalizer,
            listed.iter().map(|n| n.phone_number.as_str()),
        );
        owned.extend(&self.rules.owned);
        let json = serde_json::to_string(&owned.to_sorted_vec()).unwrap_or_default();
        self.store.write_cursor(OWNED_NUMBERS_CURSOR, &json).await?;
        Ok(PartyRules::new(self.rules.normalizer, owned))
    }

    /// The rules with the owned numbers cached by the last sync (for writes
    /// between syncs, such as status callbacks).
    pub async fn cached_rules(&self) -> Result<PartyRules, StoreError> {
        let mut owned = self.rules.owned.clone();
        if let Some(json) = self.store.read_cursor(OWNED_NUMBERS_CURSOR).await? {
            let numbers: Vec<String> = serde_json::from_str(&json).unwrap_or_default();
            owned.extend(&OwnedNumbers::from_raw(
                &self.rules.normalizer,
                numbers.iter().map(String::as_str),
            ));
        }
        Ok(PartyRules::new(self.rules.normalizer, owned))
    }

    /// Plans and applies one batch of calls in one store transaction
    /// ([`Store::begin_ingest`]); returns what it did.
    ///
    /// The plan is computed from what that same transaction read, and the
    /// store serialises such transactions across processes, so writers
    /// anywhere (sync pages, status callbacks, another server on the same
    /// database) never plan from stale reads.
    pub async fn ingest(
        &self,
        rules: &PartyRules,
        batch: Vec<Call>,
    ) -> Result<PlanStats, StoreError> {
        let mut tx = self.store.begin_ingest().await?;
        let stats = ingest_in(tx.as_mut(), rules, batch).await?;
        tx.commit().await?;
        Ok(stats)
    }

    /// [`SyncEngine::ingest`] for a run holding the sync lock: the same
    /// transaction confirms the lock is still held and writes `cursor`
    /// (name, value) with the page, or writes nothing.
    async fn ingest_locked(
        &self,
        rules: &PartyRules,
        batch: Vec<Call>,
        cursor: Option<(&str, String)>,
    ) -> Result<PlanStats, StoreError> {
        if batch.is_empty() && cursor.is_none() {
            return Ok(PlanStats::default());
        }
        let mut tx = self.store.begin_ingest().await?;
        tx.confirm_sync_lock().await?;
        let stats = ingest_in(tx.as_mut(), rules, batch).await?;
        if let Some((name, value)) = cursor {
            tx.write_cursor(name, &value).await?;
        }
        tx.commit().await?;
        Ok(stats)
    }

    /// A page of texts for a run holding the sync lock, in one
    /// transaction that confirms the lock.
    async fn ingest_texts_locked(
        &self,
        rules: &PartyRules,
        batch: Vec<IncomingText>,
    ) -> Result<PlanStats, StoreError> {
        if batch.is_empty() {
            return Ok(PlanStats::default());
        }
        let mut tx = self.store.begin_ingest().await?;
        tx.confirm_sync_lock().await?;
        let stats = crate::text_sync::ingest_texts_in(tx.as_mut(), rules, batch).await?;
        tx.commit().await?;
        Ok(stats)
    }

    /// Runs one sync. Holds the store's sync lock for the whole run.
    ///
    /// Between pages it checks the engine's [`StopFlag`]: raised, the run
    /// returns [`SyncError::Stopped`] after the page it was applying.
    pub async fn run(
        &self,
        mode: SyncMode,
        progress: Option<&(dyn Fn(Progress) + Send + Sync)>,
    ) -> Result<SyncReport, SyncError> {
        self.stop.check()?;
        if !self.store.try_lock_sync().await? {
            return Err(SyncError::Busy);
        }
        let result = self.run_locked(mode, progress).await;
        if let Err(e) = self.store.unlock_sync().await {
            tracing::warn!(error = %e, "could not release the sync lock");
        }
        result
    }

    async fn run_locked(
        &self,
        mode: SyncMode,
        progress: Option<&(dyn Fn(Progress) + Send + Sync)>,
    ) -> Result<SyncReport, SyncError> {
        let clock = Instant::now();
        let started_at = Utc::now();
        let rules = self.refresh_owned_numbers().await?;
        let watermark = self
            .store
            .read_cursor(WATERMARK_CURSOR)
            .await?
            .and_then(|w| DateTime::parse_from_rfc3339(&w).ok())
            .map(|w| w.with_timezone(&Utc));

        let (since, cap) = match mode {
            SyncMode::Preset(p) => (started_at - p.window(), Some(p.cap())),
            SyncMode::Since(t) => (t, None),
            SyncMode::Incremental { lookback } => (
                watermark.unwrap_or(started_at - Preset::Initial.window()) - lookback,
                None,
            ),
        };
        let mut report = SyncReport {
            since: Some(since),
            started_at: Some(started_at),
            ..SyncReport::default()
        };
        tracing::info!(?mode, %since, cap, "sync started");

        // A capped run takes the newest calls first, so it reads one
        // sequence of pages; an uncapped one may read day slices concurrently.
        let concurrency = if cap.is_some() { 1 } else { self.concurrency };
        let mut slices = plan_slices(since, started_at, concurrency);
        let mut resume = Resume::default();
        let backfill = matches!(mode, SyncMode::Since(_));
        if backfill {
            resume = self
                .store
                .read_cursor(RESUME_CURSOR)
                .await?
                .and_then(|json| serde_json::from_str(&json).ok())
                .unwrap_or_default();
            let before = slices.len();
            slices.retain(|slice| !resume.covers(slice));
            report.resumed_slices = (before - slices.len()) as u64;
            if report.resumed_slices > 0 {
                tracing::info!(
                    skipped = report.resumed_slices,
                    "resuming: day slices completed by an interrupted run are not fetched again"
                );
            }
        }
        let mut remaining = cap.unwrap_or(usize::MAX);
        // A capped run asks for no bigger pages than its cap: the recent
        // preset keeps 50 calls, so it reads a page of 50, not of 1,000.
        let page_size = cap.map_or(self.page_size, |cap| {
            self.page_size
                .min(u32::try_from(cap).unwrap_or(u32::MAX))
                .max(1)
        });
        let mut pages = self.pages(slices, concurrency, page_size);
        loop {
            // A stop drops the page being fetched (read again next run),
            // never one being applied.
            let item = tokio::select! {
                biased;
                () = self.stop.stopped() => {
                    tracing::info!("sync stopped between pages; what it applied is kept");
                    return Err(SyncError::Stopped);
                }
                item = pages.next() => item,
            };
            let Some(item) = item else { break };
            let (page, slice) = item?;
            report.pages += 1;
            report.fetched += (page.calls.len() + page.rejected.len()) as u64;
            report.note_rejected(page.rejected);
            let mut batch = Vec::with_capacity(page.calls.len());
            for call in page.calls {
                if !slice.contains(&call) {
                    report.outside_window += 1;
                } else if remaining == 0 {
                    report.more_available = true;
                } else {
                    remaining -= 1;
                    batch.push(call);
                }
            }
            // A backfill's slice whose last page this is: remember it is
            // complete, in the page's own transaction.
            let mut cursor = None;
            if let (true, None, Some(to)) = (backfill, &page.next, slice.to) {
                resume.done.push((slice.from, to));
                cursor = Some((RESUME_CURSOR, resume.to_json()));
            }
            let stats = self.ingest_locked(&rules, batch, cursor).await?;
            report.add(stats);
            if let Some(progress) = progress {
                progress(Progress {
                    fetched: report.fetched,
                    pages: report.pages,
                });
            }
            if remaining == 0 {
                report.more_available |= page.next.is_some();
                break;
            }
        }
        drop(pages);

        self.stop.check()?;
        if !report.more_available {
            self.sweep_undated(&rules, since, &mut remaining, &mut report)
                .await?;
        }
        if !report.more_available {
            self.sweep_late(&rules, started_at, &mut remaining, &mut report)
                .await?;
        }
        let mut changed = Vec::new();
        if matches!(mode, SyncMode::Incremental { .. }) {
            changed = self.refresh_unfinished(&rules, since, &mut report).await?;
        }
        if self.media {
            let window = MediaWindow {
                since,
                started_at,
                changed: &changed,
                page_size: self.page_size,
                stop: &self.stop,
            };
            sync_media(
                self.client.as_ref(),
                self.store.as_ref(),
                &window,
                &mut report.media,
                &mut report.skipped,
            )
            .await?;
        }

        if self.texts {
            let window = TextWindow {
                since,
                cap,
                page_size,
                stop: &self.stop,
            };
            let mut texts = std::mem::take(&mut report.texts);
            sync_texts(
                self.client.as_ref(),
                self.store.as_ref(),
                &window,
                &mut texts,
                &mut report.skipped,
                |batch| self.ingest_texts_locked(&rules, batch),
            )
            .await?;
            report.texts = texts;
        }

        self.stop.check()?;
        let complete = !report.more_available && !report.texts.more_available;
        if backfill && !resume.done.is_empty() {
            // This run read its whole window: only older slices, of an
            // earlier backfill reaching further back, stay worth keeping.
            resume.forget_from(since);
            self.ingest_locked(&rules, Vec::new(), Some((RESUME_CURSOR, resume.to_json())))
                .await?;
        }
        let covers_watermark = watermark.is_none_or(|w| since <= w);
        if complete && covers_watermark {
            self.ingest_locked(
                &rules,
                Vec::new(),
                Some((WATERMARK_CURSOR, started_at.to_rfc3339())),
            )
            .await?;
        }
        report.elapsed_ms = clock.elapsed().as_millis() as u64;
        tracing::info!(
            fetched = report.fetched,
            inserted = report.inserted,
            updated = report.updated,
            skipped = report.skipped.len(),
            more_available = report.more_available,
            elapsed_ms = report.elapsed_ms,
            "sync finished"
        );
        Ok(report)
    }

    /// Lists the calls Twilio never dialled, which have no start time and so
    /// are left out by the window's `StartTime>` filter.
    ///
    /// Such a call can only be queued, canceled or failed, so each of those
    /// statuses is listed without a time bound. Twilio lists newest first
    /// with undated calls ahead of dated ones, so each listing stops at the
    /// first page that holds a dated call: usually one request per status.
    /// Undated calls created before `since` are outside the window.
    async fn sweep_undated(
        &self,
        rules: &PartyRules,
        since: DateTime<Utc>,
        remaining: &mut usize,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        for status in UNDATED_STATUSES {
            let filter = CallFilter {
                status: Some(crate::call::CallStatus::parse(status)),
                page_size: self.page_size,
                ..CallFilter::default()
            };
            let classify = |call: &Call| match (call.start_time, call.date_created) {
                (Some(_), _) => Swept::Past,
                (None, Some(created)) if created < since => Swept::Outside,
                (None, _) => Swept::Wanted,
            };
            self.sweep(rules, filter, remaining, report, classify)
                .await?;
        }
        Ok(())
    }

    /// Lists the calls that started since the run began: a call still
    /// undated (queued) when its slice was read, and dialled before the
    /// undated sweep reached it, was in neither listing. It started after
    /// the run began, so this listing has it.
    async fn sweep_late(
        &self,
        rules: &PartyRules,
        started_at: DateTime<Utc>,
        remaining: &mut usize,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let filter = CallFilter {
            start_time_after: Some(started_at - LATE_MARGIN),
            page_size: self.page_size,
            ..CallFilter::default()
        };
        self.sweep(rules, filter, remaining, report, |_| Swept::Wanted)
            .await
    }

    /// Reads the pages of `filter` and ingests the calls `classify` wants
    /// (within the cap), up to the last page or the first page holding a
    /// call past what the sweep wants.
    async fn sweep(
        &self,
        rules: &PartyRules,
        filter: CallFilter,
        remaining: &mut usize,
        report: &mut SyncReport,
        classify: impl Fn(&Call) -> Swept,
    ) -> Result<(), SyncError> {
        let mut token = None;
        loop {
            self.stop.check()?;
            let page = self.client.list_calls_page(&filter, token.as_ref()).await?;
            report.pages += 1;
            report.fetched += (page.calls.len() + page.rejected.len()) as u64;
            report.note_rejected(page.rejected);
            let mut past = false;
            let mut batch = Vec::with_capacity(page.calls.len());
            for call in page.calls {
                match classify(&call) {
                    Swept::Past => past = true,
                    Swept::Outside => report.outside_window += 1,
                    Swept::Wanted if *remaining == 0 => report.more_available = true,
                    Swept::Wanted => {
                        *remaining -= 1;
                        batch.push(call);
                    }
                }
            }
            let stats = self.ingest_locked(rules, batch, None).await?;
            report.add(stats);
            match page.next {
                Some(_) if past => break,
                Some(_) if *remaining == 0 => {
                    report.more_available = true;
                    break;
                }
                Some(next) => token = Some(next),
                None => break,
            }
        }
        Ok(())
    }

    /// Fetches again the stored calls that are not final, started before
    /// the window (those inside it were just listed) and are due: newest
    /// first, so a new unfinished call is never kept waiting by old ones.
    /// A call Twilio answers 404 for, or that is still not final, gets one
    /// more attempt recorded and backs off ([`RefreshPolicy`]); after the
    /// last attempt it is no longer followed (kept, and shown as such).
    /// Returns the calls that reached a final status.
    async fn refresh_unfinished(
        &self,
        rules: &PartyRules,
        since: DateTime<Utc>,
        report: &mut SyncReport,
    ) -> Result<Vec<CallSid>, SyncError> {
        let mut changed = Vec::new();
        let now = Utc::now();
        let query = UnfinishedQuery {
            limit: REFRESH_LIMIT,
            started_before: Some(since),
            due_at: now,
        };
        let unfinished = self.store.unfinished_calls(&query).await?;
        // A chunk at a time: each chunk's writes (and the lease renewal
        // that comes with them) follow its fetches, so a slow Twilio cannot
        // let the sync lock lapse over hundreds of fetches.
        for chunk in unfinished.chunks(REFRESH_CHUNK) {
            self.stop.check()?;
            let mut batch = Vec::new();
            let mut attempts = Vec::new();
            for stored in chunk {
                let sid = stored.call.sid.clone();
                let finished = match self.client.fetch_call(&sid).await {
                    Ok(call) => {
                        let finished = call.status.is_final();
                        if finished {
                            changed.push(call.sid.clone());
                        }
                        batch.push(call);
                        finished
                    }
                    Err(TwilioError::NotFound { .. }) => {
                        report.skipped.push(Skipped {
                            sid: Some(sid.to_string()),
                            reason: "Twilio no longer has this call; the stored copy is kept"
                                .into(),
                        });
                        false
                    }
                    Err(e) => return Err(e.into()),
                };
                if !finished {
                    let state = self.refresh.after_attempt(&stored.refresh, now);
                    if state.unfollowed_at.is_some() {
                        report.unfollowed += 1;
                        tracing::warn!(sid = %sid, attempts = state.attempts, "an unfinished call is no longer followed; the stored copy is kept");
                    }
                    attempts.push(RefreshUpdate { sid, state });
                }
            }
            report.refreshed += batch.len() as u64;
            let mut tx = self.store.begin_ingest().await?;
            tx.confirm_sync_lock().await?;
            let stats = ingest_in(tx.as_mut(), rules, batch).await?;
            // Stores record attempts only on calls still not final.
            tx.record_refresh(&attempts).await?;
            tx.commit().await?;
            report.add(stats);
        }
        Ok(changed)
    }
}

/// How many unfinished calls the refresh fetches before writing them.
const REFRESH_CHUNK: usize = 50;

/// How far before a run's start [`SyncEngine::sweep_late`] lists: clock
/// skew between Twilio and this machine.
const LATE_MARGIN: Duration = Duration::minutes(1);

/// What a sweep makes of a listed call.
enum Swept {
    /// Store it.
    Wanted,
    /// Older than the window.
    Outside,
    /// Past what the sweep lists for: this page is its last.
    Past,
}

/// The statuses a call Twilio never dialled (no start time) can have.
const UNDATED_STATUSES: [&str; 3] = ["queued", "canceled", "failed"];

/// A part of a sync window: calls that started at or after `from` and
/// before `to` (open-ended when `to` is `None`). Calls without a start time
/// belong to every slice; the planner makes repeats harmless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    /// Inclusive start.
    pub from: DateTime<Utc>,
    /// Exclusive end; `None` for "until now and beyond".
    pub to: Option<DateTime<Utc>>,
}

impl Slice {
    /// The Twilio filter that covers the slice. Twilio's bounds are
    /// exclusive and only documented to day precision, so the filter starts
    /// a second early and [`Slice::contains`] decides locally.
    pub fn filter(&self, page_size: u32) -> CallFilter {
        CallFilter {
            start_time_after: Some(self.from - Duration::seconds(1)),
            start_time_before: self.to,
            page_size,
            ..CallFilter::default()
        }
    }

    /// Whether a call belongs to this slice.
    pub fn contains(&self, call: &Call) -> bool {
        call.start_time
            .is_none_or(|t| t >= self.from && self.to.is_none_or(|to| t < to))
    }
}

/// Splits the window starting at `since` (up to `now`, open-ended) into
/// disjoint slices, newest first. With `concurrency` 1 or a window shorter
/// than two days it is one slice; otherwise slices are whole UTC days, up
/// to four per concurrent reader, so Twilio's day-precision filter is exact.
///
/// ```
/// use callview_core::sync::plan_slices;
/// use chrono::{Duration, TimeZone, Utc};
/// let now = Utc.with_ymd_and_hms(2026, 2, 10, 12, 0, 0).unwrap();
/// let slices = plan_slices(now - Duration::days(30), now, 4);
/// assert_eq!(slices.len(), 16);
/// assert_eq!(slices[0].to, None);
/// assert_eq!(slices.last().unwrap().from, now - Duration::days(30));
/// ```
pub fn plan_slices(since: DateTime<Utc>, now: DateTime<Utc>, concurrency: usize) -> Vec<Slice> {
    let single = vec![Slice {
        from: since,
        to: None,
    }];
    let first_midnight = (since + Duration::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc());
    let Some(first_midnight) = first_midnight else {
        return single;
    };
    let days = (now - first_midnight).num_days();
    if concurrency <= 1 || days < 2 {
        return single;
    }
    let count = (concurrency * 4).min(days as usize) as i64;
    let mut bounds: Vec<DateTime<Utc>> = (0..count)
        .map(|i| first_midnight + Duration::days(days * i / count))
        .collect();
    bounds[0] = since;
    let mut slices: Vec<Slice> = bounds
        .windows(2)
        .map(|w| Slice {
            from: w[0],
            to: Some(w[1]),
        })
        .collect();
    slices.push(Slice {
        from: *bounds.last().unwrap_or(&since),
        to: None,
    });
    slices.reverse();
    slices
}

type PageItem = Result<(crate::twilio::CallPage, Slice), TwilioError>;

impl SyncEngine {
    /// Every page of every slice: read in order with one reader, or by
    /// `concurrency` tasks feeding a channel of capacity one (memory stays
    /// bounded by a page per reader).
    fn pages(
        &self,
        slices: Vec<Slice>,
        concurrency: usize,
        page_size: u32,
    ) -> futures::stream::BoxStream<'static, PageItem> {
        if concurrency <= 1 || slices.len() <= 1 {
            let client = self.client.clone();
            let stream = futures::stream::iter(slices).flat_map(move |slice| {
                let client = client.clone();
                let filter = slice.filter(page_size);
                futures::stream::unfold(
                    Some(None),
                    move |token: Option<Option<crate::twilio::PageToken>>| {
                        let client = client.clone();
                        let filter = filter.clone();
                        async move {
                            let token = token?;
                            match client.list_calls_page(&filter, token.as_ref()).await {
                                Ok(page) => {
                                    let next = page.next.clone().map(Some);
                                    Some((Ok((page, slice)), next))
                                }
                                Err(e) => Some((Err(e), None)),
                            }
                        }
                    },
                )
            });
            return stream.boxed();
        }
        // Capacity 1: each reader holds at most the page it is sending.
        let (tx, rx) = tokio::sync::mpsc::channel::<PageItem>(1);
        let queue = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(
            slices,
        )));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let client = self.client.clone();
            let queue = queue.clone();
            let tx = tx.clone();
            tasks.spawn(async move {
                loop {
                    let slice = match queue.lock() {
                        Ok(mut q) => q.pop_front(),
                        Err(_) => None,
                    };
                    let Some(slice) = slice else { return };
                    let mut pages =
                        std::pin::pin!(call_pages(client.as_ref(), slice.filter(page_size)));
                    while let Some(page) = pages.next().await {
                        let failed = page.is_err();
                        if tx.send(page.map(|p| (p, slice))).await.is_err() || failed {
                            return;
                        }
                    }
                }
            });
        }
        drop(tx);
        // The stream owns the tasks: dropping it (an error, a stop) aborts them.
        futures::stream::unfold((rx, tasks), |(mut rx, tasks)| async move {
            rx.recv().await.map(|item| (item, (rx, tasks)))
        })
        .boxed()
    }
}

/// Plans one batch inside an open transaction: the transaction's lookups
/// around the pure planner.
pub async fn plan_batch(
    tx: &mut dyn IngestTx,
    rules: &PartyRules,
    batch: Vec<Call>,
) -> Result<Plan, StoreError> {
    if batch.is_empty() {
        return Ok(Plan::default());
    }
    let mut sids: Vec<_> = batch
        .iter()
        .flat_map(|c| std::iter::once(c.sid.clone()).chain(c.parent_call_sid.clone()))
        .collect();
    sids.sort();
    sids.dedup();
    let stored = tx.load_trees(&sids).await?;
    let prepared = Prepared::new(rules, batch, stored);
    let found = tx.load_conversations(prepared.lookup()).await?;
    Ok(prepared.finish(found))
}

/// Plans one batch inside an open transaction and applies the plan there;
/// the caller commits. What every writer (sync pages, status callbacks)
/// runs between [`Store::begin_ingest`] and [`IngestTx::commit`].
pub async fn ingest_in(
    tx: &mut dyn IngestTx,
    rules: &PartyRules,
    batch: Vec<Call>,
) -> Result<PlanStats, StoreError> {
    let plan = plan_batch(tx, rules, batch).await?;
    let stats = plan.stats;
    if !plan.is_empty() {
        tx.apply(plan).await?;
    }
    Ok(stats)
}
