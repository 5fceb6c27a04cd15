//! [`AppState`]: what the API's handlers share (the store, the sync runner,
//! live events, the webhook's configuration and the API token).

use std::sync::Arc;
use std::time::Duration;

use callview_core::twilio::{Secret, TwilioClient};
use callview_core::{Normalizer, Store};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use crate::audio_cache::AudioCache;
use crate::events::EventHub;
use crate::metrics::Metrics;
use crate::signature::WebhookConfig;
use crate::sync_runner::SyncRunner;

/// What the handlers share: the store, the sync runner (optional) and the
/// API's options. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

struct StateInner {
    store: Arc<dyn Store>,
    sync: Option<Arc<SyncRunner>>,
    normalizer: Normalizer,
    token: Option<TokenCheck>,
    webhook: Option<Arc<WebhookConfig>>,
    events: EventHub,
    recordings: Option<Arc<RecordingSource>>,
    timezone: chrono_tz::Tz,
    auth: Arc<crate::auth::AuthState>,
    metrics: Metrics,
    ready_max_sync_age: Option<Duration>,
    texting: Option<Arc<crate::texts::Texting>>,
}

/// Where recordings' audio comes from: the Twilio account (with the
/// server's credentials) and an optional local cache.
pub struct RecordingSource {
    /// The account.
    pub client: Arc<dyn TwilioClient>,
    /// Fetched audio kept on disk, when configured.
    pub cache: Option<AudioCache>,
}

/// The API token, kept as a digest so comparisons take the same time
/// whatever the token's length or the guess.
#[derive(Clone)]
pub(crate) struct TokenCheck {
    digest: [u8; 20],
    /// The key of the media cookies ([`crate::media_cookie`]), derived
    /// from the token: a new token invalidates every cookie.
    media_key: [u8; 20],
    _token: Secret,
}

impl TokenCheck {
    fn new(token: &str) -> Self {
        let mut hasher = Sha1::new();
        hasher.update(b"callview-media-cookie:");
        hasher.update(token.as_bytes());
        Self {
            digest: digest(token.as_bytes()),
            media_key: hasher.finalize().into(),
            _token: Secret::new(token),
        }
    }

    /// The key media cookies are signed with.
    pub(crate) fn media_key(&self) -> &[u8] {
        &self.media_key
    }

    pub(crate) fn matches(&self, given: &[u8]) -> bool {
        bool::from(self.digest.ct_eq(&digest(given)))
    }
}

fn digest(bytes: &[u8]) -> [u8; 20] {
    let mut hasher = Sha1::new();
    hasher.update(b"callview-api-token:");
    hasher.update(bytes);
    hasher.finalize().into()
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("sync", &self.inner.sync)
            .field("normalizer", &self.inner.normalizer)
            .field(
                "api_token",
                &self.inner.token.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over a store, without sync (the sync endpoints answer 503
    /// `sync_unavailable`) and without an API token.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            inner: Arc::new(StateInner {
                store,
                sync: None,
                normalizer: Normalizer::default(),
                token: None,
                webhook: None,
                events: EventHub::new(),
                recordings: None,
                timezone: chrono_tz::Tz::UTC,
                auth: Default::default(),
                metrics: Metrics::new(),
                ready_max_sync_age: None,
                texting: None,
            }),
        }
    }

    fn edit(self, f: impl FnOnce(&mut StateInner)) -> Self {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => StateInner {
                store: Arc::clone(&shared.store),
                sync: shared.sync.clone(),
                normalizer: shared.normalizer,
                token: shared.token.clone(),
                webhook: shared.webhook.clone(),
                events: shared.events.clone(),
                recordings: shared.recordings.clone(),
                timezone: shared.timezone,
                auth: Arc::clone(&shared.auth),
                metrics: shared.metrics.clone(),
                ready_max_sync_age: shared.ready_max_sync_age,
                texting: shared.texting.clone(),
            },
        };
        f(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Adds the sync runner behind `POST /api/sync/*`, the scheduler and
    /// `/healthz`'s `last_sync`. `GET /api/events` then streams the
    /// runner's events ([`SyncRunner::events`]), and `/metrics` shows
    /// the runner's metrics ([`SyncRunner::metrics`]).
    pub fn with_sync(self, runner: Arc<SyncRunner>) -> Self {
        self.edit(|s| {
            s.events = runner.events().clone();
            s.metrics = runner.metrics().clone();
            s.sync = Some(runner);
        })
    }

    /// Turns sending texts on (`POST /api/conversations/{id}/messages`).
    pub fn with_texting(self, texting: crate::texts::Texting) -> Self {
        self.edit(|s| s.texting = Some(Arc::new(texting)))
    }

    /// How texts are sent, when sending is on.
    pub fn texting(&self) -> Option<&crate::texts::Texting> {
        self.inner.texting.as_deref()
    }

    /// Counts into `metrics` (what `/metrics` shows) instead of a registry
    /// of its own. [`AppState::with_sync`] adopts the runner's.
    pub fn with_metrics(self, metrics: Metrics) -> Self {
        self.edit(|s| s.metrics = metrics)
    }

    /// The metrics `/metrics` shows.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Makes `/readyz` fail when the last successful sync (of this process,
    /// or the store's watermark, written by any process) is older than
    /// `max_age`; `None` (the default): not checked.
    pub fn with_ready_max_sync_age(self, max_age: Option<Duration>) -> Self {
        self.edit(|s| s.ready_max_sync_age = max_age)
    }

    /// How old the last successful sync may be for `/readyz`.
    pub fn ready_max_sync_age(&self) -> Option<Duration> {
        self.inner.ready_max_sync_age
    }

    /// Where live updates are published: what `GET /api/events` streams.
    /// Publish [`ServerEvent::changed`](crate::events::ServerEvent::changed)
    /// here after changing stored calls outside a sync, so open viewers
    /// refresh.
    pub fn events(&self) -> &EventHub {
        &self.inner.events
    }

    /// Requires `Authorization: Bearer <token>` on every `/api` route
    /// (`None` or an empty token: no check unless tokens are stored); the
    /// token is an admin named `api-token` ([`crate::auth`]).
    pub fn with_api_token(self, token: Option<&str>) -> Self {
        let token = token.filter(|t| !t.is_empty()).map(TokenCheck::new);
        self.edit(|s| s.token = token)
    }

    /// Sets the time zone statistics use when a request names none
    /// (`CALLVIEW_TIMEZONE`; UTC by default).
    pub fn with_timezone(self, timezone: chrono_tz::Tz) -> Self {
        self.edit(|s| s.timezone = timezone)
    }

    /// The default time zone of statistics.
    pub fn timezone(&self) -> chrono_tz::Tz {
        self.inner.timezone
    }

    /// Sets the normalizer used for display forms.
    pub fn with_normalizer(self, normalizer: Normalizer) -> Self {
        self.edit(|s| s.normalizer = normalizer)
    }

    /// Accepts Twilio status callbacks on `POST /webhooks/twilio/call-status` (see [`crate::webhook`]).
    pub fn with_webhook(self, config: WebhookConfig) -> Self {
        self.edit(|s| s.webhook = Some(Arc::new(config)))
    }

    /// Serves recordings' audio from `client` (the account the sync
    /// reads), through `cache` when given.
    pub fn with_recordings(self, client: Arc<dyn TwilioClient>, cache: Option<AudioCache>) -> Self {
        let source = Arc::new(RecordingSource { client, cache });
        self.edit(|s| s.recordings = Some(source))
    }

    /// Where recordings' audio comes from, when configured.
    pub fn recordings(&self) -> Option<&RecordingSource> {
        self.inner.recordings.as_deref()
    }

    /// The status-callback webhook's configuration, when there is one.
    pub fn webhook(&self) -> Option<&WebhookConfig> {
        self.inner.webhook.as_deref()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The sync runner, when there is one.
    pub fn sync_runner(&self) -> Option<&Arc<SyncRunner>> {
        self.inner.sync.as_ref()
    }

    /// Whether an API token is required.
    pub fn has_api_token(&self) -> bool {
        self.inner.token.is_some()
    }

    /// What authentication keeps between requests ([`crate::auth`]).
    pub fn auth(&self) -> &crate::auth::AuthState {
        &self.inner.auth
    }

    /// The API token's check, when one is required.
    pub(crate) fn token_check(&self) -> Option<&TokenCheck> {
        self.inner.token.as_ref()
    }

    /// The normalizer used for display forms.
    pub fn normalizer(&self) -> &Normalizer {
        &self.inner.normalizer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_check() {
        let check = TokenCheck::new("s3cret");
        assert!(check.matches(b"s3cret"));
        assert!(!check.matches(b"s3cret "));
        assert!(!check.matches(b""));
        assert!(!check.matches(b"other"));
    }
}
