//! What a call's `from` / `to` value is (`call-model.md` sections 1 and 2).
//!
//! Every value is classified as exactly one [`EndpointKind`] and given a
//! canonical form, used as the grouping key, and a display form. Phone
//! numbers are parsed with the `phonenumber` crate (libphonenumber's data),
//! relative to a configurable default region.

use std::collections::HashSet;
use std::fmt;

use phonenumber::country;
use phonenumber::Mode;

use crate::call::{Call, CallDirection};

/// The kind of a `from` / `to` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointKind {
    /// A phone number (`+19788447773`, `(978) 844-7773`, ...).
    Phone,
    /// A SIP URI whose user part is a phone number; treated as that phone.
    SipPhone,
    /// A SIP URI whose user part is not a phone number (`sip:dispatcher@...`).
    SipEndpoint,
    /// A Twilio Voice SDK identity (`client:alice`).
    Client,
    /// No caller ID: empty, `anonymous`, `restricted`, Twilio's sentinels.
    Anonymous,
    /// Anything else, kept as given.
    Other,
}

/// A classified endpoint: its kind and canonical form.
///
/// ```
/// use callview_core::endpoint::{EndpointKind, Normalizer};
/// let n = Normalizer::default();
/// let e = n.classify(Some("sip:+15085140320@acme.sip.twilio.com;transport=udp"));
/// assert_eq!(e.kind, EndpointKind::SipPhone);
/// assert_eq!(e.canonical, "+15085140320");
/// assert!(e.is_phone());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// What the value is.
    pub kind: EndpointKind,
    /// Canonical form: E.164 for phones (and sip-phones), the lowercased URI
    /// without parameters for SIP endpoints, `anonymous`, or the trimmed value.
    pub canonical: String,
}

/// The canonical key of anonymous callers.
pub const ANONYMOUS: &str = "anonymous";

/// Values Twilio and carriers use for a hidden caller ID.
const ANONYMOUS_WORDS: &[&str] = &[
    "anonymous",
    "restricted",
    "unknown",
    "private",
    "unavailable",
    "blocked",
];

/// Twilio's numeric sentinels for a hidden caller ID.
const ANONYMOUS_NUMBERS: &[&str] = &["+266696687", "+7378742833", "+2562533", "+86282452253"];

impl Endpoint {
    /// Whether this endpoint is a phone number (including a SIP URI carrying one).
    pub fn is_phone(&self) -> bool {
        matches!(self.kind, EndpointKind::Phone | EndpointKind::SipPhone)
    }

    /// The anonymous endpoint.
    pub fn anonymous() -> Self {
        Self {
            kind: EndpointKind::Anonymous,
            canonical: ANONYMOUS.to_owned(),
        }
    }
}

/// A region code that libphonenumber does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown region {0:?}: use a two-letter ISO 3166 code such as US or GB")]
pub struct UnknownRegion(pub String);

/// Reads and formats numbers relative to a default region.
///
/// ```
/// use callview_core::endpoint::Normalizer;
/// let n = Normalizer::default(); // region US
/// assert_eq!(n.canonical_phone("(978) 844-7773").as_deref(), Some("+19788447773"));
/// assert_eq!(n.display_key("+19788447773"), "+1 (978) 844-7773");
/// assert_eq!(n.display_key("+442079460958"), "+44 20 7946 0958");
/// let gb = Normalizer::new("GB").unwrap();
/// assert_eq!(gb.canonical_phone("020 7946 0958").as_deref(), Some("+442079460958"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Normalizer {
    region: country::Id,
}

impl fmt::Debug for Normalizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Normalizer({:?})", self.region)
    }
}

impl Default for Normalizer {
    fn default() -> Self {
        Self {
            region: country::Id::US,
        }
    }
}

impl Normalizer {
    /// A normalizer for the given default region (`US`, `GB`, ...).
    pub fn new(region: &str) -> Result<Self, UnknownRegion> {
        region
            .trim()
            .to_ascii_uppercase()
            .parse::<country::Id>()
            .map(|region| Self { region })
            .map_err(|_| UnknownRegion(region.to_owned()))
    }

    /// Classifies one `from` / `to` value. Never panics; `None` and empty
    /// values are anonymous.
    pub fn classify(&self, raw: Option<&str>) -> Endpoint {
        let text = raw.map(str::trim).unwrap_or("");
        if is_anonymous(text) {
            return Endpoint::anonymous();
        }
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") {
            return self.classify_sip(text);
        }
        if lower.starts_with("client:") {
            return Endpoint {
                kind: EndpointKind::Client,
                canonical: text.to_owned(),
            };
        }
        let phone_text = lower.strip_prefix("tel:").unwrap_or(text);
        if let Some(e164) = self.canonical_phone(phone_text) {
            if ANONYMOUS_NUMBERS.contains(&e164.as_str()) {
                return Endpoint::anonymous();
            }
            return Endpoint {
                kind: EndpointKind::Phone,
                canonical: e164,
            };
        }
        Endpoint {
            kind: EndpointKind::Other,
            canonical: text.to_owned(),
        }
    }

    fn classify_sip(&self, text: &str) -> Endpoint {
        let (scheme, rest) = text.split_once(':').unwrap_or(("sip", text));
        // Drop URI parameters (`;transport=udp`) and headers (`?X=1`).
        let rest = rest.split(['?']).next().unwrap_or(rest);
        let (user, host) = match rest.split_once('@') {
            Some((user, host)) => (user.split(';').next().unwrap_or(user), Some(host)),
            None => (rest.split(';').next().unwrap_or(rest), None),
        };
        if let Some(e164) = self.canonical_phone(user) {
            if ANONYMOUS_NUMBERS.contains(&e164.as_str()) {
                return Endpoint::anonymous();
            }
            return Endpoint {
                kind: EndpointKind::SipPhone,
                canonical: e164,
            };
        }
        if is_anonymous(user) && host.is_some() {
            return Endpoint::anonymous();
        }
        let host = host.map(|h| {
            let h = h.split(';').next().unwrap_or(h);
            // Drop the port: one endpoint, however it is reached. A port is
            // digits after the last colon of a host name or of a bracketed
            // IPv6 address (`[::1]:5060`); any other colon stays, so the
            // canonical form classifies to itself.
            match h.rsplit_once(':') {
                Some((name, port))
                    if !port.is_empty()
                        && port.chars().all(|c| c.is_ascii_digit())
                        && (!name.contains(':') || name.ends_with(']')) =>
                {
                    name
                }
                _ => h,
            }
        });
        let canonical = match host {
            Some(host) => format!("{}:{}@{}", scheme, user, host),
            None => format!("{}:{}", scheme, user),
        };
        Endpoint {
            kind: EndpointKind::SipEndpoint,
            canonical: canonical.to_ascii_lowercase(),
        }
    }

    /// The E.164 form of `text` when it is a phone number: digits with the
    /// usual separators (spaces, dots, dashes, parentheses), an optional
    /// leading `+` or international `00`/`011` prefix, 7 to 15 digits, that
    /// the phone-number library can parse.
    pub fn canonical_phone(&self, text: &str) -> Option<String> {
        let text = text.trim();
        if text.is_empty()
            || !text
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().\u{a0}/".contains(c))
            || text.chars().skip(1).any(|c| c == '+')
        {
            return None;
        }
        let digits = text.chars().filter(char::is_ascii_digit).count();
        if !(7..=15).contains(&digits) {
            return None;
        }
        // An international number is parsed without a default region: the
        // library otherwise strips a leading `1` of the national number as
        // if it were a NANP trunk prefix (`+33 1 42 68 53 00`).
        let international = international_form(text, self.region);
        let text = international.as_deref().unwrap_or(text);
        let region = (!text.starts_with('+')).then_some(self.region);
        let number = phonenumber::parse(region, text).ok()?;
        if number.national().value() == 0 {
            return None;
        }
        let e164 = number.format().mode(Mode::E164).to_string();
        let e164_digits = e164.len().saturating_sub(1);
        if !(7..=15).contains(&e164_digits) {
            return None;
        }
        // NANP numbers have ten national digits, the first of them 2-9.
        if number.code().value() == 1
            && (e164.len() != 12 || !matches!(e164.as_bytes()[2], b'2'..=b'9'))
        {
            return None;
        }
        Some(e164)
    }

    /// The display form of a classified endpoint: `+1 (978) 844-7773` for
    /// NANP numbers, the international format for other countries,
    /// `Anonymous`, or the canonical form for everything else.
    pub fn display(&self, endpoint: &Endpoint) -> String {
        match endpoint.kind {
            EndpointKind::Phone | EndpointKind::SipPhone => display_e164(&endpoint.canonical),
            EndpointKind::Anonymous => "Anonymous".to_owned(),
            _ => endpoint.canonical.clone(),
        }
    }

    /// The display form of a canonical key (as stored in `contacts.phone_number`).
    pub fn display_key(&self, key: &str) -> String {
        if key == ANONYMOUS {
            return "Anonymous".to_owned();
        }
        if key.starts_with('+') {
            return display_e164(key);
        }
        key.to_owned()
    }
}

/// Rewrites a number dialled with the region's international prefix
/// (`011` in NANP regions, `00` elsewhere) to the `+` form, which the
/// phone-number library reads reliably.
fn international_form(text: &str, region: country::Id) -> Option<String> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let nanp = phonenumber::metadata::DATABASE
        .by_id(region.as_ref())
        .is_some_and(|m| m.country_code() == 1);
    let prefix = if nanp { "011" } else { "00" };
    if text.starts_with('+') || !digits.starts_with(prefix) {
        return None;
    }
    Some(format!("+{}", &digits[prefix.len()..]))
}

fn is_anonymous(text: &str) -> bool {
    if text.is_empty() {
        return true;
    }
    let lower = text.to_ascii_lowercase();
    let lower = lower.trim_matches(|c: char| c == '"' || c.is_whitespace());
    ANONYMOUS_WORDS.contains(&lower) || ANONYMOUS_NUMBERS.contains(&lower)
}

/// Formats an E.164 number for display; returns it unchanged when it does not parse.
fn display_e164(e164: &str) -> String {
    let Ok(number) = phonenumber::parse(None, e164) else {
        return e164.to_owned();
    };
    if number.code().value() == 1 {
        let national = number.national().to_string();
        if national.len() == 10 {
            return format!(
                "+1 ({}) {}-{}",
                &national[0..3],
                &national[3..6],
                &national[6..10]
            );
        }
    }
    number.format().mode(Mode::International).to_string()
}

/// The account's own phone numbers, canonical (E.164).
///
/// ```
/// use callview_core::endpoint::{Normalizer, OwnedNumbers};
/// let n = Normalizer::default();
/// let owned = OwnedNumbers::from_raw(&n, ["(978) 844-7773"]);
/// assert!(owned.contains("+19788447773"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedNumbers {
    numbers: HashSet<String>,
}

impl OwnedNumbers {
    /// Builds the set from numbers in any format; values that are not phone
    /// numbers are ignored.
    pub fn from_raw<'a>(normalizer: &Normalizer, raw: impl IntoIterator<Item = &'a str>) -> Self {
        let numbers = raw
            .into_iter()
            .filter_map(|r| normalizer.canonical_phone(r))
            .collect();
        Self { numbers }
    }

    /// Adds numbers from another set.
    pub fn extend(&mut self, other: &OwnedNumbers) {
        self.numbers.extend(other.numbers.iter().cloned());
    }

    /// Whether the E.164 number is one of the account's.
    pub fn contains(&self, e164: &str) -> bool {
        self.numbers.contains(e164)
    }

    /// The numbers, sorted.
    pub fn to_sorted_vec(&self) -> Vec<String> {
        let mut v: Vec<String> = self.numbers.iter().cloned().collect();
        v.sort();
        v
    }

    /// How many numbers there are.
    pub fn len(&self) -> usize {
        self.numbers.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }
}

/// The direction of a call from the business's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActualDirection {
    /// An outside party called the business.
    Inbound,
    /// The business called an outside party.
    Outbound,
    /// Both sides belong to the business.
    Internal,
}

impl ActualDirection {
    /// The actual direction when nothing better is known: Twilio's
    /// outbound kinds are outbound, everything else inbound.
    ///
    /// ```
    /// use callview_core::{ActualDirection, CallDirection};
    /// assert_eq!(ActualDirection::from_twilio(&CallDirection::OutboundDial), ActualDirection::Outbound);
    /// assert_eq!(ActualDirection::from_twilio(&CallDirection::Inbound), ActualDirection::Inbound);
    /// ```
    pub fn from_twilio(direction: &CallDirection) -> Self {
        if direction.is_outbound() {
            Self::Outbound
        } else {
            Self::Inbound
        }
    }

    /// What a stored row says: the `actual_direction` callview wrote, else
    /// (a row of the seed's original application) what Twilio's direction
    /// implies ([`ActualDirection::from_twilio`]).
    pub fn from_stored(stored: Option<&str>, twilio: &CallDirection) -> Self {
        stored
            .map(str::trim)
            .and_then(Self::parse)
            .unwrap_or_else(|| Self::from_twilio(twilio))
    }
}

impl ActualDirection {
    /// `inbound`, `outbound` or `internal`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
            Self::Internal => "internal",
        }
    }

    /// Parses [`ActualDirection::as_str`]'s output.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "inbound" => Some(Self::Inbound),
            "outbound" => Some(Self::Outbound),
            "internal" => Some(Self::Internal),
            _ => None,
        }
    }
}

impl fmt::Display for ActualDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to read numbers and which ones are the business's: everything needed
/// to find the external party of a call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartyRules {
    /// Reads and formats numbers.
    pub normalizer: Normalizer,
    /// The account's own numbers.
    pub owned: OwnedNumbers,
}

/// The outside party of one call and the call's actual direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Party {
    /// The party (for an internal call, the `to` side).
    pub endpoint: Endpoint,
    /// Whether the party is outside the business.
    pub external: bool,
    /// The call's direction from the business's point of view.
    pub direction: ActualDirection,
}

impl PartyRules {
    /// Rules with the given normalizer and owned numbers.
    pub fn new(normalizer: Normalizer, owned: OwnedNumbers) -> Self {
        Self { normalizer, owned }
    }

    /// Whether an endpoint belongs to the business: owned phones, SIP
    /// endpoints and clients are internal; other phones, anonymous and
    /// anything unrecognised are external.
    pub fn is_internal(&self, endpoint: &Endpoint) -> bool {
        match endpoint.kind {
            EndpointKind::Phone | EndpointKind::SipPhone => {
                self.owned.contains(&endpoint.canonical)
            }
            EndpointKind::SipEndpoint | EndpointKind::Client => true,
            EndpointKind::Anonymous | EndpointKind::Other => false,
        }
    }

    /// The external party of `call` and its actual direction
    /// (`call-model.md` section 2).
    ///
    /// ```
    /// use callview_core::{Call, CallDirection, CallSid, CallStatus};
    /// use callview_core::endpoint::{ActualDirection, Normalizer, OwnedNumbers, PartyRules};
    /// let n = Normalizer::default();
    /// let rules = PartyRules::new(n, OwnedNumbers::from_raw(&n, ["+19788447773"]));
    /// let mut call = Call::new(CallSid::new("CA1").unwrap(), CallStatus::Completed, CallDirection::Inbound);
    /// call.from = Some("sip:dispatcher@acme.sip.twilio.com".into());
    /// call.to = Some("sip:+15085140320@acme.sip.twilio.com".into());
    /// let party = rules.external_party(&call);
    /// assert_eq!(party.endpoint.canonical, "+15085140320");
    /// assert_eq!(party.direction, ActualDirection::Outbound);
    /// ```
    pub fn external_party(&self, call: &Call) -> Party {
        self.party_of(
            call.from.as_deref(),
            call.to.as_deref(),
            call.direction.is_outbound(),
        )
    }

    /// The external party of a call or text between `from` and `to`;
    /// `outbound` (Twilio's direction) decides when both sides are outside.
    pub fn party_of(&self, from: Option<&str>, to: Option<&str>, outbound: bool) -> Party {
        self.party_between(
            self.normalizer.classify(from),
            self.normalizer.classify(to),
            outbound,
        )
    }

    /// [`PartyRules::party_of`] for endpoints already classified (with
    /// [`Normalizer::classify`]).
    pub fn party_between(&self, from: Endpoint, to: Endpoint, outbound: bool) -> Party {
        let from_internal = self.is_internal(&from);
        let to_internal = self.is_internal(&to);
        let (endpoint, direction) = match (from_internal, to_internal) {
            (false, true) => (from, ActualDirection::Inbound),
            (true, false) => (to, ActualDirection::Outbound),
            (false, false) => {
                if outbound {
                    (to, ActualDirection::Outbound)
                } else {
                    (from, ActualDirection::Inbound)
                }
            }
            (true, true) => (to, ActualDirection::Internal),
        };
        Party {
            external: direction != ActualDirection::Internal,
            endpoint,
            direction,
        }
    }
}
