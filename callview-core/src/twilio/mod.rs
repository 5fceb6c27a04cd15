//! Talking to Twilio: the [`TwilioClient`] trait, its filters and pages.
//!
//! The sync engine only ever sees `Arc<dyn TwilioClient>`. The real
//! implementation is `HttpTwilioClient` (reqwest, feature `http`); the
//! simulated account of the `callview-sim` crate is another.

mod config;
mod error;
#[cfg(feature = "http")]
mod http;

pub use config::{Credentials, Secret, TwilioConfig};
pub use error::TwilioError;
#[cfg(feature = "http")]
pub use http::{HttpTwilioClient, RetryPolicy};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{self, Stream};

use crate::call::{Call, CallParseError, CallSid, CallStatus};

/// Which calls to list. Every field is optional; an empty filter lists the
/// whole account, newest first.
///
/// ```
/// use callview_core::twilio::CallFilter;
/// use chrono::{TimeZone, Utc};
/// let filter = CallFilter::started_after(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap());
/// assert_eq!(filter.page_size, 1000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallFilter {
    /// Only calls that started after this instant (`StartTime>`).
    pub start_time_after: Option<DateTime<Utc>>,
    /// Only calls that started before this instant (`StartTime<`).
    pub start_time_before: Option<DateTime<Utc>>,
    /// Only calls with this status (`Status`).
    pub status: Option<CallStatus>,
    /// Only legs of this parent (`ParentCallSid`).
    pub parent_call_sid: Option<CallSid>,
    /// Records per page (`PageSize`, 1..=1000).
    pub page_size: u32,
}

impl Default for CallFilter {
    fn default() -> Self {
        Self {
            start_time_after: None,
            start_time_before: None,
            status: None,
            parent_call_sid: None,
            page_size: MAX_PAGE_SIZE,
        }
    }
}

/// The largest page Twilio serves.
pub const MAX_PAGE_SIZE: u32 = 1000;

impl CallFilter {
    /// Calls that started after `after`, in pages of 1000.
    pub fn started_after(after: DateTime<Utc>) -> Self {
        Self {
            start_time_after: Some(after),
            ..Self::default()
        }
    }

    /// Whether `call` passes this filter, as Twilio decides it (mocks use
    /// this to serve a listing). A call without a start time (never
    /// dialled) fails any time bound, as it does on Twilio.
    pub fn matches(&self, call: &Call) -> bool {
        let bounded = self.start_time_after.is_some() || self.start_time_before.is_some();
        match call.start_time {
            None if bounded => return false,
            None => {}
            Some(start) => {
                if self.start_time_after.is_some_and(|a| start <= a) {
                    return false;
                }
                if self.start_time_before.is_some_and(|b| start >= b) {
                    return false;
                }
            }
        }
        if self.status.as_ref().is_some_and(|s| *s != call.status) {
            return false;
        }
        if let Some(parent) = &self.parent_call_sid {
            if call.parent_call_sid.as_ref() != Some(parent) {
                return false;
            }
        }
        true
    }
}

/// Where the next page is: Twilio's `next_page_uri`, kept exactly as given.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageToken(pub String);

/// One page of the calls list.
#[derive(Clone, Debug, Default)]
pub struct CallPage {
    /// The records that parsed.
    pub calls: Vec<Call>,
    /// Records that could not be understood, with the reason; never dropped
    /// silently.
    pub rejected: Vec<CallParseError>,
    /// The next page, `None` on the last one.
    pub next: Option<PageToken>,
}

/// One of the account's own phone numbers (an IncomingPhoneNumber).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IncomingNumber {
    /// `PN...`.
    pub sid: String,
    /// The number, E.164.
    pub phone_number: String,
    /// The name given in the console.
    pub friendly_name: Option<String>,
}

/// A recording of a call.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recording {
    /// `RE...`.
    pub sid: String,
    /// The call it belongs to.
    pub call_sid: String,
    /// Length in seconds, when known.
    pub duration: Option<u32>,
    /// `completed`, `processing`, ...
    pub status: Option<String>,
    /// When the recording started.
    pub start_time: Option<DateTime<Utc>>,
    /// The resource URI relative to the API base (`/2010-04-01/.../RE....json`);
    /// the audio is at the same URI with `.mp3` or `.wav`.
    pub uri: String,
}

/// What the sync engine needs from Twilio.
///
/// Object-safe: use it as `Arc<dyn TwilioClient>`.
#[async_trait]
pub trait TwilioClient: Send + Sync {
    /// Fetches one page of calls: the first page for `filter` when `page` is
    /// `None`, otherwise the page the token points to (the filter is then
    /// already part of the token).
    async fn list_calls_page(
        &self,
        filter: &CallFilter,
        page: Option<&PageToken>,
    ) -> Result<CallPage, TwilioError>;

    /// Fetches one call by SID.
    async fn fetch_call(&self, sid: &CallSid) -> Result<Call, TwilioError>;

    /// Lists every phone number the account owns (all pages).
    async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError>;

    /// Lists the recordings of one call (all pages).
    async fn list_recordings(&self, call_sid: &CallSid) -> Result<Vec<Recording>, TwilioError>;
}

/// Every page of `filter` as a stream, following `next_page_uri` until the
/// last page. The stream ends after the first error.
///
/// ```no_run
/// # async fn demo(client: &dyn callview_core::TwilioClient) {
/// use futures::TryStreamExt;
/// use callview_core::twilio::{call_pages, CallFilter};
/// let pages: Vec<_> = call_pages(client, CallFilter::default()).try_collect().await.unwrap();
/// # }
/// ```
pub fn call_pages(
    client: &dyn TwilioClient,
    filter: CallFilter,
) -> impl Stream<Item = Result<CallPage, TwilioError>> + '_ {
    enum State {
        First,
        Next(PageToken),
        Done,
    }
    stream::unfold(State::First, move |state| {
        let filter = filter.clone();
        async move {
            let token = match state {
                State::Done => return None,
                State::First => None,
                State::Next(token) => Some(token),
            };
            match client.list_calls_page(&filter, token.as_ref()).await {
                Ok(page) => {
                    let next = match &page.next {
                        Some(t) => State::Next(t.clone()),
                        None => State::Done,
                    };
                    Some((Ok(page), next))
                }
                Err(e) => Some((Err(e), State::Done)),
            }
        }
    })
}
