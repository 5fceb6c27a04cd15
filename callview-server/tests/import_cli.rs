//! `callview import`: Twilio call dumps imported into both stores equal a
//! sync of the same calls (any order, any split into files, any batch
//! size), a second import changes nothing, bad records are skipped with
//! their position, broken input keeps what was imported before it or (not
//! JSON) writes nothing; and the built binary on files and standard input.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use callview_core::import::{import_calls, ImportError, ImportReport, InputForm};
use callview_core::testkit::{assert_invariants, snapshot};
use callview_core::{Call, Normalizer, OwnedNumbers, PartyRules, Store, SyncEngine, SyncMode};
use chrono::{SecondsFormat, Utc};
use common::*;
use serde_json::{Map, Value};

// ---- dumps ----

fn camel(key: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for ch in key.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// The record as the Twilio CLI prints it: camelCase keys, ISO 8601 dates.
fn cli_record(call: &Call) -> Value {
    let rest = match &call.raw {
        Value::Object(_) => call.raw.clone(),
        _ => call.to_rest_json(),
    };
    let Value::Object(fields) = rest else {
        unreachable!()
    };
    let mut out = Map::new();
    for (key, value) in fields {
        let value = match (key.as_str(), &value) {
            ("start_time" | "end_time" | "date_created" | "date_updated", Value::String(t)) => {
                let time = callview_core::call::parse_twilio_time(t).unwrap();
                Value::String(time.to_rfc3339_opts(SecondsFormat::Millis, true))
            }
            _ => value,
        };
        out.insert(camel(&key), value);
    }
    Value::Object(out)
}

/// The CLI's `-o json`: one pretty-printed array.
fn cli_dump(calls: &[Call]) -> Vec<u8> {
    let records: Vec<Value> = calls.iter().map(cli_record).collect();
    serde_json::to_vec_pretty(&records).unwrap()
}

/// JSON Lines of REST pages of `per_page` snake_case records.
fn rest_pages(calls: &[Call], per_page: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, page) in calls.chunks(per_page).enumerate() {
        let records: Vec<Value> = page.iter().map(Call::to_rest_json).collect();
        let envelope = serde_json::json!({
            "first_page_uri": "/2010-04-01/Accounts/AC/Calls.json?PageSize=50&Page=0",
            "page": i,
            "page_size": per_page,
            "calls": records,
            "next_page_uri": null,
        });
        serde_json::to_writer(&mut out, &envelope).unwrap();
        out.push(b'\n');
    }
    out
}

/// A deterministic shuffle (no `rand` in this crate's dev-dependencies).
fn shuffled(mut calls: Vec<Call>, seed: u64) -> Vec<Call> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    for i in (1..calls.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let j = (state >> 33) as usize % (i + 1);
        calls.swap(i, j);
    }
    calls
}

/// The rules a sync of `sim` uses: the account's own numbers are owned.
fn sim_rules(sim: &callview_sim::SimulatedTwilio) -> PartyRules {
    let normalizer = Normalizer::default();
    let numbers: Vec<String> = sim
        .lock()
        .owned_numbers()
        .into_iter()
        .map(|n| n.phone_number)
        .collect();
    let owned = OwnedNumbers::from_raw(&normalizer, numbers.iter().map(String::as_str));
    PartyRules::new(normalizer, owned)
}

async fn import(
    store: &Arc<dyn Store>,
    rules: &PartyRules,
    bytes: Vec<u8>,
    batch: usize,
) -> ImportReport {
    import_calls(
        store.as_ref(),
        rules,
        std::io::Cursor::new(bytes),
        batch,
        None,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

// ---- store-backed tests, on both stores ----

async fn an_import_equals_a_sync_of_the_same_calls(backend: Backend) {
    let sim = sim(300, 11);
    let calls = sim.calls();
    let total = calls.len() as u64;
    let rules = sim_rules(&sim);

    // B: a sync of the account.
    let synced = store(backend).await;
    let report = SyncEngine::new(
        Arc::new(sim.clone()),
        Arc::clone(&synced),
        PartyRules::default(),
    )
    .with_media(false)
    // Imports hold calls: the sync compared with them leaves texts out.
    .with_texts(false)
    .run(
        SyncMode::Since(Utc::now() - chrono::Duration::days(32)),
        None,
    )
    .await
    .unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let expected = snapshot(synced.as_ref()).await.unwrap();
    assert_eq!(expected.counts.calls, total);

    // A: the same calls shuffled, in two files of two forms, small batches
    // (trees split across batches and files).
    let mixed = shuffled(calls.clone(), 3);
    let (first, second) = mixed.split_at(mixed.len() / 2);
    let imported = store(backend).await;
    let a = import(&imported, &rules, cli_dump(first), 37).await;
    assert_eq!(a.form, Some(InputForm::Array));
    let b = import(&imported, &rules, rest_pages(second, 50), 64).await;
    assert_eq!(b.form, Some(InputForm::JsonLines));
    assert_eq!(a.sync.fetched + b.sync.fetched, total);
    assert!(a.rejected.is_empty() && b.rejected.is_empty());
    assert_eq!(a.sync.inserted + b.sync.inserted, total);
    assert!(a.sync.pages >= 4, "{a:?}");
    assert_invariants(imported.as_ref()).await;
    assert_eq!(snapshot(imported.as_ref()).await.unwrap(), expected);

    // Importing the same files again changes nothing.
    let again = import(&imported, &rules, cli_dump(first), 1000).await;
    assert_eq!(
        (again.sync.inserted, again.sync.updated, again.sync.moved),
        (0, 0, 0)
    );
    assert_eq!(again.sync.unchanged, first.len() as u64);
    let again = import(&imported, &rules, rest_pages(second, 50), 1000).await;
    assert_eq!(
        (again.sync.inserted, again.sync.updated, again.sync.moved),
        (0, 0, 0)
    );
    assert_eq!(snapshot(imported.as_ref()).await.unwrap(), expected);

    // C: another order, one file, batches of 7: the same state.
    let mut reversed = calls.clone();
    reversed.reverse();
    let other = store(backend).await;
    let c = import(&other, &rules, cli_dump(&reversed), 7).await;
    assert_eq!(c.sync.inserted, total);
    assert_eq!(snapshot(other.as_ref()).await.unwrap(), expected);

    // A sync over the imported store finds every call where it belongs.
    let over = SyncEngine::new(
        Arc::new(sim.clone()),
        Arc::clone(&other),
        PartyRules::default(),
    )
    .with_media(false)
    .with_texts(false)
    .run(
        SyncMode::Since(Utc::now() - chrono::Duration::days(32)),
        None,
    )
    .await
    .unwrap();
    assert_eq!(over.inserted, 0, "{over:?}");
    assert_eq!(snapshot(other.as_ref()).await.unwrap(), expected);
}

async fn bad_records_are_skipped_with_their_position(backend: Backend) {
    let sim = sim(40, 5);
    let calls = sim.calls();
    let rules = sim_rules(&sim);
    let mut records: Vec<Value> = calls.iter().map(cli_record).collect();
    records.insert(
        10,
        serde_json::json!({"sid": "CAbad", "startTime": "not a time"}),
    );
    records.insert(20, serde_json::json!({"status": "completed"}));
    let store = store(backend).await;
    let report = import(
        &store,
        &rules,
        serde_json::to_vec_pretty(&records).unwrap(),
        16,
    )
    .await;
    assert_eq!(report.sync.fetched, calls.len() as u64 + 2);
    assert_eq!(report.sync.inserted, calls.len() as u64);
    let positions: Vec<(u64, Option<&str>)> = report
        .rejected
        .iter()
        .map(|r| (r.record, r.sid.as_deref()))
        .collect();
    assert_eq!(positions, [(11, Some("CAbad")), (21, None)]);
    assert!(report.rejected[0].reason.contains("start_time"));
    assert!(report.rejected[0].line > 1);
    assert_eq!(report.sync.skipped.len(), 2);
    assert!(
        report.sync.skipped[0]
            .reason
            .starts_with("record 11, line "),
        "{:?}",
        report.sync.skipped
    );
    assert_eq!(store.counts().await.unwrap().calls, calls.len() as u64);
    assert_invariants(store.as_ref()).await;
}

async fn broken_input_writes_nothing_or_keeps_what_came_before(backend: Backend) {
    let sim = sim(60, 8);
    let calls = sim.calls();
    let rules = sim_rules(&sim);
    let store_of = store;
    let store = store_of(backend).await;

    for garbage in [
        &b"this is not JSON"[..],
        b"",
        b"{\"name\": \"not calls\"}",
        b"{oops",
    ] {
        let failure = import_calls(
            store.as_ref(),
            &rules,
            std::io::Cursor::new(garbage.to_vec()),
            10,
            None,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                failure.error,
                ImportError::Unsupported { .. }
                    | ImportError::Empty
                    | ImportError::Malformed { records: 0, .. }
            ),
            "{failure}"
        );
        assert!(
            failure.to_string().contains("nothing was imported"),
            "{failure}"
        );
        assert_eq!(failure.report.sync.pages, 0);
    }
    assert_eq!(store.counts().await.unwrap().calls, 0);

    // Truncated part-way: the batches before the break are kept.
    let dump = cli_dump(&calls);
    let cut = dump.len() * 3 / 4;
    let failure = import_calls(
        store.as_ref(),
        &rules,
        std::io::Cursor::new(dump[..cut].to_vec()),
        10,
        None,
    )
    .await
    .unwrap_err();
    let ImportError::Malformed { line, records, .. } = failure.error else {
        panic!("{failure}");
    };
    assert!(line > 1);
    assert!(records > 10, "{records}");
    let kept = store.counts().await.unwrap().calls;
    assert_eq!(kept, records);
    assert_eq!(failure.report.sync.inserted, kept);
    assert!(failure.to_string().contains("are kept"), "{failure}");
    assert_invariants(store.as_ref()).await;

    // The whole file afterwards completes the import.
    let report = import(&store, &rules, dump, 10).await;
    assert_eq!(report.sync.inserted, calls.len() as u64 - kept);
    // A leg kept without its parent moves under it now (updated).
    assert_eq!(report.sync.unchanged + report.sync.updated, kept);
    let whole = store_of(backend).await;
    import(&whole, &rules, cli_dump(&calls), 1000).await;
    assert_eq!(
        snapshot(store.as_ref()).await.unwrap(),
        snapshot(whole.as_ref()).await.unwrap()
    );
}

on_both_stores!(
    an_import_equals_a_sync_of_the_same_calls,
    bad_records_are_skipped_with_their_position,
    broken_input_writes_nothing_or_keeps_what_came_before,
);

#[tokio::test]
async fn a_store_failure_stops_the_reader() {
    // An endless input: the import must stop at the store's first error.
    struct Endless(u64, Vec<u8>);
    impl std::io::Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.1.is_empty() {
                self.0 += 1;
                self.1 = format!("{{\"sid\": \"CA{}\"}}\n", self.0).into_bytes();
            }
            let n = buf.len().min(self.1.len());
            buf[..n].copy_from_slice(&self.1[..n]);
            self.1.drain(..n);
            Ok(n)
        }
    }
    let store: Arc<dyn Store> = Arc::new(BrokenStore);
    let failure = import_calls(
        store.as_ref(),
        &PartyRules::default(),
        Endless(0, Vec::new()),
        100,
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(failure.error, ImportError::Store(_)), "{failure}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_json_lines_file_imports_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let n = 20_000u64;
    for i in 0..n {
        writeln!(
            file,
            r#"{{"sid": "CA{i:032x}", "from": "+1617555{:04}", "to": "+19788447773", "status": "completed", "direction": "inbound", "startTime": "2026-01-{:02}T10:00:00Z", "duration": "{}"}}"#,
            i % 10_000,
            1 + i % 28,
            i % 600
        )
        .unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let store = store(Backend::Sqlite).await;
    let seen = std::sync::Mutex::new(Vec::new());
    let on_progress = |p: callview_core::import::ImportProgress| seen.lock().unwrap().push(p);
    let report = import_calls(
        store.as_ref(),
        &PartyRules::default(),
        std::fs::File::open(&path).unwrap(),
        1000,
        Some(&on_progress),
    )
    .await
    .unwrap();
    assert_eq!(report.sync.inserted, n);
    assert_eq!(report.sync.pages, 20);
    assert_eq!(report.bytes, std::fs::metadata(&path).unwrap().len());
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 20);
    assert!(seen
        .windows(2)
        .all(|w| w[0].bytes <= w[1].bytes && w[0].records < w[1].records));
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.calls, counts.conversations), (n, 10_000));
}

// ---- the built binary ----

const BIN: &str = env!("CARGO_BIN_EXE_callview");

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

/// Runs `command` with `stdin` on its standard input.
fn run(command: &mut Command, stdin: &[u8]) -> (bool, String, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn stored_calls(db: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT count(*) FROM messages", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn the_binary_imports_a_file_with_a_bad_record_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim(30, 9);
    let calls = sim.calls();
    let mut records: Vec<Value> = calls.iter().map(cli_record).collect();
    records.insert(3, serde_json::json!({"sid": "CAbad", "duration": "-3"}));
    std::fs::write(
        dir.path().join("calls.json"),
        serde_json::to_vec_pretty(&records).unwrap(),
    )
    .unwrap();
    let db = dir.path().join("x.db");
    let url = format!("sqlite://{}", db.display());

    let (ok, stdout, stderr) = run(
        callview(dir.path()).args(["import", "calls.json", "--json", "--database-url", &url]),
        b"",
    );
    assert!(ok, "stdout {stdout}\nstderr {stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["fetched"], calls.len() as u64 + 1);
    assert_eq!(report["inserted"], calls.len() as u64);
    assert_eq!(report["updated"], 0);
    assert_eq!(report["form"], "array");
    assert_eq!(report["skipped"].as_array().unwrap().len(), 1);
    assert_eq!(report["skipped"][0]["sid"], "CAbad");
    assert!(
        report["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("record 4, line "),
        "{report}"
    );
    assert_eq!(report["rejected"][0]["record"], 4);
    assert!(report["rejected"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("duration"));
    assert!(report.get("error").is_none());
    assert_eq!(stored_calls(&db), calls.len() as i64);

    // Again, from standard input, as the table: nothing changes.
    let bytes = std::fs::read(dir.path().join("calls.json")).unwrap();
    let (ok, stdout, stderr) = run(
        callview(dir.path()).args(["import", "-", "--database-url", &url]),
        &bytes,
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("standard input"), "{stdout}");
    assert!(stdout.contains("unchanged"), "{stdout}");
    assert!(stdout.contains("record 4, line"), "{stdout}");
    let inserted_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("inserted"))
        .unwrap();
    assert!(inserted_line.trim_end().ends_with(" 0"), "{stdout}");
    assert_eq!(stored_calls(&db), calls.len() as i64);
}

#[test]
fn the_binary_refuses_input_that_is_not_json_and_reports_a_truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let url = format!("sqlite://{}", db.display());

    let (ok, stdout, stderr) = run(
        callview(dir.path()).args(["import", "-", "--database-url", &url]),
        b"sid,from,to\nCA1,+1,+2\n",
    );
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("not a Twilio call dump"), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert_eq!(stored_calls(&db), 0);

    let (ok, _, stderr) = run(
        callview(dir.path()).args(["import", "missing.json", "--database-url", &url]),
        b"",
    );
    assert!(!ok);
    assert!(stderr.contains("cannot open missing.json"), "{stderr}");

    // A pretty-printed array cut in the middle.
    let sim = sim(30, 4);
    let dump = cli_dump(&sim.calls());
    let (ok, stdout, stderr) = run(
        callview(dir.path()).args([
            "import",
            "-",
            "--batch",
            "5",
            "--json",
            "--database-url",
            &url,
        ]),
        &dump[..dump.len() / 2],
    );
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("malformed JSON at line"), "{stderr}");
    assert!(stderr.contains("are kept"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(
        report["error"].as_str().unwrap().contains("malformed JSON"),
        "{report}"
    );
    let kept = report["inserted"].as_i64().unwrap();
    assert!(kept > 0, "{report}");
    assert_eq!(stored_calls(&db), kept);
}

#[test]
fn help_documents_import() {
    let dir = tempfile::tempdir().unwrap();
    let (_, top, _) = run(callview(dir.path()).arg("--help"), b"");
    assert!(top.contains("import"), "{top}");
    let (_, help, _) = run(callview(dir.path()).args(["import", "--help"]), b"");
    for needle in [
        "twilio api:core:calls:list",
        "JSON Lines",
        "--batch",
        "--json",
        "--owned-numbers",
        "standard input",
    ] {
        assert!(
            help.contains(needle),
            "import --help lacks {needle}:\n{help}"
        );
    }
}
