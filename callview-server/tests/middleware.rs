//! The middleware around the API: request logs carry the method and path
//! only, and answers are gzip-compressed when the client accepts it.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use callview_server::AppState;
use common::*;

/// Collects everything the global subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_logs_show_method_and_path_but_no_query_or_headers() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("tower_http=trace,callview_server=trace")
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let server =
        spawn(AppState::new(store(Backend::Sqlite).await).with_api_token(Some("tok"))).await;
    let response = server
        .http
        .get(server.url("/api/conversations?limit=3&customer=%2B15551234567"))
        .bearer_auth("tok")
        .header("x-private", "hush-hush")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = server
        .http
        .get(server.url("/api/conversations?limit=3"))
        .bearer_auth("wrong-token-value")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("path=/api/conversations"), "{logs}");
    assert!(logs.contains("method=GET"), "{logs}");
    assert!(
        logs.contains("status=200") && logs.contains("status=401"),
        "{logs}"
    );
    for secret in [
        "limit=3",
        "15551234567",
        "hush-hush",
        "wrong-token-value",
        "Bearer",
    ] {
        assert!(
            !logs.contains(secret),
            "{secret} leaked into the logs:\n{logs}"
        );
    }
}

#[tokio::test]
async fn answers_are_gzipped_when_accepted() {
    let (server, _sim) = loaded(Backend::Sqlite).await;
    let response = server
        .http
        .get(server.url("/api/conversations?limit=50"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("content-encoding").unwrap(), "gzip");
    let compressed = response.bytes().await.unwrap();
    assert_eq!(&compressed[..2], &[0x1f, 0x8b], "a gzip stream");

    let plain = server
        .http
        .get(server.url("/api/conversations?limit=50"))
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    assert!(
        compressed.len() < plain.len() / 2,
        "{} vs {}",
        compressed.len(),
        plain.len()
    );
}
