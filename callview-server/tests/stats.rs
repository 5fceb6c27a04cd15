//! `GET /api/stats` over HTTP on both stores: its figures agree with the
//! conversations' counters and with each other, the server's default time
//! zone applies, and bad parameters are 400s naming the parameter.

mod common;

use callview_server::AppState;
use common::*;
use serde_json::Value;

on_both_stores!(
    stats_agree_with_the_conversation_counters,
    the_default_zone_and_period_come_from_the_server,
    bad_stats_parameters_are_400_naming_the_parameter,
);

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("a count, got {v}"))
}

/// The sum of `metadata.total_calls` over every conversation.
async fn total_calls(server: &TestServer) -> u64 {
    let mut total = 0;
    let mut cursor = String::new();
    loop {
        let (status, page) = server
            .get(&format!("/api/conversations?limit=200&cursor={cursor}"))
            .await;
        assert_eq!(status, 200, "{page}");
        for c in page["conversations"].as_array().unwrap() {
            total += n(&c["metadata"]["total_calls"]);
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return total,
        }
    }
}

async fn stats_agree_with_the_conversation_counters(backend: Backend) {
    let (server, _sim) = loaded(backend).await;
    let tomorrow = chrono::Utc::now().date_naive() + chrono::Days::new(1);
    let (status, stats) = server
        .get(&format!(
            "/api/stats?since=2000-01-01&until={tomorrow}&bucket=month&tz=America/Chicago"
        ))
        .await;
    assert_eq!(status, 200, "{stats}");
    let totals = &stats["totals"];
    let interactions = n(&totals["interactions"]);
    assert!(interactions > 100, "{totals}");
    assert_eq!(interactions, total_calls(&server).await);

    let directions: u64 = ["inbound", "outbound", "internal"]
        .iter()
        .map(|d| n(&totals["by_direction"][d]["interactions"]))
        .sum();
    assert_eq!(directions, interactions);
    assert!(n(&totals["answered"]) + n(&totals["missed"]) + n(&totals["live"]) <= interactions);

    // The series adds up to the totals; every month is there.
    let series = stats["series"].as_array().unwrap();
    assert!(series.len() > 12 * 26, "{} months", series.len());
    for key in ["interactions", "answered", "missed", "live"] {
        let sum: u64 = series.iter().map(|p| n(&p[key])).sum();
        assert_eq!(sum, n(&totals[key]), "{key}");
    }
    let waits: u64 = stats["wait_distribution"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| n(&b["count"]))
        .sum();
    assert_eq!(waits, n(&totals["answered"]) + n(&totals["missed"]));
    let inbound: u64 = stats["by_hour_of_week"]["inbound"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|day| day.as_array().unwrap().iter().map(n))
        .sum();
    assert_eq!(
        inbound,
        n(&totals["by_direction"]["inbound"]["interactions"])
    );

    let lines = stats["by_owned_number"].as_array().unwrap();
    let on_lines: u64 = lines.iter().map(|l| n(&l["interactions"])).sum();
    assert!(on_lines <= interactions && on_lines > 0);
    assert!(lines.iter().all(|l| l["display"].is_string()), "{lines:?}");
    let cost = &totals["cost"][0];
    assert_eq!(cost["currency"], "USD");
    assert!(cost["amount"].as_str().unwrap().parse::<f64>().unwrap() > 0.0);

    // The busiest conversation's count is what its messages say.
    let top = &stats["top_contacts"]["by_calls"][0];
    let id = top["conversation_id"].as_i64().unwrap();
    let (_, conversation) = server.get(&format!("/api/conversations/{id}")).await;
    assert_eq!(conversation["external_id"], top["external_id"]);
    assert_eq!(
        n(&top["calls"]),
        n(&conversation["metadata"]["total_calls"])
    );
}

async fn the_default_zone_and_period_come_from_the_server(backend: Backend) {
    let state = AppState::new(store(backend).await).with_timezone("Europe/Paris".parse().unwrap());
    let server = spawn(state).await;
    let (status, stats) = server.get("/api/stats").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["tz"], "Europe/Paris");
    assert_eq!(stats["bucket"], "day");
    let series = stats["series"].as_array().unwrap();
    assert_eq!(series.len(), 30, "the last 30 days, today included");
    let since = stats["since"].as_str().unwrap();
    assert!(
        since.ends_with("T00:00:00+01:00") || since.ends_with("T00:00:00+02:00"),
        "{since}"
    );
    assert_eq!(stats["totals"]["interactions"], 0);
    assert_eq!(stats["totals"]["wait"]["p90"], Value::Null);

    let (_, utc) = server.get("/api/stats?tz=UTC&bucket=week").await;
    assert_eq!(utc["tz"], "UTC");
    assert!(utc["since"].as_str().unwrap().ends_with("T00:00:00+00:00"));
}

async fn bad_stats_parameters_are_400_naming_the_parameter(backend: Backend) {
    let server = spawn(AppState::new(store(backend).await)).await;
    for (query, parameter) in [
        ("tz=Mars/Olympus", "`tz`"),
        ("bucket=year", "`bucket`"),
        ("since=yesterday", "`since`"),
        ("since=2026-01-01T00:07:00Z", "`since`"),
        ("since=2026-02-01&until=2026-01-01", "`until`"),
        ("since=2020-01-01&until=2026-01-01&bucket=hour", "`bucket`"),
        ("tz=UTC&tz=UTC", "`tz`"),
    ] {
        let (status, body) = server.get(&format!("/api/stats?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{query}");
        assert_error(&body);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(parameter), "{query}: {message}");
    }
}
