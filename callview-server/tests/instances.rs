//! Two `callview serve` processes on one PostgreSQL database, both syncing
//! every second from one simulated account while live traffic changes it
//! and signed status callbacks arrive at both: the database stays exact
//! (counters equal the rows, every call once, every leg in its root's
//! conversation), and a last sync brings it to exactly the state one clean
//! sync of the account gives.

mod common;
mod reliability;

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use callview_core::call::format_rfc2822;
use callview_core::testkit::{assert_invariants, snapshot};
use callview_core::{PartyRules, SyncEngine, SyncMode};
use callview_server::webhook::{twilio_signature, CALL_STATUS_PATH};
use callview_sim::{ServerOptions, SimConfig, SimulatedTwilio};
use chrono::Utc;

use reliability::{callview, free_port, serve_sim, wait_until_up, Kill};

const TOKEN: &str = "instances-auth-token";
const PUBLIC: &str = "https://calls.example.com";

fn since() -> SyncMode {
    SyncMode::Since(Utc::now() - chrono::Duration::days(40))
}

/// A status callback carrying what the account says of `call` now.
fn callback_form(call: &callview_core::Call, sequence: usize) -> Vec<(String, String)> {
    let mut form = vec![
        ("CallSid", call.sid.to_string()),
        ("AccountSid", call.account_sid.clone().unwrap_or_default()),
        ("From", call.from.clone().unwrap_or_default()),
        ("To", call.to.clone().unwrap_or_default()),
        ("Direction", call.direction.as_str().to_owned()),
        ("CallStatus", call.status.as_str().to_owned()),
        ("SequenceNumber", sequence.to_string()),
        ("CallbackSource", "call-progress-events".to_owned()),
    ];
    if let Some(duration) = call.duration {
        form.push(("CallDuration", duration.to_string()));
    }
    if let Some(parent) = &call.parent_call_sid {
        form.push(("ParentCallSid", parent.to_string()));
    }
    if let Some(updated) = call.date_updated {
        form.push(("Timestamp", format_rfc2822(&updated)));
    }
    form.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_database_stay_exact() {
    let sim = SimulatedTwilio::new(SimConfig::new(31, 600));
    let twilio = serve_sim(sim.clone(), ServerOptions::default()).await;
    let url = callview_postgres::testing::fresh_database_url().await;
    let dir = tempfile::tempdir().unwrap();

    let mut servers = Vec::new();
    for _ in 0..2 {
        let port = free_port();
        let child = callview(dir.path())
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--sync-interval",
                "1",
            ])
            .env("DATABASE_URL", &url)
            .env("TWILIO_ACCOUNT_SID", sim.account_sid())
            .env("TWILIO_AUTH_TOKEN", TOKEN)
            .env("TWILIO_API_BASE_URL", &twilio.base)
            .env("CALLVIEW_PUBLIC_URL", PUBLIC)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        servers.push((Kill(child), format!("http://127.0.0.1:{port}")));
    }
    for (_, base) in &servers {
        wait_until_up(&format!("{base}/healthz"), Duration::from_secs(60)).await;
    }

    // Live traffic changes the account while both servers sync it, and
    // status callbacks of the calls it changes arrive at both servers.
    let live = sim.spawn_live_traffic(Duration::from_millis(100));
    let http = reqwest::Client::new();
    let signed_url = format!("{PUBLIC}{CALL_STATUS_PATH}");
    let mut applied = 0;
    for sequence in 0..80usize {
        let calls = sim.calls();
        let call = &calls[(sequence * 7) % calls.len()];
        let form = callback_form(call, sequence);
        let (_, base) = &servers[sequence % 2];
        let response = http
            .post(format!("{base}{CALL_STATUS_PATH}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "X-Twilio-Signature",
                twilio_signature(TOKEN, &signed_url, &form),
            )
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&form)
                    .finish(),
            )
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 200, "callback {sequence}: {body}");
        applied += usize::from(body["status"] == "applied");
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    live.abort();
    assert!(applied > 0, "some callbacks changed stored calls");
    // Both servers sync a few more times, then stop.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (mut child, base) in servers {
        let health: serde_json::Value = http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["store"], "ok", "{health}");
        #[cfg(unix)]
        {
            let pid = child.0.id().to_string();
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while child.0.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Exact while two processes wrote it.
    let store = callview_server::db::open_store(&url).await.unwrap();
    assert_invariants(store.as_ref()).await;
    let stored = snapshot(store.as_ref()).await.unwrap();
    let known: HashSet<String> = sim.calls().iter().map(|c| c.sid.to_string()).collect();
    for conversation in stored.conversations.values() {
        for message in &conversation.messages {
            for sid in std::iter::once(&message.root.sid).chain(message.legs.iter().map(|l| &l.sid))
            {
                assert!(known.contains(sid.as_str()), "{sid} is not the account's");
            }
        }
    }

    // One more sync gives exactly the state of one clean sync.
    let sync = |store: Arc<dyn callview_core::Store>| {
        let sim = sim.clone();
        async move {
            SyncEngine::new(Arc::new(sim), Arc::clone(&store), PartyRules::default())
                .run(since(), None)
                .await
                .unwrap();
            snapshot(store.as_ref()).await.unwrap()
        }
    };
    let actual = sync(Arc::clone(&store)).await;
    let expected = sync(common::store(common::Backend::Postgres).await).await;
    assert_eq!(
        actual, expected,
        "two servers, syncs and callbacks left another state than one clean sync"
    );
}
