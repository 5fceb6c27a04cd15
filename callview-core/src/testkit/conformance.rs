//! The conformance tests: one generic `async fn` per rule of
//! `call-model.md` and `docs/storage.md`.
//!
//! Each test takes a fresh, empty store (the property tests `prop_*` take
//! a factory making one per case), panics on failure, and checks
//! [`super::check_invariants`] after every write.

use std::sync::Arc;

use chrono::{Duration, Timelike, Utc};
use serde_json::json;

use crate::call::{Call, CallSid, CallStatus};
use crate::endpoint::{ActualDirection, PartyRules};
use crate::model::{
    CallWrite, ConversationId, ConversationLookup, ConversationRef, Derived, DisplayStatus,
    NewConversation, Plan,
};
use crate::store::{ConversationQuery, MessageQuery, Store, StoreError};
use crate::sync::{SyncMode, OWNED_NUMBERS_CURSOR};

use super::builder::*;
use super::harness::Harness;
use super::mock::MockTwilio;

pub use super::concurrency::{callback_writer_races_a_sync, concurrent_writers_stay_exact};
pub use super::media::{
    deleted_and_updated_recordings, intelligence_failures_are_noted_not_fatal,
    media_versions_in_any_order, recordings_attach_in_either_order, several_recordings_per_call,
    transcripts_are_stored_and_searchable, unreadable_listed_recordings_are_not_deleted,
};
pub use super::props::{
    prop_edits_survive_syncs, prop_ingesting_twice_changes_nothing,
    prop_order_and_batches_do_not_matter, prop_page_size_does_not_matter,
    prop_stale_versions_never_win,
};
pub use super::stats::{
    stats_buckets_follow_local_time_across_dst, stats_busiest_conversations_of_a_period,
    stats_every_bucket_size, stats_follow_changes_and_rebuild_the_same,
    stats_match_figures_counted_by_hand, stats_of_an_empty_period_are_zero_filled,
};
pub use super::texts::{
    a_conversation_keeps_its_texts_when_its_calls_move,
    a_text_creates_the_conversation_a_call_finds, sync_lists_texts_and_their_media,
    text_status_moves_on_and_older_versions_lose, texts_and_calls_share_one_thread_in_time_order,
    texts_between_owned_numbers_are_internal, texts_in_any_order_give_the_same_state,
};
pub use super::tokens::{
    expired_and_revoked_tokens_are_refused, last_use_is_written_at_most_once_a_minute,
    token_names_are_taken_once, tokens_are_created_listed_and_found,
    tokens_revoked_in_one_process_fail_in_the_other,
};

/// A completed inbound call from `from` to the company number.
fn inbound(sid: &str, from: &str, minute: i64, duration: u32) -> Call {
    CallBuilder::new(sid)
        .from(from)
        .to(COMPANY)
        .direction("inbound")
        .status("completed")
        .start(at(minute))
        .duration(duration)
        .build()
}

fn sids(calls: &[crate::model::StoredCall]) -> Vec<String> {
    let mut v: Vec<String> = calls.iter().map(|c| c.call.sid.to_string()).collect();
    v.sort();
    v
}

fn leg_sids(i: &crate::model::Interaction) -> Vec<&str> {
    i.legs.iter().map(|l| l.call.sid.as_str()).collect()
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("{what}: expected StoreError::NotFound, got {other:?}"),
    }
}

/// A new store is empty, healthy, and lists nothing.
pub async fn empty_store_is_healthy(store: Arc<dyn Store>) {
    store.health().await.expect("health");
    let counts = store.counts().await.expect("counts");
    assert_eq!(
        (counts.contacts, counts.conversations, counts.calls),
        (0, 0, 0)
    );
    let page = store
        .list_conversations(&ConversationQuery::default())
        .await
        .expect("list");
    assert!(page.conversations.is_empty());
    assert_eq!(page.total, 0);
    assert!(store
        .unfinished_calls(&crate::store::UnfinishedQuery::any(10))
        .await
        .expect("unfinished")
        .is_empty());
    assert!(store.load_trees(&[]).await.expect("load_trees").is_empty());
    let h = Harness::new(store);
    // An empty batch writes nothing.
    let stats = h.ingest(Vec::new()).await;
    assert_eq!(stats, Default::default());
    assert!(h.keys().await.is_empty());
}

/// Several calls from one number form one conversation with one contact;
/// another number gets its own (`call-model.md` section 3).
pub async fn groups_calls_from_one_number(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let stats = h
        .ingest(vec![
            inbound(&sid(1), CUSTOMER, 0, 40),
            inbound(&sid(2), CUSTOMER, 10, 25),
            inbound(&sid(3), CUSTOMER, 5, 0),
            inbound(&sid(4), CUSTOMER2, 7, 12),
        ])
        .await;
    assert_eq!(stats.inserted, 4);
    assert_eq!(
        h.keys().await,
        vec![CUSTOMER2.to_owned(), CUSTOMER.to_owned()]
    );

    let view = h.conversation(CUSTOMER).await;
    let c = &view.conversation;
    assert_eq!(c.counters.total_calls, 3);
    assert_eq!(c.counters.total_duration, 65);
    assert_eq!(c.counters.last_message_at, Some(at(10)));
    assert_eq!(
        c.counters.last_call_direction,
        Some(ActualDirection::Inbound)
    );
    assert_eq!(
        c.counters.last_root_sid.as_ref().map(CallSid::as_str),
        Some(sid(2).as_str())
    );
    assert_eq!(c.external_id, CUSTOMER_DISPLAY);
    assert_eq!(c.subject.as_deref(), Some("Calls with +1 (978) 844-7773"));
    assert_eq!(c.status, "active");
    assert_eq!(view.contact.phone_number, CUSTOMER);
    assert_eq!(
        view.contact.formatted_number.as_deref(),
        Some(CUSTOMER_DISPLAY)
    );
    assert_eq!(view.contact.display_name.as_deref(), Some(CUSTOMER_DISPLAY));
    let last = view.last_message.expect("a last message");
    assert_eq!(last.root.call.sid.as_str(), sid(2));

    // A later call to the same number joins the same conversation.
    let before = h.id(CUSTOMER).await;
    h.ingest(vec![inbound(&sid(5), "(978) 844-7773", 20, 5)])
        .await;
    assert_eq!(h.id(CUSTOMER).await, before);
    assert_eq!(
        h.conversation(CUSTOMER)
            .await
            .conversation
            .counters
            .total_calls,
        4
    );
    let counts = h.store.counts().await.expect("counts");
    assert_eq!(
        (counts.contacts, counts.conversations, counts.calls),
        (2, 2, 5)
    );
}

/// Every written form of one number, SIP URIs carrying it included, lands
/// in one conversation keyed by its E.164 form (section 1).
pub async fn number_variants_share_one_conversation(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let variants = [
        "+19788447773",
        "(978) 844-7773",
        "9788447773",
        "19788447773",
        "978-844-7773",
        "sip:+19788447773@x.sip.twilio.com;transport=udp",
        "sip:19788447773@acme.sip.twilio.com",
        "sip:9788447773@acme.sip.twilio.com",
    ];
    let mut calls: Vec<Call> = variants
        .iter()
        .enumerate()
        .map(|(i, v)| inbound(&sid(i as u64 + 1), v, i as i64, 10))
        .collect();
    // The company calling the customer, its own number written differently.
    calls.push(
        CallBuilder::new(&sid(100))
            .from("(617) 500-6181")
            .to("+1 978 844 7773")
            .direction("outbound-api")
            .start(at(30))
            .duration(20)
            .build(),
    );
    h.ingest(calls).await;
    assert_eq!(h.keys().await, vec![CUSTOMER.to_owned()]);
    let view = h.conversation(CUSTOMER).await;
    assert_eq!(
        view.conversation.counters.total_calls,
        variants.len() as u64 + 1
    );
    assert_eq!(
        view.conversation.counters.total_duration,
        10 * variants.len() as u64 + 20
    );
    assert_eq!(view.conversation.external_id, CUSTOMER_DISPLAY);
    assert_eq!(
        view.conversation.counters.last_call_direction,
        Some(ActualDirection::Outbound)
    );
    // Raw values are stored as Twilio sent them.
    let (_, row) = h.located(&sid(6)).await;
    assert_eq!(
        row.call.from.as_deref(),
        Some("sip:+19788447773@x.sip.twilio.com;transport=udp")
    );
}

/// The parent and legs of the forwarding scenario used by several tests:
/// the customer calls the company (`P`, 120 s), which dials a SIP agent
/// who does not answer (`C2`, +2 s) and then forwards to an agent's mobile
/// (`C1`, +10 s, 100 s). Alone, `C1` would be its own conversation (the
/// agent's mobile is an external number).
fn forwarded(n: u64) -> (Call, Call, Call) {
    let p = sid(n);
    let parent = CallBuilder::new(&p)
        .from(CUSTOMER)
        .to(COMPANY)
        .direction("inbound")
        .status("completed")
        .start(at(0))
        .duration(120)
        .price("-0.0085")
        .build();
    let cell = CallBuilder::new(&sid(n + 1))
        .from(COMPANY)
        .to(AGENT_CELL)
        .direction("outbound-dial")
        .status("completed")
        .start(at_secs(10))
        .duration(100)
        .parent(&p)
        .build();
    let sip = CallBuilder::new(&sid(n + 2))
        .from(CUSTOMER)
        .to(AGENT_SIP)
        .direction("outbound-dial")
        .status("no-answer")
        .start(at_secs(2))
        .parent(&p)
        .build();
    (parent, cell, sip)
}

/// The final state of [`forwarded`]: one conversation, one message with
/// both legs, oldest first.
async fn assert_forwarded_folded(h: &Harness, n: u64) {
    assert_eq!(h.keys().await, vec![CUSTOMER.to_owned()]);
    let counts = h.store.counts().await.expect("counts");
    assert_eq!(
        (counts.contacts, counts.conversations, counts.calls),
        (1, 1, 3)
    );
    let view = h.conversation(CUSTOMER).await;
    let counters = &view.conversation.counters;
    assert_eq!(counters.total_calls, 1, "legs are not counted as calls");
    assert_eq!(
        counters.total_duration, 120,
        "only the root's duration counts"
    );
    assert_eq!(
        counters.last_message_at,
        Some(at_secs(10)),
        "newest call of any kind"
    );
    assert_eq!(counters.last_call_direction, Some(ActualDirection::Inbound));

    let messages = h.messages(CUSTOMER).await;
    assert_eq!(messages.len(), 1, "one message per root call");
    let m = &messages[0];
    assert_eq!(m.root.call.sid.as_str(), sid(n));
    assert_eq!(
        leg_sids(m),
        vec![sid(n + 2), sid(n + 1)],
        "legs oldest first"
    );
    assert!(m.merged_from_parent());
    assert!(m.root.derived.merged_from_parent);
    assert!(m.legs.iter().all(|l| l.derived.merged_from_parent));
    assert!(m.legs.iter().all(|l| l.root_sid.as_str() == sid(n)));
    assert_eq!(m.actual_direction, ActualDirection::Inbound);
    assert_eq!(
        (
            m.summary.total_duration,
            m.summary.talk_time,
            m.summary.wait_time
        ),
        (120, 100, 20)
    );
    assert_eq!(m.summary.display_status, "completed");
    assert_eq!(m.root.derived.display_status, "completed");
    assert_eq!(m.subject, "📞 Inbound call - 2m 00s");
    // Every call is still its own row of the conversation.
    let rows = h
        .store
        .conversation_calls(view.conversation.id)
        .await
        .expect("calls");
    assert_eq!(sids(&rows), vec![sid(n), sid(n + 1), sid(n + 2)]);
}

/// Legs are folded under their parent: one message per root call, legs
/// oldest first, `merged_from_parent`, talk and wait time (section 4).
pub async fn child_legs_fold_under_their_parent(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let (p, cell, sip) = forwarded(1);
    let stats = h.ingest(vec![p, cell, sip]).await;
    assert_eq!(stats.inserted, 3);
    assert_eq!(stats.moved, 0);
    assert_forwarded_folded(&h, 1).await;
    let (_, leg) = h.located(&sid(2)).await;
    assert_eq!(
        leg.derived.actual_direction,
        ActualDirection::Outbound,
        "a leg keeps its own direction"
    );
    assert_eq!(leg.derived.display_status, "completed");
    let (_, leg) = h.located(&sid(3)).await;
    assert_eq!(leg.derived.display_status, "no-answer");
}

/// Twilio lists newest first, so legs usually precede their parent within
/// one page: the result is the same.
pub async fn parent_after_children_in_the_same_batch(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let (p, cell, sip) = forwarded(1);
    let stats = h.ingest(vec![cell, sip, p]).await;
    assert_eq!((stats.inserted, stats.moved), (3, 0));
    assert_forwarded_folded(&h, 1).await;
}

/// Legs stored as roots move under a parent arriving in a later batch; the
/// conversation (and contact) left empty is removed.
pub async fn parent_after_children_in_a_later_batch(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let (p, cell, sip) = forwarded(1);
    let stats = h.ingest(vec![cell, sip]).await;
    assert_eq!(stats.inserted, 2);
    // Until the parent arrives each leg is a root in its own party's conversation.
    assert_eq!(
        h.keys().await,
        vec![AGENT_CELL.to_owned(), CUSTOMER.to_owned()]
    );
    let orphan = h.id(AGENT_CELL).await;
    let (_, row) = h.located(&sid(2)).await;
    assert!(row.is_root());
    assert_eq!(row.derived.actual_direction, ActualDirection::Outbound);

    let stats = h.ingest(vec![p]).await;
    assert_eq!(stats.inserted, 1);
    assert_eq!(stats.moved, 2, "both legs change tree");
    assert_forwarded_folded(&h, 1).await;
    assert_not_found(
        h.store.conversation(orphan).await,
        "the emptied conversation",
    );
    assert_not_found(
        h.store.conversation_calls(orphan).await,
        "the emptied conversation's calls",
    );
}

/// A parent on a later page of the same sync (page size 1, one sequence of
/// pages: the legs come on pages 1 and 2, the parent on page 3).
pub async fn parent_on_a_later_page(store: Arc<dyn Store>) {
    let mut h = Harness::with(store, MockTwilio::new().with_page_size(1), rules());
    h.engine = h.engine.clone().with_concurrency(1);
    let (p, cell, sip) = forwarded(1);
    h.mock.set_calls([p, cell, sip]);
    let report = h.sync_all().await;
    // Three pages of the window, one empty page per status of the sweep
    // for calls never dialled, one of calls started since the run began.
    assert_eq!(report.pages, 3 + 3 + 1);
    assert_eq!(report.fetched, 3);
    assert_eq!(report.inserted, 3);
    assert_eq!(report.moved, 2);
    assert!(report.skipped.is_empty());
    assert_forwarded_folded(&h, 1).await;
}

/// A parent arriving in a later sync.
pub async fn parent_in_a_later_sync(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let (p, cell, sip) = forwarded(1);
    h.mock.set_calls([cell, sip]);
    let first = h.sync_all().await;
    assert_eq!(first.inserted, 2);
    assert_eq!(h.keys().await.len(), 2);
    h.mock.upsert(p);
    let second = h.sync_all().await;
    assert_eq!(
        (
            second.inserted,
            second.updated,
            second.unchanged,
            second.moved
        ),
        (1, 2, 0, 0),
        "the legs are in the batch, so they count as updated: {second:?}"
    );
    assert_forwarded_folded(&h, 1).await;
    let third = h.sync_all().await;
    assert_eq!(
        (third.inserted, third.updated, third.unchanged, third.moved),
        (0, 0, 3, 0)
    );
}

/// Root → child → grandchild, in two different arrival orders: one
/// message with both descendants as legs.
pub async fn grandchildren_fold_into_the_root(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let tree = |n: u64, customer: &str| {
        let root = CallBuilder::new(&sid(n))
            .from(customer)
            .to(COMPANY)
            .direction("inbound")
            .start(at(0))
            .duration(200)
            .build();
        let child = CallBuilder::new(&sid(n + 1))
            .from(customer)
            .to(AGENT_SIP)
            .direction("outbound-dial")
            .start(at_secs(5))
            .duration(150)
            .parent(&sid(n))
            .build();
        let grandchild = CallBuilder::new(&sid(n + 2))
            .from(AGENT_SIP)
            .to(AGENT_CELL)
            .direction("outbound-dial")
            .start(at_secs(60))
            .duration(90)
            .parent(&sid(n + 1))
            .build();
        (root, child, grandchild)
    };

    // Grandchild, child, root.
    let (root, child, grandchild) = tree(1, CUSTOMER);
    h.ingest(vec![grandchild]).await;
    assert_eq!(h.keys().await, vec![AGENT_CELL.to_owned()]);
    h.ingest(vec![child]).await;
    assert_eq!(
        h.keys().await,
        vec![CUSTOMER.to_owned()],
        "the grandchild followed its parent"
    );
    let m = h.messages(CUSTOMER).await;
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].root.call.sid.as_str(), sid(2));
    h.ingest(vec![root]).await;
    assert_eq!(h.keys().await, vec![CUSTOMER.to_owned()]);

    // Root, grandchild, child: the grandchild is a root until its parent comes.
    let (root, child, grandchild) = tree(11, CUSTOMER2);
    h.ingest(vec![root]).await;
    h.ingest(vec![grandchild]).await;
    assert!(h.find(AGENT_CELL).await.is_some());
    let stats = h.ingest(vec![child]).await;
    assert_eq!((stats.inserted, stats.moved), (1, 2));
    assert!(
        h.find(AGENT_CELL).await.is_none(),
        "the emptied conversation is removed"
    );

    for (key, n) in [(CUSTOMER, 1), (CUSTOMER2, 11)] {
        let m = h.messages(key).await;
        assert_eq!(m.len(), 1, "{key}");
        let m = &m[0];
        assert_eq!(m.root.call.sid.as_str(), sid(n));
        assert_eq!(leg_sids(m), vec![sid(n + 1), sid(n + 2)]);
        assert!(m.legs.iter().all(|l| l.root_sid.as_str() == sid(n)));
        assert_eq!((m.summary.talk_time, m.summary.wait_time), (240, 0));
        let counters = h.conversation(key).await.conversation.counters;
        assert_eq!((counters.total_calls, counters.total_duration), (1, 200));
    }
    let counts = h.store.counts().await.expect("counts");
    assert_eq!(
        (counts.contacts, counts.conversations, counts.calls),
        (2, 2, 6)
    );
}

/// Talk time, wait time and display status of merged entries (section 4).
pub async fn merged_talk_wait_and_display_status(store: Arc<dyn Store>) {
    struct Case {
        name: &'static str,
        root: (&'static str, Option<u32>),
        legs: Vec<(&'static str, Option<u32>)>,
        expect: (&'static str, u32, u32, u32),
        subject: Option<&'static str>,
    }
    let cases = vec![
        Case {
            name: "answered leg",
            root: ("completed", Some(60)),
            legs: vec![("completed", Some(45))],
            expect: ("completed", 60, 45, 15),
            subject: Some("📞 Inbound call - 1m 00s"),
        },
        Case {
            name: "no legs",
            root: ("completed", Some(30)),
            legs: vec![],
            expect: ("completed", 30, 30, 0),
            subject: Some("📞 Inbound call - 30s"),
        },
        Case {
            name: "leg not answered",
            root: ("completed", Some(20)),
            legs: vec![("no-answer", None)],
            expect: ("no-answer", 20, 0, 20),
            subject: Some("📞 Missed call"),
        },
        Case {
            name: "leg busy",
            root: ("completed", Some(25)),
            legs: vec![("busy", Some(0))],
            expect: ("no-answer", 25, 0, 25),
            subject: Some("📞 Missed call"),
        },
        Case {
            name: "busy",
            root: ("busy", Some(0)),
            legs: vec![],
            expect: ("busy", 0, 0, 0),
            subject: Some("📞 Missed call"),
        },
        Case {
            name: "canceled",
            root: ("canceled", None),
            legs: vec![("ringing", None)],
            expect: ("canceled", 0, 0, 0),
            subject: Some("📞 Missed call"),
        },
        Case {
            name: "failed",
            root: ("failed", None),
            legs: vec![],
            expect: ("failed", 0, 0, 0),
            subject: Some("📞 Missed call"),
        },
        Case {
            name: "no-answer",
            root: ("no-answer", Some(0)),
            legs: vec![],
            expect: ("no-answer", 0, 0, 0),
            subject: Some("📞 Missed call"),
        },
        Case {
            name: "ringing",
            root: ("ringing", None),
            legs: vec![],
            expect: ("ringing", 0, 0, 0),
            subject: None,
        },
        Case {
            name: "in progress, leg ringing",
            root: ("in-progress", None),
            legs: vec![("ringing", None)],
            expect: ("in-progress", 0, 0, 0),
            subject: None,
        },
        Case {
            name: "queued",
            root: ("queued", None),
            legs: vec![],
            expect: ("queued", 0, 0, 0),
            subject: None,
        },
        Case {
            name: "several legs",
            root: ("completed", Some(90)),
            legs: vec![
                ("no-answer", None),
                ("completed", Some(50)),
                ("completed", Some(0)),
            ],
            expect: ("completed", 90, 50, 40),
            subject: Some("📞 Inbound call - 1m 30s"),
        },
        Case {
            name: "two answered legs",
            root: ("completed", Some(300)),
            legs: vec![("completed", Some(100)), ("completed", Some(80))],
            expect: ("completed", 300, 180, 120),
            subject: None,
        },
        Case {
            name: "legs longer than root",
            root: ("completed", Some(10)),
            legs: vec![("completed", Some(30))],
            expect: ("completed", 10, 30, 0),
            subject: None,
        },
    ];
    let h = Harness::new(store);
    let mut batch = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let n = 100 * (i as u64 + 1);
        let customer = format!("+1978555{:04}", i + 1);
        let mut root = CallBuilder::new(&sid(n))
            .from(&customer)
            .to(COMPANY)
            .direction("inbound")
            .status(case.root.0)
            .start(at(i as i64));
        if let Some(d) = case.root.1 {
            root = root.duration(d);
        }
        batch.push(root.build());
        for (j, (status, duration)) in case.legs.iter().enumerate() {
            let mut leg = CallBuilder::new(&sid(n + 1 + j as u64))
                .from(&customer)
                .to(AGENT_SIP)
                .direction("outbound-dial")
                .status(status)
                .start(at(i as i64) + Duration::seconds(1 + j as i64))
                .parent(&sid(n));
            if let Some(d) = duration {
                leg = leg.duration(*d);
            }
            batch.push(leg.build());
        }
    }
    batch.reverse();
    h.ingest(batch).await;

    for (i, case) in cases.iter().enumerate() {
        let customer = format!("+1978555{:04}", i + 1);
        let messages = h.messages(&customer).await;
        assert_eq!(messages.len(), 1, "{}", case.name);
        let m = &messages[0];
        let (status, total, talk, wait) = case.expect;
        assert_eq!(
            (
                m.summary.display_status.as_str(),
                m.summary.total_duration,
                m.summary.talk_time,
                m.summary.wait_time
            ),
            (status, total, talk, wait),
            "{}",
            case.name
        );
        assert_eq!(
            m.root.derived.display_status, status,
            "{}: stored display_status",
            case.name
        );
        assert_eq!(m.legs.len(), case.legs.len(), "{}", case.name);
        assert_eq!(
            m.merged_from_parent(),
            !case.legs.is_empty(),
            "{}",
            case.name
        );
        assert_eq!(
            m.root.derived.merged_from_parent,
            !case.legs.is_empty(),
            "{}",
            case.name
        );
        if let Some(subject) = case.subject {
            assert_eq!(m.subject, subject, "{}", case.name);
        }
        let counters = h.conversation(&customer).await.conversation.counters;
        assert_eq!(
            counters.total_duration,
            u64::from(total),
            "{}: root duration only",
            case.name
        );
    }
}

/// `in-progress` → `completed` updates status, duration and end time of the
/// row, and the counters follow; re-sending writes nothing (section 5).
pub async fn status_and_duration_updates_follow(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let live = CallBuilder::new(&sid(1))
        .from(CUSTOMER)
        .to(COMPANY)
        .status("in-progress")
        .start(at(0))
        .updated(at_secs(5))
        .build();
    let stats = h.ingest(vec![live]).await;
    assert_eq!(stats.inserted, 1);
    let (_, row) = h.located(&sid(1)).await;
    assert_eq!(row.call.status, CallStatus::InProgress);
    assert_eq!(row.derived.display_status, "in-progress");
    assert_eq!(
        h.conversation(CUSTOMER)
            .await
            .conversation
            .counters
            .total_duration,
        0
    );
    assert_eq!(
        h.store
            .unfinished_calls(&crate::store::UnfinishedQuery::any(10))
            .await
            .expect("unfinished")
            .len(),
        1
    );

    let done = CallBuilder::new(&sid(1))
        .from(CUSTOMER)
        .to(COMPANY)
        .status("completed")
        .start(at(0))
        .end(at_secs(40))
        .duration(40)
        .updated(at_secs(41))
        .build();
    let stats = h.ingest(vec![done.clone()]).await;
    assert_eq!((stats.inserted, stats.updated, stats.unchanged), (0, 1, 0));
    let (_, row) = h.located(&sid(1)).await;
    assert_eq!(row.call.status, CallStatus::Completed);
    assert_eq!(row.call.duration, Some(40));
    assert_eq!(row.call.end_time, Some(at_secs(40)));
    assert_eq!(row.derived.display_status, "completed");
    let view = h.conversation(CUSTOMER).await;
    assert_eq!(view.conversation.counters.total_duration, 40);
    assert_eq!(view.conversation.counters.total_calls, 1);
    assert!(h
        .store
        .unfinished_calls(&crate::store::UnfinishedQuery::any(10))
        .await
        .expect("unfinished")
        .is_empty());
    assert_eq!(h.store.counts().await.expect("counts").calls, 1);

    let before = h.raw_state().await;
    let stats = h.ingest(vec![done]).await;
    assert_eq!(
        (stats.inserted, stats.updated, stats.unchanged, stats.moved),
        (0, 0, 1, 0)
    );
    assert_eq!(
        h.raw_state().await,
        before,
        "re-sending the same record must write nothing"
    );
}

/// Twilio fills `price` in after the call ended: the row takes it.
pub async fn price_filled_in_later_updates_the_row(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let base = CallBuilder::new(&sid(1))
        .from(CUSTOMER)
        .to(COMPANY)
        .start(at(0))
        .end(at_secs(40))
        .duration(40);
    h.ingest(vec![base.clone().updated(at_secs(41)).build()])
        .await;
    let (_, row) = h.located(&sid(1)).await;
    assert_eq!(row.call.price, None);

    let priced = base.price("-0.01400").updated(at(3)).build();
    let stats = h.ingest(vec![priced.clone()]).await;
    assert_eq!(stats.updated, 1);
    let (_, row) = h.located(&sid(1)).await;
    assert_eq!(row.call.price, Some("-0.014".parse().expect("decimal")));
    assert_eq!(row.call.price_unit.as_deref(), Some("USD"));
    let m = &h.messages(CUSTOMER).await[0];
    assert!(
        m.body.contains("0.014"),
        "the body shows the cost: {}",
        m.body
    );
    let counters = h.conversation(CUSTOMER).await.conversation.counters;
    assert_eq!((counters.total_calls, counters.total_duration), (1, 40));

    let before = h.raw_state().await;
    let stats = h.ingest(vec![priced]).await;
    assert_eq!((stats.updated, stats.unchanged), (0, 1));
    assert_eq!(h.raw_state().await, before);
}

/// A second sync of the same account changes nothing: every call is
/// reported unchanged and no row or conversation is written.
pub async fn resync_changes_nothing(store: Arc<dyn Store>) {
    let h = Harness::with(store, MockTwilio::new().with_page_size(2), rules());
    let (p, cell, sip) = forwarded(1);
    h.mock.set_calls([
        p,
        cell,
        sip,
        inbound(&sid(10), CUSTOMER2, 3, 33),
        inbound(&sid(11), "anonymous", 4, 0),
        CallBuilder::new(&sid(12))
            .from(CUSTOMER)
            .to(COMPANY)
            .status("ringing")
            .start(at(5))
            .build(),
    ]);
    let first = h.sync_all().await;
    assert_eq!(first.inserted, 6);
    let state = h.raw_state().await;
    let snap = h.snapshot().await;
    let second = h.sync_all().await;
    assert_eq!(
        (
            second.fetched,
            second.inserted,
            second.updated,
            second.moved,
            second.unchanged
        ),
        (6, 0, 0, 0, 6),
        "{second:?}"
    );
    assert_eq!(h.raw_state().await, state, "a re-sync must not write");
    assert_eq!(h.snapshot().await, snap);
}

/// A record older than the stored one (Twilio's `date_updated`) does not
/// overwrite it, in a later batch or in the same batch.
pub async fn older_version_does_not_overwrite_newer(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let newer = |n: u64| {
        CallBuilder::new(&sid(n))
            .from(CUSTOMER)
            .to(COMPANY)
            .status("completed")
            .start(at(n as i64))
            .duration(40)
            .price("-0.014")
            .updated(at(n as i64) + Duration::seconds(60))
            .build()
    };
    let older = |n: u64| {
        CallBuilder::new(&sid(n))
            .from(CUSTOMER)
            .to(COMPANY)
            .status("ringing")
            .start(at(n as i64))
            .updated(at(n as i64) + Duration::seconds(5))
            .build()
    };
    h.ingest(vec![newer(1)]).await;
    let before = h.raw_state().await;
    let stats = h.ingest(vec![older(1)]).await;
    assert_eq!((stats.updated, stats.unchanged), (0, 1));
    assert_eq!(
        h.raw_state().await,
        before,
        "the older record wrote something"
    );

    h.ingest(vec![newer(2), older(2)]).await;
    h.ingest(vec![older(3), newer(3)]).await;
    for n in 1..=3 {
        let (_, row) = h.located(&sid(n)).await;
        assert_eq!(row.call.status, CallStatus::Completed, "call {n}");
        assert_eq!(row.call.duration, Some(40), "call {n}");
    }
    assert_eq!(
        h.conversation(CUSTOMER)
            .await
            .conversation
            .counters
            .total_duration,
        120
    );
}

/// Statuses and directions this code does not know are stored and shown
/// as they came (section 6).
pub async fn unknown_status_and_direction_are_kept(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    h.ingest(vec![CallBuilder::new(&sid(1))
        .from(CUSTOMER)
        .to(COMPANY)
        .direction("sideways")
        .status("on-hold")
        .start(at(0))
        .build()])
        .await;
    let (key, row) = h.located(&sid(1)).await;
    assert_eq!(key, CUSTOMER);
    assert_eq!(row.call.status, CallStatus::Other("on-hold".into()));
    assert_eq!(row.call.direction.as_str(), "sideways");
    assert_eq!(row.call.raw["status"], "on-hold");
    assert_eq!(
        row.derived.display_status, "on-hold",
        "an unknown status is live"
    );
    assert_eq!(row.derived.actual_direction, ActualDirection::Inbound);
    let unfinished = h
        .store
        .unfinished_calls(&crate::store::UnfinishedQuery::any(10))
        .await
        .expect("unfinished");
    assert_eq!(
        sids(&unfinished),
        vec![sid(1)],
        "an unknown status is not final"
    );
}

/// The full raw Twilio record, fields this code does not know included, is
/// kept with the row (section 6).
pub async fn raw_twilio_record_is_kept(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let raw = json!({
        "sid": sid(1),
        "account_sid": "AC00000000000000000000000000000000",
        "from": "sip:+19788447773@acme.sip.twilio.com;transport=udp",
        "from_formatted": "(978) 844-7773",
        "to": COMPANY,
        "status": "completed",
        "direction": "inbound",
        "start_time": "Fri, 06 Feb 2026 15:17:13 +0000",
        "end_time": "Fri, 06 Feb 2026 15:17:53 +0000",
        "duration": "40",
        "price": "-0.01400",
        "price_unit": "USD",
        "queue_time": "0",
        "answered_by": "human",
        "caller_name": "ACME CUSTOMER",
        "a_field_from_the_future": {"nested": [1, 2, 3]},
        "subresource_uris": {"recordings": "/2010-04-01/Accounts/AC/Calls/CA/Recordings.json"}
    });
    let call = Call::from_json(&raw).expect("parses");
    h.ingest(vec![call.clone()]).await;
    let (_, row) = h.located(&sid(1)).await;
    assert_eq!(row.call.raw, raw);
    assert_eq!(row.call, call);
    assert_eq!(
        row.call.price.map(|p| p.to_string()).as_deref(),
        Some("-0.01400")
    );
}

/// A record in Twilio's full form, whose `uri` and `subresource_uris` the
/// stores leave out and rebuild ([`crate::raw_uris`]), reads back equal;
/// the same record again changes nothing; one whose URIs do not follow
/// the pattern is kept as it came.
pub async fn derivable_uris_are_rebuilt_on_read(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let account = "AC00000000000000000000000000000000";
    let record = |n: u64, api: &str| {
        let base = format!("/{api}/Accounts/{account}/Calls/{}", sid(n));
        json!({
            "sid": sid(n),
            "account_sid": account,
            "from": CUSTOMER,
            "to": COMPANY,
            "status": "completed",
            "direction": "inbound",
            "start_time": "Fri, 06 Feb 2026 15:17:13 +0000",
            "end_time": "Fri, 06 Feb 2026 15:17:53 +0000",
            "duration": "40",
            "api_version": "2010-04-01",
            "uri": format!("{base}.json"),
            "subresource_uris": {
                "feedback": format!("{base}/Feedback.json"),
                "user_defined_message_subscriptions":
                    format!("{base}/UserDefinedMessageSubscriptions.json"),
                "recordings": format!("{base}/Recordings.json"),
                "siprec": format!("{base}/Siprec.json"),
                "feedback_summaries":
                    format!("/{api}/Accounts/{account}/Calls/FeedbackSummary.json"),
            },
        })
    };
    let derivable = record(1, "2010-04-01");
    let other = record(2, "2099-01-01");
    let calls: Vec<Call> = [&derivable, &other]
        .into_iter()
        .map(|r| Call::from_json(r).expect("parses"))
        .collect();
    h.ingest(calls.clone()).await;
    for (n, (raw, call)) in [&derivable, &other].into_iter().zip(&calls).enumerate() {
        let (_, row) = h.located(&sid(n as u64 + 1)).await;
        assert_eq!(&row.call.raw, raw);
        assert_eq!(&row.call, call);
    }
    let again = h.ingest(calls).await;
    assert_eq!((again.inserted, again.updated), (0, 0), "{again:?}");
}

/// The same record twice in one batch (Twilio's pages shift while new calls
/// arrive) is stored once.
pub async fn duplicate_records_in_one_batch(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let call = inbound(&sid(1), CUSTOMER, 0, 30);
    let stats = h.ingest(vec![call.clone(), call.clone()]).await;
    assert_eq!(stats.inserted, 1);
    let counts = h.store.counts().await.expect("counts");
    assert_eq!(counts.calls, 1);
    assert_eq!(
        h.conversation(CUSTOMER)
            .await
            .conversation
            .counters
            .total_calls,
        1
    );
}

/// Hidden caller IDs share one `anonymous` conversation shown as
/// `Anonymous` (section 1).
pub async fn anonymous_callers_share_one_conversation(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let mut calls = vec![CallBuilder::new(&sid(1))
        .no_from()
        .to(COMPANY)
        .start(at(0))
        .duration(5)
        .build()];
    for (i, from) in [
        "",
        "anonymous",
        "+266696687",
        "Restricted",
        "+7378742833",
        "unknown",
    ]
    .iter()
    .enumerate()
    {
        calls.push(inbound(&sid(i as u64 + 2), from, i as i64 + 1, 5));
    }
    h.ingest(calls).await;
    assert_eq!(h.keys().await, vec!["anonymous".to_owned()]);
    let view = h.conversation("anonymous").await;
    assert_eq!(view.conversation.external_id, "Anonymous");
    assert_eq!(
        view.conversation.subject.as_deref(),
        Some("Calls with Anonymous")
    );
    assert_eq!(view.contact.display_name.as_deref(), Some("Anonymous"));
    assert_eq!(view.contact.formatted_number.as_deref(), Some("Anonymous"));
    assert_eq!(view.conversation.counters.total_calls, 7);
    assert_eq!(
        view.conversation.counters.last_call_direction,
        Some(ActualDirection::Inbound)
    );
}

/// Calls between two internal endpoints get their own internal
/// conversation, keyed by the callee (section 2, rule 4).
pub async fn internal_calls_get_an_internal_conversation(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    h.ingest(vec![
        CallBuilder::new(&sid(1))
            .from(ALICE)
            .to(DISPATCHER)
            .direction("inbound")
            .start(at(0))
            .duration(30)
            .build(),
        CallBuilder::new(&sid(2))
            .from("client:bob")
            .to("sip:Dispatcher@ACME.sip.twilio.com;transport=tls")
            .direction("outbound-api")
            .start(at(1))
            .duration(20)
            .build(),
        CallBuilder::new(&sid(3))
            .from(ALICE)
            .to(COMPANY)
            .direction("inbound")
            .start(at(2))
            .duration(10)
            .build(),
    ])
    .await;
    assert_eq!(
        h.keys().await,
        vec![COMPANY.to_owned(), DISPATCHER.to_owned()]
    );
    let view = h.conversation(DISPATCHER).await;
    assert_eq!(view.conversation.external_id, DISPATCHER);
    assert_eq!(view.conversation.counters.total_calls, 2);
    assert_eq!(
        view.conversation.counters.last_call_direction,
        Some(ActualDirection::Internal)
    );
    for m in h.messages(DISPATCHER).await {
        assert_eq!(m.actual_direction, ActualDirection::Internal);
        assert_eq!(m.root.derived.actual_direction, ActualDirection::Internal);
    }
    let company = h.conversation(COMPANY).await;
    assert_eq!(company.conversation.external_id, "+1 (617) 500-6181");
    assert_eq!(
        company.conversation.counters.last_call_direction,
        Some(ActualDirection::Internal)
    );
}

/// The seed's example: `sip:dispatcher@…` dialling `sip:+15085140320@…` is
/// an outbound call to +15085140320 although Twilio says `inbound`.
pub async fn dispatcher_dialling_out_is_outbound(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    h.ingest(vec![CallBuilder::new(&sid(1))
        .from(DISPATCHER)
        .to("sip:+15085140320@acme.sip.twilio.com;transport=udp")
        .direction("inbound")
        .start(at(0))
        .duration(65)
        .build()])
        .await;
    assert_eq!(h.keys().await, vec![CUSTOMER2.to_owned()]);
    let view = h.conversation(CUSTOMER2).await;
    assert_eq!(view.conversation.external_id, CUSTOMER2_DISPLAY);
    assert_eq!(
        view.conversation.counters.last_call_direction,
        Some(ActualDirection::Outbound)
    );
    let m = &h.messages(CUSTOMER2).await[0];
    assert_eq!(m.actual_direction, ActualDirection::Outbound);
    assert_eq!(
        m.root.call.direction.as_str(),
        "inbound",
        "Twilio's direction is kept"
    );
    assert_eq!(m.subject, "📞 Outbound call - 1m 05s");
}

/// The dispatcher's SIP phone calls the company number (internal to
/// internal), which dials the customer: the tree lands in the customer's
/// conversation as outbound, whatever the arrival order (section 3).
pub async fn dispatcher_through_company_number_lands_with_customer(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let tree = |n: u64, customer: &str, minute: i64| {
        let root = CallBuilder::new(&sid(n))
            .from(DISPATCHER)
            .to(COMPANY)
            .direction("inbound")
            .start(at(minute))
            .duration(100)
            .build();
        // An internal leg first (ringing the agent), then the customer.
        let agent = CallBuilder::new(&sid(n + 1))
            .from(COMPANY)
            .to(AGENT_SIP)
            .direction("outbound-dial")
            .status("no-answer")
            .start(at(minute) + Duration::seconds(1))
            .parent(&sid(n))
            .build();
        let customer = CallBuilder::new(&sid(n + 2))
            .from(COMPANY)
            .to(customer)
            .direction("outbound-dial")
            .start(at(minute) + Duration::seconds(3))
            .duration(80)
            .parent(&sid(n))
            .build();
        (root, agent, customer)
    };

    // Root first: alone it is an internal call in the company number's conversation.
    let (root, agent, leg) = tree(1, CUSTOMER, 0);
    h.ingest(vec![root]).await;
    assert_eq!(h.keys().await, vec![COMPANY.to_owned()]);
    assert_eq!(
        h.conversation(COMPANY)
            .await
            .conversation
            .counters
            .last_call_direction,
        Some(ActualDirection::Internal)
    );
    h.ingest(vec![agent]).await;
    assert_eq!(
        h.keys().await,
        vec![COMPANY.to_owned()],
        "an internal leg does not give a party"
    );
    let stats = h.ingest(vec![leg]).await;
    assert_eq!((stats.inserted, stats.moved), (1, 2));
    assert_eq!(
        h.keys().await,
        vec![CUSTOMER.to_owned()],
        "the internal conversation is removed"
    );

    // Customer leg first, then the root, then the internal leg.
    let (root, agent, leg) = tree(11, CUSTOMER2, 10);
    h.ingest(vec![leg]).await;
    h.ingest(vec![root]).await;
    h.ingest(vec![agent]).await;
    assert_eq!(
        h.keys().await,
        vec![CUSTOMER2.to_owned(), CUSTOMER.to_owned()]
    );

    for (key, n) in [(CUSTOMER, 1), (CUSTOMER2, 11)] {
        let view = h.conversation(key).await;
        assert_eq!(view.conversation.counters.total_calls, 1, "{key}");
        assert_eq!(view.conversation.counters.total_duration, 100, "{key}");
        assert_eq!(
            view.conversation.counters.last_call_direction,
            Some(ActualDirection::Outbound),
            "{key}"
        );
        let m = &h.messages(key).await[0];
        assert_eq!(m.root.call.sid.as_str(), sid(n));
        assert_eq!(leg_sids(m), vec![sid(n + 1), sid(n + 2)]);
        assert_eq!(m.actual_direction, ActualDirection::Outbound, "{key}");
        assert_eq!(
            m.root.derived.actual_direction,
            ActualDirection::Outbound,
            "{key}"
        );
        assert_eq!((m.summary.talk_time, m.summary.wait_time), (80, 20));
    }
    let counts = h.store.counts().await.expect("counts");
    assert_eq!(
        (counts.contacts, counts.conversations, counts.calls),
        (2, 2, 6)
    );
}

/// An internal root takes the party of its earliest external leg (by start
/// time, then SID), whichever leg arrived first (section 3).
pub async fn internal_root_takes_the_earliest_external_leg(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let leg = |n: u64, to: &str, offset: i64| {
        CallBuilder::new(&sid(n))
            .from(COMPANY)
            .to(to)
            .direction("outbound-dial")
            .start(at_secs(offset))
            .duration(30)
            .parent(&sid(1))
            .build()
    };
    let root = CallBuilder::new(&sid(1))
        .from(DISPATCHER)
        .to(COMPANY)
        .start(at(0))
        .duration(90)
        .build();
    h.ingest(vec![leg(4, CUSTOMER2, 20), root]).await;
    assert_eq!(h.keys().await, vec![CUSTOMER2.to_owned()]);
    h.ingest(vec![leg(3, UK_CUSTOMER, 5)]).await;
    assert_eq!(
        h.keys().await,
        vec![UK_CUSTOMER.to_owned()],
        "an earlier external leg wins"
    );
    h.ingest(vec![leg(2, CUSTOMER, 5)]).await;
    assert_eq!(
        h.keys().await,
        vec![CUSTOMER.to_owned()],
        "same start: the smaller SID wins"
    );
    let m = &h.messages(CUSTOMER).await[0];
    assert_eq!(m.root.call.sid.as_str(), sid(1));
    assert_eq!(leg_sids(m), vec![sid(2), sid(3), sid(4)]);
    assert_eq!(m.actual_direction, ActualDirection::Outbound);
    let counts = h.store.counts().await.expect("counts");
    assert_eq!(
        (counts.contacts, counts.conversations, counts.calls),
        (1, 1, 4)
    );
}

/// The sync lock of a fresh store can be taken, released and taken again;
/// a sync releases it when done.
pub async fn sync_lock_is_taken_and_released(store: Arc<dyn Store>) {
    assert!(
        store.try_lock_sync().await.expect("lock"),
        "a fresh store's lock is free"
    );
    store.unlock_sync().await.expect("unlock");
    assert!(store.try_lock_sync().await.expect("lock again"));
    store.unlock_sync().await.expect("unlock again");
    let h = Harness::new(store);
    h.mock.set_calls([inbound(&sid(1), CUSTOMER, 0, 10)]);
    h.sync_all().await;
    assert!(
        h.store.try_lock_sync().await.expect("lock after a sync"),
        "the sync released its lock"
    );
    h.store.unlock_sync().await.expect("unlock");
    h.sync_all().await;
}

/// Owned numbers are listed from Twilio at each sync (and cached): with
/// them the company number is internal.
pub async fn owned_numbers_come_from_twilio(store: Arc<dyn Store>) {
    let h = Harness::with(
        store,
        MockTwilio::new().with_owned_numbers(["(617) 500-6181"]),
        PartyRules::default(),
    );
    h.mock.set_calls([
        CallBuilder::new(&sid(1))
            .from(DISPATCHER)
            .to(COMPANY)
            .start(at(0))
            .duration(60)
            .build(),
        CallBuilder::new(&sid(2))
            .from(COMPANY)
            .to(CUSTOMER)
            .direction("outbound-dial")
            .start(at_secs(2))
            .duration(50)
            .parent(&sid(1))
            .build(),
        CallBuilder::new(&sid(3))
            .from(CUSTOMER2)
            .to(COMPANY)
            .direction("inbound")
            .start(at(5))
            .duration(9)
            .build(),
    ]);
    h.sync_all().await;
    assert_eq!(
        h.keys().await,
        vec![CUSTOMER2.to_owned(), CUSTOMER.to_owned()]
    );
    let m = &h.messages(CUSTOMER).await[0];
    assert_eq!(m.actual_direction, ActualDirection::Outbound);
    let cached = h
        .store
        .read_cursor(OWNED_NUMBERS_CURSOR)
        .await
        .expect("read cursor")
        .expect("the owned numbers are cached");
    let cached: Vec<String> = serde_json::from_str(&cached).expect("a JSON array");
    assert_eq!(cached, vec![COMPANY.to_owned()]);
    let rules = h.engine.cached_rules().await.expect("cached rules");
    assert!(rules.owned.contains(COMPANY));
}

/// Numbers outside the NANP display in international format (section 1).
pub async fn international_numbers_display_internationally(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    h.ingest(vec![
        inbound(&sid(1), "+44 20 7946 0958", 0, 10),
        inbound(&sid(2), "sip:+442079460958@acme.sip.twilio.com", 1, 10),
        inbound(&sid(3), "+33142685300", 2, 10),
    ])
    .await;
    assert_eq!(
        h.keys().await,
        vec!["+33142685300".to_owned(), UK_CUSTOMER.to_owned()]
    );
    let uk = h.conversation(UK_CUSTOMER).await;
    assert_eq!(uk.conversation.external_id, UK_CUSTOMER_DISPLAY);
    assert_eq!(
        uk.contact.formatted_number.as_deref(),
        Some(UK_CUSTOMER_DISPLAY)
    );
    assert_eq!(uk.conversation.counters.total_calls, 2);
    assert_eq!(
        h.conversation("+33142685300")
            .await
            .conversation
            .external_id,
        "+33 1 42 68 53 00"
    );
}

/// Messages are newest first by start time, ties by SID descending, calls
/// without a start time last (section 4).
pub async fn messages_newest_first_unstarted_last(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    h.ingest(vec![
        inbound(&sid(1), CUSTOMER, 10, 1),
        inbound(&sid(2), CUSTOMER, 30, 1),
        CallBuilder::new(&sid(3))
            .from(CUSTOMER)
            .to(COMPANY)
            .status("queued")
            .build(),
        inbound(&sid(4), CUSTOMER, 20, 1),
        inbound(&sid(5), CUSTOMER, 40, 1),
        inbound(&sid(6), CUSTOMER, 40, 1),
    ])
    .await;
    let order: Vec<String> = h
        .messages(CUSTOMER)
        .await
        .iter()
        .map(|m| m.root.call.sid.to_string())
        .collect();
    assert_eq!(order, vec![sid(6), sid(5), sid(2), sid(4), sid(1), sid(3)]);
    let view = h.conversation(CUSTOMER).await;
    assert_eq!(view.conversation.counters.last_message_at, Some(at(40)));
    assert_eq!(
        view.conversation
            .counters
            .last_root_sid
            .as_ref()
            .map(CallSid::as_str),
        Some(sid(6).as_str())
    );
    assert_eq!(
        view.last_message.map(|m| m.root.call.sid.to_string()),
        Some(sid(6))
    );
}

/// The conversations list: newest activity first (a conversation without
/// any start time last), `limit`/`offset` pages, `total`.
pub async fn conversations_ordered_by_activity_and_paged(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let numbers: Vec<String> = (1..=5).map(|i| format!("+1978555{i:04}")).collect();
    let mut calls: Vec<Call> = numbers
        .iter()
        .enumerate()
        .map(|(i, n)| inbound(&sid(i as u64 + 1), n, i as i64, 10))
        .collect();
    calls.push(
        CallBuilder::new(&sid(9))
            .from("+19785550009")
            .to(COMPANY)
            .status("queued")
            .build(),
    );
    h.ingest(calls).await;

    let page = |limit, offset| {
        let store = h.store.clone();
        async move {
            let page = store
                .list_conversations(&ConversationQuery::page(limit, offset))
                .await
                .expect("list");
            let keys: Vec<String> = page
                .conversations
                .into_iter()
                .map(|v| v.contact.phone_number)
                .collect();
            (keys, page.total)
        }
    };
    let all = vec![
        numbers[4].clone(),
        numbers[3].clone(),
        numbers[2].clone(),
        numbers[1].clone(),
        numbers[0].clone(),
        "+19785550009".to_owned(),
    ];
    assert_eq!(page(2, 0).await, (all[0..2].to_vec(), 6));
    assert_eq!(page(2, 2).await, (all[2..4].to_vec(), 6));
    assert_eq!(page(2, 4).await, (all[4..6].to_vec(), 6));
    assert_eq!(page(20, 0).await, (all.clone(), 6));
    assert_eq!(page(20, 3).await, (all[3..].to_vec(), 6));
    assert_eq!(page(5, 6).await, (vec![], 6));
    assert_eq!(page(5, 100).await, (vec![], 6));
    let unstarted = h.conversation("+19785550009").await;
    assert_eq!(unstarted.conversation.counters.last_message_at, None);

    // New activity moves a conversation to the top.
    h.ingest(vec![inbound(&sid(20), &numbers[0], 60, 5)]).await;
    let (keys, _) = page(1, 0).await;
    assert_eq!(keys, vec![numbers[0].clone()]);
}

/// The list's position key, for comparing orders.
fn position(v: &crate::store::ConversationView) -> (Option<chrono::DateTime<Utc>>, ConversationId) {
    (v.conversation.counters.last_message_at, v.conversation.id)
}

fn ids(views: &[crate::store::ConversationView]) -> Vec<ConversationId> {
    views.iter().map(|v| v.conversation.id).collect()
}

/// Conversations for the cursor tests: three calling at the same minute
/// (a tie on `last_message_at`), others at distinct minutes, and three
/// without any start time (`last_message_at` NULL, listed last by id).
fn cursor_fixture() -> Vec<Call> {
    let mut calls = Vec::new();
    for i in 0..4 {
        calls.push(inbound(
            &sid(100 + i),
            &format!("+1978555{:04}", 100 + i),
            10,
            5,
        ));
    }
    for i in 0..3 {
        // The tie: minute 20.
        calls.push(inbound(
            &sid(200 + i),
            &format!("+1978555{:04}", 200 + i),
            20,
            5,
        ));
    }
    for i in 0..3 {
        calls.push(inbound(
            &sid(300 + i),
            &format!("+1978555{:04}", 300 + i),
            30 + i as i64,
            5,
        ));
    }
    for i in 0..3 {
        calls.push(
            CallBuilder::new(&sid(400 + i))
                .from(&format!("+1978555{:04}", 400 + i))
                .to(COMPANY)
                .direction("inbound")
                .status("queued")
                .build(),
        );
    }
    calls
}

/// Keyset pages: following `next_cursor` gives exactly the offset order,
/// with no duplicate and no gap, for every page size; through ties on
/// `last_message_at`, into and through the rows without one. `next_cursor`
/// is `None` exactly on the last page; a cursor with an offset is
/// `Invalid`; a cursor whose row is gone still marks a position.
pub async fn conversations_paged_by_cursor(store: Arc<dyn Store>) {
    use crate::store::ConversationCursor;
    use crate::testkit::{all_conversations, walk_by_cursor};

    let h = Harness::new(store);
    h.ingest(cursor_fixture()).await;
    let all = all_conversations(h.store.as_ref()).await.expect("list");
    assert_eq!(all.len(), 13);
    let nulls = all
        .iter()
        .filter(|v| v.conversation.counters.last_message_at.is_none())
        .count();
    assert_eq!(nulls, 3, "the fixture has rows without activity");
    let tie = all
        .iter()
        .filter(|v| v.conversation.counters.last_message_at == Some(at(20)))
        .count();
    assert_eq!(tie, 3, "the fixture has a tie on last_message_at");

    for limit in [1_u32, 2, 3, 4, 5, 12, 13, 14, 200] {
        let walked = walk_by_cursor(h.store.as_ref(), &ConversationQuery::page(limit, 0))
            .await
            .unwrap_or_else(|e| panic!("walk in pages of {limit}: {e}"));
        assert_eq!(ids(&walked), ids(&all), "pages of {limit}");
        assert_eq!(walked, all, "pages of {limit}");
    }

    // Page by page: next_cursor is Some exactly while rows remain, and the
    // total is the whole list's on every page.
    let mut query = ConversationQuery::page(4, 0);
    let mut seen = Vec::new();
    loop {
        let page = h.store.list_conversations(&query).await.expect("page");
        assert_eq!(page.total, 13);
        seen.extend(page.conversations.iter().map(|v| v.conversation.id));
        let more = seen.len() < all.len();
        assert_eq!(
            page.next_cursor.is_some(),
            more,
            "after {} rows",
            seen.len()
        );
        match page.next_cursor {
            Some(cursor) => query = ConversationQuery::page(4, 0).with_cursor(cursor),
            None => break,
        }
    }
    assert_eq!(seen, ids(&all));

    // An offset page hands out the cursor of its last row too.
    let offset_page = h
        .store
        .list_conversations(&ConversationQuery::page(3, 5))
        .await
        .expect("offset page");
    assert_eq!(
        offset_page.next_cursor,
        Some(ConversationCursor::after(&all[7].conversation))
    );
    let exact = h
        .store
        .list_conversations(&ConversationQuery::page(3, 10))
        .await
        .expect("last offset page");
    assert_eq!(ids(&exact.conversations), ids(&all[10..]));
    assert_eq!(exact.next_cursor, None, "a last page that is full");

    // Any position, including one whose row does not exist: the rows after it.
    let mut positions: Vec<ConversationCursor> = all
        .iter()
        .map(|v| ConversationCursor::after(&v.conversation))
        .collect();
    let ghost = ConversationId(all.iter().map(|v| v.conversation.id.0).max().unwrap_or(0) + 100);
    positions.extend([
        ConversationCursor::new(Some(at(20)), ghost),
        ConversationCursor::new(Some(at(20)), ConversationId(0)),
        ConversationCursor::new(Some(at(25)), ConversationId(1)),
        ConversationCursor::new(Some(at(1_000)), ghost),
        ConversationCursor::new(Some(at(-1_000)), ConversationId(1)),
        ConversationCursor::new(None, ghost),
        ConversationCursor::new(None, ConversationId(1)),
    ]);
    for cursor in positions {
        let page = h
            .store
            .list_conversations(&ConversationQuery::page(200, 0).with_cursor(cursor))
            .await
            .expect("page after a cursor");
        let expected: Vec<ConversationId> = all
            .iter()
            .filter(|v| {
                let (t, id) = position(v);
                cursor.precedes(t, id)
            })
            .map(|v| v.conversation.id)
            .collect();
        assert_eq!(ids(&page.conversations), expected, "after {cursor:?}");
        assert_eq!(page.total, 13);
        assert_eq!(page.next_cursor, None);
    }

    // A cursor and an offset together are refused.
    let cursor = ConversationCursor::after(&all[2].conversation);
    match h
        .store
        .list_conversations(&ConversationQuery::page(5, 3).with_cursor(cursor))
        .await
    {
        Err(StoreError::Invalid(message)) => assert!(message.contains("offset"), "{message}"),
        other => panic!("cursor with offset: expected Invalid, got {other:?}"),
    }
}

/// Keyset pages combine with every filter: following `next_cursor` of a
/// filtered list gives exactly its offset order, and `total` counts every
/// match on every page.
pub async fn cursor_pages_combine_with_filters(store: Arc<dyn Store>) {
    use crate::store::{Search, StatusFilter};
    use crate::testkit::{all_conversations, walk_by_cursor};
    use crate::Normalizer;

    let h = Harness::new(store);
    let mut calls = cursor_fixture();
    // Missed and outbound calls, two of them tied at minute 20, and one
    // number from another area.
    for i in 0..4_u64 {
        let missed = CallBuilder::new(&sid(500 + i))
            .from(&format!("+1617555{:04}", 500 + i))
            .to(COMPANY)
            .direction("inbound")
            .status("no-answer")
            .start(at(if i < 2 { 20 } else { 40 + i as i64 }))
            .build();
        calls.push(missed);
        let outbound = CallBuilder::new(&sid(600 + i))
            .from(COMPANY)
            .to(&format!("+1978555{:04}", 600 + i))
            .direction("outbound-api")
            .status("completed")
            .start(at(if i < 2 { 20 } else { 50 + i as i64 }))
            .duration(30)
            .build();
        calls.push(outbound);
    }
    h.ingest(calls).await;
    let everything = all_conversations(h.store.as_ref()).await.expect("list");
    assert_eq!(everything.len(), 21);

    let normalizer = Normalizer::default();
    let queries = [
        ConversationQuery::page(2, 0).with_status(StatusFilter::Missed),
        ConversationQuery::page(1, 0).with_status(StatusFilter::Answered),
        ConversationQuery::page(3, 0).with_status(StatusFilter::InProgress),
        ConversationQuery::page(2, 0).with_direction(ActualDirection::Outbound),
        ConversationQuery::page(4, 0).with_direction(ActualDirection::Inbound),
        ConversationQuery::page(2, 0).with_search(Search::new("978555", &normalizer)),
        ConversationQuery::page(2, 0).with_search(Search::new("617-555", &normalizer)),
        ConversationQuery::page(2, 0).with_since(at(20)),
        ConversationQuery::page(2, 0).with_until(at(31)),
        ConversationQuery::page(2, 0)
            .with_since(at(20))
            .with_until(at(45)),
        ConversationQuery::page(1, 0)
            .with_direction(ActualDirection::Inbound)
            .with_status(StatusFilter::Missed)
            .with_since(at(15)),
        ConversationQuery::page(3, 0)
            .with_search(Search::new("+1 978", &normalizer))
            .with_status(StatusFilter::InProgress),
    ];
    for query in queries {
        // The reference: offset pages of the same filtered list.
        let mut by_offset = Vec::new();
        let total = loop {
            let mut q = query.clone();
            q.offset = by_offset.len() as u64;
            let page = h.store.list_conversations(&q).await.expect("offset page");
            if page.conversations.is_empty() {
                break page.total;
            }
            by_offset.extend(page.conversations);
        };
        assert!(!by_offset.is_empty(), "{query:?} matches something");
        assert_eq!(total, by_offset.len() as u64, "{query:?}");
        let walked = walk_by_cursor(h.store.as_ref(), &query)
            .await
            .unwrap_or_else(|e| panic!("{query:?}: {e}"));
        assert_eq!(ids(&walked), ids(&by_offset), "{query:?}");
        // Every filtered list is a sub-sequence of the whole list.
        let order: Vec<ConversationId> = ids(&everything)
            .into_iter()
            .filter(|id| by_offset.iter().any(|v| v.conversation.id == *id))
            .collect();
        assert_eq!(order, ids(&by_offset), "{query:?}");
        // Each cursor page's total is the filtered total.
        let first = h
            .store
            .list_conversations(&query)
            .await
            .expect("first page");
        if let Some(cursor) = first.next_cursor {
            let second = h
                .store
                .list_conversations(&query.clone().with_cursor(cursor))
                .await
                .expect("second page");
            assert_eq!(second.total, by_offset.len() as u64, "{query:?}");
        }
    }
}

/// Rows written between two page requests never make a cursor walk list a
/// conversation twice: the pages after a cursor hold exactly the current
/// list's rows after its position (a conversation with new activity moves
/// to the top, before the cursor; new conversations without activity come
/// after it).
pub async fn cursor_pages_survive_writes_between_requests(store: Arc<dyn Store>) {
    use crate::testkit::all_conversations;

    let h = Harness::new(store);
    h.ingest(cursor_fixture()).await;
    let before = all_conversations(h.store.as_ref()).await.expect("list");
    let query = ConversationQuery::page(3, 0);
    let first = h.store.list_conversations(&query).await.expect("page 1");
    let second = h
        .store
        .list_conversations(&query.clone().with_cursor(first.next_cursor.expect("more")))
        .await
        .expect("page 2");
    let mut listed = ids(&first.conversations);
    listed.extend(ids(&second.conversations));
    assert_eq!(listed, ids(&before[..6]));
    let cursor = second.next_cursor.expect("more after page 2");

    // New conversations at the top, new activity on a listed conversation
    // and on one not listed yet, a new conversation without activity, and
    // a new call tied with the cursor's own time.
    let listed_key = before[1].contact.phone_number.clone();
    let unlisted_key = before[8].contact.phone_number.clone();
    h.ingest(vec![
        inbound(&sid(700), "+19785550700", 100, 5),
        inbound(&sid(701), "+19785550701", 101, 5),
        inbound(&sid(702), &listed_key, 102, 5),
        inbound(&sid(703), &unlisted_key, 103, 5),
        inbound(&sid(704), "+19785550704", 20, 5),
        CallBuilder::new(&sid(705))
            .from("+19785550705")
            .to(COMPANY)
            .direction("inbound")
            .status("ringing")
            .build(),
    ])
    .await;
    let after = all_conversations(h.store.as_ref()).await.expect("list");
    assert_eq!(after.len(), before.len() + 4);

    let mut rest = Vec::new();
    let mut next = Some(cursor);
    while let Some(cursor) = next {
        let page = h
            .store
            .list_conversations(&query.clone().with_cursor(cursor))
            .await
            .expect("later page");
        assert_eq!(page.total, after.len() as u64);
        rest.extend(ids(&page.conversations));
        next = page.next_cursor;
    }
    let expected: Vec<ConversationId> = after
        .iter()
        .filter(|v| {
            let (t, id) = position(v);
            cursor.precedes(t, id)
        })
        .map(|v| v.conversation.id)
        .collect();
    assert_eq!(rest, expected);
    listed.extend(rest);
    let mut unique = listed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        listed.len(),
        "a conversation was listed twice: {listed:?}"
    );
    // Whatever did not move is listed exactly once.
    let unlisted = h.id(&unlisted_key).await;
    for v in &before {
        if v.conversation.id != unlisted {
            assert!(
                listed.contains(&v.conversation.id),
                "{} is missing",
                v.conversation.id
            );
        }
    }
    // The new conversation without activity comes after the cursor.
    let ringing = h.id("+19785550705").await;
    assert!(listed.contains(&ringing));
}

/// Unknown conversation ids are `NotFound`, never an empty success.
pub async fn unknown_conversation_is_not_found(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    h.ingest(vec![inbound(&sid(1), CUSTOMER, 0, 10)]).await;
    let unknown = ConversationId(h.id(CUSTOMER).await.0 + 1_000_000);
    assert_not_found(h.store.conversation(unknown).await, "conversation");
    assert_not_found(
        h.store.conversation_calls(unknown).await,
        "conversation_calls",
    );
    assert_not_found(
        h.store.messages(unknown, &MessageQuery::first(10)).await,
        "messages",
    );
    assert_not_found(
        h.store.conversation(ConversationId(-1)).await,
        "conversation(-1)",
    );
}

/// Named cursors: missing is `None`, writes overwrite, names are independent.
pub async fn cursors_round_trip(store: Arc<dyn Store>) {
    assert_eq!(store.read_cursor("watermark").await.expect("read"), None);
    store
        .write_cursor("watermark", "2026-02-06T15:00:00+00:00")
        .await
        .expect("write");
    assert_eq!(
        store
            .read_cursor("watermark")
            .await
            .expect("read")
            .as_deref(),
        Some("2026-02-06T15:00:00+00:00")
    );
    store
        .write_cursor("watermark", "2026-02-07T00:00:00+00:00")
        .await
        .expect("overwrite");
    assert_eq!(
        store
            .read_cursor("watermark")
            .await
            .expect("read")
            .as_deref(),
        Some("2026-02-07T00:00:00+00:00")
    );
    let long = format!("[{}]", vec!["\"+19788447773\""; 200].join(","));
    store
        .write_cursor("owned_numbers", &long)
        .await
        .expect("write");
    assert_eq!(
        store.read_cursor("owned_numbers").await.expect("read"),
        Some(long)
    );
    store
        .write_cursor("ünïcode ☎", "välue ☎")
        .await
        .expect("write");
    assert_eq!(
        store
            .read_cursor("ünïcode ☎")
            .await
            .expect("read")
            .as_deref(),
        Some("välue ☎")
    );
    assert_eq!(
        store
            .read_cursor("watermark")
            .await
            .expect("read")
            .as_deref(),
        Some("2026-02-07T00:00:00+00:00")
    );
    assert_eq!(store.read_cursor("other").await.expect("read"), None);
}

/// `unfinished_calls` lists the calls whose status is not final, oldest
/// first (no start time first), limited.
pub async fn unfinished_calls_lists_non_final(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let b = |n: u64, status: &str| {
        CallBuilder::new(&sid(n))
            .from(CUSTOMER)
            .to(COMPANY)
            .status(status)
    };
    h.ingest(vec![
        b(1, "ringing").start(at(5)).build(),
        b(2, "in-progress").start(at(1)).build(),
        b(3, "queued").build(),
        b(4, "completed").start(at(0)).duration(3).build(),
        b(5, "on-hold").start(at(3)).build(),
        b(6, "no-answer").start(at(2)).build(),
        b(7, "busy").start(at(2)).build(),
        b(8, "failed").start(at(2)).build(),
        b(9, "canceled").start(at(2)).build(),
        b(10, "initiated").start(at(1)).build(),
        CallBuilder::new(&sid(11))
            .from(COMPANY)
            .to(AGENT_SIP)
            .direction("outbound-dial")
            .status("ringing")
            .start(at(5))
            .parent(&sid(1))
            .build(),
    ])
    .await;
    let listed: Vec<String> = h
        .store
        .unfinished_calls(&crate::store::UnfinishedQuery::any(100))
        .await
        .expect("unfinished")
        .iter()
        .map(|c| c.call.sid.to_string())
        .collect();
    // Newest first (a new unfinished call is never kept waiting behind
    // old ones), calls without a start time first, then by SID.
    assert_eq!(
        listed,
        vec![sid(3), sid(11), sid(1), sid(5), sid(10), sid(2)]
    );
    let limited = h
        .store
        .unfinished_calls(&crate::store::UnfinishedQuery::any(2))
        .await
        .expect("unfinished");
    assert_eq!(
        limited
            .iter()
            .map(|c| c.call.sid.to_string())
            .collect::<Vec<_>>(),
        vec![sid(3), sid(11)]
    );
    // Each listed call comes back whole.
    let leg = h
        .store
        .unfinished_calls(&crate::store::UnfinishedQuery::any(100))
        .await
        .expect("unfinished")
        .into_iter()
        .find(|c| c.call.sid.as_str() == sid(11))
        .expect("a call");
    assert_eq!(leg.root_sid.as_str(), sid(1));
    assert!(leg.derived.merged_from_parent);
}

/// An incremental sync looks again at stored calls that are not final and
/// started before its window: one still ringing in the store but completed
/// in Twilio is updated; one Twilio no longer has is kept and reported.
pub async fn incremental_sync_refreshes_unfinished_calls(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let now = Utc::now().with_nanosecond(0).expect("valid");
    let old = now - Duration::days(30);
    let ringing = CallBuilder::new(&sid(1))
        .from(CUSTOMER)
        .to(COMPANY)
        .status("ringing")
        .start(old)
        .updated(old + Duration::seconds(2))
        .build();
    let gone = CallBuilder::new(&sid(2))
        .from(CUSTOMER2)
        .to(COMPANY)
        .status("in-progress")
        .start(old + Duration::minutes(1))
        .build();
    h.ingest(vec![ringing.clone(), gone]).await;
    assert_eq!(
        h.store
            .unfinished_calls(&crate::store::UnfinishedQuery::any(10))
            .await
            .expect("unfinished")
            .len(),
        2
    );

    h.mock.upsert(
        CallBuilder::from_call(&ringing)
            .status("completed")
            .duration(40)
            .end(old + Duration::seconds(45))
            .price("-0.014")
            .updated(old + Duration::seconds(50))
            .build(),
    );
    let recent = inbound(&sid(3), UK_CUSTOMER, 0, 10);
    let recent = CallBuilder::from_call(&recent)
        .start(now - Duration::hours(1))
        .build();
    h.mock.upsert(recent);

    let report = h.sync(SyncMode::incremental()).await;
    assert_eq!(report.refreshed, 1, "{report:?}");
    assert_eq!(report.inserted, 1, "the recent call is listed: {report:?}");
    assert_eq!(report.updated, 1, "{report:?}");
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.sid.as_deref() == Some(sid(2).as_str())),
        "the call Twilio no longer has is reported: {report:?}"
    );
    let (_, row) = h.located(&sid(1)).await;
    assert_eq!(row.call.status, CallStatus::Completed);
    assert_eq!(row.call.duration, Some(40));
    assert_eq!(row.derived.display_status, "completed");
    assert_eq!(
        h.conversation(CUSTOMER)
            .await
            .conversation
            .counters
            .total_duration,
        40
    );
    let (_, kept) = h.located(&sid(2)).await;
    assert_eq!(
        kept.call.status,
        CallStatus::InProgress,
        "the stored copy is kept"
    );
    assert!(h
        .store
        .read_cursor(crate::sync::WATERMARK_CURSOR)
        .await
        .expect("cursor")
        .is_some());
    assert_eq!(
        sids(
            &h.store
                .unfinished_calls(&crate::store::UnfinishedQuery::any(10))
                .await
                .expect("unfinished")
        ),
        vec![sid(2)]
    );
}

/// `load_trees`: every stored call of every tree containing one of the
/// SIDs, or a call whose parent is one of them (`docs/storage.md`).
pub async fn load_trees_returns_whole_trees(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let root = inbound(&sid(1), CUSTOMER, 0, 100);
    let child = CallBuilder::new(&sid(2))
        .from(CUSTOMER)
        .to(AGENT_SIP)
        .direction("outbound-dial")
        .start(at_secs(3))
        .duration(50)
        .parent(&sid(1))
        .build();
    let grandchild = CallBuilder::new(&sid(3))
        .from(AGENT_SIP)
        .to(AGENT_CELL)
        .direction("outbound-dial")
        .start(at_secs(30))
        .duration(20)
        .parent(&sid(2))
        .build();
    let orphan = CallBuilder::new(&sid(4))
        .from(COMPANY)
        .to(CUSTOMER2)
        .direction("outbound-dial")
        .start(at(5))
        .duration(10)
        .parent(&sid(99))
        .build();
    let other = inbound(&sid(5), CUSTOMER, 7, 10);
    h.ingest(vec![root, child, grandchild, orphan, other]).await;

    let load = |list: Vec<String>| {
        let store = h.store.clone();
        async move {
            let list: Vec<CallSid> = list.into_iter().filter_map(CallSid::new).collect();
            let rows = store.load_trees(&list).await.expect("load_trees");
            for r in &rows {
                let expected = if r.call.sid.as_str() == sid(2) || r.call.sid.as_str() == sid(3) {
                    sid(1)
                } else {
                    r.call.sid.to_string()
                };
                assert_eq!(r.root_sid.as_str(), expected, "root of {}", r.call.sid);
            }
            sids(&rows)
        }
    };
    let tree = vec![sid(1), sid(2), sid(3)];
    assert_eq!(load(vec![sid(3)]).await, tree);
    assert_eq!(load(vec![sid(2)]).await, tree);
    assert_eq!(load(vec![sid(1)]).await, tree);
    assert_eq!(
        load(vec![sid(99)]).await,
        vec![sid(4)],
        "a call whose parent is asked for"
    );
    assert_eq!(load(vec![sid(4), sid(5)]).await, vec![sid(4), sid(5)]);
    assert_eq!(
        load(vec![sid(3), sid(5), sid(77)]).await,
        vec![sid(1), sid(2), sid(3), sid(5)]
    );
    assert!(load(vec![sid(77)]).await.is_empty());
}

/// `load_conversations`: by key or id, totals over rows not excluded.
pub async fn load_conversations_totals_exclude(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    h.ingest(vec![
        inbound(&sid(1), CUSTOMER, 0, 100),
        CallBuilder::new(&sid(2))
            .from(CUSTOMER)
            .to(AGENT_SIP)
            .direction("outbound-dial")
            .start(at(9))
            .duration(50)
            .parent(&sid(1))
            .build(),
        inbound(&sid(3), CUSTOMER, 5, 30),
        CallBuilder::new(&sid(4))
            .from(COMPANY)
            .to(CUSTOMER)
            .direction("outbound-api")
            .start(at(7))
            .duration(7)
            .build(),
        inbound(&sid(5), CUSTOMER2, 1, 1),
    ])
    .await;
    let id = h.id(CUSTOMER).await;
    let id2 = h.id(CUSTOMER2).await;
    let lookup =
        |keys: Vec<&str>, ids: Vec<ConversationId>, exclude: Vec<String>| ConversationLookup {
            keys: keys.into_iter().map(str::to_owned).collect(),
            ids,
            exclude: exclude.into_iter().filter_map(CallSid::new).collect(),
            exclude_texts: Vec::new(),
            external_ids: Vec::new(),
        };
    let store = h.store.clone();
    let load = |lookup: ConversationLookup| {
        let store = store.clone();
        async move {
            let mut tx = store.begin_ingest().await.expect("begin");
            let found = tx.load_conversations(&lookup).await.expect("load");
            found.conversations
        }
    };

    let states = load(lookup(vec![CUSTOMER, "+19785550000"], vec![], vec![])).await;
    assert_eq!(states.len(), 1);
    let s = &states[0];
    assert_eq!((s.id, s.key.as_str()), (id, CUSTOMER));
    assert_eq!(
        (s.rest.calls, s.rest.root_calls, s.rest.root_duration),
        (4, 3, 137)
    );
    assert_eq!(s.rest.last_call_at, Some(at(9)));
    let newest = s.rest.newest_root.as_ref().expect("newest root");
    assert_eq!(
        (newest.sid.as_str(), newest.start_time),
        (sid(4).as_str(), Some(at(7)))
    );
    assert_eq!(newest.direction, ActualDirection::Outbound);

    let states = load(lookup(vec![], vec![id], vec![sid(4), sid(2), sid(5)])).await;
    assert_eq!(states.len(), 1);
    let s = &states[0];
    assert_eq!(s.key, CUSTOMER);
    assert_eq!(
        (s.rest.calls, s.rest.root_calls, s.rest.root_duration),
        (2, 2, 130)
    );
    assert_eq!(s.rest.last_call_at, Some(at(5)));
    let newest = s.rest.newest_root.as_ref().expect("newest root");
    assert_eq!(
        (newest.sid.as_str(), newest.direction),
        (sid(3).as_str(), ActualDirection::Inbound)
    );

    let mut states = load(lookup(
        vec![CUSTOMER2],
        vec![id, id2],
        vec![sid(1), sid(2), sid(3), sid(4)],
    ))
    .await;
    states.sort_by_key(|s| s.id);
    assert_eq!(states.len(), 2, "each conversation once");
    let all_excluded = states.iter().find(|s| s.id == id).expect("by id");
    assert_eq!(all_excluded.rest, Default::default());
    let other = states.iter().find(|s| s.id == id2).expect("by key and id");
    assert_eq!((other.rest.calls, other.rest.root_duration), (1, 1));
    assert!(load(lookup(
        vec!["+19785550000"],
        vec![ConversationId(id.0 + 1_000_000)],
        vec![]
    ))
    .await
    .is_empty());
}

/// `apply` is one transaction: a plan failing half-way leaves nothing.
pub async fn apply_is_all_or_nothing(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    h.ingest(vec![inbound(&sid(1), CUSTOMER, 0, 10)]).await;
    let before = h.raw_state().await;
    let counts = h.store.counts().await.expect("counts");

    let good = inbound(&sid(2), CUSTOMER2, 1, 10);
    let bad = inbound(&sid(3), "+19785550000", 2, 10);
    let derived = Derived {
        actual_direction: ActualDirection::Inbound,
        display_status: DisplayStatus::Completed,
        merged_from_parent: false,
    };
    let plan = Plan {
        new_conversations: vec![NewConversation {
            key: CUSTOMER2.into(),
            display: CUSTOMER2_DISPLAY.into(),
            subject: format!("Calls with {CUSTOMER2_DISPLAY}"),
            external_id: CUSTOMER2_DISPLAY.into(),
        }],
        calls: vec![
            CallWrite {
                root_sid: good.sid.clone(),
                call: good,
                conversation: ConversationRef::New(CUSTOMER2.into()),
                derived: derived.clone(),
                recording_url: None,
            },
            // Names a conversation the plan does not create: the store must fail.
            CallWrite {
                root_sid: bad.sid.clone(),
                call: bad,
                conversation: ConversationRef::New("+19785550000".into()),
                derived,
                recording_url: None,
            },
        ],
        ..Plan::default()
    };
    let mut tx = h.store.begin_ingest().await.expect("begin");
    let result = tx.apply(plan).await;
    assert!(
        result.is_err(),
        "a plan writing to a conversation it does not create must fail"
    );
    drop(tx);
    assert_eq!(
        h.store.counts().await.expect("counts"),
        counts,
        "nothing of the failed plan stays"
    );
    assert_eq!(h.raw_state().await, before);
    crate::testkit::assert_invariants(h.store.as_ref()).await;
}

/// Calls Twilio never dialled have no start time, so the window's
/// `StartTime>` filter leaves them out: the sync's sweep lists them by
/// status. Those created before the window stay out; a second sync
/// changes nothing.
pub async fn never_dialled_calls_are_synced(store: Arc<dyn Store>) {
    let h = Harness::with(store, MockTwilio::new().with_page_size(2), rules());
    let undated = |n: u64, status: &str, created_min: i64| {
        CallBuilder::new(&sid(n))
            .from(CUSTOMER)
            .to(COMPANY)
            .direction("outbound-api")
            .status(status)
            .no_start()
            .no_duration()
            .created(at(created_min))
            .build()
    };
    let mut calls = vec![
        inbound(&sid(1), CUSTOMER, 0, 30),
        undated(2, "failed", 5),
        undated(3, "failed", -3 * 24 * 60),
        undated(4, "queued", 7),
        undated(5, "canceled", 9),
        undated(6, "failed", 11),
        undated(7, "failed", 12),
    ];
    for n in 8..12 {
        calls.push(
            CallBuilder::new(&sid(n))
                .from(CUSTOMER2)
                .to(COMPANY)
                .status("failed")
                .start(at(n as i64))
                .build(),
        );
    }
    h.mock.set_calls(calls);
    let first = h.sync_all().await;
    for n in [1, 2, 4, 5, 6, 7, 8, 9, 10, 11] {
        assert!(
            h.row(&sid(n)).await.is_some(),
            "call {n} was not synced: {first:?}"
        );
    }
    assert!(
        h.row(&sid(3)).await.is_none(),
        "an undated call created before the window is outside it"
    );
    assert_eq!(first.inserted, 10, "{first:?}");
    assert!(first.outside_window >= 1, "{first:?}");
    let (_, row) = h.located(&sid(4)).await;
    assert_eq!(row.call.start_time, None);
    let second = h.sync_all().await;
    assert_eq!((second.inserted, second.updated), (0, 0), "{second:?}");
}

/// Edits one stored contact or call in its own transaction.
async fn edit_contact(
    store: &Arc<dyn Store>,
    id: i64,
    edit: serde_json::Value,
    expected: Option<i64>,
) -> Result<crate::store::ContactRecord, StoreError> {
    let edit = crate::annotations::ContactEdit::from_json(&edit).expect("a valid edit");
    let meta = crate::annotations::EditMeta {
        by: Some("tester".into()),
        at: at(500),
    };
    let mut tx = store.begin_ingest().await?;
    let record = tx.edit_contact(id, &edit, expected, &meta).await?;
    tx.commit().await?;
    Ok(record)
}

async fn edit_call(
    store: &Arc<dyn Store>,
    id: i64,
    edit: serde_json::Value,
    expected: Option<i64>,
) -> Result<crate::annotations::Annotations, StoreError> {
    let edit = crate::annotations::CallEdit::from_json(&edit).expect("a valid edit");
    let meta = crate::annotations::EditMeta {
        by: None,
        at: at(501),
    };
    let mut tx = store.begin_ingest().await?;
    let annotations = tx.edit_call(id, &edit, expected, &meta).await?;
    tx.commit().await?;
    Ok(annotations)
}

/// What people write (a contact's name, company, notes and tags; a call's
/// notes and tags) survives every sync: re-syncs of the same and of newer
/// versions, and a parent arriving late that moves an annotated leg into
/// another conversation and empties the edited contact's conversation.
pub async fn edits_survive_syncs_and_moves(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let (parent, cell, sip) = forwarded(1);
    // The cell leg arrives alone: it is a root in the agent's conversation.
    h.ingest(vec![cell.clone(), inbound(&sid(10), CUSTOMER, 30, 5)])
        .await;
    let agent = h.conversation(AGENT_CELL).await;
    let customer = h.conversation(CUSTOMER).await;
    let (_, leg_row) = h.located(&sid(2)).await;
    let (_, other_row) = h.located(&sid(10)).await;

    let agent_contact = edit_contact(
        &h.store,
        agent.contact.id,
        json!({"name": "Agent Kim", "notes": "on call Fridays", "tags": ["staff"]}),
        None,
    )
    .await
    .expect("edit the agent");
    assert_eq!(agent_contact.display_name.as_deref(), Some("Agent Kim"));
    assert_eq!(agent_contact.annotations.version, 2);
    assert_eq!(
        agent_contact.annotations.edited_by.as_deref(),
        Some("tester")
    );
    let named = edit_contact(
        &h.store,
        customer.contact.id,
        json!({"name": "Mrs Alvarez", "company_name": "Alvarez Plumbing", "tags": ["VIP", "quote"]}),
        Some(1),
    )
    .await
    .expect("edit the customer");
    assert_eq!(named.company_name.as_deref(), Some("Alvarez Plumbing"));
    let leg_notes = edit_call(
        &h.store,
        leg_row.id,
        json!({"notes": "quoted $240", "tags": ["quote"]}),
        None,
    )
    .await
    .expect("note the leg");
    assert_eq!(leg_notes.version, 2);
    edit_call(
        &h.store,
        other_row.id,
        json!({"tags": ["complaint"]}),
        Some(1),
    )
    .await
    .expect("tag the call");

    // A re-sync of the same calls, a newer version of one, and the parent
    // arriving: the leg moves under it, the agent's conversation empties.
    let mut newer = CallBuilder::from_call(&inbound(&sid(10), CUSTOMER, 30, 5))
        .duration(9)
        .updated(at(45))
        .build();
    newer.refresh_raw();
    h.ingest(vec![cell.clone(), newer]).await;
    h.ingest(vec![parent, sip]).await;
    assert!(
        h.find(AGENT_CELL).await.is_none(),
        "the agent's conversation emptied"
    );

    let (key, leg_after) = h.located(&sid(2)).await;
    assert_eq!(key, CUSTOMER, "the leg moved under its parent");
    assert_eq!(leg_after.id, leg_row.id, "the same row");
    assert_eq!(leg_after.annotations.notes.as_deref(), Some("quoted $240"));
    assert_eq!(leg_after.annotations.tags, ["quote"]);
    let (_, other_after) = h.located(&sid(10)).await;
    assert_eq!(
        other_after.call.duration,
        Some(9),
        "the sync updated the call"
    );
    assert_eq!(
        other_after.annotations.tags,
        ["complaint"],
        "and kept its tags"
    );

    let customer_after = h.conversation(CUSTOMER).await;
    assert_eq!(
        customer_after.contact.display_name.as_deref(),
        Some("Mrs Alvarez")
    );
    assert_eq!(customer_after.contact.annotations.tags, ["VIP", "quote"]);
    // The edited agent contact is kept although no conversation uses it now.
    let agent_kept = h.store.contact(agent.contact.id).await.expect("kept");
    assert_eq!(agent_kept.display_name.as_deref(), Some("Agent Kim"));
    assert_eq!(
        agent_kept.annotations.notes.as_deref(),
        Some("on call Fridays")
    );
    crate::testkit::assert_invariants(h.store.as_ref()).await;

    // The messages show the call's notes through the API's read path.
    assert!(
        matches!(
            h.store.message(leg_after.id).await,
            Err(StoreError::NotFound(_))
        ),
        "a leg is not a message of its own"
    );
    let (cid, root) = h
        .store
        .message(h.located(&sid(1)).await.1.id)
        .await
        .expect("the parent's message");
    assert_eq!(cid, customer_after.conversation.id);
    assert_eq!(root.legs.len(), 2);
    assert!(root
        .legs
        .iter()
        .any(|l| l.annotations.notes.as_deref() == Some("quoted $240")));
}

/// An edit made on a version that is no longer current changes nothing
/// and says so; unknown ids are `NotFound`; clearing a name shows the
/// number again.
pub async fn stale_edits_are_refused(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    h.ingest(vec![inbound(&sid(1), CUSTOMER, 0, 10)]).await;
    let view = h.conversation(CUSTOMER).await;
    let id = view.contact.id;
    assert_eq!(view.contact.annotations.version, 1);
    edit_contact(&h.store, id, json!({"notes": "first"}), Some(1))
        .await
        .expect("the first edit");
    let stale = edit_contact(&h.store, id, json!({"notes": "second"}), Some(1)).await;
    assert!(matches!(stale, Err(StoreError::Stale(_))), "{stale:?}");
    let now = h.store.contact(id).await.expect("contact");
    assert_eq!(now.annotations.notes.as_deref(), Some("first"));
    assert_eq!(now.annotations.version, 2);
    // Without a version the last write wins.
    edit_contact(&h.store, id, json!({"name": "Someone"}), None)
        .await
        .expect("no If-Match");
    let cleared = edit_contact(&h.store, id, json!({"name": null}), Some(3))
        .await
        .expect("clear the name");
    assert_eq!(cleared.display_name.as_deref(), Some(CUSTOMER_DISPLAY));
    assert!(matches!(
        edit_contact(&h.store, id + 1_000_000, json!({"notes": "x"}), None).await,
        Err(StoreError::NotFound(_))
    ));
    let (_, row) = h.located(&sid(1)).await;
    assert!(matches!(
        edit_call(&h.store, row.id, json!({"notes": "x"}), Some(7)).await,
        Err(StoreError::Stale(_))
    ));
    assert!(matches!(
        edit_call(&h.store, row.id + 1_000_000, json!({"notes": "x"}), None).await,
        Err(StoreError::NotFound(_))
    ));
}

/// A search finds a term inside any field, in any case, whether or not a
/// trigram index can narrow it (terms of three characters or more without
/// a character JSON escapes; shorter ones and others read every contact),
/// after edits and renames; a term spanning two fields finds nothing.
pub async fn search_finds_terms_inside_every_field(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    h.ingest(vec![
        inbound(&sid(1), CUSTOMER, 0, 10),
        inbound(&sid(2), CUSTOMER2, 1, 10),
    ])
    .await;
    let c1 = h.conversation(CUSTOMER).await;
    edit_contact(
        &h.store,
        c1.contact.id,
        json!({"name": "Dana Whitfield", "company_name": "Acme Rooter",
               "notes": "gate code 4471", "tags": ["late \"payer\"", "VIP"]}),
        None,
    )
    .await
    .expect("edit");
    let normalizer = crate::endpoint::Normalizer::default();
    let found = |text: &str| {
        let store = h.store.clone();
        let query = ConversationQuery::page(50, 0)
            .with_search(crate::store::Search::new(text, &normalizer));
        async move {
            let page = store.list_conversations(&query).await.expect("list");
            assert_eq!(page.total as usize, page.conversations.len());
            let mut keys: Vec<String> = page
                .conversations
                .into_iter()
                .map(|v| v.contact.phone_number)
                .collect();
            keys.sort();
            keys
        }
    };
    for text in [
        "itfiel",
        "WHITFIELD",
        "acme roo",
        "4471",
        "gate",
        "payer",
        "\"payer\"",
        "vip",
        "Da",
    ] {
        assert_eq!(found(text).await, [CUSTOMER], "{text:?}");
    }
    assert!(found("WhitfieldAcme").await.is_empty(), "across two fields");
    assert!(found("zzz").await.is_empty());
    let middle = &CUSTOMER2[4..9];
    assert_eq!(found(middle).await, [CUSTOMER2], "digits inside a number");

    // Renamed: the old name no longer finds the contact, the new one does.
    let c1 = h.conversation(CUSTOMER).await;
    edit_contact(
        &h.store,
        c1.contact.id,
        json!({"name": "Dana Okafor"}),
        Some(c1.contact.annotations.version),
    )
    .await
    .expect("rename");
    assert!(found("itfiel").await.is_empty());
    assert_eq!(found("okafo").await, [CUSTOMER]);
}

/// Search finds conversations by what people wrote (contact name,
/// company, notes, tags; calls' notes and tags), the tag filter matches
/// tags case-insensitively on the contact or any call, and `tags()` counts
/// them.
pub async fn annotations_are_searchable(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    h.ingest(vec![
        inbound(&sid(1), CUSTOMER, 0, 10),
        inbound(&sid(2), CUSTOMER2, 1, 10),
        inbound(&sid(3), UK_CUSTOMER, 2, 10),
    ])
    .await;
    let c1 = h.conversation(CUSTOMER).await;
    let c2 = h.conversation(CUSTOMER2).await;
    edit_contact(
        &h.store,
        c1.contact.id,
        json!({"name": "Mrs Alvarez", "company_name": "Alvarez Plumbing", "tags": ["VIP"]}),
        None,
    )
    .await
    .expect("edit");
    let (_, row2) = h.located(&sid(2)).await;
    edit_call(
        &h.store,
        row2.id,
        json!({"notes": "Boiler quote, call back Friday", "tags": ["Quote", "vip"]}),
        None,
    )
    .await
    .expect("edit");

    let normalizer = crate::endpoint::Normalizer::default();
    let keys = |query: ConversationQuery| {
        let store = h.store.clone();
        async move {
            let mut keys: Vec<String> = store
                .list_conversations(&query)
                .await
                .expect("list")
                .conversations
                .into_iter()
                .map(|v| v.contact.phone_number)
                .collect();
            keys.sort();
            keys
        }
    };
    let search = |text: &str| {
        ConversationQuery::page(50, 0).with_search(crate::store::Search::new(text, &normalizer))
    };
    assert_eq!(keys(search("alvarez")).await, [CUSTOMER]);
    assert_eq!(keys(search("PLUMB")).await, [CUSTOMER]);
    assert_eq!(keys(search("boiler")).await, [CUSTOMER2]);
    assert_eq!(keys(search("quot")).await, [CUSTOMER2], "a call's tag");
    let mut both = vec![CUSTOMER.to_owned(), CUSTOMER2.to_owned()];
    both.sort();
    assert_eq!(
        keys(search("vip")).await,
        both,
        "a contact's tag and a call's"
    );
    assert_eq!(
        keys(ConversationQuery::page(50, 0).with_tag("VIP")).await,
        both
    );
    assert_eq!(
        keys(ConversationQuery::page(50, 0).with_tag("quote")).await,
        [CUSTOMER2]
    );
    assert!(
        keys(ConversationQuery::page(50, 0).with_tag("vi"))
            .await
            .is_empty(),
        "whole tags only"
    );
    let page = h
        .store
        .list_conversations(&ConversationQuery::page(1, 0).with_tag("vip"))
        .await
        .expect("list");
    assert_eq!(page.total, 2);

    // Tags compare case-insensitively beyond ASCII, on every store.
    let (_, row3) = h.located(&sid(3)).await;
    edit_call(&h.store, row3.id, json!({"tags": ["Émile"]}), None)
        .await
        .expect("edit");
    assert_eq!(
        keys(ConversationQuery::page(50, 0).with_tag("éMILE")).await,
        [UK_CUSTOMER]
    );
    edit_call(&h.store, row3.id, json!({"tags": null}), None)
        .await
        .expect("edit");

    let tags = h.store.tags().await.expect("tags");
    let summary: Vec<(String, u64, u64)> = tags
        .iter()
        .map(|t| (t.tag.to_lowercase(), t.contacts, t.calls))
        .collect();
    assert_eq!(
        summary,
        [("vip".to_owned(), 1, 1), ("quote".to_owned(), 0, 1)],
        "{tags:?}"
    );
    let _ = c2;
}

/// A contact created before any call (an import) keeps its name when its
/// first call arrives, and the conversation shows it.
pub async fn imported_contacts_name_their_first_call(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let mut tx = h.store.begin_ingest().await.expect("begin");
    let id = tx
        .ensure_contact(CUSTOMER, CUSTOMER_DISPLAY)
        .await
        .expect("create");
    let again = tx
        .ensure_contact(CUSTOMER, CUSTOMER_DISPLAY)
        .await
        .expect("find");
    assert_eq!(id, again, "one contact per key");
    let edit =
        crate::annotations::ContactEdit::from_json(&json!({"name": "Mrs Alvarez"})).expect("edit");
    let meta = crate::annotations::EditMeta {
        by: None,
        at: at(0),
    };
    tx.edit_contact(id, &edit, None, &meta).await.expect("name");
    tx.commit().await.expect("commit");
    assert!(
        h.find(CUSTOMER).await.is_none(),
        "no conversation before a call"
    );

    h.ingest(vec![inbound(&sid(1), CUSTOMER, 0, 10)]).await;
    let view = h.conversation(CUSTOMER).await;
    assert_eq!(view.contact.id, id);
    assert_eq!(view.contact.display_name.as_deref(), Some("Mrs Alvarez"));
    assert_eq!(
        view.conversation.external_id, CUSTOMER_DISPLAY,
        "the number stays the external id"
    );
    let listed = h.store.contacts_page(0, 10).await.expect("contacts");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
}

/// Calls that never finish (Twilio answers 404 for one, another stays
/// `ringing`) back off and, after the policy's last attempt, are no longer
/// followed: kept, marked, and out of the refresh's list, so they cannot
/// hold its slots; a call backing off is not fetched before it is due.
pub async fn stuck_calls_back_off_and_are_unfollowed(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let now = Utc::now().with_nanosecond(0).expect("valid");
    let old = now - Duration::days(30);
    let stuck = CallBuilder::new(&sid(1))
        .from(CUSTOMER)
        .to(COMPANY)
        .status("ringing")
        .start(old)
        .build();
    let gone = CallBuilder::new(&sid(2))
        .from(CUSTOMER2)
        .to(COMPANY)
        .status("in-progress")
        .start(old + Duration::minutes(1))
        .build();
    h.ingest(vec![stuck.clone(), gone]).await;
    h.mock.upsert(stuck);
    h.mock.remove(&sid(2));

    // Due again at once after each attempt; given up after the third.
    let policy = crate::sync::RefreshPolicy {
        first_delay: Duration::zero(),
        max_delay: Duration::zero(),
        max_attempts: 3,
    };
    let engine = crate::SyncEngine::new(h.mock.clone(), h.store.clone(), rules())
        .with_refresh_policy(policy);
    for run in 1..=3 {
        let report = engine
            .run(SyncMode::incremental(), None)
            .await
            .expect("incremental");
        assert_eq!(
            report.refreshed, 1,
            "run {run}: the ringing call is fetched"
        );
        assert_eq!(report.unfollowed, if run == 3 { 2 } else { 0 }, "run {run}");
    }
    let listed = h
        .store
        .unfinished_calls(&crate::store::UnfinishedQuery::any(10))
        .await
        .expect("unfinished");
    assert!(listed.is_empty(), "no longer followed: {listed:?}");
    for n in [1, 2] {
        let (_, row) = h.located(&sid(n)).await;
        assert_eq!(row.refresh.attempts, 3);
        assert!(row.refresh.unfollowed_at.is_some(), "kept and marked");
    }
    let fetches = h.mock.fetch_requests();
    engine
        .run(SyncMode::incremental(), None)
        .await
        .expect("again");
    assert_eq!(
        h.mock.fetch_requests(),
        fetches,
        "unfollowed calls are not fetched"
    );

    // With a real delay, a call that just failed is not due.
    let waiting = CallBuilder::new(&sid(3))
        .from(UK_CUSTOMER)
        .to(COMPANY)
        .status("ringing")
        .start(old + Duration::minutes(2))
        .build();
    h.ingest(vec![waiting.clone()]).await;
    h.mock.upsert(waiting);
    let patient = crate::SyncEngine::new(h.mock.clone(), h.store.clone(), rules())
        .with_refresh_policy(crate::sync::RefreshPolicy::default());
    patient
        .run(SyncMode::incremental(), None)
        .await
        .expect("first");
    let fetches = h.mock.fetch_requests();
    patient
        .run(SyncMode::incremental(), None)
        .await
        .expect("second");
    assert_eq!(h.mock.fetch_requests(), fetches, "backing off: not due yet");
    let (_, row) = h.located(&sid(3)).await;
    assert_eq!(row.refresh.attempts, 1);
    assert!(row.refresh.due_at.is_some_and(|due| due > now));
    crate::testkit::assert_invariants(h.store.as_ref()).await;
}
