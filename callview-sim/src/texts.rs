//! The account's text messages (SMS / MMS): generated threads with the
//! customers who call, texts sent through the API, their progress
//! (`queued` → `sent` → `delivered`), their MMS media, the messages list's
//! query and paging, and the status callbacks sent texts owe.
//!
//! Generated texts are stored compactly (numbers as pool ids, bodies as
//! static text); every text keeps its whole [`Life`], and is shown as Twilio
//! would at the account's present, as calls are.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use callview_core::text::{MessageSid, Text, TextDirection, TextMedia, TextStatus, MAX_BODY_CHARS};
use callview_core::twilio::{TextFilter, MAX_PAGE_SIZE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

use crate::callbacks::StatusCallback;
use crate::generator::{derived_hex, hex16, Pool, Sid16};
use crate::media::text_seed;
use crate::query::DEFAULT_PAGE_SIZE;
use crate::query::{ts, Cursor, Key, SidKey, StartKey, TimeRange};

/// Price of one SMS segment, in 1/100 000 USD (`-0.00790`).
pub(crate) const SMS_SEGMENT_PRICE: i64 = -790;
/// Price of one MMS, in 1/100 000 USD (`-0.02000`).
pub(crate) const MMS_PRICE: i64 = -2_000;

/// What customers open a thread with.
const CUSTOMER_OPENERS: &[&str] = &[
    "Hi, is anyone available to come out today?",
    "Running 10 min late",
    "Can you send the invoice?",
    "Hello, I called earlier about the leak under my sink",
    "What time is the technician coming?",
    "Do you work on weekends?",
    "Hi! Can I move my appointment to Thursday?",
    "The heater stopped working again",
    "Got your voicemail, call me back when you can",
    "Is the quote still valid?",
    "Are you open tomorrow?",
    "Thanks again for yesterday, everything works great 👍",
];

/// How customers answer.
const CUSTOMER_REPLIES: &[&str] = &[
    "Ok thanks",
    "Sounds good",
    "Perfect, see you then",
    "Can you make it after 3pm?",
    "Yes please",
    "Got it",
    "Thank you!",
    "No, the back door. Gate code is 4417",
    "Just paid it online",
    "👍",
    "Sorry, who is this?",
];

/// What the business starts a thread with (API notifications).
const BUSINESS_NOTICES: &[&str] = &[
    "Reminder: your appointment with Acme Plumbing is tomorrow between 9 and 11 AM. Reply C to confirm.",
    "Your technician Mike is on the way and should arrive in about 20 minutes.",
    "Hi, this is Acme Plumbing. We tried to call you back, when is a good time?",
    "Your invoice #4821 is ready: https://pay.example.com/i/4821",
    "Thanks for choosing Acme! How did we do? Reply 1-5.",
];

/// How the business answers.
const BUSINESS_REPLIES: &[&str] = &[
    "Yes, we can be there at 2pm",
    "Sure, sending it now",
    "No problem, I moved you to Thursday 10 AM",
    "The technician is 10 minutes away",
    "We are open Saturday 8-12",
    "Thanks! We'll see you then.",
    "Can you send a photo of the problem?",
    "Invoice sent to your email. Thanks!",
];

/// The automatic answer to a first message (TwiML `<Message>`: `outbound-reply`).
const AUTO_REPLY: &str =
    "Thanks for texting Acme Plumbing! We'll get back to you shortly. Reply STOP to opt out.";

/// Captions of customers' pictures.
const CUSTOMER_MMS: &[&str] = &[
    "Here's a photo of the leak",
    "This is the part that broke",
    "",
    "Water heater label",
];

/// Captions of the business's pictures.
const BUSINESS_MMS: &[&str] = &[
    "Your invoice is attached",
    "Here is the quote",
    "Our van 🚐",
];

/// Messages between two of the company's numbers.
const INTERNAL: &[&str] = &[
    "Can someone call back the customer from this morning?",
    "Van 2 is at the shop until Thursday",
    "Test message, please ignore",
];

/// The content type of every generated MMS picture.
pub(crate) const MEDIA_CONTENT_TYPE: &str = "image/png";

/// Twilio's error for an unreachable handset.
const UNDELIVERED: (i64, &str) = (30003, "Unreachable destination handset");
/// Twilio's error for a send that failed for an unknown reason.
const FAILED: (i64, &str) = (30008, "Unknown error");

/// How a text ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Received,
    Delivered,
    Undelivered,
    Failed,
}

/// A text's whole life, Unix seconds: created, sent (or failed), the
/// carrier's answer, the price.
#[derive(Clone, Copy, Debug)]
struct Life {
    created: i64,
    sent: i64,
    done: i64,
    priced: i64,
    outcome: Outcome,
    /// In 1/100 000 USD (negative, as Twilio writes it).
    price: i64,
}

/// What a text looks like at some instant.
#[derive(Clone, Debug)]
struct State {
    status: TextStatus,
    date_sent: Option<i64>,
    updated: i64,
    price: Option<i64>,
    error: Option<(i64, &'static str)>,
}

impl Life {
    fn state_at(&self, t: i64) -> State {
        let priced = (t >= self.priced).then_some(self.price);
        let mut state = State {
            status: TextStatus::Queued,
            date_sent: None,
            updated: self.created,
            price: None,
            error: None,
        };
        match self.outcome {
            Outcome::Received => {
                state.status = TextStatus::Received;
                state.date_sent = Some(self.sent);
                state.updated = if priced.is_some() {
                    self.priced
                } else {
                    self.sent
                };
                state.price = priced;
            }
            _ if t < self.sent => {}
            Outcome::Failed => {
                state.status = TextStatus::Failed;
                state.updated = self.sent;
                state.error = Some(FAILED);
            }
            _ if t < self.done => {
                state.status = TextStatus::Sent;
                state.date_sent = Some(self.sent);
                state.updated = self.sent;
            }
            outcome => {
                state.status = if outcome == Outcome::Undelivered {
                    state.error = Some(UNDELIVERED);
                    TextStatus::Undelivered
                } else {
                    TextStatus::Delivered
                };
                state.date_sent = Some(self.sent);
                state.updated = if priced.is_some() {
                    self.priced
                } else {
                    self.done
                };
                state.price = priced;
            }
        }
        state
    }

    /// Whether nothing changes after `t`.
    fn settled_at(&self, t: i64) -> bool {
        match self.outcome {
            Outcome::Failed => t >= self.sent,
            _ => t >= self.done.max(self.priced).max(self.sent),
        }
    }

    /// The statuses a status callback reports, with when they happen.
    fn events(&self) -> Vec<(i64, TextStatus)> {
        match self.outcome {
            Outcome::Received => Vec::new(),
            Outcome::Failed => vec![
                (self.created, TextStatus::Queued),
                (self.sent, TextStatus::Failed),
            ],
            Outcome::Delivered | Outcome::Undelivered => vec![
                (self.created, TextStatus::Queued),
                (self.sent, TextStatus::Sent),
                (
                    self.done,
                    if self.outcome == Outcome::Delivered {
                        TextStatus::Delivered
                    } else {
                        TextStatus::Undelivered
                    },
                ),
            ],
        }
    }
}

/// A generated text, compact.
#[derive(Clone, Debug)]
struct GenText {
    sid: Sid16,
    mms: bool,
    from: u32,
    to: u32,
    body: &'static str,
    direction: Direction,
    num_media: u8,
    life: Life,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Inbound,
    OutboundApi,
    OutboundReply,
}

impl Direction {
    fn to_text(self) -> TextDirection {
        match self {
            Self::Inbound => TextDirection::Inbound,
            Self::OutboundApi => TextDirection::OutboundApi,
            Self::OutboundReply => TextDirection::OutboundReply,
        }
    }
}

/// A text sent through the API or inserted by hand.
#[derive(Clone, Debug)]
struct Custom {
    /// The record as created (sent texts: queued).
    text: Text,
    /// How a sent text moves on; inserted texts do not change.
    life: Option<Life>,
    /// Where its status callbacks go.
    callback: Option<String>,
    /// How many of its [`Life::events`] were reported.
    reported: usize,
}

#[derive(Clone, Debug)]
enum Item {
    Gen(GenText),
    Custom(Box<Custom>),
}

impl Item {
    fn life(&self) -> Option<&Life> {
        match self {
            Item::Gen(g) => Some(&g.life),
            Item::Custom(c) => c.life.as_ref(),
        }
    }
}

/// Why a send was refused: Twilio's HTTP status, error code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextRefused {
    /// The HTTP status (400).
    pub status: u16,
    /// Twilio's error code (21602, 21617, 21211, 21606, 21610, ...).
    pub code: i64,
    /// Twilio's message.
    pub message: String,
}

impl TextRefused {
    fn new(code: i64, message: String) -> Self {
        Self {
            status: 400,
            code,
            message,
        }
    }

    /// Twilio's error body (`code`, `message`, `more_info`, `status`).
    pub fn to_json(&self) -> Value {
        json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status,
        })
    }
}

/// A send as the API receives it (`POST Messages.json`).
#[derive(Clone, Debug, Default)]
pub(crate) struct SendRequest {
    pub(crate) to: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) messaging_service_sid: Option<String>,
    pub(crate) body: Option<String>,
    /// How many `MediaUrl`s were given (their content is not fetched).
    pub(crate) media_urls: usize,
    pub(crate) status_callback: Option<String>,
}

impl SendRequest {
    /// Reads the form fields of a `POST`.
    pub(crate) fn from_form(form: &[u8]) -> Self {
        let mut request = SendRequest::default();
        for (name, value) in url::form_urlencoded::parse(form) {
            let value = value.into_owned();
            match &*name {
                "To" => request.to = Some(value),
                "From" => request.from = Some(value),
                "MessagingServiceSid" => request.messaging_service_sid = Some(value),
                "Body" => request.body = Some(value),
                "MediaUrl" => request.media_urls += 1,
                "StatusCallback" => request.status_callback = Some(value),
                _ => {}
            }
        }
        request
    }
}

/// One request for the messages list, from Twilio's query parameters:
/// `To`, `From`, `DateSent`, `DateSent<`, `DateSent>`, `PageSize`, `Page`,
/// `PageToken` (unknown names are ignored).
#[derive(Clone, Debug)]
pub(crate) struct TextQuery {
    pub(crate) page_size: u32,
    pub(crate) page: u32,
    pub(crate) cursor: Option<Cursor>,
    sent: TimeRange,
    to: Option<String>,
    from: Option<String>,
    params: Vec<(String, String)>,
}

impl TextQuery {
    /// Parses a raw query string; malformed known parameters are an error
    /// message (a 400).
    pub(crate) fn parse(query: &str) -> Result<TextQuery, String> {
        let mut q = TextQuery {
            page_size: DEFAULT_PAGE_SIZE,
            page: 0,
            cursor: None,
            sent: TimeRange::default(),
            to: None,
            from: None,
            params: Vec::new(),
        };
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let invalid = |what: &str| format!("Invalid {what}: {value:?}");
            let v = value.trim();
            match &*name {
                "PageSize" => {
                    let size: u32 = v.parse().map_err(|_| invalid("PageSize"))?;
                    if size == 0 {
                        return Err(invalid("PageSize"));
                    }
                    q.page_size = size.min(MAX_PAGE_SIZE);
                    continue;
                }
                "Page" => {
                    q.page = v.parse().map_err(|_| invalid("Page"))?;
                    continue;
                }
                "PageToken" => {
                    let cursor = Cursor::decode(v).filter(|c| !c.backward);
                    q.cursor = Some(cursor.ok_or_else(|| invalid("PageToken"))?);
                    continue;
                }
                "DateSent>" => q.sent.after(v).ok_or_else(|| invalid(&name))?,
                "DateSent<" => q.sent.before(v).ok_or_else(|| invalid(&name))?,
                "DateSent" => q.sent.on(v).ok_or_else(|| invalid(&name))?,
                "To" => q.to = Some(v.to_owned()),
                "From" => q.from = Some(v.to_owned()),
                _ => continue,
            }
            q.params.push((name.into_owned(), value.into_owned()));
        }
        Ok(q)
    }

    /// The first page for `filter`.
    pub(crate) fn from_filter(filter: &TextFilter) -> Result<TextQuery, String> {
        TextQuery::parse(&filter.query())
    }

    /// `/2010-04-01/Accounts/{AC}/Messages.json?PageSize=..&Page=..[&PageToken=..]`
    /// then the filters.
    pub(crate) fn uri(&self, account_sid: &str, page: u32, cursor: Option<&Cursor>) -> String {
        crate::query::list_uri(
            &format!("/2010-04-01/Accounts/{account_sid}/Messages.json"),
            self.page_size,
            page,
            cursor,
            &self.params,
        )
    }
}

/// One page of the messages list: Twilio's records and the next page's
/// position.
#[derive(Debug, Default)]
pub(crate) struct TextListing {
    pub(crate) records: Vec<Value>,
    pub(crate) next: Option<Cursor>,
}

/// One media item of an MMS as served.
#[derive(Clone, Debug)]
pub(crate) struct MediaItem {
    pub(crate) sid: String,
    pub(crate) parent: String,
    pub(crate) created: Option<i64>,
}

impl MediaItem {
    /// The picture: a PNG derived from the media SID.
    pub(crate) fn content(&self) -> Vec<u8> {
        crate::png::picture(text_seed(&self.sid))
    }

    /// Whether its content is served through a redirect to the storage
    /// (about a third of the media, by SID).
    pub(crate) fn redirects(&self) -> bool {
        crate::media::redirects(&self.sid)
    }

    /// Twilio's media record.
    pub(crate) fn to_json(&self, account_sid: &str) -> Value {
        let date = self
            .created
            .map(|t| callview_core::call::format_rfc2822(&ts(t)));
        json!({
            "account_sid": account_sid,
            "content_type": MEDIA_CONTENT_TYPE,
            "date_created": date,
            "date_updated": date,
            "parent_sid": self.parent,
            "sid": self.sid,
            "uri": format!(
                "/2010-04-01/Accounts/{account_sid}/Messages/{}/Media/{}.json",
                self.parent, self.sid
            ),
        })
    }

    /// What callview keeps of it.
    pub(crate) fn to_text_media(&self) -> TextMedia {
        TextMedia {
            sid: self.sid.clone(),
            content_type: Some(MEDIA_CONTENT_TYPE.into()),
        }
    }
}

/// Who texts: the parties generation and live traffic draw from.
#[derive(Clone, Debug, Default)]
pub(crate) struct Parties {
    /// The company's numbers (pool ids), main line first.
    pub(crate) company: Vec<u32>,
    /// Customers who also call (pool ids), most texts involve them.
    pub(crate) callers: Vec<u32>,
    /// Every customer with a number (pool ids).
    pub(crate) customers: Vec<u32>,
    /// The customer who replied STOP (pool id).
    pub(crate) unsubscribed: u32,
}

impl Parties {
    fn customer(&self, rng: &mut StdRng) -> Option<u32> {
        let from_callers = !self.callers.is_empty() && rng.gen_bool(0.85);
        let list = if from_callers {
            &self.callers
        } else {
            &self.customers
        };
        if list.is_empty() {
            return None;
        }
        for _ in 0..8 {
            let pick = list[rng.gen_range(0..list.len())];
            if pick != self.unsubscribed {
                return Some(pick);
            }
        }
        None
    }

    fn company(&self, rng: &mut StdRng) -> Option<u32> {
        let roll: f64 = rng.gen();
        let i = if roll < 0.6 {
            0
        } else if roll < 0.85 {
            1
        } else {
            2
        };
        self.company.get(i).or(self.company.first()).copied()
    }
}

/// Every text of the account.
#[derive(Debug)]
pub(crate) struct Texts {
    account_sid: String,
    seed: u64,
    mms: bool,
    /// Live traffic's choices (separate from the calls', so texts never
    /// change the calls a seed gives).
    rng: StdRng,
    parties: Parties,
    items: Vec<Item>,
    by_sid: HashMap<String, usize>,
    /// The list's order (ascending; served newest first).
    order: BTreeMap<Key, usize>,
    /// Each item's current key in `order`.
    keys: Vec<Key>,
    /// Items that still change or owe callbacks.
    pending: BTreeSet<usize>,
    sent: u64,
    outbox: Vec<StatusCallback>,
    sink: Option<UnboundedSender<StatusCallback>>,
}

/// Seconds-ago a few live outbound texts are created at, so that at `now`
/// one is queued, one sent and one delivered but not priced yet.
const LIVE_AGES: [i64; 3] = [1, 25, 70];

impl Texts {
    /// Generates `count` texts present at `now`, spread over `span` seconds
    /// before it (`history_time` picks thread starts), deterministic from
    /// `seed`.
    pub(crate) fn generate(
        account_sid: &str,
        seed: u64,
        count: usize,
        mms: bool,
        parties: Parties,
        now: i64,
        mut history_time: impl FnMut(&mut StdRng) -> i64,
    ) -> Texts {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x7E47_5EED_5A1E_0001);
        let mut gen: Vec<GenText> = Vec::with_capacity(count + 8);
        if count > 0 && !parties.company.is_empty() {
            if count >= 20 {
                // The unsubscribed customer's last word.
                let t = history_time(&mut rng);
                let company = parties.company[0];
                gen.push(inbound(
                    &mut rng,
                    parties.unsubscribed,
                    company,
                    "STOP",
                    0,
                    t,
                ));
            }
            if count >= 40 {
                for age in LIVE_AGES {
                    if let (Some(customer), Some(company)) =
                        (parties.customer(&mut rng), parties.company(&mut rng))
                    {
                        let body = pick(&mut rng, BUSINESS_NOTICES);
                        let mut text = outbound(&mut rng, company, customer, body, 0, now - age);
                        text.life.outcome = Outcome::Delivered;
                        text.life.sent = text.life.created + 2;
                        text.life.done = text.life.sent + 30;
                        text.life.priced = text.life.done + 120;
                        gen.push(text);
                    }
                }
            }
            let mut stuck = 0;
            while gen.len() < count && stuck < 100 {
                let before = gen.len();
                let t0 = history_time(&mut rng);
                if rng.gen_bool(0.03) && parties.company.len() > 1 {
                    internal(&mut rng, &parties, t0, &mut gen);
                } else {
                    thread(&mut rng, &parties, mms, t0, now - 300, &mut gen);
                }
                stuck = if gen.len() == before { stuck + 1 } else { 0 };
            }
            gen.truncate(count);
        }
        let mut texts = Texts {
            account_sid: account_sid.to_owned(),
            seed,
            mms,
            rng,
            parties,
            items: Vec::with_capacity(gen.len()),
            by_sid: HashMap::with_capacity(gen.len()),
            order: BTreeMap::new(),
            keys: Vec::with_capacity(gen.len()),
            pending: BTreeSet::new(),
            sent: 0,
            outbox: Vec::new(),
            sink: None,
        };
        for text in gen {
            texts.push(Item::Gen(text), now);
        }
        texts
    }

    /// No texts at all.
    pub(crate) fn empty(account_sid: &str, seed: u64) -> Texts {
        Texts::generate(account_sid, seed, 0, false, Parties::default(), 0, |_| 0)
    }

    /// The customer who replied STOP: sending to them is refused (21610).
    pub(crate) fn unsubscribed(&self) -> u32 {
        self.parties.unsubscribed
    }

    /// Number of texts.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Sends status callbacks to `sink` from now on (and those waiting).
    pub(crate) fn set_sink(&mut self, sink: UnboundedSender<StatusCallback>) {
        for callback in std::mem::take(&mut self.outbox) {
            let _ = sink.send(callback);
        }
        self.sink = Some(sink);
    }

    /// Whether callbacks wait for a sink.
    pub(crate) fn has_callbacks(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// The callbacks not handed to a sink yet, oldest first.
    pub(crate) fn take_callbacks(&mut self) -> Vec<StatusCallback> {
        std::mem::take(&mut self.outbox)
    }

    fn sid_of(&self, item: &Item) -> String {
        match item {
            Item::Gen(g) => format!("{}{}", if g.mms { "MM" } else { "SM" }, hex16(&g.sid)),
            Item::Custom(c) => c.text.sid.to_string(),
        }
    }

    fn date_sent_at(item: &Item, now: i64) -> Option<i64> {
        match item {
            Item::Custom(c) if c.life.is_none() => c.text.date_sent.map(|t| t.timestamp()),
            _ => item.life().and_then(|l| l.state_at(now).date_sent),
        }
    }

    fn key_at(&self, i: usize, now: i64) -> Key {
        let item = &self.items[i];
        let start = match item {
            Item::Custom(c) if c.life.is_none() => StartKey::of(c.text.date_sent),
            _ => StartKey::secs(Self::date_sent_at(item, now)),
        };
        (start, SidKey::parse(&self.sid_of(item)))
    }

    /// Stores `item` (replacing a text with the same SID) as it is at `now`.
    fn push(&mut self, item: Item, now: i64) -> usize {
        let sid = self.sid_of(&item);
        let i = match self.by_sid.get(&sid) {
            Some(&i) => {
                let old = self.keys[i].clone();
                self.order.remove(&old);
                self.items[i] = item;
                i
            }
            None => {
                self.items.push(item);
                self.keys.push((StartKey::of(None), SidKey::min()));
                self.by_sid.insert(sid, self.items.len() - 1);
                self.items.len() - 1
            }
        };
        let key = self.key_at(i, now);
        self.order.insert(key.clone(), i);
        self.keys[i] = key;
        if self.items[i].life().is_some_and(|l| !l.settled_at(now)) || self.owes_callbacks(i, now) {
            self.pending.insert(i);
        } else {
            self.pending.remove(&i);
        }
        i
    }

    fn owes_callbacks(&self, i: usize, _now: i64) -> bool {
        match &self.items[i] {
            Item::Custom(c) => match (&c.callback, &c.life) {
                (Some(_), Some(life)) => c.reported < life.events().len(),
                _ => false,
            },
            Item::Gen(_) => false,
        }
    }

    /// Lets time pass until `now`: statuses, dates and prices move on, and
    /// sent texts report their new statuses.
    pub(crate) fn advance(&mut self, pool: &Pool, now: i64) {
        let pending: Vec<usize> = self.pending.iter().copied().collect();
        for i in pending {
            let key = self.key_at(i, now);
            if key != self.keys[i] {
                let old = std::mem::replace(&mut self.keys[i], key.clone());
                self.order.remove(&old);
                self.order.insert(key, i);
            }
            self.report(i, pool, now);
            let settled = self.items[i].life().is_none_or(|l| l.settled_at(now));
            if settled && !self.owes_callbacks(i, now) {
                self.pending.remove(&i);
            }
        }
    }

    /// Emits the status callbacks of item `i` due at `now`.
    fn report(&mut self, i: usize, pool: &Pool, now: i64) {
        let Item::Custom(custom) = &self.items[i] else {
            return;
        };
        let (Some(url), Some(life)) = (custom.callback.clone(), custom.life) else {
            return;
        };
        let events = life.events();
        let mut reported = custom.reported;
        let text = self.text_at(i, pool, now);
        while let Some((at, status)) = events.get(reported) {
            if *at > now {
                break;
            }
            let callback = self.callback(&url, &text, status, life);
            self.emit(callback);
            reported += 1;
        }
        if let Item::Custom(custom) = &mut self.items[i] {
            custom.reported = reported;
        }
    }

    fn callback(&self, url: &str, text: &Text, status: &TextStatus, life: Life) -> StatusCallback {
        let mut params = vec![
            ("MessageSid", text.sid.to_string()),
            ("MessageStatus", status.to_string()),
            ("SmsSid", text.sid.to_string()),
            ("SmsStatus", status.to_string()),
            ("From", text.from.clone().unwrap_or_default()),
            ("To", text.to.clone().unwrap_or_default()),
            ("AccountSid", self.account_sid.clone()),
            ("ApiVersion", "2010-04-01".to_owned()),
        ];
        if let Some(service) = &text.messaging_service_sid {
            params.push(("MessagingServiceSid", service.clone()));
        }
        if status.is_failure() {
            let code = match life.outcome {
                Outcome::Failed => FAILED.0,
                _ => UNDELIVERED.0,
            };
            params.push(("ErrorCode", code.to_string()));
        }
        StatusCallback {
            url: url.to_owned(),
            params: params.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
        }
    }

    fn emit(&mut self, callback: StatusCallback) {
        match &self.sink {
            Some(sink) => {
                if let Err(unsent) = sink.send(callback) {
                    self.sink = None;
                    self.outbox.push(unsent.0);
                }
            }
            None => self.outbox.push(callback),
        }
    }

    /// Adds `count` inbound texts arriving between `from` (excluded) and
    /// `to` (included), from customers to the company's numbers.
    pub(crate) fn arrive(&mut self, count: usize, from: i64, to: i64) {
        for _ in 0..count {
            let rng = &mut self.rng;
            let (Some(customer), Some(company)) =
                (self.parties.customer(rng), self.parties.company(rng))
            else {
                return;
            };
            let t = rng.gen_range(from + 1..=to);
            let (body, media) = if self.mms && rng.gen_bool(0.1) {
                (pick(rng, CUSTOMER_MMS), rng.gen_range(1..=2))
            } else {
                (pick(rng, CUSTOMER_OPENERS), 0)
            };
            let text = inbound(rng, customer, company, body, media, t);
            self.push(Item::Gen(text), to);
        }
    }

    /// Draws from the live traffic's RNG.
    pub(crate) fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// Stores a text as given (it does not change by itself).
    pub(crate) fn insert(&mut self, text: Text, now: i64) {
        let custom = Custom {
            text,
            life: None,
            callback: None,
            reported: 0,
        };
        self.push(Item::Custom(Box::new(custom)), now);
    }

    /// Sends a text: validates it as Twilio does, stores it `queued` and
    /// reports `queued` to its status callback.
    pub(crate) fn send(
        &mut self,
        request: &SendRequest,
        pool: &Pool,
        now: i64,
    ) -> Result<Text, TextRefused> {
        let to = request.to.as_deref().map(str::trim).unwrap_or("");
        if to.is_empty() {
            return Err(TextRefused::new(
                21604,
                "A 'To' phone number is required.".into(),
            ));
        }
        if !is_phone_number(to) {
            return Err(TextRefused::new(
                21211,
                format!("The 'To' number {to} is not a valid phone number."),
            ));
        }
        let service = request
            .messaging_service_sid
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let from = match (request.from.as_deref().map(str::trim), service) {
            (Some(from), _) if !from.is_empty() => from.to_owned(),
            (_, Some(service)) => {
                if !(service.starts_with("MG") && callview_core::text::is_sid(service)) {
                    return Err(TextRefused::new(
                        21701,
                        format!("The Messaging Service Sid {service} is invalid."),
                    ));
                }
                // The service sends from the main line.
                let main = self.parties.company.first().copied().unwrap_or(0);
                pool.get(main).to_owned()
            }
            _ => {
                return Err(TextRefused::new(
                    21603,
                    "A 'From' phone number is required.".into(),
                ))
            }
        };
        if !self.parties.company.iter().any(|&n| pool.get(n) == from) {
            return Err(TextRefused::new(
                21606,
                format!("The From phone number {from} is not a valid, SMS-capable inbound phone number or short code for your account."),
            ));
        }
        let body = request.body.clone().unwrap_or_default();
        let media = request.media_urls.min(10);
        if body.trim().is_empty() && media == 0 {
            return Err(TextRefused::new(21602, "Message body is required.".into()));
        }
        if body.chars().count() > MAX_BODY_CHARS {
            return Err(TextRefused::new(
                21617,
                "The concatenated message body exceeds the 1600 character limit.".into(),
            ));
        }
        if pool.get(self.parties.unsubscribed) == to {
            return Err(TextRefused::new(
                21610,
                "Attempt to send to unsubscribed recipient".into(),
            ));
        }
        self.sent += 1;
        let hex = derived_hex(self.seed ^ 0x5E4D_7E47, self.sent);
        let sid = format!("{}{hex}", if media > 0 { "MM" } else { "SM" });
        let segments = segments(&body);
        let price = if media > 0 {
            MMS_PRICE
        } else {
            SMS_SEGMENT_PRICE * i64::from(segments)
        };
        let life = Life {
            created: now,
            sent: now + 1,
            done: now + 3,
            priced: now + 20,
            outcome: if unreachable(to) {
                Outcome::Undelivered
            } else {
                Outcome::Delivered
            },
            price,
        };
        let text = Text {
            sid: MessageSid::new(sid).ok_or_else(|| TextRefused::new(20001, "bad sid".into()))?,
            account_sid: Some(self.account_sid.clone()),
            messaging_service_sid: service.map(str::to_owned),
            from: Some(from),
            to: Some(to.to_owned()),
            body,
            num_segments: Some(if media > 0 { 1 } else { segments }),
            num_media: media as u32,
            direction: TextDirection::OutboundApi,
            status: TextStatus::Queued,
            error_code: None,
            error_message: None,
            price: None,
            price_unit: Some("USD".into()),
            date_created: Some(ts(now)),
            date_sent: None,
            date_updated: Some(ts(now)),
            raw: Value::Null,
        };
        let custom = Custom {
            text,
            life: Some(life),
            callback: request
                .status_callback
                .clone()
                .filter(|u| !u.trim().is_empty()),
            reported: 0,
        };
        let i = self.push(Item::Custom(Box::new(custom)), now);
        self.report(i, pool, now);
        Ok(self.text_at(i, pool, now))
    }

    /// Item `i` as a typed text at `now` (its `raw` is Twilio's record).
    fn text_at(&self, i: usize, pool: &Pool, now: i64) -> Text {
        let record = self.record(i, pool, now);
        match Text::from_value(record) {
            Ok(text) => text,
            // Only an inserted record can be malformed: keep it as inserted.
            Err(_) => match &self.items[i] {
                Item::Custom(c) => c.text.clone(),
                Item::Gen(_) => unreachable!("generated records parse"),
            },
        }
    }

    /// Item `i`'s record in Twilio's REST form at `now`.
    fn record(&self, i: usize, pool: &Pool, now: i64) -> Value {
        let item = &self.items[i];
        let mut text = match item {
            Item::Custom(c) if c.life.is_none() => {
                if c.text.raw.is_object() {
                    return c.text.raw.clone();
                }
                return with_api_version(c.text.to_rest_json());
            }
            Item::Custom(c) => c.text.clone(),
            Item::Gen(g) => {
                let body = g.body.to_owned();
                let segments = if g.mms { 1 } else { segments(&body) };
                Text {
                    sid: MessageSid::new(self.sid_of(item))
                        .unwrap_or_else(|| unreachable!("generated SIDs are valid")),
                    account_sid: Some(self.account_sid.clone()),
                    messaging_service_sid: None,
                    from: Some(pool.get(g.from).to_owned()),
                    to: Some(pool.get(g.to).to_owned()),
                    body,
                    num_segments: Some(segments),
                    num_media: u32::from(g.num_media),
                    direction: g.direction.to_text(),
                    status: TextStatus::Queued,
                    error_code: None,
                    error_message: None,
                    price: None,
                    price_unit: Some("USD".into()),
                    date_created: Some(ts(g.life.created)),
                    date_sent: None,
                    date_updated: None,
                    raw: Value::Null,
                }
            }
        };
        if let Some(life) = item.life() {
            let state = life.state_at(now);
            text.status = state.status;
            text.date_sent = state.date_sent.map(ts);
            text.date_updated = Some(ts(state.updated));
            text.price = state.price.map(|p| Decimal::new(p, 5));
            text.error_code = state.error.map(|e| e.0);
            text.error_message = state.error.map(|e| e.1.to_owned());
        }
        with_api_version(text.to_rest_json())
    }

    /// One text by SID, at `now`.
    pub(crate) fn get(&self, sid: &str, pool: &Pool, now: i64) -> Option<Text> {
        let &i = self.by_sid.get(sid)?;
        Some(self.text_at(i, pool, now))
    }

    /// One text's record by SID, at `now`.
    pub(crate) fn get_record(&self, sid: &str, pool: &Pool, now: i64) -> Option<Value> {
        let &i = self.by_sid.get(sid)?;
        Some(self.record(i, pool, now))
    }

    /// Every text, newest first (unsent first, then by `date_sent`, then
    /// SID, descending).
    pub(crate) fn all(&self, pool: &Pool, now: i64) -> Vec<Text> {
        self.order
            .values()
            .rev()
            .map(|&i| self.text_at(i, pool, now))
            .collect()
    }

    /// One page of `Messages.json` for `q` at `now`.
    pub(crate) fn list(&self, q: &TextQuery, pool: &Pool, now: i64) -> TextListing {
        let hi = match &q.cursor {
            Some(c) => Bound::Excluded(c.key.clone()),
            None => Bound::Unbounded,
        };
        let size = q.page_size.max(1) as usize;
        let skip = if q.cursor.is_none() {
            q.page as usize * size
        } else {
            0
        };
        let number = |id: u32| pool.get(id);
        let matches = |i: usize| -> bool {
            let item = &self.items[i];
            let (from, to) = match item {
                Item::Gen(g) => (Some(number(g.from)), Some(number(g.to))),
                Item::Custom(c) => (c.text.from.as_deref(), c.text.to.as_deref()),
            };
            q.to.as_deref().is_none_or(|t| to == Some(t))
                && q.from.as_deref().is_none_or(|f| from == Some(f))
                && q.sent.contains(Self::date_sent_at(item, now).map(ts))
        };
        let mut picked: Vec<(&Key, usize)> = self
            .order
            .range((Bound::Unbounded, hi))
            .rev()
            .filter(|(_, &i)| matches(i))
            .skip(skip)
            .take(size + 1)
            .map(|(k, &i)| (k, i))
            .collect();
        let more = picked.len() > size;
        picked.truncate(size);
        let next = picked.last().filter(|_| more).map(|(k, _)| Cursor {
            backward: false,
            key: (*k).clone(),
        });
        TextListing {
            records: picked
                .into_iter()
                .map(|(_, i)| self.record(i, pool, now))
                .collect(),
            next,
        }
    }

    /// The media of one text (empty for an SMS), `None` for an unknown text.
    pub(crate) fn media(&self, sid: &str, pool: &Pool, now: i64) -> Option<Vec<MediaItem>> {
        let text = self.get(sid, pool, now)?;
        let created = text.date_created.map(|t| t.timestamp());
        Some(
            (0..u64::from(text.num_media.min(10)))
                .map(|n| MediaItem {
                    sid: format!("ME{}", derived_hex(text_seed(sid), 0x3E + n)),
                    parent: sid.to_owned(),
                    created,
                })
                .collect(),
        )
    }
}

fn with_api_version(mut record: Value) -> Value {
    if let Value::Object(map) = &mut record {
        map.entry("api_version")
            .or_insert_with(|| Value::String("2010-04-01".into()));
    }
    record
}

fn pick(rng: &mut StdRng, list: &[&'static str]) -> &'static str {
    list[rng.gen_range(0..list.len())]
}

fn new_sid(rng: &mut StdRng) -> Sid16 {
    let mut sid = [0u8; 16];
    rng.fill(&mut sid);
    sid
}

fn price_of(body: &str, media: u8) -> i64 {
    if media > 0 {
        MMS_PRICE
    } else {
        SMS_SEGMENT_PRICE * i64::from(segments(body))
    }
}

/// A customer's text to the company, received at `t`.
fn inbound(rng: &mut StdRng, from: u32, to: u32, body: &'static str, media: u8, t: i64) -> GenText {
    GenText {
        sid: new_sid(rng),
        mms: media > 0,
        from,
        to,
        body,
        direction: Direction::Inbound,
        num_media: media,
        life: Life {
            created: t,
            sent: t,
            done: t,
            priced: t + rng.gen_range(5..180),
            outcome: Outcome::Received,
            price: price_of(body, media),
        },
    }
}

/// The company's text (`outbound-api`) created at `t`: mostly delivered,
/// a few undelivered (30003) or failed (30008).
fn outbound(
    rng: &mut StdRng,
    from: u32,
    to: u32,
    body: &'static str,
    media: u8,
    t: i64,
) -> GenText {
    let roll: f64 = rng.gen();
    let outcome = if roll < 0.94 {
        Outcome::Delivered
    } else if roll < 0.98 {
        Outcome::Undelivered
    } else {
        Outcome::Failed
    };
    let sent = t + rng.gen_range(0..3);
    let done = sent + rng.gen_range(1..25);
    let priced = match outcome {
        Outcome::Failed => sent,
        _ => done + rng.gen_range(30..600),
    };
    GenText {
        sid: new_sid(rng),
        mms: media > 0,
        from,
        to,
        body,
        direction: Direction::OutboundApi,
        num_media: media,
        life: Life {
            created: t,
            sent,
            done,
            priced,
            outcome,
            price: if outcome == Outcome::Failed {
                0
            } else {
                price_of(body, media)
            },
        },
    }
}

/// A conversation between a customer and one company number starting at
/// `t0`; messages after `until` are left out.
fn thread(
    rng: &mut StdRng,
    parties: &Parties,
    mms: bool,
    t0: i64,
    until: i64,
    out: &mut Vec<GenText>,
) {
    let (Some(customer), Some(company)) = (parties.customer(rng), parties.company(rng)) else {
        return;
    };
    let customer_first = rng.gen_bool(0.7);
    let len = rng.gen_range(1..=6);
    let mut t = t0;
    let mut customer_turn = customer_first;
    for k in 0..len {
        if t > until {
            return;
        }
        if customer_turn {
            let (body, media) = if mms && rng.gen_bool(0.15) {
                (pick(rng, CUSTOMER_MMS), rng.gen_range(1..=2))
            } else if k == 0 {
                (pick(rng, CUSTOMER_OPENERS), 0)
            } else {
                (pick(rng, CUSTOMER_REPLIES), 0)
            };
            out.push(inbound(rng, customer, company, body, media, t));
            if k == 0 && rng.gen_bool(0.3) {
                // The TwiML auto-reply, seconds later.
                let mut reply = outbound(rng, company, customer, AUTO_REPLY, 0, t + 1);
                reply.direction = Direction::OutboundReply;
                out.push(reply);
            }
        } else {
            let (body, media) = if mms && rng.gen_bool(0.08) {
                (pick(rng, BUSINESS_MMS), 1)
            } else if k == 0 {
                (pick(rng, BUSINESS_NOTICES), 0)
            } else {
                (pick(rng, BUSINESS_REPLIES), 0)
            };
            out.push(outbound(rng, company, customer, body, media, t));
        }
        customer_turn = !customer_turn;
        t += if rng.gen_bool(0.8) {
            rng.gen_range(20..900)
        } else {
            rng.gen_range(900..4 * 3_600)
        };
    }
}

/// A message between two of the company's numbers: Twilio keeps both the
/// sender's `outbound-api` record and the receiver's `inbound` one.
fn internal(rng: &mut StdRng, parties: &Parties, t: i64, out: &mut Vec<GenText>) {
    let n = parties.company.len();
    let a = rng.gen_range(0..n);
    let b = (a + rng.gen_range(1..n)) % n;
    let (from, to) = (parties.company[a], parties.company[b]);
    let body = pick(rng, INTERNAL);
    let mut sent = outbound(rng, from, to, body, 0, t);
    sent.life.outcome = Outcome::Delivered;
    let arrived = inbound(rng, from, to, body, 0, sent.life.sent);
    out.push(sent);
    out.push(arrived);
}

/// Characters of GSM 03.38's basic set (besides ASCII letters and digits).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà";
/// GSM 03.38's extension characters (two septets each).
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// SMS segments of `body`: 160 GSM-7 characters in one, 153 per segment
/// when concatenated; a body with other characters is sent as UCS-2 (70,
/// then 67 UTF-16 units per segment). An empty body is one segment.
pub(crate) fn segments(body: &str) -> u32 {
    let mut septets = 0usize;
    let mut gsm = true;
    for c in body.chars() {
        if c.is_ascii_alphanumeric() || GSM_BASIC.contains(c) {
            septets += 1;
        } else if GSM_EXTENDED.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    let (units, single, multi) = if gsm {
        (septets, 160, 153)
    } else {
        (body.encode_utf16().count(), 70, 67)
    };
    let count = if units <= single {
        1
    } else {
        units.div_ceil(multi)
    };
    count as u32
}

/// Whether `text` is a phone number Twilio can text: E.164 (`+` and 8 to
/// 15 digits, no leading zero), NANP numbers with valid area and exchange
/// codes.
pub(crate) fn is_phone_number(text: &str) -> bool {
    let Some(digits) = text.strip_prefix('+') else {
        return false;
    };
    let bytes = digits.as_bytes();
    if !(8..=15).contains(&bytes.len()) || !bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if bytes[0] == b'0' {
        return false;
    }
    if bytes[0] == b'1' {
        return bytes.len() == 11 && bytes[1] >= b'2' && bytes[4] >= b'2';
    }
    true
}

/// Whether texts to `number` cannot be delivered (undelivered, 30003):
/// NANP numbers whose line is `555-01xx`, the range reserved for fiction.
pub(crate) fn unreachable(number: &str) -> bool {
    number.len() == 12 && number.starts_with("+1") && number[5..10] == *"55501"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_follow_gsm_and_ucs2_limits() {
        assert_eq!(segments(""), 1);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        assert_eq!(segments(&"€".repeat(80)), 1);
        assert_eq!(segments(&"€".repeat(81)), 2);
        assert_eq!(segments(&"é".repeat(70)), 1);
        assert_eq!(segments("ü👍"), 1);
        assert_eq!(segments(&"👍".repeat(35)), 1);
        assert_eq!(segments(&"👍".repeat(36)), 2);
    }

    #[test]
    fn phone_numbers_are_validated_like_twilio() {
        assert!(is_phone_number("+15085140320"));
        assert!(is_phone_number("+442079460123"));
        assert!(!is_phone_number("5085140320"));
        assert!(!is_phone_number("+1508514032"));
        assert!(!is_phone_number("+10085140320"));
        assert!(!is_phone_number("+1508abc0320"));
        assert!(!is_phone_number("+0123456789"));
        assert!(unreachable("+15085550142"));
        assert!(!unreachable("+15085140320"));
    }

    #[test]
    fn a_life_moves_from_queued_to_delivered_then_priced() {
        let life = Life {
            created: 100,
            sent: 101,
            done: 103,
            priced: 120,
            outcome: Outcome::Delivered,
            price: SMS_SEGMENT_PRICE,
        };
        let at = |t| life.state_at(t);
        assert_eq!(at(100).status, TextStatus::Queued);
        assert_eq!(at(100).date_sent, None);
        assert_eq!(at(101).status, TextStatus::Sent);
        assert_eq!(at(101).date_sent, Some(101));
        assert_eq!(at(103).status, TextStatus::Delivered);
        assert_eq!(at(103).price, None);
        assert_eq!(at(119).updated, 103);
        assert_eq!(at(120).price, Some(-790));
        assert_eq!(at(120).updated, 120);
        assert!(!life.settled_at(119));
        assert!(life.settled_at(120));
        let failed = Life {
            outcome: Outcome::Failed,
            ..life
        };
        assert_eq!(failed.state_at(101).status, TextStatus::Failed);
        assert_eq!(failed.state_at(101).error, Some(FAILED));
        assert_eq!(failed.events().len(), 2);
    }
}
