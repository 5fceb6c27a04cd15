//! `GET /api/events`: the server-sent event stream that tells the viewer
//! when stored calls changed.

mod common;

use std::time::Duration;

use callview_server::{serve_with_shutdown, AppState, ServerConfig, ServerEvent};
use common::*;
use serde_json::Value;

/// Reads server-sent events from a streaming response.
struct EventReader {
    response: reqwest::Response,
    buffer: String,
}

impl EventReader {
    fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event as (name, data); `None` when the stream ended.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                // Comments (keep-alives) and `retry:` alone are no events.
                if let Some(name) = name {
                    return Some((name, serde_json::from_str(&data).unwrap()));
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("an event within 20 s")
                .expect("the stream reads");
            match chunk {
                Some(bytes) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                None => return None,
            }
        }
    }

    /// Skips events until one named `name`.
    async fn until(&mut self, name: &str) -> Value {
        loop {
            let (event, data) = self.next().await.expect("the stream stays open");
            assert_eq!(data["type"], event.as_str(), "{data}");
            assert!(data["at"].is_i64(), "{data}");
            if event == name {
                return data;
            }
        }
    }
}

async fn open(server: &TestServer, query: &str) -> reqwest::Response {
    server
        .http
        .get(server.url(&format!("/api/events{query}")))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_says_hello_then_announces_each_sync() {
    let (server, sim) = loaded(Backend::Sqlite).await;
    let response = server
        .http
        .get(server.url("/api/events"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert!(
        headers.get("content-encoding").is_none(),
        "an event stream is never compressed: {headers:?}"
    );
    let mut events = EventReader::new(response);
    events.until("hello").await;

    // A sync that stores something: started, progress, finished with counts.
    sim.generate_live(3);
    let (status, body) = server.post("/api/sync/recent").await;
    assert_eq!(status, 200, "{body}");
    let started = events.until("sync_started").await;
    assert_eq!(started["trigger"], "recent");
    let progress = events.until("sync_progress").await;
    assert!(progress["pages"].as_u64().unwrap() >= 1, "{progress}");
    let done = events.until("sync").await;
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(done["trigger"], "recent");
    assert_eq!(done["inserted"], body["synced"], "{done} {body}");
    assert!(done["inserted"].as_u64().unwrap() > 0, "{done}");

    // A sync that finds nothing new is announced too (inserted 0).
    let (status, _) = server.post("/api/sync/recent").await;
    assert_eq!(status, 200);
    let again = events.until("sync").await;
    assert_eq!(again["inserted"], 0, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_published_on_the_state_reach_every_stream() {
    let state = AppState::new(store(Backend::Sqlite).await);
    let hub = state.events().clone();
    let server = spawn(state).await;
    let mut a = EventReader::new(open(&server, "").await);
    let mut b = EventReader::new(open(&server, "").await);
    a.until("hello").await;
    b.until("hello").await;
    hub.publish(ServerEvent::changed(2, 1));
    for reader in [&mut a, &mut b] {
        let changed = reader.until("changed").await;
        assert_eq!(
            (changed["inserted"].as_u64(), changed["updated"].as_u64()),
            (Some(2), Some(1))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_may_come_in_the_query_of_the_event_stream_only() {
    let server =
        spawn(AppState::new(store(Backend::Sqlite).await).with_api_token(Some("tok en"))).await;
    for query in ["", "?token=", "?token=wrong", "?token=tok%20e"] {
        let (status, body) = into_json(open(&server, query).await).await;
        assert_eq!(status, 401, "{query}");
        assert_eq!(assert_error(&body), "unauthorized");
    }
    let response = open(&server, "?token=tok%20en").await;
    assert_eq!(response.status(), 200);
    EventReader::new(response).until("hello").await;
    let response = server
        .http
        .get(server.url("/api/events"))
        .bearer_auth("tok en")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    // Other routes do not take it.
    let (status, _) = server.get("/api/conversations?token=tok%20en").await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_ends_open_streams_instead_of_waiting_for_them() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(store(Backend::Sqlite).await);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(serve_with_shutdown(
        listener,
        ServerConfig::new(state),
        async move {
            let _ = stopped.await;
        },
    ));
    let response = reqwest::get(format!("{base}/api/events")).await.unwrap();
    let mut events = EventReader::new(response);
    events.until("hello").await;
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("the server stops although a stream was open");
    result.unwrap().unwrap();
    assert!(events.next().await.is_none(), "the stream ended");
}
