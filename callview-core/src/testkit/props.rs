//! Order-independence property tests (`call-model.md` section 3: "The
//! final state after syncing a set of calls is identical for every arrival
//! order, page size and batch split").
//!
//! [`call_trees`] generates small sets of call trees: roots with 0 to 3
//! legs (a leg may have legs of its own), parties drawn from a small pool
//! of numbers written in varying formats, anonymous callers, internal
//! endpoints, random statuses, durations and start times (ties and missing
//! start times included). [`build_calls`] turns them into Twilio records,
//! newest first as Twilio lists them.
//!
//! Each property runs [`cases`] cases (default 24, `PROPTEST_CASES`
//! overrides), each on fresh stores from the factory, and needs a
//! multi-threaded Tokio runtime (the cases run through
//! [`tokio::task::block_in_place`]).

use std::future::Future;
use std::sync::Arc;

use chrono::Duration;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::call::Call;
use crate::model::interaction::newest_first;
use crate::model::PlanStats;
use crate::store::Store;

use super::builder::{
    at, at_secs, rules, sid, CallBuilder, AGENT_CELL, AGENT_SIP, ALICE, DISPATCHER,
};
use super::harness::Harness;
use super::mock::MockTwilio;

/// Customers, each in several written forms (index 0 is canonical).
const CUSTOMERS: &[&[&str]] = &[
    &[
        "+19788447773",
        "(978) 844-7773",
        "sip:+19788447773@acme.sip.twilio.com;transport=udp",
        "19788447773",
    ],
    &[
        "+15085140320",
        "508-514-0320",
        "sip:15085140320@acme.sip.twilio.com",
        "+1 508 514 0320",
    ],
    &[
        "+442079460958",
        "+44 20 7946 0958",
        "sip:+442079460958@acme.sip.twilio.com",
        "+44 20 7946 0958",
    ],
];

/// Hidden caller IDs.
const ANONYMOUS: &[&str] = &["", "anonymous", "+266696687", "Restricted"];

/// The company number in several forms.
const COMPANY_FORMS: &[&str] = &[
    "+16175006181",
    "(617) 500-6181",
    "sip:+16175006181@acme.sip.twilio.com",
    "+16175006181",
];

/// Who a root call is between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootKind {
    /// Customer `.0` (in form `.1`) calls the company.
    Inbound(usize, usize),
    /// The company calls customer `.0` (in form `.1`) through the API.
    Outbound(usize, usize),
    /// The dispatcher's SIP phone calls the company number (internal).
    Dispatcher,
    /// `client:alice` calls the dispatcher (internal).
    Internal,
    /// A hidden caller ID (form `.0`) calls the company.
    Anonymous(usize),
}

/// Whom a leg dials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegTarget {
    /// An agent's SIP phone (internal).
    AgentSip,
    /// A Voice SDK client (internal).
    Client,
    /// An agent's mobile (external).
    AgentCell,
    /// Customer `.0` in form `.1` (external).
    Customer(usize, usize),
}

/// One leg (child call) and its own legs.
#[derive(Clone, Debug)]
pub struct LegSpec {
    /// Whom it dials.
    pub target: LegTarget,
    /// Whether it carries the caller's ID as `from` (else the company number).
    pub caller_id: bool,
    /// Twilio status.
    pub status: &'static str,
    /// Duration, seconds.
    pub duration: Option<u32>,
    /// Seconds after its parent started.
    pub offset: u32,
    /// Whether Twilio has priced it.
    pub priced: bool,
    /// Its own legs (grandchildren of the root).
    pub legs: Vec<LegSpec>,
}

/// One call tree.
#[derive(Clone, Debug)]
pub struct TreeSpec {
    /// Who the root is between.
    pub kind: RootKind,
    /// Twilio status of the root.
    pub status: &'static str,
    /// Duration of the root, seconds.
    pub duration: Option<u32>,
    /// Start, seconds after [`super::t0`]; `None` for a call never dialled.
    pub start_secs: Option<u32>,
    /// Whether Twilio has priced it.
    pub priced: bool,
    /// Its legs.
    pub legs: Vec<LegSpec>,
}

fn status() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        6 => Just("completed"),
        1 => Just("no-answer"),
        1 => Just("busy"),
        1 => Just("canceled"),
        1 => Just("failed"),
        1 => Just("ringing"),
        1 => Just("in-progress"),
    ]
}

fn duration_for(status: &'static str) -> impl Strategy<Value = Option<u32>> {
    match status {
        "completed" => prop_oneof![4 => (0u32..400).prop_map(Some), 1 => Just(Some(0))].boxed(),
        "in-progress" | "ringing" => Just(None).boxed(),
        _ => prop_oneof![Just(None), Just(Some(0))].boxed(),
    }
}

fn leg_target() -> impl Strategy<Value = LegTarget> {
    prop_oneof![
        3 => Just(LegTarget::AgentSip),
        1 => Just(LegTarget::Client),
        2 => Just(LegTarget::AgentCell),
        2 => (0..CUSTOMERS.len(), 0usize..4).prop_map(|(c, f)| LegTarget::Customer(c, f)),
    ]
}

fn leaf_leg() -> impl Strategy<Value = LegSpec> {
    (
        leg_target(),
        any::<bool>(),
        status(),
        1u32..40,
        any::<bool>(),
    )
        .prop_flat_map(|(target, caller_id, status, offset, priced)| {
            duration_for(status).prop_map(move |duration| LegSpec {
                target,
                caller_id,
                status,
                duration,
                offset,
                priced,
                legs: Vec::new(),
            })
        })
}

fn leg() -> impl Strategy<Value = LegSpec> {
    (leaf_leg(), vec(leaf_leg(), 0..=1), 0u8..4).prop_map(|(mut leg, legs, dice)| {
        // A quarter of the legs have a leg of their own.
        if dice == 0 {
            leg.legs = legs;
        }
        leg
    })
}

fn root_kind() -> impl Strategy<Value = RootKind> {
    prop_oneof![
        5 => (0..CUSTOMERS.len(), 0usize..4).prop_map(|(c, f)| RootKind::Inbound(c, f)),
        2 => (0..CUSTOMERS.len(), 0usize..4).prop_map(|(c, f)| RootKind::Outbound(c, f)),
        2 => Just(RootKind::Dispatcher),
        1 => Just(RootKind::Internal),
        1 => (0..ANONYMOUS.len()).prop_map(RootKind::Anonymous),
    ]
}

/// Seconds after [`super::t0`] (15:00 UTC): mostly within half an hour
/// (ties included), on one of three days 25 days apart (so a long sync
/// reads them from different day slices), sometimes at 23:59:40 so that
/// legs start after midnight; a tenth never started.
fn start_secs() -> impl Strategy<Value = Option<u32>> {
    const DAY: u32 = 86_400;
    prop_oneof![
        8 => (0u32..3, 0u32..1800).prop_map(|(d, s)| Some(d * 25 * DAY + s)),
        1 => (0u32..3).prop_map(|d| Some(d * 25 * DAY + 8 * 3600 + 59 * 60 + 40)),
        1 => Just(None),
    ]
}

fn tree() -> impl Strategy<Value = TreeSpec> {
    (
        root_kind(),
        status(),
        start_secs(),
        any::<bool>(),
        vec(leg(), 0..=3),
    )
        .prop_flat_map(|(kind, status, start_secs, priced, legs)| {
            duration_for(status).prop_map(move |duration| TreeSpec {
                kind,
                status,
                duration,
                start_secs,
                priced,
                legs: legs.clone(),
            })
        })
}

/// 1 to 6 call trees.
pub fn call_trees() -> impl Strategy<Value = Vec<TreeSpec>> {
    vec(tree(), 1..=6)
}

/// How many calls [`build_calls`] makes of `trees`.
pub fn count_calls(trees: &[TreeSpec]) -> usize {
    fn legs(legs: &[LegSpec]) -> usize {
        legs.iter().map(|l| 1 + legs_of(l)).sum()
    }
    fn legs_of(leg: &LegSpec) -> usize {
        legs(&leg.legs)
    }
    trees.iter().map(|t| 1 + legs(&t.legs)).sum()
}

struct Builder {
    next: u64,
    calls: Vec<Call>,
}

impl Builder {
    fn next_sid(&mut self) -> String {
        self.next += 1;
        sid(self.next)
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        sid: &str,
        from: &str,
        to: &str,
        direction: &str,
        status: &'static str,
        duration: Option<u32>,
        start: Option<chrono::DateTime<chrono::Utc>>,
        priced: bool,
        parent: Option<&str>,
    ) {
        // Only a call never dialled lacks a start time, and such a call is
        // queued, canceled or failed (what the sync's sweep lists).
        let status = match (start, status) {
            (None, "queued" | "canceled" | "failed") | (Some(_), _) => status,
            (None, _) => "failed",
        };
        let mut b = CallBuilder::new(sid)
            .from(from)
            .to(to)
            .direction(direction)
            .status(status);
        if let Some(d) = duration {
            b = b.duration(d);
        }
        if let Some(s) = start {
            b = b.start(s);
            let end = s + Duration::seconds(i64::from(duration.unwrap_or(0)));
            if duration.is_some() {
                b = b.end(end);
            }
            b = b.updated(end + Duration::seconds(1));
        } else {
            b = b.updated(at(0));
        }
        if priced && duration.is_some() {
            b = b.price("-0.0140");
        }
        if let Some(p) = parent {
            b = b.parent(p);
        }
        self.calls.push(b.build());
    }

    fn legs(
        &mut self,
        legs: &[LegSpec],
        parent: &str,
        parent_start: Option<chrono::DateTime<chrono::Utc>>,
        caller: &str,
    ) {
        for leg in legs {
            let sid = self.next_sid();
            let to = match leg.target {
                LegTarget::AgentSip => AGENT_SIP.to_owned(),
                LegTarget::Client => "client:bob".to_owned(),
                LegTarget::AgentCell => AGENT_CELL.to_owned(),
                LegTarget::Customer(c, f) => CUSTOMERS[c][f].to_owned(),
            };
            let from = if leg.caller_id {
                caller.to_owned()
            } else {
                COMPANY_FORMS[(leg.offset as usize) % COMPANY_FORMS.len()].to_owned()
            };
            let start = parent_start.map(|s| s + Duration::seconds(i64::from(leg.offset)));
            self.push(
                &sid,
                &from,
                &to,
                "outbound-dial",
                leg.status,
                leg.duration,
                start,
                leg.priced,
                Some(parent),
            );
            self.legs(&leg.legs, &sid, start, caller);
        }
    }
}

/// The Twilio records of `trees`, newest first (Twilio's order). SIDs are
/// [`sid`]`(1..)` in tree order.
pub fn build_calls(trees: &[TreeSpec]) -> Vec<Call> {
    let mut b = Builder {
        next: 0,
        calls: Vec::new(),
    };
    for tree in trees {
        let sid = b.next_sid();
        let (from, to, direction) = match tree.kind {
            RootKind::Inbound(c, f) => (CUSTOMERS[c][f], COMPANY_FORMS[f], "inbound"),
            RootKind::Outbound(c, f) => (COMPANY_FORMS[f], CUSTOMERS[c][f], "outbound-api"),
            RootKind::Dispatcher => (DISPATCHER, COMPANY_FORMS[0], "inbound"),
            RootKind::Internal => (ALICE, DISPATCHER, "inbound"),
            RootKind::Anonymous(a) => (ANONYMOUS[a], COMPANY_FORMS[1], "inbound"),
        };
        let start = tree.start_secs.map(|s| at_secs(i64::from(s)));
        b.push(
            &sid,
            from,
            to,
            direction,
            tree.status,
            tree.duration,
            start,
            tree.priced,
            None,
        );
        b.legs(&tree.legs, &sid, start, from);
    }
    let mut calls = b.calls;
    calls.sort_by(newest_first);
    calls
}

/// An older version of `call` as Twilio reported it while the call was
/// running: `ringing` or `in-progress`, no duration, end or price, and a
/// `date_updated` before the final one.
pub fn earlier_version(call: &Call, in_progress: bool) -> Call {
    let updated = call
        .date_updated
        .or(call.start_time)
        .unwrap_or_else(|| at(0))
        - Duration::seconds(30);
    let mut b = CallBuilder::from_call(call)
        .status(if in_progress {
            "in-progress"
        } else {
            "ringing"
        })
        .no_duration()
        .no_price()
        .updated(updated);
    b = match call.start_time {
        Some(s) => b.start(s),
        None => b.no_start(),
    };
    let mut c = b.build();
    c.end_time = None;
    c.refresh_raw();
    Call::from_json(&c.raw).expect("parses")
}

/// The configuration of the properties: [`cases`] cases, at most 128
/// shrinking steps, no failure persistence files.
pub fn config() -> Config {
    Config {
        cases: cases(),
        max_shrink_iters: 128,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Cases per property: `PROPTEST_CASES` when set, else 24 (each case uses
/// real databases).
pub fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

/// Runs `test` on values of `strategy` with proptest (shrinking included),
/// blocking the current multi-threaded Tokio runtime's worker for each case.
///
/// # Panics
/// With the minimal failing input when a case fails; outside a
/// multi-threaded Tokio runtime.
pub fn run_property<S, T, Fut>(name: &str, strategy: S, test: T)
where
    S: Strategy,
    S::Value: Clone,
    T: Fn(S::Value) -> Fut,
    Fut: Future<Output = ()>,
{
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(config());
    let result = tokio::task::block_in_place(|| {
        runner.run(&strategy, |value| {
            handle.block_on(test(value));
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("property {name} failed: {e}");
    }
}

fn split_batches(calls: Vec<Call>, cuts: &[bool]) -> Vec<Vec<Call>> {
    let mut batches = vec![Vec::new()];
    for (i, call) in calls.into_iter().enumerate() {
        batches.last_mut().expect("one batch").push(call);
        if cuts.get(i).copied().unwrap_or(false) {
            batches.push(Vec::new());
        }
    }
    batches.retain(|b| !b.is_empty());
    batches
}

/// A call set as it arrives: trees, which of their calls are missing
/// (a parent outside the sync window leaves its legs orphaned), the order
/// of arrival and where the arrival is cut into batches.
#[derive(Clone, Debug)]
struct Arrival {
    trees: Vec<TreeSpec>,
    missing: Vec<bool>,
    order: Vec<usize>,
    cuts: Vec<bool>,
}

impl Arrival {
    /// The calls that exist (Twilio's order).
    fn calls(&self) -> Vec<Call> {
        build_calls(&self.trees)
            .into_iter()
            .zip(&self.missing)
            .filter(|(_, missing)| !**missing)
            .map(|(c, _)| c)
            .collect()
    }

    /// The calls in arrival order.
    fn arriving(&self) -> Vec<Call> {
        let all = build_calls(&self.trees);
        self.order
            .iter()
            .filter(|&&i| !self.missing[i])
            .map(|&i| all[i].clone())
            .collect()
    }
}

fn arrivals() -> impl Strategy<Value = Arrival> {
    call_trees().prop_flat_map(|trees| {
        let n = count_calls(&trees);
        (
            Just(trees),
            vec(proptest::bool::weighted(0.1), n),
            Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
            vec(any::<bool>(), n),
        )
            .prop_map(|(trees, missing, order, cuts)| Arrival {
                trees,
                missing,
                order,
                cuts,
            })
    })
}

async fn reference<F, Fut>(fresh: &F, calls: Vec<Call>) -> super::StoreSnapshot
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    let h = Harness::new(fresh().await);
    h.ingest(calls).await;
    h.snapshot().await
}

/// Any permutation of a call set, split into any batches, gives the same
/// final state as one batch in Twilio's order.
pub async fn prop_order_and_batches_do_not_matter<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    run_property("order_and_batches_do_not_matter", arrivals(), |arrival| {
        let fresh = &fresh;
        async move {
            let expected = reference(fresh, arrival.calls()).await;
            let h = Harness::new(fresh().await);
            for batch in split_batches(arrival.arriving(), &arrival.cuts) {
                h.ingest(batch).await;
            }
            let actual = h.snapshot().await;
            assert_eq!(actual, expected, "arrival order changed the final state");
        }
    });
}

fn assert_nothing_written(stats: PlanStats, n: usize, what: &str) {
    assert_eq!(
        (stats.inserted, stats.updated, stats.moved, stats.unchanged),
        (0, 0, 0, n as u64),
        "{what}: ingesting stored calls again must change nothing"
    );
}

/// Ingesting the same calls again (one batch, or one call at a time)
/// reports every call unchanged and writes nothing.
pub async fn prop_ingesting_twice_changes_nothing<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    run_property("ingesting_twice_changes_nothing", arrivals(), |arrival| {
        let fresh = &fresh;
        async move {
            let calls = arrival.calls();
            let h = Harness::new(fresh().await);
            for batch in split_batches(arrival.arriving(), &arrival.cuts) {
                h.ingest(batch).await;
            }
            let state = h.raw_state().await;
            let stats = h.ingest(calls.clone()).await;
            assert_nothing_written(stats, calls.len(), "one batch");
            let stats = h.ingest_one_by_one(arrival.arriving()).await;
            assert_nothing_written(stats, calls.len(), "one call per batch");
            assert_eq!(h.raw_state().await, state, "a repeated ingest wrote rows");
        }
    });
}

/// A full sync with any page size gives the same final state as one batch;
/// a second sync changes nothing.
pub async fn prop_page_size_does_not_matter<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    let strategy = call_trees().prop_flat_map(|trees| {
        let n = count_calls(&trees) as u32;
        (Just(trees), 1..=n + 1)
    });
    run_property(
        "page_size_does_not_matter",
        strategy,
        |(trees, page_size)| {
            let fresh = &fresh;
            async move {
                let calls = build_calls(&trees);
                let expected = reference(fresh, calls.clone()).await;
                let h = Harness::with(
                    fresh().await,
                    MockTwilio::new().with_page_size(page_size),
                    rules(),
                );
                h.mock.set_calls(calls.clone());
                let report = h.sync_all().await;
                // Calls without a start time are listed by the sweep.
                assert!(report.fetched >= calls.len() as u64, "{report:?}");
                assert_eq!(report.inserted, calls.len() as u64, "{report:?}");
                assert_eq!(
                    h.snapshot().await,
                    expected,
                    "page size {page_size} changed the final state"
                );
                let state = h.raw_state().await;
                let again = h.sync_all().await;
                assert_eq!(
                    (again.inserted, again.updated, again.moved),
                    (0, 0, 0),
                    "a second sync must change nothing: {again:?}"
                );
                assert!(again.unchanged >= calls.len() as u64, "{again:?}");
                assert_eq!(h.raw_state().await, state, "a second sync wrote rows");
            }
        },
    );
}

/// With earlier versions of some calls (`ringing`/`in-progress`, older
/// `date_updated`) mixed in anywhere, the final state is that of the final
/// versions alone.
pub async fn prop_stale_versions_never_win<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    let strategy = call_trees().prop_flat_map(|trees| {
        let n = count_calls(&trees);
        (
            Just(trees),
            vec(0u8..3, n),
            Just((0..2 * n).collect::<Vec<usize>>()).prop_shuffle(),
            vec(any::<bool>(), 2 * n),
        )
    });
    run_property(
        "stale_versions_never_win",
        strategy,
        |(trees, stale, order, cuts)| {
            let fresh = &fresh;
            async move {
                let calls = build_calls(&trees);
                let expected = reference(fresh, calls.clone()).await;
                // Index i < n: the final version of call i; n + i: its earlier version.
                let n = calls.len();
                let versions: Vec<Option<Call>> = calls
                    .iter()
                    .cloned()
                    .map(Some)
                    .chain(calls.iter().zip(&stale).map(|(c, s)| match s {
                        0 => None,
                        1 => Some(earlier_version(c, false)),
                        _ => Some(earlier_version(c, true)),
                    }))
                    .collect();
                let arrival: Vec<Call> =
                    order.iter().filter_map(|&i| versions[i].clone()).collect();
                assert!(arrival.len() >= n);
                let h = Harness::new(fresh().await);
                for batch in split_batches(arrival, &cuts) {
                    h.ingest(batch).await;
                }
                assert_eq!(
                    h.snapshot().await,
                    expected,
                    "an older version overwrote a newer one"
                );
            }
        },
    );
}

/// Any sequence of edits (notes and tags on contacts and calls)
/// interleaved with the batches of any arrival leaves both intact: every
/// edit reads back as written, and the calls, conversations and counters
/// are exactly those of one clean ingest.
pub async fn prop_edits_survive_syncs<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    let strategy = (arrivals(), vec(any::<(u8, u8)>(), 1..6));
    run_property("edits_survive_syncs", strategy, |(arrival, picks)| {
        let fresh = &fresh;
        async move {
            use crate::annotations::{CallEdit, ContactEdit, EditMeta};
            let expected = reference(fresh, arrival.calls()).await;
            let h = Harness::new(fresh().await);
            let meta = EditMeta {
                by: None,
                at: super::at(0),
            };
            // What the edits wrote, by contact key and by call SID.
            let mut contact_notes = std::collections::BTreeMap::new();
            let mut call_tags = std::collections::BTreeMap::new();
            let batches = split_batches(arrival.arriving(), &arrival.cuts);
            let count = batches.len();
            for (i, batch) in batches.into_iter().enumerate() {
                h.ingest(batch).await;
                let Some(&(a, b)) = picks.get(i % picks.len()) else {
                    continue;
                };
                let views = h.conversations().await;
                if views.is_empty() {
                    continue;
                }
                let view = &views[usize::from(a) % views.len()];
                let note = format!("note {i} of {count}");
                let edit =
                    ContactEdit::from_json(&serde_json::json!({"notes": note})).expect("edit");
                // Reads first: an in-memory SQLite store reads through the
                // connection an open transaction holds.
                let calls = h
                    .store
                    .conversation_calls(view.conversation.id)
                    .await
                    .expect("calls");
                let mut tx = h.store.begin_ingest().await.expect("begin");
                tx.edit_contact(view.contact.id, &edit, None, &meta)
                    .await
                    .expect("edit contact");
                // Messages are root calls (a leg's notes come from when it
                // was one).
                let roots: Vec<_> = calls.iter().filter(|c| c.is_root()).collect();
                let call = roots[usize::from(b) % roots.len()];
                let tag = format!("t{b}");
                let edit = CallEdit::from_json(&serde_json::json!({"tags": [tag]})).expect("edit");
                tx.edit_call(call.id, &edit, None, &meta)
                    .await
                    .expect("edit call");
                tx.commit().await.expect("commit");
                contact_notes.insert(view.contact.id, note);
                call_tags.insert(call.call.sid.to_string(), vec![tag]);
            }
            // The call data is untouched by the edits. (An edited contact is
            // kept when its conversation empties, so there may be more
            // contacts than conversations.)
            let mut actual = h.snapshot().await;
            assert!(actual.counts.contacts >= expected.counts.contacts);
            actual.counts.contacts = expected.counts.contacts;
            assert_eq!(actual, expected, "edits changed the call data");
            // Every edit reads back.
            for (id, note) in &contact_notes {
                let contact = h
                    .store
                    .contact(*id)
                    .await
                    .expect("an edited contact is kept");
                assert_eq!(contact.annotations.notes.as_ref(), Some(note));
            }
            for (sid, tags) in &call_tags {
                let (_, row) = h.located(sid).await;
                assert_eq!(&row.annotations.tags, tags, "{sid}");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;

    #[test]
    fn generated_sets_are_valid() {
        let mut runner = TestRunner::deterministic();
        for _ in 0..200 {
            let trees = call_trees().new_tree(&mut runner).expect("tree").current();
            let calls = build_calls(&trees);
            assert_eq!(calls.len(), count_calls(&trees));
            let mut sids: Vec<_> = calls.iter().map(|c| c.sid.clone()).collect();
            sids.sort();
            sids.dedup();
            assert_eq!(sids.len(), calls.len());
            for c in &calls {
                let stale = earlier_version(c, false);
                assert!(stale.date_updated < c.date_updated);
                assert_eq!(stale.parent_call_sid, c.parent_call_sid);
            }
        }
    }

    #[test]
    fn batches_keep_every_call() {
        let calls: Vec<Call> = (1..=5)
            .map(|n| CallBuilder::new(&sid(n)).start(at_secs(n as i64)).build())
            .collect();
        let batches = split_batches(calls, &[true, false, true, true, true]);
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1, 2, 1, 1]
        );
    }
}
