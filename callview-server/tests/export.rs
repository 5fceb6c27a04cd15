//! `GET /api/export/calls.csv` and `.jsonl`, and `callview export`, on
//! both stores: every call once (legs included) with the list's filters
//! and start time bounds, a dated attachment, CSV that reads back exactly
//! (commas, quotes, line breaks, non-ASCII in notes and names), JSON Lines
//! that `callview import` turns back into the same state, 400s for bad
//! filters, the API token, and the binary writing a file.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::Arc;

use callview_core::export::{ExportQuery, CSV_COLUMNS};
use callview_core::import::import_calls;
use callview_core::store::ConversationQuery;
use callview_core::testkit::{snapshot, walk_by_cursor, StoreSnapshot};
use callview_core::{Normalizer, OwnedNumbers, PartyRules, Store};
use callview_server::AppState;
use chrono::{DateTime, Utc};
use common::*;
use serde_json::{json, Value};

/// A CSV export read back: the header checked, each row by column name.
fn read_csv(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(bytes);
    let headers = reader.headers().unwrap().clone();
    assert_eq!(headers.iter().collect::<Vec<_>>(), CSV_COLUMNS);
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

fn read_jsonl(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// GET `path`: the status, the headers and the body.
async fn fetch(server: &TestServer, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = server.http.get(server.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

/// The SIDs of every call of the conversations the list keeps with `list`'s filters.
async fn calls_of_listed(store: &dyn Store, list: &ConversationQuery) -> BTreeSet<String> {
    let mut sids = BTreeSet::new();
    for view in walk_by_cursor(store, list).await.unwrap() {
        for call in store
            .conversation_calls(view.conversation.id)
            .await
            .unwrap()
        {
            sids.insert(call.call.sid.to_string());
        }
    }
    sids
}

/// Every stored call, by SID.
async fn all_calls(store: &dyn Store) -> BTreeMap<String, callview_core::StoredCall> {
    let mut calls = BTreeMap::new();
    for view in walk_by_cursor(store, &ConversationQuery::page(100, 0))
        .await
        .unwrap()
    {
        for call in store
            .conversation_calls(view.conversation.id)
            .await
            .unwrap()
        {
            calls.insert(call.call.sid.to_string(), call);
        }
    }
    calls
}

fn rfc3339(text: &str) -> DateTime<Utc> {
    assert!(text.ends_with('Z'), "{text} is not UTC");
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

// ---- the routes ----

async fn csv_export_lists_every_call_as_a_dated_attachment(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    let (status, headers, body) = fetch(&server, "/api/export/calls.csv").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "text/csv; charset=utf-8");
    let today = Utc::now().date_naive().format("%Y-%m-%d");
    assert_eq!(
        header(&headers, "content-disposition"),
        format!("attachment; filename=\"callview-calls-{today}.csv\"")
    );
    assert!(
        headers.get("content-length").is_none(),
        "the body is streamed"
    );
    let rows = read_csv(&body);
    let stored = all_calls(server.store.as_ref()).await;
    assert_eq!(rows.len(), stored.len(), "one row per call, legs included");
    assert_eq!(
        rows.iter()
            .map(|r| r["sid"].clone())
            .collect::<BTreeSet<_>>(),
        stored.keys().cloned().collect::<BTreeSet<_>>()
    );
    let mut legs = 0;
    let mut recorded = 0;
    for row in &rows {
        let call = &stored[&row["sid"]];
        assert_eq!(row["root_call_sid"], call.root_sid.as_str());
        assert_eq!(
            row["parent_call_sid"],
            call.call
                .parent_call_sid
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default()
        );
        if !call.is_root() {
            legs += 1;
            assert_eq!(row["wait_time"], "0");
            assert_eq!(row["talk_time"], call.call.duration_secs().to_string());
        }
        assert_eq!(row["status"], call.call.status.as_str());
        assert_eq!(row["direction"], call.call.direction.as_str());
        assert!(!row["external_id"].is_empty());
        if !row["start_time"].is_empty() {
            assert_eq!(Some(rfc3339(&row["start_time"])), call.call.start_time);
        }
        if !row["end_time"].is_empty() {
            rfc3339(&row["end_time"]);
        }
        if !row["recording_url"].is_empty() {
            recorded += 1;
            assert!(
                row["recording_url"].starts_with("/api/recordings/RE"),
                "{}",
                row["recording_url"]
            );
        }
    }
    assert!(legs > 10, "the account has forwarded calls: {legs} legs");
    assert!(recorded > 0, "recordings are linked");
}

async fn jsonl_export_matches_the_csv_and_carries_the_twilio_record(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    let (status, headers, body) = fetch(&server, "/api/export/calls.jsonl").await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "application/x-ndjson");
    assert!(header(&headers, "content-disposition").ends_with(".jsonl\""));
    let lines = read_jsonl(&body);
    let (_, _, csv) = fetch(&server, "/api/export/calls.csv").await;
    let rows = read_csv(&csv);
    assert_eq!(lines.len(), rows.len());
    for (line, row) in lines.iter().zip(&rows) {
        assert_eq!(line["raw"]["sid"], line["sid"], "raw is the Twilio record");
        for column in CSV_COLUMNS {
            let cell = &row[column];
            let text = match &line[column] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Array(tags) => tags
                    .iter()
                    .map(|t| t.as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
                    .join("; "),
                other => panic!("{column}: {other}"),
            };
            assert_eq!(&text, cell, "{column} of {}", line["sid"]);
        }
    }
}

async fn filters_are_the_lists_and_bound_start_times(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    let store = server.store.as_ref();
    let normalizer = Normalizer::default();
    // A number that has calls.
    let (_, page) = server
        .get("/api/conversations?limit=1&direction=inbound")
        .await;
    let number = page["conversations"][0]["contact"]["handle"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut non_empty = 0;
    for query in [
        "status=missed".to_owned(),
        "status=answered".to_owned(),
        "direction=outbound".to_owned(),
        "direction=internal".to_owned(),
        "has_recording=true".to_owned(),
        format!("q={}", number.replace('+', "%2B")),
        "status=missed&direction=inbound".to_owned(),
    ] {
        let params = callview_server::params::QueryParams::parse(Some(&query)).unwrap();
        let list = params.conversation_query(7, &normalizer).unwrap();
        let expected = calls_of_listed(store, &list).await;
        let (status, _, body) = fetch(&server, &format!("/api/export/calls.csv?{query}")).await;
        assert_eq!(status, 200, "{query}");
        let exported: Vec<String> = read_csv(&body)
            .into_iter()
            .map(|r| r["sid"].clone())
            .collect();
        assert_eq!(
            exported.len(),
            exported.iter().collect::<BTreeSet<_>>().len(),
            "{query}: a call listed twice"
        );
        assert_eq!(
            exported.into_iter().collect::<BTreeSet<_>>(),
            expected,
            "{query}"
        );
        if !expected.is_empty() {
            non_empty += 1;
        }
    }
    assert!(non_empty >= 5, "{non_empty}");

    // `since`/`until` bound each call's start time (Unix ms or RFC 3339).
    let stored = all_calls(store).await;
    let mut starts: Vec<DateTime<Utc>> =
        stored.values().filter_map(|c| c.call.start_time).collect();
    starts.sort();
    let (since, until) = (starts[starts.len() / 4], starts[starts.len() * 3 / 4]);
    let expected: BTreeSet<String> = stored
        .values()
        .filter(|c| c.call.start_time.is_some_and(|t| t >= since && t < until))
        .map(|c| c.call.sid.to_string())
        .collect();
    let (status, _, body) = fetch(
        &server,
        &format!(
            "/api/export/calls.jsonl?since={}&until={}",
            since.timestamp_millis(),
            until.to_rfc3339().replace('+', "%2B")
        ),
    )
    .await;
    assert_eq!(status, 200);
    let lines = read_jsonl(&body);
    for line in &lines {
        let start = rfc3339(line["start_time"].as_str().unwrap());
        assert!(start >= since && start < until);
    }
    let exported: BTreeSet<String> = lines
        .iter()
        .map(|l| l["sid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(exported, expected);
    assert!(!expected.is_empty());
}

async fn notes_and_names_round_trip_through_csv(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    let (_, page) = server.get("/api/conversations?limit=1").await;
    let conversation = &page["conversations"][0];
    let message_id = conversation["last_message"]["id"].as_str().unwrap();
    let sid = conversation["last_message"]["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let contact_id = conversation["contact"]["id"].as_str().unwrap();
    let notes = "quoted $240, \"call back\" Friday\nsecond line\r\nthird: café, 東京 ☎ 👍";
    let name = "O'Brien, \"Pat\" — Ünïcode";
    let patch = |path: String, body: Value| {
        let request = server
            .http
            .patch(server.url(&path))
            .header("content-type", "application/json")
            .body(body.to_string());
        async move { into_json(request.send().await.unwrap()).await }
    };
    let (status, body) = patch(
        format!("/api/messages/{message_id}"),
        json!({"notes": notes, "tags": ["VIP", "Zürich"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = patch(format!("/api/contacts/{contact_id}"), json!({"name": name})).await;
    assert_eq!(status, 200, "{body}");

    let (_, _, csv) = fetch(&server, "/api/export/calls.csv").await;
    let rows = read_csv(&csv);
    let row = rows
        .iter()
        .find(|r| r["sid"] == sid)
        .expect("the edited call");
    assert_eq!(row["notes"], notes);
    assert_eq!(row["tags"], "VIP; Zürich");
    assert_eq!(row["contact_name"], name);
    let external_id = row["external_id"].clone();
    for other in rows.iter().filter(|r| r["external_id"] == external_id) {
        assert_eq!(
            other["contact_name"], name,
            "every call of the conversation"
        );
    }
    let (_, _, jsonl) = fetch(&server, "/api/export/calls.jsonl").await;
    let line = read_jsonl(&jsonl)
        .into_iter()
        .find(|l| l["sid"] == sid.as_str())
        .unwrap();
    assert_eq!(line["notes"], notes);
    assert_eq!(line["tags"], json!(["VIP", "Zürich"]));
}

async fn an_export_that_matches_nothing_is_a_header_or_nothing(backend: Backend) {
    for loaded_store in [false, true] {
        let server = if loaded_store {
            loaded(backend).await.0
        } else {
            spawn(AppState::new(store(backend).await)).await
        };
        for query in ["", "?tag=no-such-tag", "?since=2100-01-01T00:00:00Z"] {
            if loaded_store && query.is_empty() {
                continue;
            }
            let (status, headers, body) =
                fetch(&server, &format!("/api/export/calls.csv{query}")).await;
            assert_eq!(status, 200, "{query}");
            assert_eq!(header(&headers, "content-type"), "text/csv; charset=utf-8");
            assert_eq!(
                String::from_utf8(body).unwrap(),
                format!("{}\n", CSV_COLUMNS.join(","))
            );
            let (status, _, body) =
                fetch(&server, &format!("/api/export/calls.jsonl{query}")).await;
            assert_eq!(status, 200, "{query}");
            assert!(body.is_empty(), "{query}");
        }
    }
}

async fn bad_filters_are_json_400s(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    for (query, name) in [
        ("status=bogus", "status"),
        ("direction=up", "direction"),
        ("since=soon", "since"),
        ("until=", "until"),
        ("since=2000&until=1000", "since"),
        ("q=%07", "q"),
        ("has_recording=maybe", "has_recording"),
        ("limit=5", "limit"),
        ("offset=5", "offset"),
        ("cursor=abc", "cursor"),
        ("status=missed&status=busy", "status"),
    ] {
        for path in ["/api/export/calls.csv", "/api/export/calls.jsonl"] {
            let (status, body) = server.get(&format!("{path}?{query}")).await;
            assert_eq!(status, 400, "{path}?{query}: {body}");
            assert_eq!(assert_error(&body), "invalid_parameter", "{query}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(&format!("`{name}`")), "{query}: {message}");
        }
    }
}

async fn exports_need_the_api_token(backend: Backend) {
    const TOKEN: &str = "export-secret-token";
    let store = store(backend).await;
    let sim = sim(40, 3);
    load(&store, &sim).await;
    let server = spawn(AppState::new(store).with_api_token(Some(TOKEN))).await;
    for path in ["/api/export/calls.csv", "/api/export/calls.jsonl"] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(assert_error(&body), "unauthorized");
        let response = server
            .http
            .get(server.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(!response.bytes().await.unwrap().is_empty());
    }
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

/// The state without recordings (an import restores calls, not media).
fn without_recordings(mut snapshot: StoreSnapshot) -> StoreSnapshot {
    for conversation in snapshot.conversations.values_mut() {
        for message in &mut conversation.messages {
            message.root.recording_url = None;
            for leg in &mut message.legs {
                leg.recording_url = None;
            }
        }
    }
    snapshot
}

async fn the_jsonl_export_imports_into_the_same_state(backend: Backend) {
    // Exports hold calls: the account has no texts to compare.
    let (server, sim) = loaded_calls_only(backend).await;
    let (status, _, jsonl) = fetch(&server, "/api/export/calls.jsonl").await;
    assert_eq!(status, 200);
    let copy = store(backend).await;
    let report = import_calls(
        copy.as_ref(),
        &sim_rules(&sim),
        std::io::Cursor::new(jsonl.clone()),
        137,
        None,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.sync.inserted, read_jsonl(&jsonl).len() as u64);
    assert_eq!(
        without_recordings(snapshot(copy.as_ref()).await.unwrap()),
        without_recordings(snapshot(server.store.as_ref()).await.unwrap())
    );
}

on_both_stores!(
    csv_export_lists_every_call_as_a_dated_attachment,
    jsonl_export_matches_the_csv_and_carries_the_twilio_record,
    filters_are_the_lists_and_bound_start_times,
    notes_and_names_round_trip_through_csv,
    an_export_that_matches_nothing_is_a_header_or_nothing,
    bad_filters_are_json_400s,
    exports_need_the_api_token,
    the_jsonl_export_imports_into_the_same_state,
    the_binary_exports_a_file,
);

#[tokio::test]
async fn a_store_that_fails_is_a_json_500_not_a_broken_file() {
    let server = spawn(AppState::new(Arc::new(BrokenStore))).await;
    for path in ["/api/export/calls.csv", "/api/export/calls.jsonl"] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 500, "{path}");
        assert_eq!(assert_error(&body), "internal");
        assert!(!body.to_string().contains(SECRET_DETAIL));
    }
}

// ---- the binary ----

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
    command.stdin(Stdio::null());
    command
}

/// A store of `backend` loaded from a simulated account, and its URL.
async fn database(backend: Backend, dir: &std::path::Path) -> (Arc<dyn Store>, String) {
    let (store, url): (Arc<dyn Store>, String) = match backend {
        Backend::Sqlite => {
            let path = dir.join("calls.db");
            let url = format!("sqlite://{}", path.display());
            (
                Arc::new(callview_sqlite::SqliteStore::connect(&url).await.unwrap()),
                url,
            )
        }
        Backend::Postgres => {
            let url = callview_postgres::testing::fresh_database_url().await;
            (
                Arc::new(
                    callview_postgres::PostgresStore::connect(&url)
                        .await
                        .unwrap(),
                ),
                url,
            )
        }
    };
    load(&store, &sim(150, 5)).await;
    (store, url)
}

async fn the_binary_exports_a_file(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, url) = database(backend, dir.path()).await;
    let run = |args: Vec<String>| {
        let mut command = callview(dir.path());
        command.args(&args).args(["--database-url", &url]);
        async move {
            tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap()
        }
    };

    // CSV into a file, with a filter and a start bound.
    let since = "2000-01-01";
    let out = run(vec![
        "export".into(),
        "--format".into(),
        "csv".into(),
        "--status".into(),
        "answered".into(),
        "--since".into(),
        since.into(),
        "--output".into(),
        "calls.csv".into(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "the file holds the export");
    let rows = read_csv(&std::fs::read(dir.path().join("calls.csv")).unwrap());
    let mut list =
        ConversationQuery::page(20, 0).with_status(callview_core::store::StatusFilter::Answered);
    list = list.with_since(
        since
            .parse::<chrono::NaiveDate>()
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc(),
    );
    let query = ExportQuery::from_list_filters(list);
    let mut expected = Vec::new();
    callview_core::export::export_to(
        store.as_ref(),
        &query,
        callview_core::export::ExportFormat::Csv,
        1000,
        &mut expected,
        callview_server::export::served,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(rows, read_csv(&expected));
    assert!(!rows.is_empty());
    assert!(
        stderr.contains(&format!("exported {} calls", rows.len())),
        "{stderr}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // JSON Lines on standard output, every call.
    let out = run(vec!["export".into(), "--format".into(), "jsonl".into()]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = read_jsonl(&out.stdout);
    assert_eq!(lines.len() as u64, store.counts().await.unwrap().calls);

    // A bad filter names the flag and writes nothing.
    let out = run(vec![
        "export".into(),
        "--status".into(),
        "bogus".into(),
        "--output".into(),
        "bad.csv".into(),
    ])
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--status"), "{stderr}");
    assert!(!dir.path().join("bad.csv").exists());

    // A pipe (or a device) is written as it is, never replaced by a file.
    let pipe = dir.path().join("pipe");
    assert!(Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .unwrap()
        .success());
    let reader = {
        let pipe = pipe.clone();
        std::thread::spawn(move || std::fs::read(pipe).unwrap())
    };
    let out = run(vec![
        "export".into(),
        "--output".into(),
        pipe.display().to_string(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let piped = read_csv(&reader.join().unwrap());
    assert_eq!(piped.len(), lines.len());
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&pipe).unwrap().file_type().is_fifo());

    // The progress bar only shows on a terminal: none here, only the summary.
    let out = run(vec!["export".into()]).await;
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        format!("exported {} calls to standard output", lines.len())
    );
}
