//! Conformance tests of recordings and transcripts: attached to their call
//! whatever the order, several per call, deletion, versions, the seed's
//! `recording_url` and `transcription_text`, search and the filter.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::call::{Call, CallSid};
use crate::model::plan_media;
use crate::model::MediaBatch;
use crate::recording::{Recording, RecordingSid, Sentence, Transcript};
use crate::store::{ConversationQuery, Search, Store};

use super::builder::*;
use super::harness::Harness;

const CUSTOMER: &str = "+15550001111";

fn recording(n: u64, call: &str, created: DateTime<Utc>, status: &str) -> Recording {
    Recording::from_value(json!({
        "sid": format!("RE{n:032x}"),
        "account_sid": "ACmock",
        "call_sid": call,
        "status": status,
        "duration": if status == "completed" { "30" } else { "-1" },
        "channels": 2,
        "source": "DialVerb",
        "start_time": crate::call::format_rfc2822(&created),
        "date_created": crate::call::format_rfc2822(&created),
        "date_updated": crate::call::format_rfc2822(&(created + chrono::Duration::seconds(if status == "completed" { 60 } else { 0 }))),
        "price": "-0.0025",
        "price_unit": "USD",
    }))
    .expect("a valid recording")
}

fn rsid(n: u64) -> RecordingSid {
    RecordingSid::new(format!("RE{n:032x}")).expect("valid")
}

fn answered(sid: &str, minute: i64) -> Call {
    CallBuilder::new(sid)
        .from(CUSTOMER)
        .to(COMPANY)
        .direction("inbound")
        .status("completed")
        .start(at(minute))
        .duration(60)
        .build()
}

fn leg(sid: &str, parent: &str, minute: i64) -> Call {
    CallBuilder::new(sid)
        .from(COMPANY)
        .to("sip:alice@example.sip.twilio.com")
        .direction("outbound-dial")
        .status("completed")
        .start(at(minute))
        .duration(40)
        .parent(parent)
        .build()
}

fn legacy(n: u64, recording: &RecordingSid, text: &str, created: DateTime<Utc>) -> Transcript {
    Transcript::from_legacy(json!({
        "sid": format!("TR{n:032x}"),
        "recording_sid": recording.as_str(),
        "status": "completed",
        "transcription_text": text,
        "date_created": crate::call::format_rfc2822(&created),
        "date_updated": crate::call::format_rfc2822(&created),
    }))
    .expect("a valid transcription")
}

/// The root call row's `recording_url` and `transcription_text`, read back
/// through the conversation's messages.
async fn columns(h: &Harness, sid: &str) -> (Option<String>, Vec<RecordingSid>) {
    let row = h
        .row(sid)
        .await
        .unwrap_or_else(|| panic!("call {sid} is stored"));
    let media = h
        .store
        .media_of_calls(&[CallSid::new(sid).expect("sid")])
        .await
        .expect("media");
    let sids = media
        .recordings
        .iter()
        .filter(|r| r.deleted_at.is_none())
        .map(|r| r.recording.sid.clone())
        .collect();
    (row.recording_url, sids)
}

/// A recording synced before its call, or after it, ends attached to it;
/// the call's `recording_url` is the server path of its newest recording.
pub async fn recordings_attach_in_either_order(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let a = sid(1);
    // The recording first: Twilio lists it, the call is not listed yet.
    h.mock
        .upsert_recording(recording(1, &a, at(2), "completed"));
    h.sync_all().await;
    assert_eq!(
        h.store
            .recording(&rsid(1))
            .await
            .expect("stored")
            .recording
            .call_sid,
        CallSid::new(a.clone())
    );
    h.mock.upsert(answered(&a, 0));
    h.sync_all().await;
    let (url, sids) = columns(&h, &a).await;
    assert_eq!(
        url.as_deref(),
        Some(&*format!("/api/recordings/{}/audio", rsid(1)))
    );
    assert_eq!(sids, vec![rsid(1)]);

    // The call first, its recording in a later sync.
    let b = sid(2);
    h.mock.upsert(answered(&b, 10));
    h.sync_all().await;
    assert_eq!(columns(&h, &b).await.0, None);
    h.mock
        .upsert_recording(recording(2, &b, at(12), "completed"));
    h.sync_all().await;
    assert_eq!(
        columns(&h, &b).await.0.as_deref(),
        Some(&*format!("/api/recordings/{}/audio", rsid(2)))
    );
    // A second sync of the same media writes nothing.
    let report = h.sync_all().await;
    assert_eq!(report.media.recordings_written, 0, "{report:?}");
}

/// A call with recordings on its root and on a leg lists them all, oldest
/// first; each call's column names its own newest.
pub async fn several_recordings_per_call(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let (root, child) = (sid(1), sid(2));
    h.mock.upsert(answered(&root, 0));
    h.mock.upsert(leg(&child, &root, 0));
    h.mock
        .upsert_recording(recording(3, &root, at(5), "completed"));
    h.mock
        .upsert_recording(recording(1, &root, at(1), "completed"));
    h.mock
        .upsert_recording(recording(2, &child, at(2), "completed"));
    h.sync_all().await;
    let media = h
        .store
        .media_of_calls(&[
            CallSid::new(root.clone()).unwrap(),
            CallSid::new(child.clone()).unwrap(),
        ])
        .await
        .expect("media");
    let order: Vec<RecordingSid> = media
        .recordings
        .iter()
        .map(|r| r.recording.sid.clone())
        .collect();
    assert_eq!(order, vec![rsid(1), rsid(2), rsid(3)], "oldest first");
    assert_eq!(
        columns(&h, &root).await.0,
        Some(format!("/api/recordings/{}/audio", rsid(3)))
    );
    assert_eq!(
        columns(&h, &child).await.0,
        Some(format!("/api/recordings/{}/audio", rsid(2)))
    );
    // Every field survives the round trip.
    let stored = h.store.recording(&rsid(2)).await.expect("stored");
    assert_eq!(stored.recording, recording(2, &child, at(2), "completed"));
    assert_eq!(stored.deleted_at, None);
    assert_eq!(stored.recording.channels, Some(2));
    assert_eq!(
        stored.recording.price.map(|p| p.to_string()).as_deref(),
        Some("-0.0025")
    );
}

/// A recording Twilio no longer lists is marked deleted, kept, and no
/// longer the call's `recording_url`; a processing recording is replaced by
/// its completed version, never the other way round.
pub async fn deleted_and_updated_recordings(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let a = sid(1);
    h.mock.upsert(answered(&a, 0));
    h.mock
        .upsert_recording(recording(1, &a, at(1), "completed"));
    h.mock
        .upsert_recording(recording(2, &a, at(3), "processing"));
    h.sync_all().await;
    // A recording still processing has no audio: the call's URL is the
    // newest completed one.
    assert_eq!(
        columns(&h, &a).await.0,
        Some(format!("/api/recordings/{}/audio", rsid(1)))
    );

    // Completed later: the newer version replaces the stored one, and
    // becomes the call's recording.
    h.mock
        .upsert_recording(recording(2, &a, at(3), "completed"));
    h.sync_all().await;
    let stored = h.store.recording(&rsid(2)).await.expect("stored");
    assert_eq!(stored.recording.duration, Some(30));
    assert_eq!(
        columns(&h, &a).await.0,
        Some(format!("/api/recordings/{}/audio", rsid(2)))
    );

    // An older version arriving afterwards changes nothing.
    let mut tx = h.store.begin_ingest().await.expect("begin");
    let plan = crate::sync::plan_media_in(
        tx.as_mut(),
        MediaBatch {
            recordings: vec![recording(2, &a, at(3), "processing")],
            ..MediaBatch::default()
        },
    )
    .await
    .expect("plan");
    assert!(plan.is_empty(), "{plan:?}");
    drop(tx);

    // Deleted at Twilio: gone from the listing.
    h.mock.delete_recording(&rsid(2));
    let report = h.sync_all().await;
    assert_eq!(report.media.recordings_deleted, 1, "{report:?}");
    let gone = h.store.recording(&rsid(2)).await.expect("kept");
    assert!(gone.deleted_at.is_some());
    let (url, live) = columns(&h, &a).await;
    assert_eq!(url, Some(format!("/api/recordings/{}/audio", rsid(1))));
    assert_eq!(live, vec![rsid(1)]);
    // Deleting the last one empties the column.
    h.mock.delete_recording(&rsid(1));
    h.sync_all().await;
    assert_eq!(columns(&h, &a).await.0, None);
    assert_eq!(
        h.store
            .media_of_calls(&[CallSid::new(a).unwrap()])
            .await
            .unwrap()
            .recordings
            .len(),
        2,
        "deleted recordings are kept"
    );
}

/// Transcripts of both products are stored with their sentences; the
/// newest completed one fills `transcription_text`, which the search finds;
/// the "has a recording" filter keeps recorded conversations.
pub async fn transcripts_are_stored_and_searchable(store: Arc<dyn Store>) {
    let h = Harness::new(store);
    let (a, b) = (sid(1), sid(2));
    h.mock.upsert(answered(&a, 0));
    h.mock.upsert(
        CallBuilder::new(&b)
            .from("+15550002222")
            .to(COMPANY)
            .direction("inbound")
            .status("completed")
            .start(at(5))
            .duration(20)
            .build(),
    );
    h.mock
        .upsert_recording(recording(1, &a, at(1), "completed"));
    // Transcripts first: they wait for nothing.
    h.mock.upsert_transcript(legacy(
        1,
        &rsid(1),
        "Please call back about the boiler.",
        at(2),
    ));
    let mut gt = Transcript::from_intelligence(json!({
        "sid": "GT00000000000000000000000000000001",
        "status": "completed",
        "language_code": "en-US",
        "channel": {"media_properties": {"source_sid": rsid(1).as_str()}},
        "date_created": "2026-02-06T15:10:00Z",
        "date_updated": "2026-02-06T15:10:00Z",
    }))
    .unwrap();
    gt.set_sentences(vec![
        Sentence {
            index: 0,
            channel: 0,
            start: 0.5,
            end: 2.0,
            text: "Hello, my radiator is leaking.".into(),
            confidence: Some(0.9),
        },
        Sentence {
            index: 1,
            channel: 1,
            start: 2.5,
            end: 4.0,
            text: "We will send a plumber on Tuesday.".into(),
            confidence: None,
        },
    ]);
    h.mock.upsert_transcript(gt.clone());
    let report = h.sync_all().await;
    assert_eq!(report.media.transcripts_written, 2, "{report:?}");

    let media = h
        .store
        .media_of_calls(&[CallSid::new(a.clone()).unwrap()])
        .await
        .unwrap();
    assert_eq!(media.transcripts.len(), 2);
    let stored_gt = media
        .transcripts
        .iter()
        .find(|t| t.sid == gt.sid)
        .expect("the intelligence transcript");
    assert_eq!(stored_gt, &gt, "sentences and timings survive");

    let normalizer = crate::endpoint::Normalizer::new("US").expect("US");
    for (q, hits) in [
        ("plumber", 1),
        ("PLUMBER", 1),
        ("radiator", 1),
        ("boiler", 1),
        ("zebra", 0),
    ] {
        let page = h
            .store
            .list_conversations(
                &ConversationQuery::page(10, 0).with_search(Search::new(q, &normalizer)),
            )
            .await
            .expect("search");
        assert_eq!(page.total, hits, "searching {q:?}");
    }
    let recorded = h
        .store
        .list_conversations(&ConversationQuery::page(10, 0).with_recording())
        .await
        .unwrap();
    assert_eq!(recorded.total, 1);
    assert_eq!(recorded.conversations[0].contact.phone_number, CUSTOMER);
}

/// The planner's decisions do not depend on the order recordings arrive
/// in: any permutation of versions gives the same stored rows.
pub async fn media_versions_in_any_order(store: Arc<dyn Store>) {
    let a = sid(1);
    let versions = [
        recording(1, &a, at(1), "processing"),
        recording(1, &a, at(1), "completed"),
        recording(2, &a, at(2), "completed"),
    ];
    let mut results = Vec::new();
    for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2]] {
        // Each order on fresh SIDs of the same store: rewrite the numbers.
        let mut tx = store.begin_ingest().await.unwrap();
        for i in order {
            let batch = MediaBatch {
                recordings: vec![versions[i].clone()],
                ..MediaBatch::default()
            };
            let (stored, stored_t) = tx
                .load_media(&[versions[i].sid.clone()], &[])
                .await
                .unwrap();
            let plan = plan_media(batch, &stored, &stored_t, t0());
            tx.apply_media(plan).await.unwrap();
        }
        let (rows, _) = tx.load_media(&[rsid(1), rsid(2)], &[]).await.unwrap();
        results.push(rows);
        // Roll back: the next order starts from an empty store again.
        drop(tx);
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
    assert_eq!(
        results[0][0].recording.status,
        crate::recording::RecordingStatus::Completed
    );
}

/// A Twilio account whose Voice Intelligence host fails, and whose
/// recordings listing sends `garbled` as a record that does not parse.
struct Faulty {
    mock: Arc<super::mock::MockTwilio>,
    garbled: Option<RecordingSid>,
}

#[async_trait::async_trait]
impl crate::TwilioClient for Faulty {
    async fn list_calls_page(
        &self,
        filter: &crate::twilio::CallFilter,
        page: Option<&crate::twilio::PageToken>,
    ) -> Result<crate::twilio::CallPage, crate::TwilioError> {
        self.mock.list_calls_page(filter, page).await
    }
    async fn fetch_call(&self, sid: &CallSid) -> Result<Call, crate::TwilioError> {
        self.mock.fetch_call(sid).await
    }
    async fn list_incoming_numbers(
        &self,
    ) -> Result<Vec<crate::twilio::IncomingNumber>, crate::TwilioError> {
        self.mock.list_incoming_numbers().await
    }
    async fn list_recordings_page(
        &self,
        filter: &crate::twilio::RecordingFilter,
        page: Option<&crate::twilio::PageToken>,
    ) -> Result<crate::twilio::RecordingPage, crate::TwilioError> {
        let mut listed = self.mock.list_recordings_page(filter, page).await?;
        if let Some(garbled) = &self.garbled {
            if let Some(i) = listed.recordings.iter().position(|r| &r.sid == garbled) {
                listed.recordings.remove(i);
                listed.rejected.push(crate::recording::MediaParseError {
                    resource: "recording",
                    sid: Some(garbled.to_string()),
                    reason: "field `channels` should be 1 or 2, found 3".into(),
                });
            }
        }
        Ok(listed)
    }
    async fn fetch_recording(&self, sid: &RecordingSid) -> Result<Recording, crate::TwilioError> {
        self.mock.fetch_recording(sid).await
    }
    async fn list_transcriptions_page(
        &self,
        page_size: u32,
        page: Option<&crate::twilio::PageToken>,
    ) -> Result<crate::twilio::TranscriptPage, crate::TwilioError> {
        self.mock.list_transcriptions_page(page_size, page).await
    }
    async fn list_intelligence_transcripts_page(
        &self,
        _filter: &crate::twilio::TranscriptFilter,
        _page: Option<&crate::twilio::PageToken>,
    ) -> Result<crate::twilio::TranscriptPage, crate::TwilioError> {
        Err(crate::TwilioError::Transport(
            "could not reach intelligence.twilio.com".into(),
        ))
    }
    async fn transcript_sentences(&self, sid: &str) -> Result<Vec<Sentence>, crate::TwilioError> {
        self.mock.transcript_sentences(sid).await
    }
    async fn recording_audio(
        &self,
        sid: &RecordingSid,
        format: crate::twilio::AudioFormat,
    ) -> Result<crate::twilio::RecordingAudio, crate::TwilioError> {
        self.mock.recording_audio(sid, format).await
    }
    async fn list_texts_page(
        &self,
        filter: &crate::twilio::TextFilter,
        page: Option<&crate::twilio::PageToken>,
    ) -> Result<crate::twilio::TextPage, crate::TwilioError> {
        self.mock.list_texts_page(filter, page).await
    }
    async fn text_media(
        &self,
        sid: &crate::text::MessageSid,
    ) -> Result<Vec<crate::text::TextMedia>, crate::TwilioError> {
        self.mock.text_media(sid).await
    }
    async fn text_media_content(
        &self,
        sid: &crate::text::MessageSid,
        media_sid: &str,
    ) -> Result<crate::twilio::RecordingAudio, crate::TwilioError> {
        self.mock.text_media_content(sid, media_sid).await
    }
    async fn send_text(
        &self,
        text: &crate::twilio::OutgoingText,
    ) -> Result<crate::text::Text, crate::TwilioError> {
        self.mock.send_text(text).await
    }
}

/// An account without Voice Intelligence (or a host that fails) still
/// syncs its calls, recordings and legacy transcriptions; the report says
/// what was skipped, and the run completes (its watermark moves on).
pub async fn intelligence_failures_are_noted_not_fatal(store: Arc<dyn Store>) {
    let mock = Arc::new(super::mock::MockTwilio::new().with_owned_numbers([COMPANY]));
    let a = sid(1);
    mock.upsert(answered(&a, 0));
    mock.upsert_recording(recording(1, &a, at(1), "completed"));
    mock.upsert_transcript(legacy(1, &rsid(1), "Leaking boiler again.", at(2)));
    let engine = crate::sync::SyncEngine::new(
        Arc::new(Faulty {
            mock,
            garbled: None,
        }),
        Arc::clone(&store),
        rules(),
    );
    let report = engine
        .run(
            crate::SyncMode::Since(t0() - chrono::Duration::days(1)),
            None,
        )
        .await
        .expect("the run completes");
    assert_eq!(report.media.recordings_written, 1, "{report:?}");
    assert_eq!(report.media.transcripts_written, 1, "{report:?}");
    assert_eq!(report.media.notes.len(), 1, "{report:?}");
    assert!(report.media.notes[0].contains("intelligence"), "{report:?}");
    assert!(
        store
            .read_cursor(crate::sync::WATERMARK_CURSOR)
            .await
            .unwrap()
            .is_some(),
        "the run counts as complete"
    );
    super::check::assert_invariants(store.as_ref()).await;
}

/// A listed recording that does not parse is reported, and not taken for
/// deleted: only a recording absent from a complete listing is.
pub async fn unreadable_listed_recordings_are_not_deleted(store: Arc<dyn Store>) {
    let mock = Arc::new(super::mock::MockTwilio::new().with_owned_numbers([COMPANY]));
    let a = sid(1);
    mock.upsert(answered(&a, 0));
    mock.upsert_recording(recording(1, &a, at(1), "completed"));
    mock.upsert_recording(recording(2, &a, at(2), "completed"));
    let since = crate::SyncMode::Since(t0() - chrono::Duration::days(1));
    let clean = crate::sync::SyncEngine::new(
        Arc::clone(&mock) as Arc<dyn crate::TwilioClient>,
        Arc::clone(&store),
        rules(),
    );
    clean.run(since, None).await.expect("sync");
    // Recording 2 is now listed garbled: reported, kept as it was.
    let garbling = crate::sync::SyncEngine::new(
        Arc::new(Faulty {
            mock: Arc::clone(&mock),
            garbled: Some(rsid(2)),
        }),
        Arc::clone(&store),
        rules(),
    );
    let report = garbling.run(since, None).await.expect("sync");
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.sid.as_deref() == Some(rsid(2).as_str())),
        "{report:?}"
    );
    assert_eq!(report.media.recordings_deleted, 0, "{report:?}");
    assert!(store
        .recording(&rsid(2))
        .await
        .unwrap()
        .deleted_at
        .is_none());
    // Absent from the listing: deleted.
    mock.delete_recording(&rsid(1));
    let report = garbling.run(since, None).await.expect("sync");
    assert_eq!(report.media.recordings_deleted, 1, "{report:?}");
    assert!(store
        .recording(&rsid(1))
        .await
        .unwrap()
        .deleted_at
        .is_some());
    assert!(store
        .recording(&rsid(2))
        .await
        .unwrap()
        .deleted_at
        .is_none());
}
