//! The operations commands through the real binary: settings from a config
//! file (precedence flag > env > file > default, unknown keys, secrets
//! redacted by `config check`), `healthcheck`, and `backup` of a SQLite
//! database another process keeps writing, restored as the README says.

mod reliability;

use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use callview_core::sync::ingest_in;
use callview_core::testkit::{self, CallBuilder, COMPANY};
use callview_core::{Call, Store};
use reliability::*;

fn run(command: &mut std::process::Command) -> Output {
    command.stdin(Stdio::null()).output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn settings_come_from_flags_then_env_then_the_file_then_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("callview.toml");
    std::fs::write(
        &file,
        "database_url = \"postgres://app:hunter2@db.internal/calls\"\n\
         default_region = \"GB\"\n\
         [serve]\n\
         listen = \"0.0.0.0:4100\"\n\
         api_token = \"file-token-s3cret\"\n\
         timezone = \"Europe/Paris\"\n\
         sync_interval = 90\n",
    )
    .unwrap();
    let output = run(callview(dir.path())
        .args([
            "config",
            "check",
            "--json",
            "--database-url",
            "sqlite://flag.db",
        ])
        .env("CALLVIEW_CONFIG", &file)
        .env("CALLVIEW_TIMEZONE", "America/New_York")
        .env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000")
        .env("TWILIO_AUTH_TOKEN", "twilio-s3cret"));
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    for secret in ["hunter2", "file-token-s3cret", "twilio-s3cret"] {
        assert!(!all.contains(secret), "{secret} shown: {all}");
    }
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let setting = |key: &str| {
        report["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("{key}: {report}"))
            .clone()
    };
    let is = |key: &str, value: &str, source: &str| {
        let s = setting(key);
        assert_eq!(
            (s["value"].as_str(), s["source"].as_str()),
            (Some(value), Some(source)),
            "{key}: {s}"
        );
    };
    is("database_url", "sqlite://flag.db", "flag");
    is("timezone", "America/New_York", "env CALLVIEW_TIMEZONE");
    is("listen", "0.0.0.0:4100", "file");
    is("api_token", "***", "file");
    is("sync_interval", "90", "file");
    is("default_region", "GB", "file");
    is("recording_cache_mb", "1024", "default");
    is("TWILIO_AUTH_TOKEN", "***", "env TWILIO_AUTH_TOKEN");
    assert_eq!(setting("public_url")["source"], "unset");
    assert_eq!(report["config_file"], file.display().to_string());
    assert_eq!(report["ok"], true, "{report}");

    // The file's password is redacted where it is shown, and a file
    // holding secrets that others may read is warned about.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let output = run(callview(dir.path())
            .args(["config", "check"])
            .env("CALLVIEW_CONFIG", &file)
            .env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000")
            .env("TWILIO_AUTH_TOKEN", "twilio-s3cret"));
        let all = text(&output);
        assert!(output.status.success(), "{all}");
        assert!(
            all.contains("postgres://app:***@db.internal/calls"),
            "{all}"
        );
        assert!(all.contains("chmod 600"), "{all}");
        assert!(
            !all.contains("hunter2") && !all.contains("file-token-s3cret"),
            "{all}"
        );
    }

    // What would stop `serve` is a problem `config check` reports (exit 1):
    // no token on a public address.
    std::fs::write(&file, "[serve]\nlisten = \"0.0.0.0:4100\"\n").unwrap();
    let output = run(callview(dir.path())
        .args(["config", "check"])
        .env("CALLVIEW_CONFIG", &file));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("refusing to listen on 0.0.0.0:4100"), "{all}");
}

#[test]
fn unknown_keys_and_bad_values_in_the_file_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("callview.toml");
    std::fs::write(
        &file,
        "database_url = \"sqlite://x.db\"\n\n[serve]\nlisten_adress = \"0.0.0.0:1\"\n",
    )
    .unwrap();
    let output = run(callview(dir.path()).args(["sync", "--config"]).arg(&file));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(
        all.contains("line 4: unknown setting `serve.listen_adress`")
            && all.contains("did you mean `listen`"),
        "{all}"
    );
    assert!(!dir.path().join("x.db").exists(), "nothing ran");

    std::fs::write(&file, "[serve]\ntimezone = \"Mars/Olympus\"\n").unwrap();
    let output = run(callview(dir.path()).args(["serve", "--config"]).arg(&file));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(
        all.contains("Mars/Olympus")
            && all.contains("the value of `timezone` comes from the config file"),
        "{all}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_healthcheck_take_the_address_and_token_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = dir.path().join("callview.toml");
    std::fs::write(
        &file,
        format!(
            "database_url = \"sqlite://{}\"\n[serve]\nlisten = \"127.0.0.1:{port}\"\napi_token = \"file-token\"\nno_initial_sync = true\nsync_interval = 0\ndemo = true\n",
            dir.path().join("calls.db").display()
        ),
    )
    .unwrap();
    let child = callview(dir.path())
        .args(["serve", "--config"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Kill(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&format!("{base}/healthz"), Duration::from_secs(60)).await;
    let http = reqwest::Client::new();
    let status = |token: Option<&'static str>| {
        let mut request = http.get(format!("{base}/api/conversations"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(None).await, 401, "the file's token is required");
    assert_eq!(status(Some("file-token")).await, 200);

    // `healthcheck` reads the same file: the same address.
    let file2 = file.clone();
    let dir2 = dir.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        run(callview(&dir2)
            .args(["healthcheck", "--config"])
            .arg(&file2))
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("/healthz answered 200"),
        "{}",
        text(&output)
    );

    let _ = child.0.kill();
    let _ = child.0.wait();
    let dir2 = dir.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        run(callview(&dir2).args([
            "healthcheck",
            "--listen",
            &format!("0.0.0.0:{port}"),
            "--timeout",
            "2",
        ]))
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("cannot reach 127.0.0.1"),
        "{}",
        text(&output)
    );
}

const BATCH: u64 = 30;

fn batch(n: u64) -> Vec<Call> {
    (0..BATCH)
        .map(|i| {
            let k = n * BATCH + i;
            CallBuilder::new(&testkit::sid(k + 1))
                .from(&format!("+1978844{:04}", 7000 + k % 23))
                .to(COMPANY)
                .direction("inbound")
                .status(if k % 4 == 0 { "busy" } else { "completed" })
                .start(testkit::at(k as i64))
                .duration(if k % 4 == 0 { 0 } else { 45 })
                .build()
        })
        .collect()
}

async fn ingest(store: &dyn Store, n: u64) {
    let mut tx = store.begin_ingest().await.unwrap();
    ingest_in(tx.as_mut(), &testkit::rules(), batch(n))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_copies_a_database_another_process_writes_and_the_copy_restores() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calls.db");
    let url = format!("sqlite://{}", db.display());
    let store: Arc<dyn Store> = callview_server::db::open_store(&url).await.unwrap();
    for n in 0..20 {
        ingest(store.as_ref(), n).await;
    }
    // This process writes; `callview backup` (another process) copies.
    let committed = Arc::new(AtomicU64::new(20));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, committed, stop) = (store.clone(), committed.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let n = committed.load(Ordering::SeqCst);
                ingest(store.as_ref(), n).await;
                committed.store(n + 1, Ordering::SeqCst);
            }
        })
    };
    let copy = dir.path().join("backup.db");
    let (dir2, url2, copy2) = (dir.path().to_owned(), url.clone(), copy.clone());
    let output = tokio::task::spawn_blocking(move || {
        run(callview(&dir2)
            .arg("backup")
            .arg(&copy2)
            .args(["--database-url", &url2]))
    })
    .await
    .unwrap();
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("backed up"), "{}", text(&output));

    // A second backup to the same file needs --force.
    let (dir2, url2, copy2) = (dir.path().to_owned(), url.clone(), copy.clone());
    let refused = tokio::task::spawn_blocking(move || {
        run(callview(&dir2)
            .arg("backup")
            .arg(&copy2)
            .args(["--database-url", &url2]))
    })
    .await
    .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused).contains("exists"), "{}", text(&refused));

    let copied = callview_server::db::open_store(&format!("sqlite://{}", copy.display()))
        .await
        .unwrap();
    testkit::assert_invariants(copied.as_ref()).await;
    let calls = copied.counts().await.unwrap().calls;
    assert_eq!(calls % BATCH, 0, "{calls} calls: part of a batch");
    assert!(calls >= 20 * BATCH, "{calls}");
    let in_copy = testkit::snapshot(copied.as_ref()).await.unwrap();
    drop(copied);
    drop(store);

    // Restore: the server stopped, -wal and -shm removed, the copy put in
    // place; callview reads it.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::copy(&copy, &db).unwrap();
    let (dir2, url2) = (dir.path().to_owned(), url.clone());
    let output = tokio::task::spawn_blocking(move || {
        run(callview(&dir2).args(["contacts", "export", "--database-url", &url2]))
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().count(),
        24,
        "a header and the 23 callers: {}",
        text(&output)
    );
    let restored = callview_server::db::open_store(&url).await.unwrap();
    testkit::assert_invariants(restored.as_ref()).await;
    assert_eq!(testkit::snapshot(restored.as_ref()).await.unwrap(), in_copy);
}

#[test]
fn backup_of_postgres_points_at_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(callview(dir.path()).args([
        "backup",
        "calls.dump",
        "--database-url",
        "postgres://app:hunter2@127.0.0.1:1/calls",
    ]));
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("pg_dump"), "{all}");
    assert!(!all.contains("hunter2"), "{all}");
}
