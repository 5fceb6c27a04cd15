//! The recording audio proxy (`callview_server::audio`): ranges over a
//! Range-less upstream, JSON failures, and the on-disk cache.
//!
//! Each test mounts `serve_recording_audio` in a tiny router of its own over
//! a `MockTwilio` wrapped in [`Upstream`], which counts the audio fetches and
//! can fail in the ways a network does.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use callview_core::call::{Call, CallSid};
use callview_core::recording::{Recording, RecordingSid, Sentence};
use callview_core::testkit::MockTwilio;
use callview_core::twilio::{
    AudioFormat, CallFilter, CallPage, IncomingNumber, PageToken, RecordingAudio, RecordingFilter,
    RecordingPage, TranscriptFilter, TranscriptPage, TwilioClient, TwilioError,
};
use callview_server::audio::{serve_recording_audio, AudioError, AUDIO_CACHE_CONTROL};
use callview_server::audio_cache::AudioCache;
use futures::StreamExt;
use tower::ServiceExt;

/// How [`Upstream`] serves audio.
#[derive(Clone, Debug)]
enum Mode {
    /// As the mock does: 4 KiB chunks, with `Content-Length`.
    Normal,
    /// `recording_audio` itself fails.
    Fail(TwilioError),
    /// The first `n` bytes, then a transport error.
    BreakAfter(usize),
    /// Announces more bytes than it sends.
    ShortBy(u64),
    /// No `Content-Length`.
    NoLength,
    /// A pause before each chunk.
    Slow(Duration),
    /// The first `n` bytes, then nothing ever again.
    StallAfter(usize),
}

/// A [`MockTwilio`] that counts `recording_audio` calls and can misbehave.
struct Upstream {
    mock: MockTwilio,
    fetches: AtomicU64,
    mode: Mutex<Mode>,
}

impl Upstream {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            mock: MockTwilio::new(),
            fetches: AtomicU64::new(0),
            mode: Mutex::new(Mode::Normal),
        })
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TwilioClient for Upstream {
    async fn list_calls_page(
        &self,
        filter: &CallFilter,
        page: Option<&PageToken>,
    ) -> Result<CallPage, TwilioError> {
        self.mock.list_calls_page(filter, page).await
    }
    async fn fetch_call(&self, sid: &CallSid) -> Result<Call, TwilioError> {
        self.mock.fetch_call(sid).await
    }
    async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
        self.mock.list_incoming_numbers().await
    }
    async fn list_recordings_page(
        &self,
        filter: &RecordingFilter,
        page: Option<&PageToken>,
    ) -> Result<RecordingPage, TwilioError> {
        self.mock.list_recordings_page(filter, page).await
    }
    async fn fetch_recording(&self, sid: &RecordingSid) -> Result<Recording, TwilioError> {
        self.mock.fetch_recording(sid).await
    }
    async fn list_transcriptions_page(
        &self,
        page_size: u32,
        page: Option<&PageToken>,
    ) -> Result<TranscriptPage, TwilioError> {
        self.mock.list_transcriptions_page(page_size, page).await
    }
    async fn list_intelligence_transcripts_page(
        &self,
        filter: &TranscriptFilter,
        page: Option<&PageToken>,
    ) -> Result<TranscriptPage, TwilioError> {
        self.mock
            .list_intelligence_transcripts_page(filter, page)
            .await
    }
    async fn transcript_sentences(
        &self,
        transcript_sid: &str,
    ) -> Result<Vec<Sentence>, TwilioError> {
        self.mock.transcript_sentences(transcript_sid).await
    }
    async fn list_texts_page(
        &self,
        filter: &callview_core::twilio::TextFilter,
        page: Option<&PageToken>,
    ) -> Result<callview_core::twilio::TextPage, TwilioError> {
        self.mock.list_texts_page(filter, page).await
    }
    async fn text_media(
        &self,
        sid: &callview_core::text::MessageSid,
    ) -> Result<Vec<callview_core::text::TextMedia>, TwilioError> {
        self.mock.text_media(sid).await
    }
    async fn text_media_content(
        &self,
        sid: &callview_core::text::MessageSid,
        media_sid: &str,
    ) -> Result<RecordingAudio, TwilioError> {
        self.mock.text_media_content(sid, media_sid).await
    }
    async fn send_text(
        &self,
        text: &callview_core::twilio::OutgoingText,
    ) -> Result<callview_core::text::Text, TwilioError> {
        self.mock.send_text(text).await
    }
    async fn recording_audio(
        &self,
        sid: &RecordingSid,
        format: AudioFormat,
    ) -> Result<RecordingAudio, TwilioError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let mode = self.mode.lock().unwrap().clone();
        if let Mode::Fail(e) = mode {
            return Err(e);
        }
        let mut audio = self.mock.recording_audio(sid, format).await?;
        match mode {
            Mode::Normal | Mode::Fail(_) => {}
            Mode::BreakAfter(n) => {
                let all = collect(audio.body).await;
                let cut = Bytes::from(all[..n].to_vec());
                audio.body = futures::stream::iter([
                    Ok(cut),
                    Err(TwilioError::Transport("connection reset by peer".into())),
                ])
                .boxed();
            }
            Mode::ShortBy(n) => {
                audio.content_length = audio.content_length.map(|l| l + n);
            }
            Mode::NoLength => audio.content_length = None,
            Mode::StallAfter(n) => {
                let all = collect(audio.body).await;
                let head = Bytes::from(all[..n].to_vec());
                audio.body = futures::stream::iter([Ok(head)])
                    .chain(futures::stream::pending())
                    .boxed();
            }
            Mode::Slow(pause) => {
                audio.body = audio
                    .body
                    .then(move |chunk| async move {
                        tokio::time::sleep(pause).await;
                        chunk
                    })
                    .boxed();
            }
        }
        Ok(audio)
    }
}

async fn collect(
    mut body: futures::stream::BoxStream<'static, Result<Bytes, TwilioError>>,
) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// The test router's state.
#[derive(Clone)]
struct Proxy {
    upstream: Arc<Upstream>,
    cache: Option<Arc<AudioCache>>,
    /// Recordings the proxy reported gone (a real caller marks them deleted).
    gone: Arc<Mutex<Vec<RecordingSid>>>,
}

async fn audio(
    State(proxy): State<Proxy>,
    UrlPath(file): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let parsed = file
        .split_once('.')
        .and_then(|(sid, ext)| Some((RecordingSid::new(sid)?, AudioFormat::parse(ext)?)));
    let Some((sid, format)) = parsed else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let served = serve_recording_audio(
        &*proxy.upstream,
        proxy.cache.as_deref(),
        &sid,
        format,
        &headers,
    )
    .await;
    match served {
        Ok(response) => response,
        Err(e) => {
            if e.is_gone() {
                proxy.gone.lock().unwrap().push(sid);
            }
            e.into_response()
        }
    }
}

impl Proxy {
    fn new(upstream: &Arc<Upstream>, cache: Option<&Arc<AudioCache>>) -> Self {
        Self {
            upstream: upstream.clone(),
            cache: cache.cloned(),
            gone: Arc::default(),
        }
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/audio/{file}", get(audio))
            .with_state(self.clone())
    }

    /// GETs `/audio/{sid}.mp3` with these extra headers.
    async fn get(&self, sid: &RecordingSid, headers: &[(&str, &str)]) -> Answer {
        self.get_path(&format!("/audio/{sid}.mp3"), headers).await
    }

    async fn get_path(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(|e| e.to_string());
        Answer {
            status,
            headers,
            body,
        }
    }
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Result<Bytes, String>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn bytes(&self) -> &[u8] {
        self.body.as_ref().expect("the body streams whole")
    }

    fn json(&self) -> serde_json::Value {
        assert_eq!(self.header("content-type"), Some("application/json"));
        serde_json::from_slice(self.bytes()).unwrap()
    }
}

/// Deterministic pseudo-random bytes (xorshift), different per `seed`.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sid(n: u32) -> RecordingSid {
    RecordingSid::new(format!("RE{n:032x}")).unwrap()
}

const LEN: usize = 300 * 1024 + 17;

/// An upstream with recording `sid(1)` of [`LEN`] bytes.
fn upstream_with_one() -> (Arc<Upstream>, Vec<u8>) {
    let upstream = Upstream::new();
    let bytes = noise(LEN, 1);
    upstream
        .mock
        .set_audio(&sid(1), "audio/mpeg; test=1", bytes.clone());
    (upstream, bytes)
}

fn cache_in(dir: &Path, max_bytes: u64) -> Arc<AudioCache> {
    Arc::new(AudioCache::open(dir.to_path_buf(), max_bytes).unwrap())
}

/// Data files (not metadata, not temporaries) in the cache directory, and
/// their total size.
fn cached_files(dir: &Path) -> (Vec<String>, u64) {
    let mut names = Vec::new();
    let mut total = 0;
    for item in std::fs::read_dir(dir).unwrap() {
        let item = item.unwrap();
        let name = item.file_name().into_string().unwrap();
        if name.ends_with(".mp3") || name.ends_with(".wav") {
            total += item.metadata().unwrap().len();
        }
        names.push(name);
    }
    names.sort();
    (names, total)
}

#[tokio::test]
async fn a_full_get_streams_twilio_bytes_with_its_headers() {
    let (upstream, bytes) = upstream_with_one();
    let proxy = Proxy::new(&upstream, None);
    let answer = proxy.get(&sid(1), &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.bytes(), &bytes[..]);
    assert_eq!(answer.header("content-type"), Some("audio/mpeg; test=1"));
    assert_eq!(answer.header("content-length"), Some(&*LEN.to_string()));
    assert_eq!(answer.header("accept-ranges"), Some("bytes"));
    assert_eq!(answer.header("cache-control"), Some(AUDIO_CACHE_CONTROL));
    assert!(AUDIO_CACHE_CONTROL.starts_with("private, max-age="));
    assert_eq!(
        answer.header("content-disposition"),
        Some(&*format!("inline; filename=\"{}.mp3\"", sid(1)))
    );
    assert!(answer.header("content-range").is_none());
    let wav = proxy.get_path(&format!("/audio/{}.wav", sid(1)), &[]).await;
    assert_eq!(
        wav.header("content-disposition"),
        Some(&*format!("inline; filename=\"{}.wav\"", sid(1)))
    );
}

/// Range requests answered the same with and without a cache.
async fn check_ranges(proxy: &Proxy, bytes: &[u8]) {
    let n = bytes.len();
    let cases: Vec<(String, usize, usize)> = vec![
        ("bytes=0-99".into(), 0, 99),
        ("bytes=5000-5001".into(), 5000, 5001),
        ("bytes=4095-4096".into(), 4095, 4096), // across a chunk boundary
        ("bytes=123456-234567".into(), 123_456, 234_567),
        ("bytes=-100".into(), n - 100, n - 1),
        ("bytes=1000-".into(), 1000, n - 1),
        (format!("bytes={}-", n - 1), n - 1, n - 1),
        (format!("bytes=10-{}", n + 5000), 10, n - 1), // end clamped
        (format!("bytes=-{}", n + 10), 0, n - 1),      // suffix longer than the file
    ];
    for (range, first, last) in cases {
        let answer = proxy.get(&sid(1), &[("range", &range)]).await;
        assert_eq!(answer.status, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            answer.header("content-range"),
            Some(&*format!("bytes {first}-{last}/{n}")),
            "{range}"
        );
        assert_eq!(
            answer.header("content-length"),
            Some(&*(last - first + 1).to_string()),
            "{range}"
        );
        assert_eq!(answer.header("accept-ranges"), Some("bytes"));
        assert_eq!(answer.header("content-type"), Some("audio/mpeg; test=1"));
        assert!(
            answer.bytes() == &bytes[first..=last],
            "{range}: wrong bytes"
        );
    }

    for range in [format!("bytes={n}-"), format!("bytes={}-{}", n + 1, n + 9)] {
        let answer = proxy.get(&sid(1), &[("range", &range)]).await;
        assert_eq!(answer.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(
            answer.header("content-range"),
            Some(&*format!("bytes */{n}")),
            "{range}"
        );
        assert_eq!(answer.json()["error"]["code"], "range_not_satisfiable");
    }

    // Unparsable (ignored, RFC 9110 §14.2) and several ranges (answered whole).
    for range in ["bytes=abc", "items=0-5", "bytes=9-1", "bytes=0-9,20-29"] {
        let answer = proxy.get(&sid(1), &[("range", range)]).await;
        assert_eq!(answer.status, StatusCode::OK, "{range}");
        assert!(answer.header("content-range").is_none());
        assert!(answer.bytes() == bytes, "{range}: wrong bytes");
    }

    // If-Range: the range only when the validator is current.
    let etag = proxy
        .get(&sid(1), &[])
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let answer = proxy
        .get(&sid(1), &[("range", "bytes=0-9"), ("if-range", &etag)])
        .await;
    assert_eq!(answer.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(answer.bytes(), &bytes[..10]);
    let answer = proxy
        .get(
            &sid(1),
            &[("range", "bytes=0-9"), ("if-range", "\"other\"")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.bytes().len(), n);
}

#[tokio::test]
async fn ranges_are_cut_from_a_rangeless_upstream() {
    let (upstream, bytes) = upstream_with_one();
    let proxy = Proxy::new(&upstream, None);
    check_ranges(&proxy, &bytes).await;
}

#[tokio::test]
async fn ranges_are_served_from_the_cache_after_one_fetch() {
    let (upstream, bytes) = upstream_with_one();
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(dir.path(), 10 << 20);
    let proxy = Proxy::new(&upstream, Some(&cache));
    check_ranges(&proxy, &bytes).await;
    assert_eq!(
        upstream.fetches(),
        1,
        "every range came from the cached file"
    );
    let stats = cache.stats();
    assert_eq!(stats.misses, 1);
    assert!(stats.hits > 10, "{stats:?}");
    assert_eq!(stats.bytes, LEN as u64);
}

#[tokio::test]
async fn played_twice_is_fetched_once_with_the_cache_and_twice_without() {
    let (upstream, bytes) = upstream_with_one();
    let without = Proxy::new(&upstream, None);
    assert_eq!(without.get(&sid(1), &[]).await.bytes(), &bytes[..]);
    assert_eq!(without.get(&sid(1), &[]).await.bytes(), &bytes[..]);
    assert_eq!(upstream.fetches(), 2);

    let (upstream, bytes) = upstream_with_one();
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(dir.path(), 10 << 20);
    let with = Proxy::new(&upstream, Some(&cache));
    let first = with.get(&sid(1), &[]).await;
    let second = with.get(&sid(1), &[]).await;
    assert_eq!(first.bytes(), &bytes[..]);
    assert_eq!(second.bytes(), &bytes[..]);
    assert_eq!(upstream.fetches(), 1);
    assert_eq!(second.header("content-type"), Some("audio/mpeg; test=1"));
    assert_eq!(second.header("content-length"), Some(&*LEN.to_string()));
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (1, 1, 1));
    assert!(cache.contains(&sid(1), AudioFormat::Mp3));
    // Keyed by format too.
    with.get_path(&format!("/audio/{}.wav", sid(1)), &[]).await;
    assert_eq!(upstream.fetches(), 2);
    assert_eq!(cache.stats().entries, 2);

    // Removing a recording forgets both formats and their files.
    assert!(cache.remove_recording(&sid(1)).await);
    assert_eq!(cached_files(dir.path()).0, Vec::<String>::new());
    with.get(&sid(1), &[]).await;
    assert_eq!(upstream.fetches(), 3);
}

#[tokio::test]
async fn a_cache_reopened_keeps_its_entries_and_their_content_type() {
    let (upstream, bytes) = upstream_with_one();
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::new(&upstream, Some(&cache_in(dir.path(), 10 << 20)));
    proxy.get(&sid(1), &[]).await;
    // Leftovers of a crash: a download in progress, metadata without data.
    std::fs::write(dir.path().join(format!(".{}.mp3.1-1.part", sid(1))), b"x").unwrap();
    std::fs::write(dir.path().join(format!("{}.mp3.meta", sid(9))), b"a\n1\n").unwrap();
    std::fs::write(dir.path().join("unrelated.txt"), b"kept").unwrap();

    let cache = cache_in(dir.path(), 10 << 20);
    assert_eq!(cache.stats().entries, 1);
    let proxy = Proxy::new(&upstream, Some(&cache));
    let answer = proxy.get(&sid(1), &[("range", "bytes=-10")]).await;
    assert_eq!(answer.bytes(), &bytes[LEN - 10..]);
    assert_eq!(answer.header("content-type"), Some("audio/mpeg; test=1"));
    assert_eq!(upstream.fetches(), 1);
    assert_eq!(
        cached_files(dir.path()).0,
        vec![
            format!("{}.mp3", sid(1)),
            format!("{}.mp3.meta", sid(1)),
            "unrelated.txt".to_owned()
        ]
    );

    // A data file cut short (a crash before the data reached the disk) is
    // dropped, not served.
    let data = dir.path().join(format!("{}.mp3", sid(1)));
    std::fs::write(&data, &bytes[..100]).unwrap();
    let cache = cache_in(dir.path(), 10 << 20);
    assert_eq!(cache.stats().entries, 0);
    assert!(!data.exists());

    // Reopened with a smaller bound: evicted down to it.
    let proxy = Proxy::new(&upstream, Some(&cache));
    proxy.get(&sid(1), &[]).await;
    let cache = cache_in(dir.path(), LEN as u64 - 1);
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(cached_files(dir.path()).1, 0);
}

#[tokio::test]
async fn eviction_keeps_the_directory_under_the_bound_least_recently_used_first() {
    let upstream = Upstream::new();
    let size = 100_000;
    for n in 1..=4 {
        upstream
            .mock
            .set_audio(&sid(n), "audio/mpeg", noise(size, u64::from(n)));
    }
    let dir = tempfile::tempdir().unwrap();
    let bound = (size * 5 / 2) as u64; // room for two
    let cache = cache_in(dir.path(), bound);
    let proxy = Proxy::new(&upstream, Some(&cache));

    proxy.get(&sid(1), &[]).await;
    proxy.get(&sid(2), &[]).await;
    proxy.get(&sid(1), &[]).await; // 1 is now more recent than 2
    assert_eq!(upstream.fetches(), 2);
    proxy.get(&sid(3), &[]).await; // evicts 2
    assert_eq!(upstream.fetches(), 3);
    let (_, total) = cached_files(dir.path());
    assert!(total <= bound, "{total} > {bound}");
    assert_eq!(cache.stats().entries, 2);
    assert_eq!(cache.stats().evictions, 1);

    let answer = proxy.get(&sid(1), &[]).await;
    assert_eq!(answer.bytes(), &noise(size, 1)[..]);
    assert_eq!(upstream.fetches(), 3, "1 was kept");
    proxy.get(&sid(2), &[]).await;
    assert_eq!(upstream.fetches(), 4, "2 was evicted");

    for n in [4, 1, 2, 3, 4] {
        let answer = proxy.get(&sid(n), &[("range", "bytes=10-19")]).await;
        assert_eq!(answer.bytes(), &noise(size, u64::from(n))[10..20]);
        let (names, total) = cached_files(dir.path());
        assert!(total <= bound, "{total} > {bound}: {names:?}");
        assert!(names.iter().all(|n| !n.ends_with(".part")), "{names:?}");
    }
    assert!(cache.stats().bytes <= bound);
}

#[tokio::test]
async fn a_file_larger_than_the_bound_is_served_but_not_kept() {
    for mode in [Mode::Normal, Mode::NoLength] {
        let (upstream, bytes) = upstream_with_one();
        upstream.set_mode(mode.clone());
        let dir = tempfile::tempdir().unwrap();
        let cache = cache_in(dir.path(), LEN as u64 / 2);
        let proxy = Proxy::new(&upstream, Some(&cache));
        let answer = proxy.get(&sid(1), &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{mode:?}");
        assert!(answer.bytes() == bytes, "{mode:?}");
        let answer = proxy.get(&sid(1), &[("range", "bytes=1000-1999")]).await;
        assert_eq!(answer.status, StatusCode::PARTIAL_CONTENT, "{mode:?}");
        assert_eq!(answer.bytes(), &bytes[1000..2000], "{mode:?}");
        assert_eq!(upstream.fetches(), 2, "{mode:?}: not cached");
        assert_eq!(cache.stats().entries, 0);
        // Neither an entry nor the temporary download is left behind.
        assert_eq!(cached_files(dir.path()).0, Vec::<String>::new(), "{mode:?}");
    }
}

#[tokio::test]
async fn without_a_length_and_without_a_cache_the_whole_file_is_sent() {
    let (upstream, bytes) = upstream_with_one();
    upstream.set_mode(Mode::NoLength);
    let proxy = Proxy::new(&upstream, None);
    let answer = proxy.get(&sid(1), &[("range", "bytes=0-99")]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("accept-ranges"), Some("none"));
    assert!(answer.header("content-length").is_none());
    assert!(answer.bytes() == bytes);

    // With a cache, the download's length is known: ranges work.
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::new(&upstream, Some(&cache_in(dir.path(), 10 << 20)));
    let answer = proxy.get(&sid(1), &[("range", "bytes=0-99")]).await;
    assert_eq!(answer.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(answer.bytes(), &bytes[..100]);
}

#[tokio::test]
async fn a_deleted_or_unknown_recording_is_404_json_and_reported_gone() {
    for cached in [false, true] {
        let (upstream, _) = upstream_with_one();
        upstream.mock.delete_recording(&sid(1));
        let dir = tempfile::tempdir().unwrap();
        let cache = cached.then(|| cache_in(dir.path(), 10 << 20));
        let proxy = Proxy::new(&upstream, cache.as_ref());
        for n in [1, 2] {
            let answer = proxy.get(&sid(n), &[("range", "bytes=0-1")]).await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND);
            let json = answer.json();
            assert_eq!(json["error"]["code"], "recording_gone");
            let message = json["error"]["message"].as_str().unwrap();
            assert!(message.contains(sid(n).as_str()), "{message}");
            assert!(message.contains("not found"), "{message}");
        }
        assert_eq!(*proxy.gone.lock().unwrap(), vec![sid(1), sid(2)]);
        assert_eq!(cached_files(dir.path()).0, Vec::<String>::new());
    }

    // The signal, directly.
    let upstream = Upstream::new();
    let error = serve_recording_audio(
        &*upstream,
        None,
        &sid(3),
        AudioFormat::Mp3,
        &HeaderMap::new(),
    )
    .await
    .unwrap_err();
    assert!(error.is_gone());
    assert!(matches!(error, AudioError::Gone { ref sid } if *sid == self::sid(3)));
    assert_eq!(error.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn twilio_failures_are_502_json_with_the_reason() {
    let api = TwilioError::Api {
        status: 500,
        code: Some(20500),
        message: "Internal Server Error".into(),
        more_info: Some("https://www.twilio.com/docs/errors/20500".into()),
    };
    let retried = TwilioError::RetriesExhausted {
        attempts: 3,
        last: Box::new(api.clone()),
    };
    for cached in [false, true] {
        for error in [api.clone(), retried.clone()] {
            let (upstream, _) = upstream_with_one();
            upstream.set_mode(Mode::Fail(error));
            let dir = tempfile::tempdir().unwrap();
            let cache = cached.then(|| cache_in(dir.path(), 10 << 20));
            let proxy = Proxy::new(&upstream, cache.as_ref());
            let answer = proxy.get(&sid(1), &[]).await;
            assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
            let json = answer.json();
            assert_eq!(json["error"]["code"], "twilio_error");
            assert_eq!(json["error"]["twilio"]["status"], 500);
            assert_eq!(json["error"]["twilio"]["code"], 20500);
            assert_eq!(json["error"]["twilio"]["message"], "Internal Server Error");
            assert!(json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Internal Server Error"));
            assert!(proxy.gone.lock().unwrap().is_empty());
        }

        let (upstream, _) = upstream_with_one();
        upstream.set_mode(Mode::Fail(TwilioError::Transport(
            "connection refused".into(),
        )));
        let dir = tempfile::tempdir().unwrap();
        let cache = cached.then(|| cache_in(dir.path(), 10 << 20));
        let proxy = Proxy::new(&upstream, cache.as_ref());
        let answer = proxy.get(&sid(1), &[]).await;
        assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
        let json = answer.json();
        assert_eq!(json["error"]["code"], "twilio_error");
        assert!(json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connection refused"));
        assert!(json["error"].get("twilio").is_none());
    }
}

#[tokio::test]
async fn a_stream_that_breaks_leaves_no_cache_entry() {
    for mode in [Mode::BreakAfter(50_000), Mode::ShortBy(10)] {
        let (upstream, bytes) = upstream_with_one();
        upstream.set_mode(mode.clone());
        let dir = tempfile::tempdir().unwrap();
        let cache = cache_in(dir.path(), 10 << 20);
        let proxy = Proxy::new(&upstream, Some(&cache));
        let answer = proxy.get(&sid(1), &[]).await;
        // Downloaded before answering: the failure is a proper 502.
        assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{mode:?}");
        assert_eq!(answer.json()["error"]["code"], "twilio_error");
        assert_eq!(cache.stats().entries, 0);
        assert_eq!(cached_files(dir.path()).0, Vec::<String>::new(), "{mode:?}");

        upstream.set_mode(Mode::Normal);
        let answer = proxy.get(&sid(1), &[]).await;
        assert!(answer.bytes() == bytes);
        assert_eq!(upstream.fetches(), 2);
        assert_eq!(cache.stats().entries, 1);
    }
}

#[tokio::test]
async fn without_a_cache_a_stream_that_breaks_cuts_the_body_short() {
    let (upstream, _) = upstream_with_one();
    let proxy = Proxy::new(&upstream, None);
    // Before the first byte: a proper 502.
    upstream.set_mode(Mode::BreakAfter(0));
    let answer = proxy.get(&sid(1), &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert!(answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("connection reset by peer"));
    // Mid-way: the headers are gone, the body fails.
    upstream.set_mode(Mode::BreakAfter(50_000));
    let answer = proxy.get(&sid(1), &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.is_err(), "a truncated body must not look whole");
    // Fewer bytes than announced: the body fails too.
    upstream.set_mode(Mode::ShortBy(10));
    let answer = proxy.get(&sid(1), &[("range", "bytes=1000-")]).await;
    assert_eq!(answer.status, StatusCode::PARTIAL_CONTENT);
    assert!(answer.body.is_err());
    // A slice that ends before the break is whole.
    upstream.set_mode(Mode::BreakAfter(50_000));
    let answer = proxy.get(&sid(1), &[("range", "bytes=0-999")]).await;
    assert_eq!(answer.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(answer.bytes().len(), 1000);
}

#[tokio::test]
async fn concurrent_first_plays_download_once() {
    let (upstream, bytes) = upstream_with_one();
    upstream.set_mode(Mode::Slow(Duration::from_millis(1)));
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(dir.path(), 10 << 20);
    let proxy = Proxy::new(&upstream, Some(&cache));
    let ranges = ["bytes=0-99", "bytes=-100", "bytes=1000-", "bytes=5-5"];
    let recording = sid(1);
    let answers = futures::future::join_all(ranges.iter().map(|r| {
        let proxy = &proxy;
        let recording = &recording;
        async move { proxy.get(recording, &[("range", r)]).await }
    }))
    .await;
    assert_eq!(answers[0].bytes(), &bytes[..100]);
    assert_eq!(answers[1].bytes(), &bytes[LEN - 100..]);
    assert!(answers[2].bytes() == &bytes[1000..]);
    assert_eq!(answers[3].bytes(), &bytes[5..6]);
    assert_eq!(upstream.fetches(), 1);
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.hits), (1, 3));
    assert_eq!(
        cached_files(dir.path()).0,
        vec![format!("{}.mp3", sid(1)), format!("{}.mp3.meta", sid(1))]
    );
}

#[tokio::test]
async fn a_cancelled_download_leaves_no_entry() {
    let (upstream, _) = upstream_with_one();
    upstream.set_mode(Mode::Slow(Duration::from_millis(2)));
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_in(dir.path(), 10 << 20);
    let proxy = Proxy::new(&upstream, Some(&cache));
    let timed_out = tokio::time::timeout(Duration::from_millis(30), proxy.get(&sid(1), &[])).await;
    assert!(timed_out.is_err(), "the download should still be running");
    assert_eq!(cached_files(dir.path()).0, Vec::<String>::new());
    assert_eq!(cache.stats().entries, 0);
}

#[tokio::test]
async fn without_a_cache_bytes_flow_before_twilio_has_sent_everything() {
    let (upstream, bytes) = upstream_with_one();
    // Twilio sends 10 000 bytes and then stalls: a proxy that buffered the
    // whole file would never answer.
    upstream.set_mode(Mode::StallAfter(10_000));
    let proxy = Proxy::new(&upstream, None);
    for (range, from) in [(None, 0), (Some("bytes=100-"), 100)] {
        let mut request = Request::get(format!("/audio/{}.mp3", sid(1)));
        if let Some(range) = range {
            request = request.header("range", range);
        }
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            proxy.router().oneshot(request.body(Body::empty()).unwrap()),
        )
        .await
        .expect("headers before the end of the file")
        .unwrap();
        assert_eq!(
            response.headers()["content-length"],
            (LEN - from).to_string().as_str()
        );
        let mut body = response.into_body().into_data_stream();
        let mut got = Vec::new();
        while got.len() < 10_000 - from {
            let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
                .await
                .expect("the bytes Twilio sent are passed on at once")
                .unwrap()
                .unwrap();
            got.extend_from_slice(&chunk);
        }
        assert!(got == bytes[from..10_000]);
    }
}
