//! [`MockTwilio`]: a small in-memory [`TwilioClient`] whose calls, page size
//! and owned numbers a test sets directly.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::call::{Call, CallSid};
use crate::model::interaction::newest_first;
use crate::twilio::{
    CallFilter, CallPage, IncomingNumber, PageToken, Recording, TwilioClient, TwilioError,
};

#[derive(Debug, Default)]
struct MockState {
    calls: BTreeMap<CallSid, Call>,
    numbers: Vec<IncomingNumber>,
    recordings: HashMap<CallSid, Vec<Recording>>,
    page_size: Option<u32>,
    page_requests: u64,
    fetch_requests: u64,
}

/// An in-memory Twilio account: lists its calls newest first (by start
/// time, calls without one last, then SID descending), in pages of
/// `min(filter.page_size, configured page size)`, honouring the filter's
/// time bounds, status and parent like Twilio does.
///
/// ```
/// # tokio_test_block(async {
/// use callview_core::testkit::{at, CallBuilder, MockTwilio};
/// use callview_core::twilio::{CallFilter, TwilioClient};
/// let mock = MockTwilio::new().with_page_size(1);
/// mock.set_calls([
///     CallBuilder::new("CA1").start(at(0)).build(),
///     CallBuilder::new("CA2").start(at(1)).build(),
/// ]);
/// let page = mock.list_calls_page(&CallFilter::default(), None).await.unwrap();
/// assert_eq!(page.calls[0].sid.as_str(), "CA2");
/// assert!(page.next.is_some());
/// # });
/// # fn tokio_test_block(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MockTwilio {
    state: Mutex<MockState>,
}

impl MockTwilio {
    /// An account with no calls and no numbers, serving pages of up to
    /// whatever the filter asks for.
    pub fn new() -> Self {
        Self::default()
    }

    /// Caps every page at `page_size` records (at least 1).
    pub fn with_page_size(self, page_size: u32) -> Self {
        self.set_page_size(page_size);
        self
    }

    /// Owns these numbers (listed as IncomingPhoneNumbers).
    pub fn with_owned_numbers<'a>(self, numbers: impl IntoIterator<Item = &'a str>) -> Self {
        self.set_owned_numbers(numbers);
        self
    }

    fn lock(&self) -> MutexGuard<'_, MockState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Caps every page at `page_size` records (at least 1).
    pub fn set_page_size(&self, page_size: u32) {
        self.lock().page_size = Some(page_size.max(1));
    }

    /// Replaces the account's owned numbers.
    pub fn set_owned_numbers<'a>(&self, numbers: impl IntoIterator<Item = &'a str>) {
        self.lock().numbers = numbers
            .into_iter()
            .enumerate()
            .map(|(i, n)| IncomingNumber {
                sid: format!("PN{i:032x}"),
                phone_number: n.to_owned(),
                friendly_name: None,
            })
            .collect();
    }

    /// Replaces every call of the account.
    pub fn set_calls(&self, calls: impl IntoIterator<Item = Call>) {
        self.lock().calls = calls.into_iter().map(|c| (c.sid.clone(), c)).collect();
    }

    /// Adds a call, or replaces the one with the same SID (a newer version).
    pub fn upsert(&self, call: Call) {
        self.lock().calls.insert(call.sid.clone(), call);
    }

    /// Removes a call (as if Twilio no longer had it).
    pub fn remove(&self, sid: &str) {
        if let Some(sid) = CallSid::new(sid) {
            self.lock().calls.remove(&sid);
        }
    }

    /// Adds a recording to a call.
    pub fn add_recording(&self, recording: Recording) {
        if let Some(sid) = CallSid::new(recording.call_sid.clone()) {
            self.lock()
                .recordings
                .entry(sid)
                .or_default()
                .push(recording);
        }
    }

    /// Every call, in the order Twilio lists them (newest first).
    pub fn calls(&self) -> Vec<Call> {
        let mut calls: Vec<Call> = self.lock().calls.values().cloned().collect();
        calls.sort_by(newest_first);
        calls
    }

    /// How many pages of calls were requested so far.
    pub fn page_requests(&self) -> u64 {
        self.lock().page_requests
    }

    /// How many single calls were fetched so far.
    pub fn fetch_requests(&self) -> u64 {
        self.lock().fetch_requests
    }
}

fn parse_token(token: &PageToken) -> Option<(usize, usize)> {
    let query = token.0.split_once('?')?.1;
    let mut page = None;
    let mut size = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("Page", v)) => page = v.parse().ok(),
            Some(("PageSize", v)) => size = v.parse().ok(),
            _ => {}
        }
    }
    Some((page?, size?))
}

#[async_trait]
impl TwilioClient for MockTwilio {
    async fn list_calls_page(
        &self,
        filter: &CallFilter,
        page: Option<&PageToken>,
    ) -> Result<CallPage, TwilioError> {
        let (number, size) = match page {
            None => {
                let state = self.lock();
                let size = filter.page_size.clamp(1, crate::twilio::MAX_PAGE_SIZE);
                let size = state.page_size.map_or(size, |cap| size.min(cap));
                (0, size as usize)
            }
            Some(token) => parse_token(token).ok_or_else(|| TwilioError::Api {
                status: 400,
                code: Some(20001),
                message: format!("bad page token {:?}", token.0),
                more_info: None,
            })?,
        };
        // Twilio's order: newest first, calls never dialled ahead of all.
        let mut matching: Vec<Call> = self
            .calls()
            .into_iter()
            .filter(|c| filter.matches(c))
            .collect();
        matching.sort_by(|a, b| {
            (b.start_time.is_none(), b.start_time, &b.sid).cmp(&(
                a.start_time.is_none(),
                a.start_time,
                &a.sid,
            ))
        });
        self.lock().page_requests += 1;
        let start = number.saturating_mul(size).min(matching.len());
        let end = start.saturating_add(size).min(matching.len());
        let next = (end < matching.len()).then(|| {
            PageToken(format!(
                "/2010-04-01/Accounts/ACmock/Calls.json?Page={}&PageSize={size}",
                number + 1
            ))
        });
        let calls = matching.drain(start..end).collect();
        Ok(CallPage {
            calls,
            rejected: Vec::new(),
            next,
        })
    }

    async fn fetch_call(&self, sid: &CallSid) -> Result<Call, TwilioError> {
        let mut state = self.lock();
        state.fetch_requests += 1;
        state
            .calls
            .get(sid)
            .cloned()
            .ok_or_else(|| TwilioError::NotFound {
                what: format!("call {sid}"),
            })
    }

    async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
        Ok(self.lock().numbers.clone())
    }

    async fn list_recordings(&self, call_sid: &CallSid) -> Result<Vec<Recording>, TwilioError> {
        Ok(self
            .lock()
            .recordings
            .get(call_sid)
            .cloned()
            .unwrap_or_default())
    }
}
