//! The built `callview` binary: simulate + sync end to end, serve's demo
//! mode and its refusals, help texts, and secrets kept out of output.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_callview");

/// A child process killed when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `callview` with a clean environment: no Twilio or callview variables.
fn callview(dir: &std::path::Path) -> Command {
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

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().unwrap()
}

/// Starts `callview simulate` on a free port; returns the child and the base URL.
fn start_simulator(dir: &std::path::Path, extra: &[&str]) -> (Kill, String) {
    let mut child = callview(dir)
        .args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--calls",
            "300",
            "--seed",
            "5",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Kill(child);
    let mut base = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("export TWILIO_API_BASE_URL=") {
            base = Some(url.trim().to_owned());
            break;
        }
    }
    (child, base.expect("simulate prints the env line"))
}

#[test]
fn simulate_then_sync_stores_calls_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let (_simulator, base) = start_simulator(dir.path(), &[]);
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let db = dir.path().join("x.db");
    let url = format!("sqlite://{}", db.display());
    let output = run(callview(dir.path())
        .args(["sync", "--since", "30d", "--database-url", &url, "--json"])
        .env("TWILIO_API_BASE_URL", &base));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stdout {stdout}\nstderr {stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(report["inserted"].as_u64().unwrap() > 0, "{report}");
    assert!(report["fetched"].as_u64().unwrap() >= report["inserted"].as_u64().unwrap());
    assert!(db.exists());

    // Again: nothing new, every call unchanged; the table form this time.
    let output = run(callview(dir.path())
        .args(["sync", "--since", "30d", "--database-url", &url])
        .env("TWILIO_API_BASE_URL", &base));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("inserted"), "{stdout}");
    assert!(stdout.contains("unchanged"), "{stdout}");

    // The default (incremental) and a preset work too.
    for args in [
        vec!["sync", "--json"],
        vec!["sync", "--preset", "recent", "--json"],
    ] {
        let output = run(callview(dir.path())
            .args(&args)
            .args(["--database-url", &url])
            .env("TWILIO_API_BASE_URL", &base));
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn sync_without_credentials_explains_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(callview(dir.path()).args(["sync", "--since", "1d"]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TWILIO_ACCOUNT_SID"), "{stderr}");
    assert!(stderr.contains("TWILIO_API_BASE_URL"), "{stderr}");
    assert!(stderr.contains("callview simulate"), "{stderr}");
}

#[test]
fn sync_rejects_a_bad_since_and_conflicting_windows() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(callview(dir.path()).args(["sync", "--since", "yesterday"]));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("2026-02-01"));
    let output = run(callview(dir.path()).args(["sync", "--since", "3d", "--preset", "manual"]));
    assert!(!output.status.success());
}

#[test]
fn a_database_password_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let (_simulator, base) = start_simulator(dir.path(), &[]);
    let output = run(callview(dir.path())
        .args([
            "sync",
            "--since",
            "1d",
            "--database-url",
            "postgres://app:hunter2secret@127.0.0.1:1/calls",
        ])
        .env("TWILIO_API_BASE_URL", &base)
        .env("RUST_LOG", "debug"));
    assert!(!output.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!all.contains("hunter2secret"), "{all}");
    assert!(all.contains("app:***@127.0.0.1:1"), "{all}");

    let help = run(callview(dir.path())
        .args(["serve", "--help"])
        .env("DATABASE_URL", "postgres://app:hunter2secret@h/db")
        .env("CALLVIEW_API_TOKEN", "tok-hunter2secret"));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(!text.contains("hunter2secret"), "{text}");
}

#[test]
fn help_documents_every_option_and_variable() {
    let dir = tempfile::tempdir().unwrap();
    let top = String::from_utf8_lossy(&run(callview(dir.path()).arg("--help")).stdout).into_owned();
    for needle in [
        "sync",
        "serve",
        "simulate",
        "DATABASE_URL",
        "CALLVIEW_OWNED_NUMBERS",
        "CALLVIEW_DEFAULT_REGION",
        "TWILIO_API_BASE_URL",
        "TWILIO_AUTH_TOKEN",
    ] {
        assert!(top.contains(needle), "--help lacks {needle}:\n{top}");
    }
    let serve =
        String::from_utf8_lossy(&run(callview(dir.path()).args(["serve", "--help"])).stdout)
            .into_owned();
    for needle in [
        "--listen",
        "CALLVIEW_LISTEN",
        "--no-initial-sync",
        "--sync-interval",
        "--demo",
        "--api-token",
        "CALLVIEW_API_TOKEN",
        "--insecure-no-auth",
        "--database-url",
    ] {
        assert!(
            serve.contains(needle),
            "serve --help lacks {needle}:\n{serve}"
        );
    }
    let sync = String::from_utf8_lossy(&run(callview(dir.path()).args(["sync", "--help"])).stdout)
        .into_owned();
    for needle in [
        "--since",
        "--preset",
        "--incremental",
        "--json",
        "initial",
        "manual",
        "recent",
    ] {
        assert!(sync.contains(needle), "sync --help lacks {needle}:\n{sync}");
    }
    let simulate =
        String::from_utf8_lossy(&run(callview(dir.path()).args(["simulate", "--help"])).stdout)
            .into_owned();
    for needle in ["--listen", "--calls", "--days", "--seed", "--live"] {
        assert!(
            simulate.contains(needle),
            "simulate --help lacks {needle}:\n{simulate}"
        );
    }
}

#[test]
fn serve_refuses_a_public_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        run(callview(dir.path()).args(["serve", "--listen", "0.0.0.0:0", "--no-initial-sync"]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--api-token") && stderr.contains("--insecure-no-auth"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("callview.db").exists(),
        "refused before opening the database"
    );
}

#[test]
fn the_demo_never_writes_into_a_named_database() {
    let dir = tempfile::tempdir().unwrap();
    let named = dir.path().join("mine.db");
    let output = run(callview(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--no-initial-sync"])
        .env("DATABASE_URL", format!("sqlite://{}", named.display())));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TWILIO_ACCOUNT_SID") && stderr.contains("--demo"),
        "the error names what is missing: {stderr}"
    );
    assert!(!named.exists(), "the named database was not touched");
    assert!(!dir.path().join("callview-demo.db").exists());
}

#[test]
fn serve_without_credentials_is_a_live_demo() {
    let dir = tempfile::tempdir().unwrap();
    // Find a free port, then let the server take it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = callview(dir.path())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--sync-interval",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut child = Kill(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(first.contains("demo mode"), "first log line: {first}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let (total, _active) = runtime.block_on(async {
        loop {
            assert!(
                Instant::now() < deadline,
                "the demo never showed conversations"
            );
            if let Ok(response) = reqwest::get(format!("{base}/api/conversations")).await {
                let body: serde_json::Value = response.json().await.unwrap();
                let total = body["total"].as_u64().unwrap_or(0);
                if total > 0 {
                    let active: serde_json::Value =
                        reqwest::get(format!("{base}/api/calls/active"))
                            .await
                            .unwrap()
                            .json()
                            .await
                            .unwrap();
                    break (total, active["total"].as_u64().unwrap());
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    assert!(
        total > 50,
        "a few thousand calls make many conversations: {total}"
    );
    assert!(
        dir.path().join("callview-demo.db").exists(),
        "the demo's own database"
    );
    assert!(
        !dir.path().join("callview.db").exists(),
        "the demo never writes the default database"
    );

    // SIGTERM stops it cleanly.
    #[cfg(unix)]
    {
        let pid = child.0.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                assert!(status.success(), "{status}");
                break;
            }
            assert!(Instant::now() < deadline, "did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn contacts_import_reports_bad_rows_and_export_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("contacts.csv");
    std::fs::write(
        &csv,
        "phone,name,company,notes,tags\n\
         (978) 844-7773,Mrs Alvarez,Alvarez Plumbing,\"quoted $240, call back Friday\",VIP; quote\n\
         not a number,Nobody,,,\n\
         +44 20 7946 0958,Mr Smith,,,\n\
         617.500.6181,,Acme,,complaint\n\
         508-514-0320,\"way too long\u{7}\",,,\n",
    )
    .unwrap();
    let first = format!("sqlite://{}", dir.path().join("first.db").display());
    let output = run(callview(dir.path())
        .args(["contacts", "import", csv.to_str().unwrap()])
        .env("DATABASE_URL", &first));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "rejected rows fail the command");
    assert!(
        stdout.contains("imported 3 contacts, 2 rows rejected"),
        "{stdout}"
    );
    assert!(
        stderr.contains("line 3:") && stderr.contains("not a phone number"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 6:") && stderr.contains("`name`"),
        "{stderr}"
    );

    let export = |url: &str| {
        let output = run(callview(dir.path())
            .args(["contacts", "export"])
            .env("DATABASE_URL", url));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let exported = export(&first);
    assert!(
        exported.starts_with("phone,name,company,notes,tags\n"),
        "{exported}"
    );
    assert!(
        exported.contains("+19788447773,Mrs Alvarez,Alvarez Plumbing,\"quoted $240, call back Friday\",VIP; quote"),
        "{exported}"
    );
    assert!(
        exported.contains("+16175006181,,Acme,,complaint"),
        "{exported}"
    );
    assert_eq!(exported.lines().count(), 4, "{exported}");

    // What is exported imports back unchanged.
    let again = dir.path().join("again.csv");
    std::fs::write(&again, &exported).unwrap();
    let second = format!("sqlite://{}", dir.path().join("second.db").display());
    let output = run(callview(dir.path())
        .args(["contacts", "import", again.to_str().unwrap()])
        .env("DATABASE_URL", &second));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(export(&second), exported);
}
