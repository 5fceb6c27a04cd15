//! The account's recordings, legacy transcriptions and Voice Intelligence
//! transcripts: planned from each call's timeline when the call appears,
//! indexed by creation date, and shown as Twilio would at the account's
//! present (processing, completed, arrived late, deleted).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callview_core::call::format_rfc2822;
use callview_core::recording::Recording;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::audio::AudioFile;
use crate::generator::{hex16, splitmix64, Dir, Planned, Sid16, Status};
use crate::query::{decode_hex16, encode_component, ts, TimeRange, DEFAULT_PAGE_SIZE};
use crate::speech::{self, Mix};
use callview_core::twilio::{AudioFormat, MAX_PAGE_SIZE};

/// XOR mask turning a call SID's bytes into its recordings' SIDs (the last
/// byte then also takes the recording's index).
const RECORDING_MASK: Sid16 = [
    0x5a, 0x1c, 0x93, 0x0e, 0x77, 0xd2, 0x41, 0xb8, 0x2f, 0x66, 0xc9, 0x03, 0xe4, 0x18, 0xad, 0x50,
];
/// Recording SID → its legacy transcription's SID (`TR`).
const TRANSCRIPTION_MASK: Sid16 = [
    0x13, 0x9d, 0x4a, 0xe7, 0x02, 0x6b, 0xc8, 0x31, 0x95, 0x0f, 0x7a, 0xd4, 0x28, 0xb6, 0x5e, 0x81,
];
/// Recording SID → its Voice Intelligence transcript's SID (`GT`).
const TRANSCRIPT_MASK: Sid16 = [
    0xc4, 0x27, 0x8e, 0x51, 0xfa, 0x39, 0x06, 0x6d, 0xb2, 0x90, 0x1e, 0x73, 0x4c, 0xe5, 0x0a, 0xd8,
];

/// Where the 2010 API's absolute URLs (`media_url`) point.
pub(crate) const API_HOST: &str = "https://api.twilio.com";
/// Where Voice Intelligence records' own URLs point.
pub(crate) const INTELLIGENCE_HOST: &str = "https://intelligence.twilio.com";

fn xor(a: &Sid16, b: &Sid16) -> Sid16 {
    let mut out = *a;
    for (o, m) in out.iter_mut().zip(b) {
        *o ^= m;
    }
    out
}

fn seed_of(bytes: &Sid16) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[..8]);
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[8..]);
    splitmix64(u64::from_le_bytes(a) ^ splitmix64(u64::from_le_bytes(b)))
}

/// The signature of a storage URL (the simulated S3 checks it).
pub(crate) fn storage_signature(seed: u64, file: &str, expires: i64) -> String {
    let a = splitmix64(seed ^ text_seed(&format!("{file}:{expires}")));
    let b = splitmix64(a ^ 0x5160);
    format!("{a:016x}{b:016x}")
}

pub(crate) fn text_seed(text: &str) -> u64 {
    text.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

/// A media SID: generated ones as their 16 bytes (the two-letter prefix is
/// known from the collection), anything else as its whole text.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum MSid {
    Hex(Sid16),
    Text(Box<str>),
}

impl MSid {
    fn parse(prefix: &str, text: &str) -> MSid {
        match text.strip_prefix(prefix).and_then(decode_hex16) {
            Some(bytes) => MSid::Hex(bytes),
            None => MSid::Text(text.into()),
        }
    }

    fn text(&self, prefix: &str) -> String {
        match self {
            MSid::Hex(bytes) => format!("{prefix}{}", hex16(bytes)),
            MSid::Text(text) => text.to_string(),
        }
    }

    const MIN: MSid = MSid::Hex([0; 16]);
}

/// The order of every media list: creation time (Unix seconds), then SID;
/// ascending here, served newest first.
pub(crate) type MKey = (i64, MSid);

/// A position in a media list: the page after `key`.
fn encode_cursor(key: &MKey) -> String {
    let sid = match &key.1 {
        MSid::Hex(bytes) => format!("h{}", hex16(bytes)),
        MSid::Text(text) => format!("t{text}"),
    };
    format!("PA{}", URL_SAFE_NO_PAD.encode(format!("{}|{sid}", key.0)))
}

fn decode_cursor(token: &str) -> Option<MKey> {
    let payload = URL_SAFE_NO_PAD.decode(token.strip_prefix("PA")?).ok()?;
    let payload = String::from_utf8(payload).ok()?;
    let (created, sid) = payload.split_once('|')?;
    let sid = match sid.split_at_checked(1)? {
        ("h", hex) => MSid::Hex(decode_hex16(hex)?),
        ("t", text) => MSid::Text(text.into()),
        _ => return None,
    };
    Some((created.parse().ok()?, sid))
}

/// What made a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    DialVerb,
    RecordVerb,
    OutboundApi,
    StartCallRecordingApi,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::DialVerb => "DialVerb",
            Self::RecordVerb => "RecordVerb",
            Self::OutboundApi => "OutboundAPI",
            Self::StartCallRecordingApi => "StartCallRecordingAPI",
        }
    }
}

/// A transcript's life: created, worked on, done (or failed).
#[derive(Clone, Copy, Debug)]
struct Phase {
    created: i64,
    started: i64,
    done: i64,
    failed: bool,
}

/// A transcript's life as stored: seconds after the recording completed
/// (created), after creation (started), after starting (done).
#[derive(Clone, Copy, Debug)]
struct Offsets {
    created: u32,
    started: u32,
    done: u32,
    failed: bool,
}

/// A generated recording, compact (about 80 bytes).
#[derive(Clone, Debug)]
pub(crate) struct GenRecording {
    call: Sid16,
    start: i64,
    created: i64,
    duration: u32,
    /// Seconds from creation until processing ends (status `completed`,
    /// duration and price known).
    processing: u32,
    /// Seconds from creation until it is deleted (`u32::MAX`: never).
    deleted: u32,
    channels: u8,
    source: Source,
    transcription: Option<Offsets>,
    transcript: Option<Offsets>,
}

impl GenRecording {
    fn completed(&self) -> i64 {
        self.created + i64::from(self.processing)
    }

    fn visible(&self, now: i64) -> bool {
        self.created <= now
            && (self.deleted == u32::MAX || now < self.created + i64::from(self.deleted))
    }

    fn phase(&self, offsets: Option<Offsets>) -> Option<Phase> {
        let o = offsets?;
        let created = self.completed() + i64::from(o.created);
        let started = created + i64::from(o.started);
        Some(Phase {
            created,
            started,
            done: started + i64::from(o.done),
            failed: o.failed,
        })
    }

    fn transcription(&self) -> Option<Phase> {
        self.phase(self.transcription)
    }

    fn transcript(&self) -> Option<Phase> {
        self.phase(self.transcript)
    }
}

#[derive(Clone, Debug)]
enum Entry {
    Gen(GenRecording),
    Custom(Box<Recording>),
}

/// Which list a query is for (each has its own filters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListKind {
    /// `Recordings.json`: `DateCreated>`, `DateCreated<`, `DateCreated`, `CallSid`.
    Recordings,
    /// `Transcriptions.json`: no filter.
    Transcriptions,
    /// `/v2/Transcripts`: `AfterDateCreated`, `BeforeDateCreated`,
    /// `SourceSid`, `ServiceSid`.
    Transcripts,
}

/// One request for a media list.
#[derive(Clone, Debug)]
pub(crate) struct MediaQuery {
    kind: ListKind,
    pub(crate) page_size: u32,
    pub(crate) page: u32,
    cursor: Option<MKey>,
    created: TimeRange,
    call_sid: Option<String>,
    source_sid: Option<String>,
    service_sid: Option<String>,
    params: Vec<(String, String)>,
}

impl MediaQuery {
    /// Parses a raw query string; unknown parameters are ignored, malformed
    /// known ones are an error message (a 400).
    pub(crate) fn parse(kind: ListKind, query: &str) -> Result<MediaQuery, String> {
        let mut q = MediaQuery {
            kind,
            page_size: DEFAULT_PAGE_SIZE,
            page: 0,
            cursor: None,
            created: TimeRange::default(),
            call_sid: None,
            source_sid: None,
            service_sid: None,
            params: Vec::new(),
        };
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            q.apply(&name, &value)?;
        }
        Ok(q)
    }

    fn apply(&mut self, name: &str, value: &str) -> Result<(), String> {
        let invalid = |what: &str| format!("Invalid {what}: {value:?}");
        let v = value.trim();
        use ListKind::{Recordings, Transcripts};
        match (self.kind, name) {
            (_, "PageSize") => {
                let size: u32 = v.parse().map_err(|_| invalid("PageSize"))?;
                if size == 0 {
                    return Err(invalid("PageSize"));
                }
                self.page_size = size.min(MAX_PAGE_SIZE);
                return Ok(());
            }
            (_, "Page") => {
                self.page = v.parse().map_err(|_| invalid("Page"))?;
                return Ok(());
            }
            (_, "PageToken") => {
                self.cursor = Some(decode_cursor(v).ok_or_else(|| invalid("PageToken"))?);
                return Ok(());
            }
            (Recordings, "DateCreated>") => self.created.after(v).ok_or_else(|| invalid(name))?,
            (Recordings, "DateCreated<") => self.created.before(v).ok_or_else(|| invalid(name))?,
            (Recordings, "DateCreated") => self.created.on(v).ok_or_else(|| invalid(name))?,
            (Recordings, "CallSid") => self.call_sid = Some(v.to_owned()),
            (Transcripts, "AfterDateCreated") => {
                let t = parse_instant(v).ok_or_else(|| invalid(name))?;
                self.created.raise(t);
            }
            (Transcripts, "BeforeDateCreated") => {
                let t = parse_instant(v).ok_or_else(|| invalid(name))?;
                self.created.lower(t + chrono::Duration::nanoseconds(1));
            }
            (Transcripts, "SourceSid") => self.source_sid = Some(v.to_owned()),
            (Transcripts, "ServiceSid") => self.service_sid = Some(v.to_owned()),
            _ => return Ok(()),
        }
        self.params.push((name.to_owned(), value.to_owned()));
        Ok(())
    }

    /// The position this page starts after, if any.
    pub(crate) fn cursor(&self) -> Option<&MKey> {
        self.cursor.as_ref()
    }

    /// The next page after `key` (as its `next_page_uri` would ask).
    pub(crate) fn after(mut self, key: MKey) -> MediaQuery {
        self.cursor = Some(key);
        self.page += 1;
        self
    }

    /// `path?PageSize=..&Page=..[&PageToken=..]` then the filters.
    pub(crate) fn uri(&self, path: &str, page: u32, cursor: Option<&MKey>) -> String {
        let mut uri = format!("{path}?PageSize={}&Page={page}", self.page_size);
        if let Some(cursor) = cursor {
            uri.push_str("&PageToken=");
            uri.push_str(&encode_cursor(cursor));
        }
        for (name, value) in &self.params {
            uri.push('&');
            encode_component(name, &mut uri);
            uri.push('=');
            encode_component(value, &mut uri);
        }
        uri
    }

    /// The key range of the date filter and the cursor.
    fn bounds(&self) -> (Bound<MKey>, Bound<MKey>) {
        let ceil = |t: DateTime<Utc>| t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
        let lo = match self.created.lo {
            Some(lo) => Bound::Included((ceil(lo), MSid::MIN)),
            None => Bound::Unbounded,
        };
        let hi = match self.created.hi {
            Some(hi) => Bound::Excluded((ceil(hi), MSid::MIN)),
            None => Bound::Unbounded,
        };
        let hi = match (&self.cursor, hi) {
            (Some(c), Bound::Excluded(h)) => Bound::Excluded(c.clone().min(h)),
            (Some(c), _) => Bound::Excluded(c.clone()),
            (None, hi) => hi,
        };
        (lo, hi)
    }

    /// Takes this page from `keys` (newest first, already past the cursor
    /// and within the bounds): the page's keys and the cursor of the next.
    fn paginate(&self, keys: impl Iterator<Item = MKey>) -> (Vec<MKey>, Option<MKey>) {
        let size = self.page_size.max(1) as usize;
        let skip = if self.cursor.is_none() {
            self.page as usize * size
        } else {
            0
        };
        let mut picked: Vec<MKey> = keys.skip(skip).take(size + 1).collect();
        let more = picked.len() > size;
        picked.truncate(size);
        let next = if more { picked.last().cloned() } else { None };
        (picked, next)
    }
}

fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        return Some(t.and_utc());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// One page of a media list as Twilio's JSON records, and the next page's
/// position.
#[derive(Debug, Default)]
pub(crate) struct MediaPage {
    pub(crate) items: Vec<Value>,
    pub(crate) next: Option<MKey>,
}

/// A recording's audio as served: the file, and whether Twilio would answer
/// with a redirect to its storage.
#[derive(Debug)]
pub(crate) struct Audio {
    pub(crate) file: AudioFile,
    pub(crate) redirect: bool,
}

/// Every recording and transcript of the account.
#[derive(Debug, Default)]
pub(crate) struct Media {
    enabled: bool,
    seed: u64,
    account_sid: String,
    service_sid: String,
    recordings: BTreeMap<MKey, Entry>,
    index: HashMap<MSid, i64>,
    custom_by_call: HashMap<String, Vec<MSid>>,
    transcriptions: BTreeSet<MKey>,
    transcripts: BTreeSet<MKey>,
}

fn iso(t: i64) -> String {
    ts(t).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn rfc(t: i64) -> String {
    format_rfc2822(&ts(t))
}

impl Media {
    pub(crate) fn new(enabled: bool, seed: u64, account_sid: &str) -> Media {
        Media {
            enabled,
            seed,
            account_sid: account_sid.to_owned(),
            service_sid: format!("GA{}", crate::generator::derived_hex(seed, 0x6741)),
            ..Media::default()
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    pub(crate) fn service_sid(&self) -> &str {
        &self.service_sid
    }

    // ----- planning --------------------------------------------------------

    /// Plans the recordings of a generated call that just appeared.
    pub(crate) fn add_planned(&mut self, p: &Planned) {
        if !self.enabled {
            return;
        }
        for (sid, recording) in plan(self.seed, p) {
            self.add_generated(sid, recording);
        }
    }

    fn add_generated(&mut self, sid: Sid16, r: GenRecording) {
        let msid = MSid::Hex(sid);
        if let Some(t) = r.transcription() {
            self.transcriptions
                .insert((t.created, MSid::Hex(xor(&sid, &TRANSCRIPTION_MASK))));
        }
        if let Some(t) = r.transcript() {
            self.transcripts
                .insert((t.created, MSid::Hex(xor(&sid, &TRANSCRIPT_MASK))));
        }
        self.index.insert(msid.clone(), r.created);
        self.recordings.insert((r.created, msid), Entry::Gen(r));
    }

    /// Forgets the generated recordings of `call` (before planning them
    /// again from a changed timeline).
    pub(crate) fn remove_call(&mut self, call: &Sid16) {
        for i in 0..2u8 {
            let mut sid = xor(call, &RECORDING_MASK);
            sid[15] ^= i;
            let msid = MSid::Hex(sid);
            if let Some(created) = self.index.remove(&msid) {
                if let Some(Entry::Gen(r)) = self.recordings.remove(&(created, msid)) {
                    if let Some(t) = r.transcription() {
                        self.transcriptions
                            .remove(&(t.created, MSid::Hex(xor(&sid, &TRANSCRIPTION_MASK))));
                    }
                    if let Some(t) = r.transcript() {
                        self.transcripts
                            .remove(&(t.created, MSid::Hex(xor(&sid, &TRANSCRIPT_MASK))));
                    }
                }
            }
        }
    }

    /// Adds or replaces a recording made by hand (always listed, whatever
    /// its dates).
    pub(crate) fn insert_custom(&mut self, recording: Recording, now: i64) {
        let msid = MSid::parse("RE", recording.sid.as_str());
        self.remove(&msid);
        let created = recording.date_created.map_or(now, |t| t.timestamp());
        if let Some(call) = &recording.call_sid {
            self.custom_by_call
                .entry(call.as_str().to_owned())
                .or_default()
                .push(msid.clone());
        }
        self.index.insert(msid.clone(), created);
        self.recordings
            .insert((created, msid), Entry::Custom(Box::new(recording)));
    }

    /// Deletes a recording now; `false` when there is none (visible).
    pub(crate) fn delete(&mut self, sid: &str, now: i64) -> bool {
        let msid = MSid::parse("RE", sid);
        let Some(&created) = self.index.get(&msid) else {
            return false;
        };
        match self.recordings.get_mut(&(created, msid.clone())) {
            Some(Entry::Gen(r)) if r.visible(now) => {
                r.deleted = u32::try_from(now - r.created).unwrap_or(0);
                true
            }
            Some(Entry::Custom(_)) => {
                self.remove(&msid);
                true
            }
            _ => false,
        }
    }

    fn remove(&mut self, msid: &MSid) {
        if let Some(created) = self.index.remove(msid) {
            if let Some(Entry::Custom(r)) = self.recordings.remove(&(created, msid.clone())) {
                if let Some(call) = &r.call_sid {
                    if let Some(list) = self.custom_by_call.get_mut(call.as_str()) {
                        list.retain(|s| s != msid);
                    }
                }
            }
        }
    }

    // ----- recordings ------------------------------------------------------

    fn entry(&self, sid: &str, now: i64) -> Option<(MKey, &Entry)> {
        let msid = MSid::parse("RE", sid);
        let created = *self.index.get(&msid)?;
        let key = (created, msid);
        let entry = self.recordings.get(&key)?;
        let visible = match entry {
            Entry::Gen(r) => r.visible(now),
            Entry::Custom(_) => true,
        };
        visible.then_some((key, entry))
    }

    fn visible_gen(&self, sid: &Sid16, now: i64) -> Option<&GenRecording> {
        let msid = MSid::Hex(*sid);
        let created = *self.index.get(&msid)?;
        match self.recordings.get(&(created, msid))? {
            Entry::Gen(r) if r.visible(now) => Some(r),
            _ => None,
        }
    }

    /// One recording's JSON, when it is there at `now`.
    pub(crate) fn recording(&self, sid: &str, now: i64) -> Option<Value> {
        let (key, entry) = self.entry(sid, now)?;
        Some(self.recording_json(&key, entry, now))
    }

    /// The keys of the recordings of one call, newest first.
    fn keys_of_call(&self, call: &str, now: i64) -> Vec<MKey> {
        let mut keys = Vec::new();
        if let Some(bytes) = call.strip_prefix("CA").and_then(decode_hex16) {
            for i in 0..2u8 {
                let mut sid = xor(&bytes, &RECORDING_MASK);
                sid[15] ^= i;
                if let Some(r) = self.visible_gen(&sid, now) {
                    keys.push((r.created, MSid::Hex(sid)));
                }
            }
        }
        if let Some(list) = self.custom_by_call.get(call) {
            for msid in list {
                if let Some(&created) = self.index.get(msid) {
                    keys.push((created, msid.clone()));
                }
            }
        }
        keys.sort_unstable();
        keys.reverse();
        keys
    }

    /// One page of `Recordings.json` for `q` at `now` (`call` also restricts
    /// it to one call: the `Calls/{CallSid}/Recordings.json` list).
    pub(crate) fn list_recordings(
        &self,
        q: &MediaQuery,
        call: Option<&str>,
        now: i64,
    ) -> MediaPage {
        let call = call.or(q.call_sid.as_deref());
        let (lo, hi) = q.bounds();
        let (keys, next) = match call {
            Some(call) => {
                let keys = self.keys_of_call(call, now);
                let within = keys
                    .into_iter()
                    .filter(|k| in_bounds(k, &lo, &hi))
                    .filter(|k| q.created.contains(Some(ts(k.0))));
                q.paginate(within)
            }
            None => {
                if range_is_empty(&lo, &hi) {
                    return MediaPage::default();
                }
                let keys = self
                    .recordings
                    .range((lo, hi))
                    .rev()
                    .filter(|(_, e)| match e {
                        Entry::Gen(r) => r.visible(now),
                        Entry::Custom(_) => true,
                    })
                    .map(|(k, _)| k.clone());
                q.paginate(keys)
            }
        };
        let items = keys
            .iter()
            .filter_map(|k| Some(self.recording_json(k, self.recordings.get(k)?, now)))
            .collect();
        MediaPage { items, next }
    }

    /// Every recording visible at `now`, newest first, as JSON.
    pub(crate) fn all_recordings(&self, now: i64) -> Vec<Value> {
        self.recordings
            .iter()
            .rev()
            .filter_map(|(k, e)| match e {
                Entry::Gen(r) if !r.visible(now) => None,
                _ => Some(self.recording_json(k, e, now)),
            })
            .collect()
    }

    fn recording_json(&self, key: &MKey, entry: &Entry, now: i64) -> Value {
        match entry {
            Entry::Custom(r) => custom_json(r, &self.account_sid),
            Entry::Gen(r) => {
                let sid = key.1.text("RE");
                let ac = &self.account_sid;
                let base = format!("/2010-04-01/Accounts/{ac}/Recordings/{sid}");
                let done = now >= r.completed();
                let minutes = i64::from(r.duration.div_ceil(60).max(1));
                json!({
                    "account_sid": ac,
                    "api_version": "2010-04-01",
                    "call_sid": format!("CA{}", hex16(&r.call)),
                    "channels": r.channels,
                    "conference_sid": null,
                    "date_created": rfc(r.created),
                    "date_updated": rfc(if done { r.completed() } else { r.created }),
                    "duration": if done { r.duration.to_string() } else { "-1".to_owned() },
                    "encryption_details": null,
                    "error_code": null,
                    "media_url": format!("{API_HOST}{base}"),
                    "price": done.then(|| Decimal::new(-250 * minutes, 5).to_string()),
                    "price_unit": "USD",
                    "sid": sid,
                    "source": r.source.as_str(),
                    "start_time": rfc(r.start),
                    "status": if done { "completed" } else { "processing" },
                    "track": "both",
                    "uri": format!("{base}.json"),
                    "subresource_uris": {
                        "add_on_results": format!("{base}/AddOnResults.json"),
                        "transcriptions": format!("{base}/Transcriptions.json"),
                    },
                })
            }
        }
    }

    /// A recording's audio, when it is there and ready at `now`.
    pub(crate) fn audio(&self, sid: &str, format: AudioFormat, now: i64) -> Option<Audio> {
        let (key, entry) = self.entry(sid, now)?;
        let (seconds, seed) = match entry {
            Entry::Gen(r) if now < r.completed() => return None,
            Entry::Gen(r) => match &key.1 {
                MSid::Hex(bytes) => (r.duration, seed_of(bytes)),
                MSid::Text(text) => (r.duration, text_seed(text)),
            },
            Entry::Custom(r) => (r.duration.unwrap_or(10), text_seed(r.sid.as_str())),
        };
        let file = match format {
            AudioFormat::Wav => AudioFile::wav(seed, seconds),
            AudioFormat::Mp3 => AudioFile::mp3(seed, seconds),
        };
        Some(Audio {
            file,
            redirect: redirects(sid),
        })
    }

    // ----- legacy transcriptions ------------------------------------------

    fn transcription_of(&self, tr: &Sid16, now: i64) -> Option<(Sid16, &GenRecording, Phase)> {
        let re = xor(tr, &TRANSCRIPTION_MASK);
        let r = self.visible_gen(&re, now)?;
        let phase = r.transcription().filter(|p| p.created <= now)?;
        Some((re, r, phase))
    }

    fn transcription_json(&self, tr: &Sid16, now: i64) -> Option<Value> {
        let (re, r, phase) = self.transcription_of(tr, now)?;
        let ac = &self.account_sid;
        let sid = format!("TR{}", hex16(tr));
        let (status, updated) = if now < phase.done {
            ("in-progress", phase.created)
        } else if phase.failed {
            ("failed", phase.done)
        } else {
            ("completed", phase.done)
        };
        let text = (status == "completed").then(|| speech::voicemail(seed_of(tr)));
        let minutes = i64::from(r.duration.div_ceil(60).max(1));
        Some(json!({
            "account_sid": ac,
            "api_version": "2010-04-01",
            "date_created": rfc(phase.created),
            "date_updated": rfc(updated),
            "duration": r.duration.to_string(),
            "price": (status == "completed").then(|| Decimal::new(-5_000 * minutes, 5).to_string()),
            "price_unit": "USD",
            "recording_sid": format!("RE{}", hex16(&re)),
            "sid": sid,
            "status": status,
            "transcription_text": text,
            "type": "fast",
            "uri": format!("/2010-04-01/Accounts/{ac}/Transcriptions/{sid}.json"),
        }))
    }

    /// One page of `Transcriptions.json` (`recording`: only that one's).
    pub(crate) fn list_transcriptions(
        &self,
        q: &MediaQuery,
        recording: Option<&str>,
        now: i64,
    ) -> MediaPage {
        let (lo, hi) = q.bounds();
        let (keys, next) = match recording {
            Some(re) => {
                let key = re
                    .strip_prefix("RE")
                    .and_then(decode_hex16)
                    .map(|re| xor(&re, &TRANSCRIPTION_MASK))
                    .and_then(|tr| {
                        let (_, _, phase) = self.transcription_of(&tr, now)?;
                        Some((phase.created, MSid::Hex(tr)))
                    });
                q.paginate(key.into_iter().filter(|k| in_bounds(k, &lo, &hi)))
            }
            None => {
                if range_is_empty(&lo, &hi) {
                    return MediaPage::default();
                }
                let keys = self
                    .transcriptions
                    .range((lo, hi))
                    .rev()
                    .filter(|(_, sid)| match sid {
                        MSid::Hex(tr) => self.transcription_of(tr, now).is_some(),
                        MSid::Text(_) => false,
                    })
                    .cloned();
                q.paginate(keys)
            }
        };
        MediaPage {
            items: keys
                .iter()
                .filter_map(|(_, sid)| match sid {
                    MSid::Hex(tr) => self.transcription_json(tr, now),
                    MSid::Text(_) => None,
                })
                .collect(),
            next,
        }
    }

    /// One legacy transcription's JSON.
    pub(crate) fn transcription(&self, sid: &str, now: i64) -> Option<Value> {
        let tr = sid.strip_prefix("TR").and_then(decode_hex16)?;
        self.transcription_json(&tr, now)
    }

    // ----- Voice Intelligence ---------------------------------------------

    fn transcript_of(&self, gt: &Sid16, now: i64) -> Option<(Sid16, &GenRecording, Phase)> {
        let re = xor(gt, &TRANSCRIPT_MASK);
        let r = self.visible_gen(&re, now)?;
        let phase = r.transcript().filter(|p| p.created <= now)?;
        Some((re, r, phase))
    }

    fn transcript_json(&self, gt: &Sid16, now: i64) -> Option<Value> {
        let (re, r, phase) = self.transcript_of(gt, now)?;
        let sid = format!("GT{}", hex16(gt));
        let (status, updated) = transcript_status(&phase, now);
        let url = format!("{INTELLIGENCE_HOST}/v2/Transcripts/{sid}");
        let participant = |channel: u32, role: &str| {
            json!({
                "channel_participant": channel,
                "role": role,
                "media_participant_id": null,
                "user_id": null,
                "full_name": null,
                "image_url": null,
                "email": null,
                "crm_id": null,
            })
        };
        Some(json!({
            "account_sid": self.account_sid,
            "service_sid": self.service_sid,
            "sid": sid,
            "date_created": iso(phase.created),
            "date_updated": iso(updated),
            "status": status,
            "channel": {
                "media_properties": {
                    "source_sid": format!("RE{}", hex16(&re)),
                    "media_url": null,
                },
                "participants": [participant(1, "Customer"), participant(2, "Agent")],
            },
            "data_logging": false,
            "language_code": "en-US",
            "customer_key": null,
            "media_start_time": iso(r.start),
            "duration": r.duration,
            "url": url,
            "redaction": true,
            "links": {
                "sentences": format!("{url}/Sentences"),
                "media": format!("{url}/Media"),
                "operator_results": format!("{url}/OperatorResults"),
            },
        }))
    }

    /// The transcripts' keys matching `source` (a recording or call SID).
    fn transcript_keys_of(&self, source: &str, now: i64) -> Vec<MKey> {
        let recordings: Vec<Sid16> = if let Some(re) = source.strip_prefix("RE") {
            decode_hex16(re).into_iter().collect()
        } else if source.starts_with("CA") {
            self.keys_of_call(source, now)
                .into_iter()
                .filter_map(|(_, sid)| match sid {
                    MSid::Hex(bytes) => Some(bytes),
                    MSid::Text(_) => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut keys: Vec<MKey> = recordings
            .iter()
            .map(|re| xor(re, &TRANSCRIPT_MASK))
            .filter_map(|gt| {
                let (_, _, phase) = self.transcript_of(&gt, now)?;
                Some((phase.created, MSid::Hex(gt)))
            })
            .collect();
        keys.sort_unstable();
        keys.reverse();
        keys
    }

    /// One page of `/v2/Transcripts`.
    pub(crate) fn list_transcripts(&self, q: &MediaQuery, now: i64) -> MediaPage {
        if q.service_sid
            .as_deref()
            .is_some_and(|s| s != self.service_sid)
        {
            return MediaPage::default();
        }
        let (lo, hi) = q.bounds();
        let (keys, next) = match q.source_sid.as_deref() {
            Some(source) => {
                let keys = self.transcript_keys_of(source, now);
                q.paginate(
                    keys.into_iter()
                        .filter(|k| in_bounds(k, &lo, &hi))
                        .filter(|k| q.created.contains(Some(ts(k.0)))),
                )
            }
            None => {
                if range_is_empty(&lo, &hi) {
                    return MediaPage::default();
                }
                let keys = self
                    .transcripts
                    .range((lo, hi))
                    .rev()
                    .filter(|(_, sid)| match sid {
                        MSid::Hex(gt) => self.transcript_of(gt, now).is_some(),
                        MSid::Text(_) => false,
                    })
                    .cloned();
                q.paginate(keys)
            }
        };
        MediaPage {
            items: keys
                .iter()
                .filter_map(|(_, sid)| match sid {
                    MSid::Hex(gt) => self.transcript_json(gt, now),
                    MSid::Text(_) => None,
                })
                .collect(),
            next,
        }
    }

    /// One transcript's JSON.
    pub(crate) fn transcript(&self, sid: &str, now: i64) -> Option<Value> {
        let gt = sid.strip_prefix("GT").and_then(decode_hex16)?;
        self.transcript_json(&gt, now)
    }

    /// Every sentence of a transcript (none until it is completed), as
    /// JSON; `None` for an unknown transcript.
    pub(crate) fn sentences(&self, sid: &str, now: i64) -> Option<Vec<Value>> {
        let gt = sid.strip_prefix("GT").and_then(decode_hex16)?;
        let (_, r, phase) = self.transcript_of(&gt, now)?;
        if transcript_status(&phase, now).0 != "completed" {
            return Some(Vec::new());
        }
        let seed = seed_of(&gt);
        let duration = f64::from(r.duration.max(2));
        let count = ((duration / 6.0) as usize).clamp(2, 400);
        let slot = duration / count as f64;
        let mut mix = Mix::new(seed, 0x5E17);
        let lines = speech::dialogue(seed, count);
        Some(
            lines
                .into_iter()
                .enumerate()
                .map(|(i, (channel, text))| {
                    let start = i as f64 * slot + slot * 0.05;
                    let end = start + slot * (0.7 + mix.range(0, 20) as f64 / 100.0);
                    let mut sid = gt;
                    sid[12..16].copy_from_slice(&(i as u32).to_be_bytes());
                    let sid = xor(&sid, &RECORDING_MASK);
                    json!({
                        "media_channel": channel,
                        "sentence_index": i,
                        "start_time": round2(start),
                        "end_time": round2(end.min(duration)),
                        "transcript": text,
                        "sid": format!("GX{}", hex16(&sid)),
                        "confidence": round2(0.8 + mix.range(0, 19) as f64 / 100.0),
                    })
                })
                .collect(),
        )
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn transcript_status(phase: &Phase, now: i64) -> (&'static str, i64) {
    if now < phase.started {
        ("queued", phase.created)
    } else if now < phase.done {
        ("in-progress", phase.started)
    } else if phase.failed {
        ("failed", phase.done)
    } else {
        ("completed", phase.done)
    }
}

/// Whether Twilio answers a recording's audio with a redirect to its
/// storage (about a third of them).
pub(crate) fn redirects(sid: &str) -> bool {
    splitmix64(text_seed(sid)) % 3 == 0
}

fn in_bounds(key: &MKey, lo: &Bound<MKey>, hi: &Bound<MKey>) -> bool {
    (match lo {
        Bound::Included(l) => key >= l,
        Bound::Excluded(l) => key > l,
        Bound::Unbounded => true,
    }) && (match hi {
        Bound::Included(h) => key <= h,
        Bound::Excluded(h) => key < h,
        Bound::Unbounded => true,
    })
}

/// Whether `BTreeMap::range((lo, hi))` would be empty (or panic).
fn range_is_empty(lo: &Bound<MKey>, hi: &Bound<MKey>) -> bool {
    use Bound::{Excluded, Included, Unbounded};
    match (lo, hi) {
        (Unbounded, _) | (_, Unbounded) => false,
        (Included(l), Included(h)) => l > h,
        (Included(l) | Excluded(l), Included(h) | Excluded(h)) => l >= h,
    }
}

/// A recording inserted by hand, in Twilio's form: its record as received
/// when it has one, else built from its fields.
fn custom_json(r: &Recording, account_sid: &str) -> Value {
    if r.raw.is_object() {
        return r.raw.clone();
    }
    let sid = r.sid.as_str();
    let base = format!("/2010-04-01/Accounts/{account_sid}/Recordings/{sid}");
    let mut o = Map::new();
    let mut put = |k: &str, v: Value| {
        o.insert(k.into(), v);
    };
    put(
        "account_sid",
        json!(r.account_sid.as_deref().unwrap_or(account_sid)),
    );
    put("api_version", json!("2010-04-01"));
    put("call_sid", json!(r.call_sid.as_ref().map(|c| c.as_str())));
    put("channels", json!(r.channels.unwrap_or(1)));
    put("conference_sid", json!(r.conference_sid));
    put(
        "date_created",
        json!(r.date_created.as_ref().map(format_rfc2822)),
    );
    put(
        "date_updated",
        json!(r.date_updated.as_ref().map(format_rfc2822)),
    );
    put(
        "duration",
        json!(r.duration.map_or("-1".to_owned(), |d| d.to_string())),
    );
    put("encryption_details", Value::Null);
    put("error_code", json!(r.error_code.map(|c| c.to_string())));
    put("media_url", json!(format!("{API_HOST}{base}")));
    put("price", json!(r.price.map(|p| p.to_string())));
    put("price_unit", json!(r.price_unit));
    put("sid", json!(sid));
    put("source", json!(r.source.as_ref().map(|s| s.as_str())));
    put(
        "start_time",
        json!(r.start_time.as_ref().map(format_rfc2822)),
    );
    put("status", json!(r.status.as_str()));
    put("track", json!("both"));
    put("uri", json!(format!("{base}.json")));
    put(
        "subresource_uris",
        json!({
            "add_on_results": format!("{base}/AddOnResults.json"),
            "transcriptions": format!("{base}/Transcriptions.json"),
        }),
    );
    Value::Object(o)
}

/// The recordings of a generated call, from its whole timeline: about half
/// of the answered calls that talked for a few seconds are recorded, some
/// in two parts.
fn plan(seed: u64, p: &Planned) -> Vec<(Sid16, GenRecording)> {
    let tl = &p.tl;
    if tl.final_status != Status::Completed {
        return Vec::new();
    }
    let answer = tl.answer.or(tl.start).unwrap_or(tl.created).min(tl.end);
    let talk = tl.end - answer;
    if talk < 5 {
        return Vec::new();
    }
    let mut mix = Mix::new(seed ^ 0x0EC0_4D1E, seed_of(&p.sid));
    let forced = p.rec.recordings;
    if forced == 0 && !mix.chance(0.5) {
        return Vec::new();
    }
    let two = talk >= 40 && (forced >= 2 || mix.chance(0.12));
    let source = if p.rec.parent.is_some() {
        Source::DialVerb
    } else if p.rec.direction == Dir::OutboundApi {
        Source::OutboundApi
    } else if mix.chance(0.75) {
        Source::RecordVerb
    } else {
        Source::StartCallRecordingApi
    };
    let rec_start = answer + mix.range(0, 3).min(talk - 4);
    let mut segments = Vec::with_capacity(2);
    if two {
        let split = rec_start + (tl.end - rec_start) * mix.range(30, 70) / 100;
        segments.push((source, rec_start, split));
        segments.push((
            Source::StartCallRecordingApi,
            split + mix.range(1, 4),
            tl.end,
        ));
    } else {
        segments.push((source, rec_start, tl.end));
    }
    segments
        .into_iter()
        .enumerate()
        .map(|(i, (source, start, end))| {
            let mut sid = xor(&p.sid, &RECORDING_MASK);
            sid[15] ^= i as u8;
            let duration = (end - start).max(1) as u32;
            let mut created = end + mix.range(1, 5);
            if mix.chance(0.04) {
                // Arrives late: listed only hours after the call.
                created += mix.range(3_600, 8 * 3_600);
            }
            let processing = 20 + mix.range(0, 120) as u32 + duration / 30;
            let deleted = if mix.chance(0.03) {
                mix.range(86_400, 20 * 86_400) as u32
            } else {
                u32::MAX
            };
            let channels = match source {
                Source::DialVerb if mix.chance(0.7) => 2,
                Source::StartCallRecordingApi if mix.chance(0.5) => 2,
                _ => 1,
            };
            let legacy_share = if source == Source::RecordVerb {
                0.6
            } else {
                0.15
            };
            let transcription = mix.chance(legacy_share).then(|| Offsets {
                created: mix.range(2, 10) as u32,
                started: 0,
                done: mix.range(15, 90) as u32 + duration / 10,
                failed: mix.chance(0.03),
            });
            let transcript = (duration >= 15 && mix.chance(0.45)).then(|| Offsets {
                created: mix.range(3, 30) as u32,
                started: mix.range(2, 20) as u32,
                done: 10 + duration / 6,
                failed: mix.chance(0.02),
            });
            (
                sid,
                GenRecording {
                    call: p.sid,
                    start,
                    created,
                    duration,
                    processing,
                    deleted,
                    channels,
                    source,
                    transcription,
                    transcript,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_recordings_stay_compact() {
        assert!(std::mem::size_of::<GenRecording>() <= 88);
    }

    #[test]
    fn cursors_round_trip() {
        for key in [
            (1_770_000_000, MSid::Hex([7; 16])),
            (-5, MSid::Text("RE0123456789ABCDEF0123456789ABCDEF".into())),
        ] {
            assert_eq!(decode_cursor(&encode_cursor(&key)), Some(key));
        }
        assert!(decode_cursor("PAnope!").is_none());
        assert!(decode_cursor("xx").is_none());
    }

    #[test]
    fn query_filters_by_kind() {
        let q = MediaQuery::parse(
            ListKind::Recordings,
            "DateCreated%3E=2026-02-01T00:00:00Z&CallSid=CA1&SourceSid=RE1&PageSize=5",
        )
        .unwrap();
        assert_eq!(q.page_size, 5);
        assert_eq!(q.call_sid.as_deref(), Some("CA1"));
        assert!(q.source_sid.is_none());
        assert_eq!(
            q.uri("/x", 1, None),
            "/x?PageSize=5&Page=1&DateCreated%3E=2026-02-01T00:00:00Z&CallSid=CA1"
        );
        let v2 = MediaQuery::parse(
            ListKind::Transcripts,
            "AfterDateCreated=2026-02-01T00:00:00Z&BeforeDateCreated=2026-02-02T00:00:00Z",
        )
        .unwrap();
        assert!(v2.created.contains(Some(ts(1_769_904_000))));
        assert!(v2.created.contains(Some(ts(1_769_990_400))));
        assert!(!v2.created.contains(Some(ts(1_769_990_401))));
        assert!(MediaQuery::parse(ListKind::Recordings, "DateCreated%3E=soon").is_err());
        assert!(MediaQuery::parse(ListKind::Transcriptions, "PageToken=zz").is_err());
    }
}
