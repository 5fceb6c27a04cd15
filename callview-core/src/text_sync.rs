//! The texts part of a sync run: `Messages.json` for the run's window
//! (`DateSent>`), newest first, page by page; each MMS's media listed; each
//! page planned with the calls' planner and applied in one `IngestTx`
//! (holding the sync lock), like a page of calls.
//!
//! A message not sent yet has no `date_sent`, so a time-bounded listing
//! leaves it out, as Twilio does; it is stored once it is sent (or when a
//! status callback or the send itself stores it).

use chrono::{DateTime, Utc};

use crate::model::{IncomingText, PlanStats, Prepared};
use crate::store::{IngestTx, StoreError};
use crate::sync::{Skipped, StopFlag, SyncError};
use crate::text::TextParseError;
use crate::twilio::{TextFilter, TwilioClient};
use crate::PartyRules;

/// What a run did with text messages.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TextReport {
    /// Message records received (parsed or not).
    pub fetched: u64,
    /// Texts stored for the first time.
    pub inserted: u64,
    /// Stored texts that changed (status, price, media).
    pub updated: u64,
    /// Texts received exactly as stored.
    pub unchanged: u64,
    /// MMS whose media were listed (new ones; stored ones keep theirs).
    pub media_listed: u64,
    /// Pages requested.
    pub pages: u64,
    /// Whether the cap stopped the run before Twilio ran out of texts.
    pub more_available: bool,
}

impl TextReport {
    /// Adds a plan's text counts.
    pub fn add(&mut self, stats: &PlanStats) {
        self.inserted += stats.texts_inserted;
        self.updated += stats.texts_updated;
        self.unchanged += stats.texts_unchanged;
    }
}

impl From<TextParseError> for Skipped {
    fn from(e: TextParseError) -> Self {
        Self {
            sid: e.sid,
            reason: format!("message: {}", e.reason),
        }
    }
}

/// Plans a batch of texts inside an open transaction: the transaction's
/// lookups around the pure planner.
pub async fn plan_texts(
    tx: &mut dyn IngestTx,
    rules: &PartyRules,
    texts: Vec<IncomingText>,
) -> Result<crate::Plan, StoreError> {
    if texts.is_empty() {
        return Ok(crate::Plan::default());
    }
    let mut sids: Vec<_> = texts.iter().map(|t| t.text.sid.clone()).collect();
    sids.sort();
    sids.dedup();
    let stored = tx.load_texts(&sids).await?;
    let prepared = Prepared::new(rules, Vec::new(), Vec::new()).with_texts(rules, texts, stored);
    let found = tx.load_conversations(prepared.lookup()).await?;
    Ok(prepared.finish(found))
}

/// Plans a batch of texts inside an open transaction and applies the plan
/// there; the caller commits (sync pages, status callbacks, inbound texts,
/// sends).
pub async fn ingest_texts_in(
    tx: &mut dyn IngestTx,
    rules: &PartyRules,
    texts: Vec<IncomingText>,
) -> Result<PlanStats, StoreError> {
    let plan = plan_texts(tx, rules, texts).await?;
    let stats = plan.stats;
    if !plan.is_empty() {
        tx.apply(plan).await?;
    }
    Ok(stats)
}

/// The window and limits of one run's text listing.
pub(crate) struct TextWindow<'a> {
    /// The window's start (`DateSent>`).
    pub since: DateTime<Utc>,
    /// Texts to keep at most (a preset's cap).
    pub cap: Option<usize>,
    /// Records per page.
    pub page_size: u32,
    /// Raised: stop after the page being applied.
    pub stop: &'a StopFlag,
}

/// Lists the window's texts and hands each page, with the media of its
/// MMS, to `apply` (one transaction per page).
pub(crate) async fn sync_texts<F, Fut>(
    client: &dyn TwilioClient,
    store: &dyn crate::Store,
    window: &TextWindow<'_>,
    report: &mut TextReport,
    skipped: &mut Vec<Skipped>,
    mut apply: F,
) -> Result<(), SyncError>
where
    F: FnMut(Vec<IncomingText>) -> Fut,
    Fut: std::future::Future<Output = Result<PlanStats, StoreError>>,
{
    let filter = TextFilter {
        sent_after: Some(window.since),
        page_size: window.page_size,
        ..TextFilter::default()
    };
    let mut remaining = window.cap.unwrap_or(usize::MAX);
    let mut token = None;
    loop {
        window.stop.check()?;
        let page = client.list_texts_page(&filter, token.as_ref()).await?;
        report.pages += 1;
        report.fetched += (page.texts.len() + page.rejected.len()) as u64;
        for rejected in page.rejected {
            tracing::warn!(sid = ?rejected.sid, reason = %rejected.reason, "skipped a message record Twilio sent");
            skipped.push(rejected.into());
        }
        let mut batch = Vec::with_capacity(page.texts.len());
        for text in page.texts {
            if remaining == 0 {
                report.more_available = true;
                break;
            }
            remaining -= 1;
            // An MMS stored with all its media keeps them (`None`): its
            // media never change, so only new ones are listed.
            let media = if text.num_media == 0 {
                Some(Vec::new())
            } else if store
                .text(&text.sid)
                .await
                .is_ok_and(|s| s.media.len() == text.num_media as usize)
            {
                None
            } else {
                report.media_listed += 1;
                Some(client.text_media(&text.sid).await?)
            };
            batch.push(IncomingText { text, media });
        }
        let stats = apply(batch).await?;
        report.add(&stats);
        match page.next {
            Some(next) if remaining > 0 => token = Some(next),
            Some(_) => {
                report.more_available = true;
                return Ok(());
            }
            None => return Ok(()),
        }
    }
}
