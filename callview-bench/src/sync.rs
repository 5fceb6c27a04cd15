//! One measured sync: the engine over the real HTTP client, with the
//! store and client wrapped to see where the time goes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use callview_core::{PartyRules, Store, SyncEngine, SyncMode, SyncReport, TwilioClient};
use serde::Serialize;

use crate::machine::RssProbe;
use crate::timing::{MethodTime, TimedClient, TimedStore, Timings};

/// What one sync run measured.
#[derive(Clone, Debug, Serialize)]
pub struct SyncRun {
    /// The engine's report.
    pub report: SyncReport,
    /// Wall time of `SyncEngine::run`, seconds.
    pub wall_secs: f64,
    /// Calls stored for the first time per second of wall time.
    pub calls_per_sec: f64,
    /// RSS when the run started, MiB.
    pub rss_before_mib: f64,
    /// Peak RSS during the run, MiB (the whole process's peak when the
    /// kernel did not let it be reset).
    pub peak_rss_mib: f64,
    /// Whether the peak was reset at the start.
    pub peak_reset: bool,
    /// Time per store and client method.
    pub timings: BTreeMap<&'static str, MethodTime>,
}

/// Runs one sync of `mode` from `client` into `store` with `concurrency`
/// readers (and `page_size` when given), timing it. Calls only: the
/// figures are calls per second, comparable with earlier rounds and with
/// the raw yardstick, so the recordings and transcripts part of a run is
/// left out (`SyncEngine::with_media(false)`).
pub async fn measured_sync(
    client: Arc<dyn TwilioClient>,
    store: Arc<dyn Store>,
    mode: SyncMode,
    concurrency: usize,
    page_size: Option<u32>,
) -> Result<SyncRun> {
    let timed_store = Arc::new(TimedStore::new(store));
    let timings: Timings = timed_store.timings.clone();
    let timed_client = Arc::new(TimedClient::new(client, timings.clone()));
    let mut engine = SyncEngine::new(timed_client, timed_store, PartyRules::default())
        .with_concurrency(concurrency)
        .with_media(false);
    if let Some(size) = page_size {
        engine = engine.with_page_size(size);
    }
    let probe = RssProbe::start();
    let clock = Instant::now();
    let report = engine.run(mode, None).await.context("the sync failed")?;
    let wall_secs = clock.elapsed().as_secs_f64();
    let peak_rss_mib = probe.peak_mib();
    Ok(SyncRun {
        calls_per_sec: report.inserted as f64 / wall_secs.max(1e-9),
        wall_secs,
        rss_before_mib: probe.before_mib,
        peak_rss_mib,
        peak_reset: probe.reset,
        timings: timings.snapshot(),
        report,
    })
}
