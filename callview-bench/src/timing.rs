//! Where a sync's time goes: a [`Store`] and a [`TwilioClient`] wrapper
//! that add up the time spent in each method (two clock reads per call,
//! negligible next to a page of 1,000 calls).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use callview_core::annotations::{Annotations, CallEdit, ContactEdit, EditMeta};
use callview_core::call::CallSid;
use callview_core::model::{
    ConversationId, ConversationLookup, FoundConversations, Plan, StoredCall,
};
use callview_core::model::{MediaPlan, StoredRecording};
use callview_core::recording::{Recording, RecordingSid, Sentence, Transcript};
use callview_core::store::CallMedia;
use callview_core::store::{
    ContactRecord, ConversationPage, ConversationQuery, ConversationView, IngestTx, MessagePage,
    MessageQuery, RefreshUpdate, StoreCounts, StoreError, TagCount, UnfinishedQuery,
};
use callview_core::twilio::{
    AudioFormat, CallFilter, CallPage, IncomingNumber, PageToken, RecordingAudio, RecordingFilter,
    RecordingPage, TranscriptFilter, TranscriptPage,
};
use callview_core::{Call, Interaction, Store, TwilioClient, TwilioError};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Calls and total time of one method.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct MethodTime {
    /// How many calls.
    pub calls: u64,
    /// Their total duration, milliseconds.
    pub total_ms: f64,
}

/// Time per method name, shared by the clones of a wrapper.
#[derive(Clone, Debug, Default)]
pub struct Timings(Arc<Mutex<BTreeMap<&'static str, MethodTime>>>);

impl Timings {
    fn add(&self, name: &'static str, elapsed: Duration) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(name).or_default();
        entry.calls += 1;
        entry.total_ms += elapsed.as_secs_f64() * 1000.0;
    }

    /// What was recorded so far.
    pub fn snapshot(&self) -> BTreeMap<&'static str, MethodTime> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets everything recorded.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Total milliseconds of one method (0 when never called).
    pub fn total_ms(&self, name: &str) -> f64 {
        self.snapshot().get(name).map_or(0.0, |m| m.total_ms)
    }
}

async fn timed<T>(
    timings: &Timings,
    name: &'static str,
    f: impl std::future::Future<Output = T>,
) -> T {
    let start = Instant::now();
    let out = f.await;
    timings.add(name, start.elapsed());
    out
}

/// A [`Store`] that times every call of the store it wraps.
pub struct TimedStore {
    inner: Arc<dyn Store>,
    /// The times.
    pub timings: Timings,
}

impl TimedStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            timings: Timings::default(),
        }
    }
}

/// An [`IngestTx`] timing each step under the store's method names
/// (`store.load_trees`, `store.load_conversations`, `store.apply`, ...).
struct TimedIngest {
    inner: Box<dyn IngestTx>,
    timings: Timings,
}

#[async_trait]
impl IngestTx for TimedIngest {
    async fn load_trees(&mut self, sids: &[CallSid]) -> Result<Vec<StoredCall>, StoreError> {
        timed(
            &self.timings,
            "store.load_trees",
            self.inner.load_trees(sids),
        )
        .await
    }

    async fn load_texts(
        &mut self,
        sids: &[callview_core::text::MessageSid],
    ) -> Result<Vec<callview_core::model::StoredText>, StoreError> {
        timed(
            &self.timings,
            "store.load_texts",
            self.inner.load_texts(sids),
        )
        .await
    }

    async fn load_conversations(
        &mut self,
        lookup: &ConversationLookup,
    ) -> Result<FoundConversations, StoreError> {
        timed(
            &self.timings,
            "store.load_conversations",
            self.inner.load_conversations(lookup),
        )
        .await
    }

    async fn apply(&mut self, plan: Plan) -> Result<(), StoreError> {
        timed(&self.timings, "store.apply", self.inner.apply(plan)).await
    }

    async fn load_media(
        &mut self,
        recordings: &[RecordingSid],
        transcripts: &[String],
    ) -> Result<(Vec<StoredRecording>, Vec<Transcript>), StoreError> {
        timed(
            &self.timings,
            "store.load_media",
            self.inner.load_media(recordings, transcripts),
        )
        .await
    }

    async fn recordings_created_between(
        &mut self,
        after: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<RecordingSid>, StoreError> {
        timed(
            &self.timings,
            "store.recordings_created_between",
            self.inner.recordings_created_between(after, before),
        )
        .await
    }

    async fn apply_media(&mut self, plan: MediaPlan) -> Result<(), StoreError> {
        timed(
            &self.timings,
            "store.apply_media",
            self.inner.apply_media(plan),
        )
        .await
    }

    async fn write_cursor(&mut self, name: &str, value: &str) -> Result<(), StoreError> {
        timed(
            &self.timings,
            "store.write_cursor",
            self.inner.write_cursor(name, value),
        )
        .await
    }

    async fn record_refresh(&mut self, updates: &[RefreshUpdate]) -> Result<(), StoreError> {
        self.inner.record_refresh(updates).await
    }

    async fn confirm_sync_lock(&mut self) -> Result<(), StoreError> {
        timed(
            &self.timings,
            "store.confirm_sync_lock",
            self.inner.confirm_sync_lock(),
        )
        .await
    }

    async fn edit_contact(
        &mut self,
        id: i64,
        edit: &ContactEdit,
        expected_version: Option<i64>,
        meta: &EditMeta,
    ) -> Result<ContactRecord, StoreError> {
        self.inner
            .edit_contact(id, edit, expected_version, meta)
            .await
    }

    async fn ensure_contact(&mut self, key: &str, display: &str) -> Result<i64, StoreError> {
        self.inner.ensure_contact(key, display).await
    }

    async fn edit_call(
        &mut self,
        id: i64,
        edit: &CallEdit,
        expected_version: Option<i64>,
        meta: &EditMeta,
    ) -> Result<Annotations, StoreError> {
        self.inner.edit_call(id, edit, expected_version, meta).await
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let timings = self.timings;
        timed(&timings, "store.commit", self.inner.commit()).await
    }
}

#[async_trait]
impl Store for TimedStore {
    async fn begin_ingest(&self) -> Result<Box<dyn IngestTx>, StoreError> {
        let inner = timed(
            &self.timings,
            "store.begin_ingest",
            self.inner.begin_ingest(),
        )
        .await?;
        Ok(Box::new(TimedIngest {
            inner,
            timings: self.timings.clone(),
        }))
    }

    async fn load_trees(&self, sids: &[CallSid]) -> Result<Vec<StoredCall>, StoreError> {
        timed(
            &self.timings,
            "store.load_trees",
            self.inner.load_trees(sids),
        )
        .await
    }

    async fn read_cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        timed(
            &self.timings,
            "store.read_cursor",
            self.inner.read_cursor(name),
        )
        .await
    }

    async fn write_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        timed(
            &self.timings,
            "store.write_cursor",
            self.inner.write_cursor(name, value),
        )
        .await
    }

    async fn unfinished_calls(
        &self,
        query: &UnfinishedQuery,
    ) -> Result<Vec<StoredCall>, StoreError> {
        timed(
            &self.timings,
            "store.unfinished_calls",
            self.inner.unfinished_calls(query),
        )
        .await
    }

    async fn list_conversations(
        &self,
        query: &ConversationQuery,
    ) -> Result<ConversationPage, StoreError> {
        timed(
            &self.timings,
            "store.list_conversations",
            self.inner.list_conversations(query),
        )
        .await
    }

    async fn conversation(&self, id: ConversationId) -> Result<ConversationView, StoreError> {
        timed(
            &self.timings,
            "store.conversation",
            self.inner.conversation(id),
        )
        .await
    }

    async fn conversation_calls(&self, id: ConversationId) -> Result<Vec<StoredCall>, StoreError> {
        timed(
            &self.timings,
            "store.conversation_calls",
            self.inner.conversation_calls(id),
        )
        .await
    }

    async fn contact(&self, id: i64) -> Result<ContactRecord, StoreError> {
        timed(&self.timings, "store.contact", self.inner.contact(id)).await
    }

    async fn message(&self, id: i64) -> Result<(ConversationId, Interaction), StoreError> {
        timed(&self.timings, "store.message", self.inner.message(id)).await
    }

    async fn contacts_page(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ContactRecord>, StoreError> {
        self.inner.contacts_page(after, limit).await
    }

    async fn export_calls(
        &self,
        query: &callview_core::export::ExportQuery,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<callview_core::export::ExportRow>, StoreError> {
        timed(
            &self.timings,
            "store.export_calls",
            self.inner.export_calls(query, after, limit),
        )
        .await
    }

    async fn tags(&self) -> Result<Vec<TagCount>, StoreError> {
        timed(&self.timings, "store.tags", self.inner.tags()).await
    }

    async fn create_token(
        &self,
        token: &callview_core::access::NewToken,
    ) -> Result<callview_core::access::TokenRecord, StoreError> {
        self.inner.create_token(token).await
    }

    async fn tokens(&self) -> Result<Vec<callview_core::access::TokenRecord>, StoreError> {
        timed(&self.timings, "store.tokens", self.inner.tokens()).await
    }

    async fn revoke_token(
        &self,
        name: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<callview_core::access::TokenRecord, StoreError> {
        self.inner.revoke_token(name, at).await
    }

    async fn authenticate(
        &self,
        hash: &callview_core::access::TokenHash,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<callview_core::access::TokenRecord>, StoreError> {
        timed(
            &self.timings,
            "store.authenticate",
            self.inner.authenticate(hash, now),
        )
        .await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        timed(&self.timings, "store.counts", self.inner.counts()).await
    }

    async fn root_sids_page(
        &self,
        after: Option<&CallSid>,
        limit: u32,
    ) -> Result<Vec<CallSid>, StoreError> {
        timed(
            &self.timings,
            "store.root_sids_page",
            self.inner.root_sids_page(after, limit),
        )
        .await
    }

    async fn stats(
        &self,
        query: &callview_core::stats::StatsQuery,
    ) -> Result<callview_core::stats::StatsRows, StoreError> {
        timed(&self.timings, "store.stats", self.inner.stats(query)).await
    }

    async fn recording(&self, sid: &RecordingSid) -> Result<StoredRecording, StoreError> {
        timed(&self.timings, "store.recording", self.inner.recording(sid)).await
    }

    async fn unfinished_media_since(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        timed(
            &self.timings,
            "store.unfinished_media_since",
            self.inner.unfinished_media_since(),
        )
        .await
    }

    async fn media_of_calls(&self, sids: &[CallSid]) -> Result<CallMedia, StoreError> {
        timed(
            &self.timings,
            "store.media_of_calls",
            self.inner.media_of_calls(sids),
        )
        .await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.inner.health().await
    }

    async fn try_lock_sync(&self) -> Result<bool, StoreError> {
        timed(
            &self.timings,
            "store.try_lock_sync",
            self.inner.try_lock_sync(),
        )
        .await
    }

    async fn unlock_sync(&self) -> Result<(), StoreError> {
        timed(&self.timings, "store.unlock_sync", self.inner.unlock_sync()).await
    }

    async fn messages(
        &self,
        id: ConversationId,
        query: &MessageQuery,
    ) -> Result<MessagePage, StoreError> {
        timed(
            &self.timings,
            "store.messages",
            self.inner.messages(id, query),
        )
        .await
    }

    async fn texts(
        &self,
        id: ConversationId,
        query: &MessageQuery,
    ) -> Result<Vec<callview_core::model::StoredText>, StoreError> {
        timed(&self.timings, "store.texts", self.inner.texts(id, query)).await
    }

    async fn text(
        &self,
        sid: &callview_core::text::MessageSid,
    ) -> Result<callview_core::model::StoredText, StoreError> {
        self.inner.text(sid).await
    }
}

/// A [`TwilioClient`] that times every call of the client it wraps
/// (request, transfer and parsing).
pub struct TimedClient {
    inner: Arc<dyn TwilioClient>,
    /// The times.
    pub timings: Timings,
}

impl TimedClient {
    /// Wraps `inner`, recording into `timings`.
    pub fn new(inner: Arc<dyn TwilioClient>, timings: Timings) -> Self {
        Self { inner, timings }
    }
}

#[async_trait]
impl TwilioClient for TimedClient {
    async fn list_calls_page(
        &self,
        filter: &CallFilter,
        page: Option<&PageToken>,
    ) -> Result<CallPage, TwilioError> {
        timed(
            &self.timings,
            "twilio.list_calls_page",
            self.inner.list_calls_page(filter, page),
        )
        .await
    }

    async fn fetch_call(&self, sid: &CallSid) -> Result<Call, TwilioError> {
        timed(
            &self.timings,
            "twilio.fetch_call",
            self.inner.fetch_call(sid),
        )
        .await
    }

    async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
        timed(
            &self.timings,
            "twilio.list_incoming_numbers",
            self.inner.list_incoming_numbers(),
        )
        .await
    }

    async fn list_recordings_page(
        &self,
        filter: &RecordingFilter,
        page: Option<&PageToken>,
    ) -> Result<RecordingPage, TwilioError> {
        timed(
            &self.timings,
            "twilio.list_recordings_page",
            self.inner.list_recordings_page(filter, page),
        )
        .await
    }

    async fn fetch_recording(&self, sid: &RecordingSid) -> Result<Recording, TwilioError> {
        timed(
            &self.timings,
            "twilio.fetch_recording",
            self.inner.fetch_recording(sid),
        )
        .await
    }

    async fn list_transcriptions_page(
        &self,
        page_size: u32,
        page: Option<&PageToken>,
    ) -> Result<TranscriptPage, TwilioError> {
        timed(
            &self.timings,
            "twilio.list_transcriptions_page",
            self.inner.list_transcriptions_page(page_size, page),
        )
        .await
    }

    async fn list_intelligence_transcripts_page(
        &self,
        filter: &TranscriptFilter,
        page: Option<&PageToken>,
    ) -> Result<TranscriptPage, TwilioError> {
        timed(
            &self.timings,
            "twilio.list_intelligence_transcripts_page",
            self.inner.list_intelligence_transcripts_page(filter, page),
        )
        .await
    }

    async fn transcript_sentences(
        &self,
        transcript_sid: &str,
    ) -> Result<Vec<Sentence>, TwilioError> {
        timed(
            &self.timings,
            "twilio.transcript_sentences",
            self.inner.transcript_sentences(transcript_sid),
        )
        .await
    }

    async fn recording_audio(
        &self,
        sid: &RecordingSid,
        format: AudioFormat,
    ) -> Result<RecordingAudio, TwilioError> {
        timed(
            &self.timings,
            "twilio.recording_audio",
            self.inner.recording_audio(sid, format),
        )
        .await
    }

    async fn list_texts_page(
        &self,
        filter: &callview_core::twilio::TextFilter,
        page: Option<&PageToken>,
    ) -> Result<callview_core::twilio::TextPage, TwilioError> {
        timed(
            &self.timings,
            "twilio.list_texts_page",
            self.inner.list_texts_page(filter, page),
        )
        .await
    }

    async fn text_media(
        &self,
        sid: &callview_core::text::MessageSid,
    ) -> Result<Vec<callview_core::text::TextMedia>, TwilioError> {
        timed(
            &self.timings,
            "twilio.text_media",
            self.inner.text_media(sid),
        )
        .await
    }

    async fn text_media_content(
        &self,
        sid: &callview_core::text::MessageSid,
        media_sid: &str,
    ) -> Result<RecordingAudio, TwilioError> {
        self.inner.text_media_content(sid, media_sid).await
    }

    async fn send_text(
        &self,
        text: &callview_core::twilio::OutgoingText,
    ) -> Result<callview_core::text::Text, TwilioError> {
        self.inner.send_text(text).await
    }
}

/// The recorded times as rows `[method, calls, total ms, ms per call]`.
pub fn rows(timings: &BTreeMap<&'static str, MethodTime>) -> Vec<Vec<String>> {
    timings
        .iter()
        .map(|(name, t)| {
            vec![
                (*name).to_owned(),
                t.calls.to_string(),
                format!("{:.1}", t.total_ms),
                format!("{:.3}", t.total_ms / t.calls.max(1) as f64),
            ]
        })
        .collect()
}
