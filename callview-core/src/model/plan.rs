//! The planner: from a batch of calls and the stored call trees it touches,
//! compute every write (`call-model.md` sections 3 and 5).
//!
//! Planning happens in two pure steps around one store lookup:
//!
//! 1. [`Prepared::new`] merges the batch into the stored trees, finds each
//!    tree's root and party, and says which conversations it needs to see
//!    ([`Prepared::lookup`]).
//! 2. [`Prepared::finish`] takes those conversations (with totals over their
//!    rows outside the batch's trees) and returns the [`Plan`]: new
//!    conversations, call rows to insert or update, recomputed counters, and
//!    conversations left empty.
//!
//! Because every tree the batch touches is recomputed whole, and counters are
//! recomputed from rows rather than incremented, the result does not depend
//! on arrival order, page size or how often a batch is repeated.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use crate::call::{Call, CallSid};
use crate::endpoint::{ActualDirection, Endpoint, Party, PartyRules};

use super::facts::InteractionFacts;
use super::interaction::{oldest_first, summarize};
use super::texts::{IncomingText, MessageType, NewestText, StoredText, TextWrite};
use super::types::{
    Aggregate, ConversationCounters, ConversationId, ConversationState, Derived, NewestRoot,
    StoredCall,
};
use crate::text::{MessageSid, Text, TextMedia};

/// Which conversation a write goes to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConversationRef {
    /// A conversation already stored.
    Existing(ConversationId),
    /// One created by this plan, named by its canonical key.
    New(String),
}

/// A contact and conversation to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewConversation {
    /// Canonical key: `contacts.phone_number`.
    pub key: String,
    /// Display form: `contacts.formatted_number`, `display_name` and
    /// `conversations.external_id`.
    pub display: String,
    /// `Calls with +1 (978) 844-7773`.
    pub subject: String,
    /// `conversations.external_id`, unique: the display form, or, when
    /// another conversation already has it (a database adopted from the
    /// original application), the display form qualified by the key.
    pub external_id: String,
}

/// One `messages` row to insert or update.
#[derive(Clone, Debug, PartialEq)]
pub struct CallWrite {
    /// The call as it should be stored.
    pub call: Call,
    /// Its conversation.
    pub conversation: ConversationRef,
    /// The root of its tree.
    pub root_sid: CallSid,
    /// What the model derived.
    pub derived: Derived,
    /// The recording URL to keep.
    pub recording_url: Option<String>,
}

impl CallWrite {
    /// The row's `metadata` JSON: the seed's processed fields plus the raw
    /// Twilio record under `raw`, stored without the URIs that
    /// [`crate::raw_uris`] rebuilds on read.
    pub fn metadata(&self) -> serde_json::Value {
        message_metadata(&self.call, &self.derived)
    }

    /// [`CallWrite::metadata`] as JSON text, serialized straight from the
    /// call (no copy of the raw record): what a store keeping the record in
    /// `metadata` writes (PostgreSQL).
    pub fn metadata_json(&self) -> String {
        let elided = crate::raw_uris::derivable(&self.call.raw);
        let raw = crate::raw_uris::Stored::new(&self.call.raw, elided.as_deref());
        to_json(&self.borrowed_metadata(elided.as_deref(), Some(raw)))
    }

    /// [`CallWrite::metadata_json`] in two parts, for a store that keeps
    /// the record in a column of its own: the metadata without `raw`, and
    /// `raw` (the record without the URIs [`crate::raw_uris`] rebuilds).
    /// Putting the second back under `raw` gives the first's value.
    pub fn metadata_and_raw_json(&self) -> (String, String) {
        let elided = crate::raw_uris::derivable(&self.call.raw);
        let raw = crate::raw_uris::Stored::new(&self.call.raw, elided.as_deref());
        (
            to_json(&self.borrowed_metadata(elided.as_deref(), None)),
            to_json(&raw),
        )
    }

    fn borrowed_metadata<'a>(
        &'a self,
        elided: Option<&[&str]>,
        raw: Option<crate::raw_uris::Stored<'a>>,
    ) -> MessageMetadata<'a> {
        let call = &self.call;
        MessageMetadata {
            actual_direction: self.derived.actual_direction.as_str(),
            answered_by: call.answered_by.as_deref(),
            display_status: self.derived.display_status.as_str(),
            merged_from_parent: self.derived.merged_from_parent,
            queue_time: call.queue_time.map(|q| q.to_string()),
            raw,
            raw_uris: elided.map(crate::raw_uris::marker),
            twilio_direction: call.direction.as_str(),
            twilio_status: call.status.as_str(),
        }
    }
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("JSON values always serialize")
}

/// The fields of [`message_metadata`], borrowed; in key order, so the text
/// is the same as the `Value`'s.
#[derive(serde::Serialize)]
struct MessageMetadata<'a> {
    actual_direction: &'a str,
    answered_by: Option<&'a str>,
    display_status: &'a str,
    merged_from_parent: bool,
    queue_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<crate::raw_uris::Stored<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_uris: Option<serde_json::Value>,
    twilio_direction: &'a str,
    twilio_status: &'a str,
}

/// Builds a `messages.metadata` value for a call: its raw record without
/// the URIs [`crate::raw_uris`] rebuilds on read.
pub fn message_metadata(call: &Call, derived: &Derived) -> serde_json::Value {
    let elided = crate::raw_uris::derivable(&call.raw);
    let mut metadata = serde_json::json!({
        "answered_by": call.answered_by,
        "queue_time": call.queue_time.map(|q| q.to_string()),
        "twilio_direction": call.direction.as_str(),
        "twilio_status": call.status.as_str(),
        "actual_direction": derived.actual_direction.as_str(),
        "display_status": derived.display_status.as_str(),
        "merged_from_parent": derived.merged_from_parent,
        "raw": crate::raw_uris::Stored::new(&call.raw, elided.as_deref()),
    });
    if let Some(keys) = elided {
        metadata[crate::raw_uris::MARKER] = crate::raw_uris::marker(&keys);
    }
    metadata
}

/// New counters for a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterUpdate {
    /// Which conversation.
    pub conversation: ConversationRef,
    /// Its counters, recomputed.
    pub counters: ConversationCounters,
}

/// What a plan does, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlanStats {
    /// Batch calls not stored before.
    pub inserted: u64,
    /// Batch calls whose stored row changed.
    pub updated: u64,
    /// Batch calls already stored exactly so (or older than what is stored).
    pub unchanged: u64,
    /// Stored calls outside the batch whose conversation or tree changed
    /// (children moving under a parent that just arrived).
    pub moved: u64,
    /// Batch texts not stored before.
    pub texts_inserted: u64,
    /// Batch texts whose stored row changed (status, price, media).
    pub texts_updated: u64,
    /// Batch texts already stored exactly so (or older than what is stored).
    pub texts_unchanged: u64,
}

/// Every write for one batch, applied by a store in one transaction, in
/// this order: create `new_conversations`, write `calls`, set `counters`,
/// delete `removed` conversations (and their contacts when no other
/// conversation uses them), then replace the statistics' figures of
/// `interactions` and drop those of `former_roots`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Contacts and conversations to create.
    pub new_conversations: Vec<NewConversation>,
    /// Rows to insert or update.
    pub calls: Vec<CallWrite>,
    /// Text rows to insert or update (written after `calls`).
    pub texts: Vec<TextWrite>,
    /// Counters of every conversation whose rows changed.
    pub counters: Vec<CounterUpdate>,
    /// Conversations left without any call.
    pub removed: Vec<ConversationId>,
    /// The statistics' figures of every interaction whose tree has a
    /// written call (replacing what is stored for its root).
    pub interactions: Vec<InteractionFacts>,
    /// Calls that were roots and are now legs of a tree that arrived:
    /// their figures leave the statistics.
    pub former_roots: Vec<CallSid>,
    /// Counts for the sync report.
    pub stats: PlanStats,
}

impl Plan {
    /// Whether applying the plan would change nothing.
    pub fn is_empty(&self) -> bool {
        self.new_conversations.is_empty()
            && self.calls.is_empty()
            && self.texts.is_empty()
            && self.counters.is_empty()
            && self.removed.is_empty()
            && self.interactions.is_empty()
            && self.former_roots.is_empty()
    }
}

/// The conversations the planner needs to see.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConversationLookup {
    /// Conversations by canonical key (where trees land).
    pub keys: Vec<String>,
    /// Conversations by id (where stored calls of the trees are now).
    pub ids: Vec<ConversationId>,
    /// Calls to leave out of each conversation's totals: every stored call
    /// of the trees, which the planner accounts for itself.
    pub exclude: Vec<CallSid>,
    /// Texts to leave out of each conversation's totals: the stored
    /// versions of the batch's texts.
    pub exclude_texts: Vec<MessageSid>,
    /// External ids a new conversation may take: the store says which are
    /// taken already ([`crate::store::FoundConversations`]).
    pub external_ids: Vec<String>,
}

/// What [`crate::store::IngestTx::load_conversations`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FoundConversations {
    /// The conversations that exist, with their totals.
    pub conversations: Vec<ConversationState>,
    /// The `lookup.external_ids` some conversation already has.
    pub taken_external_ids: Vec<String>,
}

impl From<Vec<ConversationState>> for FoundConversations {
    fn from(conversations: Vec<ConversationState>) -> Self {
        Self {
            conversations,
            taken_external_ids: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct Tree {
    root: CallSid,
    members: Vec<CallSid>,
    key: String,
    display: String,
    direction: ActualDirection,
}

/// A batch merged into the stored trees, waiting for its conversations.
#[derive(Debug)]
pub struct Prepared {
    calls: HashMap<CallSid, Call>,
    stored: HashMap<CallSid, StoredCall>,
    batch: BTreeSet<CallSid>,
    trees: Vec<Tree>,
    derived: HashMap<CallSid, (CallSid, Derived)>,
    texts: Vec<PreparedText>,
    lookup: ConversationLookup,
}

/// [`PartyRules`] with each distinct `from` / `to` of a batch classified,
/// and each party's display form made, once: a page repeats the business's
/// own numbers and its regular callers, and classifying parses a number.
struct Parties<'r> {
    rules: &'r PartyRules,
    endpoints: HashMap<String, Endpoint>,
    displays: HashMap<Endpoint, String>,
}

impl<'r> Parties<'r> {
    fn new(rules: &'r PartyRules) -> Self {
        Self {
            rules,
            endpoints: HashMap::new(),
            displays: HashMap::new(),
        }
    }

    /// `Normalizer::classify` (which reads `None` as `""`).
    fn endpoint(&mut self, raw: Option<&str>) -> Endpoint {
        let text = raw.unwrap_or("");
        if let Some(endpoint) = self.endpoints.get(text) {
            return endpoint.clone();
        }
        let endpoint = self.rules.normalizer.classify(raw);
        self.endpoints.insert(text.to_owned(), endpoint.clone());
        endpoint
    }

    fn party_of(&mut self, from: Option<&str>, to: Option<&str>, outbound: bool) -> Party {
        let (from, to) = (self.endpoint(from), self.endpoint(to));
        self.rules.party_between(from, to, outbound)
    }

    fn external_party(&mut self, call: &Call) -> Party {
        self.party_of(
            call.from.as_deref(),
            call.to.as_deref(),
            call.direction.is_outbound(),
        )
    }

    /// `Normalizer::display`.
    fn display(&mut self, endpoint: &Endpoint) -> String {
        if let Some(display) = self.displays.get(endpoint) {
            return display.clone();
        }
        let display = self.rules.normalizer.display(endpoint);
        self.displays.insert(endpoint.clone(), display.clone());
        display
    }
}

/// A call [`Prepared::finish`] writes, before its record moves into the plan.
struct PendingWrite<'a> {
    sid: &'a CallSid,
    conversation: ConversationRef,
    root_sid: &'a CallSid,
    derived: &'a Derived,
    recording_url: Option<String>,
}

/// A batch text with its party and what is stored of it.
#[derive(Debug)]
struct PreparedText {
    text: Text,
    media: Vec<TextMedia>,
    stored: Option<StoredText>,
    key: String,
    display: String,
    direction: ActualDirection,
}

/// Whether `incoming` is an older version of `current` (Twilio's
/// `date_updated` says so); such a record must not overwrite newer data.
fn is_older(incoming: &Call, current: &Call) -> bool {
    matches!((incoming.date_updated, current.date_updated), (Some(a), Some(b)) if a < b)
}

impl Prepared {
    /// Merges `batch` into `stored` (every stored call of every tree the
    /// batch touches, as [`crate::Store::load_trees`] returns them) and
    /// works out the trees.
    pub fn new(rules: &PartyRules, batch: Vec<Call>, stored: Vec<StoredCall>) -> Self {
        let mut parties = Parties::new(rules);
        let stored: HashMap<CallSid, StoredCall> = stored
            .into_iter()
            .map(|s| (s.call.sid.clone(), s))
            .collect();
        let mut calls: HashMap<CallSid, Call> = stored
            .iter()
            .map(|(sid, s)| (sid.clone(), s.call.clone()))
            .collect();
        let mut batch_sids = BTreeSet::new();
        for call in batch {
            let sid = call.sid.clone();
            batch_sids.insert(sid.clone());
            // An older version never overwrites a newer one; it then counts as unchanged.
            if !calls
                .get(&sid)
                .is_some_and(|current| is_older(&call, current))
            {
                calls.insert(sid, call);
            }
        }

        // Group every call under its root: follow parents that are present.
        let mut members: BTreeMap<CallSid, Vec<CallSid>> = BTreeMap::new();
        for sid in calls.keys() {
            members
                .entry(root_of(&calls, sid))
                .or_default()
                .push(sid.clone());
        }

        let mut trees = Vec::with_capacity(members.len());
        let mut derived = HashMap::with_capacity(calls.len());
        for (root_sid, mut tree_members) in members {
            let root = &calls[&root_sid];
            let mut legs: Vec<&Call> = tree_members
                .iter()
                .filter(|s| **s != root_sid)
                .map(|s| &calls[s])
                .collect();
            legs.sort_by(|a, b| oldest_first(a, b));

            let root_party = parties.external_party(root);
            let party = if root_party.direction == ActualDirection::Internal {
                legs.iter()
                    .map(|leg| parties.external_party(leg))
                    .find(|p| p.external)
                    .unwrap_or(root_party)
            } else {
                root_party
            };

            let summary = summarize(root, &legs);
            derived.insert(
                root_sid.clone(),
                (
                    root_sid.clone(),
                    Derived {
                        actual_direction: party.direction,
                        display_status: summary.display_status,
                        merged_from_parent: !legs.is_empty(),
                    },
                ),
            );
            for leg in &legs {
                derived.insert(
                    leg.sid.clone(),
                    (
                        root_sid.clone(),
                        Derived {
                            actual_direction: parties.external_party(leg).direction,
                            display_status: summarize(leg, &[]).display_status,
                            merged_from_parent: true,
                        },
                    ),
                );
            }
            tree_members.sort();
            trees.push(Tree {
                root: root_sid.clone(),
                members: tree_members,
                display: parties.display(&party.endpoint),
                key: party.endpoint.canonical,
                direction: party.direction,
            });
        }

        let keys: BTreeSet<String> = trees.iter().map(|t| t.key.clone()).collect();
        let ids: BTreeSet<ConversationId> = stored.values().map(|s| s.conversation_id).collect();
        let mut exclude: Vec<CallSid> = stored.keys().cloned().collect();
        exclude.sort();
        let mut external_ids: BTreeSet<String> = BTreeSet::new();
        for tree in &trees {
            external_ids.extend(external_id_candidates(&tree.display, &tree.key));
        }
        let lookup = ConversationLookup {
            keys: keys.into_iter().collect(),
            ids: ids.into_iter().collect(),
            exclude,
            exclude_texts: Vec::new(),
            external_ids: external_ids.into_iter().collect(),
        };
        Self {
            calls,
            stored,
            batch: batch_sids,
            trees,
            derived,
            texts: Vec::new(),
            lookup,
        }
    }

    /// Adds text messages to the batch, with the stored rows of those SIDs
    /// ([`crate::store::IngestTx::load_texts`]). A text repeated in the
    /// batch, or older than what is stored, keeps the newest version
    /// ([`Text::is_older_than`]); a text listed without its media keeps the
    /// stored media.
    pub fn with_texts(
        mut self,
        rules: &PartyRules,
        texts: Vec<IncomingText>,
        stored: Vec<StoredText>,
    ) -> Self {
        let mut parties = Parties::new(rules);
        let mut stored: HashMap<MessageSid, StoredText> = stored
            .into_iter()
            .map(|s| (s.text.sid.clone(), s))
            .collect();
        let mut newest: BTreeMap<MessageSid, IncomingText> = BTreeMap::new();
        for incoming in texts {
            let sid = incoming.text.sid.clone();
            match newest.get_mut(&sid) {
                Some(current) if !incoming.text.is_older_than(&current.text) => {
                    let media = incoming.media.or(current.media.take());
                    *current = IncomingText { media, ..incoming };
                }
                Some(current) => {
                    current.media = current.media.take().or(incoming.media);
                }
                None => {
                    newest.insert(sid, incoming);
                }
            }
        }
        let mut keys: BTreeSet<String> = self.lookup.keys.iter().cloned().collect();
        let mut ids: BTreeSet<ConversationId> = self.lookup.ids.iter().copied().collect();
        let mut external_ids: BTreeSet<String> = self.lookup.external_ids.iter().cloned().collect();
        let mut exclude: BTreeSet<MessageSid> = BTreeSet::new();
        for (sid, incoming) in newest {
            let stored = stored.remove(&sid);
            let text = match &stored {
                Some(s) if incoming.text.is_older_than(&s.text) => s.text.clone(),
                _ => incoming.text,
            };
            let media = incoming
                .media
                .or_else(|| stored.as_ref().map(|s| s.media.clone()))
                .unwrap_or_default();
            let party = parties.party_of(
                text.from.as_deref(),
                text.to.as_deref(),
                text.direction.is_outbound(),
            );
            let display = parties.display(&party.endpoint);
            let key = party.endpoint.canonical;
            keys.insert(key.clone());
            external_ids.extend(external_id_candidates(&display, &key));
            if let Some(s) = &stored {
                ids.insert(s.conversation_id);
                exclude.insert(sid.clone());
            }
            self.texts.push(PreparedText {
                text,
                media,
                stored,
                key,
                display,
                direction: party.direction,
            });
        }
        self.lookup.keys = keys.into_iter().collect();
        self.lookup.ids = ids.into_iter().collect();
        self.lookup.external_ids = external_ids.into_iter().collect();
        self.lookup.exclude_texts = exclude.into_iter().collect();
        self
    }

    /// The statistics' figures of `tree`'s interaction, stored in `target`.
    fn facts(&self, tree: &Tree, target: ConversationRef) -> InteractionFacts {
        let legs: Vec<&Call> = tree
            .members
            .iter()
            .filter(|sid| **sid != tree.root)
            .map(|sid| &self.calls[sid])
            .collect();
        InteractionFacts::of_tree(&self.calls[&tree.root], &legs, tree.direction, target)
    }

    /// The conversations [`Prepared::finish`] needs.
    pub fn lookup(&self) -> &ConversationLookup {
        &self.lookup
    }

    /// Computes the plan, given the conversations named by
    /// [`Prepared::lookup`] (those that exist), each with totals over its
    /// rows outside `lookup().exclude`, and which of its external ids are
    /// taken.
    pub fn finish(mut self, found: impl Into<FoundConversations>) -> Plan {
        let FoundConversations {
            conversations,
            taken_external_ids,
        } = found.into();
        let mut taken: BTreeSet<String> = taken_external_ids.into_iter().collect();
        let by_key: HashMap<&str, &ConversationState> =
            conversations.iter().map(|c| (c.key.as_str(), c)).collect();
        let by_id: HashMap<ConversationId, &ConversationState> =
            conversations.iter().map(|c| (c.id, c)).collect();

        let mut plan = Plan::default();
        let mut writes: Vec<PendingWrite<'_>> = Vec::new();
        let mut landed: BTreeMap<ConversationRef, Aggregate> = BTreeMap::new();
        let mut dirty: BTreeSet<ConversationRef> = BTreeSet::new();
        let mut created: BTreeSet<String> = BTreeSet::new();

        // The conversation of `key`: stored, or created by this plan.
        let mut target_of = |key: &str, display: &str, plan: &mut Plan| match by_key.get(key) {
            Some(c) => ConversationRef::Existing(c.id),
            None => {
                if created.insert(key.to_owned()) {
                    let external_id = external_id_candidates(display, key)
                        .into_iter()
                        .find(|candidate| !taken.contains(candidate))
                        .unwrap_or_else(|| key.to_owned());
                    taken.insert(external_id.clone());
                    plan.new_conversations.push(NewConversation {
                        key: key.to_owned(),
                        subject: format!("Calls with {display}"),
                        display: display.to_owned(),
                        external_id,
                    });
                }
                ConversationRef::New(key.to_owned())
            }
        };

        for tree in &self.trees {
            let target = target_of(&tree.key, &tree.display, &mut plan);
            let aggregate = landed.entry(target.clone()).or_default();
            let mut tree_written = false;
            for sid in &tree.members {
                let call = &self.calls[sid];
                let (root_sid, derived) = &self.derived[sid];
                aggregate.calls += 1;
                aggregate.last_call_at = max_time(aggregate.last_call_at, call.start_time);
                if sid == root_sid {
                    aggregate.root_calls += 1;
                    aggregate.root_duration += u64::from(call.duration_secs());
                    let candidate = NewestRoot {
                        start_time: call.start_time,
                        sid: sid.clone(),
                        direction: tree.direction,
                        display_status: derived.display_status.clone(),
                    };
                    if aggregate
                        .newest_root
                        .as_ref()
                        .is_none_or(|n| candidate.order_key() > n.order_key())
                    {
                        aggregate.newest_root = Some(candidate);
                    }
                }

                let stored = self.stored.get(sid);
                let in_batch = self.batch.contains(sid);
                let unchanged = stored.is_some_and(|s| {
                    ConversationRef::Existing(s.conversation_id) == target
                        && s.root_sid == *root_sid
                        && s.derived == *derived
                        && s.call.raw == call.raw
                });
                if unchanged {
                    if in_batch {
                        plan.stats.unchanged += 1;
                    }
                    continue;
                }
                tree_written = true;
                if stored.is_some_and(|s| s.is_root()) && sid != root_sid {
                    plan.former_roots.push(sid.clone());
                }
                match (stored, in_batch) {
                    (None, _) => plan.stats.inserted += 1,
                    (Some(_), true) => plan.stats.updated += 1,
                    (Some(_), false) => plan.stats.moved += 1,
                }
                dirty.insert(target.clone());
                if let Some(s) = stored {
                    dirty.insert(ConversationRef::Existing(s.conversation_id));
                }
                writes.push(PendingWrite {
                    sid,
                    conversation: target.clone(),
                    root_sid,
                    derived,
                    recording_url: stored.and_then(|s| s.recording_url.clone()),
                });
            }
            if tree_written {
                plan.interactions.push(self.facts(tree, target));
            }
        }
        // The written calls move into the plan (no copy of their records):
        // every call is in exactly one tree, so each is taken once.
        let mut calls = std::mem::take(&mut self.calls);
        plan.calls = writes
            .into_iter()
            .filter_map(|w| {
                Some(CallWrite {
                    call: calls.remove(w.sid)?,
                    conversation: w.conversation,
                    root_sid: w.root_sid.clone(),
                    derived: w.derived.clone(),
                    recording_url: w.recording_url,
                })
            })
            .collect();
        debug_assert_eq!(
            plan.calls.len() as u64,
            plan.stats.inserted + plan.stats.updated + plan.stats.moved
        );
        for prepared in &self.texts {
            let target = target_of(&prepared.key, &prepared.display, &mut plan);
            let aggregate = landed.entry(target.clone()).or_default();
            aggregate.texts += 1;
            let newest = NewestText {
                at: prepared.text.at(),
                sid: prepared.text.sid.clone(),
                kind: prepared.text.kind(),
            };
            aggregate.newest_text = NewestText::newer(aggregate.newest_text.take(), Some(&newest));
            let stored = prepared.stored.as_ref();
            let unchanged = stored.is_some_and(|s| {
                ConversationRef::Existing(s.conversation_id) == target
                    && s.actual_direction == prepared.direction
                    && s.media == prepared.media
                    && s.text.raw == prepared.text.raw
            });
            if unchanged {
                plan.stats.texts_unchanged += 1;
                continue;
            }
            match stored {
                None => plan.stats.texts_inserted += 1,
                Some(s) => {
                    plan.stats.texts_updated += 1;
                    dirty.insert(ConversationRef::Existing(s.conversation_id));
                }
            }
            dirty.insert(target.clone());
            plan.texts.push(TextWrite {
                text: prepared.text.clone(),
                conversation: target,
                actual_direction: prepared.direction,
                media: prepared.media.clone(),
            });
        }
        for conversation in dirty {
            let mut total = match &conversation {
                ConversationRef::Existing(id) => {
                    by_id.get(id).map(|c| c.rest.clone()).unwrap_or_default()
                }
                ConversationRef::New(_) => Aggregate::default(),
            };
            if let Some(add) = landed.get(&conversation) {
                merge(&mut total, add);
            }
            if total.calls == 0 && total.texts == 0 {
                if let ConversationRef::Existing(id) = conversation {
                    plan.removed.push(id);
                }
                continue;
            }
            plan.counters.push(CounterUpdate {
                conversation,
                counters: counters_of(total),
            });
        }
        plan
    }
}

/// The external ids a new conversation of `key` shown as `display` may
/// take, in order of preference: `external_id` is unique, and two keys can
/// share a display form in a database adopted from the original
/// application.
fn external_id_candidates(display: &str, key: &str) -> Vec<String> {
    let mut candidates = vec![display.to_owned(), format!("{display} ({key})")];
    candidates.extend((2..=9).map(|n| format!("{display} ({key}) #{n}")));
    // Last, the key itself (unique among contacts).
    candidates.push(key.to_owned());
    candidates
}

fn root_of(calls: &HashMap<CallSid, Call>, sid: &CallSid) -> CallSid {
    let mut current = sid;
    let mut seen = BTreeSet::new();
    seen.insert(current);
    while let Some(parent) = calls[current].parent_call_sid.as_ref() {
        if !calls.contains_key(parent) || !seen.insert(parent) {
            break;
        }
        current = parent;
    }
    current.clone()
}

fn max_time(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// A conversation's counters from the totals over all its rows: calls
/// count root calls only (the seed's `total_calls`); the newest message is
/// the newest text when it is newer than every call.
fn counters_of(total: Aggregate) -> ConversationCounters {
    let text_at = total.newest_text.as_ref().and_then(|t| t.at);
    let text_is_newest = total.newest_text.is_some()
        && (total.calls == 0 || (text_at.is_some() && text_at > total.last_call_at));
    ConversationCounters {
        total_calls: total.root_calls,
        total_duration: total.root_duration,
        last_call_direction: total.newest_root.as_ref().map(|n| n.direction),
        last_message_at: max_time(total.last_call_at, text_at),
        last_display_status: total.newest_root.as_ref().map(|n| n.display_status.clone()),
        last_root_sid: total.newest_root.map(|n| n.sid),
        total_messages: total.texts,
        last_message_type: if text_is_newest {
            total
                .newest_text
                .as_ref()
                .map(|t| MessageType::from(t.kind))
        } else if total.calls > 0 {
            Some(MessageType::Call)
        } else {
            None
        },
        last_text_sid: total.newest_text.map(|t| t.sid),
    }
}

fn merge(total: &mut Aggregate, add: &Aggregate) {
    total.texts += add.texts;
    total.newest_text = NewestText::newer(total.newest_text.take(), add.newest_text.as_ref());
    total.calls += add.calls;
    total.root_calls += add.root_calls;
    total.root_duration += add.root_duration;
    total.last_call_at = max_time(total.last_call_at, add.last_call_at);
    if let Some(candidate) = &add.newest_root {
        if total
            .newest_root
            .as_ref()
            .is_none_or(|n| candidate.order_key() > n.order_key())
        {
            total.newest_root = Some(candidate.clone());
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
