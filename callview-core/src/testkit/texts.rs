//! Conformance tests of text messages: texts and calls in one thread in
//! time order, counters, order independence, status updates, internal
//! texts, conversations kept by their texts, and the texts part of a sync.
//! (The store invariant [`super::check_invariants`] also compares every
//! conversation's text counters with its rows after every write.)

use std::sync::Arc;

use crate::endpoint::{ActualDirection, Normalizer, OwnedNumbers, PartyRules};
use crate::model::{IncomingText, MessageType, ThreadKinds};
use crate::store::{ConversationQuery, Store};
use crate::text::{Text, TextMedia, TextStatus};
use crate::thread::ThreadItem;

use super::builder::*;
use super::check::all_thread;
use super::harness::Harness;
use super::mock::MockTwilio;

fn incoming(texts: impl IntoIterator<Item = Text>) -> Vec<IncomingText> {
    texts.into_iter().map(IncomingText::from).collect()
}

fn call(n: u64, from: &str, minute: i64) -> crate::Call {
    CallBuilder::new(&sid(n))
        .from(from)
        .to(COMPANY)
        .direction("inbound")
        .start(at(minute))
        .duration(30)
        .build()
}

/// What the thread shows, newest first: `call:<sid>` or `text:<sid>`.
async fn thread(h: &Harness, key: &str) -> Vec<String> {
    let id = h.id(key).await;
    all_thread(h.store.as_ref(), id)
        .await
        .expect("the thread reads")
        .iter()
        .map(|item| match item {
            ThreadItem::Call(i) => format!("call:{}", i.root.call.sid),
            ThreadItem::Text(t) => format!("text:{}", t.text.sid),
        })
        .collect()
}

/// Calls and texts of one customer land in one conversation, interleaved
/// newest first; `total_calls` counts calls only, `total_messages` texts,
/// and the newest message (a text here) sets `last_message_at` and
/// `last_message_type`.
pub async fn texts_and_calls_share_one_thread_in_time_order(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    h.ingest(vec![call(1, CUSTOMER, 0), call(2, CUSTOMER, 20)])
        .await;
    let stats = h
        .ingest_texts(incoming([
            TextBuilder::new(1).sent(at(10)).build(),
            TextBuilder::new(2)
                .from(COMPANY)
                .to(CUSTOMER)
                .direction("outbound-api")
                .status("delivered")
                .sent(at(30))
                .build(),
        ]))
        .await;
    assert_eq!(stats.texts_inserted, 2);
    assert_eq!(h.keys().await, vec![CUSTOMER.to_owned()]);
    assert_eq!(
        thread(&h, CUSTOMER).await,
        vec![
            format!("text:{}", text_sid(2)),
            format!("call:{}", sid(2)),
            format!("text:{}", text_sid(1)),
            format!("call:{}", sid(1)),
        ]
    );
    let c = h.conversation(CUSTOMER).await;
    let counters = &c.conversation.counters;
    assert_eq!(counters.total_calls, 2);
    assert_eq!(counters.total_messages, 2);
    assert_eq!(counters.last_message_at, Some(at(30)));
    assert_eq!(counters.last_message_type, Some(MessageType::Sms));
    let last = c.last_text.expect("the newest text is listed");
    assert_eq!(last.text.sid.as_str(), text_sid(2));
    assert_eq!(last.actual_direction, ActualDirection::Outbound);

    // The statistics of the day count the texts by direction.
    let range = crate::stats::StatsRange::new(
        chrono_tz::UTC,
        crate::stats::Bound::Date(t0().date_naive()),
        crate::stats::Bound::Date(t0().date_naive()),
        crate::stats::Bucket::Day,
    )
    .expect("a range");
    let rows = h
        .store
        .stats(&range.query(crate::stats::TOP_CONTACTS))
        .await
        .expect("stats");
    let report = crate::stats::StatsReport::build(&range, rows);
    assert_eq!(
        (
            report.texts.total,
            report.texts.inbound,
            report.texts.outbound
        ),
        (2, 1, 1)
    );
    // The day before (`until` a date: through its end) has none.
    let day_before = t0().date_naive() - chrono::Duration::days(1);
    let before = crate::stats::StatsRange::new(
        chrono_tz::UTC,
        crate::stats::Bound::Date(day_before),
        crate::stats::Bound::Date(day_before),
        crate::stats::Bucket::Day,
    )
    .expect("a range");
    let rows = h
        .store
        .stats(&before.query(crate::stats::TOP_CONTACTS))
        .await
        .expect("stats");
    assert_eq!(rows.texts.total, 0);

    // A newer call makes a call the newest message again.
    h.ingest(vec![call(3, CUSTOMER, 40)]).await;
    let counters = h.conversation(CUSTOMER).await.conversation.counters;
    assert_eq!(counters.last_message_type, Some(MessageType::Call));
    assert_eq!(counters.last_message_at, Some(at(40)));
    assert_eq!(counters.total_messages, 2);
}

/// A text from a new number creates its contact and conversation; a call
/// from the same number, written differently, lands in it.
pub async fn a_text_creates_the_conversation_a_call_finds(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    h.ingest_texts(incoming([TextBuilder::new(1)
        .from(CUSTOMER2)
        .sent(at(0))
        .media(1)
        .build()]))
        .await;
    let c = h.conversation(CUSTOMER2).await;
    assert_eq!(c.conversation.external_id, CUSTOMER2_DISPLAY);
    assert_eq!(c.conversation.counters.total_calls, 0);
    assert_eq!(c.conversation.counters.total_messages, 1);
    assert_eq!(
        c.conversation.counters.last_message_type,
        Some(MessageType::Mms)
    );
    assert!(c.last_message.is_none());
    // The list's `type` filter: a conversation with texts only.
    let listed = |kinds| {
        let store = h.store.clone();
        async move {
            store
                .list_conversations(&ConversationQuery::page(10, 0).with_kinds(kinds))
                .await
                .expect("the list reads")
                .total
        }
    };
    assert_eq!(listed(ThreadKinds::Texts).await, 1);
    assert_eq!(listed(ThreadKinds::Calls).await, 0);

    h.ingest(vec![call(1, "(508) 514-0320", 5)]).await;
    assert_eq!(listed(ThreadKinds::Calls).await, 1);
    h.ingest(vec![call(2, CUSTOMER, 9)]).await;
    assert_eq!(listed(ThreadKinds::Calls).await, 2);
    assert_eq!(listed(ThreadKinds::Texts).await, 1);
    assert_eq!(listed(ThreadKinds::All).await, 2);
    assert!(h.keys().await.contains(&CUSTOMER2.to_owned()));
    let c = h.conversation(CUSTOMER2).await;
    assert_eq!(c.conversation.counters.total_calls, 1);
    assert_eq!(c.conversation.counters.total_messages, 1);
    assert_eq!(
        c.conversation.counters.last_message_type,
        Some(MessageType::Call)
    );
}

/// `queued` → `sent` → `delivered`, the price arriving later: each newer
/// version updates the row; an older one, or the same again, changes
/// nothing.
pub async fn text_status_moves_on_and_older_versions_lose(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let outbound = || {
        TextBuilder::new(7)
            .from(COMPANY)
            .to(CUSTOMER)
            .direction("outbound-api")
    };
    let queued = outbound().status("queued").sent(at(0)).unsent().build();
    let sent = outbound()
        .status("sent")
        .sent(at(0))
        .updated(at_secs(2))
        .build();
    let delivered = outbound()
        .status("delivered")
        .sent(at(0))
        .updated(at_secs(5))
        .build();
    let priced = outbound()
        .status("delivered")
        .sent(at(0))
        .updated(at_secs(60))
        .price("-0.00790")
        .build();
    let s = h.ingest_texts(incoming([queued.clone()])).await;
    assert_eq!(s.texts_inserted, 1);
    let s = h.ingest_texts(incoming([sent])).await;
    assert_eq!(s.texts_updated, 1);
    let s = h.ingest_texts(incoming([delivered])).await;
    assert_eq!(s.texts_updated, 1);
    let s = h.ingest_texts(incoming([priced.clone()])).await;
    assert_eq!(s.texts_updated, 1);
    // Older versions and repeats change nothing.
    let s = h.ingest_texts(incoming([queued, priced.clone()])).await;
    assert_eq!((s.texts_updated, s.texts_unchanged), (0, 1));
    let stored = h.store.text(&priced.sid).await.expect("the text is stored");
    assert_eq!(stored.text.status, TextStatus::Delivered);
    assert_eq!(stored.text.price, priced.price);
    assert_eq!(stored.text.raw, priced.raw);
}

/// The same calls and texts in any order and batch split, into fresh
/// stores, give the same state; ingesting them again changes nothing.
pub async fn texts_in_any_order_give_the_same_state<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    let calls = vec![
        call(1, CUSTOMER, 0),
        call(2, CUSTOMER2, 10),
        call(3, CUSTOMER, 50),
    ];
    let texts = vec![
        TextBuilder::new(1).sent(at(5)).build(),
        TextBuilder::new(2)
            .from(COMPANY)
            .to(CUSTOMER2)
            .direction("outbound-reply")
            .sent(at(20))
            .build(),
        TextBuilder::new(3).from(UK_CUSTOMER).sent(at(30)).build(),
        TextBuilder::new(4).sent(at(60)).media(2).build(),
    ];
    let first = Harness::new(fresh().await);
    first.ingest(calls.clone()).await;
    first.ingest_texts(incoming(texts.clone())).await;
    let expected = first.snapshot().await;
    assert_eq!(expected.counts.texts, 4);
    let again = first.ingest_texts(incoming(texts.clone())).await;
    assert_eq!(again.texts_unchanged, 4);
    assert_eq!(first.snapshot().await, expected);

    // Texts first, in reverse, one per transaction; then calls one by one.
    let h = Harness::new(fresh().await);
    for text in texts.iter().rev() {
        h.ingest_texts(incoming([text.clone()])).await;
    }
    h.ingest_one_by_one(calls.iter().rev().cloned().collect())
        .await;
    assert_eq!(h.snapshot().await, expected, "texts first, one at a time");

    // Interleaved: two texts, the calls, the rest of the texts (shuffled).
    let h = Harness::new(fresh().await);
    h.ingest_texts(incoming([texts[3].clone(), texts[1].clone()]))
        .await;
    h.ingest(calls.clone()).await;
    h.ingest_texts(incoming([
        texts[2].clone(),
        texts[0].clone(),
        texts[3].clone(),
    ]))
    .await;
    assert_eq!(h.snapshot().await, expected, "interleaved");
}

/// A text between two of the business's numbers is internal, in the
/// conversation of its recipient.
pub async fn texts_between_owned_numbers_are_internal(store: Arc<dyn Store>) {
    const SECOND_LINE: &str = "+16175006182";
    let n = Normalizer::default();
    let rules = PartyRules::new(n, OwnedNumbers::from_raw(&n, [COMPANY, SECOND_LINE]));
    let h = Harness::with(store, MockTwilio::new(), rules);
    h.ingest_texts(incoming([TextBuilder::new(1)
        .from(COMPANY)
        .to(SECOND_LINE)
        .direction("outbound-api")
        .sent(at(0))
        .build()]))
        .await;
    let c = h.conversation(SECOND_LINE).await;
    let text = c.last_text.expect("the text");
    assert_eq!(text.actual_direction, ActualDirection::Internal);
}

/// A conversation whose only call moves away (its parent arrived, and the
/// tree belongs to another customer) stays while it has texts.
pub async fn a_conversation_keeps_its_texts_when_its_calls_move(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    // A leg dialled to CUSTOMER, stored before its parent.
    let leg = CallBuilder::new(&sid(2))
        .parent(&sid(1))
        .from(COMPANY)
        .to(CUSTOMER)
        .direction("outbound-dial")
        .start(at_secs(5))
        .duration(20)
        .build();
    h.ingest(vec![leg]).await;
    h.ingest_texts(incoming([TextBuilder::new(1).sent(at(3)).build()]))
        .await;
    // The parent: CUSTOMER2 called; the leg folds into CUSTOMER2's call.
    h.ingest(vec![call(1, CUSTOMER2, 0)]).await;
    let c = h.conversation(CUSTOMER).await;
    assert_eq!(c.conversation.counters.total_calls, 0);
    assert_eq!(c.conversation.counters.total_messages, 1);
    assert_eq!(
        c.conversation.counters.last_message_type,
        Some(MessageType::Sms)
    );
    assert_eq!(c.conversation.counters.last_message_at, Some(at(3)));
    assert_eq!(
        h.conversation(CUSTOMER2)
            .await
            .conversation
            .counters
            .total_calls,
        1
    );
}

/// A sync lists the window's texts with their media, stores them in their
/// conversations, and a second sync changes nothing; a status that moved
/// on at Twilio is picked up by the next sync of its window.
pub async fn sync_lists_texts_and_their_media(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    h.mock.set_calls([call(1, CUSTOMER, 0)]);
    let mms = TextBuilder::new(2).sent(at(2)).media(1).build();
    h.mock.upsert_text(TextBuilder::new(1).sent(at(1)).build());
    h.mock.upsert_text(mms.clone());
    h.mock.add_text_media(
        &mms.sid,
        TextMedia {
            sid: "ME0000000000000000000000000000000a".into(),
            content_type: Some("image/png".into()),
        },
        vec![0x89, b'P', b'N', b'G'],
    );
    let outbound = || {
        TextBuilder::new(3)
            .from(COMPANY)
            .to(CUSTOMER2)
            .direction("outbound-api")
            .sent(at(4))
    };
    h.mock.upsert_text(outbound().status("sent").build());
    let report = h.sync_all().await;
    assert_eq!(report.texts.fetched, 3);
    assert_eq!(report.texts.inserted, 3);
    assert_eq!(report.texts.media_listed, 1);
    assert_eq!(report.inserted, 1);
    let stored = h.store.text(&mms.sid).await.expect("the MMS is stored");
    assert_eq!(stored.media.len(), 1);
    assert_eq!(stored.media[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(
        h.conversation(CUSTOMER)
            .await
            .conversation
            .counters
            .total_messages,
        2
    );

    let again = h.sync_all().await;
    assert_eq!((again.texts.inserted, again.texts.updated), (0, 0));
    assert_eq!(again.texts.unchanged, 3);
    // The stored MMS keeps its media: not listed again.
    assert_eq!(again.texts.media_listed, 0);
    let stored = h.store.text(&mms.sid).await.expect("the MMS is stored");
    assert_eq!(stored.media.len(), 1);

    h.mock.upsert_text(
        outbound()
            .status("undelivered")
            .updated(at(5))
            .error(30003, "Unreachable destination handset")
            .build(),
    );
    let moved = h.sync_all().await;
    assert_eq!(moved.texts.updated, 1);
    let failed = h
        .store
        .text(&crate::text::MessageSid::new(text_sid(3)).expect("a SID"))
        .await
        .expect("stored");
    assert_eq!(failed.text.status, TextStatus::Undelivered);
    assert_eq!(failed.text.error_code, Some(30003));
}
