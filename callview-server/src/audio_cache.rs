//! [`AudioCache`]: a size-bounded directory of recordings' audio already
//! fetched from Twilio, so that a recording played twice (or seeked in, which
//! the browser does with many Range requests) is downloaded once.
//!
//! ## Layout
//!
//! One process owns a cache directory. Each entry is two files:
//!
//! * `{sid}.{ext}` (`RE….mp3`, `RE….wav`): Twilio's bytes, exactly;
//! * `{sid}.{ext}.meta`: two lines, Twilio's `Content-Type` and the length in
//!   bytes (checked against the data file when the cache is opened, so a file
//!   cut short by a crash is dropped rather than served).
//!
//! A download goes to a hidden temporary file (`.{sid}.{ext}.{n}.part`) in the
//! same directory, streamed to disk chunk by chunk (constant memory), and is
//! renamed into place only once complete: a failed, partial or cancelled
//! download leaves no entry (the temporary file is removed when the download
//! fails or its future is dropped, and any left by a crash are removed by
//! [`AudioCache::open`]). Concurrent requests for the same uncached recording
//! wait on a per-recording lock: the first downloads, the others are served
//! the result.
//!
//! ## Bound and eviction
//!
//! The entries' data files total at most `max_bytes` (the small `.meta` files
//! and downloads in progress are not counted). Adding an entry evicts the
//! least recently used ones (use tracked in memory; a hit also sets the data
//! file's modification time, so the order survives a restart). A recording
//! larger than the whole bound is served but not kept.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use callview_core::recording::RecordingSid;
use callview_core::twilio::{AudioFormat, RecordingAudio, TwilioClient, TwilioError};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

/// A recording's audio in one encoding: what the cache is keyed by.
type Key = (RecordingSid, AudioFormat);

/// Suffix of an entry's metadata file.
const META_SUFFIX: &str = ".meta";
/// Suffix of a download in progress.
const PART_SUFFIX: &str = ".part";

/// The cache's counters, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Requests served from a cached file, without contacting Twilio.
    pub hits: u64,
    /// Requests that had to download the audio from Twilio.
    pub misses: u64,
    /// Entries kept now.
    pub entries: usize,
    /// Bytes of audio kept now (at most the bound).
    pub bytes: u64,
    /// Entries evicted to stay within the bound, since the cache was opened.
    pub evictions: u64,
}

#[derive(Debug)]
struct Entry {
    len: u64,
    content_type: String,
    /// Position in [`Index::lru`].
    tick: u64,
}

/// What is cached, and in which order it was last used.
#[derive(Debug, Default)]
struct Index {
    entries: HashMap<Key, Entry>,
    /// Last use → key; the first is the least recently used.
    lru: BTreeMap<u64, Key>,
    total: u64,
    clock: u64,
}

impl Index {
    fn next_tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn touch(&mut self, key: &Key) -> Option<(u64, String)> {
        let tick = self.next_tick();
        let entry = self.entries.get_mut(key)?;
        self.lru.remove(&entry.tick);
        entry.tick = tick;
        self.lru.insert(tick, key.clone());
        Some((entry.len, entry.content_type.clone()))
    }

    fn remove(&mut self, key: &Key) -> bool {
        match self.entries.remove(key) {
            Some(entry) => {
                self.lru.remove(&entry.tick);
                self.total -= entry.len;
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, key: Key, len: u64, content_type: String) {
        self.remove(&key);
        let tick = self.next_tick();
        self.lru.insert(tick, key.clone());
        self.total += len;
        self.entries.insert(
            key,
            Entry {
                len,
                content_type,
                tick,
            },
        );
    }

    /// Removes least recently used entries until `extra` more bytes fit
    /// within `max_bytes`; returns the keys removed.
    fn evict_for(&mut self, extra: u64, max_bytes: u64) -> Vec<Key> {
        let mut evicted = Vec::new();
        while self.total.saturating_add(extra) > max_bytes {
            let Some((_, key)) = self.lru.pop_first() else {
                break;
            };
            if let Some(entry) = self.entries.remove(&key) {
                self.total -= entry.len;
            }
            evicted.push(key);
        }
        evicted
    }
}

/// A local, size-bounded cache of recordings' audio (see the
/// [module documentation](self) for the layout and the guarantees).
///
/// Share one per process (`Arc<AudioCache>`) and pass it to
/// [`serve_recording_audio`](crate::audio::serve_recording_audio).
///
/// ```no_run
/// # fn demo() -> std::io::Result<()> {
/// use callview_server::audio_cache::AudioCache;
/// let cache = AudioCache::open("/var/cache/callview/audio".into(), 2 << 30)?;
/// assert_eq!(cache.stats().hits, 0);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AudioCache {
    dir: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
    /// One lock per recording being downloaded.
    inflight: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    temp_counter: AtomicU64,
}

/// A recording's audio in a local file, ready to serve.
#[derive(Debug)]
pub(crate) struct CachedAudio {
    /// Open for reading, at any position.
    pub(crate) file: tokio::fs::File,
    /// The file's length.
    pub(crate) len: u64,
    /// Twilio's `Content-Type`.
    pub(crate) content_type: String,
    /// Set when the file is a download too large to keep: it is deleted
    /// when this is dropped (move it into the response body).
    pub(crate) temporary: Option<TempFile>,
}

/// What [`AudioCache::get_or_fetch`] found.
pub(crate) enum Fetched {
    /// A local file (cached, or just downloaded).
    File(CachedAudio),
    /// Twilio announced a length larger than the whole cache: the response,
    /// not yet read, to pass on without caching.
    TooLarge(RecordingAudio),
}

/// Why [`AudioCache::get_or_fetch`] failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// Twilio refused, or its stream broke.
    #[error(transparent)]
    Twilio(TwilioError),
    /// The cache directory failed (full disk, permissions).
    #[error("audio cache: {0}")]
    Io(#[from] io::Error),
}

impl AudioCache {
    /// Opens (creating it if needed) the cache in `dir`, keeping at most
    /// `max_bytes` of audio.
    ///
    /// Existing entries are kept, least recently used first by their files'
    /// modification times, and evicted down to `max_bytes`; leftover
    /// temporary files and entries whose data does not match their metadata
    /// are removed. Files whose names are not the cache's are left alone.
    pub fn open(dir: PathBuf, max_bytes: u64) -> io::Result<AudioCache> {
        std::fs::create_dir_all(&dir)?;
        let mut found: Vec<(SystemTime, Key, u64, String)> = Vec::new();
        let mut metas: Vec<(Key, PathBuf)> = Vec::new();
        for item in std::fs::read_dir(&dir)? {
            let item = item?;
            let path = item.path();
            let Some(name) = item.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') && name.ends_with(PART_SUFFIX) {
                remove_quietly(&path);
                continue;
            }
            if let Some(data_name) = name.strip_suffix(META_SUFFIX) {
                if let Some(key) = parse_data_name(data_name) {
                    metas.push((key, path));
                }
                continue;
            }
            let Some(key) = parse_data_name(&name) else {
                continue;
            };
            let meta_path = meta_path(&dir, &key);
            // Deleted meanwhile, or unreadable: not an entry.
            let Ok(metadata) = item.metadata() else {
                continue;
            };
            match read_meta(&meta_path) {
                Some((content_type, len)) if metadata.is_file() && metadata.len() == len => {
                    let used = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    found.push((used, key, len, content_type));
                }
                _ => {
                    tracing::warn!(file = %path.display(), "audio cache: dropping an entry whose metadata is missing or does not match");
                    remove_quietly(&path);
                    remove_quietly(&meta_path);
                }
            }
        }
        found.sort_by_key(|a| a.0);
        let mut index = Index::default();
        for (_, key, len, content_type) in found {
            index.insert(key, len, content_type);
        }
        // Metadata files without their data (a crash between the two renames).
        for (key, path) in metas {
            if !index.entries.contains_key(&key) {
                remove_quietly(&path);
            }
        }
        let evicted = index.evict_for(0, max_bytes);
        for key in &evicted {
            remove_quietly(&data_path(&dir, key));
            remove_quietly(&meta_path(&dir, key));
        }
        Ok(AudioCache {
            dir,
            max_bytes,
            index: Mutex::new(index),
            inflight: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(evicted.len() as u64),
            temp_counter: AtomicU64::new(0),
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bound on the audio kept, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The counters and the current size.
    pub fn stats(&self) -> CacheStats {
        let index = self.lock_index();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: index.entries.len(),
            bytes: index.total,
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }

    /// Whether the audio of `sid` in `format` is cached.
    pub fn contains(&self, sid: &RecordingSid, format: AudioFormat) -> bool {
        self.lock_index()
            .entries
            .contains_key(&(sid.clone(), format))
    }

    /// Forgets a recording (both formats) and deletes its files, for example
    /// once it is known to be deleted at Twilio. Returns whether anything
    /// was cached.
    pub async fn remove_recording(&self, sid: &RecordingSid) -> bool {
        let mut removed = false;
        for format in [AudioFormat::Mp3, AudioFormat::Wav] {
            let key = (sid.clone(), format);
            if self.lock_index().remove(&key) {
                removed = true;
                self.delete_files(&key).await;
            }
        }
        removed
    }

    fn lock_index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_inflight(&self) -> MutexGuard<'_, HashMap<Key, Arc<tokio::sync::Mutex<()>>>> {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn delete_files(&self, key: &Key) {
        for path in [data_path(&self.dir, key), meta_path(&self.dir, key)] {
            if let Err(e) = tokio::fs::remove_file(&path).await {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(file = %path.display(), error = %e, "audio cache: could not delete");
                }
            }
        }
    }

    /// The cached file of `key`, marked as just used, or `None`.
    async fn lookup(&self, key: &Key) -> io::Result<Option<CachedAudio>> {
        let Some((len, content_type)) = self.lock_index().touch(key) else {
            return Ok(None);
        };
        let path = data_path(&self.dir, key);
        let opened = tokio::task::spawn_blocking(move || -> io::Result<(std::fs::File, u64)> {
            let file = std::fs::File::open(&path)?;
            // Best effort: keeps the LRU order across restarts.
            let _ = file.set_modified(SystemTime::now());
            let on_disk = file.metadata()?.len();
            Ok((file, on_disk))
        })
        .await
        .map_err(io::Error::other)?;
        match opened {
            Ok((file, on_disk)) if on_disk == len => Ok(Some(CachedAudio {
                file: tokio::fs::File::from_std(file),
                len,
                content_type,
                temporary: None,
            })),
            // Evicted (or damaged) since the index was read: a miss.
            Ok(_) => {
                self.lock_index().remove(key);
                Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.lock_index().remove(key);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The audio of `sid` in `format`: from the cache when it is there
    /// (counted as a hit), otherwise downloaded from Twilio into the cache
    /// first (a miss). At most one download per recording runs at a time.
    pub(crate) async fn get_or_fetch(
        &self,
        client: &dyn TwilioClient,
        sid: &RecordingSid,
        format: AudioFormat,
    ) -> Result<Fetched, FetchError> {
        let key: Key = (sid.clone(), format);
        if let Some(hit) = self.lookup(&key).await? {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Fetched::File(hit));
        }
        let _download_lock = self.download_lock(&key).await;
        // Another request may have downloaded it while this one waited.
        if let Some(hit) = self.lookup(&key).await? {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Fetched::File(hit));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.download(client, key).await
    }

    /// Waits for this recording's download lock.
    async fn download_lock(&self, key: &Key) -> DownloadLock<'_> {
        let lock = self.lock_inflight().entry(key.clone()).or_default().clone();
        let guard = lock.clone().lock_owned().await;
        DownloadLock {
            cache: self,
            key: key.clone(),
            lock,
            guard: Some(guard),
        }
    }

    async fn download(&self, client: &dyn TwilioClient, key: Key) -> Result<Fetched, FetchError> {
        let (sid, format) = &key;
        let audio = client
            .recording_audio(sid, *format)
            .await
            .map_err(FetchError::Twilio)?;
        if audio.content_length.is_some_and(|n| n > self.max_bytes) {
            return Ok(Fetched::TooLarge(audio));
        }
        let content_type = audio
            .content_type
            .clone()
            .filter(|t| valid_content_type(t))
            .unwrap_or_else(|| format.content_type().to_owned());

        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let temp = TempFile(self.dir.join(format!(
            ".{}.{}.{}-{n}{PART_SUFFIX}",
            sid,
            format.extension(),
            std::process::id()
        )));
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temp.0)
            .await?;
        // Twilio's chunks are small (a few KiB): written in blocks of 64 KiB.
        let mut writer = tokio::io::BufWriter::with_capacity(64 * 1024, file);
        let mut body = audio.body;
        let mut written: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(FetchError::Twilio)?;
            writer.write_all(&chunk).await?;
            written += chunk.len() as u64;
        }
        drop(body);
        writer.flush().await?;
        let mut file = writer.into_inner();
        if let Some(expected) = audio.content_length {
            if written != expected {
                return Err(FetchError::Twilio(TwilioError::Transport(format!(
                    "the audio stream ended after {written} of {expected} bytes"
                ))));
            }
        }
        use tokio::io::AsyncSeekExt;
        file.seek(io::SeekFrom::Start(0)).await?;

        if written > self.max_bytes {
            // Served from the temporary file, deleted once the response is done.
            return Ok(Fetched::File(CachedAudio {
                file,
                len: written,
                content_type,
                temporary: Some(temp),
            }));
        }

        // Metadata first, then the data: a data file never lacks its metadata.
        let meta_temp = TempFile(temp.0.with_extension("meta.part"));
        tokio::fs::write(&meta_temp.0, format!("{content_type}\n{written}\n")).await?;
        tokio::fs::rename(&meta_temp.0, meta_path(&self.dir, &key)).await?;
        meta_temp.keep();
        tokio::fs::rename(&temp.0, data_path(&self.dir, &key)).await?;
        temp.keep();

        let evicted = {
            let mut index = self.lock_index();
            let evicted = index.evict_for(written, self.max_bytes);
            index.insert(key.clone(), written, content_type.clone());
            evicted
        };
        self.evictions
            .fetch_add(evicted.len() as u64, Ordering::Relaxed);
        for old in &evicted {
            self.delete_files(old).await;
        }
        Ok(Fetched::File(CachedAudio {
            file,
            len: written,
            content_type,
            temporary: None,
        }))
    }
}

/// Holds one recording's download lock; forgets the lock when the last
/// holder is done (also when the request is cancelled).
struct DownloadLock<'a> {
    cache: &'a AudioCache,
    key: Key,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for DownloadLock<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut inflight = self.cache.lock_inflight();
        // Only the map and this holder: nobody waits on it.
        if Arc::strong_count(&self.lock) == 2 {
            inflight.remove(&self.key);
        }
    }
}

/// A file deleted when this is dropped, unless [`TempFile::keep`] was called.
#[derive(Debug)]
pub(crate) struct TempFile(PathBuf);

impl TempFile {
    /// Does not delete the file (it was renamed away).
    fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        remove_quietly(&self.0);
    }
}

fn remove_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(file = %path.display(), error = %e, "audio cache: could not delete");
        }
    }
}

fn data_name(key: &Key) -> String {
    format!("{}.{}", key.0, key.1.extension())
}

fn data_path(dir: &Path, key: &Key) -> PathBuf {
    dir.join(data_name(key))
}

fn meta_path(dir: &Path, key: &Key) -> PathBuf {
    dir.join(format!("{}{META_SUFFIX}", data_name(key)))
}

/// `RE….mp3` → its key; `None` for any other name.
fn parse_data_name(name: &str) -> Option<Key> {
    let (sid, ext) = name.split_once('.')?;
    Some((RecordingSid::new(sid)?, AudioFormat::parse(ext)?))
}

/// Reads a metadata file: the content type and the length.
fn read_meta(path: &Path) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let content_type = lines.next()?.to_owned();
    let len = lines.next()?.parse().ok()?;
    valid_content_type(&content_type).then_some((content_type, len))
}

/// Whether `value` can be sent back as a `Content-Type` header.
fn valid_content_type(value: &str) -> bool {
    !value.is_empty() && axum::http::HeaderValue::from_str(value).is_ok() && !value.contains('\n')
}
