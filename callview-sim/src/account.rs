//! [`SimulatedAccount`]: the generated calls, their live progress, and the
//! calls list's paging.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Bound;

use callview_core::call::{Call, CallSid, CallStatus};
use callview_core::recording::{Recording, RecordingSid, Sentence, Transcript};
use callview_core::text::{MessageSid, Text, TextMedia};
use callview_core::twilio::{AudioFormat, IncomingNumber, OutgoingText, TextSender};
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::audio::AudioFile;
use crate::callbacks::StatusCallback;
use crate::generator::{
    formatted, hex16, Force, Gen, Planned, Rec, Scenario, Sid16, Status, Timeline, World,
    ANSWERED_BY, CALLER_NAMES, MAX_RECORDS_PER_SCENARIO, SIP_DOMAIN,
};
use crate::media::{ListKind, Media, MediaQuery};
use crate::query::{ts, Cursor, Key, ListQuery, SidKey, StartKey};
use crate::texts::{MediaItem, Parties, SendRequest, TextListing, TextQuery, TextRefused, Texts};
use crate::SimConfig;

/// How many interactions per minute [`SimulatedAccount::tick`] adds by default.
const DEFAULT_LIVE_RATE_PER_MINUTE: f64 = 2.0;

/// Relative weight of each local hour (UTC−5) for historical calls.
const HOUR_WEIGHTS: [f64; 24] = [
    0.02, 0.01, 0.01, 0.01, 0.02, 0.05, 0.15, 0.4, 0.8, 1.0, 1.0, 0.95, 0.85, 0.9, 1.0, 0.95, 0.9,
    0.75, 0.5, 0.35, 0.25, 0.15, 0.08, 0.04,
];

/// A stored record: generated (compact) or inserted by hand.
#[derive(Clone, Debug)]
enum Entry {
    Gen(Rec),
    Custom(Box<Call>),
}

/// One page of the calls list, newest first, with the positions of the
/// neighbouring pages.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub(crate) calls: Vec<Call>,
    pub(crate) next: Option<Cursor>,
    pub(crate) prev: Option<Cursor>,
}

/// A deterministic simulated Twilio account: its phone numbers, SIP
/// domain, agents, customers and call records, and a clock.
///
/// Records are stored compactly (about 150 bytes each), so a million calls
/// fit in a few hundred megabytes; [`Call`]s are built when asked for.
///
/// ```
/// use callview_sim::{SimConfig, SimulatedAccount};
/// let config = SimConfig { calls: 300, ..SimConfig::default() };
/// let a = SimulatedAccount::new(config.clone());
/// let b = SimulatedAccount::new(config);
/// assert_eq!(a.calls(), b.calls());
/// assert_eq!(a.owned_numbers().len(), 3);
/// ```
pub struct SimulatedAccount {
    config: SimConfig,
    /// The account's present, Unix seconds.
    now: i64,
    world: World,
    /// Continues after the history for live traffic (deterministic too).
    rng: StdRng,
    calls: BTreeMap<Key, Entry>,
    index: HashMap<SidKey, StartKey>,
    /// Timelines of generated records that still change.
    pending: HashMap<Sid16, Timeline>,
    /// Generated records not created yet.
    scheduled: Vec<Planned>,
    /// Recordings and transcripts.
    media: Media,
    /// Text messages (SMS / MMS).
    texts: Texts,
    live_rate_per_minute: f64,
}

impl fmt::Debug for SimulatedAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedAccount")
            .field("account_sid", &self.config.account_sid)
            .field("seed", &self.config.seed)
            .field("now", &self.now())
            .field("calls", &self.calls.len())
            .field("pending", &self.pending.len())
            .field("scheduled", &self.scheduled.len())
            .field("texts", &self.texts.len())
            .finish_non_exhaustive()
    }
}

impl SimulatedAccount {
    /// Generates the account: `config.calls` records present at
    /// `config.now`, a handful of them still live (queued, ringing, in
    /// progress, or waiting for their price).
    pub fn new(config: SimConfig) -> Self {
        let now = config.now.timestamp();
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut world = World::build(&mut rng, config.seed, config.calls, now);
        let mut planned: Vec<Planned> = Vec::with_capacity(config.calls + 16);
        let mut remaining = config.calls;
        {
            let mut gen = Gen {
                rng: &mut rng,
                world: &mut world,
                force: Force::default(),
            };
            let visible =
                |records: &[Planned]| records.iter().filter(|p| p.tl.created <= now).count();
            let live = if config.calls >= 40 {
                (config.calls / 500).clamp(4, 12)
            } else {
                config.calls / 10
            };
            for i in 0..live {
                if remaining < MAX_RECORDS_PER_SCENARIO {
                    break;
                }
                let (scenario, t0, force) = match i {
                    // Queued: created a second ago, dialled in a few seconds.
                    0 => (
                        Scenario::OutboundApi,
                        now - 1,
                        Force {
                            queue_ms: Some(4_500),
                            answered: Some(true),
                            ..Force::default()
                        },
                    ),
                    // Forwarded to a dispatcher right now.
                    1 => (
                        Scenario::ForwardToSip,
                        now - 8,
                        Force {
                            answered: Some(true),
                            talk: Some(300),
                            ..Force::default()
                        },
                    ),
                    // Talking for a minute and a half already.
                    2 => (
                        Scenario::InboundAnswered,
                        now - 90,
                        Force {
                            talk: Some(600),
                            ..Force::default()
                        },
                    ),
                    // Ended a minute and a half ago; priced later.
                    3 => (
                        Scenario::InboundAnswered,
                        now - 200,
                        Force {
                            talk: Some(100),
                            price_delay: Some(400),
                            ..Force::default()
                        },
                    ),
                    _ => {
                        let scenario = gen.pick(false);
                        (scenario, now - gen.rng.gen_range(0..900), Force::default())
                    }
                };
                gen.force = force;
                let records = gen.scenario(scenario, t0);
                gen.force = Force::default();
                remaining -= visible(&records);
                planned.extend(records);
            }
            let span = (i64::from(config.days) * 86_400).max(3_600);
            while remaining > 0 {
                let scenario = gen.pick(remaining < MAX_RECORDS_PER_SCENARIO);
                let t0 = history_time(gen.rng, now, span);
                let records = gen.scenario(scenario, t0);
                remaining -= visible(&records);
                planned.extend(records);
            }
        }
        let media = Media::new(config.media, config.seed, &config.account_sid);
        // Generated once the calls are known (texts involve their customers).
        let texts = Texts::empty(&config.account_sid, config.seed);
        let mut account = SimulatedAccount {
            config,
            now,
            world,
            rng,
            calls: BTreeMap::new(),
            index: HashMap::new(),
            pending: HashMap::new(),
            scheduled: Vec::new(),
            media,
            texts,
            live_rate_per_minute: DEFAULT_LIVE_RATE_PER_MINUTE,
        };
        let mut entries = Vec::with_capacity(planned.len());
        for p in planned {
            if p.tl.created > now {
                account.scheduled.push(p);
            } else {
                let (key, rec) = account.realize(p, now);
                entries.push((key, Entry::Gen(rec)));
            }
        }
        account.index.reserve(entries.len());
        for (key, _) in &entries {
            account.index.insert(key.1.clone(), key.0);
        }
        account.calls = entries.into_iter().collect();
        account.texts = account.generate_texts();
        account
    }

    /// The account's texts: threads with the customers who call (and a few
    /// who only text), from the company's numbers, deterministic from the
    /// seed and independent of the calls' random choices.
    fn generate_texts(&self) -> Texts {
        let config = &self.config;
        let customers = self.world.texting_customers();
        let mut called = std::collections::HashSet::new();
        for entry in self.calls.values() {
            if let Entry::Gen(rec) = entry {
                called.insert(rec.from);
                called.insert(rec.to);
            }
        }
        let callers = customers
            .iter()
            .copied()
            .filter(|c| called.contains(c))
            .collect();
        let parties = Parties {
            company: self.world.numbers.iter().map(|n| n.pool_id).collect(),
            callers,
            unsubscribed: customers.first().copied().unwrap_or(0),
            customers,
        };
        let now = self.now;
        let span = (i64::from(config.days) * 86_400).max(3_600);
        Texts::generate(
            &config.account_sid,
            config.seed,
            config.texts.unwrap_or(config.calls / 4),
            config.media,
            parties,
            now,
            |rng| history_time(rng, now, span),
        )
    }

    /// The configuration the account was generated from.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The account SID (`AC...`).
    pub fn account_sid(&self) -> &str {
        &self.config.account_sid
    }

    /// The account's present (whole seconds).
    pub fn now(&self) -> DateTime<Utc> {
        ts(self.now)
    }

    /// The account's SIP domain (`acme.sip.twilio.com`).
    pub fn sip_domain(&self) -> &str {
        SIP_DOMAIN
    }

    /// Number of call records present.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether the account has no calls.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Every call record, newest first (calls without a start time first,
    /// then by start time, then by SID, descending), as Twilio lists them.
    pub fn calls(&self) -> Vec<Call> {
        self.calls
            .iter()
            .rev()
            .map(|(key, entry)| self.materialize(key, entry))
            .collect()
    }

    /// One call by SID.
    pub fn call(&self, sid: &CallSid) -> Option<Call> {
        let key = self.key_of(sid.as_str())?;
        self.calls
            .get(&key)
            .map(|entry| self.materialize(&key, entry))
    }

    /// The SIDs of the calls whose status is not final yet, newest first.
    pub fn ongoing(&self) -> Vec<CallSid> {
        self.calls
            .iter()
            .rev()
            .filter(|(_, entry)| match entry {
                Entry::Gen(rec) => !rec.status.to_call().is_final(),
                Entry::Custom(call) => !call.status.is_final(),
            })
            .filter_map(|(key, _)| CallSid::new(key.1.text()))
            .collect()
    }

    /// The account's own phone numbers (IncomingPhoneNumbers).
    pub fn owned_numbers(&self) -> Vec<IncomingNumber> {
        self.world
            .numbers
            .iter()
            .map(|n| IncomingNumber {
                sid: n.sid.clone(),
                phone_number: n.e164.to_owned(),
                friendly_name: Some(n.friendly_name.to_owned()),
            })
            .collect()
    }

    /// When each owned number was bought (same order as [`Self::owned_numbers`]).
    pub(crate) fn owned_number_dates(&self) -> Vec<DateTime<Utc>> {
        self.world.numbers.iter().map(|n| ts(n.created)).collect()
    }

    // ----- recordings and transcripts ---------------------------------------

    /// Whether recordings and transcripts are generated
    /// ([`SimConfig::media`]).
    pub fn media_enabled(&self) -> bool {
        self.media.enabled()
    }

    /// The recordings of one call that Twilio lists now, newest first:
    /// generated ones (about half of the answered calls, on parent calls
    /// and on `<Dial>` legs, some in two parts) and inserted ones.
    pub fn recordings(&self, call: &CallSid) -> Vec<Recording> {
        let query = MediaQuery::parse(ListKind::Recordings, "PageSize=1000")
            .expect("a constant query parses");
        self.media
            .list_recordings(&query, Some(call.as_str()), self.now)
            .items
            .into_iter()
            .filter_map(|v| Recording::from_value(v).ok())
            .collect()
    }

    /// One recording by SID, as fetched now (`None` once deleted, or before
    /// a late recording has arrived).
    pub fn recording(&self, sid: &RecordingSid) -> Option<Recording> {
        self.media
            .recording(sid.as_str(), self.now)
            .and_then(|v| Recording::from_value(v).ok())
    }

    /// Every recording Twilio lists now, newest first (by `date_created`).
    pub fn all_recordings(&self) -> Vec<Recording> {
        self.media
            .all_recordings(self.now)
            .into_iter()
            .filter_map(|v| Recording::from_value(v).ok())
            .collect()
    }

    /// Adds a recording (to any call SID, or none), or replaces the one
    /// with the same SID. Its record is served as received (`raw`) when it
    /// has one, else built from its fields; it is listed whatever its
    /// dates, at its `date_created` (now when it has none).
    pub fn insert_recording(&mut self, recording: Recording) {
        self.media.insert_custom(recording, self.now);
    }

    /// Deletes a recording now: it is no longer listed, and fetching it or
    /// its audio answers 404. `false` when there was none.
    pub fn delete_recording(&mut self, sid: &RecordingSid) -> bool {
        self.media.delete(sid.as_str(), self.now)
    }

    /// Every legacy transcription (`TR...`) Twilio lists now, newest first.
    pub fn transcriptions(&self) -> Vec<Transcript> {
        let mut out = Vec::new();
        let mut query = MediaQuery::parse(ListKind::Transcriptions, "PageSize=1000")
            .expect("a constant query parses");
        loop {
            let page = self.media.list_transcriptions(&query, None, self.now);
            out.extend(
                page.items
                    .into_iter()
                    .filter_map(|v| Transcript::from_legacy(v).ok()),
            );
            match page.next {
                Some(next) => query = query.after(next),
                None => return out,
            }
        }
    }

    /// Every Voice Intelligence transcript (`GT...`) Twilio lists now,
    /// newest first, with its sentences (completed ones only have any).
    pub fn intelligence_transcripts(&self) -> Vec<Transcript> {
        let mut out = Vec::new();
        let mut query = MediaQuery::parse(ListKind::Transcripts, "PageSize=1000")
            .expect("a constant query parses");
        loop {
            let page = self.media.list_transcripts(&query, self.now);
            for value in page.items {
                let Ok(mut transcript) = Transcript::from_intelligence(value) else {
                    continue;
                };
                transcript.set_sentences(self.sentences(&transcript.sid).unwrap_or_default());
                out.push(transcript);
            }
            match page.next {
                Some(next) => query = query.after(next),
                None => return out,
            }
        }
    }

    /// The sentences of one Voice Intelligence transcript, in order (empty
    /// until it is completed); `None` for an unknown transcript.
    pub fn sentences(&self, transcript_sid: &str) -> Option<Vec<Sentence>> {
        let values = self.media.sentences(transcript_sid, self.now)?;
        Some(
            values
                .iter()
                .filter_map(|v| Sentence::from_json(v).ok())
                .collect(),
        )
    }

    /// The Voice Intelligence service the transcripts belong to (`GA...`).
    pub fn intelligence_service_sid(&self) -> &str {
        self.media.service_sid()
    }

    /// A recording's audio as Twilio serves it now: `None` when the
    /// recording is unknown, deleted, or still processing.
    pub fn recording_audio(&self, sid: &RecordingSid, format: AudioFormat) -> Option<AudioFile> {
        self.media
            .audio(sid.as_str(), format, self.now)
            .map(|a| a.file)
    }

    /// Whether the audio of `sid` is served through a `302` redirect to
    /// the simulated storage (`/storage/recordings/...`, no authentication),
    /// as Twilio does for some recordings: about a third of them, by SID.
    pub fn audio_redirects(&self, sid: &RecordingSid) -> bool {
        crate::media::redirects(sid.as_str())
    }

    /// The account's media, for the server and the client.
    pub(crate) fn media(&self) -> &Media {
        &self.media
    }

    /// The account's present, Unix seconds.
    pub(crate) fn now_secs(&self) -> i64 {
        self.now
    }

    // ----- text messages ---------------------------------------------------

    /// Number of text messages present.
    pub fn text_count(&self) -> usize {
        self.texts.len()
    }

    /// Every text message (SMS and MMS), newest first as Twilio lists them:
    /// texts not sent yet first, then by `date_sent`, then by SID,
    /// descending. Each went through Twilio's wire form (`raw` is the
    /// record the API serves).
    pub fn texts(&self) -> Vec<Text> {
        self.texts.all(&self.world.pool, self.now)
    }

    /// One text by SID, as fetched now.
    pub fn text(&self, sid: &MessageSid) -> Option<Text> {
        self.texts.get(sid.as_str(), &self.world.pool, self.now)
    }

    /// The media of one MMS with their content (small PNG pictures,
    /// deterministic from the media SID); empty for an SMS or an unknown
    /// text.
    pub fn text_media(&self, sid: &MessageSid) -> Vec<(TextMedia, bytes::Bytes)> {
        self.text_media_items(sid.as_str())
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.to_text_media(), bytes::Bytes::from(m.content())))
            .collect()
    }

    /// Adds a text, or replaces the one with the same SID. It is served as
    /// received (`raw`) when it has a record, else built from its fields,
    /// listed at its `date_sent`, and does not change by itself; an MMS
    /// (`num_media` > 0) gets generated pictures.
    pub fn insert_text(&mut self, text: Text) {
        self.texts.insert(text, self.now);
    }

    /// Sends a text as `POST Messages.json` does, validating it as Twilio
    /// does:
    ///
    /// * no `To` → 21604; `To` not a phone number (E.164) → 21211
    /// * `From` not one of [`Self::owned_numbers`] → 21606 (a messaging
    ///   service, `MG...`, sends from the main line)
    /// * an empty body → 21602; over 1 600 characters → 21617
    /// * `To` is [`Self::unsubscribed_number`] → 21610
    ///
    /// every refusal a 400. An accepted text is stored `queued`
    /// (`outbound-api`, SID `SM...`), is `sent` a second later and
    /// `delivered` two seconds after that (as the clock moves:
    /// [`Self::advance_to`]); its price arrives 20 seconds after creation.
    /// Texts to a fictional `555-01xx` NANP number end `undelivered`
    /// (30003). With a `status_callback`, each status (`queued`, `sent`,
    /// `delivered` or `undelivered`) owes a [`StatusCallback`], collected by
    /// [`Self::take_status_callbacks`] or POSTed by a
    /// [`SimulatedTwilio`](crate::SimulatedTwilio).
    pub fn send_text(&mut self, text: &OutgoingText) -> Result<Text, TextRefused> {
        let (from, service) = match &text.from {
            TextSender::Number(n) => (Some(n.clone()), None),
            TextSender::Service(s) => (None, Some(s.clone())),
        };
        self.send(&SendRequest {
            to: Some(text.to.clone()),
            from,
            messaging_service_sid: service,
            body: Some(text.body.clone()),
            media_urls: 0,
            status_callback: text.status_callback.clone(),
        })
    }

    /// [`Self::send_text`] of a request as the API received it.
    pub(crate) fn send(&mut self, request: &SendRequest) -> Result<Text, TextRefused> {
        self.texts.send(request, &self.world.pool, self.now)
    }

    /// The customer who replied `STOP` to the main line: the first
    /// generated customer with a number (a NANP number, deterministic from
    /// the seed). Sending to it is refused with 21610.
    pub fn unsubscribed_number(&self) -> String {
        self.world.pool.get(self.texts.unsubscribed()).to_owned()
    }

    /// The status callbacks due so far that no
    /// [`SimulatedTwilio`](crate::SimulatedTwilio) has taken to POST, oldest
    /// first (each is returned once).
    pub fn take_status_callbacks(&mut self) -> Vec<StatusCallback> {
        self.texts.take_callbacks()
    }

    /// Whether status callbacks wait in [`Self::take_status_callbacks`].
    pub(crate) fn has_status_callbacks(&self) -> bool {
        self.texts.has_callbacks()
    }

    /// Hands status callbacks to `sink` from now on.
    pub(crate) fn set_callback_sink(
        &mut self,
        sink: tokio::sync::mpsc::UnboundedSender<StatusCallback>,
    ) {
        self.texts.set_sink(sink);
    }

    /// One page of `Messages.json`.
    pub(crate) fn list_texts(&self, query: &TextQuery) -> TextListing {
        self.texts.list(query, &self.world.pool, self.now)
    }

    /// One text's record as the API serves it now.
    pub(crate) fn text_record(&self, sid: &str) -> Option<serde_json::Value> {
        self.texts.get_record(sid, &self.world.pool, self.now)
    }

    /// The media of one text, `None` for an unknown text.
    pub(crate) fn text_media_items(&self, sid: &str) -> Option<Vec<MediaItem>> {
        self.texts.media(sid, &self.world.pool, self.now)
    }

    /// How many interactions per minute [`Self::tick`] adds (default 2).
    pub fn set_live_rate(&mut self, per_minute: f64) {
        self.live_rate_per_minute = per_minute.max(0.0);
    }

    /// Lets time pass until `now`: calls created meanwhile appear, ringing
    /// calls are answered or missed, ongoing calls complete (status,
    /// duration, end time), prices are filled in minutes after the end, and
    /// `date_updated` follows. Going back in time does nothing.
    pub fn advance_to(&mut self, now: DateTime<Utc>) {
        let t = now.timestamp();
        if t <= self.now {
            return;
        }
        self.now = t;
        if !self.scheduled.is_empty() {
            let (due, later): (Vec<Planned>, Vec<Planned>) = std::mem::take(&mut self.scheduled)
                .into_iter()
                .partition(|p| p.tl.created <= t);
            self.scheduled = later;
            for p in due {
                let (key, rec) = self.realize(p, t);
                self.put(key, Entry::Gen(rec));
            }
        }
        let mut sids: Vec<Sid16> = self.pending.keys().copied().collect();
        sids.sort_unstable();
        for sid in sids {
            self.refresh_pending(sid);
        }
        self.texts.advance(&self.world.pool, t);
    }

    /// Adds `n` interactions starting now (most of them ringing or just
    /// answered) and returns their root SIDs. Later legs appear as time
    /// passes.
    pub fn generate_live(&mut self, n: usize) -> Vec<CallSid> {
        let now = self.now;
        let mut roots = Vec::with_capacity(n);
        for _ in 0..n {
            let mut gen = Gen {
                rng: &mut self.rng,
                world: &mut self.world,
                force: Force::default(),
            };
            let scenario = gen.pick(false);
            let t0 = now - gen.rng.gen_range(0..4);
            let records = gen.scenario(scenario, t0);
            roots.extend(root_sids(&records));
            for p in records {
                if p.tl.created > self.now {
                    self.scheduled.push(p);
                } else {
                    let (key, rec) = self.realize(p, now);
                    self.put(key, Entry::Gen(rec));
                }
            }
        }
        roots
    }

    /// Moves the clock to `now` with live traffic: new interactions are
    /// started in the elapsed interval at the live rate (see
    /// [`Self::set_live_rate`]; at most 500 per call), then
    /// [`Self::advance_to`] runs. Returns the new interactions' root SIDs.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<CallSid> {
        let t = now.timestamp();
        if t <= self.now {
            return Vec::new();
        }
        let expected = (t - self.now) as f64 * self.live_rate_per_minute / 60.0;
        let mut count = expected.floor() as usize;
        if self.rng.gen::<f64>() < expected.fract() {
            count += 1;
        }
        let mut roots = Vec::new();
        for _ in 0..count.min(500) {
            let mut gen = Gen {
                rng: &mut self.rng,
                world: &mut self.world,
                force: Force::default(),
            };
            let scenario = gen.pick(false);
            let t0 = gen.rng.gen_range(self.now + 1..=t);
            let records = gen.scenario(scenario, t0);
            roots.extend(root_sids(&records));
            // Created after the old present: `advance_to` brings them in.
            self.scheduled.extend(records);
        }
        // Inbound texts arrive at a third of the calls' rate.
        let expected = (t - self.now) as f64 * self.live_rate_per_minute / 180.0;
        let mut texts = expected.floor() as usize;
        if self.texts.rng().gen::<f64>() < expected.fract() {
            texts += 1;
        }
        self.texts.arrive(texts.min(200), self.now, t);
        self.advance_to(now);
        roots
    }

    /// Forces one ongoing call to complete now (status `completed`, end
    /// time now, duration since its start); a generated call's price still
    /// arrives minutes later. Calls already final are left alone. Returns
    /// the call afterwards, `None` for an unknown SID.
    pub fn complete_call(&mut self, sid: &CallSid) -> Option<Call> {
        let key = self.key_of(sid.as_str())?;
        let t = self.now;
        match self.calls.get(&key)? {
            Entry::Gen(_) => {
                if let SidKey::Hex(h) = key.1 {
                    if let Some(mut tl) = self.pending.get(&h).copied() {
                        if !tl.state_at(t).status.to_call().is_final() {
                            let start = tl.start.filter(|s| *s <= t).unwrap_or(t);
                            tl.start = Some(start);
                            tl.answer = Some(tl.answer.map_or(start, |a| a.min(t)));
                            tl.end = t;
                            tl.final_status = Status::Completed;
                            if tl.rate == 0 {
                                tl.rate = 850;
                            }
                            self.pending.insert(h, tl);
                            self.refresh_pending(h);
                            if let Some(Entry::Gen(rec)) =
                                self.key_of(sid.as_str()).and_then(|k| self.calls.get(&k))
                            {
                                let planned = Planned {
                                    sid: h,
                                    rec: rec.clone(),
                                    tl,
                                };
                                self.media.remove_call(&h);
                                self.media.add_planned(&planned);
                            }
                        }
                    }
                }
            }
            Entry::Custom(call) => {
                if !call.status.is_final() {
                    let mut call = (**call).clone();
                    let now = ts(t);
                    let start = call.start_time.filter(|s| *s <= now).unwrap_or(now);
                    call.start_time = Some(start);
                    call.status = CallStatus::Completed;
                    call.end_time = Some(now);
                    call.duration = Some((now - start).num_seconds().max(0) as u32);
                    call.date_updated = Some(now);
                    call.refresh_raw();
                    self.insert(call);
                }
            }
        }
        self.call(sid)
    }

    /// Inserts a call, or replaces the call with the same SID (which then
    /// stops changing by itself). Returns the replaced call.
    pub fn insert(&mut self, call: Call) -> Option<Call> {
        let sid = SidKey::parse(call.sid.as_str());
        if let SidKey::Hex(h) = &sid {
            self.pending.remove(h);
            self.scheduled.retain(|p| p.sid != *h);
        }
        let previous = self.call(&call.sid);
        let key = (StartKey::of(call.start_time), sid);
        self.put(key, Entry::Custom(Box::new(call)));
        previous
    }

    /// Replaces an existing call (same SID); `false`, and nothing stored,
    /// when there is none.
    pub fn update(&mut self, call: Call) -> bool {
        if self.key_of(call.sid.as_str()).is_none() {
            return false;
        }
        self.insert(call);
        true
    }

    // ----- internals -------------------------------------------------------

    fn key_of(&self, sid: &str) -> Option<Key> {
        let sid = SidKey::parse(sid);
        let start = *self.index.get(&sid)?;
        Some((start, sid))
    }

    /// The record's key and state at `t`; keeps its timeline if it still changes.
    fn realize(&mut self, p: Planned, t: i64) -> (Key, Rec) {
        self.media.add_planned(&p);
        let state = p.tl.state_at(t);
        let mut rec = p.rec;
        rec.apply(&state);
        if !p.tl.settled_at(t) {
            self.pending.insert(p.sid, p.tl);
        }
        ((StartKey::secs(state.start), SidKey::Hex(p.sid)), rec)
    }

    /// Stores `entry` under `key`, replacing any record with the same SID.
    fn put(&mut self, key: Key, entry: Entry) {
        if let Some(old) = self.index.insert(key.1.clone(), key.0) {
            self.calls.remove(&(old, key.1.clone()));
        }
        self.calls.insert(key, entry);
    }

    /// Brings a pending generated record to the present.
    fn refresh_pending(&mut self, sid: Sid16) {
        let t = self.now;
        let Some(tl) = self.pending.get(&sid).copied() else {
            return;
        };
        let sid_key = SidKey::Hex(sid);
        let Some(&start) = self.index.get(&sid_key) else {
            self.pending.remove(&sid);
            return;
        };
        let state = tl.state_at(t);
        let old_key = (start, sid_key);
        match self.calls.get_mut(&old_key) {
            Some(Entry::Gen(rec)) => rec.apply(&state),
            _ => {
                self.pending.remove(&sid);
                return;
            }
        }
        let new_start = StartKey::secs(state.start);
        if new_start != start {
            if let Some(entry) = self.calls.remove(&old_key) {
                let sid_key = old_key.1;
                self.index.insert(sid_key.clone(), new_start);
                self.calls.insert((new_start, sid_key), entry);
            }
        }
        if tl.settled_at(t) {
            self.pending.remove(&sid);
        }
    }

    fn materialize(&self, key: &Key, entry: &Entry) -> Call {
        match entry {
            Entry::Custom(call) => (**call).clone(),
            Entry::Gen(rec) => self.generated_call(key, rec),
        }
    }

    fn generated_call(&self, key: &Key, rec: &Rec) -> Call {
        let sid = key.1.text().into_owned();
        let account = &self.config.account_sid;
        let base = format!("/2010-04-01/Accounts/{account}/Calls/{sid}");
        let text = |id: u32| {
            let value = self.world.pool.get(id);
            (!value.is_empty()).then(|| value.to_owned())
        };
        let from = text(rec.from);
        let to = text(rec.to);
        let mut subresources = Map::new();
        for (name, path) in [
            ("feedback", "Feedback"),
            ("user_defined_messages", "UserDefinedMessages"),
            ("notifications", "Notifications"),
            ("recordings", "Recordings"),
            ("streams", "Streams"),
            ("payments", "Payments"),
            (
                "user_defined_message_subscriptions",
                "UserDefinedMessageSubscriptions",
            ),
            ("siprec", "Siprec"),
            ("events", "Events"),
            ("transcriptions", "Transcriptions"),
        ] {
            subresources.insert(name.into(), Value::String(format!("{base}/{path}.json")));
        }
        subresources.insert(
            "feedback_summaries".into(),
            Value::String(format!(
                "/2010-04-01/Accounts/{account}/Calls/FeedbackSummary.json"
            )),
        );
        let name = |table: &[&str], i: u8| {
            table
                .get(usize::from(i))
                .filter(|s| !s.is_empty())
                .map(|s| (*s).to_owned())
        };
        let mut call = Call {
            sid: CallSid::new(sid).expect("generated SIDs are not empty"),
            account_sid: Some(account.clone()),
            parent_call_sid: rec
                .parent
                .and_then(|p| CallSid::new(format!("CA{}", hex16(&p)))),
            to_formatted: to.as_deref().map(formatted),
            to,
            from_formatted: from.as_deref().map(formatted),
            from,
            phone_number_sid: rec
                .number
                .and_then(|n| self.world.numbers.get(usize::from(n)))
                .map(|n| n.sid.clone()),
            status: rec.status.to_call(),
            direction: rec.direction.to_call(),
            start_time: key.0.time(),
            end_time: rec.end.map(ts),
            date_created: Some(ts(rec.created)),
            date_updated: Some(ts(rec.updated)),
            duration: rec.duration,
            price: rec.price.map(|p| Decimal::new(i64::from(p), 5)),
            price_unit: Some("USD".into()),
            queue_time: Some(u64::from(rec.queue_time)),
            answered_by: name(ANSWERED_BY, rec.answered_by),
            forwarded_from: rec.forwarded_from.and_then(text),
            caller_name: name(CALLER_NAMES, rec.caller_name),
            group_sid: None,
            trunk_sid: None,
            api_version: Some("2010-04-01".into()),
            uri: Some(format!("{base}.json")),
            subresource_uris: Some(subresources),
            raw: Value::Null,
        };
        call.refresh_raw();
        call
    }

    /// One page of the calls list for `q` (see [`ListQuery`]).
    pub(crate) fn list(&self, q: &ListQuery) -> Listing {
        use Bound::{Excluded, Included, Unbounded};
        let mut lo: Bound<Key> = Unbounded;
        let mut hi: Bound<Key> = Unbounded;
        if q.start.set {
            if let Some(a) = q.start.lo {
                lo = Included((StartKey::of(Some(a)), SidKey::min()));
            }
            hi = Excluded(match q.start.hi {
                Some(b) => (StartKey::of(Some(b)), SidKey::min()),
                None => (StartKey::unset_floor(), SidKey::min()),
            });
        }
        let backward = q.cursor.as_ref().is_some_and(|c| c.backward);
        match &q.cursor {
            Some(c) if c.backward => lo = tighter_lower(lo, Excluded(c.key.clone())),
            Some(c) => hi = tighter_upper(hi, Excluded(c.key.clone())),
            None => {}
        }
        if range_is_empty(&lo, &hi) {
            return Listing::default();
        }
        let size = q.page_size.max(1) as usize;
        let range = self.calls.range((lo, hi));
        let matching = |(key, entry): &(&Key, &Entry)| self.matches(key, entry, q);
        let mut picked: Vec<(&Key, &Entry)> = if backward {
            range.filter(matching).take(size + 1).collect()
        } else {
            let skip = if q.cursor.is_none() {
                q.page as usize * size
            } else {
                0
            };
            range
                .rev()
                .filter(matching)
                .skip(skip)
                .take(size + 1)
                .collect()
        };
        let more = picked.len() > size;
        picked.truncate(size);
        if backward {
            picked.reverse();
        }
        let cursor = |backward: bool, key: &Key| Cursor {
            backward,
            key: key.clone(),
        };
        let first = picked.first().map(|(k, _)| *k);
        let last = picked.last().map(|(k, _)| *k);
        let (next, prev) = if backward {
            (
                last.map(|k| cursor(false, k)),
                first.filter(|_| more).map(|k| cursor(true, k)),
            )
        } else {
            let not_first_page = q.cursor.is_some() || q.page > 0;
            (
                last.filter(|_| more).map(|k| cursor(false, k)),
                first.filter(|_| not_first_page).map(|k| cursor(true, k)),
            )
        };
        Listing {
            calls: picked
                .into_iter()
                .map(|(key, entry)| self.materialize(key, entry))
                .collect(),
            next,
            prev,
        }
    }

    fn matches(&self, key: &Key, entry: &Entry, q: &ListQuery) -> bool {
        if !q.start.contains(key.0.time()) {
            return false;
        }
        match entry {
            Entry::Gen(rec) => {
                q.status.as_deref().is_none_or(|s| s == rec.status.as_str())
                    && q.parent
                        .as_ref()
                        .is_none_or(|p| rec.parent.is_some_and(|h| *p == SidKey::Hex(h)))
                    && q.to
                        .as_deref()
                        .is_none_or(|v| v == self.world.pool.get(rec.to))
                    && q.from
                        .as_deref()
                        .is_none_or(|v| v == self.world.pool.get(rec.from))
                    && q.end.contains(rec.end.map(ts))
            }
            Entry::Custom(call) => {
                q.status
                    .as_deref()
                    .is_none_or(|s| s == call.status.as_str())
                    && q.parent.as_ref().is_none_or(|p| {
                        call.parent_call_sid
                            .as_ref()
                            .is_some_and(|c| SidKey::parse(c.as_str()) == *p)
                    })
                    && q.to
                        .as_deref()
                        .is_none_or(|v| call.to.as_deref() == Some(v))
                    && q.from
                        .as_deref()
                        .is_none_or(|v| call.from.as_deref() == Some(v))
                    && q.end.contains(call.end_time)
            }
        }
    }
}

/// The SIDs of the records without a parent.
fn root_sids(records: &[Planned]) -> Vec<CallSid> {
    records
        .iter()
        .filter(|p| p.rec.parent.is_none())
        .filter_map(|p| CallSid::new(format!("CA{}", hex16(&p.sid))))
        .collect()
}

/// A start time for a historical call: within `span` seconds before ten
/// minutes ago, weighted towards weekday business hours (UTC−5).
pub(crate) fn history_time(rng: &mut StdRng, now: i64, span: i64) -> i64 {
    loop {
        let t = now - 600 - rng.gen_range(0..span);
        let local = t - 5 * 3_600;
        let hour = (local.rem_euclid(86_400) / 3_600) as usize;
        // 1970-01-01 was a Thursday: Monday = 0.
        let weekday = (local.div_euclid(86_400) + 3).rem_euclid(7);
        let weight = HOUR_WEIGHTS[hour] * if weekday >= 5 { 0.35 } else { 1.0 };
        if rng.gen::<f64>() < weight {
            return t;
        }
    }
}

fn tighter_lower(a: Bound<Key>, b: Bound<Key>) -> Bound<Key> {
    use Bound::{Excluded, Included, Unbounded};
    match (a, b) {
        (Unbounded, x) | (x, Unbounded) => x,
        (Included(x), Included(y)) => Included(x.max(y)),
        (Excluded(x), Excluded(y)) => Excluded(x.max(y)),
        (Included(i), Excluded(e)) | (Excluded(e), Included(i)) => {
            if e >= i {
                Excluded(e)
            } else {
                Included(i)
            }
        }
    }
}

fn tighter_upper(a: Bound<Key>, b: Bound<Key>) -> Bound<Key> {
    use Bound::{Excluded, Included, Unbounded};
    match (a, b) {
        (Unbounded, x) | (x, Unbounded) => x,
        (Included(x), Included(y)) => Included(x.min(y)),
        (Excluded(x), Excluded(y)) => Excluded(x.min(y)),
        (Included(i), Excluded(e)) | (Excluded(e), Included(i)) => {
            if e <= i {
                Excluded(e)
            } else {
                Included(i)
            }
        }
    }
}

/// Whether `BTreeMap::range((lo, hi))` would be empty (or panic).
fn range_is_empty(lo: &Bound<Key>, hi: &Bound<Key>) -> bool {
    use Bound::{Excluded, Included, Unbounded};
    match (lo, hi) {
        (Unbounded, _) | (_, Unbounded) => false,
        (Included(l), Included(h)) => l > h,
        (Included(l) | Excluded(l), Included(h) | Excluded(h)) => l >= h,
    }
}
