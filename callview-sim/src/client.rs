//! [`SimulatedTwilio`]: a shared simulated account as a [`TwilioClient`].

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use callview_core::call::{Call, CallSid};
use callview_core::twilio::{
    CallFilter, CallPage, IncomingNumber, PageToken, Recording, TwilioClient, TwilioError,
};
use chrono::{DateTime, Utc};

use crate::account::{Listing, SimulatedAccount};
use crate::query::ListQuery;
use crate::SimConfig;

/// A [`SimulatedAccount`] shared behind a mutex: cheap to clone, usable as
/// `Arc<dyn TwilioClient>` in process, and servable over HTTP with
/// [`router`](crate::router).
///
/// The in-process client never fails on purpose (faults are injected by the
/// HTTP server only). Every record it returns went through Twilio's wire
/// form (`Call::from_json(&call.to_rest_json())`), and `next` tokens are
/// Twilio-style `next_page_uri` strings.
///
/// ```
/// use callview_sim::{SimConfig, SimulatedTwilio};
/// let sim = SimulatedTwilio::new(SimConfig { calls: 50, ..SimConfig::default() });
/// let other_handle = sim.clone();
/// assert_eq!(other_handle.with_account(|a| a.len()), 50);
/// ```
#[derive(Clone)]
pub struct SimulatedTwilio {
    inner: Arc<Mutex<SimulatedAccount>>,
    account_sid: Arc<str>,
    seed: u64,
}

impl fmt::Debug for SimulatedTwilio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedTwilio")
            .field("account_sid", &&*self.account_sid)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl SimulatedTwilio {
    /// Generates an account from `config` and shares it.
    pub fn new(config: SimConfig) -> Self {
        Self::from_account(SimulatedAccount::new(config))
    }

    /// Shares an existing account.
    pub fn from_account(account: SimulatedAccount) -> Self {
        Self {
            account_sid: account.account_sid().into(),
            seed: account.config().seed,
            inner: Arc::new(Mutex::new(account)),
        }
    }

    /// The account SID.
    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    /// The seed the account was generated from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Locks the account. Do not hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, SimulatedAccount> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` with the account locked.
    pub fn with_account<R>(&self, f: impl FnOnce(&mut SimulatedAccount) -> R) -> R {
        f(&mut self.lock())
    }

    /// Every call, newest first ([`SimulatedAccount::calls`]).
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls()
    }

    /// See [`SimulatedAccount::advance_to`].
    pub fn advance_to(&self, now: DateTime<Utc>) {
        self.lock().advance_to(now);
    }

    /// See [`SimulatedAccount::tick`].
    pub fn tick(&self, now: DateTime<Utc>) -> Vec<CallSid> {
        self.lock().tick(now)
    }

    /// See [`SimulatedAccount::generate_live`].
    pub fn generate_live(&self, n: usize) -> Vec<CallSid> {
        self.lock().generate_live(n)
    }

    /// See [`SimulatedAccount::insert`].
    pub fn insert(&self, call: Call) -> Option<Call> {
        self.lock().insert(call)
    }

    /// See [`SimulatedAccount::update`].
    pub fn update(&self, call: Call) -> bool {
        self.lock().update(call)
    }

    /// See [`SimulatedAccount::complete_call`].
    pub fn complete_call(&self, sid: &CallSid) -> Option<Call> {
        self.lock().complete_call(sid)
    }

    /// Spawns a task (on the current Tokio runtime) that calls
    /// [`SimulatedAccount::tick`] with the wall clock every `every`, so a
    /// demo shows live traffic. Abort the handle to stop it.
    pub fn spawn_live_traffic(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let sim = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every.max(Duration::from_millis(10)));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                sim.tick(Utc::now());
            }
        })
    }

    /// One page of the calls list for `query`.
    pub(crate) fn list(&self, query: &ListQuery) -> Listing {
        self.lock().list(query)
    }
}

fn bad_request(message: String) -> TwilioError {
    TwilioError::Api {
        status: 400,
        code: Some(20001),
        message,
        more_info: Some("https://www.twilio.com/docs/errors/20001".into()),
    }
}

#[async_trait]
impl TwilioClient for SimulatedTwilio {
    async fn list_calls_page(
        &self,
        filter: &CallFilter,
        page: Option<&PageToken>,
    ) -> Result<CallPage, TwilioError> {
        let query = match page {
            None => ListQuery::from_filter(filter),
            Some(token) => {
                let (path, query) = token.0.split_once('?').unwrap_or((&token.0, ""));
                let expected = format!("/2010-04-01/Accounts/{}/Calls.json", self.account_sid);
                if path != expected {
                    return Err(TwilioError::NotFound {
                        what: format!("the page {:?}", token.0),
                    });
                }
                ListQuery::parse(query).map_err(bad_request)?
            }
        };
        let listing = self.list(&query);
        let mut out = CallPage::default();
        for call in &listing.calls {
            match Call::from_json(&call.to_rest_json()) {
                Ok(call) => out.calls.push(call),
                Err(rejected) => out.rejected.push(rejected),
            }
        }
        out.next = listing
            .next
            .map(|cursor| PageToken(query.uri(&self.account_sid, query.page + 1, Some(&cursor))));
        Ok(out)
    }

    async fn fetch_call(&self, sid: &CallSid) -> Result<Call, TwilioError> {
        let call = self.lock().call(sid).ok_or_else(|| TwilioError::NotFound {
            what: format!("call {sid}"),
        })?;
        Call::from_json(&call.to_rest_json()).map_err(|e| TwilioError::Decode {
            context: format!("call {sid}"),
            reason: e.to_string(),
        })
    }

    async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
        Ok(self.lock().owned_numbers())
    }

    async fn list_recordings(&self, call_sid: &CallSid) -> Result<Vec<Recording>, TwilioError> {
        Ok(self.lock().recordings(call_sid))
    }
}
