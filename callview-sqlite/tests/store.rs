//! SQLite-specific tests of `SqliteStore`: opening, migrations, WAL,
//! errors for bad files, crash recovery, the sync lock, legacy rows, and a
//! sync end to end through `SyncEngine`. The store-independent behaviour is
//! checked by the conformance suite (`tests/conformance.rs`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use callview_core::call::format_rfc2822;
use callview_core::endpoint::{ActualDirection, PartyRules};
use callview_core::model::{ConversationId, ConversationRef, Plan, StoredCall};
use callview_core::store::{ConversationQuery, ConversationView};
use callview_core::testkit::MockTwilio;
use callview_core::twilio::{CallFilter, CallPage, IncomingNumber, PageToken};
use callview_core::{
    Call, CallSid, Store, StoreError, SyncEngine, SyncMode, TwilioClient, TwilioError,
};
use callview_sqlite::SqliteStore;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

// ------------------------------------------------------------------ helpers

const COMPANY: &str = "+19788447773";
const CUSTOMER: &str = "+16175006181";
const OTHER_CUSTOMER: &str = "+15085140320";
const DISPATCHER: &str = "sip:dispatcher@acme.sip.twilio.com";

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 6, 15, 0, 0).unwrap()
}

fn sid(s: &str) -> CallSid {
    CallSid::new(s).unwrap()
}

/// A call record in Twilio's REST form.
#[allow(clippy::too_many_arguments)]
fn call(
    sid: &str,
    parent: Option<&str>,
    from: &str,
    to: &str,
    direction: &str,
    status: &str,
    start: DateTime<Utc>,
    duration: u32,
) -> Call {
    let end = start + chrono::Duration::seconds(i64::from(duration));
    Call::from_json(&json!({
        "sid": sid,
        "account_sid": "AC00000000000000000000000000000000",
        "parent_call_sid": parent,
        "from": from,
        "to": to,
        "direction": direction,
        "status": status,
        "start_time": format_rfc2822(&start),
        "end_time": format_rfc2822(&end),
        "date_created": format_rfc2822(&start),
        "date_updated": format_rfc2822(&end),
        "duration": duration.to_string(),
        "price": "-0.01400",
        "price_unit": "USD",
        "queue_time": "0",
        "api_version": "2010-04-01",
    }))
    .unwrap()
}

/// The scenario: a customer calls, the company number forwards to a SIP
/// dispatcher (A with leg B); the dispatcher dials out through the company
/// number to the customer (D with leg E); a missed call from the customer
/// (F); another customer (G).
fn scenario() -> Vec<Call> {
    let t = base();
    let h = chrono::Duration::hours(1);
    let s = chrono::Duration::seconds;
    vec![
        call(
            "CA_A",
            None,
            CUSTOMER,
            COMPANY,
            "inbound",
            "completed",
            t,
            60,
        ),
        call(
            "CA_B",
            Some("CA_A"),
            COMPANY,
            DISPATCHER,
            "outbound-dial",
            "completed",
            t + s(5),
            45,
        ),
        call(
            "CA_D",
            None,
            DISPATCHER,
            COMPANY,
            "inbound",
            "completed",
            t + h,
            30,
        ),
        call(
            "CA_E",
            Some("CA_D"),
            COMPANY,
            CUSTOMER,
            "outbound-dial",
            "completed",
            t + h + s(3),
            20,
        ),
        call(
            "CA_F",
            None,
            CUSTOMER,
            COMPANY,
            "inbound",
            "no-answer",
            t + h * 2,
            0,
        ),
        call(
            "CA_G",
            None,
            OTHER_CUSTOMER,
            COMPANY,
            "inbound",
            "completed",
            t + h * 3,
            10,
        ),
    ]
}

fn pick(calls: &[Call], sids: &[&str]) -> Vec<Call> {
    sids.iter()
        .map(|s| calls.iter().find(|c| c.sid.as_str() == *s).unwrap().clone())
        .collect()
}

/// A tiny Twilio account: serves `calls` in the given order, `page_size`
/// at a time, and owns the company number.
struct FakeTwilio {
    calls: Vec<Call>,
    /// An account without recordings or transcripts.
    media: MockTwilio,
}

#[async_trait]
impl TwilioClient for FakeTwilio {
    async fn list_calls_page(
        &self,
        filter: &CallFilter,
        page: Option<&PageToken>,
    ) -> Result<CallPage, TwilioError> {
        let matching: Vec<&Call> = self.calls.iter().filter(|c| filter.matches(c)).collect();
        let offset = page.map_or(0, |t| t.0.parse::<usize>().unwrap());
        let end = (offset + filter.page_size as usize).min(matching.len());
        Ok(CallPage {
            calls: matching[offset..end].iter().map(|c| (*c).clone()).collect(),
            rejected: Vec::new(),
            next: (end < matching.len()).then(|| PageToken(end.to_string())),
        })
    }

    async fn fetch_call(&self, sid: &CallSid) -> Result<Call, TwilioError> {
        self.calls
            .iter()
            .find(|c| c.sid == *sid)
            .cloned()
            .ok_or_else(|| TwilioError::NotFound {
                what: format!("call {sid}"),
            })
    }

    async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
        Ok(vec![IncomingNumber {
            sid: "PN00000000000000000000000000000000".into(),
            phone_number: COMPANY.into(),
            friendly_name: Some("Main line".into()),
        }])
    }

    callview_core::forward_media_methods!(media);
}

/// Syncs `calls` (served in this order, one per page, so one plan per call)
/// into `store`.
async fn sync(store: &SqliteStore, calls: Vec<Call>) -> callview_core::SyncReport {
    let engine = SyncEngine::new(
        Arc::new(FakeTwilio {
            calls,
            media: MockTwilio::new(),
        }),
        Arc::new(store.clone()),
        PartyRules::default(),
    )
    .with_page_size(1);
    engine
        .run(SyncMode::Since(base() - chrono::Duration::days(1)), None)
        .await
        .unwrap()
}

async fn all_conversations(store: &SqliteStore) -> Vec<ConversationView> {
    let page = store
        .list_conversations(&ConversationQuery::page(100, 0))
        .await
        .unwrap();
    assert_eq!(page.total as usize, page.conversations.len());
    page.conversations
}

async fn conversation_of(store: &SqliteStore, key: &str) -> Option<ConversationView> {
    all_conversations(store)
        .await
        .into_iter()
        .find(|v| v.contact.phone_number == key)
}

fn temp_db(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

fn raw(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

fn backend_message(err: StoreError) -> String {
    match err {
        StoreError::Backend { message, .. } => message,
        other => panic!("expected a backend error, got {other:?}"),
    }
}

/// Whether this process may write a file whatever its permissions (root).
fn writes_ignore_permissions(path: &Path) -> bool {
    std::fs::OpenOptions::new().append(true).open(path).is_ok()
}

// ------------------------------------------------------------------ opening

#[tokio::test]
async fn opens_file_urls_and_plain_paths() {
    let dir = tempfile::tempdir().unwrap();
    for (i, form) in ["sqlite://{}", "sqlite:{}", "{}", "sqlite://{}?mode=rwc"]
        .iter()
        .enumerate()
    {
        let path = temp_db(&dir, &format!("db{i}.sqlite"));
        let url = form.replace("{}", path.to_str().unwrap());
        let store = SqliteStore::open(&url).unwrap();
        assert_eq!(store.path(), Some(path.as_path()), "{url}");
        store.health().await.unwrap();
        store.write_cursor("watermark", "x").await.unwrap();
        assert!(path.is_file(), "{url} should create {}", path.display());
    }
    let store = SqliteStore::connect(&format!("sqlite://{}", temp_db(&dir, "c.db").display()))
        .await
        .unwrap();
    store.health().await.unwrap();
}

#[tokio::test]
async fn in_memory_stores_are_private() {
    let a = SqliteStore::open("sqlite::memory:").unwrap();
    let b = SqliteStore::open("sqlite::memory:").unwrap();
    let c = SqliteStore::open_in_memory().unwrap();
    let d = SqliteStore::open("sqlite://:memory:").unwrap();
    assert!(a.path().is_none());
    a.write_cursor("watermark", "a").await.unwrap();
    for other in [&b, &c, &d] {
        assert_eq!(other.read_cursor("watermark").await.unwrap(), None);
    }
    // A clone shares the database.
    assert_eq!(
        a.clone().read_cursor("watermark").await.unwrap().as_deref(),
        Some("a")
    );
    sync(&a, scenario()).await;
    assert_eq!(a.counts().await.unwrap().calls, 6);
    assert_eq!(b.counts().await.unwrap().calls, 0);
}

#[test]
fn malformed_urls_are_invalid() {
    for url in ["sqlite://", "", "sqlite://x.db?mode=ro"] {
        assert!(
            matches!(SqliteStore::open(url), Err(StoreError::Invalid(_))),
            "{url:?}"
        );
    }
}

#[tokio::test]
async fn migrations_apply_once_and_reopening_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "callview.db");
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    sync(&store, scenario()).await;
    let counts = store.counts().await.unwrap();
    let before = all_conversations(&store).await;
    drop(store);

    let applied = |path: &Path| -> Vec<(i64, String)> {
        let conn = raw(path);
        let mut stmt = conn
            .prepare("SELECT version, applied_at FROM schema_migrations ORDER BY version")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let first = applied(&path);
    assert_eq!(
        first.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    );

    for _ in 0..2 {
        let store = SqliteStore::open(&format!("sqlite://{}", path.display())).unwrap();
        assert_eq!(store.counts().await.unwrap(), counts);
        assert_eq!(all_conversations(&store).await, before);
        assert_eq!(
            store.read_cursor("owned_numbers").await.unwrap().as_deref(),
            Some(r#"["+19788447773"]"#)
        );
    }
    assert_eq!(applied(&path), first, "no migration may run twice");

    // The documented tables and indexes exist.
    let conn = raw(&path);
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger') ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for name in [
        "contacts",
        "conversations",
        "messages",
        "sync_cursors",
        "schema_migrations",
        "idx_conversations_contact",
        "idx_messages_start_time",
        "idx_messages_parent",
        "idx_messages_root",
        "idx_messages_conversation_totals",
        "idx_conversations_activity",
        "idx_messages_refresh",
        "recordings",
        "transcripts",
        "idx_recordings_call",
        "idx_recordings_created",
        "idx_transcripts_recording",
        "idx_transcripts_call",
        "idx_messages_recorded",
        "api_tokens",
        "idx_api_tokens_live_name",
        "update_contacts_updated_at",
        "update_conversations_updated_at",
        "update_messages_updated_at",
    ] {
        assert!(names.iter().any(|n| n == name), "missing {name}: {names:?}");
    }
    // idx_messages_parent holds calls with a parent only (migration 12):
    // the lookup of children by value still uses it.
    let plan: Vec<String> = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT root_call_sid FROM messages \
             WHERE parent_call_sid IN (SELECT value FROM json_each(?1))",
        )
        .unwrap()
        .query_map(["[\"CA1\"]"], |r| r.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter().any(|step| step.contains("idx_messages_parent")),
        "{plan:?}"
    );
    // Indexes that only repeated another's prefix are gone (0010).
    for name in [
        "idx_contacts_phone",
        "idx_conversations_last_message",
        "idx_messages_conversation",
    ] {
        assert!(!names.iter().any(|n| n == name), "{name} is still there");
    }
}

#[tokio::test]
async fn file_databases_use_wal_and_enforce_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "wal.db");
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    store.health().await.unwrap();
    // WAL is a property of the file: a fresh connection sees it.
    let mode: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");

    // foreign_keys = ON on the write connection: a call into a missing
    // conversation is refused and nothing is written.
    let c = call(
        "CA1",
        None,
        CUSTOMER,
        COMPANY,
        "inbound",
        "completed",
        base(),
        5,
    );
    let mut plan = Plan::default();
    plan.calls.push(callview_core::model::CallWrite {
        derived: callview_core::model::Derived {
            actual_direction: ActualDirection::Inbound,
            display_status: callview_core::model::DisplayStatus::Completed,
            merged_from_parent: false,
        },
        root_sid: c.sid.clone(),
        call: c,
        conversation: ConversationRef::Existing(ConversationId(999)),
        recording_url: None,
    });
    let mut tx = store.begin_ingest().await.unwrap();
    let err = tx.apply(plan).await.unwrap_err();
    drop(tx);
    assert!(backend_message(err).contains("CA1"));
    assert_eq!(store.counts().await.unwrap().calls, 0);
}

#[tokio::test]
async fn a_garbage_file_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "notes.txt");
    std::fs::write(&path, "this is not a database\n".repeat(500)).unwrap();
    let message = backend_message(SqliteStore::open(path.to_str().unwrap()).unwrap_err());
    assert!(message.contains(path.to_str().unwrap()), "{message}");
    assert!(message.contains("not a SQLite database"), "{message}");
    // The file is left as it was.
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "this is not a database\n".repeat(500)
    );
}

#[tokio::test]
async fn a_read_only_file_gives_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "ro.db");
    drop(SqliteStore::open(path.to_str().unwrap()).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    if writes_ignore_permissions(&path) {
        // Root writes whatever the permissions: make the file system
        // read-only instead (a tmpfs mounted, filled, then remounted ro).
        read_only_file_system_gives_a_clear_error(&dir);
        return;
    }
    let message = backend_message(SqliteStore::open(path.to_str().unwrap()).unwrap_err());
    assert!(message.contains(path.to_str().unwrap()), "{message}");
    assert!(message.contains("read-only"), "{message}");
}

/// Runs `mount` (root only), panicking with the reason when it fails.
fn mount(args: &[&str]) {
    let output = std::process::Command::new("mount")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "mount {args:?} failed (this test needs root to mount a tmpfs): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn read_only_file_system_gives_a_clear_error(dir: &tempfile::TempDir) {
    let mount_point = dir.path().join("ro-fs");
    std::fs::create_dir(&mount_point).unwrap();
    let target = mount_point.to_str().unwrap();
    mount(&["-t", "tmpfs", "-o", "size=4m", "tmpfs", target]);
    let path = mount_point.join("calls.db");
    drop(SqliteStore::open(path.to_str().unwrap()).unwrap());
    mount(&["-o", "remount,ro", target]);
    let result = SqliteStore::open(path.to_str().unwrap());
    let _ = std::process::Command::new("umount").arg(target).status();
    let message = backend_message(result.unwrap_err());
    assert!(message.contains(path.to_str().unwrap()), "{message}");
    assert!(message.contains("read-only"), "{message}");
}

#[tokio::test]
async fn unusable_paths_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/callview.db");
    let message = backend_message(SqliteStore::open(missing.to_str().unwrap()).unwrap_err());
    assert!(message.contains(missing.to_str().unwrap()), "{message}");
    assert!(message.contains("cannot open or create"), "{message}");

    let message = backend_message(SqliteStore::open(dir.path().to_str().unwrap()).unwrap_err());
    assert!(message.contains("is a directory"), "{message}");
}

// ------------------------------------------------------------------ crashes

#[tokio::test]
async fn an_uncommitted_transaction_of_a_dropped_connection_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "dropped.db");
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    sync(&store, scenario()).await;
    let counts = store.counts().await.unwrap();
    drop(store);

    let mut conn = raw(&path);
    let tx = conn.transaction().unwrap();
    tx.execute(
        "INSERT INTO contacts (phone_number, created_at, updated_at) VALUES ('+1999', 'x', 'x')",
        [],
    )
    .unwrap();
    drop(tx);
    drop(conn);

    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    assert_eq!(store.counts().await.unwrap(), counts);
}

/// The environment variable that turns `crash_child` into the crashing
/// writer of `a_database_left_by_a_crashed_process_opens_cleanly`.
const CRASH_ENV: &str = "CALLVIEW_SQLITE_CRASH_DB";

/// Not a test on its own: when `CRASH_ENV` names a database, syncs into it,
/// then starts a large write and aborts the process in the middle of it.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CRASH_ENV) else {
        return;
    };
    let path = PathBuf::from(path);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(async {
        let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
        sync(&store, scenario()).await;
        store
    });
    let conn = raw(&path);
    conn.execute_batch("PRAGMA cache_size = 2; BEGIN IMMEDIATE;")
        .unwrap();
    let filler = "x".repeat(2000);
    for i in 0..5_000 {
        conn.execute(
            "INSERT INTO contacts (phone_number, display_name, created_at, updated_at)
             VALUES (?1, ?2, 'x', 'x')",
            rusqlite::params![format!("+1555{i:07}"), filler],
        )
        .unwrap();
    }
    // Uncommitted pages have spilled into the WAL; die without cleanup.
    let _keep = store;
    std::process::abort();
}

#[tokio::test]
async fn a_database_left_by_a_crashed_process_opens_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "crashed.db");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CRASH_ENV, &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child should have aborted");
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let wal_size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(
        wal_size > 1_000_000,
        "the crash should leave uncommitted pages in the WAL ({wal_size} bytes)"
    );

    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.contacts, counts.conversations, counts.calls),
        (2, 2, 6)
    );
    let check: String = raw(&path)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    // And it is writable again.
    sync(&store, scenario()).await;
    store.write_cursor("after", "crash").await.unwrap();
}

// ------------------------------------------------------------------ sync end to end

/// What the scenario must produce, whatever the order the calls arrive in.
async fn assert_scenario(store: &SqliteStore) {
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (counts.contacts, counts.conversations, counts.calls),
        (2, 2, 6),
        "the dispatcher's conversation and contact must be gone"
    );
    let list = all_conversations(store).await;
    assert_eq!(
        list.iter()
            .map(|v| v.contact.phone_number.as_str())
            .collect::<Vec<_>>(),
        vec![OTHER_CUSTOMER, CUSTOMER],
        "newest activity first"
    );
    assert!(list
        .iter()
        .all(|v| v.conversation.external_id != DISPATCHER));

    let view = conversation_of(store, CUSTOMER).await.unwrap();
    assert_eq!(view.conversation.external_id, "+1 (617) 500-6181");
    assert_eq!(
        view.conversation.subject.as_deref(),
        Some("Calls with +1 (617) 500-6181")
    );
    assert_eq!(
        view.contact.formatted_number.as_deref(),
        Some("+1 (617) 500-6181")
    );
    let counters = &view.conversation.counters;
    assert_eq!(counters.total_calls, 3, "roots only: A, D, F");
    assert_eq!(counters.total_duration, 60 + 30);
    assert_eq!(counters.last_call_direction, Some(ActualDirection::Inbound));
    assert_eq!(counters.last_root_sid, Some(sid("CA_F")));
    assert_eq!(
        counters.last_message_at,
        Some(base() + chrono::Duration::hours(2))
    );
    let last = view.last_message.as_ref().unwrap();
    assert_eq!(last.root.call.sid, sid("CA_F"));
    assert_eq!(last.summary.display_status, "no-answer");

    let id = view.conversation.id;
    assert_eq!(store.conversation(id).await.unwrap(), view);
    let mut rows = store.conversation_calls(id).await.unwrap();
    rows.sort_by(|a, b| a.call.sid.cmp(&b.call.sid));
    let shape: Vec<(&str, &str, bool)> = rows
        .iter()
        .map(|r| {
            (
                r.call.sid.as_str(),
                r.root_sid.as_str(),
                r.derived.merged_from_parent,
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("CA_A", "CA_A", true),
            ("CA_B", "CA_A", true),
            ("CA_D", "CA_D", true),
            ("CA_E", "CA_D", true),
            ("CA_F", "CA_F", false),
        ]
    );
    let b = rows.iter().find(|r| r.call.sid.as_str() == "CA_B").unwrap();
    assert_eq!(b.call.to.as_deref(), Some(DISPATCHER));
    assert_eq!(b.call.price.unwrap().to_string(), "-0.01400");

    let interactions = callview_core::testkit::all_messages(store, id)
        .await
        .unwrap();
    let folded: Vec<(&str, Vec<&str>, ActualDirection)> = interactions
        .iter()
        .map(|i| {
            (
                i.root.call.sid.as_str(),
                i.legs.iter().map(|l| l.call.sid.as_str()).collect(),
                i.actual_direction,
            )
        })
        .collect();
    assert_eq!(
        folded,
        vec![
            ("CA_F", vec![], ActualDirection::Inbound),
            ("CA_D", vec!["CA_E"], ActualDirection::Outbound),
            ("CA_A", vec!["CA_B"], ActualDirection::Inbound),
        ]
    );
    let a = &interactions[2].summary;
    assert_eq!((a.total_duration, a.talk_time, a.wait_time), (60, 45, 15));

    let other = conversation_of(store, OTHER_CUSTOMER).await.unwrap();
    assert_eq!(other.conversation.counters.total_calls, 1);
    assert_eq!(other.conversation.counters.total_duration, 10);
    assert_eq!(
        store
            .unfinished_calls(&callview_core::store::UnfinishedQuery::any(10))
            .await
            .unwrap(),
        Vec::<StoredCall>::new()
    );
}

/// What both orders must agree on, without ids and timestamps.
async fn snapshot(store: &SqliteStore) -> Vec<(String, String, u64, u64, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for view in all_conversations(store).await {
        let mut rows: Vec<(String, String)> = store
            .conversation_calls(view.conversation.id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                (
                    r.call.sid.to_string(),
                    format!("{:?} {:?}", r.root_sid, r.derived),
                )
            })
            .collect();
        rows.sort();
        out.push((
            view.contact.phone_number,
            view.conversation.external_id,
            view.conversation.counters.total_calls,
            view.conversation.counters.total_duration,
            rows,
        ));
    }
    out
}

#[tokio::test]
async fn sync_folds_a_child_that_arrived_before_its_parent() {
    let store = SqliteStore::open_in_memory().unwrap();
    let calls = scenario();

    // The dispatcher leg alone: a root of its own, in the dispatcher's conversation.
    let report = sync(&store, pick(&calls, &["CA_B"])).await;
    assert_eq!(report.inserted, 1);
    let dispatcher = conversation_of(&store, DISPATCHER).await.unwrap();
    assert_eq!(dispatcher.conversation.external_id, DISPATCHER);
    assert_eq!(dispatcher.conversation.counters.total_calls, 1);
    assert_eq!(
        dispatcher.conversation.counters.last_call_direction,
        Some(ActualDirection::Internal)
    );

    // Everything, children before parents, one call per plan.
    let report = sync(
        &store,
        pick(&calls, &["CA_B", "CA_A", "CA_E", "CA_D", "CA_F", "CA_G"]),
    )
    .await;
    assert_eq!(report.inserted, 5);
    assert!(report.moved >= 1, "{report:?}");
    assert_scenario(&store).await;
    assert!(matches!(
        store.conversation(dispatcher.conversation.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.conversation_calls(dispatcher.conversation.id).await,
        Err(StoreError::NotFound(_))
    ));

    // Syncing again changes nothing.
    let before = snapshot(&store).await;
    let report = sync(&store, calls).await;
    assert_eq!(
        (report.inserted, report.updated, report.unchanged),
        (0, 0, 6)
    );
    assert_eq!(snapshot(&store).await, before);
}

#[tokio::test]
async fn sync_gives_the_same_result_when_parents_arrive_first() {
    let children_first = SqliteStore::open_in_memory().unwrap();
    let calls = scenario();
    sync(
        &children_first,
        pick(&calls, &["CA_B", "CA_A", "CA_E", "CA_D", "CA_F", "CA_G"]),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let parents_first = SqliteStore::open(temp_db(&dir, "p.db").to_str().unwrap()).unwrap();
    let report = sync(&parents_first, calls.clone()).await;
    assert_eq!(report.inserted, 6);
    assert_scenario(&parents_first).await;
    assert_eq!(
        snapshot(&parents_first).await,
        snapshot(&children_first).await
    );

    // A status change flows through: F is updated, counters follow.
    let mut later = calls;
    let f = later.iter_mut().find(|c| c.sid.as_str() == "CA_F").unwrap();
    *f = call(
        "CA_F",
        None,
        CUSTOMER,
        COMPANY,
        "inbound",
        "completed",
        base() + chrono::Duration::hours(2),
        15,
    );
    let report = sync(&parents_first, later).await;
    assert_eq!((report.updated, report.unchanged), (1, 5));
    let view = conversation_of(&parents_first, CUSTOMER).await.unwrap();
    assert_eq!(view.conversation.counters.total_duration, 60 + 30 + 15);
    assert_eq!(
        view.last_message.unwrap().summary.display_status,
        "completed"
    );
}

// ------------------------------------------------------------------ storage details

#[tokio::test]
async fn columns_hold_raw_values_fixed_width_times_and_exact_prices() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "columns.db");
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    sync(&store, scenario()).await;
    let conn = raw(&path);
    let (direction, status, from, to, price, start, root, metadata): (
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
    ) = conn
        .query_row(
            "SELECT direction, status, from_number, to_number, price, start_time, root_call_sid, metadata
             FROM messages WHERE twilio_sid = 'CA_B'",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(
        (
            direction.as_str(),
            status.as_str(),
            from.as_str(),
            to.as_str()
        ),
        ("outbound-dial", "completed", COMPANY, DISPATCHER)
    );
    assert_eq!(price, "-0.01400");
    assert_eq!(start, "2026-02-06T15:00:05.000000Z");
    assert_eq!(root, "CA_A");
    let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    assert_eq!(metadata["twilio_direction"], "outbound-dial");
    assert_eq!(metadata["merged_from_parent"], true);
    // The record is kept apart, compact (migration 13).
    assert!(metadata.get("raw").is_none(), "{metadata}");
    assert_eq!(common::stored_metadata(&conn, "CA_B")["raw"]["sid"], "CA_B");

    let (last_message_at, conversation_metadata, created, updated): (
        String,
        String,
        String,
        String,
    ) = conn
        .query_row(
            "SELECT cv.last_message_at, cv.metadata, cv.created_at, cv.updated_at
             FROM conversations cv JOIN contacts ct ON ct.id = cv.contact_id
             WHERE ct.phone_number = ?1",
            [CUSTOMER],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(last_message_at, "2026-02-06T17:00:00.000000Z");
    assert_eq!(created.len(), 27);
    assert!(updated >= created);
    let counters: serde_json::Value = serde_json::from_str(&conversation_metadata).unwrap();
    assert_eq!(
        counters,
        json!({"total_calls": 3, "total_duration": 90,
               "last_call_direction": "inbound", "last_root_sid": "CA_F",
               "last_display_status": "no-answer", "total_messages": 0,
               "last_message_type": "call", "last_text_sid": null})
    );

    // Other keys in a conversation's metadata survive counter updates.
    conn.execute(
        "UPDATE conversations SET metadata = json_set(metadata, '$.pinned', json('true'))",
        [],
    )
    .unwrap();
    let mut calls = scenario();
    calls.push(call(
        "CA_H",
        None,
        CUSTOMER,
        COMPANY,
        "inbound",
        "completed",
        base() + chrono::Duration::hours(4),
        7,
    ));
    sync(&store, calls).await;
    let metadata: String = conn
        .query_row(
            "SELECT cv.metadata FROM conversations cv JOIN contacts ct ON ct.id = cv.contact_id
             WHERE ct.phone_number = ?1",
            [CUSTOMER],
            |r| r.get(0),
        )
        .unwrap();
    let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    assert_eq!(metadata["pinned"], true);
    assert_eq!(metadata["total_calls"], 4);
}

#[tokio::test]
async fn rows_of_the_seed_application_without_raw_are_rebuilt_from_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "seed.db");
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    let conn = raw(&path);
    conn.execute_batch(
        "INSERT INTO contacts (id, phone_number, formatted_number, display_name)
             VALUES (1, '+19788447773', '+1 (978) 844-7773', '+1 (978) 844-7773');
         INSERT INTO conversations (id, contact_id, external_id, subject, last_message_at, metadata)
             VALUES (1, 1, '+1 (978) 844-7773', 'Calls with +1 (978) 844-7773',
                     '2026-02-06 15:17:13', '{\"total_calls\": 1, \"total_duration\": 40,
                     \"last_call_direction\": \"inbound\"}');
         INSERT INTO messages (conversation_id, twilio_sid, direction, status, from_number,
                               to_number, duration, price, price_unit, start_time, end_time,
                               parent_call_sid, root_call_sid, metadata, created_at)
             VALUES (1, 'CA5bef499f976fd46ea521f3da237abf27', 'outbound-dial', 'completed',
                     '+16175006181', '+19788447773', 40, '-0.0140', 'USD',
                     '2026-02-06 15:17:13', '2026-02-06 15:17:53',
                     'CAe4616d11d7f38afcfaf0bb73a0c55820', 'CA5bef499f976fd46ea521f3da237abf27',
                     '{\"answered_by\": null, \"queue_time\": \"0\", \"twilio_direction\": \"outbound-dial\",
                       \"twilio_status\": \"completed\", \"display_status\": \"completed\"}',
                     '2026-02-06 15:20:00');",
    )
    .unwrap();
    let rows = store.conversation_calls(ConversationId(1)).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.call.sid.as_str(), "CA5bef499f976fd46ea521f3da237abf27");
    assert_eq!(row.call.duration, Some(40));
    assert_eq!(row.call.price.unwrap().to_string(), "-0.0140");
    assert_eq!(row.call.queue_time, Some(0));
    assert_eq!(
        row.call.start_time,
        Some(Utc.with_ymd_and_hms(2026, 2, 6, 15, 17, 13).unwrap())
    );
    assert_eq!(
        row.call.parent_call_sid.as_ref().map(CallSid::as_str),
        Some("CAe4616d11d7f38afcfaf0bb73a0c55820")
    );
    // Derived values default to what the columns say.
    assert_eq!(row.derived.actual_direction, ActualDirection::Outbound);
    assert_eq!(row.derived.display_status, "completed");
    assert!(row.derived.merged_from_parent);
    let view = store.conversation(ConversationId(1)).await.unwrap();
    assert_eq!(view.conversation.counters.total_calls, 1);
    assert_eq!(view.conversation.counters.last_root_sid, None);
    assert!(view.last_message.is_none());
}

#[tokio::test]
async fn a_stored_row_that_does_not_parse_is_an_error_naming_its_sid() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "bad.db");
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    sync(&store, scenario()).await;
    let id = conversation_of(&store, CUSTOMER)
        .await
        .unwrap()
        .conversation
        .id;
    // A compact record that does not decompress.
    raw(&path)
        .execute(
            "UPDATE messages SET raw_zstd = x'0128b52ffd' WHERE twilio_sid = 'CA_E'",
            [],
        )
        .unwrap();
    let message = backend_message(store.conversation_calls(id).await.unwrap_err());
    assert!(message.contains("CA_E"), "{message}");
    // A record kept in `metadata` (the form before migration 13) that
    // decodes but is not a call.
    raw(&path)
        .execute(
            "UPDATE messages SET raw_zstd = NULL,
                 metadata = json_set(metadata, '$.raw', json('{\"sid\": \"CA_E\", \"duration\": \"-3\"}'))
             WHERE twilio_sid = 'CA_E'",
            [],
        )
        .unwrap();
    let message = backend_message(store.conversation_calls(id).await.unwrap_err());
    assert!(message.contains("CA_E"), "{message}");
    raw(&path)
        .execute(
            "UPDATE messages SET start_time = 'yesterday' WHERE twilio_sid = 'CA_A'",
            [],
        )
        .unwrap();
    // A start time that is not a timestamp is named too.
    // (The planner reads the start-time column: the latest call of the conversation.)
    let lookup = callview_core::model::ConversationLookup {
        ids: vec![id],
        ..Default::default()
    };
    let mut tx = store.begin_ingest().await.unwrap();
    let message = backend_message(tx.load_conversations(&lookup).await.unwrap_err());
    drop(tx);
    assert!(message.contains("yesterday"), "{message}");
}

#[tokio::test]
async fn in_lists_longer_than_the_parameter_limit_work() {
    let store = SqliteStore::open_in_memory().unwrap();
    sync(&store, scenario()).await;
    let mut sids: Vec<CallSid> = (0..40_000).map(|i| sid(&format!("CA{i:032x}"))).collect();
    sids.push(sid("CA_B"));
    let trees = store.load_trees(&sids).await.unwrap();
    let mut found: Vec<&str> = trees.iter().map(|c| c.call.sid.as_str()).collect();
    found.sort();
    assert_eq!(found, vec!["CA_A", "CA_B"]);
}

// ------------------------------------------------------------------ sync lock

#[tokio::test]
async fn the_sync_lock_excludes_other_stores_on_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "lock.db");
    let url = path.to_str().unwrap();
    let a = SqliteStore::open(url).unwrap();
    let b = SqliteStore::open(url).unwrap();

    assert!(a.try_lock_sync().await.unwrap());
    assert!(
        !a.try_lock_sync().await.unwrap(),
        "held, even by the same store"
    );
    assert!(!b.try_lock_sync().await.unwrap());
    b.unlock_sync().await.unwrap(); // not b's: no effect
    assert!(!b.try_lock_sync().await.unwrap());
    a.unlock_sync().await.unwrap();
    assert!(b.try_lock_sync().await.unwrap());

    // A sync engine on a store whose file is locked elsewhere is refused.
    let engine = SyncEngine::new(
        Arc::new(FakeTwilio {
            calls: scenario(),
            media: MockTwilio::new(),
        }),
        Arc::new(a.clone()),
        PartyRules::default(),
    );
    assert!(matches!(
        engine.run(SyncMode::incremental(), None).await,
        Err(callview_core::SyncError::Busy)
    ));

    // Dropping the holder releases the lock.
    drop(b);
    let c = SqliteStore::open(url)
        .unwrap()
        .with_sync_lease(Duration::from_millis(1000));
    assert!(c.try_lock_sync().await.unwrap());
    assert!(!a.try_lock_sync().await.unwrap());
    // A lease that is not renewed runs out (a crashed holder).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(a.try_lock_sync().await.unwrap());
    c.unlock_sync().await.unwrap(); // c lost it: a keeps it
    assert!(!c.try_lock_sync().await.unwrap());
    a.unlock_sync().await.unwrap();
}

/// A store whose lease outlived it (its release failed: the release is a
/// write, and a full disk refuses it) does not block the next store this
/// process opens, while a store still open keeps its lease.
#[tokio::test]
async fn a_lease_left_by_a_dropped_store_of_this_process_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "left.db");
    let url = path.to_str().unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let lease = || -> (String, String) {
        raw.query_row(
            "SELECT holder, expires_at FROM sync_locks WHERE name = 'sync'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };

    let a = SqliteStore::open(url).unwrap();
    assert!(a.try_lock_sync().await.unwrap());
    let (holder, expires_at) = lease();
    let b = SqliteStore::open(url).unwrap();
    assert!(!b.try_lock_sync().await.unwrap(), "a is open and holds it");
    drop(a);
    // The release on drop worked; put the lease back as a failed one leaves it.
    raw.execute(
        "INSERT INTO sync_locks (name, holder, acquired_at, expires_at)
         VALUES ('sync', ?1, ?2, ?2)",
        [&holder, &expires_at],
    )
    .unwrap();
    assert!(
        b.try_lock_sync().await.unwrap(),
        "the lease of a dropped store is taken over"
    );
    assert_ne!(lease().0, holder);
    b.unlock_sync().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_run_while_syncs_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "busy.db");
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    let mut calls = Vec::new();
    for i in 0..300 {
        calls.push(call(
            &format!("CA{i:05}"),
            None,
            &format!("+1617555{:04}", i % 50),
            COMPANY,
            "inbound",
            "completed",
            base() + chrono::Duration::minutes(i),
            30,
        ));
    }
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let engine = SyncEngine::new(
                Arc::new(FakeTwilio {
                    calls,
                    media: MockTwilio::new(),
                }),
                Arc::new(store),
                PartyRules::default(),
            )
            .with_page_size(10);
            engine
                .run(SyncMode::Since(base() - chrono::Duration::days(1)), None)
                .await
                .unwrap()
        })
    };
    let mut readers = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        readers.push(tokio::spawn(async move {
            for _ in 0..20 {
                let page = store
                    .list_conversations(&ConversationQuery::page(20, 0))
                    .await
                    .unwrap();
                assert!(page.conversations.len() as u64 <= page.total);
                for view in &page.conversations {
                    // Each conversation read in one snapshot is consistent.
                    if let Some(last) = &view.last_message {
                        assert_eq!(
                            Some(&last.root.call.sid),
                            view.conversation.counters.last_root_sid.as_ref()
                        );
                    }
                }
                store.counts().await.unwrap();
            }
        }));
    }
    let report = writer.await.unwrap();
    for r in readers {
        r.await.unwrap();
    }
    assert_eq!(report.inserted, 300);
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.conversations, counts.calls), (50, 300));
    let page = store
        .list_conversations(&ConversationQuery::page(10, 45))
        .await
        .unwrap();
    assert_eq!((page.total, page.conversations.len()), (50, 5));
}

#[tokio::test]
async fn health_fails_while_the_file_is_gone_or_replaced_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "health.db");
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    store.health().await.unwrap();
    let status = store.schema_status().await.unwrap().unwrap();
    assert!(status.is_current(), "{status:?}");

    let moved = dir.path().join("moved.db");
    std::fs::rename(&path, &moved).unwrap();
    let message = backend_message(store.health().await.unwrap_err());
    assert!(message.contains("is gone"), "{message}");
    assert!(message.contains("health.db"), "{message}");
    std::fs::rename(&moved, &path).unwrap();
    store.health().await.unwrap();

    // Another file at the path: the store's connections do not see it.
    std::fs::copy(&path, &moved).unwrap();
    std::fs::rename(&moved, &path).unwrap();
    let message = backend_message(store.health().await.unwrap_err());
    assert!(message.contains("replaced"), "{message}");
}

#[tokio::test]
async fn pool_status_counts_the_read_connections() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(temp_db(&dir, "pool.db").to_str().unwrap()).unwrap();
    let idle = store.pool_status().unwrap();
    assert_eq!((idle.max, idle.in_use), (4, 0), "{idle:?}");
    store.health().await.unwrap();
    let after = store.pool_status().unwrap();
    assert_eq!((after.idle, after.in_use), (1, 0), "{after:?}");

    let memory = SqliteStore::open_in_memory().unwrap();
    let status = memory.pool_status().unwrap();
    assert_eq!((status.max, status.idle, status.in_use), (1, 1, 0));
}

/// A call record in Twilio's full REST form: its `uri` and
/// `subresource_uris` follow from the SIDs.
fn full_record(sid: &str, api: &str) -> serde_json::Value {
    let account = "AC00000000000000000000000000000000";
    let uri = format!("/{api}/Accounts/{account}/Calls/{sid}");
    let mut record = call(
        sid,
        None,
        CUSTOMER,
        COMPANY,
        "inbound",
        "completed",
        base(),
        30,
    )
    .raw;
    record["uri"] = json!(format!("{uri}.json"));
    record["subresource_uris"] = json!({
        "notifications": format!("{uri}/Notifications.json"),
        "recordings": format!("{uri}/Recordings.json"),
        "user_defined_messages": format!("{uri}/UserDefinedMessages.json"),
        "feedback_summaries": format!("/{api}/Accounts/{account}/Calls/FeedbackSummary.json"),
    });
    record
}

/// [`full_record`] with every sub-resource Twilio sends today.
fn standard_record(sid: &str) -> serde_json::Value {
    use callview_core::raw_uris::{subresource_uri, STANDARD_KEYS};
    let mut record = full_record(sid, "2010-04-01");
    let account = record["account_sid"].as_str().unwrap().to_owned();
    record["subresource_uris"] = STANDARD_KEYS
        .iter()
        .map(|k| {
            (
                k.to_string(),
                serde_json::json!(subresource_uri(&account, sid, k)),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    record
}

/// Migration 0010 converts rows written before it (whole records) in place:
/// the derivable URIs leave the stored record, the rest stays whole, and
/// every record reads back as Twilio sent it.
#[tokio::test]
async fn lean_rows_migration_converts_existing_rows_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "lean.db");
    let records = [
        full_record("CA1", "2010-04-01"),
        full_record("CA2", "2099-01-01"),
        standard_record("CA3"),
    ];
    let calls: Vec<Call> = records
        .iter()
        .map(|r| Call::from_json(r).unwrap())
        .collect();
    {
        let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
        sync(&store, calls.clone()).await;
    }
    let stored = common::stored_metadata;
    let conn = raw(&path);
    // Written lean: no URIs, the keys kept in the record's (byte) order.
    let lean = stored(&conn, "CA1");
    assert!(lean["raw"].get("uri").is_none(), "{lean}");
    assert_eq!(
        lean["raw_uris"],
        json!([
            "feedback_summaries",
            "notifications",
            "recordings",
            "user_defined_messages"
        ])
    );
    assert!(stored(&conn, "CA2")["raw"].get("uri").is_some());

    // Back to the form of a database older than 0010 (and 0013).
    common::undo_compact_records(&conn);
    for (sid, record) in ["CA1", "CA2", "CA3"].iter().zip(&records) {
        conn.execute(
            "UPDATE messages SET metadata = json_remove(json_set(metadata, '$.raw', json(?2)), '$.raw_uris')
             WHERE twilio_sid = ?1",
            rusqlite::params![sid, record.to_string()],
        )
        .unwrap();
    }
    conn.execute("DELETE FROM schema_migrations WHERE version >= 10", [])
        .unwrap();
    assert_eq!(stored(&conn, "CA1")["raw"], records[0]);
    let updated_at = |conn: &rusqlite::Connection| -> Vec<String> {
        conn.prepare("SELECT updated_at FROM messages ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    conn.execute(
        "UPDATE messages SET updated_at = '2000-01-01T00:00:00.000000Z' WHERE twilio_sid = 'CA2'",
        [],
    )
    .unwrap();
    let before = updated_at(&conn);
    drop(conn);

    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    let conn = raw(&path);
    // Migration 13 moved every record to `raw_zstd` without touching
    // `updated_at` (how a row is kept is not a change to it). CA2 is the
    // row migration 10 leaves alone (it lets the trigger stamp the rows it
    // converts).
    let compact: i64 = conn
        .query_row(
            "SELECT count(*) FROM messages
             WHERE raw_zstd IS NOT NULL AND json_type(metadata, '$.raw') IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(compact, 3);
    assert_eq!(updated_at(&conn)[1], before[1]);
    let converted = stored(&conn, "CA1");
    assert_eq!(
        converted, lean,
        "converted in place as a new write stores it"
    );
    assert_eq!(stored(&conn, "CA3")["raw_uris"], json!("standard"));
    let kept = stored(&conn, "CA2");
    assert_eq!(kept["raw"], records[1]);
    assert!(kept.get("raw_uris").is_none());
    let trees = store
        .load_trees(&[sid("CA1"), sid("CA2"), sid("CA3")])
        .await
        .unwrap();
    assert_eq!(trees.len(), 3);
    for row in trees {
        let i = usize::from(row.call.sid.as_str()[2..].parse::<u8>().unwrap() - 1);
        assert_eq!(row.call.raw, records[i]);
        assert_eq!(row.call, calls[i]);
    }
}

/// Migration 13 converts only rows whose `metadata.raw` is a record: a row
/// without one (the seed application's), or with a `null`, is left as it
/// was and still reads back (rebuilt from its columns); the trigger it
/// re-creates still stamps `updated_at` on later updates.
#[tokio::test]
async fn compact_records_migration_leaves_rows_without_a_record_and_keeps_the_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "compact.db");
    {
        let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
        sync(&store, scenario()).await;
    }
    let conn = raw(&path);
    common::undo_compact_records(&conn);
    conn.execute_batch(
        "UPDATE messages SET metadata = json_remove(metadata, '$.raw') WHERE twilio_sid = 'CA_A';
         UPDATE messages SET metadata = json_set(metadata, '$.raw', json('null'))
             WHERE twilio_sid = 'CA_B';",
    )
    .unwrap();
    let metadata = |conn: &rusqlite::Connection, sid: &str| -> String {
        conn.query_row(
            "SELECT metadata FROM messages WHERE twilio_sid = ?1",
            [sid],
            |r| r.get(0),
        )
        .unwrap()
    };
    let before = [metadata(&conn, "CA_A"), metadata(&conn, "CA_B")];
    drop(conn);

    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    let conn = raw(&path);
    let compact = |sid: &str| -> bool {
        conn.query_row(
            "SELECT raw_zstd IS NOT NULL FROM messages WHERE twilio_sid = ?1",
            [sid],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(!compact("CA_A") && !compact("CA_B"));
    assert!(compact("CA_D") && compact("CA_E"));
    assert_eq!([metadata(&conn, "CA_A"), metadata(&conn, "CA_B")], before);
    let trees = store
        .load_trees(&[sid("CA_A"), sid("CA_B"), sid("CA_D")])
        .await
        .unwrap();
    let read = |s: &str| trees.iter().find(|t| t.call.sid.as_str() == s).unwrap();
    // Rebuilt from the columns, as a row of the seed's application is.
    assert_eq!(read("CA_A").call.from.as_deref(), Some(CUSTOMER));
    assert_eq!(read("CA_B").call.parent_call_sid, Some(sid("CA_A")));
    let sent = scenario()
        .into_iter()
        .find(|c| c.sid.as_str() == "CA_D")
        .unwrap();
    assert_eq!(read("CA_D").call.raw, sent.raw);

    conn.execute_batch(
        "UPDATE messages SET updated_at = '2000-01-01T00:00:00.000000Z' WHERE twilio_sid = 'CA_D';
         UPDATE messages SET notes = 'after the migration' WHERE twilio_sid = 'CA_D';",
    )
    .unwrap();
    let stamped: String = conn
        .query_row(
            "SELECT updated_at FROM messages WHERE twilio_sid = 'CA_D'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_ne!(stamped, "2000-01-01T00:00:00.000000Z");
}

/// A callview older than migration 13, still running on the file, writes
/// the record into `metadata.raw` and leaves `raw_zstd` as it was: the
/// reader takes the newer record, from `metadata`.
#[tokio::test]
async fn a_record_written_into_metadata_after_the_compact_one_is_the_one_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "old-writer.db");
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    sync(&store, scenario()).await;
    let conn = raw(&path);
    let mut newer = common::stored_metadata(&conn, "CA_D")["raw"].clone();
    newer["caller_name"] = json!("Written By An Older Callview");
    conn.execute(
        "UPDATE messages SET metadata = json_set(metadata, '$.raw', json(?1))
         WHERE twilio_sid = 'CA_D'",
        [newer.to_string()],
    )
    .unwrap();
    let trees = store.load_trees(&[sid("CA_D")]).await.unwrap();
    let d = trees
        .iter()
        .find(|t| t.call.sid.as_str() == "CA_D")
        .unwrap();
    assert_eq!(d.call.raw["caller_name"], "Written By An Older Callview");
}

/// The store checkpoints the WAL on a thread of its own: a few small
/// writes never take the WAL past `wal_autocheckpoint`, so without that
/// thread the database file would stay as the writer left it (everything
/// in the WAL); with it, the file soon holds every page.
#[tokio::test]
async fn the_wal_is_checkpointed_beside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_db(&dir, "checkpointed.db");
    let store = SqliteStore::open(path.to_str().unwrap()).unwrap();
    sync(&store, scenario()).await;
    let conn = raw(&path);
    let (pages, page_size): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT page_count FROM pragma_page_count()),
                    (SELECT page_size FROM pragma_page_size())",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let file_size = || i64::try_from(std::fs::metadata(&path).unwrap().len()).unwrap();
    while file_size() < pages * page_size && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(file_size(), pages * page_size);
    drop(conn);

    // A store dropped after a write (here the sync lock's release, which
    // nudges no checkpoint) leaves everything in the file and no WAL: its
    // last connection checkpoints on close. An interrupted checkpoint
    // connection closing last would leave the WAL, unsynced.
    store.try_lock_sync().await.unwrap();
    store.unlock_sync().await.unwrap();
    drop(store);
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    assert!(!wal.exists(), "the WAL is left: {wal:?}");
}
