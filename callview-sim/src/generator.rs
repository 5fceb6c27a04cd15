//! Deterministic generation of call trees: the account's "world" (numbers,
//! agents, customers) and the scenarios that produce calls.
//!
//! Every generated record is a [`Planned`]: its static fields ([`Rec`]) and
//! its whole [`Timeline`] (created, ringing, answered, ended, priced). The
//! account shows a record's state at its current time with
//! [`Timeline::state_at`], so history and live traffic use the same code.

use std::collections::HashMap;

use callview_core::call::{CallDirection, CallStatus};
use rand::rngs::StdRng;
use rand::Rng;

/// The account's SIP domain.
pub(crate) const SIP_DOMAIN: &str = "acme.sip.twilio.com";

/// CNAM values; index 0 means none.
pub(crate) const CALLER_NAMES: &[&str] = &[
    "",
    "WIRELESS CALLER",
    "SMITH JOHN",
    "GARCIA MARIA",
    "NGUYEN LINH",
    "OBRIEN PATRICK",
    "ACME PLUMBING",
    "BOSTON MA",
    "LOWELL MA",
    "CHEN WEI",
    "JOHNSON ROBERT",
    "PATEL PRIYA",
];

/// `answered_by` values; index 0 means none.
pub(crate) const ANSWERED_BY: &[&str] = &["", "human", "machine_start", "unknown"];

/// Caller-ID values Twilio shows for withheld numbers.
const ANONYMOUS: &[&str] = &[
    "anonymous",
    "+266696687",
    "restricted",
    "Anonymous",
    "+7378742833",
    "unknown",
];

/// The company's numbers: E.164 and friendly name.
const COMPANY_NUMBERS: &[(&str, &str)] = &[
    ("+19788447773", "Main line"),
    ("+16179330104", "Support"),
    ("+15083211188", "Sales"),
];

const NANP_AREAS: &[u16] = &[
    978, 617, 508, 781, 857, 339, 413, 774, 603, 401, 212, 646, 415, 312, 305, 713, 206, 303, 404,
    702,
];

/// Prices per started minute, in 1/100 000 USD.
const RATE_INBOUND: u32 = 850;
const RATE_OUTBOUND_US: u32 = 1_400;
const RATE_OUTBOUND_INTL: u32 = 4_600;
const RATE_SIP: u32 = 400;

/// A SplitMix64 step: a good 64-bit mix, used for derived identifiers.
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 16 bytes of a generated SID (`CA` + their 32 hex digits).
pub(crate) type Sid16 = [u8; 16];

/// 32 lowercase hex digits.
pub(crate) fn hex16(bytes: &Sid16) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(32);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A 32-hex-digit identifier derived from `seed` and `salt`.
pub(crate) fn derived_hex(seed: u64, salt: u64) -> String {
    let a = splitmix64(seed ^ salt.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let b = splitmix64(a ^ salt);
    format!("{a:016x}{b:016x}")
}

/// A call status, one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Queued,
    Ringing,
    InProgress,
    Completed,
    Busy,
    Failed,
    NoAnswer,
    Canceled,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Ringing => "ringing",
            Self::InProgress => "in-progress",
            Self::Completed => "completed",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::NoAnswer => "no-answer",
            Self::Canceled => "canceled",
        }
    }

    pub(crate) fn to_call(self) -> CallStatus {
        CallStatus::parse(self.as_str())
    }
}

/// A call direction, one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Inbound,
    OutboundApi,
    OutboundDial,
}

impl Dir {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::OutboundApi => "outbound-api",
            Self::OutboundDial => "outbound-dial",
        }
    }

    pub(crate) fn to_call(self) -> CallDirection {
        CallDirection::parse(self.as_str())
    }
}

/// Interned endpoint strings (phone numbers, SIP URIs, identities).
#[derive(Debug, Default)]
pub(crate) struct Pool {
    items: Vec<Box<str>>,
    index: HashMap<Box<str>, u32>,
}

impl Pool {
    pub(crate) fn intern(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.index.get(text) {
            return id;
        }
        let id = u32::try_from(self.items.len()).unwrap_or(u32::MAX);
        self.items.push(text.into());
        self.index.insert(text.into(), id);
        id
    }

    pub(crate) fn get(&self, id: u32) -> &str {
        self.items.get(id as usize).map(|s| &**s).unwrap_or("")
    }
}

/// Twilio's `*_formatted` value for a raw endpoint: NANP numbers as
/// `(978) 844-7773`, anything else as is.
pub(crate) fn formatted(raw: &str) -> String {
    let plain = raw
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '(' | ')' | '-' | ' ' | '.'));
    if plain {
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        let national = match digits.len() {
            10 if !raw.starts_with('+') => Some(&digits[..]),
            11 if digits.starts_with('1') => Some(&digits[1..]),
            _ => None,
        };
        if let Some(n) = national {
            return format!("({}) {}-{}", &n[..3], &n[3..6], &n[6..]);
        }
    }
    raw.to_owned()
}

/// One of the company's numbers.
#[derive(Clone, Debug)]
pub(crate) struct OwnedNumber {
    pub(crate) pool_id: u32,
    pub(crate) e164: &'static str,
    pub(crate) friendly_name: &'static str,
    pub(crate) sid: String,
    pub(crate) created: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CustomerKind {
    Nanp,
    International,
    Anonymous,
}

#[derive(Clone, Copy, Debug)]
struct Customer {
    /// The E.164 number's pool id (unused for anonymous callers).
    number: u32,
    kind: CustomerKind,
    /// Index into [`CALLER_NAMES`].
    caller_name: u8,
    /// Rate of a call to this customer.
    rate: u32,
}

/// Everything calls are made of.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) pool: Pool,
    pub(crate) numbers: Vec<OwnedNumber>,
    customers: Vec<Customer>,
    anonymous: Vec<u32>,
    dispatchers: Vec<u32>,
    clients: Vec<u32>,
    forwarder: u32,
}

impl World {
    /// The account's numbers, agents and a customer pool of about
    /// `calls / 10` customers.
    pub(crate) fn build(rng: &mut StdRng, seed: u64, calls: usize, now: i64) -> World {
        let mut pool = Pool::default();
        let numbers = COMPANY_NUMBERS
            .iter()
            .enumerate()
            .map(|(i, (e164, friendly_name))| OwnedNumber {
                pool_id: pool.intern(e164),
                e164,
                friendly_name,
                sid: format!("PN{}", derived_hex(seed, 0x504E + i as u64)),
                created: now - 86_400 * rng.gen_range(200..900),
            })
            .collect();
        let anonymous = ANONYMOUS.iter().map(|a| pool.intern(a)).collect();
        let dispatchers = ["dispatcher", "alice", "bob"]
            .iter()
            .map(|user| pool.intern(&format!("sip:{user}@{SIP_DOMAIN}")))
            .collect();
        let clients = ["alice", "bob", "carol"]
            .iter()
            .map(|user| pool.intern(&format!("client:{user}")))
            .collect();
        let forwarder = pool.intern("+19785550148");
        let count = (calls / 10).max(12);
        let mut customers = Vec::with_capacity(count);
        for i in 0..count {
            let roll: f64 = rng.gen();
            let kind = if i == 0 || roll < 0.82 {
                CustomerKind::Nanp
            } else if roll < 0.96 {
                CustomerKind::International
            } else {
                CustomerKind::Anonymous
            };
            let (number, rate) = match kind {
                CustomerKind::Nanp => (nanp_number(rng), RATE_OUTBOUND_US),
                CustomerKind::International => (international_number(rng), RATE_OUTBOUND_INTL),
                CustomerKind::Anonymous => (String::new(), RATE_OUTBOUND_US),
            };
            let caller_name = if kind == CustomerKind::Nanp && rng.gen_bool(0.3) {
                rng.gen_range(1..CALLER_NAMES.len()) as u8
            } else {
                0
            };
            customers.push(Customer {
                number: pool.intern(&number),
                kind,
                caller_name,
                rate,
            });
        }
        World {
            pool,
            numbers,
            customers,
            anonymous,
            dispatchers,
            clients,
            forwarder,
        }
    }
}

impl World {
    /// The pool ids of the customers who have a number (who can text), in
    /// the order they were generated.
    pub(crate) fn texting_customers(&self) -> Vec<u32> {
        self.customers
            .iter()
            .filter(|c| c.kind != CustomerKind::Anonymous)
            .map(|c| c.number)
            .collect()
    }
}

fn nanp_number(rng: &mut StdRng) -> String {
    let area = NANP_AREAS[rng.gen_range(0..NANP_AREAS.len())];
    let mut exchange: u16 = rng.gen_range(200..1000);
    if exchange % 100 == 11 {
        exchange += 1;
    }
    let line: u16 = rng.gen_range(0..10_000);
    format!("+1{area}{exchange}{line:04}")
}

fn international_number(rng: &mut StdRng) -> String {
    match rng.gen_range(0..7) {
        0 => format!("+442079460{:03}", rng.gen_range(0..1000)),
        1 => format!("+447700900{:03}", rng.gen_range(0..1000)),
        2 => format!("+331{:08}", rng.gen_range(40_000_000..50_000_000)),
        3 => format!("+336{:08}", rng.gen_range(10_000_000..99_999_999)),
        4 => format!("+6129{:07}", rng.gen_range(1_000_000..9_999_999)),
        5 => format!("+4930{:08}", rng.gen_range(20_000_000..99_999_999)),
        _ => format!("+5255{:08}", rng.gen_range(10_000_000..99_999_999)),
    }
}

/// A record's whole life: when it is created, rings, is answered, ends, and
/// when its price appears.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeline {
    pub(crate) created: i64,
    /// When `start_time` is set (ringing begins); `None` for a call never dialled.
    pub(crate) start: Option<i64>,
    pub(crate) answer: Option<i64>,
    pub(crate) end: i64,
    pub(crate) final_status: Status,
    /// A call that did not connect reports duration `0` (else null).
    pub(crate) missed_zero: bool,
    /// Price per started minute in 1/100 000 USD; 0 = never priced.
    pub(crate) rate: u32,
    /// Seconds after the end until the price is filled in.
    pub(crate) price_delay: u32,
}

/// The variable fields of a record at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) status: Status,
    pub(crate) start: Option<i64>,
    pub(crate) end: Option<i64>,
    pub(crate) duration: Option<u32>,
    pub(crate) price: Option<i32>,
    pub(crate) updated: i64,
}

impl Timeline {
    /// The record as Twilio would show it at `t` (`t >= created`).
    pub(crate) fn state_at(&self, t: i64) -> State {
        let mut state = State {
            status: Status::Queued,
            start: None,
            end: None,
            duration: None,
            price: None,
            updated: self.created,
        };
        if let Some(start) = self.start.filter(|s| t >= *s) {
            state.status = Status::Ringing;
            state.start = Some(start);
            state.updated = state.updated.max(start);
        }
        if let Some(answer) = self.answer.filter(|a| t >= *a && t < self.end) {
            state.status = Status::InProgress;
            state.updated = state.updated.max(answer);
        }
        if t >= self.end {
            state.status = self.final_status;
            state.updated = state.updated.max(self.end);
            if self.final_status == Status::Completed {
                let duration = (self.end - self.start.unwrap_or(self.end)).max(0) as u32;
                state.end = Some(self.end);
                state.duration = Some(duration);
                let due = self.end + i64::from(self.price_delay);
                if self.rate > 0 && t >= due {
                    let minutes = duration.div_ceil(60).max(1);
                    state.price = Some(-((minutes * self.rate) as i32));
                    state.updated = due;
                }
            } else {
                state.duration = self.missed_zero.then_some(0);
            }
        }
        state
    }

    /// Whether nothing changes any more after `t`.
    pub(crate) fn settled_at(&self, t: i64) -> bool {
        t >= self.end
            && (self.final_status != Status::Completed
                || self.rate == 0
                || t >= self.end + i64::from(self.price_delay))
    }
}

/// The fields of a generated record, compact. The start time lives in the
/// account's key.
#[derive(Clone, Debug)]
pub(crate) struct Rec {
    pub(crate) parent: Option<Sid16>,
    pub(crate) from: u32,
    pub(crate) to: u32,
    pub(crate) forwarded_from: Option<u32>,
    /// Index into [`World::numbers`] (`phone_number_sid`).
    pub(crate) number: Option<u8>,
    pub(crate) direction: Dir,
    pub(crate) answered_by: u8,
    pub(crate) caller_name: u8,
    pub(crate) recordings: u8,
    pub(crate) queue_time: u32,
    pub(crate) created: i64,
    pub(crate) status: Status,
    pub(crate) updated: i64,
    pub(crate) end: Option<i64>,
    pub(crate) duration: Option<u32>,
    pub(crate) price: Option<i32>,
}

impl Rec {
    /// Takes the variable fields from `state`.
    pub(crate) fn apply(&mut self, state: &State) {
        self.status = state.status;
        self.updated = state.updated;
        self.end = state.end;
        self.duration = state.duration;
        self.price = state.price;
    }
}

/// A generated record with its timeline.
#[derive(Clone, Debug)]
pub(crate) struct Planned {
    pub(crate) sid: Sid16,
    pub(crate) rec: Rec,
    pub(crate) tl: Timeline,
}

/// The call shapes the generator produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scenario {
    InboundAnswered,
    InboundMissed,
    ForwardToSip,
    SimulRing,
    SipDialOut,
    SipViaCompanyNumber,
    OutboundApi,
    ClientCall,
    Transfer,
}

const WEIGHTS: &[(Scenario, u32)] = &[
    (Scenario::InboundAnswered, 18),
    (Scenario::InboundMissed, 10),
    (Scenario::ForwardToSip, 24),
    (Scenario::SimulRing, 10),
    (Scenario::SipDialOut, 10),
    (Scenario::SipViaCompanyNumber, 7),
    (Scenario::OutboundApi, 10),
    (Scenario::ClientCall, 8),
    (Scenario::Transfer, 3),
];

/// The most records one scenario produces.
pub(crate) const MAX_RECORDS_PER_SCENARIO: usize = 4;

/// Choices a caller can impose on the next scenario (live traffic).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Force {
    pub(crate) answered: Option<bool>,
    pub(crate) talk: Option<i64>,
    pub(crate) queue_ms: Option<u32>,
    pub(crate) price_delay: Option<u32>,
}

/// Generates scenarios with one RNG.
pub(crate) struct Gen<'a> {
    pub(crate) rng: &'a mut StdRng,
    pub(crate) world: &'a mut World,
    pub(crate) force: Force,
}

impl Gen<'_> {
    /// A scenario by weight; only single-record ones when `single`.
    pub(crate) fn pick(&mut self, single: bool) -> Scenario {
        if single {
            return match self.rng.gen_range(0..3) {
                0 => Scenario::InboundAnswered,
                1 => Scenario::InboundMissed,
                _ => Scenario::OutboundApi,
            };
        }
        let total: u32 = WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.gen_range(0..total);
        for (scenario, weight) in WEIGHTS {
            if roll < *weight {
                return *scenario;
            }
            roll -= weight;
        }
        Scenario::InboundAnswered
    }

    /// The records of one scenario whose root is created at `t0`.
    pub(crate) fn scenario(&mut self, scenario: Scenario, t0: i64) -> Vec<Planned> {
        match scenario {
            Scenario::InboundAnswered => self.inbound_answered(t0),
            Scenario::InboundMissed => self.inbound_missed(t0),
            Scenario::ForwardToSip => self.forward_to_sip(t0, false),
            Scenario::Transfer => self.forward_to_sip(t0, true),
            Scenario::SimulRing => self.simul_ring(t0),
            Scenario::SipDialOut => self.sip_dial_out(t0),
            Scenario::SipViaCompanyNumber => self.sip_via_company_number(t0),
            Scenario::OutboundApi => self.outbound_api(t0),
            Scenario::ClientCall => self.client_call(t0),
        }
    }

    // ----- building blocks -------------------------------------------------

    fn leg(
        &mut self,
        parent: Option<Sid16>,
        from: u32,
        to: u32,
        direction: Dir,
        created: i64,
    ) -> Planned {
        let price_delay = self
            .force
            .price_delay
            .unwrap_or_else(|| self.rng.gen_range(45..600));
        Planned {
            sid: self.rng.gen(),
            rec: Rec {
                parent,
                from,
                to,
                forwarded_from: None,
                number: None,
                direction,
                answered_by: 0,
                caller_name: 0,
                recordings: 0,
                queue_time: 0,
                created,
                status: Status::Queued,
                updated: created,
                end: None,
                duration: None,
                price: None,
            },
            tl: Timeline {
                created,
                start: Some(created),
                answer: None,
                end: created,
                final_status: Status::Completed,
                missed_zero: false,
                rate: 0,
                price_delay,
            },
        }
    }

    /// Rings from the leg's start for `ring` seconds, then talks (answered)
    /// or ends with a missed status.
    fn ring_then(&mut self, leg: &mut Planned, ring: i64, answered: bool, rate: u32) {
        let start = leg.tl.start.unwrap_or(leg.tl.created);
        if answered {
            let talk = self.talk();
            leg.tl.answer = Some(start + ring);
            leg.tl.end = start + ring + talk;
            leg.tl.final_status = Status::Completed;
            leg.tl.rate = rate;
        } else {
            self.miss(leg, start + ring);
        }
    }

    fn miss(&mut self, leg: &mut Planned, end: i64) {
        let roll: f64 = self.rng.gen();
        let start = leg.tl.start.unwrap_or(leg.tl.created);
        leg.tl.answer = None;
        leg.tl.rate = 0;
        leg.tl.missed_zero = self.rng.gen_bool(0.5);
        if roll < 0.2 {
            leg.tl.final_status = Status::Busy;
            leg.tl.end = start + self.rng.gen_range(0..3);
        } else {
            leg.tl.final_status = Status::NoAnswer;
            leg.tl.end = end;
        }
    }

    fn answered(&mut self, p: f64) -> bool {
        self.force.answered.unwrap_or_else(|| self.rng.gen_bool(p))
    }

    /// Talk time in seconds: log-normal around 2.5 minutes.
    fn talk(&mut self) -> i64 {
        if let Some(talk) = self.force.talk {
            return talk;
        }
        let u1: f64 = self.rng.gen_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.gen();
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (150.0 * (0.9 * normal).exp()).clamp(8.0, 3_600.0) as i64
    }

    /// A customer index, skewed so that some customers call often.
    fn customer(&mut self) -> usize {
        let n = self.world.customers.len();
        let u: f64 = self.rng.gen();
        ((u.powf(1.6) * n as f64) as usize).min(n - 1)
    }

    /// A customer with a real number (not anonymous).
    fn callable_customer(&mut self) -> usize {
        for _ in 0..16 {
            let c = self.customer();
            if self.world.customers[c].kind != CustomerKind::Anonymous {
                return c;
            }
        }
        0
    }

    /// The caller-ID of an inbound call from customer `c`.
    fn caller_id(&mut self, c: usize) -> u32 {
        let customer = self.world.customers[c];
        if customer.kind == CustomerKind::Anonymous {
            let i = self.rng.gen_range(0..self.world.anonymous.len());
            self.world.anonymous[i]
        } else {
            customer.number
        }
    }

    /// How a dialled number is written: E.164 mostly, other formats for NANP.
    fn dialled(&mut self, c: usize) -> u32 {
        let customer = self.world.customers[c];
        if customer.kind != CustomerKind::Nanp {
            return customer.number;
        }
        let e164 = self.world.pool.get(customer.number).to_owned();
        let national = &e164[2..];
        let text = match self.rng.gen_range(0..100) {
            0..=69 => return customer.number,
            70..=79 => national.to_owned(),
            80..=89 => format!(
                "({}) {}-{}",
                &national[..3],
                &national[3..6],
                &national[6..]
            ),
            _ => e164[1..].to_owned(),
        };
        self.world.pool.intern(&text)
    }

    /// The customer's number as a SIP URI on the account's domain.
    fn sip_phone(&mut self, c: usize) -> u32 {
        let customer = self.world.customers[c];
        let e164 = self.world.pool.get(customer.number).to_owned();
        let nanp = customer.kind == CustomerKind::Nanp;
        let text = match self.rng.gen_range(0..100) {
            0..=39 => format!("sip:{e164}@{SIP_DOMAIN};transport=udp"),
            40..=69 => format!("sip:{e164}@{SIP_DOMAIN}"),
            70..=84 if nanp => format!("sip:{}@{SIP_DOMAIN}", &e164[1..]),
            85..=99 if nanp => format!("sip:{}@{SIP_DOMAIN};transport=tcp", &e164[2..]),
            _ => format!("sip:{e164}@{SIP_DOMAIN};transport=tls"),
        };
        self.world.pool.intern(&text)
    }

    /// A company number index, the main line most often.
    fn company(&mut self) -> usize {
        match self.rng.gen_range(0..100) {
            0..=59 => 0,
            60..=84 => 1,
            _ => 2,
        }
        .min(self.world.numbers.len() - 1)
    }

    /// A SIP dispatcher, sometimes written with a transport parameter.
    fn dispatcher(&mut self) -> u32 {
        let i = match self.rng.gen_range(0..10) {
            0..=5 => 0,
            6 | 7 => 1,
            _ => 2,
        };
        let id = self.world.dispatchers[i];
        if self.rng.gen_bool(0.1) {
            let text = format!("{};transport=udp", self.world.pool.get(id));
            self.world.pool.intern(&text)
        } else {
            id
        }
    }

    fn client(&mut self) -> u32 {
        let i = self.rng.gen_range(0..self.world.clients.len());
        self.world.clients[i]
    }

    /// An inbound parent from customer `c` to a company number, answered by
    /// Twilio after a second (it then runs TwiML).
    fn inbound_parent(&mut self, c: usize, t0: i64) -> (Planned, usize) {
        let n = self.company();
        let from = self.caller_id(c);
        let to = self.world.numbers[n].pool_id;
        let mut parent = self.leg(None, from, to, Dir::Inbound, t0);
        parent.rec.number = Some(n as u8);
        parent.rec.caller_name = self.world.customers[c].caller_name;
        if self.rng.gen_bool(0.04) {
            parent.rec.forwarded_from = Some(self.world.forwarder);
        }
        parent.tl.answer = Some(t0 + 1);
        parent.tl.rate = RATE_INBOUND;
        (parent, n)
    }

    // ----- scenarios -------------------------------------------------------

    fn inbound_answered(&mut self, t0: i64) -> Vec<Planned> {
        let c = self.customer();
        let (mut call, _) = self.inbound_parent(c, t0);
        let ring = self.rng.gen_range(1..4);
        self.ring_then(&mut call, ring, true, RATE_INBOUND);
        if self.rng.gen_bool(0.2) {
            call.rec.recordings = 1;
        }
        vec![call]
    }

    fn inbound_missed(&mut self, t0: i64) -> Vec<Planned> {
        let c = self.customer();
        let (mut call, _) = self.inbound_parent(c, t0);
        call.tl.answer = None;
        call.tl.rate = 0;
        call.tl.missed_zero = self.rng.gen_bool(0.5);
        match self.rng.gen_range(0..100) {
            0..=44 => {
                call.tl.final_status = Status::Canceled;
                call.tl.end = t0 + self.rng.gen_range(3..26);
            }
            45..=79 => {
                call.tl.final_status = Status::NoAnswer;
                call.tl.end = t0 + self.rng.gen_range(20..41);
            }
            _ => {
                call.tl.final_status = Status::Busy;
                call.tl.end = t0 + self.rng.gen_range(0..3);
            }
        }
        vec![call]
    }

    /// A customer calls, the IVR forwards to a SIP dispatcher; with
    /// `transfer`, the dispatcher then brings in a colleague (a grandchild).
    fn forward_to_sip(&mut self, t0: i64, transfer: bool) -> Vec<Planned> {
        let c = self.customer();
        let (mut parent, n) = self.inbound_parent(c, t0);
        let child_at = t0 + 1 + self.rng.gen_range(2..16);
        let from = if self.rng.gen_bool(0.7) {
            parent.rec.from
        } else {
            self.world.numbers[n].pool_id
        };
        let to = self.dispatcher();
        let mut child = self.leg(Some(parent.sid), from, to, Dir::OutboundDial, child_at);
        let answered = transfer || self.answered(0.75);
        let ring = self.rng.gen_range(3..21);
        self.ring_then(&mut child, ring, answered, RATE_SIP);
        let mut calls = Vec::with_capacity(3);
        if transfer {
            let answer = child.tl.answer.unwrap_or(child_at);
            let talk = (child.tl.end - answer).max(20);
            let g_at = answer + self.rng.gen_range(10..(talk / 2).max(11));
            let g_from = if self.rng.gen_bool(0.5) {
                self.world.numbers[n].pool_id
            } else {
                parent.rec.from
            };
            let g_to = if self.rng.gen_bool(0.5) {
                self.world.dispatchers[1]
            } else {
                self.client()
            };
            let mut grandchild = self.leg(Some(child.sid), g_from, g_to, Dir::OutboundDial, g_at);
            let ring = self.rng.gen_range(3..11);
            let answered = self.answered(0.8);
            self.ring_then(&mut grandchild, ring, answered, RATE_SIP);
            child.tl.end = child
                .tl
                .end
                .max(grandchild.tl.end + self.rng.gen_range(1..4));
            calls.push(grandchild);
        }
        parent.tl.end = if child.tl.final_status == Status::Completed {
            child.tl.end + self.rng.gen_range(0..3)
        } else {
            child.tl.end + self.rng.gen_range(5..41)
        };
        if answered && self.rng.gen_bool(0.15) {
            parent.rec.recordings = 1 + u8::from(self.rng.gen_bool(0.2));
        }
        calls.push(child);
        calls.push(parent);
        calls
    }

    /// A customer calls; two or three agents ring at once; one answers and
    /// the others are canceled, or nobody answers.
    fn simul_ring(&mut self, t0: i64) -> Vec<Planned> {
        let c = self.customer();
        let (mut parent, _) = self.inbound_parent(c, t0);
        let ring_at = t0 + 1 + self.rng.gen_range(1..9);
        let mut agents: Vec<u32> = self
            .world
            .clients
            .iter()
            .chain(self.world.dispatchers.iter())
            .copied()
            .collect();
        let k = self.rng.gen_range(2..4);
        let mut legs = Vec::with_capacity(k + 1);
        for _ in 0..k {
            let pick = self.rng.gen_range(0..agents.len());
            let to = agents.swap_remove(pick);
            let created = ring_at + i64::from(self.rng.gen_bool(0.5));
            let leg = self.leg(
                Some(parent.sid),
                parent.rec.from,
                to,
                Dir::OutboundDial,
                created,
            );
            legs.push(leg);
        }
        if self.answered(0.8) {
            let winner = self.rng.gen_range(0..k);
            let ring = self.rng.gen_range(4..19);
            let answer_at = ring_at + ring + 1;
            for (i, leg) in legs.iter_mut().enumerate() {
                if i == winner {
                    let talk = self.talk();
                    leg.tl.answer = Some(answer_at);
                    leg.tl.end = answer_at + talk;
                    leg.tl.rate = RATE_SIP;
                } else {
                    leg.tl.final_status = Status::Canceled;
                    leg.tl.end = answer_at;
                    leg.tl.missed_zero = self.rng.gen_bool(0.5);
                }
            }
            parent.tl.end = legs[winner].tl.end + self.rng.gen_range(0..3);
            if self.rng.gen_bool(0.1) {
                legs[winner].rec.recordings = 1;
            }
        } else {
            for leg in legs.iter_mut() {
                leg.tl.final_status = Status::NoAnswer;
                leg.tl.end = ring_at + 31;
                leg.tl.missed_zero = self.rng.gen_bool(0.5);
            }
            parent.tl.end = ring_at + 31 + self.rng.gen_range(5..41);
        }
        legs.push(parent);
        legs
    }

    /// A parent whose caller is internal (a SIP phone or a Voice SDK client)
    /// and an `outbound-dial` child from a company number to customer `c`.
    fn internal_parent_with_dial(
        &mut self,
        from: u32,
        to: u32,
        c: usize,
        t0: i64,
        rate: u32,
    ) -> Vec<Planned> {
        let mut parent = self.leg(None, from, to, Dir::Inbound, t0);
        parent.tl.answer = Some(t0);
        parent.tl.rate = rate;
        let n = self.company();
        let dial_from = self.world.numbers[n].pool_id;
        let dial_to = self.dialled(c);
        let mut child = self.leg(
            Some(parent.sid),
            dial_from,
            dial_to,
            Dir::OutboundDial,
            t0 + 1,
        );
        let answered = self.answered(0.78);
        let ring = self.rng.gen_range(4..25);
        let rate = self.world.customers[c].rate;
        self.ring_then(&mut child, ring, answered, rate);
        parent.tl.end = child.tl.end + self.rng.gen_range(0..3);
        if answered && self.rng.gen_bool(0.1) {
            parent.rec.recordings = 1;
        }
        vec![child, parent]
    }

    /// A dispatcher dials a customer from a SIP phone: `to` is the customer
    /// as a SIP URI; sometimes Twilio then dials the number as a child leg.
    fn sip_dial_out(&mut self, t0: i64) -> Vec<Planned> {
        let c = self.callable_customer();
        let from = self.dispatcher();
        let to = self.sip_phone(c);
        if self.rng.gen_bool(0.45) {
            return self.internal_parent_with_dial(from, to, c, t0, RATE_SIP);
        }
        let mut call = self.leg(None, from, to, Dir::Inbound, t0);
        let answered = self.answered(0.8);
        let ring = self.rng.gen_range(3..21);
        let rate = self.world.customers[c].rate;
        self.ring_then(&mut call, ring, answered, rate);
        vec![call]
    }

    /// A dispatcher's SIP phone calls the company number, whose TwiML dials
    /// the customer: an internal parent with the customer on the child.
    fn sip_via_company_number(&mut self, t0: i64) -> Vec<Planned> {
        let c = self.callable_customer();
        let from = self.dispatcher();
        let n = self.company();
        let e164 = self.world.numbers[n].e164;
        let to = if self.rng.gen_bool(0.7) {
            self.world.numbers[n].pool_id
        } else {
            self.world.pool.intern(&format!("sip:{e164}@{SIP_DOMAIN}"))
        };
        self.internal_parent_with_dial(from, to, c, t0, RATE_SIP)
    }

    /// A call created through the REST API from a company number.
    fn outbound_api(&mut self, t0: i64) -> Vec<Planned> {
        let c = self.callable_customer();
        let n = self.company();
        let from = self.world.numbers[n].pool_id;
        let to = if self.rng.gen_bool(0.85) {
            self.world.customers[c].number
        } else {
            self.dialled(c)
        };
        let mut call = self.leg(None, from, to, Dir::OutboundApi, t0);
        let queue_ms = self
            .force
            .queue_ms
            .unwrap_or_else(|| self.rng.gen_range(0..3_000));
        call.rec.queue_time = queue_ms;
        let start = t0 + i64::from(queue_ms / 1_000);
        call.tl.start = Some(start);
        let amd = self.rng.gen_bool(0.35);
        let rate = self.world.customers[c].rate;
        let roll = if self.force.answered == Some(true) {
            0
        } else {
            self.rng.gen_range(0..100)
        };
        match roll {
            0..=64 => {
                let ring = self.rng.gen_range(5..26);
                self.ring_then(&mut call, ring, true, rate);
                if amd {
                    call.rec.answered_by = match self.rng.gen_range(0..100) {
                        0..=69 => 1,
                        70..=94 => 2,
                        _ => 3,
                    };
                }
            }
            65..=79 => {
                call.tl.final_status = Status::NoAnswer;
                call.tl.end = start + self.rng.gen_range(25..36);
                call.tl.missed_zero = self.rng.gen_bool(0.5);
            }
            80..=88 => {
                call.tl.final_status = Status::Busy;
                call.tl.end = start + self.rng.gen_range(1..4);
                call.tl.missed_zero = self.rng.gen_bool(0.5);
            }
            89..=92 => {
                // Never dialled: no start time at all.
                call.tl.start = None;
                call.tl.final_status = Status::Failed;
                call.tl.end = t0 + self.rng.gen_range(1..4);
            }
            _ => {
                call.tl.final_status = Status::Canceled;
                call.tl.end = start + self.rng.gen_range(3..16);
                call.tl.missed_zero = self.rng.gen_bool(0.5);
            }
        }
        vec![call]
    }

    /// A Voice SDK agent (`client:`) calls a customer (through a child leg,
    /// or directly), or another agent.
    fn client_call(&mut self, t0: i64) -> Vec<Planned> {
        let from = self.client();
        let roll = self.rng.gen_range(0..100);
        if roll < 15 {
            let mut to = self.client();
            if to == from {
                to = self.world.dispatchers[0];
            }
            let mut call = self.leg(None, from, to, Dir::Inbound, t0);
            let answered = self.answered(0.7);
            let ring = self.rng.gen_range(2..15);
            self.ring_then(&mut call, ring, answered, RATE_SIP);
            return vec![call];
        }
        let c = self.callable_customer();
        let to = self.world.customers[c].number;
        if roll < 75 {
            return self.internal_parent_with_dial(from, to, c, t0, RATE_SIP);
        }
        let mut call = self.leg(None, from, to, Dir::Inbound, t0);
        let answered = self.answered(0.75);
        let ring = self.rng.gen_range(3..21);
        let rate = self.world.customers[c].rate;
        self.ring_then(&mut call, ring, answered, rate);
        vec![call]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_follows_twilio() {
        assert_eq!(formatted("+19788447773"), "(978) 844-7773");
        assert_eq!(formatted("9788447773"), "(978) 844-7773");
        assert_eq!(formatted("19788447773"), "(978) 844-7773");
        assert_eq!(formatted("(978) 844-7773"), "(978) 844-7773");
        assert_eq!(formatted("+442079460958"), "+442079460958");
        assert_eq!(formatted("+266696687"), "+266696687");
        assert_eq!(formatted("sip:alice@x"), "sip:alice@x");
    }

    #[test]
    fn timelines_progress() {
        let tl = Timeline {
            created: 100,
            start: Some(100),
            answer: Some(105),
            end: 165,
            final_status: Status::Completed,
            missed_zero: false,
            rate: 1_400,
            price_delay: 60,
        };
        assert_eq!(tl.state_at(100).status, Status::Ringing);
        assert_eq!(tl.state_at(110).status, Status::InProgress);
        let ended = tl.state_at(170);
        assert_eq!(ended.status, Status::Completed);
        assert_eq!(ended.duration, Some(65));
        assert_eq!(ended.price, None);
        assert!(!tl.settled_at(170));
        let priced = tl.state_at(225);
        assert_eq!(priced.price, Some(-2_800));
        assert_eq!(priced.updated, 225);
        assert!(tl.settled_at(225));
    }
}
