//! The simulated account behind `callview serve`'s demo mode and
//! `callview simulate`.
//!
//! * [`demo_account`] generates the account; [`LiveTraffic`] keeps adding
//!   calls to it (ringing, answered, completed, priced later).
//! * [`simulator_router`] serves it in Twilio's wire format and also
//!   answers for [`DUMMY_ACCOUNT_SID`], the account `callview` uses when
//!   only `TWILIO_API_BASE_URL` is set, so
//!   `TWILIO_API_BASE_URL=http://127.0.0.1:PORT callview sync` works
//!   without knowing the simulated account's SID.

use std::future::Future;
use std::time::Duration;

use axum::extract::Request;
use axum::http::Uri;
use axum::Router;
use callview_sim::{ServerOptions, SimConfig, SimulatedTwilio};

/// The demo account's seed.
pub const DEMO_SEED: u64 = 42;
/// Call records in the demo account.
pub const DEMO_CALLS: usize = 3_000;
/// Days of history in the demo account.
pub const DEMO_DAYS: u32 = 30;
/// How often live traffic moves the simulated clock.
pub const LIVE_TICK: Duration = Duration::from_secs(3);
/// New interactions per minute while live.
pub const LIVE_RATE_PER_MINUTE: f64 = 6.0;

/// The account SID `callview` sends when `TWILIO_API_BASE_URL` is set
/// without credentials.
pub const DUMMY_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
/// The auth token sent with [`DUMMY_ACCOUNT_SID`].
pub const DUMMY_AUTH_TOKEN: &str = "simulator";

/// Generates a simulated account (with the demo's live rate).
pub fn demo_account(config: SimConfig) -> SimulatedTwilio {
    let sim = SimulatedTwilio::new(config);
    sim.with_account(|a| a.set_live_rate(LIVE_RATE_PER_MINUTE));
    sim
}

/// The demo account: [`DEMO_CALLS`] calls over [`DEMO_DAYS`] days ending now.
pub fn default_demo_account() -> SimulatedTwilio {
    demo_account(SimConfig {
        days: DEMO_DAYS,
        ..SimConfig::new(DEMO_SEED, DEMO_CALLS)
    })
}

/// A background task moving a simulated account's clock with the wall
/// clock: new calls ring, calls end, prices arrive.
#[derive(Debug)]
pub struct LiveTraffic {
    handle: tokio::task::JoinHandle<()>,
}

impl LiveTraffic {
    /// Starts ticking `sim` every `every` (on the current Tokio runtime).
    pub fn start(sim: SimulatedTwilio, every: Duration) -> Self {
        Self {
            handle: sim.spawn_live_traffic(every),
        }
    }

    /// Stops the task.
    pub async fn stop(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }
}

/// Twilio's REST API for `sim` (see [`callview_sim::router`]),
/// which also answers requests for [`DUMMY_ACCOUNT_SID`] as `sim`'s account.
pub fn simulator_router(sim: SimulatedTwilio) -> Router {
    let account = sim.account_sid().to_owned();
    let inner = callview_sim::router(sim, ServerOptions::default());
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::map_request(move |req: Request| {
            let account = account.clone();
            async move { alias_account(req, &account) }
        }))
}

/// Rewrites `/2010-04-01/Accounts/{DUMMY}/...` to the real account.
fn alias_account(mut req: Request, account: &str) -> Request {
    let from = format!("/2010-04-01/Accounts/{DUMMY_ACCOUNT_SID}");
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix(&from) {
        let mut text = format!("/2010-04-01/Accounts/{account}{rest}");
        if let Some(query) = req.uri().query() {
            text.push('?');
            text.push_str(query);
        }
        if let Ok(uri) = text.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// Serves [`simulator_router`] on `listener` until `shutdown` resolves.
pub async fn serve_simulator(
    listener: tokio::net::TcpListener,
    sim: SimulatedTwilio,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, simulator_router(sim))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_account_is_rewritten_with_its_query() {
        let req = Request::builder()
            .uri(format!(
                "/2010-04-01/Accounts/{DUMMY_ACCOUNT_SID}/Calls.json?PageSize=5&StartTime%3E=2026-01-01"
            ))
            .body(axum::body::Body::empty())
            .unwrap();
        let req = alias_account(req, "ACabc");
        assert_eq!(
            req.uri().to_string(),
            "/2010-04-01/Accounts/ACabc/Calls.json?PageSize=5&StartTime%3E=2026-01-01"
        );
        let other = Request::builder()
            .uri("/2010-04-01/Accounts/ACother/Calls.json")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(
            alias_account(other, "ACabc").uri().path(),
            "/2010-04-01/Accounts/ACother/Calls.json"
        );
    }
}
