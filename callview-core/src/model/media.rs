//! Planning the writes of recordings and transcripts: which versions to
//! keep and which recordings Twilio no longer has. Pure, like the call
//! planner: a store's [`crate::store::IngestTx`] reads what is stored,
//! [`plan_media`] decides, and `apply_media` writes the result in the same
//! transaction.
//!
//! Recordings and transcripts are keyed by their own SIDs and point at
//! their call (or recording) by SID, never by row: a recording stored
//! before its call, or a transcript before its recording, is attached as
//! soon as the other arrives, whatever the order.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

use crate::recording::{Recording, RecordingSid, RecordingStatus, Transcript};

/// A recording as stored: Twilio's record, and since when Twilio no longer
/// has it (404 on fetch, gone from a complete listing, or `deleted`).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRecording {
    /// The record.
    pub recording: Recording,
    /// When callview learnt it was deleted at Twilio; `None` while it
    /// exists.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// One recording to write.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingWrite {
    /// The version to keep.
    pub recording: Recording,
    /// Set when the record itself says `deleted`; `None` clears a previous
    /// mark (the recording is listed again).
    pub deleted_at: Option<DateTime<Utc>>,
}

/// What one media write does (see [`plan_media`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MediaPlan {
    /// Recordings to insert or replace.
    pub recordings: Vec<RecordingWrite>,
    /// Transcripts to insert or replace.
    pub transcripts: Vec<Transcript>,
    /// Stored recordings to mark deleted, and when.
    pub deleted: Vec<(RecordingSid, DateTime<Utc>)>,
}

impl MediaPlan {
    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.recordings.is_empty() && self.transcripts.is_empty() && self.deleted.is_empty()
    }
}

/// What arrived, for [`plan_media`].
#[derive(Clone, Debug, Default)]
pub struct MediaBatch {
    /// Recordings as Twilio listed or fetched them (any order, repeats
    /// allowed).
    pub recordings: Vec<Recording>,
    /// Transcripts (Voice Intelligence ones with their sentences).
    pub transcripts: Vec<Transcript>,
    /// Recordings Twilio says it no longer has (404 on fetch, or absent from
    /// a complete listing of the window they were created in).
    pub gone: Vec<RecordingSid>,
}

/// Decides the writes for `batch` given what the store holds about the same
/// SIDs: a version replaces the stored one only when it is newer
/// ([`Recording::version_key`]); the stored version listed again loses the
/// deleted mark a 404 or its absence gave it; a recording in `gone` that is
/// stored and not yet marked is marked deleted at `now` (unless the same
/// batch lists it).
pub fn plan_media(
    batch: MediaBatch,
    stored_recordings: &[StoredRecording],
    stored_transcripts: &[Transcript],
    now: DateTime<Utc>,
) -> MediaPlan {
    let stored: BTreeMap<&RecordingSid, &StoredRecording> = stored_recordings
        .iter()
        .map(|s| (&s.recording.sid, s))
        .collect();
    // The newest version of each recording in the batch.
    let mut newest: BTreeMap<RecordingSid, Recording> = BTreeMap::new();
    for recording in batch.recordings {
        match newest.get(&recording.sid) {
            Some(kept) if kept.version_key() >= recording.version_key() => {}
            _ => {
                newest.insert(recording.sid.clone(), recording);
            }
        }
    }
    let listed: HashSet<RecordingSid> = newest.keys().cloned().collect();
    let mut plan = MediaPlan::default();
    for (sid, recording) in newest {
        let deleted_at = (recording.status == RecordingStatus::Deleted)
            .then(|| recording.date_updated.unwrap_or(now));
        let write = match stored.get(&sid) {
            None => true,
            Some(s) => {
                let (new, old) = (recording.version_key(), s.recording.version_key());
                // A newer version replaces the stored one; the stored
                // version listed again clears a deleted mark (one that came
                // from a 404 or from absence, not from the record). An older
                // version never writes: the newest record decides.
                new > old
                    || (new == old
                        && s.deleted_at.is_some()
                        && deleted_at.is_none()
                        && s.recording.status != RecordingStatus::Deleted)
            }
        };
        if write {
            plan.recordings.push(RecordingWrite {
                recording,
                deleted_at,
            });
        }
    }
    let mut gone: Vec<RecordingSid> = batch.gone;
    gone.sort();
    gone.dedup();
    for sid in gone {
        if listed.contains(&sid) {
            continue;
        }
        if stored.get(&sid).is_some_and(|s| s.deleted_at.is_none()) {
            plan.deleted.push((sid, now));
        }
    }
    let stored_t: BTreeMap<&str, &Transcript> = stored_transcripts
        .iter()
        .map(|t| (t.sid.as_str(), t))
        .collect();
    let mut newest_t: BTreeMap<String, Transcript> = BTreeMap::new();
    for transcript in batch.transcripts {
        match newest_t.get(&transcript.sid) {
            Some(kept) if kept.version_key() >= transcript.version_key() => {}
            _ => {
                newest_t.insert(transcript.sid.clone(), transcript);
            }
        }
    }
    for (sid, transcript) in newest_t {
        if stored_t
            .get(sid.as_str())
            .is_none_or(|s| transcript.version_key() > s.version_key())
        {
            plan.transcripts.push(transcript);
        }
    }
    plan
}

/// The server path that plays a recording (what `recording_url` holds).
pub fn recording_path(sid: &RecordingSid) -> String {
    format!("/api/recordings/{sid}/audio")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(n: u8, status: &str, updated: &str) -> Recording {
        Recording::from_value(json!({
            "sid": format!("RE{n:032x}"),
            "call_sid": "CA1",
            "status": status,
            "date_updated": updated,
        }))
        .unwrap()
    }

    const T0: &str = "2026-02-06T15:00:00Z";
    const T1: &str = "2026-02-06T15:05:00Z";

    fn now() -> DateTime<Utc> {
        crate::call::parse_twilio_time("2026-02-07T00:00:00Z").unwrap()
    }

    #[test]
    fn the_newest_version_wins_in_any_order() {
        let a = rec(1, "processing", T0);
        let b = rec(1, "completed", T1);
        for batch in [vec![a.clone(), b.clone()], vec![b.clone(), a.clone()]] {
            let plan = plan_media(
                MediaBatch {
                    recordings: batch,
                    ..MediaBatch::default()
                },
                &[],
                &[],
                now(),
            );
            assert_eq!(plan.recordings.len(), 1);
            assert_eq!(
                plan.recordings[0].recording.status,
                RecordingStatus::Completed
            );
        }
        // An older version than the stored one writes nothing.
        let stored = [StoredRecording {
            recording: b,
            deleted_at: None,
        }];
        let plan = plan_media(
            MediaBatch {
                recordings: vec![a],
                ..MediaBatch::default()
            },
            &stored,
            &[],
            now(),
        );
        assert!(plan.is_empty());
    }

    #[test]
    fn gone_recordings_are_marked_once_and_listing_again_clears_it() {
        let r = rec(2, "completed", T0);
        let stored = [StoredRecording {
            recording: r.clone(),
            deleted_at: None,
        }];
        let gone = MediaBatch {
            gone: vec![
                r.sid.clone(),
                RecordingSid::new(format!("RE{:032x}", 9)).unwrap(),
            ],
            ..MediaBatch::default()
        };
        let plan = plan_media(gone.clone(), &stored, &[], now());
        assert_eq!(plan.deleted, vec![(r.sid.clone(), now())]);
        let marked = [StoredRecording {
            recording: r.clone(),
            deleted_at: Some(now()),
        }];
        assert!(plan_media(gone, &marked, &[], now()).is_empty());
        let again = MediaBatch {
            recordings: vec![r.clone()],
            ..MediaBatch::default()
        };
        let plan = plan_media(again, &marked, &[], now());
        assert_eq!(plan.recordings.len(), 1);
        assert_eq!(plan.recordings[0].deleted_at, None);
    }

    #[test]
    fn versions_tied_on_date_updated_order_by_status_then_record() {
        let processing = rec(4, "processing", T0);
        let completed = rec(4, "completed", T0);
        for (stored, incoming, writes) in [
            (&processing, &completed, true),
            (&completed, &processing, false),
        ] {
            let plan = plan_media(
                MediaBatch {
                    recordings: vec![incoming.clone()],
                    ..MediaBatch::default()
                },
                &[StoredRecording {
                    recording: stored.clone(),
                    deleted_at: None,
                }],
                &[],
                now(),
            );
            assert_eq!(
                !plan.recordings.is_empty(),
                writes,
                "{stored:?} then {incoming:?}"
            );
        }
    }

    #[test]
    fn an_older_version_never_clears_a_deletion() {
        let older = rec(5, "completed", T0);
        let deleted = rec(5, "deleted", T1);
        // Stored deleted (by its record), the older version arrives: no write.
        let plan = plan_media(
            MediaBatch {
                recordings: vec![older.clone()],
                ..MediaBatch::default()
            },
            &[StoredRecording {
                recording: deleted.clone(),
                deleted_at: Some(now()),
            }],
            &[],
            now(),
        );
        assert!(plan.is_empty(), "{plan:?}");
        // Stored deleted by absence, an older version listed: no write; the
        // same version listed again: the mark is cleared.
        let marked = [StoredRecording {
            recording: rec(6, "completed", T1),
            deleted_at: Some(now()),
        }];
        let older = plan_media(
            MediaBatch {
                recordings: vec![rec(6, "processing", T0)],
                ..MediaBatch::default()
            },
            &marked,
            &[],
            now(),
        );
        assert!(older.is_empty(), "{older:?}");
        let same = plan_media(
            MediaBatch {
                recordings: vec![rec(6, "completed", T1)],
                ..MediaBatch::default()
            },
            &marked,
            &[],
            now(),
        );
        assert_eq!(same.recordings.len(), 1);
        assert_eq!(same.recordings[0].deleted_at, None);
    }

    #[test]
    fn a_deleted_status_marks_the_recording() {
        let plan = plan_media(
            MediaBatch {
                recordings: vec![rec(3, "deleted", T1)],
                ..MediaBatch::default()
            },
            &[],
            &[],
            now(),
        );
        assert!(plan.recordings[0].deleted_at.is_some());
    }
}
