//! The simulated Twilio account the scenarios sync from, served over HTTP
//! on loopback: in this process (an axum task) or in a child process
//! (`callview simulate`, so the sync's memory is measured alone).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use callview_core::twilio::{Credentials, HttpTwilioClient, Secret, TwilioConfig};
use callview_core::TwilioClient;
use callview_sim::{account_sid_for_seed, ServerOptions, SimConfig, SimulatedTwilio};
use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The seed every scenario generates its account from.
pub const SEED: u64 = 7;

/// Where the simulator runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimulatorMode {
    /// A child process when the `callview` binary is found (or can be
    /// built), otherwise in process.
    Auto,
    /// Always in this process.
    InProcess,
    /// A child process running this `callview` binary.
    Child(PathBuf),
}

/// A running simulated account and how to reach it.
pub struct SimServer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The account's SID.
    pub account_sid: String,
    /// The account, when it runs in this process.
    pub sim: Option<SimulatedTwilio>,
    /// Call records in the account.
    pub calls: usize,
    /// Days of history.
    pub days: u32,
    /// The account's present (approximately, for a child).
    pub now: DateTime<Utc>,
    /// Seconds spent generating the account (not part of any measurement).
    pub generate_secs: f64,
    /// `in process` or `child process <pid>`.
    pub location: String,
    task: Option<tokio::task::JoinHandle<()>>,
    child: Option<tokio::process::Child>,
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer")
            .field("base_url", &self.base_url)
            .field("calls", &self.calls)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// Days of history for an account of `calls` records: 30 days up to a
/// million calls (about 1,400 an hour), more beyond.
pub fn days_for(calls: usize) -> u32 {
    30.max((calls / 33_000) as u32)
}

impl SimServer {
    /// Starts a simulator for `calls` records the way `mode` says.
    pub async fn start(mode: &SimulatorMode, calls: usize, quiet: bool) -> Result<Self> {
        match mode {
            SimulatorMode::InProcess => Self::in_process(calls, ServerOptions::default()).await,
            SimulatorMode::Child(bin) => Self::child(bin, calls).await,
            SimulatorMode::Auto => match find_or_build_callview(quiet) {
                Ok(bin) => Self::child(&bin, calls).await,
                Err(e) => {
                    eprintln!(
                        "warning: running the simulator in process ({e:#}); its memory counts in the RSS figures"
                    );
                    Self::in_process(calls, ServerOptions::default()).await
                }
            },
        }
    }

    /// Generates the account here and serves it on `127.0.0.1:0`.
    pub async fn in_process(calls: usize, options: ServerOptions) -> Result<Self> {
        let days = days_for(calls);
        let clock = Instant::now();
        let config = SimConfig {
            days,
            // The scenarios measure calls: an account without texts keeps
            // their figures comparable with earlier runs.
            texts: Some(0),
            ..SimConfig::new(SEED, calls)
        };
        let now = config.now;
        let sim = tokio::task::spawn_blocking(move || SimulatedTwilio::new(config))
            .await
            .context("generating the simulated account")?;
        let generate_secs = clock.elapsed().as_secs_f64();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the simulator's port")?;
        let addr = listener.local_addr()?;
        let served = sim.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = callview_sim::serve(listener, served, options).await {
                eprintln!("the simulator stopped: {e}");
            }
        });
        Ok(Self {
            base_url: format!("http://{addr}"),
            account_sid: sim.account_sid().to_owned(),
            sim: Some(sim),
            calls,
            days,
            now,
            generate_secs,
            location: "in process".to_owned(),
            task: Some(task),
            child: None,
        })
    }

    /// The same in-process account served a second time, on another port,
    /// with other server options (e.g. without the first one's latency).
    /// Fails for a child process.
    pub async fn serve_again(&self, options: ServerOptions) -> Result<Self> {
        let sim = self.account()?.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the simulator's port")?;
        let addr = listener.local_addr()?;
        let served = sim.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = callview_sim::serve(listener, served, options).await {
                eprintln!("the simulator stopped: {e}");
            }
        });
        Ok(Self {
            base_url: format!("http://{addr}"),
            account_sid: self.account_sid.clone(),
            sim: Some(sim),
            calls: self.calls,
            days: self.days,
            now: self.now,
            generate_secs: 0.0,
            location: self.location.clone(),
            task: Some(task),
            child: None,
        })
    }

    /// Runs `callview simulate` and waits until it serves.
    pub async fn child(bin: &Path, calls: usize) -> Result<Self> {
        let days = days_for(calls);
        let clock = Instant::now();
        let now = Utc::now();
        let mut child = tokio::process::Command::new(bin)
            .args(["simulate", "--listen", "127.0.0.1:0"])
            .args(["--calls", &calls.to_string()])
            .args(["--days", &days.to_string()])
            .args(["--seed", &SEED.to_string()])
            // The scenarios measure calls (see `in_process`).
            .args(["--texts", "0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("the simulator's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut base_url = None;
        let wait = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.trim().strip_prefix("export TWILIO_API_BASE_URL=") {
                    base_url = Some(url.trim().to_owned());
                    break;
                }
            }
            Ok::<_, std::io::Error>(())
        };
        tokio::time::timeout(Duration::from_secs(600), wait)
            .await
            .context("the simulator did not start within 10 minutes")?
            .context("reading the simulator's output")?;
        let Some(base_url) = base_url else {
            let status = child.wait().await.ok();
            bail!("`callview simulate` exited without serving ({status:?})");
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let pid = child.id().unwrap_or(0);
        Ok(Self {
            base_url,
            account_sid: account_sid_for_seed(SEED),
            sim: None,
            calls,
            days,
            now,
            generate_secs: clock.elapsed().as_secs_f64(),
            location: format!("child process {pid} ({})", bin.display()),
            task: None,
            child: Some(child),
        })
    }

    /// The start of a window covering the whole account, a day to spare.
    pub fn since(&self) -> DateTime<Utc> {
        self.now - chrono::Duration::days(i64::from(self.days) + 1)
    }

    /// The real HTTP client, pointed at this simulator.
    pub fn client(&self) -> Result<Arc<dyn TwilioClient>> {
        http_client(&self.base_url, &self.account_sid)
    }

    /// The in-process account. Fails for a child process.
    pub fn account(&self) -> Result<&SimulatedTwilio> {
        self.sim
            .as_ref()
            .context("the simulator runs in another process")
    }

    /// Stops the server (and the child process).
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
    }
}

/// The real HTTP client for the simulated account `account_sid` at `base_url`.
pub fn http_client(base_url: &str, account_sid: &str) -> Result<Arc<dyn TwilioClient>> {
    let config = TwilioConfig {
        credentials: Credentials::AuthToken {
            account_sid: account_sid.to_owned(),
            auth_token: Secret::new("simulator"),
        },
        base_url: base_url.to_owned(),
        intelligence_base_url: base_url.to_owned(),
    };
    Ok(Arc::new(
        HttpTwilioClient::new(config).context("building the Twilio client")?,
    ))
}

/// The `callview` binary next to this executable (`target/<profile>/`),
/// built with cargo when missing.
pub fn find_or_build_callview(quiet: bool) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this executable")?;
    let mut dirs = Vec::new();
    if let Some(dir) = exe.parent() {
        dirs.push(dir.to_path_buf());
        if dir.ends_with("deps") {
            if let Some(up) = dir.parent() {
                dirs.push(up.to_path_buf());
            }
        }
    }
    for dir in &dirs {
        let candidate = dir.join("callview");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let profile_dir = dirs
        .last()
        .context("no directory for the callview binary")?;
    let release = profile_dir.ends_with("release");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the workspace directory")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut args = vec!["build", "-p", "callview-server", "--bin", "callview"];
    if release {
        args.push("--release");
    }
    if !quiet {
        eprintln!(
            "the `callview` binary (the simulator) is not in {}; building it: cargo {}",
            profile_dir.display(),
            args.join(" ")
        );
    }
    let status = std::process::Command::new(cargo)
        .args(&args)
        .current_dir(workspace)
        .stdin(Stdio::null())
        .status()
        .context("running cargo to build the callview binary")?;
    if !status.success() {
        bail!("building the callview binary failed ({status})");
    }
    let built = profile_dir.join("callview");
    if !built.is_file() {
        bail!(
            "cargo built callview but {} does not exist",
            built.display()
        );
    }
    Ok(built)
}
