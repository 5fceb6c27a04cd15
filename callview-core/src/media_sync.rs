//! The media part of a sync run: recordings and transcripts of the run's
//! window, each page written in one [`IngestTx`] like a page of calls.
//!
//! * Recordings: the account's `Recordings.json` listed by `DateCreated>`
//!   (paged, never one request per call), plus the recordings of the calls
//!   whose status the run changed. When the listing of the window completed,
//!   stored recordings of that window Twilio no longer lists are marked
//!   deleted (kept, never dropped).
//! * Legacy transcriptions: `Transcriptions.json`, newest first, until the
//!   first one older than the window.
//! * Voice Intelligence transcripts: `/v2/Transcripts` by
//!   `AfterDateCreated`, each completed one with its sentences. An account
//!   without Voice Intelligence (401, 403 or 404 on the listing), or an
//!   intelligence host that fails, is noted in the report
//!   (`media.notes`), not an error: calls and recordings are still synced.
//!
//! Order does not matter: recordings and transcripts point at their call
//! by SID, so either may be stored first ([`crate::model::media`]).

use std::collections::HashSet;

use chrono::{DateTime, Duration, DurationRound, Utc};

use crate::call::CallSid;
use crate::model::{plan_media, MediaBatch};
use crate::recording::{MediaParseError, RecordingSid, TranscriptStatus};
use crate::store::{IngestTx, Store};
use crate::sync::{Skipped, SyncError};
use crate::twilio::{
    PageToken, RecordingFilter, TranscriptFilter, TwilioClient, TwilioError, MAX_PAGE_SIZE,
};

/// What the media part of a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MediaReport {
    /// Recordings received from Twilio.
    pub recordings_fetched: u64,
    /// Recordings written (new, or a newer version).
    pub recordings_written: u64,
    /// Recordings marked deleted in this run.
    pub recordings_deleted: u64,
    /// Transcripts (both products) received.
    pub transcripts_fetched: u64,
    /// Transcripts written.
    pub transcripts_written: u64,
    /// Why a part was skipped (an account without Voice Intelligence).
    pub notes: Vec<String>,
}

/// A recording listed this long after a run started may not be in its
/// listing yet: the deletion check stops short of it (clock skew).
const DELETION_MARGIN: Duration = Duration::minutes(5);

/// How far back recordings and transcripts stored while still processing
/// are read again; older ones stay as last seen.
pub const UNFINISHED_LOOKBACK: Duration = Duration::days(7);

/// The part of a run the media sync covers.
pub(crate) struct MediaWindow<'a> {
    /// The window's start.
    pub since: DateTime<Utc>,
    /// When the run started (the window's end).
    pub started_at: DateTime<Utc>,
    /// The calls whose status this run changed (their recordings are
    /// listed by call too).
    pub changed: &'a [CallSid],
    /// Records per page.
    pub page_size: u32,
    /// Checked before each page: raised, the media sync stops there.
    pub stop: &'a crate::sync::StopFlag,
}

/// Syncs the media of `window`. Records that do not parse are added to
/// `skipped`.
pub(crate) async fn sync_media(
    client: &dyn TwilioClient,
    store: &dyn Store,
    window: &MediaWindow<'_>,
    report: &mut MediaReport,
    skipped: &mut Vec<Skipped>,
) -> Result<(), SyncError> {
    let MediaWindow {
        since,
        started_at,
        changed,
        page_size,
        stop,
    } = *window;
    let page_size = page_size.clamp(1, MAX_PAGE_SIZE);
    // Recordings and transcripts stored while still processing are read
    // again until they are final (within UNFINISHED_LOOKBACK): the listings
    // start at the oldest of them when that is before the window.
    let from = match store.unfinished_media_since().await? {
        Some(t) => t.max(since - UNFINISHED_LOOKBACK).min(since),
        None => since,
    };
    // Twilio documents its date filters as whole days (do not rely on the
    // time of day): list from the day before, so the listing holds every
    // recording of the window even if the time is ignored, and the
    // deletion check below never takes a recording the filter left out
    // for a deleted one.
    let listed_from = from.duration_trunc(Duration::days(1)).unwrap_or(from) - Duration::days(1);
    let filter = RecordingFilter {
        created_after: Some(listed_from),
        page_size,
        ..RecordingFilter::default()
    };
    let mut seen: HashSet<RecordingSid> = HashSet::new();
    // A record that did not parse is still listed: it must not be taken
    // for deleted. One without a usable SID makes the check impossible.
    let mut listing_complete = true;
    let mut pages = Pages::default();
    let mut token = None;
    loop {
        stop.check()?;
        let page = client.list_recordings_page(&filter, token.as_ref()).await?;
        for r in &page.rejected {
            match r.sid.clone().and_then(RecordingSid::new) {
                Some(sid) => {
                    seen.insert(sid);
                }
                None => listing_complete = false,
            }
        }
        note_rejected(skipped, page.rejected);
        report.recordings_fetched += page.recordings.len() as u64;
        seen.extend(page.recordings.iter().map(|r| r.sid.clone()));
        write(
            store,
            MediaBatch {
                recordings: page.recordings,
                ..MediaBatch::default()
            },
            report,
        )
        .await?;
        match pages.next(page.next, "recordings")? {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    if listing_complete {
        mark_unlisted(store, &seen, since, started_at - DELETION_MARGIN, report).await?;
    } else {
        report.notes.push(
            "deleted recordings not checked: a listed recording had no readable SID".to_owned(),
        );
    }

    // Recordings of the calls this run saw change (one created before the
    // window, on a long call, is not in the listing above).
    for call in changed {
        let filter = RecordingFilter {
            page_size,
            ..RecordingFilter::of_call(call.clone())
        };
        let mut pages = Pages::default();
        let mut token = None;
        loop {
            stop.check()?;
            let page = client.list_recordings_page(&filter, token.as_ref()).await?;
            note_rejected(skipped, page.rejected);
            report.recordings_fetched += page.recordings.len() as u64;
            write(
                store,
                MediaBatch {
                    recordings: page.recordings,
                    ..MediaBatch::default()
                },
                report,
            )
            .await?;
            match pages.next(page.next, "recordings")? {
                Some(next) => token = Some(next),
                None => break,
            }
        }
    }

    // Legacy transcriptions, newest first, down to the window's start.
    let mut pages = Pages::default();
    let mut token = None;
    loop {
        stop.check()?;
        let page = client
            .list_transcriptions_page(page_size, token.as_ref())
            .await?;
        note_rejected(skipped, page.rejected);
        let mut older = false;
        let mut batch = Vec::with_capacity(page.transcripts.len());
        for t in page.transcripts {
            if t.date_created.is_some_and(|c| c <= from) {
                older = true;
            } else {
                batch.push(t);
            }
        }
        report.transcripts_fetched += batch.len() as u64;
        write(
            store,
            MediaBatch {
                transcripts: batch,
                ..MediaBatch::default()
            },
            report,
        )
        .await?;
        match pages.next(page.next, "transcriptions")? {
            Some(next) if !older => token = Some(next),
            _ => break,
        }
    }

    // Voice Intelligence transcripts of the window, with their sentences.
    let filter = TranscriptFilter {
        created_after: Some(from),
        page_size,
        ..TranscriptFilter::default()
    };
    let mut pages = Pages::default();
    let mut token = None;
    loop {
        stop.check()?;
        let page = match client
            .list_intelligence_transcripts_page(&filter, token.as_ref())
            .await
        {
            Ok(page) => page,
            // Voice Intelligence is a separate product on its own host: an
            // account without it, or a host that cannot be reached, must
            // not stop the sync of calls and recordings. Said in the report.
            Err(e) => {
                let note = format!("Voice Intelligence transcripts skipped: {e}");
                tracing::warn!("{note}");
                report.notes.push(note);
                break;
            }
        };
        note_rejected(skipped, page.rejected);
        let mut batch = Vec::with_capacity(page.transcripts.len());
        let mut stopped = false;
        for mut t in page.transcripts {
            if t.status == TranscriptStatus::Completed {
                match client.transcript_sentences(&t.sid).await {
                    Ok(sentences) => t.set_sentences(sentences),
                    Err(e @ (TwilioError::NotFound { .. } | TwilioError::Decode { .. })) => {
                        skipped.push(Skipped {
                            sid: Some(t.sid.clone()),
                            reason: format!("the transcript's sentences could not be read: {e}"),
                        });
                        continue;
                    }
                    Err(e) => {
                        let note = format!("Voice Intelligence transcripts stopped: {e}");
                        tracing::warn!("{note}");
                        report.notes.push(note);
                        stopped = true;
                        break;
                    }
                }
            }
            batch.push(t);
        }
        report.transcripts_fetched += batch.len() as u64;
        // What was read before a failure is kept.
        write(
            store,
            MediaBatch {
                transcripts: batch,
                ..MediaBatch::default()
            },
            report,
        )
        .await?;
        match pages.next(page.next, "transcripts")? {
            Some(next) if !stopped => token = Some(next),
            _ => break,
        }
    }
    Ok(())
}

/// Marks deleted the stored recordings created between `after` and
/// `before` that a complete listing did not show: one transaction reads
/// them and writes the marks.
async fn mark_unlisted(
    store: &dyn Store,
    seen: &HashSet<RecordingSid>,
    after: DateTime<Utc>,
    before: DateTime<Utc>,
    report: &mut MediaReport,
) -> Result<(), SyncError> {
    let mut tx = store.begin_ingest().await?;
    tx.confirm_sync_lock().await?;
    let gone: Vec<RecordingSid> = tx
        .recordings_created_between(Some(after), Some(before))
        .await?
        .into_iter()
        .filter(|s| !seen.contains(s))
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    let batch = MediaBatch {
        gone,
        ..MediaBatch::default()
    };
    report.add(write_media_in(tx, batch).await?);
    Ok(())
}

/// The next-page tokens of one listing: a token seen before is an error
/// (a listing that would never end), never a loop.
#[derive(Default)]
struct Pages(HashSet<String>);

impl Pages {
    fn next(
        &mut self,
        next: Option<PageToken>,
        what: &str,
    ) -> Result<Option<PageToken>, SyncError> {
        match next {
            Some(token) if !self.0.insert(token.0.clone()) => Err(TwilioError::Decode {
                context: format!("the {what} listing"),
                reason: format!("the next page {:?} was already read", token.0),
            }
            .into()),
            other => Ok(other),
        }
    }
}

/// Plans and writes one batch of media in one transaction that confirms
/// the run still holds the sync lock.
async fn write(
    store: &dyn Store,
    batch: MediaBatch,
    report: &mut MediaReport,
) -> Result<(), SyncError> {
    if batch.recordings.is_empty() && batch.transcripts.is_empty() && batch.gone.is_empty() {
        return Ok(());
    }
    let mut tx = store.begin_ingest().await?;
    tx.confirm_sync_lock().await?;
    report.add(write_media_in(tx, batch).await?);
    Ok(())
}

/// What one media write stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MediaWritten {
    /// Recordings inserted or replaced.
    pub recordings: u64,
    /// Recordings marked deleted.
    pub deleted: u64,
    /// Transcripts inserted or replaced.
    pub transcripts: u64,
}

impl MediaWritten {
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl MediaReport {
    fn add(&mut self, written: MediaWritten) {
        self.recordings_written += written.recordings;
        self.recordings_deleted += written.deleted;
        self.transcripts_written += written.transcripts;
    }
}

/// Plans `batch` in `tx` (after whatever `tx` already read), writes the
/// plan and commits: the one way recordings and transcripts are written,
/// by the sync and by the server when playback learns something.
pub async fn write_media_in(
    mut tx: Box<dyn IngestTx>,
    batch: MediaBatch,
) -> Result<MediaWritten, crate::store::StoreError> {
    let plan = plan_media_in(tx.as_mut(), batch).await?;
    let written = MediaWritten {
        recordings: plan.recordings.len() as u64,
        deleted: plan.deleted.len() as u64,
        transcripts: plan.transcripts.len() as u64,
    };
    if !plan.is_empty() {
        tx.apply_media(plan).await?;
    }
    tx.commit().await?;
    Ok(written)
}

/// Plans a media batch inside an open transaction: the transaction's
/// lookup around the pure [`plan_media`]. What every media writer (the
/// sync, the audio proxy finding a recording gone) runs.
pub async fn plan_media_in(
    tx: &mut dyn IngestTx,
    batch: MediaBatch,
) -> Result<crate::model::MediaPlan, crate::store::StoreError> {
    let mut recording_sids: Vec<RecordingSid> = batch
        .recordings
        .iter()
        .map(|r| r.sid.clone())
        .chain(batch.gone.iter().cloned())
        .collect();
    recording_sids.sort();
    recording_sids.dedup();
    let mut transcript_sids: Vec<String> =
        batch.transcripts.iter().map(|t| t.sid.clone()).collect();
    transcript_sids.sort();
    transcript_sids.dedup();
    let (stored, stored_t) = tx.load_media(&recording_sids, &transcript_sids).await?;
    Ok(plan_media(batch, &stored, &stored_t, Utc::now()))
}

fn note_rejected(skipped: &mut Vec<Skipped>, rejected: Vec<MediaParseError>) {
    for r in rejected {
        tracing::warn!(sid = ?r.sid, reason = %r.reason, resource = r.resource, "skipped a record Twilio sent");
        skipped.push(Skipped {
            sid: r.sid,
            reason: format!("{} record: {}", r.resource, r.reason),
        });
    }
}
