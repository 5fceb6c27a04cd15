//! Response shapes of every endpoint against the TypeScript models, on
//! SQLite and on PostgreSQL, with data synced from a simulated account.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::Value;

on_both_stores!(
    conversations_list_matches_the_models,
    conversations_page_through_without_gaps,
    conversations_page_by_cursor_like_by_offset,
    one_conversation_matches_its_list_entry,
    messages_fold_legs_into_root_calls,
    active_calls_are_unfinished_calls_with_conversation,
    sync_endpoints_report_like_the_seed,
    healthz_reports_store_and_last_sync,
);

async fn conversations_list_matches_the_models(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    let counts = server.store.counts().await.unwrap();
    let (status, body) = server.get("/api/conversations").await;
    assert_eq!(status, 200, "{body}");
    // The seed's `conversations` and `total`, and the additive `next_cursor`.
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    assert_eq!(int(&body, "total") as u64, counts.conversations);
    assert_eq!(
        body["next_cursor"].is_string(),
        counts.conversations > 20,
        "{body}"
    );
    let list = body["conversations"].as_array().unwrap();
    assert_eq!(list.len(), 20.min(counts.conversations as usize));
    let mut previous = i64::MAX;
    for c in list {
        assert_conversation(c);
        let at = int(c, "last_message_at");
        assert!(at <= previous, "newest activity first");
        previous = at;
    }
}

async fn conversations_page_through_without_gaps(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    let (_, first) = server.get("/api/conversations?limit=200").await;
    let total = int(&first, "total") as usize;
    let mut seen = Vec::new();
    let mut offset = 0;
    while offset < total {
        let (status, page) = server
            .get(&format!("/api/conversations?limit=7&offset={offset}"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(int(&page, "total") as usize, total);
        for c in page["conversations"].as_array().unwrap() {
            seen.push(string(c, "id").to_owned());
        }
        offset += 7;
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(seen.len(), total);
    assert_eq!(unique.len(), total);
    let (_, past_end) = server
        .get(&format!("/api/conversations?offset={}", total + 5))
        .await;
    assert_eq!(past_end["conversations"].as_array().unwrap().len(), 0);
    assert_eq!(int(&past_end, "total") as usize, total);
}

/// The ids of every page of `query`, following `next_cursor` (passed back
/// percent-encoded as a client would), checking each page's shape.
async fn walk_by_cursor(server: &TestServer, query: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut total = None;
    loop {
        let path = match &cursor {
            None => format!("/api/conversations?{query}"),
            Some(c) => format!(
                "/api/conversations?{query}&cursor={}",
                url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()
            ),
        };
        let (status, page) = server.get(&path).await;
        assert_eq!(status, 200, "{path}: {page}");
        let page_total = int(&page, "total");
        assert_eq!(*total.get_or_insert(page_total), page_total, "{path}");
        let list = page["conversations"].as_array().unwrap();
        seen.extend(list.iter().map(|c| string(c, "id").to_owned()));
        match &page["next_cursor"] {
            Value::Null => break,
            Value::String(next) => {
                assert!(!list.is_empty(), "{path}");
                assert!(
                    next.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "{next}"
                );
                cursor = Some(next.clone());
            }
            other => panic!("{path}: next_cursor is {other}"),
        }
        assert!(seen.len() <= 10_000, "{path}: the walk does not end");
    }
    assert_eq!(seen.len() as i64, total.unwrap_or(0), "{query}");
    seen
}

/// The ids of every page of `query` by `offset`.
async fn walk_by_offset(server: &TestServer, query: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let path = format!("/api/conversations?{query}&offset={}", seen.len());
        let (status, page) = server.get(&path).await;
        assert_eq!(status, 200, "{path}: {page}");
        let list = page["conversations"].as_array().unwrap();
        if list.is_empty() {
            return seen;
        }
        seen.extend(list.iter().map(|c| string(c, "id").to_owned()));
    }
}

async fn conversations_page_by_cursor_like_by_offset(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    for query in [
        "limit=7",
        "limit=1",
        "limit=200",
        "limit=5&direction=inbound",
        "limit=3&status=missed",
        "limit=4&q=617",
    ] {
        let by_cursor = walk_by_cursor(&server, query).await;
        let by_offset = walk_by_offset(&server, query).await;
        assert!(!by_offset.is_empty(), "{query}");
        assert_eq!(by_cursor, by_offset, "{query}");
        let unique: HashSet<_> = by_cursor.iter().collect();
        assert_eq!(unique.len(), by_cursor.len(), "{query}");
    }
    // An offset page's next_cursor continues right after it.
    let (_, offset_page) = server.get("/api/conversations?limit=5&offset=10").await;
    let next = string(&offset_page, "next_cursor").to_owned();
    let (status, after) = server
        .get(&format!("/api/conversations?limit=5&cursor={next}"))
        .await;
    assert_eq!(status, 200, "{after}");
    let (_, expected) = server.get("/api/conversations?limit=5&offset=15").await;
    assert_eq!(after["conversations"], expected["conversations"]);
    assert_eq!(after["total"], expected["total"]);
}

async fn one_conversation_matches_its_list_entry(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    let (_, list) = server.get("/api/conversations?limit=5").await;
    for entry in list["conversations"].as_array().unwrap() {
        let id = string(entry, "id");
        let (status, one) = server.get(&format!("/api/conversations/{id}")).await;
        assert_eq!(status, 200, "{one}");
        assert_conversation(&one);
        assert_eq!(&one, entry);
    }
}

async fn messages_fold_legs_into_root_calls(backend: Backend) {
    let (server, sim) = loaded(backend).await;
    // Calls never dialled come last, whatever their creation time.
    let undated: HashSet<String> = sim
        .calls()
        .iter()
        .filter(|c| c.start_time.is_none())
        .map(|c| c.sid.to_string())
        .collect();
    let (_, list) = server.get("/api/conversations?limit=200").await;
    let mut folded = 0;
    let mut texts = 0u64;
    let mut checked_rows = 0u64;
    for c in list["conversations"].as_array().unwrap() {
        let cid = string(c, "id");
        let (status, body) = server
            .get(&format!("/api/conversations/{cid}/messages?limit=500"))
            .await;
        assert_eq!(status, 200, "{body}");
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(int(&body, "total") as usize, messages.len());
        assert!(body["next_cursor"].is_null(), "one page holds them all");
        assert_eq!(
            messages.len() as i64,
            int(&c["metadata"], "total_calls") + int(&c["metadata"], "total_messages"),
            "one message per root call and per text"
        );
        assert_eq!(
            &messages[0], &c["last_message"],
            "last_message is the newest message"
        );
        let mut previous: Option<i64> = None;
        let mut seen_undated = false;
        let mut all_sids = HashSet::new();
        let mut duration = 0;
        for m in messages {
            let legs = assert_message(m, cid);
            folded += usize::from(!legs.is_empty());
            if undated.contains(string(m, "external_id")) {
                seen_undated = true;
            } else {
                assert!(!seen_undated, "calls never dialled come last");
                let at = int(m, "created_at");
                if let Some(p) = previous {
                    assert!(at <= p, "newest first");
                }
                previous = Some(at);
            }
            if string(m, "type") != "call" {
                texts += 1;
                continue;
            }
            duration += int(&m["metadata"], "total_duration");
            assert!(all_sids.insert(string(m, "external_id").to_owned()));
            for leg in legs {
                assert!(all_sids.insert(leg), "a call shown twice");
            }
        }
        assert_eq!(duration, int(&c["metadata"], "total_duration"));
        checked_rows += all_sids.len() as u64;
        // Pagination of messages: pages of two by cursor give the same list.
        if messages.len() > 2 {
            let mut walked: Vec<Value> = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(c) => format!("/api/conversations/{cid}/messages?limit=2&cursor={c}"),
                    None => format!("/api/conversations/{cid}/messages?limit=2"),
                };
                let (status, page) = server.get(&path).await;
                assert_eq!(status, 200, "{page}");
                assert_eq!(int(&page, "total") as usize, messages.len());
                walked.extend(page["messages"].as_array().unwrap().iter().cloned());
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            assert_eq!(&walked, messages, "pages by cursor");
            let (status, refused) = server
                .get(&format!("/api/conversations/{cid}/messages?offset=1"))
                .await;
            assert_eq!(status, 400, "{refused}");
            assert!(refused.to_string().contains("cursor"), "{refused}");
        }
    }
    assert!(folded > 0, "the simulated account has forwarded calls");
    assert!(texts > 0, "the simulated account has texts");
    let counts = server.store.counts().await.unwrap();
    let total = int(&list, "total");
    if total <= 200 {
        assert_eq!(
            checked_rows, counts.calls,
            "every stored call is shown exactly once"
        );
        assert_eq!(texts, counts.texts, "every stored text is shown once");
    }
}

async fn active_calls_are_unfinished_calls_with_conversation(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    let (status, body) = server.get("/api/calls/active").await;
    assert_eq!(status, 200, "{body}");
    let calls = body["calls"].as_array().unwrap();
    assert_eq!(int(&body, "total") as usize, calls.len());
    assert!(!calls.is_empty(), "the simulated account has live calls");
    for call in calls {
        assert_call(call);
        assert!(!["completed", "busy", "failed", "no-answer", "canceled"]
            .contains(&string(call, "status")));
        let cid = id(call, "conversation_id");
        assert!(string(call, "root_call_sid").starts_with("CA"));
        let (status, _) = server.get(&format!("/api/conversations/{cid}")).await;
        assert_eq!(status, 200);
    }
    let (_, one) = server.get("/api/calls/active?limit=1").await;
    assert_eq!(one["calls"].as_array().unwrap().len(), 1);
}

async fn sync_endpoints_report_like_the_seed(backend: Backend) {
    let (server, sim) = loaded(backend).await;
    sim.generate_live(3);
    let mut synced_first = None;
    for (path, window) in [
        ("/api/sync/today", "last 3 days"),
        ("/api/sync/recent", "last hour"),
    ] {
        let (status, body) = server.post(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["success"], true);
        let synced = int(&body, "synced");
        assert_eq!(
            string(&body, "message"),
            format!("Synced {synced} new calls from {window}")
        );
        int(&body, "skipped");
        let report = &body["report"];
        assert_eq!(int(&body, "total"), int(report, "fetched"));
        assert_eq!(synced, int(report, "inserted"));
        for key in [
            "updated",
            "unchanged",
            "moved",
            "pages",
            "elapsed_ms",
            "outside_window",
            "refreshed",
        ] {
            int(report, key);
        }
        assert!(report["skipped"].is_array());
        assert!(report["more_available"].is_boolean());
        synced_first.get_or_insert(synced);
    }
    assert!(
        synced_first.unwrap() >= 3,
        "the first POST stores the new interactions"
    );
    let (_, health) = server.get("/healthz").await;
    assert_eq!(health["last_sync"]["trigger"], "recent");
    assert_eq!(health["last_sync"]["ok"], true);
}

async fn healthz_reports_store_and_last_sync(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    let (status, body) = server.get("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["store"], "ok");
    assert_eq!(body["sync_running"], false);
    assert!(
        body["last_sync"].is_null(),
        "no sync through the runner yet: {body}"
    );
    let (status, _) = server.post("/api/sync/recent").await;
    assert_eq!(status, 200);
    let (_, body) = server.get("/healthz").await;
    let last = &body["last_sync"];
    millis(last, "at");
    millis(last, "finished_at");
    millis(last, "last_success_at");
    assert_eq!(last["ok"], true);
    assert!(last.get("error").is_none());
}
