//! `audio`: the recording proxy (`GET /api/recordings/{sid}/audio`). A
//! simulated account of 3,000 calls (its recordings carry real MP3 audio, a
//! third of them behind a redirect to storage) served over HTTP on loopback
//! and synced with media into a store; the callview router then served
//! twice on loopback (`TCP_NODELAY` on every connection, the simulator's
//! included, as `callview serve` sets it) with the real `HttpTwilioClient`
//! as its upstream,
//! without and with an [`AudioCache`] (a temporary directory). For a sample
//! of 30 completed recordings (taken through the API: conversations with
//! `has_recording=true`, then each one's `metadata.recordings[].url`), one
//! client (reqwest, keep-alive) measures the time to the first body byte
//! and to the last, request by request, for:
//!
//! * the whole MP3 without the cache, `Range: bytes=-100` (the end) and a
//!   [`MIDDLE_RANGE_BYTES`] range from the middle without the cache (the
//!   proxy reads Twilio's Range-less answer up to the range's end);
//! * a first play with the cache (a miss: downloaded to disk, then served),
//!   a second play (a hit) and the middle range from the cache.
//!
//! Every answer is checked against the simulator's own bytes (status `200`
//! or `206`, exact `Content-Range`, the body byte for byte), and the
//! cache's counters against the requests made: a wrong answer fails the
//! run.
//!
//! Targets on loopback: a p50 time to first byte under
//! [`TTFB_UNCACHED_TARGET_MS`] for the whole file without the cache, and
//! under [`TTFB_HIT_TARGET_MS`] for cache hits.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use callview_core::recording::RecordingSid;
use callview_core::twilio::AudioFormat;
use callview_core::{PartyRules, SyncEngine, SyncMode, TwilioClient};
use callview_server::audio_cache::AudioCache;
use callview_server::AppState;
use callview_sim::{ServerOptions, SimConfig, SimulatedTwilio};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::Serialize;
use serde_json::Value;

use crate::db::{BenchDb, StoreKind};
use crate::report::{ms, secs, thousands, Report, Table, TargetCheck, Verdict};
use crate::sim;
use crate::Options;

/// p50 bound of the time to first byte of a whole recording fetched
/// through the proxy without the cache, milliseconds: one store lookup and
/// one request to Twilio (plus the storage redirect for a third of them),
/// all on loopback.
pub const TTFB_UNCACHED_TARGET_MS: f64 = 20.0;
/// p50 bound of the time to first byte of a cache hit (whole file or a
/// range), milliseconds: a store lookup and a file opened and read.
pub const TTFB_HIT_TARGET_MS: f64 = 5.0;
/// Recordings measured per case (smoke: 5).
pub const SAMPLE: usize = 30;
/// Bytes of the middle range (`bytes=a-b`, `a` half the file): 64 KiB,
/// about 16 s of the simulator's 32 kbit/s MP3.
pub const MIDDLE_RANGE_BYTES: u64 = 64 * 1024;
/// Bytes of the end range (`bytes=-100`).
pub const END_RANGE_BYTES: u64 = 100;
/// The cache's bound: far above the sample's audio, so nothing is evicted.
pub const CACHE_MAX_BYTES: u64 = 1 << 30;

/// The cases, in the order measured.
pub const FULL_UNCACHED: &str = "full file, no cache";
/// See [`FULL_UNCACHED`].
pub const END_UNCACHED: &str = "end range (bytes=-100), no cache";
/// See [`FULL_UNCACHED`].
pub const MIDDLE_UNCACHED: &str = "middle range (64 KiB), no cache";
/// See [`FULL_UNCACHED`]: the recording is downloaded into the cache, then
/// served from the file.
pub const FIRST_PLAY: &str = "first play, cache miss";
/// See [`FULL_UNCACHED`].
pub const SECOND_PLAY: &str = "second play, cache hit";
/// See [`FULL_UNCACHED`].
pub const MIDDLE_CACHED: &str = "middle range (64 KiB), cache hit";

/// One case's figures over the sample.
#[derive(Clone, Debug, Serialize)]
pub struct CaseStats {
    /// One of [`FULL_UNCACHED`], ...
    pub name: String,
    /// Whether the server had the cache.
    pub cached: bool,
    /// The status every answer had (`200` or `206`).
    pub status: u16,
    /// Requests measured (one per recording of the sample).
    pub requests: usize,
    /// Median time from sending the request to the first body chunk, ms.
    pub ttfb_p50_ms: f64,
    /// 99th percentile of the same (the slowest, for a sample under 100), ms.
    pub ttfb_p99_ms: f64,
    /// Median time from sending the request to the body's end, ms.
    pub total_p50_ms: f64,
    /// 99th percentile of the same, ms.
    pub total_p99_ms: f64,
    /// Median body size, bytes.
    pub bytes_p50: u64,
    /// Body bytes of all the requests.
    pub bytes_total: u64,
    /// `bytes_total` over the summed total times, MiB/s.
    pub mib_per_sec: f64,
}

/// The audio cache's counters after the cached cases.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct CacheFigures {
    /// Requests served from a cached file.
    pub hits: u64,
    /// Requests that downloaded the recording first.
    pub misses: u64,
    /// Recordings kept.
    pub entries: usize,
    /// Bytes kept.
    pub bytes: u64,
    /// Entries evicted.
    pub evictions: u64,
}

/// One store's figures.
#[derive(Clone, Debug, Serialize)]
pub struct StoreAudio {
    /// Which store.
    pub store: StoreKind,
    /// Calls stored by the sync.
    pub calls: u64,
    /// Recordings stored by the sync.
    pub recordings: u64,
    /// Wall time of the sync (calls and media), seconds.
    pub sync_secs: f64,
    /// Recordings measured.
    pub sample: usize,
    /// Of them, served by Twilio through a redirect to storage.
    pub redirected: usize,
    /// Smallest whole file of the sample, bytes.
    pub min_bytes: u64,
    /// Largest whole file of the sample, bytes.
    pub max_bytes: u64,
    /// Every case, in the order measured.
    pub cases: Vec<CaseStats>,
    /// p50 time to first byte of the whole file without the cache, for the
    /// recordings Twilio redirects (ms; `None` when the sample has none).
    pub ttfb_redirected_p50_ms: Option<f64>,
    /// The same for the recordings Twilio serves directly.
    pub ttfb_direct_p50_ms: Option<f64>,
    /// The cache's counters at the end.
    pub cache: CacheFigures,
}

impl StoreAudio {
    /// The case named `name`.
    pub fn case(&self, name: &str) -> Option<&CaseStats> {
        self.cases.iter().find(|c| c.name == name)
    }
}

/// The scenario's figures.
#[derive(Clone, Debug, Serialize)]
pub struct AudioResult {
    /// Calls in the account.
    pub calls: usize,
    /// Recordings asked for per case.
    pub sample_target: usize,
    /// Seconds spent generating the account (not measured).
    pub generate_secs: f64,
    /// Requests the storage behind the redirects received.
    pub storage_requests: u64,
    /// Of them, with an `Authorization` header (must be none: Twilio's
    /// credentials never go to the storage).
    pub storage_with_authorization: u64,
    /// Per store.
    pub stores: Vec<StoreAudio>,
}

/// Runs the scenario.
pub async fn run(options: &Options) -> Result<AudioResult> {
    let calls = options.calls_or(3_000, 300);
    let sample = if options.smoke { 5 } else { SAMPLE };
    let stores = options.stores_or(&[StoreKind::Sqlite]);
    options.progress(format!(
        "audio: generating a simulated account of {calls} calls (with recordings)"
    ));
    let sim = Simulator::start(calls).await?;
    let mut results = Vec::new();
    for kind in stores {
        let db = options.create_db(kind).await?;
        let outcome = one_store(options, &db, &sim, sample).await;
        db.remove().await?;
        results.push(outcome?);
    }
    let storage = sim.account.storage_requests();
    let generate_secs = sim.generate_secs;
    sim.server.stop().await;
    Ok(AudioResult {
        calls,
        sample_target: sample,
        generate_secs,
        storage_requests: storage.total,
        storage_with_authorization: storage.with_authorization,
        stores: results,
    })
}

/// The simulated account (as [`SimServer::in_process`] makes it), served
/// on loopback with `TCP_NODELAY` like Twilio's servers: served by
/// `callview_sim::serve`, without it, the proxy's upstream now and then
/// waited 40 ms for a delayed ACK in the middle of a recording.
///
/// [`SimServer::in_process`]: crate::sim::SimServer::in_process
struct Simulator {
    account: SimulatedTwilio,
    server: Server,
    calls: usize,
    since: DateTime<Utc>,
    generate_secs: f64,
}

impl Simulator {
    async fn start(calls: usize) -> Result<Self> {
        let days = sim::days_for(calls);
        let clock = Instant::now();
        let config = SimConfig {
            days,
            // The scenarios measure calls: an account without texts keeps
            // their figures comparable with earlier runs.
            texts: Some(0),
            ..SimConfig::new(sim::SEED, calls)
        };
        let since = config.now - chrono::Duration::days(i64::from(days) + 1);
        let account = tokio::task::spawn_blocking(move || SimulatedTwilio::new(config))
            .await
            .context("generating the simulated account")?;
        let generate_secs = clock.elapsed().as_secs_f64();
        let server = Server::simulator(account.clone()).await?;
        Ok(Self {
            account,
            server,
            calls,
            since,
            generate_secs,
        })
    }

    /// The real HTTP client, pointed at the simulator.
    fn client(&self) -> Result<Arc<dyn TwilioClient>> {
        sim::http_client(&self.server.base, self.account.account_sid())
    }
}

/// One recording of the sample.
struct Sampled {
    sid: RecordingSid,
    /// Its URL on the callview server (`/api/recordings/{sid}/audio`).
    path: String,
    /// What the simulator serves for it.
    bytes: Vec<u8>,
    redirected: bool,
}

/// One request's measurement.
struct Fetch {
    status: u16,
    content_range: Option<String>,
    body: Vec<u8>,
    ttfb: Duration,
    total: Duration,
}

/// What a request asks for.
#[derive(Clone, Copy)]
enum Want {
    Full,
    End,
    Middle,
}

impl Want {
    /// The `Range` header and the bytes expected of a file of `len`.
    fn range(self, len: u64) -> (Option<String>, std::ops::Range<u64>) {
        match self {
            Self::Full => (None, 0..len),
            Self::End => (
                Some(format!("bytes=-{END_RANGE_BYTES}")),
                len.saturating_sub(END_RANGE_BYTES)..len,
            ),
            Self::Middle => {
                let start = len / 2;
                let end = (start + MIDDLE_RANGE_BYTES).min(len);
                (Some(format!("bytes={start}-{}", end - 1)), start..end)
            }
        }
    }
}

async fn one_store(
    options: &Options,
    db: &BenchDb,
    sim: &Simulator,
    sample: usize,
) -> Result<StoreAudio> {
    let kind = db.kind;
    let store = db.open_store().await?;
    let upstream = sim.client()?;
    options.progress(format!(
        "audio: syncing {} calls with their recordings into {kind}",
        sim.calls
    ));
    let clock = Instant::now();
    let report = SyncEngine::new(upstream.clone(), store.clone(), PartyRules::default())
        .with_concurrency(options.concurrency)
        .run(SyncMode::Since(sim.since), None)
        .await
        .context("the sync failed")?;
    let sync_secs = clock.elapsed().as_secs_f64();
    ensure!(
        report.media.recordings_written > 0,
        "the sync stored no recordings ({report:?})"
    );
    options.progress(format!(
        "audio: {kind}: {} calls and {} recordings in {}",
        report.inserted,
        report.media.recordings_written,
        secs(sync_secs)
    ));

    let cache_dir = tempfile::Builder::new()
        .prefix("callview-bench-audio-")
        .tempdir()
        .context("creating the cache directory")?;
    let cache = AudioCache::open(cache_dir.path().to_path_buf(), CACHE_MAX_BYTES)
        .context("opening the audio cache")?;
    let plain_state = AppState::new(store.clone()).with_recordings(upstream.clone(), None);
    let cached_state = AppState::new(store.clone()).with_recordings(upstream, Some(cache));
    let plain = Server::start(plain_state).await?;
    let cached = Server::start(cached_state.clone()).await?;
    let outcome = async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(8)
            .timeout(Duration::from_secs(60))
            .build()?;
        let recordings = pick(&client, &plain.base, sim, sample).await?;
        ensure!(
            !recordings.is_empty(),
            "the API lists no completed recording"
        );
        options.progress(format!(
            "audio: {kind}: measuring {} recordings ({} behind a storage redirect)",
            recordings.len(),
            recordings.iter().filter(|r| r.redirected).count()
        ));
        // Warm-up: the connections to both servers (and the store), and
        // the proxy's connection to Twilio.
        for server in [&plain, &cached] {
            let url = format!("{}/api/recordings/{}", server.base, recordings[0].sid);
            let response = client.get(&url).send().await?;
            ensure!(
                response.status().is_success(),
                "GET {url}: {}",
                response.status()
            );
            let _ = response.bytes().await?;
        }
        fetch(&client, &plain.base, &recordings[0], Want::Full).await?;

        let mut cases = Vec::new();
        let mut full_ttfb = Vec::new();
        for (name, base, want, status) in [
            (FULL_UNCACHED, &plain.base, Want::Full, 200),
            (END_UNCACHED, &plain.base, Want::End, 206),
            (MIDDLE_UNCACHED, &plain.base, Want::Middle, 206),
            (FIRST_PLAY, &cached.base, Want::Full, 200),
            (SECOND_PLAY, &cached.base, Want::Full, 200),
            (MIDDLE_CACHED, &cached.base, Want::Middle, 206),
        ] {
            options.progress(format!("audio: {kind}: {name}"));
            let mut fetches = Vec::new();
            for r in &recordings {
                let f = fetch(&client, base, r, want)
                    .await
                    .with_context(|| format!("{kind}: {name}: GET {}", r.path))?;
                ensure!(
                    f.status == status,
                    "{name}: GET {} answered {} (expected {status})",
                    r.path,
                    f.status
                );
                if name == FULL_UNCACHED {
                    full_ttfb.push((r.redirected, f.ttfb));
                }
                fetches.push(f);
            }
            cases.push(case_stats(name, base == &cached.base, status, &fetches));
        }

        let stats = cached_state
            .recordings()
            .and_then(|s| s.cache.as_ref())
            .context("the cached server has no cache")?
            .stats();
        let n = recordings.len() as u64;
        let total_bytes: u64 = recordings.iter().map(|r| r.bytes.len() as u64).sum();
        ensure!(
            stats.misses == n && stats.hits == 2 * n,
            "the cache counted {} misses and {} hits for {n} first plays, {n} second plays \
             and {n} ranges",
            stats.misses,
            stats.hits
        );
        ensure!(
            stats.entries == recordings.len() && stats.bytes == total_bytes,
            "the cache keeps {} entries of {} bytes; expected {n} of {total_bytes}",
            stats.entries,
            stats.bytes
        );
        let p50_of = |redirected: bool| {
            let mut times: Vec<f64> = full_ttfb
                .iter()
                .filter(|(r, _)| *r == redirected)
                .map(|(_, t)| t.as_secs_f64() * 1000.0)
                .collect();
            times.sort_by(f64::total_cmp);
            (!times.is_empty()).then(|| percentile(&times, 0.50))
        };
        Ok(StoreAudio {
            store: kind,
            calls: report.inserted,
            recordings: report.media.recordings_written,
            sync_secs,
            sample: recordings.len(),
            redirected: recordings.iter().filter(|r| r.redirected).count(),
            min_bytes: recordings
                .iter()
                .map(|r| r.bytes.len() as u64)
                .min()
                .unwrap_or(0),
            max_bytes: recordings
                .iter()
                .map(|r| r.bytes.len() as u64)
                .max()
                .unwrap_or(0),
            cases,
            ttfb_redirected_p50_ms: p50_of(true),
            ttfb_direct_p50_ms: p50_of(false),
            cache: CacheFigures {
                hits: stats.hits,
                misses: stats.misses,
                entries: stats.entries,
                bytes: stats.bytes,
                evictions: stats.evictions,
            },
        })
    }
    .await;
    plain.stop().await;
    cached.stop().await;
    outcome
}

/// Up to `want` completed recordings, at most one per conversation, found
/// the way the viewer finds them: the conversations with a recording, then
/// each one's messages and their `metadata.recordings[].url`. Each comes
/// with the bytes the simulator serves for it, to check answers against.
async fn pick(
    client: &reqwest::Client,
    base: &str,
    sim: &Simulator,
    want: usize,
) -> Result<Vec<Sampled>> {
    let account = &sim.account;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/conversations?has_recording=true&limit=100");
        if let Some(c) = &cursor {
            let encoded: String = url::form_urlencoded::byte_serialize(c.as_bytes()).collect();
            url.push_str(&format!("&cursor={encoded}"));
        }
        let page = get_json(client, &url).await?;
        let conversations = page["conversations"]
            .as_array()
            .context("the list has no `conversations`")?;
        for c in conversations {
            let id = c["id"].as_str().context("a conversation without an id")?;
            let messages = get_json(
                client,
                &format!("{base}/api/conversations/{id}/messages?limit=500"),
            )
            .await?;
            let found = messages["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|m| m["metadata"]["recordings"].as_array().into_iter().flatten())
                .find(|r| {
                    r["status"] == "completed"
                        && r["url"].is_string()
                        && r["sid"].as_str().is_some_and(|s| !seen.contains(s))
                });
            let Some(rec) = found else { continue };
            let sid_text = rec["sid"].as_str().unwrap_or_default().to_owned();
            let sid = RecordingSid::new(&sid_text)
                .with_context(|| format!("{sid_text:?} is not a recording SID"))?;
            let path = rec["url"].as_str().unwrap_or_default().to_owned();
            ensure!(
                path == format!("/api/recordings/{sid}/audio"),
                "recording {sid} plays from {path:?}"
            );
            let audio = account
                .recording_audio(&sid, AudioFormat::Mp3)
                .await
                .with_context(|| format!("the simulator's audio of {sid}"))?;
            let bytes = audio
                .body
                .try_fold(Vec::new(), |mut all, chunk| async move {
                    all.extend_from_slice(&chunk);
                    Ok(all)
                })
                .await?;
            ensure!(!bytes.is_empty(), "recording {sid} has no audio");
            let redirected = account.with_account(|a| a.audio_redirects(&sid));
            seen.insert(sid_text);
            out.push(Sampled {
                sid,
                path,
                bytes,
                redirected,
            });
            if out.len() >= want {
                return Ok(out);
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) if !conversations.is_empty() => cursor = Some(next.to_owned()),
            _ => return Ok(out),
        }
    }
}

/// GETs `url`, failing unless it answers 200 with JSON.
async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value> {
    let response = client.get(url).send().await?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

/// Requests `want` of `recording` from the server at `base`, timing the
/// first body chunk and the end, and checks the answer: the status
/// (returned for the caller to check), `Content-Range` for a `206`, and the
/// body byte for byte.
async fn fetch(
    client: &reqwest::Client,
    base: &str,
    recording: &Sampled,
    want: Want,
) -> Result<Fetch> {
    let len = recording.bytes.len() as u64;
    let (range, expected) = want.range(len);
    let mut request = client.get(format!("{base}{}", recording.path));
    if let Some(range) = &range {
        request = request.header(reqwest::header::RANGE, range);
    }
    let clock = Instant::now();
    let mut response = request.send().await?;
    let status = response.status().as_u16();
    let content_range = response
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::with_capacity((expected.end - expected.start) as usize);
    let mut ttfb = None;
    while let Some(chunk) = response.chunk().await? {
        if ttfb.is_none() {
            ttfb = Some(clock.elapsed());
        }
        body.extend_from_slice(&chunk);
    }
    let total = clock.elapsed();
    let fetched = Fetch {
        status,
        content_range,
        body,
        ttfb: ttfb.unwrap_or(total),
        total,
    };
    if status == 206 {
        let wanted = format!("bytes {}-{}/{len}", expected.start, expected.end - 1);
        ensure!(
            fetched.content_range.as_deref() == Some(wanted.as_str()),
            "Range {range:?}: Content-Range {:?}, expected {wanted:?}",
            fetched.content_range
        );
    } else if status != 200 {
        bail!(
            "answered {status}: {}",
            String::from_utf8_lossy(&fetched.body)
        );
    }
    let expected = if status == 200 { 0..len } else { expected };
    let slice = &recording.bytes[expected.start as usize..expected.end as usize];
    ensure!(
        fetched.body.len() == slice.len(),
        "{} bytes received, expected {} (status {status}, range {range:?})",
        fetched.body.len(),
        slice.len()
    );
    ensure!(
        fetched.body == slice,
        "the bytes differ from Twilio's (status {status}, range {range:?})"
    );
    Ok(fetched)
}

/// The nearest-rank percentile `p` of sorted `values`.
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

fn case_stats(name: &str, cached: bool, status: u16, fetches: &[Fetch]) -> CaseStats {
    let sorted = |f: &dyn Fn(&Fetch) -> f64| {
        let mut v: Vec<f64> = fetches.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let ttfb = sorted(&|f| f.ttfb.as_secs_f64() * 1000.0);
    let total = sorted(&|f| f.total.as_secs_f64() * 1000.0);
    let mut sizes: Vec<u64> = fetches.iter().map(|f| f.body.len() as u64).collect();
    sizes.sort_unstable();
    let bytes_total: u64 = sizes.iter().sum();
    let secs_total: f64 = fetches.iter().map(|f| f.total.as_secs_f64()).sum();
    CaseStats {
        name: name.to_owned(),
        cached,
        status,
        requests: fetches.len(),
        ttfb_p50_ms: percentile(&ttfb, 0.50),
        ttfb_p99_ms: percentile(&ttfb, 0.99),
        total_p50_ms: percentile(&total, 0.50),
        total_p99_ms: percentile(&total, 0.99),
        bytes_p50: sizes
            .get((sizes.len().max(1) - 1) / 2)
            .copied()
            .unwrap_or(0),
        bytes_total,
        mib_per_sec: bytes_total as f64 / (1024.0 * 1024.0) / secs_total.max(1e-9),
    }
}

/// MiB/s with a precision that suits the size (ranges of 100 bytes move
/// a few KiB/s).
fn rate(mib_per_sec: f64) -> String {
    if mib_per_sec < 1.0 {
        format!("{mib_per_sec:.3}")
    } else {
        format!("{mib_per_sec:.1}")
    }
}

/// The callview router with recordings on `127.0.0.1:0`.
struct Server {
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serves the callview router for `state`, with `TCP_NODELAY` as
    /// `callview_server::serve` sets it.
    async fn start(state: AppState) -> Result<Self> {
        Self::serve(callview_server::router(state), "the callview server").await
    }

    /// Serves the simulated account, with `TCP_NODELAY`.
    async fn simulator(sim: SimulatedTwilio) -> Result<Self> {
        let app = callview_sim::router(sim, ServerOptions::default());
        Self::serve(app, "the simulator").await
    }

    /// Serves `app` on `127.0.0.1:0` with `TCP_NODELAY` on every connection.
    /// Without it, a response written in parts (headers, then the body in
    /// chunks) now and then waits for the client's delayed ACK: 40 ms.
    async fn serve(app: axum::Router, what: &'static str) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("{what} stopped: {e}");
            }
        });
        Ok(Self { base, task })
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

impl AudioResult {
    /// The printed report.
    pub fn report(&self, options: &Options) -> Report {
        let mut report = Report::new("audio", options.smoke);
        let mut setup = Table::new(
            "Recordings synced (calls and media, real HttpTwilioClient over loopback)",
            &[
                "store",
                "calls",
                "recordings",
                "sync",
                "sample",
                "redirected",
                "file sizes",
            ],
        );
        for s in &self.stores {
            setup.row(vec![
                s.store.label().to_owned(),
                thousands(s.calls as f64),
                thousands(s.recordings as f64),
                secs(s.sync_secs),
                s.sample.to_string(),
                s.redirected.to_string(),
                format!(
                    "{}–{} B",
                    thousands(s.min_bytes as f64),
                    thousands(s.max_bytes as f64)
                ),
            ]);
        }
        report.tables.push(setup);
        let mut table = Table::new(
            "GET /api/recordings/{sid}/audio (MP3) over loopback, one client, one request per \
             recording",
            &[
                "store",
                "case",
                "status",
                "requests",
                "TTFB p50",
                "TTFB p99",
                "total p50",
                "total p99",
                "bytes p50",
                "MiB/s",
            ],
        );
        for s in &self.stores {
            for c in &s.cases {
                table.row(vec![
                    s.store.label().to_owned(),
                    c.name.clone(),
                    c.status.to_string(),
                    c.requests.to_string(),
                    ms(c.ttfb_p50_ms),
                    ms(c.ttfb_p99_ms),
                    ms(c.total_p50_ms),
                    ms(c.total_p99_ms),
                    format!("{} B", thousands(c.bytes_p50 as f64)),
                    rate(c.mib_per_sec),
                ]);
            }
        }
        report.tables.push(table);
        let mut cache = Table::new(
            "Audio cache at the end",
            &["store", "hits", "misses", "entries", "bytes", "evictions"],
        );
        for s in &self.stores {
            cache.row(vec![
                s.store.label().to_owned(),
                s.cache.hits.to_string(),
                s.cache.misses.to_string(),
                s.cache.entries.to_string(),
                thousands(s.cache.bytes as f64),
                s.cache.evictions.to_string(),
            ]);
        }
        report.tables.push(cache);

        let judge = |ok: bool| {
            if options.smoke {
                Verdict::NotApplicable
            } else {
                Verdict::from_bool(ok)
            }
        };
        for s in &self.stores {
            if let Some(c) = s.case(FULL_UNCACHED) {
                report.targets.push(TargetCheck::new(
                    format!("{} TTFB p50, {FULL_UNCACHED}", s.store),
                    ms(c.ttfb_p50_ms),
                    format!("< {TTFB_UNCACHED_TARGET_MS} ms"),
                    judge(c.ttfb_p50_ms < TTFB_UNCACHED_TARGET_MS),
                ));
            }
            for name in [SECOND_PLAY, MIDDLE_CACHED] {
                if let Some(c) = s.case(name) {
                    report.targets.push(TargetCheck::new(
                        format!("{} TTFB p50, {name}", s.store),
                        ms(c.ttfb_p50_ms),
                        format!("< {TTFB_HIT_TARGET_MS} ms"),
                        judge(c.ttfb_p50_ms < TTFB_HIT_TARGET_MS),
                    ));
                }
            }
            report.targets.push(TargetCheck::new(
                format!("{} answers exact (status, Content-Range, bytes)", s.store),
                format!(
                    "{} requests",
                    s.cases.iter().map(|c| c.requests).sum::<usize>()
                ),
                "all",
                Verdict::Met,
            ));
            if let (Some(r), Some(d)) = (s.ttfb_redirected_p50_ms, s.ttfb_direct_p50_ms) {
                report.notes.push(format!(
                    "{}: without the cache, TTFB p50 of the whole file is {} for recordings \
                     Twilio redirects to storage, {} for the others",
                    s.store,
                    ms(r),
                    ms(d)
                ));
            }
        }
        report.targets.push(TargetCheck::new(
            "storage requests carrying Twilio's credentials",
            format!(
                "{} of {}",
                self.storage_with_authorization, self.storage_requests
            ),
            "0",
            Verdict::from_bool(self.storage_with_authorization == 0),
        ));
        report.notes.push(format!(
            "the simulated account ({} calls, generated in {}, not measured) runs in this \
             process and shares its cores with the server and the client; it and both callview \
             servers set TCP_NODELAY (as `callview serve` does); the p99 of a sample under 100 \
             requests is its slowest request",
            thousands(self.calls as f64),
            secs(self.generate_secs)
        ));
        report.notes.push(
            "without the cache every request fetches the recording from Twilio, which ignores \
             Range: the proxy reads and drops the bytes before a range, so the end range costs \
             about a whole download; the first play with the cache downloads the whole file to \
             disk before the first byte is sent"
                .into(),
        );
        if options.smoke {
            report
                .notes
                .push("smoke run: the latency targets are judged on full runs only".into());
        }
        report.data = serde_json::to_value(self).unwrap_or_default();
        report
    }
}
