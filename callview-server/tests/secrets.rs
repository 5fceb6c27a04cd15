//! Secrets never leak: a sync and the server run at the most verbose log
//! level (`RUST_LOG=trace`) with known fake credentials (Twilio auth token,
//! API key secret, database password, API token), and none of them appears
//! in any log line, error message, `Debug` output or API response.

mod reliability;

use std::io::Read;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use callview_core::twilio::{Credentials, HttpTwilioClient, RetryPolicy, Secret, TwilioConfig};
use callview_core::{PartyRules, SyncEngine, SyncMode, TwilioClient};
use callview_server::webhook::{twilio_signature, WebhookConfig, CALL_STATUS_PATH};
use callview_server::{AppState, ServerConfig, SyncRunner};
use callview_sim::{ServerOptions, SimConfig, SimulatedTwilio};
use reliability::*;

const AUTH_TOKEN: &str = "fakeAuthTokenQ7c1d93a0e5";
const API_KEY: &str = "SK0123456789abcdef0123456789abcdef";
const API_SECRET: &str = "fakeApiSecretZ4b2e8f61aa";
const DB_PASSWORD: &str = "fakeDbPasswordW91d3c7";
const API_TOKEN: &str = "fakeApiTokenV0d6a5e2f";
const SECRETS: [&str; 4] = [AUTH_TOKEN, API_SECRET, DB_PASSWORD, API_TOKEN];

/// Panics when `text` contains a secret (or its Basic-auth/URL encodings).
fn assert_clean(what: &str, text: &str) {
    use base64::Engine;
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows a secret:\n{text}");
    }
    let account = callview_sim::account_sid_for_seed(31);
    for user in [account.as_str(), API_KEY] {
        for secret in [AUTH_TOKEN, API_SECRET] {
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
            assert!(
                !text.contains(&basic[..basic.len() - 4]),
                "{what} shows a Basic-auth header"
            );
        }
    }
}

fn sim() -> SimulatedTwilio {
    SimulatedTwilio::new(SimConfig::new(31, 300))
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn run(mut command: std::process::Command) -> Output {
    tokio::task::spawn_blocking(move || command.stdin(Stdio::null()).output().unwrap())
        .await
        .unwrap()
}

async fn record_response(response: reqwest::Response) -> String {
    let head = format!("{} {:?}", response.status(), response.headers());
    let body = response.text().await.unwrap_or_default();
    format!("{head}\n{body}\n")
}

async fn database_urls(dir: &std::path::Path) -> Vec<String> {
    vec![
        format!("sqlite://{}", dir.join("secrets.db").display()),
        fresh_postgres_url_with_password(DB_PASSWORD).await,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_level_sync_never_prints_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim();
    let account = sim.account_sid().to_owned();
    // Twilio (simulated) requires the right credentials.
    let by_token = serve_sim(
        sim.clone(),
        ServerOptions {
            credentials: Some((account.clone(), AUTH_TOKEN.into())),
            ..ServerOptions::default()
        },
    )
    .await;
    let by_key = serve_sim(
        sim.clone(),
        ServerOptions {
            credentials: Some((API_KEY.into(), API_SECRET.into())),
            ..ServerOptions::default()
        },
    )
    .await;

    for database_url in database_urls(dir.path()).await {
        // Auth token, then API key; both succeed at trace level.
        for (base, vars) in [
            (&by_token.base, vec![("TWILIO_AUTH_TOKEN", AUTH_TOKEN)]),
            (
                &by_key.base,
                vec![
                    ("TWILIO_API_KEY", API_KEY),
                    ("TWILIO_API_SECRET", API_SECRET),
                ],
            ),
        ] {
            let mut command = callview(dir.path());
            command
                .args(["sync", "--since", "40d", "--json"])
                .env("DATABASE_URL", &database_url)
                .env("TWILIO_ACCOUNT_SID", &account)
                .env("TWILIO_API_BASE_URL", base)
                .env("CALLVIEW_API_TOKEN", API_TOKEN)
                .env("RUST_LOG", "trace")
                .envs(vars.iter().copied());
            let output = run(command).await;
            let all = text(&output);
            assert!(output.status.success(), "{all}");
            assert!(
                all.contains("TRACE") || all.contains("DEBUG"),
                "not verbose: {all}"
            );
            assert_clean("a successful sync", &all);
        }

        // Wrong credentials: a clear 401 error, still without the secret sent.
        let mut command = callview(dir.path());
        command
            .args(["sync", "--since", "1d"])
            .env("DATABASE_URL", &database_url)
            .env("TWILIO_ACCOUNT_SID", &account)
            .env("TWILIO_API_BASE_URL", &by_key.base)
            .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
            .env("RUST_LOG", "trace");
        let output = run(command).await;
        let all = text(&output);
        assert!(!output.status.success(), "{all}");
        assert!(
            all.to_lowercase().contains("credential") || all.contains("401"),
            "{all}"
        );
        assert_clean("a sync with rejected credentials", &all);
    }

    // A database that cannot be reached: the error names it, without the password.
    let mut command = callview(dir.path());
    command
        .args(["sync", "--since", "1d"])
        .env(
            "DATABASE_URL",
            format!("postgres://app:{DB_PASSWORD}@127.0.0.1:1/calls"),
        )
        .env("TWILIO_ACCOUNT_SID", &account)
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        .env("TWILIO_API_BASE_URL", &by_token.base)
        .env("RUST_LOG", "trace");
    let output = run(command).await;
    let all = text(&output);
    assert!(!output.status.success());
    assert!(all.contains("127.0.0.1:1"), "{all}");
    assert_clean("a sync with an unreachable database", &all);
}

/// Every answer of a running `callview serve` (all routes, good and bad
/// tokens, signed and unsigned callbacks, syncs) and its whole trace log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_level_server_never_shows_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let sim = sim();
    let account = sim.account_sid().to_owned();
    let twilio = serve_sim(
        sim,
        ServerOptions {
            credentials: Some((account.clone(), AUTH_TOKEN.into())),
            ..ServerOptions::default()
        },
    )
    .await;

    for database_url in database_urls(dir.path()).await {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let child = callview(dir.path())
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--sync-interval",
                "1",
            ])
            .env("DATABASE_URL", &database_url)
            .env("TWILIO_ACCOUNT_SID", &account)
            .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
            .env("TWILIO_API_BASE_URL", &twilio.base)
            .env("CALLVIEW_API_TOKEN", API_TOKEN)
            .env("CALLVIEW_PUBLIC_URL", "https://calls.example.com")
            .env("RUST_LOG", "trace")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = Kill(child);
        // Drain the (large) trace log while the server runs.
        let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(mut pipe) = pipe {
                    let mut bytes = Vec::new();
                    let _ = pipe.read_to_end(&mut bytes);
                    text = String::from_utf8_lossy(&bytes).into_owned();
                }
                text
            })
        };
        let stdout = drain(
            child
                .0
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        );
        let stderr = drain(
            child
                .0
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        );
        wait_until_up(&format!("{base}/healthz"), Duration::from_secs(60)).await;

        let http = reqwest::Client::new();
        let mut answers = String::new();
        // Wait for the initial sync to have stored something.
        for _ in 0..100 {
            let r = http
                .get(format!("{base}/api/conversations?limit=1"))
                .bearer_auth(API_TOKEN)
                .send()
                .await
                .unwrap();
            let body: serde_json::Value = r.json().await.unwrap();
            if body["total"].as_u64().unwrap_or(0) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let list: serde_json::Value = http
            .get(format!("{base}/api/conversations?limit=5"))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = list["conversations"][0]["id"]
            .as_str()
            .unwrap_or("1")
            .to_owned();
        let gets = [
            "/api/conversations".to_owned(),
            format!("/api/conversations/{id}"),
            format!("/api/conversations/{id}/messages"),
            "/api/calls/active".to_owned(),
            "/api/openapi.json".to_owned(),
            "/healthz".to_owned(),
            "/api/nope".to_owned(),
            "/api/conversations/abc?limit=-1".to_owned(),
        ];
        for path in &gets {
            for token in [Some(API_TOKEN), Some("wrong-token"), None] {
                let mut request = http.get(format!("{base}{path}"));
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                answers.push_str(&record_response(request.send().await.unwrap()).await);
            }
        }
        for path in ["/api/sync/today", "/api/sync/recent"] {
            let response = http
                .post(format!("{base}{path}"))
                .bearer_auth(API_TOKEN)
                .send()
                .await
                .unwrap();
            answers.push_str(&record_response(response).await);
        }
        // Status callbacks: signed (with the auth token), unsigned, wrongly signed.
        let params = vec![
            (
                "CallSid".to_owned(),
                "CA0000000000000000000000000000beef".to_owned(),
            ),
            ("CallStatus".to_owned(), "ringing".to_owned()),
            ("AccountSid".to_owned(), account.clone()),
        ];
        let signature = twilio_signature(
            AUTH_TOKEN,
            &format!("https://calls.example.com{CALL_STATUS_PATH}"),
            &params,
        );
        for signature in [Some(signature), None, Some("bad".to_owned())] {
            let mut request = http
                .post(format!("{base}{CALL_STATUS_PATH}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(&params)
                        .finish(),
                );
            if let Some(signature) = signature {
                request = request.header("X-Twilio-Signature", signature);
            }
            let response = request.send().await.unwrap();
            answers.push_str(&record_response(response).await);
        }
        assert!(
            answers.contains("\"applied\""),
            "the signed callback was not applied: {answers}"
        );
        assert_clean("an API response", &answers);

        // Let a scheduled sync run, then stop the server gracefully and read its log.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let pid = child.0.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let log = tokio::task::spawn_blocking(move || {
            let _ = child.0.wait();
            format!("{}\n{}", stdout.join().unwrap(), stderr.join().unwrap())
        })
        .await
        .unwrap();
        assert!(
            log.contains("TRACE"),
            "not at trace level: {}",
            &log[..log.len().min(2000)]
        );
        assert!(
            log.contains("status callback applied"),
            "{}",
            &log[..log.len().min(2000)]
        );
        assert_clean("the server log", &log);
    }
}

/// `Debug` and `Display` of everything that holds a secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_output_and_errors_never_show_a_secret() {
    let sim = sim();
    let account = sim.account_sid().to_owned();
    let twilio = serve_sim(
        sim.clone(),
        ServerOptions {
            credentials: Some((account.clone(), "the-right-token".into())),
            ..ServerOptions::default()
        },
    )
    .await;
    let mut shown = String::new();
    let mut show = |label: &str, text: String| {
        shown.push_str(label);
        shown.push_str(": ");
        shown.push_str(&text);
        shown.push('\n');
    };

    let by_token = TwilioConfig {
        credentials: Credentials::AuthToken {
            account_sid: account.clone(),
            auth_token: Secret::new(AUTH_TOKEN),
        },
        base_url: twilio.base.clone(),
        intelligence_base_url: twilio.base.clone(),
    };
    let by_key = TwilioConfig {
        credentials: Credentials::ApiKey {
            account_sid: account.clone(),
            api_key: API_KEY.into(),
            api_secret: Secret::new(API_SECRET),
        },
        base_url: twilio.base.clone(),
        intelligence_base_url: twilio.base.clone(),
    };
    show("config", format!("{by_token:?} {by_key:?} {by_token:#?}"));
    show(
        "secret",
        format!("{:?} {}", Secret::new(API_SECRET), Secret::new(API_SECRET)),
    );
    let from_env = TwilioConfig::from_lookup(|name| match name {
        "TWILIO_ACCOUNT_SID" => Some(account.clone()),
        "TWILIO_AUTH_TOKEN" => Some(AUTH_TOKEN.into()),
        "TWILIO_API_SECRET" => Some(API_SECRET.into()),
        _ => None,
    });
    show("partial config from env", format!("{from_env:?}"));
    if let Err(e) = &from_env {
        show("partial config error", e.to_string());
    }

    for config in [by_token, by_key] {
        let client = HttpTwilioClient::new(config)
            .unwrap()
            .with_retry_policy(RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            });
        show("client", format!("{client:?}"));
        // The simulator expects another token: 401.
        let error = client.list_incoming_numbers().await.unwrap_err();
        show("401 error", format!("{error} / {error:?}"));
        let store: Arc<dyn callview_core::Store> =
            Arc::new(callview_sqlite::SqliteStore::open_in_memory().unwrap());
        let engine = SyncEngine::new(Arc::new(client), Arc::clone(&store), PartyRules::default());
        show("engine", format!("{engine:?}"));
        let error = engine.run(SyncMode::incremental(), None).await.unwrap_err();
        show("sync error", format!("{error} / {error:?}"));
        let runner = SyncRunner::new(engine);
        let state = AppState::new(store)
            .with_sync(Arc::clone(&runner))
            .with_api_token(Some(API_TOKEN))
            .with_webhook(WebhookConfig::new(Some(Secret::new(AUTH_TOKEN))));
        show("state", format!("{state:?}"));
        show("webhook", format!("{:?}", state.webhook()));
        show(
            "server config",
            format!("{:?}", ServerConfig::new(state.clone())),
        );
        let error = runner
            .run(SyncMode::incremental(), callview_server::SyncTrigger::Other)
            .await
            .unwrap_err();
        show("runner error", format!("{error} / {error:?}"));
        show("last outcome", format!("{:?}", runner.last_outcome()));
    }

    show(
        "simulator options",
        format!(
            "{:?}",
            ServerOptions {
                credentials: Some((account.clone(), AUTH_TOKEN.into())),
                ..ServerOptions::default()
            }
        ),
    );
    let url = format!("postgres://app:{DB_PASSWORD}@127.0.0.1:1/calls");
    show(
        "pg options",
        format!("{:?}", callview_postgres::PostgresOptions::new(&url)),
    );
    show("redacted", callview_server::db::redact(&url));
    match callview_server::db::open_store(&url).await {
        Ok(_) => panic!("port 1 answered"),
        Err(e) => show(
            "open error",
            format!("{e} / {e:?} / {:?}", std::error::Error::source(&e)),
        ),
    }
    let store = callview_postgres::testing::fresh_store().await;
    show("pg store", format!("{store:?}"));

    assert!(shown.contains("[redacted]"), "{shown}");
    assert_clean("Debug/Display output", &shown);
}
