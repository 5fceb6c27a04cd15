//! Recordings through the API on both stores, synced from the simulated
//! account: `metadata.recordings` with transcripts, `recording_url` on the
//! server, `GET /api/recordings/{sid}`, the audio proxy (bytes equal to
//! Twilio's, ranges, 416, the token or the media cookie), search by a word
//! said, the `has_recording` filter, and a recording deleted at Twilio.

mod common;

use std::sync::Arc;

use callview_core::recording::RecordingSid;
use callview_core::twilio::{AudioFormat, TwilioClient};
use callview_core::{PartyRules, SyncEngine};
use callview_server::{AppState, SyncRunner};
use callview_sim::SimulatedTwilio;
use common::*;
use futures::TryStreamExt;
use serde_json::Value;

const TOKEN: &str = "rec-token";

struct Recorded {
    server: TestServer,
    sim: SimulatedTwilio,
    runner: Arc<SyncRunner>,
}

async fn server(backend: Backend) -> Recorded {
    let store = store(backend).await;
    let sim = sim(300, 11);
    load(&store, &sim).await;
    let runner = SyncRunner::new(SyncEngine::new(
        Arc::new(sim.clone()),
        Arc::clone(&store),
        PartyRules::default(),
    ));
    let state = AppState::new(store)
        .with_sync(Arc::clone(&runner))
        .with_recordings(Arc::new(sim.clone()), None)
        .with_api_token(Some(TOKEN));
    Recorded {
        server: spawn(state).await,
        sim,
        runner,
    }
}

impl Recorded {
    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.server.get_with(path, Some(TOKEN)).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    /// Every message with recordings, from the conversations the filter keeps.
    async fn recorded_messages(&self) -> Vec<Value> {
        let list = self
            .get("/api/conversations?has_recording=true&limit=100")
            .await;
        let mut out = Vec::new();
        for c in list["conversations"].as_array().unwrap() {
            let id = c["id"].as_str().unwrap();
            let page = self
                .get(&format!("/api/conversations/{id}/messages?limit=500"))
                .await;
            out.extend(
                page["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|m| m["metadata"]["recordings"].is_array())
                    .cloned(),
            );
        }
        out
    }

    async fn audio(&self, path: &str, range: Option<&str>) -> reqwest::Response {
        let mut request = self
            .server
            .http
            .get(self.server.url(path))
            .bearer_auth(TOKEN);
        if let Some(range) = range {
            request = request.header("Range", range);
        }
        request.send().await.unwrap()
    }
}

async fn twilio_bytes(sim: &SimulatedTwilio, sid: &str) -> Vec<u8> {
    let audio = sim
        .recording_audio(&RecordingSid::new(sid).unwrap(), AudioFormat::Mp3)
        .await
        .unwrap();
    let chunks: Vec<bytes::Bytes> = audio.body.try_collect().await.unwrap();
    chunks.concat()
}

async fn messages_list_recordings_with_transcripts(backend: Backend) {
    let r = server(backend).await;
    let messages = r.recorded_messages().await;
    assert!(!messages.is_empty(), "the simulated account records calls");
    let mut transcribed = 0;
    for m in &messages {
        let recordings = m["metadata"]["recordings"].as_array().unwrap();
        // Newest last.
        let created: Vec<&str> = recordings
            .iter()
            .map(|x| x["date_created"].as_str().unwrap_or(""))
            .collect();
        let mut sorted = created.clone();
        sorted.sort();
        assert_eq!(created, sorted, "{m}");
        for rec in recordings {
            let sid = rec["sid"].as_str().unwrap();
            if let Some(url) = rec["url"].as_str() {
                assert_eq!(url, format!("/api/recordings/{sid}/audio"));
            }
            for key in ["duration", "channels", "status"] {
                assert!(rec.get(key).is_some(), "{key} in {rec}");
            }
            if rec["transcripts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["status"] == "completed" && !t["text"].as_str().unwrap().is_empty())
            {
                transcribed += 1;
            }
        }
        // metadata.recording_url: the newest playable one, on this server.
        let newest = recordings.iter().rev().find_map(|x| x["url"].as_str());
        assert_eq!(m["metadata"]["recording_url"].as_str(), newest, "{m}");
        if let Some(url) = m["call"]["recording_url"].as_str() {
            assert!(url.starts_with("/api/recordings/RE"), "{url}");
        }
    }
    assert!(transcribed > 0, "some recordings are transcribed");
}

async fn audio_is_proxied_with_ranges(backend: Backend) {
    let r = server(backend).await;
    let messages = r.recorded_messages().await;
    let rec = messages
        .iter()
        .flat_map(|m| m["metadata"]["recordings"].as_array().unwrap().clone())
        .find(|x| x["status"] == "completed" && x["url"].is_string())
        .expect("a playable recording");
    let sid = rec["sid"].as_str().unwrap();
    let path = rec["url"].as_str().unwrap().to_owned();
    let expected = twilio_bytes(&r.sim, sid).await;
    let n = expected.len();
    assert!(n > 1000, "{n} bytes");

    let full = r.audio(&path, None).await;
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["content-type"], "audio/mpeg");
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert_eq!(
        full.bytes().await.unwrap().to_vec(),
        expected,
        "the same bytes Twilio serves"
    );

    for (range, start, end) in [
        ("bytes=0-99".to_owned(), 0, 99),
        (
            format!("bytes={}-{}", n / 2, n / 2 + 499),
            n / 2,
            n / 2 + 499,
        ),
        ("bytes=-100".to_owned(), n - 100, n - 1),
        (format!("bytes={}-", n - 10), n - 10, n - 1),
    ] {
        let part = r.audio(&path, Some(&range)).await;
        assert_eq!(part.status(), 206, "{range}");
        assert_eq!(
            part.headers()["content-range"],
            format!("bytes {start}-{end}/{n}").as_str(),
            "{range}"
        );
        assert_eq!(
            part.bytes().await.unwrap().to_vec(),
            expected[start..=end],
            "{range}"
        );
    }
    let past = r.audio(&path, Some(&format!("bytes={n}-"))).await;
    assert_eq!(past.status(), 416);
    assert_eq!(
        past.headers()["content-range"],
        format!("bytes */{n}").as_str()
    );

    // Never gzipped, even when the client asks: ranges and the length stay.
    let asked = r
        .server
        .http
        .get(r.server.url(&path))
        .bearer_auth(TOKEN)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);
    assert!(
        asked.headers().get("content-encoding").is_none(),
        "{:?}",
        asked.headers()
    );
    assert_eq!(asked.headers()["content-length"], n.to_string().as_str());
    assert_eq!(asked.headers()["x-content-type-options"], "nosniff");

    // WAV too.
    let wav = r
        .audio(&format!("{path}?format=wav"), Some("bytes=0-3"))
        .await;
    assert_eq!(wav.status(), 206);
    assert_eq!(&wav.bytes().await.unwrap()[..], b"RIFF");

    // The token is required; the media cookie opens the audio and nothing else.
    let (status, _) = r.server.get(&path).await;
    assert_eq!(status, 401);
    let session = r
        .server
        .http
        .post(r.server.url("/api/session"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 200);
    let cookie = session.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(TOKEN), "the cookie is not the token");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = r
        .server
        .http
        .get(r.server.url(&path))
        .header("Cookie", &pair)
        .header("Range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(with_cookie.status(), 206);
    let elsewhere = r
        .server
        .http
        .get(r.server.url("/api/conversations"))
        .header("Cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 401, "the cookie opens only audio");
    let forged = r
        .server
        .http
        .get(r.server.url(&path))
        .header("Cookie", "callview_media=v1.99999999999.00")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    // Unknown and malformed SIDs.
    let (status, body) = r
        .server
        .get_with(
            "/api/recordings/RE00000000000000000000000000000000/audio",
            Some(TOKEN),
        )
        .await;
    assert_eq!((status, assert_error(&body).as_str()), (404, "not_found"));
    let (status, body) = r
        .server
        .get_with("/api/recordings/nope/audio", Some(TOKEN))
        .await;
    assert_eq!(
        (status, assert_error(&body).as_str()),
        (400, "invalid_recording_sid")
    );
    let (status, body) = r
        .server
        .get_with(&format!("{path}?format=ogg"), Some(TOKEN))
        .await;
    assert_eq!(
        (status, assert_error(&body).as_str()),
        (400, "invalid_parameter")
    );
}

async fn search_by_words_said_and_deletion(backend: Backend) {
    let r = server(backend).await;
    let messages = r.recorded_messages().await;
    // A word of a transcript, found by the conversation search.
    let (conversation, word) = messages
        .iter()
        .find_map(|m| {
            let text = m["metadata"]["recordings"]
                .as_array()?
                .iter()
                .flat_map(|x| x["transcripts"].as_array().cloned().unwrap_or_default())
                .find(|t| t["status"] == "completed")?["text"]
                .as_str()?
                .to_owned();
            let word = text
                .split(|c: char| !c.is_alphabetic())
                .filter(|w| w.len() >= 6)
                .max_by_key(|w| w.len())?
                .to_owned();
            Some((m["conversation_id"].as_str()?.to_owned(), word))
        })
        .expect("a transcribed call");
    let found = r
        .get(&format!("/api/conversations?q={word}&limit=100"))
        .await;
    let ids: Vec<&str> = found["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&conversation.as_str()),
        "{word:?} finds {conversation}: {ids:?}"
    );

    // The filter keeps only recorded conversations.
    let all = r.get("/api/conversations?limit=1").await["total"]
        .as_u64()
        .unwrap();
    let recorded = r.get("/api/conversations?has_recording=true&limit=1").await["total"]
        .as_u64()
        .unwrap();
    assert!(recorded > 0 && recorded < all, "{recorded} of {all}");
    let (status, body) = r
        .server
        .get_with("/api/conversations?has_recording=maybe", Some(TOKEN))
        .await;
    assert_eq!(
        (status, assert_error(&body).as_str()),
        (400, "invalid_parameter")
    );

    // Still processing at Twilio: no audio yet, and not taken for deleted.
    let call = messages[0]["call"]["sid"].as_str().unwrap().to_owned();
    let processing = callview_core::recording::Recording::from_value(serde_json::json!({
        "sid": "RE0000000000000000000000000000cafe",
        "call_sid": call,
        "status": "processing",
        "duration": "-1",
        "date_created": callview_core::call::format_rfc2822(&chrono::Utc::now()),
        "date_updated": callview_core::call::format_rfc2822(&chrono::Utc::now()),
    }))
    .unwrap();
    r.sim.insert_recording(processing);
    let _ = r
        .runner
        .run(
            callview_core::SyncMode::Since(chrono::Utc::now() - chrono::Duration::hours(1)),
            callview_server::SyncTrigger::Other,
        )
        .await
        .unwrap();
    let listed = r
        .get("/api/recordings/RE0000000000000000000000000000cafe")
        .await;
    assert_eq!(listed["status"], "processing", "{listed}");
    assert!(listed["url"].is_null(), "no audio to play yet: {listed}");
    let (status, body) = r
        .server
        .get_with(
            "/api/recordings/RE0000000000000000000000000000cafe/audio",
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        (status, assert_error(&body).as_str()),
        (404, "recording_not_ready")
    );
    let after = r
        .get("/api/recordings/RE0000000000000000000000000000cafe")
        .await;
    assert_eq!(after["status"], "processing");

    // Deleted at Twilio: playing it answers 404 and marks it deleted.
    let rec = messages
        .iter()
        .flat_map(|m| m["metadata"]["recordings"].as_array().unwrap().clone())
        .find(|x| x["url"].is_string() && x["status"] == "completed")
        .unwrap();
    let sid = RecordingSid::new(rec["sid"].as_str().unwrap()).unwrap();
    assert!(r.sim.delete_recording(&sid));
    let (status, body) = r
        .server
        .get_with(rec["url"].as_str().unwrap(), Some(TOKEN))
        .await;
    assert_eq!(
        (status, assert_error(&body).as_str()),
        (404, "recording_gone")
    );
    let stored = r.get(&format!("/api/recordings/{sid}")).await;
    assert_eq!(stored["status"], "deleted", "{stored}");
    assert!(stored["url"].is_null());
    // And a later sync keeps it, marked.
    let _ = r
        .runner
        .run(
            callview_core::SyncMode::Since(chrono::Utc::now() - chrono::Duration::days(32)),
            callview_server::SyncTrigger::Other,
        )
        .await
        .unwrap();
    let stored = r.get(&format!("/api/recordings/{sid}")).await;
    assert_eq!(stored["status"], "deleted");
}

on_both_stores!(
    messages_list_recordings_with_transcripts,
    audio_is_proxied_with_ranges,
    search_by_words_said_and_deletion,
);
