//! The smoke version of every benchmark scenario (about 2,000 calls, one
//! repetition, short measurements), so the benchmark code cannot rot.
//!
//! These tests check that the figures are sane (every call generated is
//! stored, yardsticks and ratios are positive, concurrent and sequential
//! syncs end in the same state), never how fast anything is.
//!
//! `audio_smoke` (300 calls, 5 recordings) needs SQLite only.
//!
//! The others need PostgreSQL like the rest of the suite
//! (`postgres://postgres@127.0.0.1:5432`, or `CALLVIEW_BENCH_PG_URL` /
//! `CALLVIEW_TEST_PG_URL`).

use callview_bench::scenarios::{api, audio, backfill, incremental, ingest, memory, stats};
use callview_bench::{Options, Report, StoreKind, Verdict};

fn sane_report(report: &Report) {
    let text = report.render();
    assert!(text.contains(&report.scenario), "{text}");
    assert!(!report.tables.is_empty());
    assert!(!report.targets.is_empty());
    let json = serde_json::to_string(report).unwrap();
    assert!(json.contains("\"targets\""));
    assert!(!report.markdown().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_smoke() {
    let options = Options::smoke();
    let result = ingest::run(&options).await.unwrap();
    assert_eq!(result.stores.len(), 2);
    let expected = result.calls_generated as u64;
    assert!(expected > 0);
    for s in &result.stores {
        assert_eq!(s.sync.report.inserted, expected, "{}", s.store);
        assert_eq!(s.counts.calls, expected, "{}", s.store);
        assert!(s.sync.report.skipped.is_empty());
        assert!(s.sync.calls_per_sec > 0.0);
        assert!(s.sync.peak_rss_mib >= s.sync.rss_before_mib);
        assert!(s.sync.peak_rss_mib > 0.0);
        let yardstick = s.yardstick.as_ref().expect("the yardstick ran");
        assert_eq!(yardstick.calls, s.counts.calls);
        assert_eq!(yardstick.conversations, s.counts.conversations);
        assert!(yardstick.contacts > 0);
        assert!(yardstick.call_bytes > 0);
        assert!(yardstick.calls_per_sec > 0.0);
        assert!(s.ratio.unwrap() > 0.0);
        assert!(s.db_bytes > 0);
        assert!(s.stored_bytes > 0 && s.bytes_per_call > 0.0, "{}", s.store);
        assert!(s.sync.timings.contains_key("store.apply"));
    }
    sane_report(&result.report(&options));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_smoke() {
    let options = Options::smoke();
    let result = memory::run(&options).await.unwrap();
    assert_eq!(result.sizes.len(), 2);
    assert!(result.sizes[0] < result.sizes[1]);
    // Both sizes with the default readers, the smaller one also with one.
    assert_eq!(result.runs.len(), 3);
    assert_eq!(result.main_runs(StoreKind::Sqlite).count(), 2);
    assert!(result.runs.iter().any(|r| r.concurrency == 1));
    for r in &result.runs {
        assert_eq!(r.store, StoreKind::Sqlite);
        assert_eq!(r.stored as usize, r.listable);
        assert!(r.peak_rss_mib >= r.rss_before_mib && r.peak_rss_mib > 0.0);
    }
    assert!(result.growth(StoreKind::Sqlite).unwrap() > 0.0);
    sane_report(&result.report(&options));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_smoke() {
    let options = Options {
        stores: Some(vec![StoreKind::Sqlite, StoreKind::Postgres]),
        ..Options::smoke()
    };
    let result = backfill::run(&options).await.unwrap();
    assert_eq!(result.stores.len(), 2);
    for s in &result.stores {
        assert_eq!(s.runs.len(), 2);
        assert_eq!(s.runs[0].concurrency, options.concurrency);
        assert_eq!(s.runs[1].concurrency, 1);
        assert!(s.identical, "{}: {:?}", s.store, s.runs);
        assert!(s.first_identical, "{}: {:?}", s.store, s.first);
        assert_eq!(s.first.concurrency, options.concurrency);
        assert_eq!(s.first.latency_ms, 0);
        assert_eq!(s.first.digest, s.runs[0].digest);
        assert_eq!(s.snapshots_equal, Some(true), "{}", s.store);
        let stored = s.runs[0].sync.report.inserted;
        assert!(stored > 0);
        assert_eq!(s.runs[1].sync.report.inserted, stored);
        assert_eq!(s.runs[0].digest.calls, stored);
        // The concurrent run read more slices than the sequential one.
        assert!(s.runs[0].sync.report.pages > s.runs[1].sync.report.pages);
    }
    let report = result.report(&options);
    assert!(report
        .targets
        .iter()
        .filter(|t| t.name.contains("state"))
        .all(|t| t.verdict == Verdict::Met));
    sane_report(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_smoke() {
    let options = Options::smoke();
    let result = api::run(&options).await.unwrap();
    assert_eq!(result.stores.len(), 2);
    for s in &result.stores {
        assert_eq!(s.loaded.calls as usize, result.shape.calls, "{}", s.store);
        assert_eq!(
            s.loaded.conversations as usize, result.shape.conversations,
            "{}",
            s.store
        );
        assert!(s.named_contacts > 0, "{}", s.store);
        for name in [
            api::LIST_FIRST,
            api::LIST_DEEP,
            api::LIST_CURSOR,
            api::LIST_SEARCH,
            api::LIST_SEARCH_NAME,
            api::MESSAGES,
        ] {
            let e = s.endpoints.iter().find(|e| e.name == name).unwrap();
            assert_eq!(e.stats.len(), api::CLIENTS.len(), "{name}");
            for st in &e.stats {
                assert!(st.requests > 0, "{name}");
                assert_eq!(st.errors, 0, "{name}");
                assert!(st.p50_ms > 0.0 && st.p50_ms <= st.p99_ms, "{name}");
                assert!(st.rps > 0.0 && st.body_bytes > 0, "{name}");
            }
        }
        // Endpoints the API does not have are reported, not measured.
        for e in &s.endpoints {
            assert!(e.stats.is_empty() == e.missing.is_some(), "{}", e.name);
        }
    }
    sane_report(&result.report(&options));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_smoke() {
    let options = Options::smoke();
    let result = incremental::run(&options).await.unwrap();
    assert_eq!(result.stores.len(), 2);
    for s in &result.stores {
        assert!(s.calls_before > 0);
        assert_eq!(s.runs.len(), 1);
        let runs = s.runs.iter().chain(s.capped_page.iter());
        for r in runs {
            assert_eq!(
                r.sync.report.inserted,
                incremental::NEW_CALLS as u64,
                "{}",
                s.store
            );
            assert!(r.sync.wall_secs > 0.0);
        }
        assert!(s.median_ms() > 0.0);
    }
    sane_report(&result.report(&options));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_smoke() {
    let options = Options::smoke();
    let result = audio::run(&options).await.unwrap();
    assert_eq!(result.stores.len(), 1);
    assert_eq!(result.storage_with_authorization, 0);
    let s = &result.stores[0];
    assert_eq!(s.store, StoreKind::Sqlite);
    assert!(s.calls > 0 && s.recordings > 0, "{s:?}");
    assert_eq!(s.sample, result.sample_target, "{s:?}");
    assert!(s.min_bytes > 0 && s.min_bytes <= s.max_bytes);
    let n = s.sample as u64;
    for (name, status) in [
        (audio::FULL_UNCACHED, 200),
        (audio::END_UNCACHED, 206),
        (audio::MIDDLE_UNCACHED, 206),
        (audio::FIRST_PLAY, 200),
        (audio::SECOND_PLAY, 200),
        (audio::MIDDLE_CACHED, 206),
    ] {
        let c = s.case(name).unwrap_or_else(|| panic!("{name} measured"));
        assert_eq!(c.status, status, "{name}");
        assert_eq!(c.requests, s.sample, "{name}");
        assert!(c.bytes_p50 > 0 && c.bytes_total > 0, "{name}");
        assert!(
            c.ttfb_p50_ms > 0.0 && c.ttfb_p50_ms <= c.ttfb_p99_ms,
            "{name}"
        );
        assert!(c.ttfb_p50_ms <= c.total_p99_ms, "{name}");
        assert!(c.total_p50_ms <= c.total_p99_ms, "{name}");
    }
    // Whole files: every byte of every recording, without and with the cache.
    let full = s.case(audio::FULL_UNCACHED).unwrap();
    assert!(full.bytes_total >= n * s.min_bytes);
    for name in [audio::FIRST_PLAY, audio::SECOND_PLAY] {
        assert_eq!(
            s.case(name).unwrap().bytes_total,
            full.bytes_total,
            "{name}"
        );
    }
    assert_eq!(
        s.case(audio::END_UNCACHED).unwrap().bytes_total,
        n * audio::END_RANGE_BYTES
    );
    let middle = s.case(audio::MIDDLE_UNCACHED).unwrap();
    assert!(middle.bytes_p50 <= audio::MIDDLE_RANGE_BYTES);
    assert_eq!(
        s.case(audio::MIDDLE_CACHED).unwrap().bytes_total,
        middle.bytes_total
    );
    // One download per recording, then hits: the second play and the range.
    assert_eq!(s.cache.misses, n);
    assert_eq!(s.cache.hits, 2 * n);
    assert!(s.cache.hits > 0);
    assert_eq!(s.cache.entries as u64, n);
    assert_eq!(s.cache.bytes, full.bytes_total);
    assert_eq!(s.cache.evictions, 0);
    sane_report(&result.report(&options));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_smoke() {
    let options = Options::smoke();
    let result = stats::run(&options).await.unwrap();
    assert_eq!(result.stores.len(), 2);
    let (a, b) = (&result.stores[0], &result.stores[1]);
    for s in &result.stores {
        assert_eq!(s.calls, 2_000, "{}", s.store);
        // A year holds every generated interaction; 7 days a few of them.
        let year = &s.requests[0];
        assert!(year.interactions > 500, "{}: {year:?}", s.store);
        assert!(year.buckets >= 365, "{}", s.store);
        // The last 7 days hold some calls, not all.
        let week = &s.requests[4];
        assert!(
            week.interactions > 0 && week.interactions < year.interactions,
            "{week:?}"
        );
        assert!(s.requests.iter().all(|r| r.p50_ms > 0.0 && r.bytes > 0));
    }
    for (x, y) in a.requests.iter().zip(&b.requests) {
        // (The JSON may differ in length: row ids of the busiest
        // conversations are the databases' own.)
        assert_eq!(
            (x.interactions, x.buckets),
            (y.interactions, y.buckets),
            "both stores answer {} alike",
            x.request
        );
    }
    let report = result.report(&options);
    sane_report(&report);
    assert!(report
        .targets
        .iter()
        .all(|t| t.verdict == Verdict::NotApplicable));
}
