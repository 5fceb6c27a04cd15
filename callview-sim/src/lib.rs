//! # callview-sim
//!
//! A deterministic simulated Twilio account: the tests, the bench and the
//! server's demo (`callview simulate`) run against it.
//!
//! * [`SimulatedAccount`] generates realistic call traffic from a seed: a
//!   few company numbers, a SIP domain with dispatchers, Voice SDK agents,
//!   a pool of customers (NANP, international, anonymous), and the call
//!   shapes a small business sees: direct answers, missed calls, calls
//!   forwarded to a SIP dispatcher, simultaneous ring, dispatchers dialling
//!   out from SIP phones, API calls, `client:` calls and transfers. Calls of
//!   the last minutes are still ringing or in progress; [`SimulatedAccount::advance_to`]
//!   lets time pass (calls end, prices arrive later) and
//!   [`SimulatedAccount::tick`] adds new traffic.
//! * Recordings ([`SimulatedAccount::all_recordings`]): about half of the
//!   answered calls are recorded, on parent calls (`RecordVerb`,
//!   `OutboundAPI`, `StartCallRecordingAPI`) and on `<Dial>` legs
//!   (`DialVerb`), some in two parts, mono or dual-channel, priced. Each is
//!   created seconds after its call ends (a few arrive hours late and are
//!   listed only once the clock passes their `date_created`), stays
//!   `processing` (duration `-1`) for a minute or two, then `completed`; a
//!   few are deleted days later (404 from then on). Some have a legacy
//!   transcription (a voicemail-like text) and many a Voice Intelligence
//!   transcript: a customer/dispatcher dialogue, sentence by sentence. The
//!   audio is real: WAV (8 kHz mono PCM) and MP3 (MPEG-1 Layer III) of the
//!   recording's length with a speech-like tone ([`AudioFile`]), a third of
//!   them behind a storage redirect. [`SimConfig::media`] turns all of it
//!   off; [`SimulatedAccount::insert_recording`] and
//!   [`SimulatedAccount::delete_recording`] change recordings by hand.
//! * Text messages ([`SimulatedAccount::texts`], about one per four calls,
//!   [`SimConfig::texts`]): two-way threads between the customers who call
//!   and the company's numbers (`inbound` / `received`, answered
//!   `outbound-api` or by an automatic `outbound-reply`), a few messages
//!   between two company numbers, some MMS (`MM...`, one or two small PNG
//!   pictures, a third behind a storage redirect), delivery failures
//!   (`undelivered` 30003, `failed` 30008), segments and prices as Twilio
//!   bills them. Recent outbound texts are still `queued` or `sent` and move
//!   on with the clock, and [`SimulatedAccount::tick`] brings new inbound
//!   texts. [`SimulatedAccount::send_text`] validates a send as Twilio does
//!   (21602, 21617, 21211, 21606, 21610 for
//!   [`SimulatedAccount::unsubscribed_number`]), stores it `queued`, lets it
//!   become `sent` then `delivered`, and owes signed [`StatusCallback`]s,
//!   which a [`SimulatedTwilio`] POSTs from a background task.
//! * [`SimulatedTwilio`] shares one account behind a mutex and implements
//!   [`TwilioClient`](callview_core::TwilioClient) in process, serving every record
//!   through Twilio's wire form.
//! * [`router`] / [`serve`] speak Twilio's REST API over HTTP (paging,
//!   filters, error bodies, Basic auth, injected faults), the recordings'
//!   media and transcriptions included, the Messages API (list, fetch,
//!   media, send), and Voice Intelligence's `/v2`
//!   API on the same listener, so the real
//!   [`HttpTwilioClient`](callview_core::twilio::HttpTwilioClient) can be
//!   pointed at it (both its base URL and its intelligence base URL).
//!   [`SimulatedTwilio::storage_requests`] tells whether a client sent
//!   credentials to the storage that audio redirects point to.
//!
//! Same seed and same `now` give byte-identical calls, recordings,
//! transcripts, audio, texts and pictures.
//!
//! ```
//! use callview_sim::{SimConfig, SimulatedAccount};
//! let account = SimulatedAccount::new(SimConfig { calls: 200, ..SimConfig::default() });
//! assert_eq!(account.len(), 200);
//! assert_eq!(account.texts().len(), 50);
//! ```

mod account;
mod audio;
mod callbacks;
mod client;
mod generator;
mod media;
mod png;
mod query;
mod server;
mod speech;
mod texts;

use chrono::{DateTime, Utc};

pub use account::SimulatedAccount;
pub use audio::AudioFile;
pub use callbacks::{twilio_signature, StatusCallback, DEFAULT_AUTH_TOKEN};
pub use client::{SimulatedTwilio, StorageRequests};
pub use server::{router, serve, ServerOptions};
pub use texts::TextRefused;

/// How to generate a simulated account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Seed of every random choice: the same seed and `now` give the same calls.
    pub seed: u64,
    /// Number of call records present at `now`, child legs included.
    pub calls: usize,
    /// The history spreads over the last `days` days before `now`.
    pub days: u32,
    /// The simulated present (truncated to whole seconds). Calls of the last
    /// minutes before it are still live.
    pub now: DateTime<Utc>,
    /// The account's SID (`AC` + 32 hex digits).
    pub account_sid: String,
    /// Whether calls get recordings (and these transcripts and audio) and
    /// some texts are MMS with pictures; `true` by default. Recordings and
    /// texts inserted by hand are served either way.
    pub media: bool,
    /// Number of text messages present at `now`; `None` (the default): one
    /// per four calls. `Some(0)`: none.
    pub texts: Option<usize>,
}

impl Default for SimConfig {
    /// Seed 42, 2 000 calls (and 500 texts) over 30 days ending now, account
    /// SID from the seed.
    fn default() -> Self {
        Self::new(42, 2_000)
    }
}

impl SimConfig {
    /// `calls` records over the last 30 days ending now, the account SID
    /// derived from `seed` (see [`account_sid_for_seed`]).
    pub fn new(seed: u64, calls: usize) -> Self {
        Self {
            seed,
            calls,
            days: 30,
            now: Utc::now(),
            account_sid: account_sid_for_seed(seed),
            media: true,
            texts: None,
        }
    }
}

/// The account SID the simulator derives from a seed: `AC` + 32 lowercase
/// hex digits.
///
/// ```
/// let sid = callview_sim::account_sid_for_seed(42);
/// assert!(sid.starts_with("AC") && sid.len() == 34);
/// assert_eq!(sid, callview_sim::account_sid_for_seed(42));
/// ```
pub fn account_sid_for_seed(seed: u64) -> String {
    let a = generator::splitmix64(seed ^ 0xAC);
    let b = generator::splitmix64(a);
    format!("AC{a:016x}{b:016x}")
}
