//! Conformance tests of exports ([`Store::export_calls`]): every call with
//! its legs, the figures of each interaction, the list's filters applied
//! to each call's conversation, `since`/`until` on start times, names,
//! notes and tags, complete pages (also while calls are written between
//! them), and a property: a store's JSON Lines export imported into a
//! fresh store gives the same state.
//!
//! [`conformance_tests!`](crate::conformance_tests) runs them on every
//! store (through [`__export_conformance_tests!`](crate::__export_conformance_tests)).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::json;

use crate::call::Call;
use crate::endpoint::{ActualDirection, Normalizer};
use crate::export::{
    export_to, pages, ExportFormat, ExportQuery, ExportRow, ExportWriter, CSV_COLUMNS,
};
use crate::import::import_calls;
use crate::store::{ConversationQuery, Search, StatusFilter, Store};

use super::builder::*;
use super::check::{all_messages, snapshot, walk_by_cursor};
use super::harness::Harness;
use super::props::{build_calls, call_trees, count_calls, run_property};

/// Expands into one `#[tokio::test]` per export conformance test, on fresh
/// stores from `$fresh` (an `async fn() -> Arc<dyn Store>`); part of
/// [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! __export_conformance_tests {
    ($fresh:ident) => {
        $crate::__export_store_tests!(
            $fresh;
            export_lists_every_call_with_its_legs,
            export_filters_like_the_list,
            export_since_until_bound_start_times,
            export_carries_names_notes_and_tags,
            export_pages_are_complete,
            export_pages_survive_writes_between_them,
        );

        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn prop_export_then_import_restores_the_state() {
            $crate::testkit::export::prop_export_then_import_restores_the_state($fresh).await;
        }
    };
}

/// Implementation detail of [`__export_conformance_tests!`](crate::__export_conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! __export_store_tests {
    ($fresh:ident; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $name() {
                $crate::testkit::export::$name($fresh().await).await;
            }
        )*
    };
}

fn call(sid: &str, from: &str, to: &str, direction: &str, status: &str) -> CallBuilder {
    CallBuilder::new(sid)
        .from(from)
        .to(to)
        .direction(direction)
        .status(status)
}

/// The calls every test starts from:
///
/// * 1: `CUSTOMER` calls in (100 s), forwarded to the agent's SIP phone
///   (2: 60 s, which transfers to `client:alice`, 4: 20 s) and to the
///   agent's mobile (3: no answer);
/// * 5: `CUSTOMER2` calls in, nobody answers;
/// * 6: the company calls `UK_CUSTOMER` (30 s);
/// * 7: a leg whose parent (99) is not stored, to `CUSTOMER2` (15 s),
///   before call 5 (which stays the conversation's newest);
/// * 8: a call from `CUSTOMER` that was never dialled (no start time).
fn fixture() -> Vec<Call> {
    vec![
        call(&sid(1), CUSTOMER, COMPANY, "inbound", "completed")
            .start(at(0))
            .end(at_secs(100))
            .duration(100)
            .price("-0.0140")
            .build(),
        call(&sid(2), COMPANY, AGENT_SIP, "outbound-dial", "completed")
            .parent(&sid(1))
            .start(at_secs(10))
            .duration(60)
            .build(),
        call(&sid(3), COMPANY, AGENT_CELL, "outbound-dial", "no-answer")
            .parent(&sid(1))
            .start(at_secs(10))
            .duration(0)
            .build(),
        call(&sid(4), AGENT_SIP, ALICE, "outbound-dial", "completed")
            .parent(&sid(2))
            .start(at_secs(40))
            .duration(20)
            .build(),
        call(&sid(5), CUSTOMER2, COMPANY, "inbound", "no-answer")
            .start(at(10))
            .duration(0)
            .build(),
        call(&sid(6), COMPANY, UK_CUSTOMER, "outbound-api", "completed")
            .start(at(20))
            .duration(30)
            .price("-0.0500")
            .build(),
        call(&sid(7), COMPANY, CUSTOMER2, "outbound-dial", "completed")
            .parent(&sid(99))
            .start(at(5))
            .duration(15)
            .build(),
        call(&sid(8), CUSTOMER, COMPANY, "inbound", "canceled")
            .no_start()
            .created(at(40))
            .build(),
    ]
}

async fn loaded(store: Arc<dyn Store>) -> Harness {
    let h = Harness::new(store);
    h.ingest(fixture()).await;
    h
}

/// Every row of an export, page by page.
async fn export(store: &dyn Store, query: &ExportQuery, page: u32) -> Vec<ExportRow> {
    let mut all: Vec<ExportRow> = Vec::new();
    let mut after = None;
    loop {
        let rows = store
            .export_calls(query, after, page)
            .await
            .unwrap_or_else(|e| panic!("export_calls failed: {e}"));
        assert!(rows.len() <= page as usize, "a page longer than its limit");
        let Some(last) = rows.last() else { break };
        after = Some(last.id);
        let short = rows.len() < page as usize;
        all.extend(rows);
        if short {
            break;
        }
    }
    all
}

fn sids_of(rows: &[ExportRow]) -> Vec<String> {
    rows.iter().map(|r| r.sid.to_string()).collect()
}

fn sorted(mut sids: Vec<String>) -> Vec<String> {
    sids.sort();
    sids
}

fn by_sid(rows: Vec<ExportRow>) -> BTreeMap<String, ExportRow> {
    rows.into_iter().map(|r| (r.sid.to_string(), r)).collect()
}

/// Every call is one row, legs included, in `messages.id` order; roots
/// carry their interaction's figures (as the messages API shows them),
/// legs their own duration as talk time.
pub async fn export_lists_every_call_with_its_legs(store: Arc<dyn Store>) {
    let h = loaded(store).await;
    let rows = export(h.store.as_ref(), &ExportQuery::all(), 1000).await;
    assert_eq!(
        sorted(sids_of(&rows)),
        (1..=8).map(sid).collect::<Vec<_>>(),
        "one row per stored call"
    );
    for pair in rows.windows(2) {
        assert!(pair[0].id < pair[1].id, "rows follow messages.id");
    }
    let rows = by_sid(rows);

    let root = &rows[&sid(1)];
    assert_eq!(root.parent_call_sid, None);
    assert_eq!(root.root_call_sid.as_str(), sid(1));
    assert_eq!(root.external_id, CUSTOMER_DISPLAY);
    assert_eq!(root.contact_name, None, "nobody named the contact");
    assert_eq!(root.from.as_deref(), Some(CUSTOMER));
    assert_eq!(root.to.as_deref(), Some(COMPANY));
    assert_eq!(root.direction.as_str(), "inbound");
    assert_eq!(root.actual_direction, ActualDirection::Inbound);
    assert_eq!(root.status.as_str(), "completed");
    assert_eq!(root.display_status.as_str(), "completed");
    assert_eq!(root.start_time, Some(at(0)));
    assert_eq!(root.end_time, Some(at_secs(100)));
    assert_eq!(root.duration, Some(100));
    // Talk: the answered legs (60 s and the transfer's 20 s); wait: the rest.
    assert_eq!((root.talk_time, root.wait_time), (80, 20));
    assert_eq!(
        root.price.map(|p| p.to_string()).as_deref(),
        Some("-0.0140")
    );
    assert_eq!(root.price_unit.as_deref(), Some("USD"));
    assert_eq!(root.raw["sid"], sid(1));
    assert_eq!(root.notes, None);
    assert!(root.tags.is_empty());

    for (leg, parent, talk, status) in [
        (sid(2), sid(1), 60, "completed"),
        (sid(3), sid(1), 0, "no-answer"),
        (sid(4), sid(2), 20, "completed"),
    ] {
        let row = &rows[&leg];
        assert_eq!(
            row.parent_call_sid.as_ref().map(|s| s.to_string()),
            Some(parent)
        );
        assert_eq!(row.root_call_sid.as_str(), sid(1), "{leg}");
        assert_eq!(
            row.external_id, CUSTOMER_DISPLAY,
            "{leg} is in its root's conversation"
        );
        assert_eq!((row.talk_time, row.wait_time), (talk, 0), "{leg}");
        assert_eq!(row.display_status.as_str(), status, "{leg}");
        assert_eq!(row.direction.as_str(), "outbound-dial");
    }

    let missed = &rows[&sid(5)];
    assert_eq!(missed.external_id, CUSTOMER2_DISPLAY);
    assert_eq!(missed.display_status.as_str(), "no-answer");
    assert_eq!((missed.talk_time, missed.wait_time), (0, 0));

    let outbound = &rows[&sid(6)];
    assert_eq!(outbound.actual_direction, ActualDirection::Outbound);
    assert_eq!(outbound.external_id, UK_CUSTOMER_DISPLAY);
    assert_eq!((outbound.talk_time, outbound.wait_time), (30, 0));

    // A leg whose parent is not stored stands as its own root.
    let orphan = &rows[&sid(7)];
    assert_eq!(
        orphan.parent_call_sid.as_ref().map(|s| s.to_string()),
        Some(sid(99))
    );
    assert_eq!(orphan.root_call_sid.as_str(), sid(7));
    assert_eq!(orphan.talk_time, 15);

    let undialled = &rows[&sid(8)];
    assert_eq!(undialled.start_time, None);
    assert_eq!(undialled.duration, None);
    assert_eq!(undialled.display_status.as_str(), "canceled");

    // Every root's figures are its message's.
    for view in h.conversations().await {
        for interaction in all_messages(h.store.as_ref(), view.conversation.id)
            .await
            .expect("messages")
        {
            let row = &rows[interaction.root.call.sid.as_str()];
            let s = &interaction.summary;
            assert_eq!(
                (row.talk_time, row.wait_time, &row.display_status),
                (s.talk_time, s.wait_time, &s.display_status),
                "{}",
                row.sid
            );
            assert_eq!(row.actual_direction, interaction.actual_direction);
            assert_eq!(row.external_id, view.conversation.external_id);
        }
    }
}

async fn edit_contact(h: &Harness, key: &str, edit: serde_json::Value) {
    let view = h.conversation(key).await;
    let edit = crate::annotations::ContactEdit::from_json(&edit).expect("a valid edit");
    let meta = crate::annotations::EditMeta {
        by: None,
        at: at(500),
    };
    let mut tx = h.store.begin_ingest().await.expect("begin");
    tx.edit_contact(view.contact.id, &edit, None, &meta)
        .await
        .expect("edit contact");
    tx.commit().await.expect("commit");
}

async fn edit_call(h: &Harness, sid: &str, edit: serde_json::Value) {
    let (_, row) = h.located(sid).await;
    let edit = crate::annotations::CallEdit::from_json(&edit).expect("a valid edit");
    let meta = crate::annotations::EditMeta {
        by: None,
        at: at(501),
    };
    let mut tx = h.store.begin_ingest().await.expect("begin");
    tx.edit_call(row.id, &edit, None, &meta)
        .await
        .expect("edit call");
    tx.commit().await.expect("commit");
}

/// The calls of the conversations the list keeps with the same filters:
/// an export of the list's filters holds exactly those.
pub async fn export_filters_like_the_list(store: Arc<dyn Store>) {
    let h = loaded(store).await;
    edit_contact(
        &h,
        CUSTOMER,
        json!({"name": "Mrs Alvarez", "tags": ["VIP"]}),
    )
    .await;
    edit_call(
        &h,
        &sid(6),
        json!({"notes": "boiler quote", "tags": ["Quote"]}),
    )
    .await;
    let normalizer = Normalizer::default();
    let search =
        |text: &str| ConversationQuery::page(7, 0).with_search(Search::new(text, &normalizer));
    let queries = [
        ConversationQuery::page(7, 0),
        ConversationQuery::page(7, 0).with_status(StatusFilter::Missed),
        ConversationQuery::page(7, 0).with_status(StatusFilter::Answered),
        ConversationQuery::page(7, 0).with_status(StatusFilter::Canceled),
        ConversationQuery::page(7, 0).with_direction(ActualDirection::Inbound),
        ConversationQuery::page(7, 0).with_direction(ActualDirection::Outbound),
        ConversationQuery::page(7, 0).with_direction(ActualDirection::Internal),
        ConversationQuery::page(7, 0).with_tag("vip"),
        ConversationQuery::page(7, 0).with_tag("QUOTE"),
        ConversationQuery::page(7, 0).with_recording(),
        search("alvarez"),
        search("boiler"),
        search("(978) 844-7773"),
        search("508-514"),
        search("nobody at all"),
        ConversationQuery::page(7, 0)
            .with_direction(ActualDirection::Inbound)
            .with_status(StatusFilter::Missed),
    ];
    let mut non_empty = 0;
    for list in queries {
        let mut expected = Vec::new();
        for view in walk_by_cursor(h.store.as_ref(), &list).await.expect("list") {
            let calls = h
                .store
                .conversation_calls(view.conversation.id)
                .await
                .expect("calls");
            expected.extend(calls.iter().map(|c| c.call.sid.to_string()));
        }
        let query = ExportQuery::from_list_filters(list.clone());
        let rows = export(h.store.as_ref(), &query, 2).await;
        assert_eq!(
            sorted(sids_of(&rows)),
            sorted(expected.clone()),
            "export with the filters of {list:?}"
        );
        if !expected.is_empty() {
            non_empty += 1;
        }
    }
    assert!(non_empty >= 10, "most filters keep some calls");
}

/// `since` and `until` bound each call's own start time (`since`
/// included, `until` not); calls never dialled have none and are left
/// out by either. With the conversation filters, both must hold.
pub async fn export_since_until_bound_start_times(store: Arc<dyn Store>) {
    let h = loaded(store).await;
    let sids = |query: ExportQuery| {
        let store = Arc::clone(&h.store);
        async move { sorted(sids_of(&export(store.as_ref(), &query, 3).await)) }
    };
    let names = |ns: &[u64]| ns.iter().map(|n| sid(*n)).collect::<Vec<_>>();
    assert_eq!(
        sids(ExportQuery::all().with_since(at(10)).with_until(at(30))).await,
        names(&[5, 6])
    );
    assert_eq!(
        sids(ExportQuery::all().with_since(at(5))).await,
        names(&[5, 6, 7])
    );
    assert_eq!(
        sids(ExportQuery::all().with_until(at_secs(11))).await,
        names(&[1, 2, 3])
    );
    assert_eq!(
        sids(ExportQuery::all().with_since(at(31))).await,
        Vec::<String>::new()
    );
    // The list's `since` becomes the calls' bound, with its other filters.
    let list = ConversationQuery::page(20, 0)
        .with_direction(ActualDirection::Inbound)
        .with_since(at_secs(10));
    assert_eq!(
        sids(ExportQuery::from_list_filters(list)).await,
        names(&[2, 3, 4, 5, 7])
    );
}

/// A named contact's name is on every call of its conversation; a call's
/// notes and tags on its row, exactly as written, also through CSV.
pub async fn export_carries_names_notes_and_tags(store: Arc<dyn Store>) {
    let h = loaded(store).await;
    let notes = "quoted $240, \"call back\" Friday\nsecond line: café ☎";
    edit_contact(&h, CUSTOMER, json!({"name": "Mrs Alvarez, \"Ana\""})).await;
    edit_call(
        &h,
        &sid(1),
        json!({"notes": notes, "tags": ["VIP", "quote"]}),
    )
    .await;
    let rows = export(h.store.as_ref(), &ExportQuery::all(), 1000).await;
    let csv_bytes = {
        let writer = ExportWriter::new(ExportFormat::Csv);
        let mut bytes = writer.header();
        bytes.extend(writer.encode(&rows).expect("encode"));
        bytes
    };
    let rows = by_sid(rows);
    for n in [1, 2, 3, 4, 8] {
        assert_eq!(
            rows[&sid(n)].contact_name.as_deref(),
            Some("Mrs Alvarez, \"Ana\""),
            "{}",
            sid(n)
        );
    }
    for n in [5, 6, 7] {
        assert_eq!(rows[&sid(n)].contact_name, None, "{}", sid(n));
    }
    let root = &rows[&sid(1)];
    assert_eq!(root.notes.as_deref(), Some(notes));
    assert_eq!(root.tags, ["VIP", "quote"]);
    assert_eq!(rows[&sid(2)].notes, None, "a leg has its own (none)");

    let mut reader = csv::Reader::from_reader(&csv_bytes[..]);
    assert_eq!(
        reader.headers().expect("header").iter().collect::<Vec<_>>(),
        CSV_COLUMNS
    );
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("a CSV row")).collect();
    assert_eq!(records.len(), 8);
    let root = records
        .iter()
        .find(|r| r[0] == sid(1))
        .expect("the root's row");
    assert_eq!(&root[4], "Mrs Alvarez, \"Ana\"");
    assert_eq!(&root[19], notes);
    assert_eq!(&root[20], "VIP; quote");
    assert_eq!(&root[11], "2026-02-06T15:00:00Z");
    assert_eq!(&root[16], "-0.0140");
}

/// Pages of any size hold every call once, in the same order as one page;
/// a page after the last row is empty; [`pages`] streams the same.
pub async fn export_pages_are_complete(store: Arc<dyn Store>) {
    let h = loaded(store).await;
    let whole = sids_of(&export(h.store.as_ref(), &ExportQuery::all(), 1000).await);
    assert_eq!(whole.len(), 8);
    for page in [1, 2, 3, 7, 8, 9] {
        assert_eq!(
            sids_of(&export(h.store.as_ref(), &ExportQuery::all(), page).await),
            whole,
            "pages of {page}"
        );
    }
    let all = export(h.store.as_ref(), &ExportQuery::all(), 1000).await;
    let last = all.last().expect("rows").id;
    assert!(h
        .store
        .export_calls(&ExportQuery::all(), Some(last), 10)
        .await
        .expect("export")
        .is_empty());
    let filtered = ExportQuery::from_list_filters(
        ConversationQuery::page(20, 0).with_status(StatusFilter::Answered),
    );
    let one = sids_of(&export(h.store.as_ref(), &filtered, 1000).await);
    assert!(!one.is_empty());
    assert_eq!(sids_of(&export(h.store.as_ref(), &filtered, 1).await), one);

    let streamed: Vec<Vec<ExportRow>> = pages(Arc::clone(&h.store), ExportQuery::all(), 3)
        .try_collect()
        .await
        .expect("stream");
    assert_eq!(streamed.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 2]);
    assert_eq!(sids_of(&streamed.concat()), whole);
    let streamed: Vec<Vec<ExportRow>> = pages(Arc::clone(&h.store), ExportQuery::all(), 1000)
        .try_collect()
        .await
        .expect("stream");
    assert_eq!(sids_of(&streamed.concat()), whole);

    // An export that matches nothing: no page, and the stream stays ended.
    let nothing = ExportQuery::all().with_since(at(100_000));
    assert!(export(h.store.as_ref(), &nothing, 5).await.is_empty());
    let mut stream = std::pin::pin!(pages(Arc::clone(&h.store), nothing, 5));
    assert!(stream.next().await.is_none());
    assert!(stream.next().await.is_none(), "polled after its end");
}

/// Calls written between two pages (an update of a call already
/// exported, a new call) neither repeat a call nor lose one: a call keeps
/// its place, a new one comes after the pages read.
pub async fn export_pages_survive_writes_between_them(store: Arc<dyn Store>) {
    let h = loaded(store).await;
    let query = ExportQuery::all();
    let first = h
        .store
        .export_calls(&query, None, 4)
        .await
        .expect("first page");
    assert_eq!(first.len(), 4);
    let exported: Vec<String> = sids_of(&first);
    // A newer version of an exported call, and a new call.
    let original = fixture()
        .into_iter()
        .find(|c| c.sid.as_str() == exported[0])
        .expect("a fixture call");
    let newer = CallBuilder::from_call(&original)
        .updated(at(600))
        .answered_by("human")
        .build();
    h.ingest(vec![
        newer,
        call(&sid(9), CUSTOMER, COMPANY, "inbound", "completed")
            .start(at(60))
            .duration(5)
            .build(),
    ])
    .await;
    let (_, row) = h.located(&exported[0]).await;
    assert_eq!(
        row.call.answered_by.as_deref(),
        Some("human"),
        "the update was written"
    );
    let mut all = first;
    let mut after = all.last().map(|r| r.id);
    loop {
        let page = h.store.export_calls(&query, after, 4).await.expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        all.extend(page);
    }
    let sids = sids_of(&all);
    let unique: BTreeSet<&String> = sids.iter().collect();
    assert_eq!(
        unique.len(),
        sids.len(),
        "a call was exported twice: {sids:?}"
    );
    assert_eq!(sorted(sids.clone()), (1..=9).map(sid).collect::<Vec<_>>());
    assert_eq!(sids.last(), Some(&sid(9)), "a new call comes last");
}

/// A store's JSON Lines export, imported into a fresh store (`callview
/// import`), gives the same state: the same conversations, counters and
/// calls ([`snapshot`]), and the same export (rows compared as text,
/// without the database's ids).
pub async fn prop_export_then_import_restores_the_state<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    let strategy = call_trees().prop_flat_map(|trees| {
        let n = count_calls(&trees);
        (
            Just(trees),
            vec(proptest::bool::weighted(0.1), n),
            1u32..6,
            1usize..6,
        )
    });
    run_property(
        "export_then_import_restores_the_state",
        strategy,
        |(trees, missing, page, batch)| {
            let fresh = &fresh;
            async move {
                // A parent outside the window leaves its legs orphaned.
                let calls: Vec<Call> = build_calls(&trees)
                    .into_iter()
                    .zip(&missing)
                    .filter(|(_, missing)| !**missing)
                    .map(|(c, _)| c)
                    .collect();
                let source = Harness::new(fresh().await);
                source.ingest(calls.clone()).await;
                let mut jsonl = Vec::new();
                let written = export_to(
                    source.store.as_ref(),
                    &ExportQuery::all(),
                    ExportFormat::JsonLines,
                    page,
                    &mut jsonl,
                    |_| {},
                    |_| {},
                )
                .await
                .expect("export");
                assert_eq!(written, calls.len() as u64);
                if calls.is_empty() {
                    // Nothing to export: an empty file, which `import`
                    // refuses as not a dump at all.
                    assert!(jsonl.is_empty());
                    return;
                }

                let target = Harness::new(fresh().await);
                let report = import_calls(
                    target.store.as_ref(),
                    &rules(),
                    std::io::Cursor::new(jsonl.clone()),
                    batch,
                    None,
                )
                .await
                .unwrap_or_else(|e| panic!("import: {e}"));
                assert!(report.rejected.is_empty(), "{:?}", report.rejected);
                assert_eq!(report.sync.inserted, calls.len() as u64);
                super::check::assert_invariants(target.store.as_ref()).await;
                assert_eq!(
                    snapshot(target.store.as_ref()).await.expect("snapshot"),
                    source.snapshot().await,
                    "importing the export changed the state"
                );
                let lines = |bytes: &[u8]| {
                    let mut lines: Vec<String> = String::from_utf8(bytes.to_vec())
                        .expect("UTF-8")
                        .lines()
                        .map(str::to_owned)
                        .collect();
                    lines.sort();
                    lines
                };
                let mut again = Vec::new();
                export_to(
                    target.store.as_ref(),
                    &ExportQuery::all(),
                    ExportFormat::JsonLines,
                    1000,
                    &mut again,
                    |_| {},
                    |_| {},
                )
                .await
                .expect("export again");
                assert_eq!(lines(&again), lines(&jsonl), "the exports differ");
            }
        },
    );
}
