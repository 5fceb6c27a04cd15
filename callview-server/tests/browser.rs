//! The web viewer in a real browser: Debian's headless Chromium driven
//! through `chromedriver` (WebDriver, with `fantoccini`), against the
//! server on a simulated account.
//!
//! These tests need `chromium` and `chromedriver` (`apt-get install
//! chromium chromium-driver`; `.ci/run` installs them). Without them they
//! fail, naming what to install: a browser test that skips would hide a
//! broken viewer.
//!
//! Screenshots of the main view are written to `artifacts/` at the
//! workspace root (`viewer.png`, `viewer-dark.png`, `viewer-phone.png`).

mod common;

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callview_core::twilio::{Secret, TextSender};
use callview_core::{Call, PartyRules, Store, SyncEngine, SyncMode};
use callview_server::texts::{Texting, MESSAGES_WEBHOOK_PATH};
use callview_server::webhook::{twilio_signature, WebhookConfig};
use callview_server::{serve_with_shutdown, AppState, ServerConfig, SyncRunner, SyncTrigger};
use callview_sim::SimulatedTwilio;
use chrono::Utc;
use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(20);

// ------------------------------------------------------------ the browser

/// Finds a program on the PATH (or at a Debian path).
fn program(name: &str, fallback: &str) -> PathBuf {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let fallback = PathBuf::from(fallback);
    assert!(
        fallback.is_file(),
        "`{name}` is not installed: the browser tests need Debian's chromium and chromedriver \
         (apt-get install -y chromium chromium-driver)"
    );
    fallback
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A headless Chromium session; chromedriver is stopped on drop.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver and a Chromium window of `width` x `height`
    /// (CSS pixels), with `extra` command-line flags.
    async fn launch(width: u32, height: u32, extra: &[&str]) -> Self {
        let chromium = program("chromium", CHROMIUM);
        let chromedriver = program("chromedriver", "/usr/bin/chromedriver");
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium.to_str().unwrap(), "args": args}),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let attempt =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities.clone())
                    .connect(&url)
                    .await;
            match attempt {
                Ok(client) => break client,
                Err(_) if started.elapsed() < WAIT => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    panic!("chromedriver on port {port} did not start a Chromium session: {e}")
                }
            }
        };
        let browser = Self {
            client,
            driver,
            _profile: profile,
        };
        // --window-size sets the outer window; make the viewport exact.
        browser.set_viewport(width, height).await;
        browser
    }

    async fn set_viewport(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap();
        let inner = self
            .js("return [window.innerWidth, window.innerHeight];")
            .await;
        let (w, h) = (inner[0].as_u64().unwrap(), inner[1].as_u64().unwrap());
        let (dw, dh) = (
            u64::from(width) - w.min(u64::from(width)),
            u64::from(height) - h.min(u64::from(height)),
        );
        if dw > 0 || dh > 0 {
            self.client
                .set_window_size(width + dw as u32, height + dh as u32)
                .await
                .unwrap();
        }
    }

    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs `expression` (a JavaScript expression) until it is truthy; returns its value.
    async fn wait_for(&self, what: &str, expression: &str) -> Value {
        let script = format!("try {{ return ({expression}); }} catch (e) {{ return null; }}");
        let started = Instant::now();
        loop {
            let value = self.js(&script).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(_) => true,
            };
            if truthy {
                return value;
            }
            if started.elapsed() > WAIT {
                let page = self
                    .js("return document.body ? document.body.innerText.slice(0, 2000) : ''")
                    .await;
                panic!("timed out waiting for {what} ({expression}); the page shows:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element `css` selects. The page re-renders lists when
    /// data arrives, so an element found a moment ago may be replaced
    /// before the click lands: then it is found again (a few times).
    async fn click(&self, css: &str) {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let element = self
                .client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no element {css}: {e}"));
            self.js(&format!(
                "const e = document.querySelector({}); if (e) e.scrollIntoView({{block: 'center'}});",
                json!(css)
            ))
            .await;
            match element.click().await {
                Ok(()) => return,
                Err(e) if attempt < 5 && e.to_string().contains("stale element") => {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
                Err(e) => panic!("cannot click {css}: {e}"),
            }
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        element.clear().await.unwrap();
        element.send_keys(text).await.unwrap();
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let dir = artifacts();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The conversation ids the list shows, in order.
    async fn rows(&self) -> Vec<String> {
        let value = self
            .js("return [...document.querySelectorAll('#conversation-list .conv')].map(a => a.dataset.conversationId);")
            .await;
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    /// Ends the session (chromedriver stops on drop).
    async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("artifacts")
}

// ------------------------------------------------------------ the server

struct Viewer {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    sim: SimulatedTwilio,
    store: Arc<dyn Store>,
    runner: Arc<SyncRunner>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<()>,
}

/// How a test's server is set up beyond the defaults.
#[derive(Clone, Copy, Debug, Default)]
struct Options<'a> {
    /// The API token the server asks for.
    token: Option<&'a str>,
    /// Sending texts on (from the account's first number), with the
    /// simulated account's signed callbacks taken by the message webhook.
    texting: bool,
}

impl Viewer {
    /// The full server (`serve_with_shutdown`) over a SQLite store loaded
    /// from a simulated account, without a schedule: the tests sync.
    async fn start(token: Option<&str>) -> Self {
        Self::start_with(Options {
            token,
            ..Options::default()
        })
        .await
    }

    /// [`Self::start`] with `options`.
    async fn start_with(options: Options<'_>) -> Self {
        let token = options.token;
        let store = store(Backend::Sqlite).await;
        let sim = sim(400, 7);
        load(&store, &sim).await;
        let runner = SyncRunner::new(SyncEngine::new(
            Arc::new(sim.clone()),
            Arc::clone(&store),
            PartyRules::default(),
        ));
        // A first sync by the runner, so the page shows when it was.
        let _ = runner
            .run(
                SyncMode::Since(Utc::now() - chrono::Duration::hours(1)),
                SyncTrigger::Initial,
            )
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut state = AppState::new(Arc::clone(&store))
            .with_sync(Arc::clone(&runner))
            .with_recordings(Arc::new(sim.clone()), None)
            .with_api_token(token);
        if options.texting {
            // Twilio (the simulated account) posts status callbacks and
            // inbound texts to this server, signed with the account's token.
            state = state
                .with_texting(Texting {
                    sender: TextSender::parse(&owned_number(&sim)),
                    client: Arc::new(sim.clone()),
                    status_callback: Some(format!("{base}{MESSAGES_WEBHOOK_PATH}")),
                })
                .with_webhook(
                    WebhookConfig::new(Some(Secret::new(callview_sim::DEFAULT_AUTH_TOKEN)))
                        .with_public_url(Some(&base))
                        .with_client(Arc::new(sim.clone())),
                );
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            serve_with_shutdown(listener, ServerConfig::new(state), async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            base,
            http: reqwest::Client::new(),
            token: token.map(str::to_owned),
            sim,
            store,
            runner,
            stop: Some(stop),
            served,
        }
    }

    async fn api(&self, path: &str) -> Value {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let (status, body) = into_json(request.send().await.unwrap()).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// Posts `params` to the message webhook, signed as Twilio signs them.
    async fn text_webhook(&self, params: &[(&str, &str)]) -> u16 {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let url = format!("{}{MESSAGES_WEBHOOK_PATH}", self.base);
        let signature = twilio_signature(callview_sim::DEFAULT_AUTH_TOKEN, &url, &params);
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        let response = self
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", signature)
            .body(body)
            .send()
            .await
            .unwrap();
        response.status().as_u16()
    }

    async fn sync(&self) {
        let report = self
            .runner
            .run(
                SyncMode::Since(Utc::now() - chrono::Duration::days(2)),
                SyncTrigger::Other,
            )
            .await
            .unwrap();
        assert!(report.inserted + report.updated > 0, "{report:?}");
    }

    /// Ends the server; it must stop although browsers hold event streams open.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.served)
            .await
            .expect("the server stops with event streams open")
            .unwrap();
    }
}

/// A conversation of the first page whose last interaction folded in legs
/// (preferably a finished one with several legs, which shows the most).
async fn conversation_with_legs(viewer: &Viewer) -> (String, String, Vec<String>) {
    let page = viewer.api("/api/conversations?limit=50").await;
    let conversations = page["conversations"].as_array().unwrap();
    // The newest message may be a text (no legs).
    let legs_of = |c: &Value| {
        c["last_message"]["metadata"]["legs"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let finished = |c: &Value| c["last_message"]["metadata"]["display_status"] == "completed";
    let best = conversations
        .iter()
        .find(|c| legs_of(c) >= 2 && finished(c))
        .or_else(|| {
            conversations
                .iter()
                .find(|c| legs_of(c) >= 1 && finished(c))
        })
        .or_else(|| conversations.iter().find(|c| legs_of(c) >= 1));
    let c = best.expect("a conversation on the first page with a forwarded call");
    let last = &c["last_message"];
    let legs = last["metadata"]["legs"].as_array().unwrap();
    (
        c["id"].as_str().unwrap().to_owned(),
        last["external_id"].as_str().unwrap().to_owned(),
        legs.iter()
            .map(|l| l["sid"].as_str().unwrap().to_owned())
            .collect(),
    )
}

/// The account's first number (texts are sent from it).
fn owned_number(sim: &SimulatedTwilio) -> String {
    sim.with_account(|a| a.owned_numbers()[0].phone_number.clone())
}

/// A conversation of the first page with a phone number (one that can be
/// texted) other than `except`: its id and the number.
async fn phone_conversation(viewer: &Viewer, except: &[&str]) -> (String, String) {
    let page = viewer.api("/api/conversations?limit=50").await;
    page["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["contact"]["handle"].as_str().unwrap().to_owned(),
            )
        })
        .find(|(_, handle)| {
            // +1 NNN 55501 NN numbers are the simulator's unreachable ones.
            handle.starts_with("+1")
                && handle.len() == 12
                && &handle[5..10] != "55501"
                && !except.contains(&handle.as_str())
        })
        .expect("a conversation with a phone number on the first page")
}

/// An inbound call from a new number, still in progress, started a minute ago
/// (on the simulated clock).
fn live_call(sim: &SimulatedTwilio) -> Call {
    let (owned, now) = sim.with_account(|a| (a.owned_numbers()[0].phone_number.clone(), a.now()));
    let start = now - chrono::Duration::seconds(60);
    let rfc = |t: chrono::DateTime<Utc>| callview_core::call::format_rfc2822(&t);
    Call::from_json(&json!({
        "sid": "CAfeedfacefeedfacefeedfacefeedface",
        "account_sid": sim.account_sid(),
        "parent_call_sid": null,
        "from": "+12025550143",
        "to": owned,
        "direction": "inbound",
        "status": "in-progress",
        "start_time": rfc(start),
        "end_time": null,
        "date_created": rfc(start),
        "date_updated": rfc(start),
        "duration": null,
        "price": null,
        "price_unit": "USD",
        "queue_time": "0",
        "api_version": "2010-04-01",
    }))
    .unwrap()
}

// ------------------------------------------------------------ the tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_lists_shows_threads_searches_filters_and_updates_live() {
    let viewer = Viewer::start(None).await;
    let browser = Browser::launch(1280, 800, &[]).await;
    browser
        .client
        .goto(&format!("{}/", viewer.base))
        .await
        .unwrap();

    // The list renders: the first page, newest first, and the total.
    let all = viewer.api("/api/conversations?limit=50").await;
    let expected: Vec<String> = all["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    let full_list = format!(
        "document.querySelectorAll('#conversation-list .conv').length >= {}",
        expected.len()
    );
    browser.wait_for("the list", &full_list).await;
    assert_eq!(browser.rows().await, expected);
    let total = all["total"].as_u64().unwrap();
    let count_text = browser
        .js("return document.getElementById('list-count').textContent")
        .await;
    assert!(
        count_text.as_str().unwrap().contains(&total.to_string()),
        "{count_text} should show {total}"
    );
    browser
        .wait_for(
            "the live connection",
            "document.getElementById('connection').dataset.state === 'live'",
        )
        .await;

    // Selecting a conversation shows its calls, legs folded into their call.
    let (id, sid, legs) = conversation_with_legs(&viewer).await;
    browser
        .click(&format!(".conv[data-conversation-id=\"{id}\"]"))
        .await;
    let card = format!("#thread-content[data-conversation-id=\"{id}\"] .call[data-sid=\"{sid}\"]");
    browser
        .wait_for(
            "the selected thread",
            &format!("document.querySelector({})", json!(card)),
        )
        .await;
    let shown_legs = browser
        .js(&format!(
            "return [...document.querySelectorAll({})].map(l => l.dataset.sid);",
            json!(format!("{card} .leg"))
        ))
        .await;
    assert_eq!(shown_legs, json!(legs), "the legs of {sid}");
    let messages = viewer
        .api(&format!("/api/conversations/{id}/messages?limit=50"))
        .await;
    // Calls and texts interleaved, as the API serves them.
    let cards = browser
        .js("return [...document.querySelectorAll('#thread-content .call, #thread-content .bubble')].map(c => c.dataset.sid);")
        .await;
    let expected_cards: Vec<&str> = messages["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["external_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        cards,
        json!(expected_cards),
        "one card per interaction, one bubble per text"
    );

    // A busy customer's thread comes 50 calls at a time: "Show older calls"
    // fetches the next page by cursor until the last one.
    let busy = "+16175006199";
    let calls: Vec<Call> = (0..120u64)
        .map(|n| {
            callview_core::testkit::CallBuilder::new(&format!("CA{:032x}", 0xb05_0000 + n))
                .from(busy)
                .to("+19788447773")
                .start(
                    Utc::now() - chrono::Duration::hours(30) - chrono::Duration::minutes(n as i64),
                )
                .duration(30)
                .build()
        })
        .collect();
    viewer
        .runner
        .engine()
        .ingest(&PartyRules::default(), calls)
        .await
        .unwrap();
    let busy_list = viewer
        .api("/api/conversations?limit=5&q=617-500-6199")
        .await;
    let busy_id = busy_list["conversations"][0]["id"]
        .as_str()
        .expect("the busy customer")
        .to_owned();
    browser.js(&format!("location.hash = 'c={busy_id}';")).await;
    let busy_cards = format!("#thread-content[data-conversation-id=\"{busy_id}\"] .call");
    let count = format!(
        "return document.querySelectorAll({}).length;",
        json!(busy_cards)
    );
    browser
        .wait_for(
            "the first page of the busy thread",
            &format!("document.querySelectorAll({}).length === 50 && document.getElementById('older-calls')", json!(busy_cards)),
        )
        .await;
    browser.click("#older-calls").await;
    browser
        .wait_for(
            "the second page",
            &format!(
                "document.querySelectorAll({}).length === 100",
                json!(busy_cards)
            ),
        )
        .await;
    browser.click("#older-calls").await;
    browser
        .wait_for(
            "the last page, and no more button",
            &format!("document.querySelectorAll({}).length === 120 && !document.getElementById('older-calls')", json!(busy_cards)),
        )
        .await;
    assert_eq!(browser.js(&count).await, json!(120));
    let shown = browser
        .js(&format!(
            "return [...document.querySelectorAll({})].map(c => c.dataset.sid);",
            json!(busy_cards)
        ))
        .await;
    // Call n started n minutes before call 0: newest first is n = 0, 1, ...
    let expected_sids: Vec<String> = (0..120u64)
        .map(|n| format!("CA{:032x}", 0xb05_0000 + n))
        .collect();
    assert_eq!(shown, json!(expected_sids), "newest first, each call once");
    // Back to the thread the steps below look at.
    browser.js(&format!("location.hash = 'c={id}';")).await;
    browser
        .wait_for(
            "the selected thread again",
            &format!("document.querySelector({})", json!(card)),
        )
        .await;
    let url = browser.client.current_url().await.unwrap();
    assert_eq!(url.fragment(), Some(format!("c={id}").as_str()));
    browser
        .wait_for("fonts and layout", "document.fonts.status === 'loaded'")
        .await;
    browser
        .js("document.getElementById('list-scroll').scrollTop = 0;")
        .await;
    let shot = browser.screenshot("viewer.png").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    // Searching a number written another way finds its conversation.
    let target = all["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            let handle = c["contact"]["handle"].as_str().unwrap();
            handle.starts_with("+1") && handle.len() == 12
        })
        .expect("a NANP contact");
    let handle = target["contact"]["handle"].as_str().unwrap();
    let written = format!("({}) {}-{}", &handle[2..5], &handle[5..8], &handle[8..12]);
    browser.type_into("#search", &written).await;
    let found = viewer
        .api(&format!(
            "/api/conversations?limit=50&q={}",
            url::form_urlencoded::byte_serialize(written.as_bytes()).collect::<String>()
        ))
        .await;
    let found_ids: Vec<String> = found["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(found_ids.contains(&target["id"].as_str().unwrap().to_owned()));
    browser
        .wait_for(
            "the search results",
            &format!(
                "JSON.stringify([...document.querySelectorAll('#conversation-list .conv')].map(a => a.dataset.conversationId)) === {}",
                json!(serde_json::to_string(&found_ids).unwrap())
            ),
        )
        .await;
    browser.click("#clear-filters").await;
    browser.wait_for("the whole list again", &full_list).await;

    // The missed-calls filter shows only conversations whose last call was missed.
    let missed = viewer
        .api("/api/conversations?limit=50&status=missed")
        .await;
    let missed_ids: Vec<String> = missed["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!missed_ids.is_empty());
    // The filter is on the last call; a text newer than it is the row's
    // newest message and shows instead.
    for c in missed["conversations"].as_array().unwrap() {
        if c["last_message"]["type"] != "call" {
            continue;
        }
        let status = c["last_message"]["metadata"]["display_status"]
            .as_str()
            .unwrap();
        assert!(
            ["no-answer", "busy", "failed", "canceled"].contains(&status),
            "{status}"
        );
    }
    browser.click("input[name=status][value=missed]").await;
    browser
        .wait_for(
            "the missed calls",
            &format!(
                "JSON.stringify([...document.querySelectorAll('#conversation-list .conv')].map(a => a.dataset.conversationId)) === {}",
                json!(serde_json::to_string(&missed_ids).unwrap())
            ),
        )
        .await;
    let groups = browser
        .js("return [...new Set([...document.querySelectorAll('#conversation-list .conv[data-type=call]')].map(a => a.dataset.group))];")
        .await;
    assert_eq!(groups, json!(["missed"]));
    let missed_total = missed["total"].as_u64().unwrap();
    let count_text = browser
        .js("return document.getElementById('list-count').textContent")
        .await;
    assert!(
        count_text
            .as_str()
            .unwrap()
            .contains(&missed_total.to_string()),
        "{count_text}"
    );
    browser.click("#clear-filters").await;
    browser.wait_for("the whole list again", &full_list).await;

    // A call arriving and completing in the simulator updates the open page
    // without a reload.
    browser.js("window.__stillTheSamePage = true;").await;
    let call = live_call(&viewer.sim);
    let call_sid = call.sid.to_string();
    viewer.sim.insert(call);
    viewer.sync().await;
    let new_row = browser
        .wait_for(
            "the new call in the list",
            "(() => { const a = [...document.querySelectorAll('#conversation-list .conv')] \
               .find(a => a.textContent.includes('(202) 555-0143')); \
               return a && a.dataset.group === 'live' && a.dataset.conversationId; })()",
        )
        .await;
    let new_id = new_row.as_str().unwrap().to_owned();
    browser
        .click(&format!(".conv[data-conversation-id=\"{new_id}\"]"))
        .await;
    let live_card = format!(".call[data-sid=\"{call_sid}\"]");
    browser
        .wait_for(
            "the ongoing call's card",
            &format!(
                "document.querySelector({}).dataset.group === 'live'",
                json!(live_card)
            ),
        )
        .await;
    viewer
        .sim
        .complete_call(&callview_core::CallSid::new(&call_sid).unwrap());
    viewer.sync().await;
    browser
        .wait_for(
            "the card to show the answered call",
            &format!(
                "document.querySelector({}).dataset.group === 'answered' && \
                 document.querySelector('.conv[data-conversation-id=\"{new_id}\"]').dataset.group === 'answered'",
                json!(live_card)
            ),
        )
        .await;
    assert_eq!(
        browser
            .js("return window.__stillTheSamePage === true")
            .await,
        json!(true)
    );
    let last_sync = browser
        .js("return document.querySelector('#last-sync').textContent")
        .await;
    assert!(
        last_sync.as_str().unwrap().starts_with("Last sync"),
        "{last_sync}"
    );

    // "Sync now" runs the manual sync.
    let before = viewer.runner.last_outcome().unwrap().finished_at;
    browser.click("#sync-now").await;
    browser
        .wait_for(
            "the sync's notice",
            "!document.getElementById('notice').hidden",
        )
        .await;
    let after = viewer.runner.last_outcome().unwrap();
    assert!(
        after.finished_at >= before && after.trigger == SyncTrigger::Manual,
        "{after:?}"
    );

    browser.close().await;
    let _ = viewer.store.counts().await.unwrap();
    viewer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_reads_well_in_dark_mode_on_a_phone_and_by_keyboard() {
    let viewer = Viewer::start(None).await;
    let (id, sid, _) = conversation_with_legs(&viewer).await;

    // Dark mode, as the system asks for it.
    let dark = Browser::launch(
        1280,
        800,
        &[
            "--force-dark-mode",
            "--blink-settings=preferredColorScheme=0",
        ],
    )
    .await;
    dark.client
        .goto(&format!("{}/#c={id}", viewer.base))
        .await
        .unwrap();
    assert_eq!(
        dark.js("return matchMedia('(prefers-color-scheme: dark)').matches")
            .await,
        json!(true)
    );
    dark.wait_for(
        "the thread",
        &format!("document.querySelector('.call[data-sid=\"{sid}\"]')"),
    )
    .await;
    dark.wait_for("the list", "document.querySelectorAll('.conv').length > 0")
        .await;
    let background = dark
        .js("return getComputedStyle(document.body).backgroundColor")
        .await;
    assert_eq!(background, json!("rgb(13, 17, 23)"), "a dark background");
    dark.screenshot("viewer-dark.png").await;
    dark.close().await;

    // A phone: the list first, the thread on its own with a way back.
    let phone = Browser::launch(390, 844, &[]).await;
    phone
        .client
        .goto(&format!("{}/", viewer.base))
        .await
        .unwrap();
    phone
        .wait_for("the list", "document.querySelectorAll('.conv').length > 0")
        .await;
    let display = |css: &str| format!("getComputedStyle(document.querySelector('{css}')).display");
    assert_eq!(
        phone
            .js(&format!("return {}", display(".thread-pane")))
            .await,
        json!("none")
    );
    let width = phone
        .js("return document.documentElement.scrollWidth <= window.innerWidth")
        .await;
    assert_eq!(width, json!(true), "nothing wider than the phone");
    phone
        .click(&format!(".conv[data-conversation-id=\"{id}\"]"))
        .await;
    phone
        .wait_for(
            "the thread",
            &format!("document.querySelector('.call[data-sid=\"{sid}\"]')"),
        )
        .await;
    assert_eq!(
        phone.js(&format!("return {}", display(".list-pane"))).await,
        json!("none")
    );
    assert_eq!(
        phone
            .js("return document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        json!(true)
    );
    phone.screenshot("viewer-phone.png").await;
    phone.click(".back-link").await;
    phone
        .wait_for(
            "the list again",
            &format!("{} !== 'none'", display(".list-pane")),
        )
        .await;
    phone.close().await;

    // The keyboard: "/" reaches the search, arrows move through the list,
    // Enter opens a conversation; every control has an accessible name.
    let keys = Browser::launch(1280, 800, &[]).await;
    keys.client
        .goto(&format!("{}/", viewer.base))
        .await
        .unwrap();
    keys.wait_for("the list", "document.querySelectorAll('.conv').length > 2")
        .await;
    let body = keys.client.find(Locator::Css("body")).await.unwrap();
    body.send_keys("/").await.unwrap();
    assert_eq!(
        keys.js("return document.activeElement.id").await,
        json!("search")
    );
    keys.js("document.querySelector('.conv').focus();").await;
    let rows = keys.rows().await;
    let focused = keys.client.find(Locator::Css(".conv")).await.unwrap();
    focused
        .send_keys(&char::from(fantoccini::key::Key::Down).to_string())
        .await
        .unwrap();
    assert_eq!(
        keys.js("return document.activeElement.dataset.conversationId")
            .await,
        json!(rows[1])
    );
    let second = keys
        .client
        .find(Locator::Css(&format!(
            ".conv[data-conversation-id=\"{}\"]",
            rows[1]
        )))
        .await
        .unwrap();
    second
        .send_keys(&char::from(fantoccini::key::Key::Enter).to_string())
        .await
        .unwrap();
    keys.wait_for(
        "the thread opened by keyboard",
        &format!(
            "document.querySelector('#thread-content').dataset.conversationId === '{}'",
            rows[1]
        ),
    )
    .await;
    let unnamed = keys
        .js(
            "return [...document.querySelectorAll('button, input, select, a[href]')]
               .filter(e => e.offsetParent !== null || e.type === 'radio')
               .filter(e => {
                 const labelled = e.getAttribute('aria-label')
                   || (e.labels && [...e.labels].map(l => l.textContent).join('').trim())
                   || e.textContent.trim() || e.getAttribute('title');
                 return !labelled;
               })
               .map(e => e.outerHTML.slice(0, 120));",
        )
        .await;
    assert_eq!(unnamed, json!([]), "controls without an accessible name");
    keys.close().await;
    viewer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_api_token_the_viewer_takes_it_once_and_keeps_it_out_of_the_address() {
    let viewer = Viewer::start(Some("s3cret-token")).await;
    let browser = Browser::launch(1280, 800, &[]).await;

    // Without the token, the page asks for it.
    browser
        .client
        .goto(&format!("{}/", viewer.base))
        .await
        .unwrap();
    browser
        .wait_for(
            "the token form",
            "!document.getElementById('token-form').hidden",
        )
        .await;
    browser.type_into("#token-input", "s3cret-token").await;
    browser.click("#token-form button[type=submit]").await;
    browser
        .wait_for("the list", "document.querySelectorAll('.conv').length > 0")
        .await;
    browser
        .wait_for(
            "the live connection",
            "document.getElementById('connection').dataset.state === 'live'",
        )
        .await;

    // `?token=` once: used, kept for the tab, dropped from the address.
    browser.js("sessionStorage.clear();").await;
    browser
        .client
        .goto(&format!(
            "{}/?token=s3cret-token#status=missed",
            viewer.base
        ))
        .await
        .unwrap();
    browser
        .wait_for("the list", "document.querySelectorAll('.conv').length > 0")
        .await;
    let url = browser.client.current_url().await.unwrap();
    assert!(!url.as_str().contains("s3cret"), "{url}");
    assert_eq!(url.fragment(), Some("status=missed"));
    assert_eq!(
        browser
            .js("return sessionStorage.getItem('callview.token')")
            .await,
        json!("s3cret-token")
    );
    browser
        .wait_for(
            "the live connection",
            "document.getElementById('connection').dataset.state === 'live'",
        )
        .await;

    // An MMS's picture loads through the media cookie (an <img> cannot
    // send the token), and opens full size in a new tab.
    let with_texts = viewer.api("/api/conversations?limit=50&type=sms").await;
    let mut picture = None;
    for id in ids_of(&with_texts) {
        let texts = viewer
            .api(&format!(
                "/api/conversations/{id}/messages?type=sms&limit=50"
            ))
            .await;
        let mms = texts["messages"].as_array().unwrap().iter().find(|m| {
            m["type"] == "mms"
                && m["metadata"]["media"]
                    .as_array()
                    .is_some_and(|media| !media.is_empty())
        });
        if let Some(m) = mms {
            picture = Some((
                id,
                m["external_id"].as_str().unwrap().to_owned(),
                m["metadata"]["media"][0]["url"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ));
            break;
        }
    }
    let (id, sid, url) = picture.expect("an MMS with a picture in the simulated account");
    browser.js(&format!("location.hash = 'c={id}';")).await;
    let img = format!(".bubble[data-sid=\"{sid}\"] .bubble-media img");
    browser
        .wait_for(
            "the MMS bubble",
            &format!("document.querySelector({})", json!(img)),
        )
        .await;
    browser
        .js(&format!(
            "document.querySelector({}).scrollIntoView({{block: 'center'}});",
            json!(img)
        ))
        .await;
    let shown = browser
        .wait_for(
            "the picture loaded",
            &format!(
                "(() => {{ const i = document.querySelector({}); \
                   return i.complete && i.naturalWidth > 0 && \
                     [i.getAttribute('src'), i.alt, i.loading, i.closest('a').target]; }})()",
                json!(img)
            ),
        )
        .await;
    assert!(
        shown[0].as_str().unwrap().ends_with(&url),
        "{shown} should load {url}"
    );
    assert!(!shown[0].as_str().unwrap().contains("s3cret"), "{shown}");
    assert!(shown[1].as_str().unwrap().starts_with("Picture"), "{shown}");
    assert_eq!(shown[2], "lazy");
    assert_eq!(shown[3], "_blank");
    browser.close().await;
    viewer.stop().await;
}

/// Named tokens in the viewer: an editor signs in (through `?token=`),
/// sees their name and role, edits a call's note and sees "edited by" their
/// name; "Sign out" forgets the token and shows the token form; a viewer's
/// token signs in through the form and is offered no edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_token_signs_in_edits_under_its_name_and_signs_out() {
    let viewer = Viewer::start(None).await;
    let first = viewer.api("/api/conversations?limit=1").await;
    let id = first["conversations"][0]["id"].as_str().unwrap().to_owned();
    let mut tokens = Vec::new();
    for (name, role) in [
        ("alice", callview_core::access::Role::Editor),
        ("wall-screen", callview_core::access::Role::Viewer),
    ] {
        let (secret, token) =
            callview_core::access::NewToken::generate(name, role, Utc::now(), None).unwrap();
        viewer.store.create_token(&token).await.unwrap();
        tokens.push(secret.expose().to_owned());
    }
    let browser = Browser::launch(1280, 900, &[]).await;
    browser
        .client
        .goto(&format!("{}/?token={}#c={id}", viewer.base, tokens[0]))
        .await
        .unwrap();
    browser
        .wait_for(
            "the signed-in name and role",
            "!document.getElementById('whoami').hidden && \
             document.getElementById('whoami-name').textContent === 'alice' && \
             document.getElementById('whoami-role').textContent === 'editor'",
        )
        .await;
    browser
        .wait_for(
            "the thread",
            &format!(
                "document.querySelector('#thread-content[data-conversation-id=\"{id}\"] .edit-call')"
            ),
        )
        .await;
    browser.click("#thread-content .edit-call").await;
    browser
        .wait_for(
            "the call form",
            "document.querySelector('form[id^=call-form]')",
        )
        .await;
    browser
        .type_into(
            "form[id^=call-form] textarea[name=notes]",
            "called back, all good",
        )
        .await;
    browser
        .click("form[id^=call-form] button[type=submit]")
        .await;
    let edited = browser
        .wait_for(
            "who edited the call",
            "document.querySelector('#thread-content .call .edited-by') && \
             document.querySelector('#thread-content .call .edited-by').textContent",
        )
        .await;
    let edited = edited.as_str().unwrap();
    assert!(edited.starts_with("edited by alice, "), "{edited}");
    assert!(edited.contains("now") || edited.contains("ago"), "{edited}");

    // Sign out: the token is forgotten and the form asks for one.
    browser.click("#sign-out").await;
    browser
        .wait_for(
            "the token form after signing out",
            "!document.getElementById('token-form').hidden && document.getElementById('whoami').hidden",
        )
        .await;
    assert_eq!(
        browser
            .js("return sessionStorage.getItem('callview.token')")
            .await,
        Value::Null
    );
    assert_eq!(
        browser
            .js("return getComputedStyle(document.getElementById('layout')).display")
            .await,
        json!("none")
    );

    // A viewer's token: signed in through the form, offered no edit.
    browser.type_into("#token-input", &tokens[1]).await;
    browser.click("#token-form button[type=submit]").await;
    browser
        .wait_for(
            "the viewer signed in",
            "document.getElementById('whoami-name').textContent === 'wall-screen' && \
             document.body.dataset.role === 'viewer' && \
             document.querySelector('#thread-content .call .edited-by')",
        )
        .await;
    let hidden = browser
        .js("return [...document.querySelectorAll('#thread-content .edit-call, #edit-contact, #sync-now')]\
             .every(e => getComputedStyle(e).display === 'none')")
        .await;
    assert_eq!(hidden, json!(true), "a viewer is offered no edit nor sync");
    browser.close().await;
    viewer.stop().await;
}

/// A dispatcher renames a contact, notes and tags a call, finds it again
/// by tag and by note; another tab shows the new name live; an edit made
/// on a version someone else changed meanwhile is refused and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_team_names_notes_and_tags_and_other_tabs_see_it_live() {
    let viewer = Viewer::start(None).await;
    let first = viewer.api("/api/conversations?limit=1").await;
    let id = first["conversations"][0]["id"].as_str().unwrap().to_owned();
    let contact_id = first["conversations"][0]["contact"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = Browser::launch(1280, 900, &[]).await;
    let b = Browser::launch(1280, 900, &[]).await;
    for browser in [&a, &b] {
        browser
            .client
            .goto(&format!("{}/#c={id}", viewer.base))
            .await
            .unwrap();
        browser
            .wait_for(
                "the thread",
                &format!(
                    "document.querySelector('#thread-content[data-conversation-id=\"{id}\"] #edit-contact')"
                ),
            )
            .await;
    }

    // Tab A renames the contact; tab B shows the new name without a reload.
    a.click("#edit-contact").await;
    a.wait_for(
        "the contact form",
        "document.getElementById('contact-form')",
    )
    .await;
    a.type_into("#contact-form input[name=name]", "Mrs Alvarez")
        .await;
    a.type_into("#contact-form input[name=company_name]", "Alvarez Plumbing")
        .await;
    a.type_into("#contact-form input[name=tags]", "VIP, quote")
        .await;
    a.click("#contact-form button[type=submit]").await;
    a.wait_for(
        "the saved name",
        "!document.getElementById('contact-form') && document.getElementById('thread-title').textContent === 'Mrs Alvarez'",
    )
    .await;
    b.js("window.__noReload = true;").await;
    b.wait_for(
        "the new name in the other tab",
        &format!(
            "document.getElementById('thread-title').textContent === 'Mrs Alvarez' && \
             document.querySelector('.conv[data-conversation-id=\"{id}\"] .conv-name').textContent === 'Mrs Alvarez' && \
             document.querySelector('.company').textContent === 'Alvarez Plumbing'"
        ),
    )
    .await;
    assert_eq!(
        b.js("return window.__noReload === true").await,
        json!(true),
        "live, not reloaded"
    );
    let contact = viewer.api(&format!("/api/contacts/{contact_id}")).await;
    assert_eq!(contact["name"], "Mrs Alvarez");
    assert_eq!(contact["metadata"]["tags"], json!(["VIP", "quote"]));

    // A note and a tag on the newest call.
    a.click("#thread-content .edit-call").await;
    a.wait_for(
        "the call form",
        "document.querySelector('form[id^=call-form]')",
    )
    .await;
    a.type_into(
        "form[id^=call-form] textarea[name=notes]",
        "Quoted $240, call back about the gazebo",
    )
    .await;
    a.type_into("form[id^=call-form] input[name=tags]", "complaint")
        .await;
    a.click("form[id^=call-form] button[type=submit]").await;
    a.wait_for(
        "the call's note",
        "document.querySelector('#thread-content .call-notes') && \
         document.querySelector('#thread-content .call-notes').textContent.includes('gazebo')",
    )
    .await;

    // Its tag chip filters the list to the tagged conversation.
    a.click("#thread-content .call .tag[data-tag=complaint]")
        .await;
    a.wait_for(
        "the tag filter",
        &format!(
            "!document.getElementById('tag-filter').hidden && \
             [...document.querySelectorAll('#conversation-list .conv')].map(c => c.dataset.conversationId).join() === '{id}'"
        ),
    )
    .await;
    assert!(a
        .client
        .current_url()
        .await
        .unwrap()
        .fragment()
        .unwrap()
        .contains("tag=complaint"));
    a.click("#tag-filter").await;
    a.wait_for(
        "the filter cleared",
        "document.getElementById('tag-filter').hidden",
    )
    .await;
    // The note is found by search.
    a.type_into("#search", "gazebo").await;
    a.wait_for(
        "the note found by search",
        &format!(
            "[...document.querySelectorAll('#conversation-list .conv')].map(c => c.dataset.conversationId).join() === '{id}'"
        ),
    )
    .await;
    let shot = a.screenshot("viewer-edits.png").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    // Both tabs open the contact form; A saves first; B's save is refused
    // and B keeps what it typed.
    b.wait_for(
        "tab B up to date",
        "document.querySelector('#thread-content .call-notes')",
    )
    .await;
    b.click("#edit-contact").await;
    b.wait_for("tab B's form", "document.getElementById('contact-form')")
        .await;
    a.click("#edit-contact").await;
    a.wait_for("tab A's form", "document.getElementById('contact-form')")
        .await;
    a.type_into("#contact-form textarea[name=notes]", "prefers mornings")
        .await;
    a.click("#contact-form button[type=submit]").await;
    a.wait_for("tab A saved", "!document.getElementById('contact-form')")
        .await;
    b.type_into(
        "#contact-form input[name=company_name]",
        "Somebody Else Ltd",
    )
    .await;
    b.click("#contact-form button[type=submit]").await;
    b.wait_for(
        "the conflict shown",
        "document.querySelector('#contact-form .form-error') && \
         !document.querySelector('#contact-form .form-error').hidden && \
         document.querySelector('#contact-form .form-error').textContent.includes('Changed elsewhere')",
    )
    .await;
    assert_eq!(
        b.js("return document.querySelector('#contact-form input[name=company_name]').value")
            .await,
        json!("Somebody Else Ltd"),
        "what B typed stays"
    );
    let contact = viewer.api(&format!("/api/contacts/{contact_id}")).await;
    assert_eq!(contact["metadata"]["company_name"], "Alvarez Plumbing");
    assert_eq!(contact["metadata"]["notes"], "prefers mornings");
    b.click("#contact-form button.cancel").await;
    b.wait_for(
        "tab B shows A's version",
        "!document.getElementById('contact-form') && document.querySelector('.contact-notes') && \
         document.querySelector('.contact-notes').textContent === 'prefers mornings'",
    )
    .await;

    a.close().await;
    b.close().await;
    viewer.stop().await;
}

/// A dispatcher finds a call by a word said in it, plays its recording
/// (the audio element loads a finite duration and plays on), seeks by
/// clicking a sentence of the transcript, changes the speed, and filters
/// the list to recorded conversations; with an API token, through the
/// media cookie (an audio element cannot send the token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_plays_and_a_word_said_finds_its_call() {
    let viewer = Viewer::start(Some("play-token")).await;
    // A call whose recording has a Voice Intelligence transcript.
    let list = viewer
        .api("/api/conversations?has_recording=true&limit=100")
        .await;
    let mut found = None;
    'search: for c in list["conversations"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let page = viewer
            .api(&format!("/api/conversations/{id}/messages?limit=500"))
            .await;
        for m in page["messages"].as_array().unwrap() {
            for r in m["metadata"]["recordings"].as_array().into_iter().flatten() {
                let Some(t) = r["transcripts"].as_array().and_then(|ts| {
                    ts.iter().find(|t| {
                        t["status"] == "completed"
                            && t["sentences"].as_array().is_some_and(|s| s.len() >= 2)
                    })
                }) else {
                    continue;
                };
                if r["url"].is_null() || r["status"] != "completed" {
                    continue;
                }
                let word = t["text"]
                    .as_str()
                    .unwrap()
                    .split(|c: char| !c.is_alphabetic())
                    .filter(|w| w.len() >= 6)
                    .max_by_key(|w| w.len())
                    .map(str::to_owned);
                if let Some(word) = word {
                    let sentence = t["sentences"][1]["start"].as_f64().unwrap();
                    found = Some((
                        id.to_owned(),
                        r["sid"].as_str().unwrap().to_owned(),
                        word,
                        sentence,
                    ));
                    break 'search;
                }
            }
        }
    }
    let (id, sid, word, sentence_start) = found.expect("a transcribed recording");

    let browser = Browser::launch(1280, 900, &[]).await;
    browser
        .client
        .goto(&format!("{}/?token=play-token", viewer.base))
        .await
        .unwrap();
    browser
        .wait_for("the list", "document.querySelectorAll('.conv').length > 0")
        .await;
    // A word said in the call finds its conversation.
    browser.type_into("#search", &word).await;
    browser
        .wait_for(
            "the conversation found by a word said",
            &format!(
                "location.hash.includes('q={word}') && \
                 document.getElementById('conversation-list').getAttribute('aria-busy') !== 'true' && \
                 document.querySelector('.conv[data-conversation-id=\"{id}\"]')"
            ),
        )
        .await;
    browser
        .click(&format!(".conv[data-conversation-id=\"{id}\"]"))
        .await;
    let audio = format!("document.querySelector('.recording[data-sid=\"{sid}\"] audio')");
    browser.wait_for("the recording's player", &audio).await;
    // The audio element loads through the media cookie: a finite duration.
    let duration = browser
        .wait_for(
            "the audio's duration",
            &format!("{audio}.readyState >= 1 && isFinite({audio}.duration) && {audio}.duration > 0 && {audio}.duration"),
        )
        .await;
    assert!(duration.as_f64().unwrap() > 0.0, "{duration}");
    // Clicking a sentence seeks there and plays on.
    browser
        .click(&format!(
            ".recording[data-sid=\"{sid}\"] .transcript li:nth-child(2) .sentence"
        ))
        .await;
    browser
        .wait_for(
            "playback past the sentence's start",
            &format!(
                "!{audio}.paused && {audio}.currentTime > {} ",
                sentence_start + 0.3
            ),
        )
        .await;
    // The sentence being said is marked.
    browser
        .wait_for(
            "a sentence marked as being said",
            &format!(
                "document.querySelector('.recording[data-sid=\"{sid}\"] .sentence[aria-current=\"true\"]')"
            ),
        )
        .await;
    // Playback speed.
    browser
        .js(&format!(
            "const s = document.querySelector('.recording[data-sid=\"{sid}\"] .speed'); \
             s.value = '1.5'; s.dispatchEvent(new Event('change'));"
        ))
        .await;
    assert_eq!(
        browser.js(&format!("return {audio}.playbackRate")).await,
        json!(1.5)
    );
    // The download link points at this server, never at Twilio.
    let href = browser
        .js(&format!(
            "return document.querySelector('.recording[data-sid=\"{sid}\"] .download').href"
        ))
        .await;
    assert!(
        href.as_str()
            .unwrap()
            .starts_with(&format!("{}/api/recordings/{sid}/audio", viewer.base)),
        "{href}"
    );
    browser.js(&format!("{audio}.pause();")).await;
    browser.screenshot("recording-playing.png").await;

    // The "with recording" filter keeps recorded conversations only.
    browser.click("#clear-filters").await;
    browser
        .wait_for("no filter in the address", "!location.hash.includes('q=')")
        .await;
    browser.click("#recorded").await;
    browser
        .wait_for(
            "the recorded filter in the address",
            "location.hash.includes('recorded=1')",
        )
        .await;
    let total = viewer
        .api("/api/conversations?has_recording=true&limit=1")
        .await["total"]
        .as_u64()
        .unwrap();
    browser
        .wait_for(
            "the filtered count",
            &format!(
                "document.getElementById('list-count').textContent.startsWith('{} ')",
                total
            ),
        )
        .await;
    browser.close().await;
    viewer.stop().await;
}

/// Numbers from the page and from the API are equal (30 and 30.0 alike).
fn same_number(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        _ => a == b,
    }
}

/// What the dashboard shows, read from the page: its figures (raw values
/// kept in `data-value`), the calls chart's bars and table rows, the heat
/// map's cells, the wait bars and the top callers' conversation ids.
async fn dashboard_shows(browser: &Browser) -> Value {
    browser
        .js(
            "const values = (css) => [...document.querySelectorAll(css)].map(e => JSON.parse(e.dataset.value));
             const figures = Object.fromEntries([...document.querySelectorAll('#dash-figures [data-figure]')]
               .map(e => [e.dataset.figure, JSON.parse(e.dataset.value)]));
             const bars = [...document.querySelectorAll('#chart-calls g.bar')].map(g => {
               const seg = (key) => { const r = g.querySelector(`rect.seg[data-key=${key}]`); return r ? Number(r.dataset.value) : 0; };
               return [g.dataset.label, seg('answered'), seg('missed'), seg('live')];
             });
             const rows = [...document.querySelectorAll('#table-calls tbody tr')]
               .map(tr => [...tr.children].map(c => JSON.parse(c.dataset.value)));
             return {
               query: document.getElementById('dashboard').dataset.query,
               figures,
               calls_text: document.querySelector('[data-figure=interactions]').textContent,
               bars,
               rows,
               week: values('#chart-week rect.cell'),
               wait: [...document.querySelectorAll('#chart-wait g.bar')]
                 .map(g => { const r = g.querySelector('rect.seg'); return r ? Number(r.dataset.value) : 0; }),
               wait_rows: values('#table-wait tbody td'),
               top: [...document.querySelectorAll('#table-top-calls a.contact-link')].map(a => a.dataset.conversationId),
               missed: [...document.querySelectorAll('#table-top-missed a.contact-link')].map(a => a.dataset.conversationId),
               lines: values('#table-lines tbody td[data-value]'),
             };",
        )
        .await
}

/// Checks that `shown` (from [`dashboard_shows`]) holds exactly the API's `stats`.
fn assert_dashboard_matches(shown: &Value, stats: &Value) {
    let figures = &shown["figures"];
    let totals = &stats["totals"];
    for (key, expected) in [
        ("interactions", &totals["interactions"]),
        ("answered", &totals["answered"]),
        ("missed", &totals["missed"]),
        ("wait.average", &totals["wait"]["average"]),
        ("wait.p90", &totals["wait"]["p90"]),
        ("talk.average", &totals["talk"]["average"]),
        ("talk.p90", &totals["talk"]["p90"]),
        ("cost", &totals["cost"]),
    ] {
        assert!(
            same_number(&figures[key], expected),
            "figure {key}: the page shows {} and the API says {expected}",
            figures[key]
        );
    }
    if totals["live"].as_u64().unwrap() > 0 {
        assert!(same_number(&figures["live"], &totals["live"]), "{figures}");
    }
    // Texts of the period.
    assert!(
        same_number(&figures["texts"], &stats["texts"]["total"]),
        "figure texts: the page shows {} and the API says {}",
        figures["texts"],
        stats["texts"]["total"]
    );
    if stats["texts"]["undelivered"].as_u64().unwrap() > 0 {
        assert!(same_number(
            &figures["texts.undelivered"],
            &stats["texts"]["undelivered"]
        ));
    }
    let interactions = totals["interactions"].as_u64().unwrap();
    let rate = &figures["missed_rate"];
    if interactions > 0 {
        let expected = totals["missed"].as_f64().unwrap() / interactions as f64;
        assert!((rate.as_f64().unwrap() - expected).abs() < 1e-9, "{rate}");
    } else {
        assert!(rate.is_null(), "{rate}");
    }
    let digits: String = shown["calls_text"]
        .as_str()
        .unwrap()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    assert_eq!(digits, interactions.to_string(), "the calls figure's text");

    // One bar group per bucket, stacked answered / missed (/ live); the
    // table view holds the same numbers.
    let series = stats["series"].as_array().unwrap();
    let bars = shown["bars"].as_array().unwrap();
    let rows = shown["rows"].as_array().unwrap();
    assert_eq!(bars.len(), series.len(), "one bar group per bucket");
    assert_eq!(rows.len(), series.len(), "one table row per bucket");
    for (i, s) in series.iter().enumerate() {
        let (answered, missed, all) = (&s["answered"], &s["missed"], &s["interactions"]);
        let live = all.as_u64().unwrap() - answered.as_u64().unwrap() - missed.as_u64().unwrap();
        assert_eq!(
            bars[i],
            json!([s["label"], answered, missed, live]),
            "bar {i}"
        );
        assert_eq!(
            rows[i],
            json!([s["label"], all, answered, missed, live]),
            "table row {i}"
        );
    }

    // The hour-of-week heat map (incoming calls, Monday first) and the wait
    // distribution, chart and table.
    let week: Vec<Value> = stats["by_hour_of_week"]["inbound"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().clone())
        .collect();
    assert_eq!(week.len(), 7 * 24);
    assert_eq!(shown["week"], json!(week), "the heat map");
    let waits: Vec<&Value> = stats["wait_distribution"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["count"])
        .collect();
    assert_eq!(shown["wait"], json!(waits), "the wait bars");
    assert_eq!(shown["wait_rows"], json!(waits), "the wait table");

    // Top callers and company lines.
    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|c| match &c["conversation_id"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    };
    assert_eq!(
        shown["top"],
        json!(ids(&stats["top_contacts"]["by_calls"])),
        "top callers"
    );
    assert_eq!(
        shown["missed"],
        json!(ids(&stats["top_contacts"]["by_missed"])),
        "most missed"
    );
    let lines: Vec<&Value> = stats["by_owned_number"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| [&l["interactions"], &l["answered"], &l["missed"]])
        .collect();
    assert_eq!(shown["lines"], json!(lines), "by company line");
}

/// Waits until the dashboard shows the answer to a query other than `before`; returns it.
async fn dashboard_query_after(browser: &Browser, before: &str) -> String {
    browser
        .wait_for(
            "the dashboard's new answer",
            &format!(
                "document.getElementById('dashboard').dataset.state === 'ready' && \
                 document.getElementById('dashboard').dataset.query !== {} && \
                 document.getElementById('dashboard').dataset.query",
                json!(before)
            ),
        )
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

/// The dashboard: reached by keyboard from the top bar, its figures,
/// charts and tables equal `GET /api/stats` for the same period, time zone
/// and bucket; a quick period, dates, the bucket and the time zone change
/// what it shows to the API's new answer; a 400 is shown in the page; a
/// top caller opens that conversation; a sync updates it live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_stats_and_follows_the_period() {
    let viewer = Viewer::start(None).await;
    let browser = Browser::launch(1280, 900, &[]).await;
    browser
        .client
        .goto(&format!("{}/", viewer.base))
        .await
        .unwrap();
    browser
        .wait_for("the list", "document.querySelectorAll('.conv').length > 0")
        .await;
    browser
        .wait_for(
            "the live connection",
            "document.getElementById('connection').dataset.state === 'live'",
        )
        .await;

    // The top bar's "Dashboard", by keyboard: the dashboard replaces the
    // conversations and the focus lands on its heading.
    let link = browser
        .client
        .find(Locator::Css("#nav-dashboard"))
        .await
        .unwrap();
    link.send_keys(&char::from(fantoccini::key::Key::Enter).to_string())
        .await
        .unwrap();
    let query = dashboard_query_after(&browser, "").await;
    assert_eq!(
        browser.js("return document.activeElement.id").await,
        json!("dashboard-heading")
    );
    assert_eq!(
        browser
            .js("return [document.getElementById('layout').hidden, document.getElementById('dashboard').hidden, \
                 document.getElementById('nav-dashboard').getAttribute('aria-current')]")
            .await,
        json!([true, false, "page"])
    );
    assert!(browser
        .client
        .current_url()
        .await
        .unwrap()
        .fragment()
        .unwrap()
        .starts_with("view=dashboard"));

    // The default: the last 30 days, per day, in the browser's time zone.
    let tz = browser
        .js("return Intl.DateTimeFormat().resolvedOptions().timeZone")
        .await;
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(params["tz"], tz.as_str().unwrap(), "{query}");
    assert_eq!(params["bucket"], "day", "{query}");
    let day = |key: &str| chrono::NaiveDate::parse_from_str(&params[key], "%Y-%m-%d").unwrap();
    assert_eq!((day("until") - day("since")).num_days(), 29, "{query}");
    let stats = viewer.api(&format!("/api/stats?{query}")).await;
    assert_eq!(stats["series"].as_array().unwrap().len(), 30);
    assert!(stats["totals"]["interactions"].as_u64().unwrap() > 0);
    browser
        .wait_for("fonts and layout", "document.fonts.status === 'loaded'")
        .await;
    let shot = browser.screenshot("dashboard.png").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    // The table views are closed until asked for; open the calls table.
    browser.click("#panel-calls details summary").await;
    assert_eq!(
        browser
            .js("return document.querySelector('#panel-calls details').open")
            .await,
        json!(true)
    );
    assert_dashboard_matches(&dashboard_shows(&browser).await, &stats);
    assert!(
        stats["texts"]["total"].as_u64().unwrap() > 0,
        "the period has texts to show: {}",
        stats["texts"]
    );
    // Every chart is an image with a name; every control has one too.
    let charts = browser
        .js("return [...document.querySelectorAll('#dashboard svg')].map(s => [s.getAttribute('role'), Boolean(s.getAttribute('aria-label'))]);")
        .await;
    assert_eq!(charts, json!([["img", true], ["img", true], ["img", true]]));
    let unnamed = browser
        .js(
            "return [...document.querySelectorAll('#dashboard button, #dashboard input, #dashboard select, #dashboard a[href], .views a')]
               .filter(e => e.offsetParent !== null || e.type === 'radio')
               .filter(e => !(e.getAttribute('aria-label')
                 || (e.labels && [...e.labels].map(l => l.textContent).join('').trim())
                 || e.textContent.trim() || e.getAttribute('title')))
               .map(e => e.outerHTML.slice(0, 120));",
        )
        .await;
    assert_eq!(unnamed, json!([]), "controls without an accessible name");

    // A quick period: the last 7 days.
    browser.click(".preset[data-range='7d']").await;
    let week_query = dashboard_query_after(&browser, &query).await;
    let week_stats = viewer.api(&format!("/api/stats?{week_query}")).await;
    assert_eq!(week_stats["series"].as_array().unwrap().len(), 7);
    assert_dashboard_matches(&dashboard_shows(&browser).await, &week_stats);
    assert!(browser
        .client
        .current_url()
        .await
        .unwrap()
        .fragment()
        .unwrap()
        .contains("range=7d"));

    // Per hour over six years is too many buckets: the API's 400 is shown
    // in the page.
    let set_dates = |since: &str, until: &str| {
        format!(
            "const s = document.getElementById('dash-since'), u = document.getElementById('dash-until'); \
             s.value = '{since}'; u.value = '{until}'; u.dispatchEvent(new Event('change', {{bubbles: true}}));"
        )
    };
    let set_bucket = |bucket: &str| {
        format!(
            "const b = document.getElementById('dash-bucket'); b.value = '{bucket}'; \
             b.dispatchEvent(new Event('change', {{bubbles: true}}));"
        )
    };
    browser.js(&set_bucket("hour")).await;
    let hourly_query = dashboard_query_after(&browser, &week_query).await;
    let hourly = viewer.api(&format!("/api/stats?{hourly_query}")).await;
    assert_eq!(hourly["series"].as_array().unwrap().len(), 7 * 24);
    assert_dashboard_matches(&dashboard_shows(&browser).await, &hourly);
    browser.js(&set_dates("2020-01-01", "2026-01-01")).await;
    let too_many = format!(
        "/api/stats?since=2020-01-01&until=2026-01-01&tz={}&bucket=hour",
        url::form_urlencoded::byte_serialize(params["tz"].as_bytes()).collect::<String>()
    );
    let (status, refused) = into_json(
        viewer
            .http
            .get(format!("{}{too_many}", viewer.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    browser
        .wait_for(
            "the API's error in the page",
            &format!(
                "document.getElementById('dashboard').dataset.state === 'error' && \
                 !document.getElementById('dash-error').hidden && \
                 document.getElementById('dash-error').textContent.includes({})",
                json!(message)
            ),
        )
        .await;

    // Dates the right way round, per week, in another time zone.
    let until = Utc::now().date_naive();
    let since = until - chrono::Duration::days(20);
    browser
        .js(&set_dates(&since.to_string(), &until.to_string()))
        .await;
    let dates_query = dashboard_query_after(&browser, &hourly_query).await;
    browser.js(&set_bucket("week")).await;
    let weekly_query = dashboard_query_after(&browser, &dates_query).await;
    browser
        .js("const t = document.getElementById('dash-tz'); t.value = 'America/New_York'; t.dispatchEvent(new Event('change', {bubbles: true}));")
        .await;
    let zoned_query = dashboard_query_after(&browser, &weekly_query).await;
    assert_eq!(
        zoned_query,
        format!("since={since}&until={until}&tz=America%2FNew_York&bucket=week")
    );
    let zoned = viewer.api(&format!("/api/stats?{zoned_query}")).await;
    assert!(
        browser
            .js("return document.getElementById('dash-error').hidden")
            .await
            == json!(true)
    );
    assert_dashboard_matches(&dashboard_shows(&browser).await, &zoned);

    // Back to 7 days; a top caller opens that conversation in the
    // conversations view, and the top bar leads back to the same dashboard.
    browser.click(".preset[data-range='7d']").await;
    let week_query = dashboard_query_after(&browser, &zoned_query).await;
    let top = browser
        .wait_for(
            "a top caller",
            "document.querySelector('#table-top-calls a.contact-link').dataset.conversationId",
        )
        .await;
    let top = top.as_str().unwrap().to_owned();
    browser.click("#table-top-calls a.contact-link").await;
    browser
        .wait_for(
            "the top caller's conversation",
            &format!(
                "!document.getElementById('layout').hidden && document.getElementById('dashboard').hidden && \
                 document.querySelector('#thread-content[data-conversation-id=\"{top}\"] .call')"
            ),
        )
        .await;
    browser.click("#nav-dashboard").await;
    browser
        .wait_for(
            "the same dashboard again",
            &format!(
                "!document.getElementById('dashboard').hidden && \
                 document.getElementById('dashboard').dataset.state === 'ready' && \
                 document.getElementById('dashboard').dataset.query === {}",
                json!(week_query)
            ),
        )
        .await;

    // A sync that stores a new call updates the dashboard without a reload.
    browser.js("window.__stillTheSamePage = true;").await;
    let before = viewer.api(&format!("/api/stats?{week_query}")).await["totals"]["interactions"]
        .as_u64()
        .unwrap();
    viewer.sim.insert(live_call(&viewer.sim));
    viewer.sync().await;
    let after = viewer.api(&format!("/api/stats?{week_query}")).await;
    let now = after["totals"]["interactions"].as_u64().unwrap();
    assert!(now > before, "the new call is in the last 7 days");
    browser
        .wait_for(
            "the new call in the figures",
            &format!(
                "document.querySelector('[data-figure=interactions]').dataset.value === '{now}'"
            ),
        )
        .await;
    assert_dashboard_matches(&dashboard_shows(&browser).await, &after);
    assert_eq!(
        browser
            .js("return window.__stillTheSamePage === true")
            .await,
        json!(true)
    );

    // A phone: nothing wider than the screen.
    browser.set_viewport(390, 844).await;
    browser
        .wait_for(
            "the phone layout",
            "document.documentElement.scrollWidth <= window.innerWidth",
        )
        .await;
    browser
        .js("document.getElementById('dashboard').scrollTop = 0;")
        .await;
    // The next frame shows the scrolled-back page.
    tokio::time::sleep(Duration::from_millis(300)).await;
    browser.screenshot("dashboard-phone.png").await;

    browser.close().await;
    viewer.stop().await;
}

/// The ids the list shows, as JSON, equal to `ids` (a wait condition).
fn list_is(ids: &[String]) -> String {
    format!(
        "JSON.stringify([...document.querySelectorAll('#conversation-list .conv')].map(a => a.dataset.conversationId)) === {}",
        json!(serde_json::to_string(ids).unwrap())
    )
}

fn ids_of(page: &Value) -> Vec<String> {
    page["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Where a bubble sits in its thread: `{side, direction, status, body}`
/// (`side` is `left` or `right`: the nearer edge of the thread).
fn bubble_facts(css: &str) -> String {
    format!(
        "(() => {{ const b = document.querySelector({css}); if (!b) return null; \
           const list = b.closest('ol').getBoundingClientRect(); const r = b.getBoundingClientRect(); \
           const body = b.querySelector('.bubble-body'); \
           return {{ side: (r.left - list.left) < (list.right - r.right) ? 'left' : 'right', \
             direction: b.dataset.direction, status: b.dataset.status, \
             body: body ? body.innerText : null, markup: body ? body.children.length : -1, \
             label: b.querySelector('.text-status').textContent }}; }})()",
        css = json!(css)
    )
}

/// Texts in the viewer: an inbound text (Twilio's signed webhook) appears
/// at once in the open thread, as a bubble on the left with its body as
/// written (line breaks kept, nothing parsed as markup), and as the list's
/// preview of its conversation; the Type filter narrows the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_text_shows_live_in_the_open_thread_and_the_list_filters_by_type() {
    let viewer = Viewer::start_with(Options {
        texting: true,
        ..Options::default()
    })
    .await;
    let (id, number) = phone_conversation(&viewer, &[]).await;
    let browser = Browser::launch(1280, 900, &[]).await;
    browser
        .client
        .goto(&format!("{}/#c={id}", viewer.base))
        .await
        .unwrap();
    browser
        .wait_for(
            "the thread",
            &format!(
                "document.querySelector('#thread-content[data-conversation-id=\"{id}\"] .calls')"
            ),
        )
        .await;
    browser
        .wait_for("the list", "document.querySelectorAll('.conv').length > 1")
        .await;
    browser
        .wait_for(
            "the live connection",
            "document.getElementById('connection').dataset.state === 'live'",
        )
        .await;
    browser.js("window.__stillTheSamePage = true;").await;

    let sid = "SM5e1ec7ab1e5e1ec7ab1e5e1ec7ab1e00";
    let body = "Running late, sorry!\nStill on for <b>3pm</b>? & thanks";
    let ours = owned_number(&viewer.sim);
    let status = viewer
        .text_webhook(&[
            ("MessageSid", sid),
            ("SmsSid", sid),
            ("AccountSid", viewer.sim.account_sid()),
            ("From", number.as_str()),
            ("To", ours.as_str()),
            ("Body", body),
            ("NumMedia", "0"),
            ("NumSegments", "1"),
            ("SmsStatus", "received"),
        ])
        .await;
    assert_eq!(status, 200, "the signed inbound text is taken");
    let bubble =
        format!("#thread-content[data-conversation-id=\"{id}\"] .bubble[data-sid=\"{sid}\"]");
    let facts = browser
        .wait_for("the text's bubble", &bubble_facts(&bubble))
        .await;
    assert_eq!(
        facts,
        json!({"side": "left", "direction": "inbound", "status": "received", "body": body, "markup": 0, "label": "Received"}),
        "an inbound text on the left, as written"
    );
    let newest = browser
        .js("return document.querySelector('#thread-content .calls > li > article').dataset.sid")
        .await;
    assert_eq!(newest, json!(sid), "the newest message comes first");

    // The list: the conversation moves to the top with the text's first words.
    let conversation = viewer.api(&format!("/api/conversations/{id}")).await;
    assert_eq!(conversation["last_message"]["type"], "sms");
    let blurb = conversation["last_message"]["blurb"].as_str().unwrap();
    let row = format!(".conv[data-conversation-id=\"{id}\"]");
    let preview = browser
        .wait_for(
            "the text as the list's preview",
            &format!(
                "(() => {{ const a = document.querySelector({}); \
                   return a && a.dataset.type === 'sms' && a.querySelector('.conv-sub').textContent; }})()",
                json!(row)
            ),
        )
        .await;
    let preview = preview.as_str().unwrap();
    assert!(
        preview.starts_with("💬 ") && preview.contains(blurb),
        "{preview:?} should show {blurb:?}"
    );
    assert_eq!(browser.rows().await[0], id, "newest first");

    // The Type filter: conversations with texts, then with calls.
    let all = viewer.api("/api/conversations?limit=50").await;
    let texts = viewer.api("/api/conversations?limit=50&type=sms").await;
    let calls = viewer.api("/api/conversations?limit=50&type=call").await;
    let (all_total, texts_total) = (
        all["total"].as_u64().unwrap(),
        texts["total"].as_u64().unwrap(),
    );
    assert!(
        texts_total > 0 && texts_total < all_total,
        "{texts_total} of {all_total} conversations have texts"
    );
    assert!(ids_of(&texts).contains(&id));
    let kind = browser.client.find(Locator::Css("#kind")).await.unwrap();
    kind.select_by_value("sms").await.unwrap();
    browser
        .wait_for("the conversations with texts", &list_is(&ids_of(&texts)))
        .await;
    let count_text = browser
        .js("return document.getElementById('list-count').textContent")
        .await;
    assert!(
        count_text
            .as_str()
            .unwrap()
            .contains(&texts_total.to_string()),
        "{count_text}"
    );
    let url = browser.client.current_url().await.unwrap();
    assert!(
        url.fragment().unwrap_or("").contains("type=sms"),
        "the filter is in the address: {url}"
    );
    let kind = browser.client.find(Locator::Css("#kind")).await.unwrap();
    kind.select_by_value("call").await.unwrap();
    browser
        .wait_for("the conversations with calls", &list_is(&ids_of(&calls)))
        .await;
    browser.click("#clear-filters").await;
    browser
        .wait_for("the whole list again", &list_is(&ids_of(&all)))
        .await;
    assert_eq!(
        browser
            .js("return window.__stillTheSamePage === true")
            .await,
        json!(true),
        "no reload"
    );
    browser.close().await;

    // The bubbles on a phone in dark mode: nothing wider than the screen.
    let phone = Browser::launch(
        390,
        844,
        &[
            "--force-dark-mode",
            "--blink-settings=preferredColorScheme=0",
        ],
    )
    .await;
    phone
        .client
        .goto(&format!("{}/#c={id}", viewer.base))
        .await
        .unwrap();
    let facts = phone
        .wait_for("the text's bubble on a phone", &bubble_facts(&bubble))
        .await;
    assert_eq!(facts["side"], "left", "{facts}");
    assert_eq!(
        phone
            .js("return [document.documentElement.scrollWidth <= window.innerWidth, getComputedStyle(document.body).backgroundColor]")
            .await,
        json!([true, "rgb(13, 17, 23)"]),
        "dark, and nothing wider than the phone"
    );
    phone
        .wait_for("fonts and layout", "document.fonts.status === 'loaded'")
        .await;
    phone.screenshot("viewer-texts-phone-dark.png").await;
    phone.close().await;
    viewer.stop().await;
}

/// Replying by text: the reply box sends (Ctrl+Enter), the bubble appears
/// on the right as queued, then turns delivered when the account's signed
/// status callbacks arrive; an empty text is refused in the page and a
/// text Twilio refuses shows Twilio's reason in the box, the words kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_sent_from_the_thread_turns_delivered_and_refusals_show_in_the_box() {
    let viewer = Viewer::start_with(Options {
        texting: true,
        ..Options::default()
    })
    .await;
    let unsubscribed = viewer.sim.with_account(|a| a.unsubscribed_number());
    let (id, number) = phone_conversation(&viewer, &[unsubscribed.as_str()]).await;
    let browser = Browser::launch(1280, 900, &[]).await;
    browser
        .client
        .goto(&format!("{}/#c={id}", viewer.base))
        .await
        .unwrap();
    browser
        .wait_for(
            "the reply box",
            &format!("document.querySelector('#thread-content[data-conversation-id=\"{id}\"] #composer #reply-body')"),
        )
        .await;
    browser
        .wait_for(
            "the live connection",
            "document.getElementById('connection').dataset.state === 'live'",
        )
        .await;
    let label = browser
        .js("return [...document.getElementById('reply-body').labels].map(l => l.textContent).join('')")
        .await;
    assert!(
        label.as_str().unwrap().starts_with("Reply by text"),
        "{label}"
    );

    // Nothing typed: refused in the page, nothing sent.
    let bubbles = "document.querySelectorAll('#thread-content .bubble').length";
    let before = browser.js(&format!("return {bubbles}")).await;
    browser.click("#reply-send").await;
    let error = browser
        .wait_for(
            "the empty text refused",
            "!document.getElementById('reply-error').hidden && document.getElementById('reply-error').textContent",
        )
        .await;
    assert!(error.as_str().unwrap().contains("empty"), "{error}");
    assert_eq!(browser.js(&format!("return {bubbles}")).await, before);

    // A reply, sent with Ctrl+Enter.
    let reply = "On my way.\nBring the <forms> & the keys";
    browser.type_into("#reply-body", reply).await;
    let counter = browser
        .js("return document.getElementById('reply-count').textContent")
        .await;
    assert!(
        counter
            .as_str()
            .unwrap()
            .starts_with(&format!("{} / ", reply.chars().count())),
        "{counter}"
    );
    let textarea = browser
        .client
        .find(Locator::Css("#reply-body"))
        .await
        .unwrap();
    textarea
        .send_keys(&format!(
            "{}{}",
            char::from(fantoccini::key::Key::Control),
            char::from(fantoccini::key::Key::Enter)
        ))
        .await
        .unwrap();
    let sent = browser
        .wait_for(
            "the reply's bubble",
            &format!(
                "(() => {{ const b = [...document.querySelectorAll('#thread-content .bubble[data-direction=outbound]')] \
                   .find(b => b.querySelector('.bubble-body').innerText === {}); return b && b.dataset.sid; }})()",
                json!(reply)
            ),
        )
        .await;
    let sid = sent.as_str().unwrap().to_owned();
    let bubble = format!(".bubble[data-sid=\"{sid}\"]");
    let facts = browser
        .js(&format!("return {}", bubble_facts(&bubble)))
        .await;
    assert_eq!(facts["side"], "right", "{facts}");
    assert_eq!(facts["markup"], 0, "{facts}");
    assert!(
        ["queued", "sent"].contains(&facts["status"].as_str().unwrap()),
        "{facts}"
    );
    assert_eq!(
        browser
            .js("return [document.getElementById('reply-body').value, document.getElementById('reply-error').hidden]")
            .await,
        json!(["", true]),
        "the box is emptied once sent"
    );
    let at_twilio = viewer
        .sim
        .texts()
        .into_iter()
        .find(|t| t.sid.as_str() == sid)
        .expect("the text reached the account");
    assert_eq!(at_twilio.body, reply);
    assert_eq!(at_twilio.to.as_deref(), Some(number.as_str()));

    // Twilio sends it (a second later) and it is delivered (three seconds
    // later): the status callbacks reach the server and the open page.
    let now = viewer.sim.with_account(|a| a.now());
    viewer.sim.advance_to(now + chrono::Duration::seconds(5));
    browser
        .wait_for(
            "the reply delivered",
            &format!(
                "document.querySelector({}).dataset.status === 'delivered'",
                json!(bubble)
            ),
        )
        .await;
    let facts = browser
        .js(&format!("return {}", bubble_facts(&bubble)))
        .await;
    assert_eq!(facts["label"], "Delivered", "{facts}");
    assert_eq!(facts["side"], "right", "{facts}");
    browser
        .wait_for("fonts and layout", "document.fonts.status === 'loaded'")
        .await;
    browser.screenshot("viewer-texts.png").await;

    // The customer who replied STOP: Twilio refuses (21610); the box says
    // so and keeps the words.
    let found = viewer
        .api(&format!(
            "/api/conversations?limit=5&q={}",
            url::form_urlencoded::byte_serialize(unsubscribed.as_bytes()).collect::<String>()
        ))
        .await;
    let stopped = found["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["contact"]["handle"] == unsubscribed.as_str())
        .expect("the unsubscribed customer's conversation")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    browser.js(&format!("location.hash = 'c={stopped}';")).await;
    browser
        .wait_for(
            "the other reply box",
            &format!("document.querySelector('#composer[data-conversation-id=\"{stopped}\"] #reply-body')"),
        )
        .await;
    let words = "Are you still there?";
    browser.type_into("#reply-body", words).await;
    browser.click("#reply-send").await;
    let error = browser
        .wait_for(
            "Twilio's refusal in the box",
            "!document.getElementById('reply-error').hidden && document.getElementById('reply-error').textContent",
        )
        .await;
    let error = error.as_str().unwrap();
    assert!(
        error.contains("21610") && error.contains("unsubscribed"),
        "{error}"
    );
    assert_eq!(
        browser
            .js("return [document.getElementById('reply-body').value, document.getElementById('reply-send').disabled]")
            .await,
        json!([words, false]),
        "the words stay, and the box can send again"
    );
    browser.close().await;
    viewer.stop().await;
}
