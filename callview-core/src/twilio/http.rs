//! The reqwest implementation of [`super::TwilioClient`].
//!
//! Every request is a `GET` with HTTP Basic authentication. Failures that may
//! go away (429, 5xx, connection errors, timeouts, truncated bodies) are
//! retried with exponential backoff and full jitter, within the bounds of a
//! [`RetryPolicy`]; everything else is returned at once.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, ACCEPT, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use futures::TryStreamExt;

use super::{
    encode_query, AudioFormat, CallFilter, CallPage, IncomingNumber, OutgoingText, PageToken,
    RecordingAudio, RecordingFilter, RecordingPage, TextFilter, TextPage, TranscriptFilter,
    TranscriptPage, TwilioClient, TwilioConfig, TwilioError, TwilioEvent, TwilioObserver,
};
use crate::call::{Call, CallSid};
use crate::recording::{MediaParseError, Recording, RecordingSid, Sentence, Transcript};
use crate::text::{MessageSid, Text, TextMedia};

/// The API version segment of every path.
const API_VERSION: &str = "2010-04-01";
/// Default time limit of one request, body included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Time limit for establishing a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Page size used when listing numbers and sentences.
const LIST_PAGE_SIZE: u32 = 1000;
/// How many redirects an audio download follows.
const MAX_AUDIO_REDIRECTS: usize = 5;

/// Retry settings for [`HttpTwilioClient`].
///
/// The delay before retry `n` (1-based) is drawn uniformly from
/// `0..=min(max_backoff, initial_backoff * 2^(n-1))` ("full jitter"). A
/// `Retry-After` header on a 429 or 503 replaces that delay (capped at
/// `max_backoff`).
///
/// ```
/// use callview_core::twilio::RetryPolicy;
/// let policy = RetryPolicy::default();
/// assert_eq!(policy.max_attempts, 5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts per request, first one included (0 is treated as 1).
    pub max_attempts: u32,
    /// First backoff.
    pub initial_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, backoff starting at 500 ms and growing to at most 30 s.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The (jittered) delay before the retry that follows failed attempt
    /// number `attempt` (1-based).
    fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let cap = self
            .initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff);
        let cap_nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        if cap_nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(random_u64() % cap_nanos.saturating_add(1))
    }
}

/// A cheap random number for jitter (not for cryptography).
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    hasher.write_u128(nanos);
    hasher.finish()
}

/// Twilio over HTTPS (reqwest).
///
/// Its `Debug` output shows the base URL, the account and the Basic-auth
/// user, never the secret.
pub struct HttpTwilioClient {
    http: reqwest::Client,
    /// For audio: follows no redirect by itself, so that the credentials
    /// are never sent to the storage host a redirect points to.
    media_http: reqwest::Client,
    /// The Voice Intelligence base URL, validated like `base`.
    intelligence: Url,
    /// It as text without a trailing `/`.
    intelligence_prefix: String,
    config: TwilioConfig,
    /// The parsed base URL (validated in [`HttpTwilioClient::new`]).
    base: Url,
    /// The base URL as text without a trailing `/`, to which
    /// `next_page_uri` values are appended.
    base_prefix: String,
    retry: RetryPolicy,
    timeout: Duration,
    /// Told about every request (metrics), when set.
    observer: Option<Arc<dyn TwilioObserver>>,
}

impl fmt::Debug for HttpTwilioClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTwilioClient")
            .field("base_url", &self.base_prefix)
            .field("intelligence_base_url", &self.intelligence_prefix)
            .field("account_sid", &self.account_sid())
            .field("auth_user", &self.config.credentials.basic_auth().0)
            .field("secret", &"[redacted]")
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("observed", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpTwilioClient {
    /// A client for `config`, with the default [`RetryPolicy`], a 30 s
    /// request timeout and a 10 s connect timeout. Nothing is sent yet.
    ///
    /// Fails with [`TwilioError::Config`] when the base URL is not an
    /// `http`/`https` URL or the account SID is empty.
    ///
    /// ```
    /// use std::time::Duration;
    /// use callview_core::twilio::{Credentials, HttpTwilioClient, RetryPolicy, Secret, TwilioConfig};
    ///
    /// let config = TwilioConfig {
    ///     credentials: Credentials::AuthToken {
    ///         account_sid: "AC123".into(),
    ///         auth_token: Secret::new("hunter2"),
    ///     },
    ///     base_url: "https://api.twilio.com".into(),
    ///     intelligence_base_url: "https://intelligence.twilio.com".into(),
    /// };
    /// let client = HttpTwilioClient::new(config)
    ///     .unwrap()
    ///     .with_retry_policy(RetryPolicy { max_attempts: 3, ..RetryPolicy::default() })
    ///     .with_timeout(Duration::from_secs(10));
    /// assert_eq!(client.account_sid(), "AC123");
    /// assert!(!format!("{client:?}").contains("hunter2"));
    /// ```
    pub fn new(config: TwilioConfig) -> Result<Self, TwilioError> {
        if config.credentials.account_sid().trim().is_empty() {
            return Err(TwilioError::Config("the account SID is empty".into()));
        }
        let base = parse_base_url("API", &config.base_url)?;
        let intelligence = parse_base_url("Voice Intelligence", &config.intelligence_base_url)?;
        let base_prefix = base.as_str().trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("callview/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TwilioError::Config(format!("cannot build the HTTP client: {e}")))?;
        let media_http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("callview/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TwilioError::Config(format!("cannot build the HTTP client: {e}")))?;
        let intelligence_prefix = intelligence.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            http,
            media_http,
            intelligence,
            intelligence_prefix,
            config,
            base,
            base_prefix,
            retry: RetryPolicy::default(),
            timeout: DEFAULT_TIMEOUT,
            observer: None,
        })
    }

    /// Tells `observer` about every request: each answer with its status
    /// (429s and redirects included), each request that got none, each
    /// retry ([`TwilioEvent`]).
    pub fn with_observer(mut self, observer: Arc<dyn TwilioObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn observe(&self, event: TwilioEvent) {
        if let Some(observer) = &self.observer {
            observer.observe(&event);
        }
    }

    /// Tells the observer how a request sent at `sent` ended.
    fn observe_sent<T>(&self, sent: Instant, result: &Result<reqwest::Response, T>) {
        let elapsed = sent.elapsed();
        self.observe(match result {
            Ok(response) => TwilioEvent::Answered {
                status: response.status().as_u16(),
                elapsed,
            },
            Err(_) => TwilioEvent::NoAnswer { elapsed },
        });
    }

    /// Replaces the retry policy.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sets the time limit of one request attempt, from connecting until the
    /// body has been read (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The account whose resources are listed (`AC...`).
    pub fn account_sid(&self) -> &str {
        self.config.credentials.account_sid()
    }

    /// `{base}/2010-04-01/Accounts/{AccountSid}/{segments...}`, each segment
    /// percent-encoded as a path segment.
    fn account_url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            // `cannot_be_a_base` was ruled out in `new`, so this cannot fail.
            if let Ok(mut path) = url.path_segments_mut() {
                path.pop_if_empty()
                    .extend([API_VERSION, "Accounts", self.account_sid()])
                    .extend(segments);
            }
        }
        url
    }

    /// The first page of the calls list for `filter`.
    fn first_calls_url(&self, filter: &CallFilter) -> Url {
        let mut url = self.account_url(&["Calls.json"]);
        url.set_query(Some(&filter.query()));
        url
    }

    /// The URL a `next_page_uri` points to: the base URL followed by the
    /// URI exactly as Twilio gave it.
    fn page_url(&self, token: &PageToken) -> Result<Url, TwilioError> {
        page_url_under(&self.base_prefix, token)
    }
}

/// `token` as a URL under `prefix` (a base URL without its trailing `/`):
/// a path is appended to it, an absolute URL must start with it.
fn page_url_under(prefix: &str, token: &PageToken) -> Result<Url, TwilioError> {
    let uri = token.0.trim();
    let text = if uri.starts_with('/') {
        format!("{prefix}{uri}")
    } else if uri.starts_with(&format!("{prefix}/")) {
        // An absolute URI under our own base: tolerated, used as is.
        uri.to_owned()
    } else {
        // Never send credentials anywhere but the configured API.
        return Err(TwilioError::Config(format!(
            "the next page URI {uri:?} is not under the base URL {prefix}"
        )));
    };
    Url::parse(&text).map_err(|e| {
        TwilioError::Config(format!("the next page URI {uri:?} is not a valid URL: {e}"))
    })
}

/// A base URL from the configuration: `http`/`https`, no query or fragment.
fn parse_base_url(name: &str, text: &str) -> Result<Url, TwilioError> {
    let base = Url::parse(text.trim()).map_err(|e| {
        TwilioError::Config(format!("the {name} base URL {text:?} is not a URL: {e}"))
    })?;
    if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
        return Err(TwilioError::Config(format!(
            "the {name} base URL {text:?} must be an http or https URL"
        )));
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err(TwilioError::Config(format!(
            "the {name} base URL {text:?} must not have a query or fragment"
        )));
    }
    Ok(base)
}

impl HttpTwilioClient {
    /// GETs `url` and parses the body as JSON, retrying per the policy.
    /// `what` names the resource in errors.
    async fn get_json(&self, url: &Url, what: &str) -> Result<Value, TwilioError> {
        self.with_retries(url, || self.attempt(url, what)).await
    }

    /// Runs `attempt` until it succeeds, fails for good, or the policy's
    /// attempts are spent, sleeping between tries.
    async fn with_retries<T, Fut>(
        &self,
        url: &Url,
        mut attempt_once: impl FnMut() -> Fut,
    ) -> Result<T, TwilioError>
    where
        Fut: std::future::Future<Output = Result<T, (TwilioError, Option<Duration>)>>,
    {
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (error, retry_after) = match attempt_once().await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            if !error.is_retryable() {
                return Err(error);
            }
            if attempt >= max_attempts {
                return Err(TwilioError::RetriesExhausted {
                    attempts: attempt,
                    last: Box::new(error),
                });
            }
            let delay = match retry_after {
                Some(wait) => wait.min(self.retry.max_backoff),
                None => self.retry.backoff(attempt),
            };
            let status = match &error {
                TwilioError::Api { status, .. } => Some(*status),
                _ => None,
            };
            self.observe(TwilioEvent::Retry {
                attempt,
                delay,
                status,
            });
            tracing::warn!(
                path = url.path(),
                status,
                attempt,
                max_attempts,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %error,
                "Twilio request failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt. On failure, also returns the server's `Retry-After`
    /// (429 and 503 only).
    async fn attempt(
        &self,
        url: &Url,
        what: &str,
    ) -> Result<Value, (TwilioError, Option<Duration>)> {
        let (user, secret) = self.config.credentials.basic_auth();
        let sent = Instant::now();
        let response = self
            .http
            .get(url.clone())
            .basic_auth(user, Some(secret.expose()))
            .header(ACCEPT, "application/json")
            .timeout(self.timeout)
            .send()
            .await;
        self.observe_sent(sent, &response);
        let response = response.map_err(|e| (self.transport_error(e), None))?;
        let status = response.status();
        let retry_after = if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::SERVICE_UNAVAILABLE
        {
            parse_retry_after(response.headers())
        } else {
            None
        };
        let body = response.bytes().await;
        if status.is_success() {
            let body = body.map_err(|e| (self.transport_error(e), None))?;
            return serde_json::from_slice::<Value>(&body).map_err(|e| {
                (
                    TwilioError::Decode {
                        context: what.to_owned(),
                        reason: e.to_string(),
                    },
                    None,
                )
            });
        }
        // An error body that cannot be read is not worth failing over: the
        // status says enough.
        let body = body.map(|b| b.to_vec()).unwrap_or_default();
        Err((status_error(status, &body, what), retry_after))
    }

    /// A reqwest failure as [`TwilioError::Transport`], with its causes.
    /// reqwest errors carry the URL (which holds no credential) but never
    /// the headers.
    fn transport_error(&self, error: reqwest::Error) -> TwilioError {
        let mut message = if error.is_timeout() {
            format!("timed out after {:?}: {error}", self.timeout)
        } else {
            error.to_string()
        };
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        TwilioError::Transport(message)
    }

    /// Follows `next_page_uri` from `first` until the last page and collects
    /// the items of array `key`, parsed by `parse` (`None` = skipped with a
    /// warning).
    async fn list_all<T>(
        &self,
        first: Url,
        what: &str,
        key: &str,
        parse: impl Fn(&Value) -> Option<T> + Send + Sync,
    ) -> Result<Vec<T>, TwilioError> {
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let mut url = first;
        loop {
            let body = self.get_json(&url, what).await?;
            let records =
                body.get(key)
                    .and_then(Value::as_array)
                    .ok_or_else(|| TwilioError::Decode {
                        context: what.to_owned(),
                        reason: format!("the response has no `{key}` array"),
                    })?;
            for record in records {
                match parse(record) {
                    Some(item) => items.push(item),
                    None => {
                        let sid = text_field(record, "sid").unwrap_or_default();
                        tracing::warn!(
                            resource = key,
                            sid = sid.as_str(),
                            "skipping a Twilio record without its required fields"
                        );
                    }
                }
            }
            let Some(next) = next_page(&body) else {
                return Ok(items);
            };
            if !seen.insert(next.0.clone()) {
                return Err(TwilioError::Decode {
                    context: what.to_owned(),
                    reason: format!("next_page_uri {:?} repeats", next.0),
                });
            }
            url = self.page_url(&next)?;
        }
    }
}

#[async_trait]
impl TwilioClient for HttpTwilioClient {
    async fn list_calls_page(
        &self,
        filter: &CallFilter,
        page: Option<&PageToken>,
    ) -> Result<CallPage, TwilioError> {
        let url = match page {
            None => self.first_calls_url(filter),
            Some(token) => self.page_url(token)?,
        };
        let what = format!("the calls of account {}", self.account_sid());
        let body = self.get_json(&url, &what).await?;
        parse_call_page(body, &what)
    }

    async fn fetch_call(&self, sid: &CallSid) -> Result<Call, TwilioError> {
        let url = self.account_url(&["Calls", &format!("{sid}.json")]);
        let what = format!("call {sid}");
        let body = self.get_json(&url, &what).await?;
        Call::from_value(body).map_err(|e| TwilioError::Decode {
            context: what,
            reason: e.to_string(),
        })
    }

    async fn list_incoming_numbers(&self) -> Result<Vec<IncomingNumber>, TwilioError> {
        let mut url = self.account_url(&["IncomingPhoneNumbers.json"]);
        url.set_query(Some(&encode_query(&[(
            "PageSize",
            LIST_PAGE_SIZE.to_string(),
        )])));
        let what = format!("the phone numbers of account {}", self.account_sid());
        self.list_all(url, &what, "incoming_phone_numbers", parse_number)
            .await
    }

    async fn list_recordings_page(
        &self,
        filter: &RecordingFilter,
        page: Option<&PageToken>,
    ) -> Result<RecordingPage, TwilioError> {
        let url = match page {
            None => {
                let mut url = self.account_url(&["Recordings.json"]);
                url.set_query(Some(&filter.query()));
                url
            }
            Some(token) => self.page_url(token)?,
        };
        let what = format!("the recordings of account {}", self.account_sid());
        let body = self.get_json(&url, &what).await?;
        let (recordings, rejected, next) =
            parse_page(body, "recordings", &what, next_page, Recording::from_value)?;
        Ok(RecordingPage {
            recordings,
            rejected,
            next,
        })
    }

    async fn fetch_recording(&self, sid: &RecordingSid) -> Result<Recording, TwilioError> {
        let url = self.account_url(&["Recordings", &format!("{sid}.json")]);
        let what = format!("recording {sid}");
        let body = self.get_json(&url, &what).await?;
        Recording::from_value(body).map_err(|e| TwilioError::Decode {
            context: what,
            reason: e.to_string(),
        })
    }

    async fn list_transcriptions_page(
        &self,
        page_size: u32,
        page: Option<&PageToken>,
    ) -> Result<TranscriptPage, TwilioError> {
        let url = match page {
            None => {
                let mut url = self.account_url(&["Transcriptions.json"]);
                url.set_query(Some(&encode_query(&[("PageSize", page_size.to_string())])));
                url
            }
            Some(token) => self.page_url(token)?,
        };
        let what = format!("the transcriptions of account {}", self.account_sid());
        let body = self.get_json(&url, &what).await?;
        let (transcripts, rejected, next) = parse_page(
            body,
            "transcriptions",
            &what,
            next_page,
            Transcript::from_legacy,
        )?;
        Ok(TranscriptPage {
            transcripts,
            rejected,
            next,
        })
    }

    async fn list_intelligence_transcripts_page(
        &self,
        filter: &TranscriptFilter,
        page: Option<&PageToken>,
    ) -> Result<TranscriptPage, TwilioError> {
        let url = match page {
            None => {
                let mut url = self.intelligence_url(&["v2", "Transcripts"]);
                url.set_query(Some(&filter.query()));
                url
            }
            Some(token) => page_url_under(&self.intelligence_prefix, token)?,
        };
        let what = "the Voice Intelligence transcripts";
        let body = self.get_json(&url, what).await?;
        let (transcripts, rejected, next) = parse_page(
            body,
            "transcripts",
            what,
            next_page_url,
            Transcript::from_intelligence,
        )?;
        Ok(TranscriptPage {
            transcripts,
            rejected,
            next,
        })
    }

    async fn transcript_sentences(
        &self,
        transcript_sid: &str,
    ) -> Result<Vec<Sentence>, TwilioError> {
        let mut url = self.intelligence_url(&["v2", "Transcripts", transcript_sid, "Sentences"]);
        url.set_query(Some(&encode_query(&[(
            "PageSize",
            LIST_PAGE_SIZE.to_string(),
        )])));
        let what = format!("the sentences of transcript {transcript_sid}");
        let mut sentences = Vec::new();
        let mut seen = HashSet::new();
        loop {
            let body = self.get_json(&url, &what).await?;
            let (mut items, rejected, next) =
                parse_page(body, "sentences", &what, next_page_url, |v| {
                    Sentence::from_json(&v)
                })?;
            if let Some(first) = rejected.first() {
                // A transcript with a sentence we cannot read is not stored
                // with a hole in it: the caller reports it and keeps the rest.
                return Err(TwilioError::Decode {
                    context: what,
                    reason: first.to_string(),
                });
            }
            sentences.append(&mut items);
            let Some(next) = next else {
                return Ok(sentences);
            };
            if !seen.insert(next.0.clone()) {
                return Err(TwilioError::Decode {
                    context: what,
                    reason: format!("meta.next_page_url {:?} repeats", next.0),
                });
            }
            url = page_url_under(&self.intelligence_prefix, &next)?;
        }
    }

    async fn recording_audio(
        &self,
        sid: &RecordingSid,
        format: AudioFormat,
    ) -> Result<RecordingAudio, TwilioError> {
        let url = self.account_url(&["Recordings", &format!("{sid}.{}", format.extension())]);
        let what = format!("the audio of recording {sid}");
        let response = self
            .with_retries(&url, || self.audio_attempt(&url, &what))
            .await?;
        let headers = response.headers();
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_length = response.content_length();
        let body = response.bytes_stream().map_err(|e| {
            TwilioError::Transport(format!("the audio stream broke: {}", e.without_url()))
        });
        Ok(RecordingAudio {
            content_type,
            content_length,
            body: Box::pin(body),
        })
    }

    async fn list_texts_page(
        &self,
        filter: &TextFilter,
        page: Option<&PageToken>,
    ) -> Result<TextPage, TwilioError> {
        let url = match page {
            None => {
                let mut url = self.account_url(&["Messages.json"]);
                url.set_query(Some(&filter.query()));
                url
            }
            Some(token) => self.page_url(token)?,
        };
        let what = format!("the messages of account {}", self.account_sid());
        let body = self.get_json(&url, &what).await?;
        let (texts, rejected, next) =
            parse_page(body, "messages", &what, next_page, Text::from_value)?;
        Ok(TextPage {
            texts,
            rejected,
            next,
        })
    }

    async fn text_media(&self, sid: &MessageSid) -> Result<Vec<TextMedia>, TwilioError> {
        let mut url = self.account_url(&["Messages", sid.as_str(), "Media.json"]);
        url.set_query(Some(&encode_query(&[(
            "PageSize",
            LIST_PAGE_SIZE.to_string(),
        )])));
        let what = format!("the media of message {sid}");
        self.list_all(url, &what, "media_list", |record| {
            TextMedia::from_json(record).ok()
        })
        .await
    }

    async fn text_media_content(
        &self,
        sid: &MessageSid,
        media_sid: &str,
    ) -> Result<RecordingAudio, TwilioError> {
        let url = self.account_url(&["Messages", sid.as_str(), "Media", media_sid]);
        let what = format!("media {media_sid} of message {sid}");
        let response = self
            .with_retries(&url, || self.audio_attempt(&url, &what))
            .await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_length = response.content_length();
        let body = response.bytes_stream().map_err(|e| {
            TwilioError::Transport(format!("the media stream broke: {}", e.without_url()))
        });
        Ok(RecordingAudio {
            content_type,
            content_length,
            body: Box::pin(body),
        })
    }

    async fn send_text(&self, text: &OutgoingText) -> Result<Text, TwilioError> {
        let url = self.account_url(&["Messages.json"]);
        let what = format!("a message to {}", text.to);
        let (user, secret) = self.config.credentials.basic_auth();
        let sent = Instant::now();
        // One attempt: a retried POST could send the text twice.
        let response = self
            .http
            .post(url.clone())
            .basic_auth(user, Some(secret.expose()))
            .header(ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            // Form encoding: the query's percent-encoding (spaces as %20).
            .body(encode_query(&text.form()))
            .timeout(self.timeout)
            .send()
            .await;
        self.observe_sent(sent, &response);
        let response = response.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            return Err(status_error(status, &body, &what));
        }
        let value = serde_json::from_slice::<Value>(&body).map_err(|e| TwilioError::Decode {
            context: what.clone(),
            reason: e.to_string(),
        })?;
        Text::from_value(value).map_err(|e| TwilioError::Decode {
            context: what,
            reason: e.to_string(),
        })
    }
}

impl HttpTwilioClient {
    /// `{intelligence base}/{segments...}`.
    fn intelligence_url(&self, segments: &[&str]) -> Url {
        let mut url = self.intelligence.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// One request for audio: the first hop with credentials, each
    /// redirect hop without them (Twilio's storage URLs carry their own
    /// signature). Answers the response whose body is the audio.
    async fn audio_attempt(
        &self,
        url: &Url,
        what: &str,
    ) -> Result<reqwest::Response, (TwilioError, Option<Duration>)> {
        let (user, secret) = self.config.credentials.basic_auth();
        let mut current = url.clone();
        let mut request = self
            .media_http
            .get(current.clone())
            .basic_auth(user, Some(secret.expose()));
        for hop in 0..=MAX_AUDIO_REDIRECTS {
            let sent = Instant::now();
            let response = request.send().await;
            self.observe_sent(sent, &response);
            let response = response.map_err(|e| {
                // A storage URL carries its own signature: never in an error.
                let e = if hop > 0 { e.without_url() } else { e };
                (self.transport_error(e), None)
            })?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| current.join(l).ok());
                let Some(next) = location else {
                    return Err((
                        TwilioError::Api {
                            status: status.as_u16(),
                            code: None,
                            message: "a redirect without a usable Location".into(),
                            more_info: None,
                        },
                        None,
                    ));
                };
                if hop == MAX_AUDIO_REDIRECTS {
                    break;
                }
                current = next;
                // No credentials past the first hop.
                request = self.media_http.get(current.clone());
                continue;
            }
            if status.is_success() {
                return Ok(response);
            }
            let retry_after = if status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::SERVICE_UNAVAILABLE
            {
                parse_retry_after(response.headers())
            } else {
                None
            };
            let body = response
                .bytes()
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            return Err((status_error(status, &body, what), retry_after));
        }
        Err((
            TwilioError::Api {
                status: 310,
                code: None,
                message: format!("more than {MAX_AUDIO_REDIRECTS} redirects"),
                more_info: None,
            },
            None,
        ))
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Duration::try_from_secs_f64(seconds).ok();
        }
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (when.with_timezone(&Utc) - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// The error for a non-success status, from Twilio's error body
/// `{"code", "message", "more_info", "status"}` when there is one.
fn status_error(status: StatusCode, body: &[u8], what: &str) -> TwilioError {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let field = |name: &str| parsed.as_ref().and_then(|v| v.get(name));
    let code = field("code").and_then(|c| {
        c.as_i64()
            .or_else(|| c.as_str().and_then(|s| s.trim().parse().ok()))
    });
    let message = field("message")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    let more_info = field("more_info")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    let status_text = || {
        status
            .canonical_reason()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("HTTP status {}", status.as_u16()))
    };
    match status.as_u16() {
        401 | 403 => TwilioError::Unauthorized {
            status: status.as_u16(),
            message: message.unwrap_or_else(status_text),
        },
        404 => TwilioError::NotFound {
            what: match message {
                Some(m) => format!("{what} ({m})"),
                None => what.to_owned(),
            },
        },
        _ => TwilioError::Api {
            status: status.as_u16(),
            code,
            message: message.unwrap_or_else(status_text),
            more_info,
        },
    }
}

/// `next_page_uri` as a token; null or empty means the last page.
fn next_page(body: &Value) -> Option<PageToken> {
    body.get("next_page_uri")
        .and_then(Value::as_str)
        .filter(|uri| !uri.trim().is_empty())
        .map(|uri| PageToken(uri.to_owned()))
}

/// One page of the calls list: every record parsed, failures kept in
/// `rejected`.
fn parse_call_page(mut body: Value, what: &str) -> Result<CallPage, TwilioError> {
    let records = match body.get_mut("calls").map(Value::take) {
        Some(Value::Array(records)) => records,
        _ => {
            return Err(TwilioError::Decode {
                context: what.to_owned(),
                reason: "the response has no `calls` array".into(),
            })
        }
    };
    let mut page = CallPage {
        next: next_page(&body),
        calls: Vec::with_capacity(records.len()),
        ..CallPage::default()
    };
    // Each record moves into its call's `raw`: no copy of the page.
    for record in records {
        match Call::from_value(record) {
            Ok(call) => page.calls.push(call),
            Err(rejected) => page.rejected.push(rejected),
        }
    }
    Ok(page)
}

/// A non-empty text field (numbers accepted as their text).
fn text_field(record: &Value, name: &str) -> Option<String> {
    match record.get(name)? {
        Value::String(s) => Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_number(record: &Value) -> Option<IncomingNumber> {
    Some(IncomingNumber {
        sid: text_field(record, "sid")?,
        phone_number: text_field(record, "phone_number")?,
        friendly_name: text_field(record, "friendly_name"),
    })
}

/// The v2 APIs' next page: `meta.next_page_url`, absolute; null or empty
/// on the last page.
fn next_page_url(body: &Value) -> Option<PageToken> {
    body.pointer("/meta/next_page_url")
        .and_then(Value::as_str)
        .filter(|url| !url.trim().is_empty())
        .map(|url| PageToken(url.to_owned()))
}

/// A page's items, the records that failed with their reason, the next page.
type Parsed<T, E = MediaParseError> = (Vec<T>, Vec<E>, Option<PageToken>);

/// The items of array `key` parsed by `parse` (failures kept, with their
/// reason), and the next page.
fn parse_page<T, E>(
    mut body: Value,
    key: &str,
    what: &str,
    next_of: fn(&Value) -> Option<PageToken>,
    parse: impl Fn(Value) -> Result<T, E>,
) -> Result<Parsed<T, E>, TwilioError> {
    let records = match body.get_mut(key).map(Value::take) {
        Some(Value::Array(records)) => records,
        _ => {
            return Err(TwilioError::Decode {
                context: what.to_owned(),
                reason: format!("the response has no `{key}` array"),
            })
        }
    };
    let mut items = Vec::with_capacity(records.len());
    let mut rejected = Vec::new();
    for record in records {
        match parse(record) {
            Ok(item) => items.push(item),
            Err(e) => rejected.push(e),
        }
    }
    Ok((items, rejected, next_of(&body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding_keeps_colons_and_encodes_comparisons() {
        let q = encode_query(&[
            ("StartTime>", "2026-02-01T00:00:00Z".into()),
            ("StartTime<", "a b+c".into()),
        ]);
        assert_eq!(
            q,
            "StartTime%3E=2026-02-01T00:00:00Z&StartTime%3C=a%20b%2Bc"
        );
    }

    #[test]
    fn backoff_stays_within_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
        };
        for attempt in 1..20 {
            let cap = Duration::from_millis(100 * (1 << (attempt - 1).min(10)))
                .min(Duration::from_millis(350));
            for _ in 0..50 {
                assert!(policy.backoff(attempt) <= cap);
            }
        }
        let zero = RetryPolicy {
            initial_backoff: Duration::ZERO,
            ..policy
        };
        assert_eq!(zero.backoff(3), Duration::ZERO);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(parse_retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(parse_retry_after(&headers), None);
    }

    #[test]
    fn error_bodies_are_parsed_with_fallbacks() {
        let body =
            br#"{"code":20429,"message":"Too many","more_info":"https://x/20429","status":429}"#;
        match status_error(StatusCode::TOO_MANY_REQUESTS, body, "x") {
            TwilioError::Api {
                status,
                code,
                message,
                more_info,
            } => {
                assert_eq!(status, 429);
                assert_eq!(code, Some(20429));
                assert_eq!(message, "Too many");
                assert_eq!(more_info.as_deref(), Some("https://x/20429"));
            }
            other => panic!("{other:?}"),
        }
        match status_error(StatusCode::BAD_GATEWAY, b"<html>", "x") {
            TwilioError::Api { message, code, .. } => {
                assert_eq!(message, "Bad Gateway");
                assert_eq!(code, None);
            }
            other => panic!("{other:?}"),
        }
    }
}
