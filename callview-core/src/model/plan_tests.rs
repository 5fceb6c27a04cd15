//! Unit tests of the pure planner: plans are applied to a tiny in-memory
//! model of the tables so each rule can be checked step by step.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};

use super::*;
use crate::call::{CallDirection, CallStatus};
use crate::endpoint::{Normalizer, OwnedNumbers};

const COMPANY: &str = "+19788447773";
const CUSTOMER: &str = "+15085140320";
const DISPATCHER: &str = "sip:dispatcher@acme.sip.twilio.com";

fn rules() -> PartyRules {
    let n = Normalizer::default();
    PartyRules::new(n, OwnedNumbers::from_raw(&n, [COMPANY]))
}

fn call(sid: &str, from: &str, to: &str, dir: &str, status: &str, minute: u32, dur: u32) -> Call {
    let mut c = Call::new(
        CallSid::new(sid).unwrap(),
        CallStatus::parse(status),
        CallDirection::parse(dir),
    );
    c.from = Some(from.into());
    c.to = Some(to.into());
    c.start_time = Some(Utc.with_ymd_and_hms(2026, 2, 6, 15, minute, 0).unwrap());
    c.duration = Some(dur);
    c.refresh_raw();
    c
}

fn child(mut c: Call, parent: &str) -> Call {
    c.parent_call_sid = CallSid::new(parent);
    c.refresh_raw();
    c
}

/// The tables, reduced to what the planner reads and writes.
#[derive(Default, Debug)]
struct Db {
    next_id: i64,
    conversations: BTreeMap<ConversationId, (String, Option<ConversationCounters>)>,
    rows: BTreeMap<CallSid, StoredCall>,
}

impl Db {
    fn load_trees(&self, sids: &[CallSid]) -> Vec<StoredCall> {
        let roots: Vec<&CallSid> = self
            .rows
            .values()
            .filter(|r| {
                sids.contains(&r.call.sid)
                    || r.call
                        .parent_call_sid
                        .as_ref()
                        .is_some_and(|p| sids.contains(p))
            })
            .map(|r| &r.root_sid)
            .collect();
        self.rows
            .values()
            .filter(|r| roots.contains(&&r.root_sid))
            .cloned()
            .collect()
    }

    fn states(&self, lookup: &ConversationLookup) -> Vec<ConversationState> {
        self.conversations
            .iter()
            .filter(|(id, (key, _))| lookup.keys.contains(key) || lookup.ids.contains(id))
            .map(|(id, (key, _))| {
                let mut rest = Aggregate::default();
                for r in self.rows.values() {
                    if r.conversation_id != *id || lookup.exclude.contains(&r.call.sid) {
                        continue;
                    }
                    rest.calls += 1;
                    rest.last_call_at = max_time(rest.last_call_at, r.call.start_time);
                    if r.is_root() {
                        rest.root_calls += 1;
                        rest.root_duration += u64::from(r.call.duration_secs());
                        let candidate = NewestRoot {
                            start_time: r.call.start_time,
                            sid: r.call.sid.clone(),
                            direction: r.derived.actual_direction,
                            display_status: r.derived.display_status.clone(),
                        };
                        if rest
                            .newest_root
                            .as_ref()
                            .is_none_or(|n| candidate.order_key() > n.order_key())
                        {
                            rest.newest_root = Some(candidate);
                        }
                    }
                }
                ConversationState {
                    id: *id,
                    key: key.clone(),
                    rest,
                }
            })
            .collect()
    }

    fn apply(&mut self, plan: &Plan) {
        let mut new_ids = BTreeMap::new();
        for c in &plan.new_conversations {
            self.next_id += 1;
            let id = ConversationId(self.next_id);
            self.conversations.insert(id, (c.key.clone(), None));
            new_ids.insert(c.key.clone(), id);
        }
        let resolve = |r: &ConversationRef| match r {
            ConversationRef::Existing(id) => *id,
            ConversationRef::New(key) => new_ids[key],
        };
        for w in &plan.calls {
            self.next_id += 1;
            let id = self
                .rows
                .get(&w.call.sid)
                .map_or(self.next_id, |stored| stored.id);
            self.rows.insert(
                w.call.sid.clone(),
                StoredCall {
                    id,
                    conversation_id: resolve(&w.conversation),
                    root_sid: w.root_sid.clone(),
                    call: w.call.clone(),
                    derived: w.derived.clone(),
                    recording_url: w.recording_url.clone(),
                    refresh: Default::default(),
                    annotations: Default::default(),
                    created_at: Utc::now(),
                    updated_at: Utc::now(),
                },
            );
        }
        for u in &plan.counters {
            let id = resolve(&u.conversation);
            self.conversations.get_mut(&id).unwrap().1 = Some(u.counters.clone());
        }
        for id in &plan.removed {
            assert!(
                self.rows.values().all(|r| r.conversation_id != *id),
                "removed conversation {id} still has calls"
            );
            self.conversations.remove(id);
        }
    }

    fn ingest(&mut self, batch: Vec<Call>) -> PlanStats {
        let mut sids: Vec<CallSid> = batch
            .iter()
            .flat_map(|c| std::iter::once(c.sid.clone()).chain(c.parent_call_sid.clone()))
            .collect();
        sids.sort();
        sids.dedup();
        let prepared = Prepared::new(&rules(), batch, self.load_trees(&sids));
        let states = self.states(prepared.lookup());
        let plan = prepared.finish(states);
        self.apply(&plan);
        self.check_counters();
        plan.stats
    }

    fn key_of(&self, sid: &str) -> String {
        let row = &self.rows[&CallSid::new(sid).unwrap()];
        self.conversations[&row.conversation_id].0.clone()
    }

    fn counters(&self, key: &str) -> ConversationCounters {
        self.conversations
            .values()
            .find(|(k, _)| k == key)
            .and_then(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("no conversation {key}"))
    }

    fn keys(&self) -> Vec<String> {
        self.conversations
            .values()
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Counters always equal what the rows say.
    fn check_counters(&self) {
        for (id, (key, counters)) in &self.conversations {
            let rows: Vec<&StoredCall> = self
                .rows
                .values()
                .filter(|r| r.conversation_id == *id)
                .collect();
            assert!(!rows.is_empty(), "conversation {key} is empty");
            let c = counters.as_ref().expect("counters set");
            let roots: Vec<&&StoredCall> = rows.iter().filter(|r| r.is_root()).collect();
            assert_eq!(c.total_calls, roots.len() as u64, "{key}");
            assert_eq!(
                c.total_duration,
                roots
                    .iter()
                    .map(|r| u64::from(r.call.duration_secs()))
                    .sum::<u64>()
            );
            assert_eq!(
                c.last_message_at,
                rows.iter().filter_map(|r| r.call.start_time).max()
            );
            for r in &rows {
                if !r.is_root() {
                    let root = &self.rows[&r.root_sid];
                    assert_eq!(
                        root.conversation_id, r.conversation_id,
                        "leg outside its root's conversation"
                    );
                }
            }
        }
    }
}

fn forwarded_pair() -> (Call, Call) {
    let parent = call("CA01", CUSTOMER, COMPANY, "inbound", "completed", 10, 60);
    let leg = child(
        call(
            "CA02",
            CUSTOMER,
            DISPATCHER,
            "outbound-dial",
            "completed",
            10,
            45,
        ),
        "CA01",
    );
    (parent, leg)
}

#[test]
fn parent_and_child_in_one_batch_share_the_customers_conversation() {
    let (parent, leg) = forwarded_pair();
    let mut db = Db::default();
    let stats = db.ingest(vec![leg, parent]);
    assert_eq!(stats.inserted, 2);
    assert_eq!(db.keys(), vec![CUSTOMER.to_string()]);
    assert_eq!(db.key_of("CA02"), CUSTOMER);
    let c = db.counters(CUSTOMER);
    assert_eq!((c.total_calls, c.total_duration), (1, 60));
    assert_eq!(c.last_call_direction, Some(ActualDirection::Inbound));
    let root = &db.rows[&CallSid::new("CA01").unwrap()];
    assert!(root.derived.merged_from_parent);
    assert_eq!(root.derived.display_status, "completed");
}

#[test]
fn a_parent_arriving_later_pulls_its_children_and_removes_the_empty_conversation() {
    let (parent, mut leg) = forwarded_pair();
    // The leg alone looks like a call from the customer's number to the dispatcher.
    leg.from = Some(COMPANY.into());
    leg.refresh_raw();
    let mut db = Db::default();
    db.ingest(vec![leg]);
    // Company number -> SIP dispatcher: internal, own conversation.
    assert_eq!(db.keys(), vec![DISPATCHER.to_string()]);

    let stats = db.ingest(vec![parent]);
    assert_eq!((stats.inserted, stats.moved), (1, 1));
    assert_eq!(db.keys(), vec![CUSTOMER.to_string()]);
    assert_eq!(
        db.rows[&CallSid::new("CA02").unwrap()].root_sid.as_str(),
        "CA01"
    );
    assert_eq!(db.counters(CUSTOMER).total_calls, 1);
}

#[test]
fn grandchildren_follow_the_root() {
    let (parent, leg) = forwarded_pair();
    let grandchild = child(
        call(
            "CA03",
            DISPATCHER,
            "+15559990000",
            "outbound-dial",
            "completed",
            11,
            20,
        ),
        "CA02",
    );
    let mut db = Db::default();
    db.ingest(vec![grandchild]);
    db.ingest(vec![leg]);
    db.ingest(vec![parent]);
    for sid in ["CA01", "CA02", "CA03"] {
        assert_eq!(db.key_of(sid), CUSTOMER, "{sid}");
        assert_eq!(
            db.rows[&CallSid::new(sid).unwrap()].root_sid.as_str(),
            "CA01"
        );
    }
    assert_eq!(db.keys().len(), 1);
}

#[test]
fn an_internal_root_takes_the_party_of_its_first_external_leg() {
    let root = call("CA10", DISPATCHER, COMPANY, "inbound", "completed", 20, 90);
    let leg = child(
        call(
            "CA11",
            COMPANY,
            CUSTOMER,
            "outbound-dial",
            "completed",
            20,
            80,
        ),
        "CA10",
    );
    let mut db = Db::default();
    db.ingest(vec![root]);
    assert_eq!(
        db.keys(),
        vec![COMPANY.to_string()],
        "internal call keyed by its `to` side"
    );
    db.ingest(vec![leg]);
    assert_eq!(db.keys(), vec![CUSTOMER.to_string()]);
    let c = db.counters(CUSTOMER);
    assert_eq!(c.last_call_direction, Some(ActualDirection::Outbound));
}

#[test]
fn resyncing_changes_nothing_and_updates_are_applied() {
    let (parent, leg) = forwarded_pair();
    let mut db = Db::default();
    db.ingest(vec![parent.clone(), leg.clone()]);
    let stats = db.ingest(vec![parent.clone(), leg.clone()]);
    assert_eq!((stats.inserted, stats.updated, stats.unchanged), (0, 0, 2));

    let mut priced = parent.clone();
    priced.price = Some("-0.0140".parse().unwrap());
    priced.duration = Some(75);
    priced.refresh_raw();
    let stats = db.ingest(vec![priced]);
    assert_eq!(stats.updated, 1);
    assert_eq!(db.counters(CUSTOMER).total_duration, 75);
}

#[test]
fn an_older_version_never_overwrites_a_newer_one() {
    let mut ringing = call("CA20", CUSTOMER, COMPANY, "inbound", "ringing", 30, 0);
    ringing.duration = None;
    ringing.date_updated = Some(Utc.with_ymd_and_hms(2026, 2, 6, 15, 30, 0).unwrap());
    ringing.refresh_raw();
    let mut done = call("CA20", CUSTOMER, COMPANY, "inbound", "completed", 30, 33);
    done.date_updated = Some(Utc.with_ymd_and_hms(2026, 2, 6, 15, 31, 0).unwrap());
    done.refresh_raw();

    let mut db = Db::default();
    db.ingest(vec![done.clone()]);
    let stats = db.ingest(vec![ringing.clone()]);
    assert_eq!(stats.unchanged, 1);
    assert_eq!(db.rows[&done.sid].call.status, CallStatus::Completed);
    // Both in one batch, in either order: the newer wins.
    let mut db = Db::default();
    db.ingest(vec![done.clone(), ringing]);
    assert_eq!(db.rows[&done.sid].call.status, CallStatus::Completed);
}

#[test]
fn counters_follow_the_newest_root() {
    let mut db = Db::default();
    db.ingest(vec![
        call("CA30", CUSTOMER, COMPANY, "inbound", "completed", 1, 10),
        call("CA31", COMPANY, CUSTOMER, "outbound-api", "no-answer", 5, 0),
    ]);
    let c = db.counters(CUSTOMER);
    assert_eq!((c.total_calls, c.total_duration), (2, 10));
    assert_eq!(c.last_call_direction, Some(ActualDirection::Outbound));
    assert_eq!(c.last_root_sid.as_ref().unwrap().as_str(), "CA31");
    db.ingest(vec![call(
        "CA29",
        CUSTOMER,
        COMPANY,
        "inbound",
        "completed",
        0,
        7,
    )]);
    let c = db.counters(CUSTOMER);
    assert_eq!(
        c.last_root_sid.as_ref().unwrap().as_str(),
        "CA31",
        "an older call does not become the last"
    );
    assert_eq!(c.total_calls, 3);
}

#[test]
fn every_arrival_order_gives_the_same_state() {
    let calls = vec![
        call("CA40", CUSTOMER, COMPANY, "inbound", "completed", 1, 60),
        child(
            call(
                "CA41",
                CUSTOMER,
                DISPATCHER,
                "outbound-dial",
                "no-answer",
                1,
                0,
            ),
            "CA40",
        ),
        child(
            call(
                "CA42",
                CUSTOMER,
                "client:alice",
                "outbound-dial",
                "completed",
                1,
                50,
            ),
            "CA40",
        ),
        call("CA43", DISPATCHER, COMPANY, "inbound", "completed", 3, 30),
        child(
            call(
                "CA44",
                COMPANY,
                "+15557770000",
                "outbound-dial",
                "completed",
                3,
                25,
            ),
            "CA43",
        ),
        call("CA45", "anonymous", COMPANY, "inbound", "busy", 4, 0),
    ];
    let state = |db: &Db| {
        let mut v: Vec<(String, String, String)> = db
            .rows
            .values()
            .map(|r| {
                (
                    r.call.sid.to_string(),
                    r.root_sid.to_string(),
                    db.key_of(r.call.sid.as_str()),
                )
            })
            .collect();
        v.sort();
        let mut c: Vec<(String, ConversationCounters)> = db
            .conversations
            .values()
            .map(|(k, c)| (k.clone(), c.clone().unwrap()))
            .collect();
        c.sort_by(|a, b| a.0.cmp(&b.0));
        (v, c)
    };
    let mut reference = Db::default();
    reference.ingest(calls.clone());
    let expected = state(&reference);
    assert_eq!(expected.1.len(), 3, "{expected:?}");

    // Every rotation and reversal, one call per batch.
    for shift in 0..calls.len() {
        for reverse in [false, true] {
            let mut order = calls.clone();
            order.rotate_left(shift);
            if reverse {
                order.reverse();
            }
            let mut db = Db::default();
            for c in order {
                db.ingest(vec![c]);
            }
            assert_eq!(state(&db), expected, "shift {shift} reverse {reverse}");
        }
    }
}

#[test]
fn display_status_of_a_merged_entry() {
    let parent = call("CA50", CUSTOMER, COMPANY, "inbound", "completed", 1, 30);
    let leg = child(
        call(
            "CA51",
            CUSTOMER,
            DISPATCHER,
            "outbound-dial",
            "no-answer",
            1,
            0,
        ),
        "CA50",
    );
    let mut db = Db::default();
    db.ingest(vec![parent, leg]);
    let root = &db.rows[&CallSid::new("CA50").unwrap()];
    assert_eq!(
        root.derived.display_status, "no-answer",
        "nobody answered the forwarded leg"
    );
    let leg = &db.rows[&CallSid::new("CA51").unwrap()];
    assert_eq!(leg.derived.display_status, "no-answer");
    assert!(leg.derived.merged_from_parent);
}

#[test]
fn metadata_text_is_the_metadata_value() {
    let db = Db::default();
    let mut answered = call(
        "CA1",
        "+19788447773",
        "+16175006181",
        "inbound",
        "completed",
        1,
        40,
    );
    answered.answered_by = Some("human".into());
    answered.queue_time = Some(12);
    answered.refresh_raw();
    let legs = [
        answered,
        child(
            call(
                "CA2",
                "+16175006181",
                "sip:a@x.sip.twilio.com",
                "outbound-dial",
                "no-answer",
                2,
                0,
            ),
            "CA1",
        ),
    ];
    let prepared = Prepared::new(&rules(), legs.to_vec(), db.load_trees(&[]));
    let states = db.states(prepared.lookup());
    let plan = prepared.finish(states);
    assert_eq!(plan.calls.len(), 2);
    for write in &plan.calls {
        let text = write.metadata_json();
        assert_eq!(text, write.metadata().to_string());
        let mut parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            crate::raw_uris::take_raw(&mut parsed),
            Some(write.call.raw.clone())
        );
        // The two parts a store may keep apart: the record, put back under
        // `raw`, gives the same metadata.
        let (lean, raw) = write.metadata_and_raw_json();
        let mut joined: serde_json::Value = serde_json::from_str(&lean).unwrap();
        assert!(joined.get("raw").is_none(), "{lean}");
        joined["raw"] = serde_json::from_str(&raw).unwrap();
        assert_eq!(joined, write.metadata());
    }
}

#[test]
fn the_batch_cache_of_parties_answers_what_the_rules_answer() {
    let rules = rules();
    let mut parties = Parties::new(&rules);
    let values = [
        Some(COMPANY),
        Some(CUSTOMER),
        Some("(508) 514-0320"),
        Some(DISPATCHER),
        Some("client:alice"),
        Some("anonymous"),
        Some(""),
        None,
        Some("+442079460958"),
        Some("not a number"),
    ];
    // Twice over, so the second round is answered from the cache.
    for _ in 0..2 {
        for from in values {
            for to in values {
                for outbound in [false, true] {
                    let expected = rules.party_of(from, to, outbound);
                    assert_eq!(
                        parties.party_of(from, to, outbound),
                        expected,
                        "{from:?} {to:?}"
                    );
                    assert_eq!(
                        parties.display(&expected.endpoint),
                        rules.normalizer.display(&expected.endpoint)
                    );
                }
            }
        }
    }
    // Each distinct text classified once.
    assert_eq!(parties.endpoints.len(), values.len() - 1);
}
