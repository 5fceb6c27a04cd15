//! Helpers shared by the reliability tests (secrets, faults, crash, load):
//! the built binary with a clean environment, child processes killed on
//! drop, and a simulated Twilio account served over HTTP in-process.
#![allow(dead_code, missing_docs)]

use std::process::{Child, Command};
use std::time::Duration;

use callview_sim::{ServerOptions, SimulatedTwilio};

pub const BIN: &str = env!("CARGO_BIN_EXE_callview");

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `callview` with no Twilio, callview, database or log variables inherited.
pub fn callview(dir: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("TWILIO_")
            || key.starts_with("CALLVIEW_")
            || key == "DATABASE_URL"
            || key == "RUST_LOG"
        {
            command.env_remove(key);
        }
    }
    command
}

/// A simulated account served over HTTP on a free port until dropped.
pub struct SimServer {
    pub base: String,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Serves `sim` with `options` on 127.0.0.1 (a free port).
pub async fn serve_sim(sim: SimulatedTwilio, options: ServerOptions) -> SimServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let _ = callview_sim::serve(listener, sim, options).await;
    });
    SimServer { base, handle }
}

/// A port free at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `url` answers (any status), at most `limit`.
pub async fn wait_until_up(url: &str, limit: Duration) {
    let http = reqwest::Client::new();
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if http.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up within {limit:?}");
}

/// An environment variable read as a number, or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The PostgreSQL URL of a new, empty database with `password` set in it
/// (the test server trusts local connections, so any password works).
pub async fn fresh_postgres_url_with_password(password: &str) -> String {
    let url = callview_postgres::testing::fresh_database_url().await;
    let mut url = url::Url::parse(&url).unwrap();
    url.set_password(Some(password)).unwrap();
    url.to_string()
}
