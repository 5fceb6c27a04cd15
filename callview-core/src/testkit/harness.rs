//! [`Harness`]: a store, a [`MockTwilio`] and a [`SyncEngine`] wired
//! together, with the look-ups the conformance tests repeat.

use std::sync::Arc;

use crate::call::Call;
use crate::endpoint::PartyRules;
use crate::model::{ConversationId, Interaction, PlanStats, StoredCall};
use crate::store::{ConversationRecord, ConversationView, Store};
use crate::sync::{SyncEngine, SyncMode, SyncReport};

use super::builder::{rules, t0};
use super::check::{all_conversations, assert_invariants, snapshot, StoreSnapshot};
use super::mock::MockTwilio;

/// A store under test with a mock Twilio account and a sync engine.
///
/// Every method that writes checks [`super::check_invariants`] afterwards
/// and panics on a violation, so "counters equal rows after each step" is
/// asserted everywhere.
#[derive(Clone)]
pub struct Harness {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// The mock account the engine syncs from.
    pub mock: Arc<MockTwilio>,
    /// The engine (rules: [`rules`], i.e. `COMPANY` owned).
    pub engine: SyncEngine,
    /// The rules [`Harness::ingest`] plans with.
    pub rules: PartyRules,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// A harness on `store` with [`rules`] and an empty mock account.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with(store, MockTwilio::new(), rules())
    }

    /// A harness on `store` with the given mock account and engine rules.
    pub fn with(store: Arc<dyn Store>, mock: MockTwilio, rules: PartyRules) -> Self {
        let mock = Arc::new(mock);
        let engine = SyncEngine::new(mock.clone(), store.clone(), rules.clone());
        Self {
            store,
            mock,
            engine,
            rules,
        }
    }

    /// Plans and applies one batch with [`Harness::rules`], then checks the
    /// invariants.
    ///
    /// # Panics
    /// When the store fails or an invariant breaks.
    pub async fn ingest(&self, batch: Vec<Call>) -> PlanStats {
        let stats = self
            .engine
            .ingest(&self.rules, batch)
            .await
            .unwrap_or_else(|e| panic!("ingest failed: {e}"));
        assert_invariants(self.store.as_ref()).await;
        stats
    }

    /// Plans and applies one batch of texts in one transaction, then
    /// checks the invariants.
    ///
    /// # Panics
    /// When the store fails or an invariant breaks.
    pub async fn ingest_texts(&self, texts: Vec<crate::model::IncomingText>) -> PlanStats {
        let mut tx = self.store.begin_ingest().await.expect("begin an ingest");
        let stats = crate::text_sync::ingest_texts_in(tx.as_mut(), &self.rules, texts)
            .await
            .unwrap_or_else(|e| panic!("ingesting texts failed: {e}"));
        tx.commit().await.expect("commit");
        assert_invariants(self.store.as_ref()).await;
        stats
    }

    /// Ingests each call as its own batch, in the order given.
    pub async fn ingest_one_by_one(&self, calls: Vec<Call>) -> PlanStats {
        let mut total = PlanStats::default();
        for call in calls {
            let s = self.ingest(vec![call]).await;
            total.inserted += s.inserted;
            total.updated += s.updated;
            total.unchanged += s.unchanged;
            total.moved += s.moved;
        }
        total
    }

    /// Runs a sync of the mock account, then checks the invariants.
    ///
    /// # Panics
    /// When the sync fails or an invariant breaks.
    pub async fn sync(&self, mode: SyncMode) -> SyncReport {
        let report = self
            .engine
            .run(mode, None)
            .await
            .unwrap_or_else(|e| panic!("sync failed: {e}"));
        assert_invariants(self.store.as_ref()).await;
        report
    }

    /// A sync of everything since a day before [`t0`].
    pub async fn sync_all(&self) -> SyncReport {
        self.sync(SyncMode::Since(t0() - chrono::Duration::days(1)))
            .await
    }

    /// Every conversation, newest activity first.
    pub async fn conversations(&self) -> Vec<ConversationView> {
        all_conversations(self.store.as_ref())
            .await
            .unwrap_or_else(|e| panic!("listing conversations failed: {e}"))
    }

    /// The canonical keys of every conversation, sorted.
    pub async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .conversations()
            .await
            .into_iter()
            .map(|v| v.contact.phone_number)
            .collect();
        keys.sort();
        keys
    }

    /// The conversation whose contact key is `key`, if any.
    pub async fn find(&self, key: &str) -> Option<ConversationView> {
        self.conversations()
            .await
            .into_iter()
            .find(|v| v.contact.phone_number == key)
    }

    /// The conversation whose contact key is `key`.
    ///
    /// # Panics
    /// When there is none.
    pub async fn conversation(&self, key: &str) -> ConversationView {
        match self.find(key).await {
            Some(view) => view,
            None => panic!(
                "no conversation with key {key:?}; keys are {:?}",
                self.keys().await
            ),
        }
    }

    /// The id of the conversation with key `key`.
    pub async fn id(&self, key: &str) -> ConversationId {
        self.conversation(key).await.conversation.id
    }

    /// The messages (interactions) of the conversation with key `key`.
    pub async fn messages(&self, key: &str) -> Vec<Interaction> {
        let id = self.id(key).await;
        super::check::all_messages(self.store.as_ref(), id)
            .await
            .unwrap_or_else(|e| panic!("messages({id}) failed: {e}"))
    }

    /// The stored row of `sid`, wherever it is.
    pub async fn row(&self, sid: &str) -> Option<StoredCall> {
        for view in self.conversations().await {
            let calls = self
                .store
                .conversation_calls(view.conversation.id)
                .await
                .unwrap_or_else(|e| panic!("conversation_calls failed: {e}"));
            if let Some(row) = calls.into_iter().find(|r| r.call.sid.as_str() == sid) {
                return Some(row);
            }
        }
        None
    }

    /// The stored row of `sid` and the key of its conversation.
    ///
    /// # Panics
    /// When the call is not stored.
    pub async fn located(&self, sid: &str) -> (String, StoredCall) {
        for view in self.conversations().await {
            let calls = self
                .store
                .conversation_calls(view.conversation.id)
                .await
                .unwrap_or_else(|e| panic!("conversation_calls failed: {e}"));
            if let Some(row) = calls.into_iter().find(|r| r.call.sid.as_str() == sid) {
                return (view.contact.phone_number, row);
            }
        }
        panic!("call {sid} is not stored")
    }

    /// A [`StoreSnapshot`] of the store.
    pub async fn snapshot(&self) -> StoreSnapshot {
        snapshot(self.store.as_ref())
            .await
            .unwrap_or_else(|e| panic!("snapshot failed: {e}"))
    }

    /// Every conversation record and every row including database ids and
    /// `updated_at`: equal before and after an operation means it wrote
    /// nothing.
    pub async fn raw_state(&self) -> Vec<(ConversationRecord, Vec<StoredCall>)> {
        let mut state = Vec::new();
        for view in self.conversations().await {
            let mut calls = self
                .store
                .conversation_calls(view.conversation.id)
                .await
                .unwrap_or_else(|e| panic!("conversation_calls failed: {e}"));
            calls.sort_by(|a, b| a.call.sid.cmp(&b.call.sid));
            state.push((view.conversation, calls));
        }
        state.sort_by_key(|(c, _)| c.id);
        state
    }
}
