//! Recordings, their audio and transcripts: what the simulated account
//! generates, and the HTTP server read back with the real
//! `HttpTwilioClient`, compared with the in-process client.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

use callview_core::recording::{Recording, RecordingSid, RecordingSource, RecordingStatus};
use callview_core::twilio::{
    recording_pages, AudioFormat, Credentials, HttpTwilioClient, PageToken, RecordingFilter,
    RetryPolicy, Secret, TranscriptFilter, TranscriptPage, TwilioConfig,
};
use callview_core::{CallStatus, TwilioClient, TwilioError};
use callview_sim::{serve, ServerOptions, SimConfig, SimulatedAccount, SimulatedTwilio};

const TOKEN: &str = "s3cret";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 6, 15, 30, 0).unwrap()
}

fn config(seed: u64, calls: usize, days: u32) -> SimConfig {
    SimConfig {
        now: now(),
        days,
        ..SimConfig::new(seed, calls)
    }
}

/// Serves `sim` with Basic auth; returns the base URL.
async fn start(sim: &SimulatedTwilio) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let options = ServerOptions {
        credentials: Some((sim.account_sid().to_owned(), TOKEN.into())),
        ..ServerOptions::default()
    };
    tokio::spawn(serve(listener, sim.clone(), options));
    base
}

fn client(base: &str, sim: &SimulatedTwilio) -> HttpTwilioClient {
    HttpTwilioClient::new(TwilioConfig {
        credentials: Credentials::AuthToken {
            account_sid: sim.account_sid().into(),
            auth_token: Secret::new(TOKEN),
        },
        base_url: base.into(),
        intelligence_base_url: base.into(),
    })
    .unwrap()
    .with_retry_policy(RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    })
}

async fn all_recordings(
    client: &dyn TwilioClient,
    filter: RecordingFilter,
) -> (Vec<Recording>, usize) {
    let pages: Vec<_> = recording_pages(client, filter).try_collect().await.unwrap();
    for page in &pages {
        assert!(page.rejected.is_empty(), "{:?}", page.rejected);
    }
    let count = pages.len();
    (
        pages.into_iter().flat_map(|p| p.recordings).collect(),
        count,
    )
}

async fn audio_bytes(
    client: &dyn TwilioClient,
    sid: &RecordingSid,
    format: AudioFormat,
) -> (Option<String>, Option<u64>, Vec<u8>) {
    let audio = client.recording_audio(sid, format).await.unwrap();
    let chunks: Vec<bytes::Bytes> = audio.body.try_collect().await.unwrap();
    (audio.content_type, audio.content_length, chunks.concat())
}

#[test]
fn recordings_are_realistic_and_deterministic() {
    let a = SimulatedAccount::new(config(11, 1_500, 30));
    let b = SimulatedAccount::new(config(11, 1_500, 30));
    let recordings = a.all_recordings();
    assert_eq!(recordings, b.all_recordings());
    assert_eq!(a.transcriptions(), b.transcriptions());
    assert_eq!(a.intelligence_transcripts(), b.intelligence_transcripts());

    let calls: HashMap<String, _> = a
        .calls()
        .into_iter()
        .map(|c| (c.sid.to_string(), c))
        .collect();
    let mut per_call: HashMap<String, usize> = HashMap::new();
    for r in &recordings {
        let call = r.call_sid.as_ref().expect("a recording names its call");
        let call = &calls[call.as_str()];
        assert_eq!(call.status, CallStatus::Completed);
        *per_call.entry(call.sid.to_string()).or_default() += 1;
        assert_eq!(r.account_sid.as_deref(), Some(a.account_sid()));
        assert!(matches!(r.channels, Some(1 | 2)));
        assert_eq!(r.price_unit.as_deref(), Some("USD"));
        let created = r.date_created.unwrap();
        let start = r.start_time.unwrap();
        assert!(start >= call.start_time.unwrap() && created > start);
        assert!(created <= a.now());
        let source = r.source.clone().unwrap();
        match (&call.parent_call_sid, &source) {
            (Some(_), RecordingSource::DialVerb | RecordingSource::StartCallRecordingApi) => {}
            (None, RecordingSource::DialVerb) => panic!("DialVerb on a root call {r:?}"),
            (None, _) => {}
            (Some(_), other) => panic!("{other:?} on a leg"),
        }
        match r.status {
            RecordingStatus::Completed => {
                let duration = r.duration.unwrap();
                assert!(duration >= 1 && duration <= call.duration.unwrap(), "{r:?}");
                assert!(r.price.unwrap() < rust_decimal::Decimal::ZERO);
            }
            RecordingStatus::Processing => {
                assert_eq!((r.duration, r.price), (None, None));
                assert_eq!(r.raw["duration"], "-1");
            }
            ref other => panic!("unexpected status {other:?}"),
        }
        assert_eq!(
            r.raw["media_url"].as_str().unwrap().rsplit('/').next(),
            Some(r.sid.as_str())
        );
    }
    // About half of the calls that talked are recorded.
    let talked = calls
        .values()
        .filter(|c| c.status == CallStatus::Completed && c.duration.unwrap_or(0) >= 30)
        .count();
    let recorded = per_call.len();
    let share = recorded as f64 / talked as f64;
    assert!((0.4..0.75).contains(&share), "{recorded} of {talked}");
    assert!(
        per_call.values().any(|n| *n == 2),
        "no call recorded in two parts"
    );
    let sources: HashSet<_> = recordings.iter().filter_map(|r| r.source.clone()).collect();
    for s in [
        RecordingSource::DialVerb,
        RecordingSource::RecordVerb,
        RecordingSource::OutboundApi,
    ] {
        assert!(sources.contains(&s), "no {s:?}");
    }
    assert!(recordings.iter().any(|r| r.channels == Some(2)));
    // Some arrived hours after their call.
    assert!(recordings.iter().any(|r| {
        let call = &calls[r.call_sid.as_ref().unwrap().as_str()];
        r.date_created.unwrap() - call.end_time.unwrap() > chrono::Duration::hours(1)
    }));
    // Newest first.
    assert!(recordings
        .windows(2)
        .all(|w| w[0].date_created >= w[1].date_created));

    // Transcripts name recordings that exist, and say something searchable.
    let sids: HashSet<&str> = recordings.iter().map(|r| r.sid.as_str()).collect();
    let legacy = a.transcriptions();
    assert!(legacy.len() > 20, "{}", legacy.len());
    assert!(legacy
        .iter()
        .all(|t| sids.contains(t.recording_sid.as_ref().unwrap().as_str())));
    let intelligence = a.intelligence_transcripts();
    assert!(intelligence.len() > 50, "{}", intelligence.len());
    let text: String = intelligence.iter().map(|t| t.text.as_str()).collect();
    for word in [
        "leak",
        "boiler",
        "invoice",
        "appointment",
        "plumber",
        "Tuesday",
    ] {
        assert!(text.contains(word), "no {word:?} in the transcripts");
    }

    // Without media, no recording at all.
    let quiet = SimulatedAccount::new(SimConfig {
        media: false,
        ..config(11, 300, 30)
    });
    assert!(quiet.all_recordings().is_empty());
    assert!(quiet.intelligence_transcripts().is_empty());
}

#[tokio::test]
async fn recordings_over_http_match_the_in_process_client() {
    let sim = SimulatedTwilio::new(config(12, 900, 20));
    let base = start(&sim).await;
    let http = client(&base, &sim);

    let filter = RecordingFilter {
        created_after: Some(now() - chrono::Duration::days(12)),
        created_before: Some(now() - chrono::Duration::days(2)),
        page_size: 7,
        ..RecordingFilter::default()
    };
    let (over_http, pages) = all_recordings(&http, filter.clone()).await;
    let (in_process, _) = all_recordings(&sim, filter.clone()).await;
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(over_http, in_process);
    let expected: Vec<Recording> = sim
        .lock()
        .all_recordings()
        .into_iter()
        .filter(|r| filter.matches(r))
        .collect();
    assert_eq!(over_http, expected);
    assert!(over_http
        .windows(2)
        .all(|w| (w[0].date_created, &w[0].sid) > (w[1].date_created, &w[1].sid)));

    // The whole account in one go, and one call's.
    let (everything, _) = all_recordings(&http, RecordingFilter::default()).await;
    assert_eq!(everything, sim.lock().all_recordings());
    let some = &everything[everything.len() / 2];
    let call = some.call_sid.clone().unwrap();
    let (of_call, _) = all_recordings(&http, RecordingFilter::of_call(call.clone())).await;
    assert!(of_call.contains(some));
    assert_eq!(of_call, sim.lock().recordings(&call));

    // Fetch by SID.
    assert_eq!(http.fetch_recording(&some.sid).await.unwrap(), *some);
    assert_eq!(sim.fetch_recording(&some.sid).await.unwrap(), *some);

    // Deleted: gone from the list; fetch and audio are 404s.
    let gone = everything
        .iter()
        .find(|r| r.status == RecordingStatus::Completed)
        .unwrap();
    assert!(sim.delete_recording(&gone.sid));
    assert!(!sim.delete_recording(&gone.sid));
    for client in [&http as &dyn TwilioClient, &sim] {
        assert!(matches!(
            client.fetch_recording(&gone.sid).await.unwrap_err(),
            TwilioError::NotFound { .. }
        ));
        for format in [AudioFormat::Mp3, AudioFormat::Wav] {
            assert!(matches!(
                client.recording_audio(&gone.sid, format).await.unwrap_err(),
                TwilioError::NotFound { .. }
            ));
        }
    }
    let (after, _) = all_recordings(&http, RecordingFilter::default()).await;
    assert_eq!(after.len(), everything.len() - 1);
    assert!(!after.contains(gone));
    let body: Value = reqwest::Client::new()
        .get(format!(
            "{base}/2010-04-01/Accounts/{}/Recordings/{}.json",
            sim.account_sid(),
            gone.sid
        ))
        .basic_auth(sim.account_sid(), Some(TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (body["status"].as_u64(), body["code"].as_u64()),
        (Some(404), Some(20404))
    );
}

#[tokio::test]
async fn audio_in_both_formats_and_through_the_storage_redirect() {
    let sim = SimulatedTwilio::new(config(13, 400, 20));
    let base = start(&sim).await;
    let http = client(&base, &sim);
    let completed: Vec<Recording> = sim
        .lock()
        .all_recordings()
        .into_iter()
        .filter(|r| r.status == RecordingStatus::Completed)
        .collect();
    let redirected = completed
        .iter()
        .find(|r| sim.lock().audio_redirects(&r.sid))
        .expect("some audio is redirected");
    let direct = completed
        .iter()
        .find(|r| !sim.lock().audio_redirects(&r.sid))
        .expect("some audio is served directly");

    for recording in [direct, redirected] {
        let seconds = recording.duration.unwrap();
        let (wav_type, wav_len, wav) = audio_bytes(&http, &recording.sid, AudioFormat::Wav).await;
        assert_eq!(wav_type.as_deref(), Some("audio/x-wav"));
        assert_eq!(wav_len, Some(wav.len() as u64));
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(&wav[8..16], b"WAVEfmt ");
        let u16_at = |i: usize| u16::from_le_bytes([wav[i], wav[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes(wav[i..i + 4].try_into().unwrap());
        assert_eq!(
            (u16_at(20), u16_at(22), u32_at(24), u16_at(34)),
            (1, 1, 8_000, 16)
        );
        assert_eq!(&wav[36..40], b"data");
        assert_eq!(u32_at(40), seconds * 16_000);
        assert_eq!(u32_at(4) as usize, wav.len() - 8);
        assert!(wav[44..].iter().any(|b| *b != 0), "silent WAV");

        let (mp3_type, mp3_len, mp3) = audio_bytes(&http, &recording.sid, AudioFormat::Mp3).await;
        assert_eq!(mp3_type.as_deref(), Some("audio/mpeg"));
        assert_eq!(mp3_len, Some(mp3.len() as u64));
        // MPEG-1 Layer III, 32 kbit/s, 32 kHz, mono: 144-byte frames of
        // 1152 samples, enough of them to cover the duration.
        assert_eq!(mp3.len() % 144, 0);
        let frames = mp3.len() / 144;
        assert_eq!(frames as u64, (u64::from(seconds) * 32_000).div_ceil(1_152));
        for frame in mp3.chunks(144) {
            assert_eq!(frame[0], 0xFF);
            assert_eq!(frame[1] & 0xE0, 0xE0, "frame sync");
            assert_eq!(frame[1] & 0x1E, 0x1A, "MPEG-1 Layer III");
            assert_eq!(frame[2] >> 4, 1, "32 kbit/s");
            assert_eq!((frame[2] >> 2) & 3, 2, "32 kHz");
            assert_eq!(frame[3] >> 6, 3, "mono");
        }

        // The in-process client streams the same bytes.
        assert_eq!(
            audio_bytes(&sim, &recording.sid, AudioFormat::Wav).await.2,
            wav
        );
        assert_eq!(
            audio_bytes(&sim, &recording.sid, AudioFormat::Mp3).await.2,
            mp3
        );
    }
    // Same recording, same bytes: deterministic.
    let again = audio_bytes(&http, &direct.sid, AudioFormat::Mp3).await.2;
    assert_eq!(
        again,
        audio_bytes(&sim, &direct.sid, AudioFormat::Mp3).await.2
    );

    // The redirected downloads reached the storage without credentials.
    let seen = sim.storage_requests();
    assert_eq!(seen.total, 2, "{seen:?}");
    assert_eq!(seen.with_authorization, 0);

    // Raw: the API redirects (auth needed), the storage needs none, checks
    // its signature, and notices credentials sent to it.
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let api = format!(
        "{base}/2010-04-01/Accounts/{}/Recordings/{}",
        sim.account_sid(),
        redirected.sid
    );
    assert_eq!(raw.get(&api).send().await.unwrap().status().as_u16(), 401);
    let response = raw
        .get(&api)
        .basic_auth(sim.account_sid(), Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!(
        "/storage/recordings/{}.wav?Expires=",
        redirected.sid
    )));
    let stored = raw.get(format!("{base}{location}")).send().await.unwrap();
    assert_eq!(stored.status().as_u16(), 200);
    assert_eq!(stored.headers()["content-type"], "audio/x-wav");
    let tampered = location.replace("Signature=", "Signature=0");
    let forbidden = raw.get(format!("{base}{tampered}")).send().await.unwrap();
    assert_eq!(forbidden.status().as_u16(), 403);
    raw.get(format!("{base}{location}"))
        .basic_auth(sim.account_sid(), Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(sim.storage_requests().with_authorization, 1);
    let plain = raw
        .get(format!(
            "{base}/2010-04-01/Accounts/{}/Recordings/{}.mp3",
            sim.account_sid(),
            direct.sid
        ))
        .basic_auth(sim.account_sid(), Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status().as_u16(), 200);
    assert_eq!(plain.headers()["content-type"], "audio/mpeg");
    assert!(plain.headers().get("content-range").is_none());
}

#[tokio::test]
async fn legacy_transcriptions_page_newest_first() {
    let sim = SimulatedTwilio::new(config(14, 700, 20));
    let base = start(&sim).await;
    let http = client(&base, &sim);
    let mut pages = Vec::new();
    for client in [&http as &dyn TwilioClient, &sim] {
        let mut all = Vec::new();
        let mut token: Option<PageToken> = None;
        let mut count = 0;
        loop {
            let page = client
                .list_transcriptions_page(6, token.as_ref())
                .await
                .unwrap();
            assert!(page.rejected.is_empty());
            assert!(page.transcripts.len() <= 6);
            all.extend(page.transcripts);
            count += 1;
            match page.next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        assert!(count >= 3, "{count} pages");
        pages.push(all);
    }
    assert_eq!(pages[0], pages[1]);
    let all = &pages[0];
    assert_eq!(*all, sim.lock().transcriptions());
    assert!(all
        .windows(2)
        .all(|w| w[0].date_created >= w[1].date_created));
    let done = all
        .iter()
        .find(|t| t.status == callview_core::recording::TranscriptStatus::Completed)
        .unwrap();
    assert!(done.text.starts_with("Hi, this is "), "{}", done.text);

    // One recording's, and one by SID, over plain HTTP.
    let http_raw = reqwest::Client::new();
    let ac = sim.account_sid();
    let get = |path: String| {
        let request = http_raw
            .get(format!("{base}/2010-04-01/Accounts/{ac}/{path}"))
            .basic_auth(ac, Some(TOKEN));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let re = done.recording_sid.as_ref().unwrap();
    let listed = get(format!("Recordings/{re}/Transcriptions.json")).await;
    assert_eq!(listed["transcriptions"][0]["sid"], done.sid.as_str());
    let one = get(format!("Transcriptions/{}.json", done.sid)).await;
    assert_eq!(one, done.raw);
    assert_eq!(one["transcription_text"], done.text.as_str());
}

async fn transcript_pages(
    client: &dyn TwilioClient,
    filter: &TranscriptFilter,
) -> (Vec<TranscriptPage>, Vec<PageToken>) {
    let mut pages = Vec::new();
    let mut tokens = Vec::new();
    let mut token: Option<PageToken> = None;
    loop {
        let page = client
            .list_intelligence_transcripts_page(filter, token.as_ref())
            .await
            .unwrap();
        assert!(page.rejected.is_empty());
        token = page.next.clone();
        pages.push(page);
        match &token {
            Some(t) => tokens.push(t.clone()),
            None => return (pages, tokens),
        }
    }
}

#[tokio::test]
async fn intelligence_transcripts_filters_paging_and_sentences() {
    let sim = SimulatedTwilio::new(config(15, 700, 20));
    let base = start(&sim).await;
    let http = client(&base, &sim);
    let filter = TranscriptFilter {
        created_after: Some(now() - chrono::Duration::days(15)),
        created_before: Some(now() - chrono::Duration::days(1)),
        page_size: 4,
        ..TranscriptFilter::default()
    };
    let (http_pages, tokens) = transcript_pages(&http, &filter).await;
    let (sim_pages, _) = transcript_pages(&sim, &filter).await;
    assert!(http_pages.len() >= 3, "{} pages", http_pages.len());
    // `meta.next_page_url` is absolute, on this server.
    assert!(tokens
        .iter()
        .all(|t| t.0.starts_with(&format!("{base}/v2/Transcripts?"))));
    let over_http: Vec<_> = http_pages.into_iter().flat_map(|p| p.transcripts).collect();
    let in_process: Vec<_> = sim_pages.into_iter().flat_map(|p| p.transcripts).collect();
    assert_eq!(over_http, in_process);
    for t in &over_http {
        let created = t.date_created.unwrap();
        assert!(
            created >= filter.created_after.unwrap() && created <= filter.created_before.unwrap()
        );
        assert!(
            t.raw["date_created"].as_str().unwrap().ends_with('Z'),
            "ISO 8601"
        );
        assert!(t.recording_sid.is_some());
    }
    let expected: Vec<String> = sim
        .lock()
        .intelligence_transcripts()
        .into_iter()
        .filter(|t| {
            let c = t.date_created.unwrap();
            c >= filter.created_after.unwrap() && c <= filter.created_before.unwrap()
        })
        .map(|t| t.sid)
        .collect();
    assert_eq!(
        over_http.iter().map(|t| t.sid.clone()).collect::<Vec<_>>(),
        expected
    );

    // SourceSid: exactly that recording's.
    let one = &over_http[over_http.len() / 2];
    let re = one.recording_sid.as_ref().unwrap().to_string();
    let by_source = TranscriptFilter {
        source_sid: Some(re.clone()),
        ..TranscriptFilter::default()
    };
    let (pages, _) = transcript_pages(&http, &by_source).await;
    let found: Vec<_> = pages.into_iter().flat_map(|p| p.transcripts).collect();
    assert_eq!(found, vec![one.clone()]);

    // Sentences, over several pages on the wire (the client asks for 1000,
    // so ask the server for small pages by hand too).
    let done = over_http
        .iter()
        .filter(|t| t.status == callview_core::recording::TranscriptStatus::Completed)
        .max_by_key(|t| t.raw["duration"].as_u64())
        .unwrap();
    let sentences = http.transcript_sentences(&done.sid).await.unwrap();
    assert_eq!(
        sentences,
        sim.transcript_sentences(&done.sid).await.unwrap()
    );
    let duration = done.raw["duration"].as_f64().unwrap();
    assert!(sentences.len() >= 2);
    for (i, s) in sentences.iter().enumerate() {
        assert_eq!(s.index as usize, i);
        assert!(s.channel <= 1);
        assert!(s.start < s.end && s.end <= duration, "{s:?} in {duration}");
        assert!(s.confidence.is_some_and(|c| (0.0..=1.0).contains(&c)));
        assert!(!s.text.is_empty());
    }
    assert!(sentences.iter().any(|s| s.channel == 0) && sentences.iter().any(|s| s.channel == 1));
    let raw = reqwest::Client::new();
    let mut url = format!("{base}/v2/Transcripts/{}/Sentences?PageSize=2", done.sid);
    let mut paged = Vec::new();
    loop {
        let body: Value = raw
            .get(&url)
            .basic_auth(sim.account_sid(), Some(TOKEN))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["meta"]["key"], "sentences");
        paged.extend(body["sentences"].as_array().unwrap().iter().cloned());
        match body["meta"]["next_page_url"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(paged.len(), sentences.len());
    assert!(paged[0]["sid"].as_str().unwrap().starts_with("GX"));
    let fetched: Value = raw
        .get(format!("{base}/v2/Transcripts/{}", done.sid))
        .basic_auth(sim.account_sid(), Some(TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, done.raw);
    assert!(matches!(
        http.transcript_sentences("GT0000000000000000000000000000beef")
            .await
            .unwrap_err(),
        TwilioError::NotFound { .. }
    ));
}

#[tokio::test]
async fn late_recordings_arrive_and_processing_completes_as_time_passes() {
    let a = SimulatedTwilio::new(config(16, 800, 1));
    let b = SimulatedTwilio::new(config(16, 800, 1));
    let base = start(&a).await;
    let http = client(&base, &a);
    let before: HashSet<RecordingSid> = a
        .lock()
        .all_recordings()
        .into_iter()
        .map(|r| r.sid)
        .collect();

    // The same account ten hours later shows recordings of calls that had
    // ended before, created after the present of `a`.
    b.advance_to(now() + chrono::Duration::hours(10));
    let later = b.lock().all_recordings();
    let late: Vec<Recording> = later
        .into_iter()
        .filter(|r| {
            let call = b.lock().call(r.call_sid.as_ref().unwrap()).unwrap();
            call.end_time.unwrap() < now() && r.date_created.unwrap() > now()
        })
        .collect();
    let late = late.first().expect("a recording arrives late");
    assert!(!before.contains(&late.sid));
    assert!(matches!(
        http.fetch_recording(&late.sid).await.unwrap_err(),
        TwilioError::NotFound { .. }
    ));
    let filter = RecordingFilter::of_call(late.call_sid.clone().unwrap());
    assert!(!all_recordings(&http, filter.clone()).await.0.contains(late));

    // Once `a`'s clock passes its date_created, it is there (processing
    // for a while, then completed).
    a.advance_to(late.date_created.unwrap());
    let arrived = http.fetch_recording(&late.sid).await.unwrap();
    assert_eq!(arrived.status, RecordingStatus::Processing);
    assert_eq!(arrived.duration, None);
    assert!(matches!(
        http.recording_audio(&late.sid, AudioFormat::Wav)
            .await
            .unwrap_err(),
        TwilioError::NotFound { .. }
    ));
    assert!(all_recordings(&http, filter).await.0.contains(&arrived));
    a.advance_to(late.date_created.unwrap() + chrono::Duration::hours(1));
    let done = http.fetch_recording(&late.sid).await.unwrap();
    assert_eq!(done.status, RecordingStatus::Completed);
    assert_eq!(done.duration, late.duration);
    assert!(done.duration.is_some() && done.price.is_some());
    assert!(done.date_updated > arrived.date_updated);
    let audio = a
        .recording_audio(&late.sid, AudioFormat::Mp3)
        .await
        .unwrap();
    assert!(audio.body.count().await > 0);
}
