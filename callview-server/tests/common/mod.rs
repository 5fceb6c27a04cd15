//! Shared helpers of the server's integration tests: stores of both kinds,
//! a simulated account synced into them, a server on a free port, and
//! checks of the JSON shapes against the TypeScript models.
#![allow(dead_code, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use callview_core::store::{
    ContactRecord, ConversationPage, ConversationQuery, ConversationView, IngestTx, MessagePage,
    MessageQuery, StoreCounts, TagCount, UnfinishedQuery,
};
use callview_core::twilio::{CallFilter, CallPage, IncomingNumber, PageToken};
use callview_core::{
    CallSid, ConversationId, Interaction, PartyRules, Store, StoreError, StoredCall, SyncEngine,
    SyncMode, TwilioClient, TwilioError,
};
use callview_server::{router, AppState, SyncRunner};
use callview_sim::{SimConfig, SimulatedTwilio};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Which store a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A new, empty store.
pub async fn store(backend: Backend) -> Arc<dyn Store> {
    match backend {
        Backend::Sqlite => Arc::new(callview_sqlite::SqliteStore::open_in_memory().unwrap()),
        Backend::Postgres => Arc::new(callview_postgres::testing::fresh_store().await),
    }
}

/// A simulated account of `calls` records over 30 days ending now.
pub fn sim(calls: usize, seed: u64) -> SimulatedTwilio {
    SimulatedTwilio::new(SimConfig::new(seed, calls))
}

/// Syncs every call of `sim` into `store`.
pub async fn load(store: &Arc<dyn Store>, sim: &SimulatedTwilio) {
    let engine = SyncEngine::new(
        Arc::new(sim.clone()),
        Arc::clone(store),
        PartyRules::default(),
    );
    let report = engine
        .run(
            SyncMode::Since(Utc::now() - chrono::Duration::days(32)),
            None,
        )
        .await
        .unwrap();
    assert!(report.inserted > 0, "{report:?}");
}

/// A running API server.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub runner: Option<Arc<SyncRunner>>,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Serves `state` on 127.0.0.1 with a free port.
pub async fn spawn(state: AppState) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let store = Arc::clone(state.store());
    let runner = state.sync_runner().cloned();
    let app = router(state);
    let handle = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    TestServer {
        base,
        http: reqwest::Client::new(),
        store,
        runner,
        handle,
    }
}

/// A store of `backend` loaded from a simulated account, served with a sync
/// runner over that account.
pub async fn loaded(backend: Backend) -> (TestServer, SimulatedTwilio) {
    loaded_from(backend, sim(400, 7)).await
}

/// [`loaded`] on an account without text messages (for what is about calls
/// alone: exports and imports of calls).
pub async fn loaded_calls_only(backend: Backend) -> (TestServer, SimulatedTwilio) {
    let sim = SimulatedTwilio::new(SimConfig {
        texts: Some(0),
        ..SimConfig::new(7, 400)
    });
    loaded_from(backend, sim).await
}

/// A server over a store synced from `sim`.
pub async fn loaded_from(backend: Backend, sim: SimulatedTwilio) -> (TestServer, SimulatedTwilio) {
    let store = store(backend).await;
    load(&store, &sim).await;
    let runner = SyncRunner::new(SyncEngine::new(
        Arc::new(sim.clone()),
        Arc::clone(&store),
        PartyRules::default(),
    ));
    let state = AppState::new(store)
        .with_sync(runner)
        .with_recordings(Arc::new(sim.clone()), None);
    (spawn(state).await, sim)
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET with an optional bearer token; the status and the JSON body
    /// (every answer must be JSON).
    pub async fn get_with(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        into_json(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_with(path, None).await
    }

    pub async fn post(&self, path: &str) -> (u16, Value) {
        into_json(self.http.post(self.url(path)).send().await.unwrap()).await
    }

    pub async fn request(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        into_json(
            self.http
                .request(method, self.url(path))
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

pub async fn into_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = response.text().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "status {status}: content-type {content_type:?}, body {text}"
    );
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: not JSON ({e}): {text}"));
    (status, value)
}

/// Asserts the API's error shape and returns the code.
pub fn assert_error(body: &Value) -> String {
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("no error object: {body}"));
    let code = error["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code: {body}"));
    let message = error["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {body}"));
    assert!(!message.is_empty());
    assert_eq!(error.len(), 2, "{body}");
    assert!(!message.contains("panicked") && !message.contains("stack backtrace"));
    code.to_owned()
}

// ---- shape checks against the TypeScript models ----

pub fn string<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` should be a string in {v}"))
}

pub fn int(v: &Value, key: &str) -> i64 {
    assert!(
        v[key].is_i64() || v[key].is_u64(),
        "`{key}` should be an integer in {v}"
    );
    v[key].as_i64().unwrap()
}

/// An id: a string holding a positive whole number.
pub fn id(v: &Value, key: &str) -> i64 {
    let text = string(v, key);
    text.parse::<i64>()
        .unwrap_or_else(|_| panic!("`{key}` should be a numeric string, got {text:?}"))
}

/// A Unix-milliseconds timestamp (after 2000, before 2100).
pub fn millis(v: &Value, key: &str) -> i64 {
    let t = int(v, key);
    assert!(
        (946_684_800_000..4_102_444_800_000).contains(&t),
        "`{key}` = {t} is not Unix milliseconds"
    );
    t
}

/// An optional field (`?` in TypeScript): absent or of the type, never null.
pub fn optional_string(v: &Value, key: &str) -> Option<String> {
    match v.get(key) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => panic!("optional `{key}` should be absent or a string, got {other} in {v}"),
    }
}

pub fn iso(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not ISO 8601: {e}"))
        .with_timezone(&Utc)
}

pub fn assert_contact(c: &Value) {
    id(c, "id");
    let handle = string(c, "handle");
    assert!(!handle.is_empty());
    optional_string(c, "name");
    optional_string(c, "avatar_url");
    let meta = &c["metadata"];
    assert!(meta.is_object(), "contact.metadata: {c}");
    assert!(!string(meta, "formatted_number").is_empty());
    if handle.starts_with('+') {
        assert!(optional_string(meta, "country_code").is_some(), "{c}");
    } else {
        assert!(meta.get("country_code").is_none(), "{c}");
    }
    if let Some(m) = meta.get("is_mobile") {
        assert!(m.is_boolean());
    }
    millis(c, "created_at");
    millis(c, "updated_at");
}

pub fn assert_call(c: &Value) {
    let sid = string(c, "sid");
    assert!(sid.starts_with("CA"), "{sid}");
    string(c, "from");
    string(c, "to");
    assert!(c["duration"].is_u64(), "duration: {c}");
    assert!(!string(c, "status").is_empty());
    assert!(!string(c, "direction").is_empty());
    optional_string(c, "recording_url");
    if let Some(price) = optional_string(c, "price") {
        price.parse::<f64>().unwrap();
    }
    optional_string(c, "price_unit");
    optional_string(c, "answered_by");
    optional_string(c, "parent_call_sid");
    let start = iso(string(c, "start_time"));
    if let Some(end) = optional_string(c, "end_time") {
        assert!(iso(&end) >= start, "{c}");
    }
}

const FINAL: &[&str] = &["completed", "busy", "failed", "no-answer", "canceled"];

/// Checks a text message (`type` `sms` or `mms`).
pub fn assert_text(m: &Value, conversation_id: &str) {
    let sid = string(m, "external_id");
    assert!(sid.starts_with("SM") || sid.starts_with("MM"), "{sid}");
    assert_eq!(string(m, "id"), sid);
    let kind = string(m, "type");
    assert!(["sms", "mms"].contains(&kind), "{kind}");
    let direction = string(m, "direction");
    assert!(
        ["inbound", "outbound-api", "outbound-call", "outbound-reply"].contains(&direction),
        "{direction}"
    );
    millis(m, "created_at");
    assert!(string(m, "subject").starts_with("💬") || string(m, "subject").starts_with("🖼️"));
    string(m, "body");
    string(m, "blurb");
    assert_eq!(string(m, "conversation_id"), conversation_id);
    assert_contact(&m["contact"]);
    let meta = &m["metadata"];
    assert_eq!(string(meta, "message_sid"), sid);
    assert!(!string(meta, "status").is_empty());
    assert_eq!(string(meta, "twilio_direction"), direction);
    assert!(["inbound", "outbound", "internal"].contains(&string(meta, "actual_direction")));
    let media = meta["media"]
        .as_array()
        .unwrap_or_else(|| panic!("media: {meta}"));
    assert_eq!(
        kind == "mms",
        int(meta, "num_media") > 0 || sid.starts_with("MM"),
        "{m}"
    );
    for item in media {
        let url = string(item, "url");
        assert!(
            url.starts_with(&format!("/api/texts/{sid}/media/ME")),
            "{url}"
        );
    }
    if let Some(price) = optional_string(meta, "price") {
        price.parse::<f64>().unwrap();
    }
    if let Some(code) = meta.get("error_code") {
        assert!(code.is_i64(), "{meta}");
    }
    assert!(m.get("call").is_none(), "a text has no call: {m}");
}

/// Checks a Message (a call, or a text: [`assert_text`]); returns its
/// legs' SIDs.
pub fn assert_message(m: &Value, conversation_id: &str) -> Vec<String> {
    if string(m, "type") != "call" {
        assert_text(m, conversation_id);
        return Vec::new();
    }
    id(m, "id");
    let sid = string(m, "external_id");
    assert_eq!(string(m, "type"), "call");
    let direction = string(m, "direction");
    millis(m, "created_at");
    let call = &m["call"];
    assert_call(call);
    assert_eq!(string(call, "sid"), sid);
    assert_eq!(string(call, "direction"), direction);
    assert!(string(m, "subject").starts_with("📞"), "{}", m["subject"]);
    assert!(!string(m, "body").is_empty());
    assert!(!string(m, "blurb").is_empty());
    assert_eq!(string(m, "conversation_id"), conversation_id);
    assert_contact(&m["contact"]);

    let meta = &m["metadata"];
    assert_eq!(string(meta, "call_sid"), sid);
    assert_eq!(int(meta, "duration"), int(call, "duration"));
    assert_eq!(string(meta, "status"), string(call, "status"));
    assert_eq!(string(meta, "twilio_status"), string(call, "status"));
    assert_eq!(string(meta, "twilio_direction"), direction);
    assert_eq!(string(meta, "from_number"), string(call, "from"));
    assert_eq!(string(meta, "to_number"), string(call, "to"));
    optional_string(meta, "recording_url");
    optional_string(meta, "parent_call_sid");
    let total = int(meta, "total_duration");
    let talk = int(meta, "talk_time");
    let wait = int(meta, "wait_time");
    assert_eq!(total, int(call, "duration"));
    assert_eq!(wait, (total - talk).max(0), "{meta}");
    assert!(["inbound", "outbound", "internal"].contains(&string(meta, "actual_direction")));
    let display = string(meta, "display_status");
    assert!(!display.is_empty());
    let legs = meta["legs"]
        .as_array()
        .unwrap_or_else(|| panic!("legs: {meta}"));
    assert_eq!(
        meta["merged_from_parent"].as_bool(),
        Some(!legs.is_empty()),
        "{meta}"
    );
    let mut previous: Option<DateTime<Utc>> = None;
    let mut sids = Vec::new();
    for leg in legs {
        assert_call(leg);
        let start = iso(string(leg, "start_time"));
        if let Some(p) = previous {
            assert!(p <= start, "legs should be oldest first: {meta}");
        }
        previous = Some(start);
        assert_ne!(string(leg, "sid"), sid);
        sids.push(string(leg, "sid").to_owned());
    }
    if legs.is_empty() {
        assert_eq!(talk, total);
    }
    if FINAL.contains(&string(call, "status")) {
        assert!(
            ["completed", "no-answer", "busy", "failed", "canceled"].contains(&display),
            "{display}"
        );
    }
    sids
}

pub fn assert_conversation(c: &Value) {
    let cid = string(c, "id").to_owned();
    id(c, "id");
    assert!(!string(c, "external_id").is_empty());
    assert!(string(c, "subject").starts_with("Calls with "));
    assert!(["active", "archived"].contains(&string(c, "status")));
    let last_at = millis(c, "last_message_at");
    assert_eq!(int(c, "unread_count"), 0);
    assert_contact(&c["contact"]);
    assert_eq!(
        string(&c["contact"]["metadata"], "formatted_number"),
        string(c, "external_id")
    );
    let meta = &c["metadata"];
    let calls = int(meta, "total_calls");
    let texts = int(meta, "total_messages");
    assert!(calls + texts >= 1, "{meta}");
    assert!(int(meta, "total_duration") >= 0);
    if calls > 0 {
        assert!(["inbound", "outbound", "internal"].contains(&string(meta, "last_call_direction")));
    }
    millis(c, "created_at");
    millis(c, "updated_at");
    let last = &c["last_message"];
    assert!(last.is_object(), "last_message should be populated: {c}");
    assert_message(last, &cid);
    // The newest message's kind is the counters'.
    assert_eq!(
        string(last, "type"),
        string(meta, "last_message_type"),
        "{c}"
    );
    if string(last, "type") == "call" {
        assert_eq!(
            string(&last["metadata"], "actual_direction"),
            string(meta, "last_call_direction")
        );
    }
    assert!(int(last, "created_at") <= last_at, "{c}");
}

// ---- test doubles ----

/// A Twilio client that waits before every page (to keep a sync running).
pub struct SlowTwilio {
    pub inner: SimulatedTwilio,
    pub delay: Duration,
}

#[async_trait]
impl TwilioClient for SlowTwilio {
    async fn list_calls_page(
        &self,
        filter: &CallFilter,
        page: Option<&PageToken>,
    ) -> Result<CallPage, TwilioError> {
        tokio::time::sleep(self.delay).await;
        self.inner.list_calls_page(filter, page).await
    }
    async fn fetch_call(&self, sid: &CallSid) -> Result<callview_core::Call, TwilioError> {
        self.inner.fetch_call(sid).await
    }
    async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
        self.inner.list_incoming_numbers().await
    }
    callview_core::forward_media_methods!(inner);
}

/// A Twilio client whose every request is rejected as bad credentials.
pub struct RejectingTwilio;

fn rejected() -> TwilioError {
    TwilioError::Unauthorized {
        status: 401,
        message: "Authenticate".into(),
    }
}

#[async_trait]
impl TwilioClient for RejectingTwilio {
    async fn list_calls_page(
        &self,
        _filter: &CallFilter,
        _page: Option<&PageToken>,
    ) -> Result<CallPage, TwilioError> {
        Err(rejected())
    }
    async fn fetch_call(&self, _sid: &CallSid) -> Result<callview_core::Call, TwilioError> {
        Err(rejected())
    }
    async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
        Err(rejected())
    }
    async fn list_recordings_page(
        &self,
        _filter: &callview_core::twilio::RecordingFilter,
        _page: Option<&callview_core::twilio::PageToken>,
    ) -> Result<callview_core::twilio::RecordingPage, TwilioError> {
        Err(rejected())
    }
    async fn fetch_recording(
        &self,
        _sid: &callview_core::recording::RecordingSid,
    ) -> Result<callview_core::recording::Recording, TwilioError> {
        Err(rejected())
    }
    async fn list_transcriptions_page(
        &self,
        _page_size: u32,
        _page: Option<&callview_core::twilio::PageToken>,
    ) -> Result<callview_core::twilio::TranscriptPage, TwilioError> {
        Err(rejected())
    }
    async fn list_intelligence_transcripts_page(
        &self,
        _filter: &callview_core::twilio::TranscriptFilter,
        _page: Option<&callview_core::twilio::PageToken>,
    ) -> Result<callview_core::twilio::TranscriptPage, TwilioError> {
        Err(rejected())
    }
    async fn transcript_sentences(
        &self,
        _sid: &str,
    ) -> Result<Vec<callview_core::recording::Sentence>, TwilioError> {
        Err(rejected())
    }
    async fn recording_audio(
        &self,
        _sid: &callview_core::recording::RecordingSid,
        _format: callview_core::twilio::AudioFormat,
    ) -> Result<callview_core::twilio::RecordingAudio, TwilioError> {
        Err(rejected())
    }
    async fn list_texts_page(
        &self,
        _filter: &callview_core::twilio::TextFilter,
        _page: Option<&PageToken>,
    ) -> Result<callview_core::twilio::TextPage, TwilioError> {
        Err(rejected())
    }
    async fn text_media(
        &self,
        _sid: &callview_core::text::MessageSid,
    ) -> Result<Vec<callview_core::text::TextMedia>, TwilioError> {
        Err(rejected())
    }
    async fn text_media_content(
        &self,
        _sid: &callview_core::text::MessageSid,
        _media_sid: &str,
    ) -> Result<callview_core::twilio::RecordingAudio, TwilioError> {
        Err(rejected())
    }
    async fn send_text(
        &self,
        _text: &callview_core::twilio::OutgoingText,
    ) -> Result<callview_core::text::Text, TwilioError> {
        Err(rejected())
    }
}

/// A store whose database is gone: every method fails with a backend error
/// whose message must never reach a client.
pub struct BrokenStore;

pub const SECRET_DETAIL: &str = "connection to 10.9.8.7 refused for user admin";

fn broken() -> StoreError {
    StoreError::Backend {
        message: SECRET_DETAIL.into(),
        source: None,
    }
}

#[async_trait]
impl Store for BrokenStore {
    async fn load_trees(&self, _sids: &[CallSid]) -> Result<Vec<StoredCall>, StoreError> {
        Err(broken())
    }
    async fn begin_ingest(&self) -> Result<Box<dyn IngestTx>, StoreError> {
        Err(broken())
    }
    async fn read_cursor(&self, _name: &str) -> Result<Option<String>, StoreError> {
        Err(broken())
    }
    async fn write_cursor(&self, _name: &str, _value: &str) -> Result<(), StoreError> {
        Err(broken())
    }
    async fn unfinished_calls(
        &self,
        _query: &UnfinishedQuery,
    ) -> Result<Vec<StoredCall>, StoreError> {
        Err(broken())
    }
    async fn messages(
        &self,
        _id: ConversationId,
        _query: &MessageQuery,
    ) -> Result<MessagePage, StoreError> {
        Err(broken())
    }
    async fn texts(
        &self,
        _id: ConversationId,
        _query: &MessageQuery,
    ) -> Result<Vec<callview_core::model::StoredText>, StoreError> {
        Err(broken())
    }
    async fn text(
        &self,
        _sid: &callview_core::text::MessageSid,
    ) -> Result<callview_core::model::StoredText, StoreError> {
        Err(broken())
    }
    async fn list_conversations(
        &self,
        _query: &ConversationQuery,
    ) -> Result<ConversationPage, StoreError> {
        Err(broken())
    }
    async fn conversation(&self, _id: ConversationId) -> Result<ConversationView, StoreError> {
        Err(broken())
    }
    async fn conversation_calls(&self, _id: ConversationId) -> Result<Vec<StoredCall>, StoreError> {
        Err(broken())
    }
    async fn contact(&self, _id: i64) -> Result<ContactRecord, StoreError> {
        Err(broken())
    }
    async fn message(&self, _id: i64) -> Result<(ConversationId, Interaction), StoreError> {
        Err(broken())
    }
    async fn contacts_page(
        &self,
        _after: i64,
        _limit: u32,
    ) -> Result<Vec<ContactRecord>, StoreError> {
        Err(broken())
    }
    async fn export_calls(
        &self,
        _query: &callview_core::export::ExportQuery,
        _after: Option<i64>,
        _limit: u32,
    ) -> Result<Vec<callview_core::export::ExportRow>, StoreError> {
        Err(broken())
    }
    async fn tags(&self) -> Result<Vec<TagCount>, StoreError> {
        Err(broken())
    }
    // The tokens table answers (none stored, so the API is open as
    // without tokens): the requests reach the handlers whose failures
    // these tests check. Creating or looking a token up fails like the rest.
    async fn create_token(
        &self,
        _token: &callview_core::access::NewToken,
    ) -> Result<callview_core::access::TokenRecord, StoreError> {
        Err(broken())
    }
    async fn tokens(&self) -> Result<Vec<callview_core::access::TokenRecord>, StoreError> {
        Ok(Vec::new())
    }
    async fn revoke_token(
        &self,
        _name: &str,
        _at: chrono::DateTime<chrono::Utc>,
    ) -> Result<callview_core::access::TokenRecord, StoreError> {
        Err(broken())
    }
    async fn authenticate(
        &self,
        _hash: &callview_core::access::TokenHash,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<callview_core::access::TokenRecord>, StoreError> {
        Err(broken())
    }
    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        Err(broken())
    }
    async fn root_sids_page(
        &self,
        _after: Option<&CallSid>,
        _limit: u32,
    ) -> Result<Vec<CallSid>, StoreError> {
        Err(broken())
    }
    async fn stats(
        &self,
        _query: &callview_core::stats::StatsQuery,
    ) -> Result<callview_core::stats::StatsRows, StoreError> {
        Err(broken())
    }
    async fn recording(
        &self,
        _sid: &callview_core::recording::RecordingSid,
    ) -> Result<callview_core::model::StoredRecording, StoreError> {
        Err(broken())
    }
    async fn unfinished_media_since(
        &self,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        Err(broken())
    }
    async fn media_of_calls(
        &self,
        _sids: &[CallSid],
    ) -> Result<callview_core::store::CallMedia, StoreError> {
        Err(broken())
    }
    async fn health(&self) -> Result<(), StoreError> {
        Err(broken())
    }
}

/// Runs each listed `async fn name(backend: Backend)` once per store, as
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}
