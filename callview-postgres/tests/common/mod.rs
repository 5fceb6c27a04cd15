//! Shared test helpers: a tiny in-memory Twilio account.
#![allow(dead_code)]

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use callview_core::twilio::{CallFilter, CallPage, IncomingNumber, PageToken};
use callview_core::{Call, CallSid, TwilioClient, TwilioError};
use serde_json::{json, Value};

/// The business's own number in every test.
pub const OWNED: &str = "+16175006181";

/// A Twilio account holding a fixed list of calls, served in one page.
pub struct FakeTwilio {
    calls: Mutex<Vec<Call>>,
    owned: Vec<String>,
    /// Sleep before answering each request (to make runs overlap).
    pub delay: Duration,
    /// An account without recordings or transcripts.
    media: callview_core::testkit::MockTwilio,
}

impl FakeTwilio {
    pub fn new(calls: Vec<Call>) -> Self {
        Self {
            calls: Mutex::new(calls),
            owned: vec![OWNED.to_owned()],
            delay: Duration::ZERO,
            media: callview_core::testkit::MockTwilio::new(),
        }
    }

    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Replaces (or adds) a call.
    pub fn put(&self, call: Call) {
        let mut calls = self.calls.lock().unwrap();
        calls.retain(|c| c.sid != call.sid);
        calls.push(call);
    }
}

#[async_trait]
impl TwilioClient for FakeTwilio {
    async fn list_calls_page(
        &self,
        filter: &CallFilter,
        _page: Option<&PageToken>,
    ) -> Result<CallPage, TwilioError> {
        tokio::time::sleep(self.delay).await;
        let calls = self
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| filter.matches(c))
            .cloned()
            .collect();
        Ok(CallPage {
            calls,
            rejected: Vec::new(),
            next: None,
        })
    }

    async fn fetch_call(&self, sid: &CallSid) -> Result<Call, TwilioError> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .find(|c| &c.sid == sid)
            .cloned()
            .ok_or_else(|| TwilioError::NotFound {
                what: format!("call {sid}"),
            })
    }

    async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
        tokio::time::sleep(self.delay).await;
        Ok(self
            .owned
            .iter()
            .enumerate()
            .map(|(i, n)| IncomingNumber {
                sid: format!("PN{i:032}"),
                phone_number: n.clone(),
                friendly_name: None,
            })
            .collect())
    }

    callview_core::forward_media_methods!(media);
}

/// A call in Twilio's REST form.
#[allow(clippy::too_many_arguments)]
pub fn rest_call(
    sid: &str,
    parent: Option<&str>,
    from: &str,
    to: &str,
    direction: &str,
    status: &str,
    start: &str,
    duration: Option<u32>,
) -> Call {
    let value: Value = json!({
        "sid": sid,
        "account_sid": "ACtest",
        "parent_call_sid": parent,
        "from": from,
        "to": to,
        "direction": direction,
        "status": status,
        "start_time": start,
        "end_time": null,
        "duration": duration.map(|d| d.to_string()),
        "price": if status == "completed" { Some("-0.01400") } else { None },
        "price_unit": "USD",
        "queue_time": "0",
        "answered_by": null,
        "date_updated": start,
        "api_version": "2010-04-01",
    });
    Call::from_json(&value).unwrap()
}
