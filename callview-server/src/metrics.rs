//! Prometheus metrics: [`Metrics`], the registry behind `GET /metrics`.
//!
//! Built on `prometheus-client` rather than the `metrics` facade with its
//! exporter: the facade's recorder is global to the process, so two
//! servers in one process (the tests start dozens; an application may
//! embed two routers) would add into the same counters. Here each
//! [`Metrics`] is a registry of its own, owned by its
//! [`AppState`](crate::AppState) (adopted from the
//! [`SyncRunner`](crate::SyncRunner), as its events are), and a test reads
//! exactly what its own server counted. Core depends on no metrics crate:
//! Twilio requests reach the registry through core's
//! [`TwilioObserver`](callview_core::twilio::TwilioObserver) hook
//! ([`Metrics::twilio_observer`]), syncs through the runner's reports.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `callview_http_requests_total` | counter | `route` (the route's template, `unmatched` for none), `method`, `status` |
//! | `callview_http_request_duration_seconds` | histogram | `route`, `method` |
//! | `callview_sync_runs_total` | counter | `trigger`, `outcome` (`success`, `twilio_error`, `store_error`, `busy`, `panicked`) |
//! | `callview_sync_duration_seconds` | histogram | |
//! | `callview_sync_last_success_timestamp_seconds` | gauge | |
//! | `callview_sync_lag_seconds` | gauge | (absent before the first complete sync) |
//! | `callview_calls_fetched_total` | counter | |
//! | `callview_calls_ingested_total` | counter | `result` (`inserted`, `updated`, `unchanged`, `moved`, `skipped`) |
//! | `callview_recordings_ingested_total` | counter | `result` (`fetched`, `written`, `deleted`) |
//! | `callview_transcripts_ingested_total` | counter | `result` (`fetched`, `written`) |
//! | `callview_texts_ingested_total` | counter | `result` (`fetched`, `inserted`, `updated`, `unchanged`) |
//! | `callview_twilio_requests_total` | counter | `status` (the HTTP status, or `none` when no answer came) |
//! | `callview_twilio_request_duration_seconds` | histogram | |
//! | `callview_twilio_retries_total` | counter | `status` (of the attempt retried, or `none`) |
//! | `callview_db_pool_connections` | gauge | `state` (`idle`, `in_use`) |
//! | `callview_db_pool_max_connections` | gauge | |
//! | `callview_sse_subscribers` | gauge | |
//! | `callview_build_info` | gauge | `version` |

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use callview_core::store::PoolStatus;
use callview_core::twilio::{TwilioEvent, TwilioObserver};
use callview_core::SyncReport;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, EncodeMetric, LabelSetEncoder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::trigger::SyncTrigger;

/// The `Content-Type` of the Prometheus text format (0.0.4).
pub const PROMETHEUS_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// The `Content-Type` of the OpenMetrics text format, for scrapers that
/// ask for it in `Accept`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Buckets of request and sync durations, in seconds: 1 ms to about 2 min.
fn duration_buckets() -> impl Iterator<Item = f64> {
    [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        120.0,
    ]
    .into_iter()
}

fn duration_histogram() -> Histogram {
    Histogram::new(duration_buckets())
}

/// Labels of the HTTP request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: &'static str,
    status: u16,
}

/// Labels of the HTTP duration histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    trigger: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// The registry and its metrics. Cheap to clone: clones share them.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    sync_runs: Family<SyncLabels, Counter>,
    sync_duration: Histogram,
    sync_last_success: Gauge<f64, AtomicU64>,
    calls_fetched: Counter,
    calls_ingested: Family<ResultLabel, Counter>,
    recordings_ingested: Family<ResultLabel, Counter>,
    transcripts_ingested: Family<ResultLabel, Counter>,
    texts_ingested: Family<ResultLabel, Counter>,
    twilio: TwilioMetrics,
    live: Arc<Live>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every callview metric, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "callview_http_requests",
            "HTTP requests answered, by route template, method and status",
            http_requests.clone(),
        );
        let http_duration: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "callview_http_request_duration_seconds",
            "Time from receiving an HTTP request to sending its response's headers",
            http_duration.clone(),
        );
        let sync_runs = Family::<SyncLabels, Counter>::default();
        registry.register(
            "callview_sync_runs",
            "Sync runs finished, by trigger and outcome",
            sync_runs.clone(),
        );
        let sync_duration = duration_histogram();
        registry.register(
            "callview_sync_duration_seconds",
            "Wall time of finished sync runs",
            sync_duration.clone(),
        );
        let sync_last_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "callview_sync_last_success_timestamp_seconds",
            "When this process's last successful sync finished (Unix seconds; 0 before the first)",
            sync_last_success.clone(),
        );
        let calls_fetched = Counter::default();
        registry.register(
            "callview_calls_fetched",
            "Call records received from Twilio by successful syncs",
            calls_fetched.clone(),
        );
        let calls_ingested = Family::<ResultLabel, Counter>::default();
        registry.register(
            "callview_calls_ingested",
            "Calls (stored as messages) handled by successful syncs, by result",
            calls_ingested.clone(),
        );
        let recordings_ingested = Family::<ResultLabel, Counter>::default();
        registry.register(
            "callview_recordings_ingested",
            "Recordings handled by successful syncs, by result",
            recordings_ingested.clone(),
        );
        let transcripts_ingested = Family::<ResultLabel, Counter>::default();
        registry.register(
            "callview_transcripts_ingested",
            "Transcripts handled by successful syncs, by result",
            transcripts_ingested.clone(),
        );
        let texts_ingested = Family::<ResultLabel, Counter>::default();
        registry.register(
            "callview_texts_ingested",
            "Text messages (SMS and MMS) handled by successful syncs, by result",
            texts_ingested.clone(),
        );
        let twilio = TwilioMetrics::default();
        registry.register(
            "callview_twilio_requests",
            "HTTP requests to Twilio, by status (`none`: no answer came)",
            twilio.requests.clone(),
        );
        registry.register(
            "callview_twilio_request_duration_seconds",
            "Time from sending a request to Twilio to its answer's headers (or the failure)",
            twilio.duration.clone(),
        );
        registry.register(
            "callview_twilio_retries",
            "Requests to Twilio tried again, by the failed attempt's status",
            twilio.retries.clone(),
        );
        registry.register(
            "callview_build",
            "The running callview version",
            Info::new(VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        let live = Arc::new(Live::default());
        registry.register_collector(Box::new(Arc::clone(&live)));
        // The series of fixed label sets show at zero from the first
        // scrape (a family labelled by what happened, a route or a status,
        // shows with its first series).
        for result in ["inserted", "updated", "unchanged", "moved", "skipped"] {
            calls_ingested
                .get_or_create(&ResultLabel { result })
                .inc_by(0);
        }
        for result in ["fetched", "written", "deleted"] {
            recordings_ingested
                .get_or_create(&ResultLabel { result })
                .inc_by(0);
        }
        for result in ["fetched", "written"] {
            transcripts_ingested
                .get_or_create(&ResultLabel { result })
                .inc_by(0);
        }
        for result in ["fetched", "inserted", "updated", "unchanged"] {
            texts_ingested
                .get_or_create(&ResultLabel { result })
                .inc_by(0);
        }
        Self {
            inner: Arc::new(Inner {
                registry,
                http_requests,
                http_duration,
                sync_runs,
                sync_duration,
                sync_last_success,
                calls_fetched,
                calls_ingested,
                recordings_ingested,
                transcripts_ingested,
                texts_ingested,
                twilio,
                live,
            }),
        }
    }

    /// What counts the requests of an
    /// [`HttpTwilioClient`](callview_core::twilio::HttpTwilioClient) into
    /// this registry: pass it to its `with_observer`.
    pub fn twilio_observer(&self) -> Arc<dyn TwilioObserver> {
        Arc::new(self.inner.twilio.clone())
    }

    /// Counts one answered HTTP request.
    pub fn record_http(
        &self,
        route: &str,
        method: &axum::http::Method,
        status: u16,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        self.inner
            .http_requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                method,
                status,
            })
            .inc();
        self.inner
            .http_duration
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                method,
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one finished sync run: `outcome` names how it ended; `report`
    /// is its report when it succeeded.
    pub fn record_sync(
        &self,
        trigger: SyncTrigger,
        outcome: &'static str,
        report: Option<&SyncReport>,
        elapsed: Duration,
    ) {
        let inner = &self.inner;
        inner
            .sync_runs
            .get_or_create(&SyncLabels {
                trigger: trigger_label(trigger),
                outcome,
            })
            .inc();
        inner.sync_duration.observe(elapsed.as_secs_f64());
        let Some(report) = report else {
            return;
        };
        let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        inner.sync_last_success.set(now);
        inner.calls_fetched.inc_by(report.fetched);
        let calls = [
            ("inserted", report.inserted),
            ("updated", report.updated),
            ("unchanged", report.unchanged),
            ("moved", report.moved),
            ("skipped", report.skipped.len() as u64),
        ];
        for (result, n) in calls {
            inner
                .calls_ingested
                .get_or_create(&ResultLabel { result })
                .inc_by(n);
        }
        let media = &report.media;
        for (result, n) in [
            ("fetched", media.recordings_fetched),
            ("written", media.recordings_written),
            ("deleted", media.recordings_deleted),
        ] {
            inner
                .recordings_ingested
                .get_or_create(&ResultLabel { result })
                .inc_by(n);
        }
        for (result, n) in [
            ("fetched", media.transcripts_fetched),
            ("written", media.transcripts_written),
        ] {
            inner
                .transcripts_ingested
                .get_or_create(&ResultLabel { result })
                .inc_by(n);
        }
        let texts = &report.texts;
        for (result, n) in [
            ("fetched", texts.fetched),
            ("inserted", texts.inserted),
            ("updated", texts.updated),
            ("unchanged", texts.unchanged),
        ] {
            inner
                .texts_ingested
                .get_or_create(&ResultLabel { result })
                .inc_by(n);
        }
    }

    /// Sets the values read at scrape time (see [`LiveValues`]).
    pub fn set_live(&self, values: LiveValues) {
        *self
            .inner
            .live
            .values
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = values;
    }

    /// Everything in the text format: OpenMetrics when `openmetrics`,
    /// else Prometheus 0.0.4.
    pub fn encode(&self, openmetrics: bool) -> String {
        let mut out = String::new();
        let result = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.inner.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.inner.registry)
        };
        if let Err(e) = result {
            // Writing into a String does not fail; a metric that cannot be
            // encoded is a bug worth a log line, not a failed scrape.
            tracing::error!(error = %e, "could not encode the metrics");
        }
        out
    }
}

/// What the scrape reads at the moment it runs, rather than counts: set
/// by the `/metrics` handler before it encodes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LiveValues {
    /// Open event streams (`GET /api/events`).
    pub sse_subscribers: u64,
    /// The store's connections, when it has a pool to show.
    pub pool: Option<PoolStatus>,
    /// Seconds from the sync watermark (the instant up to which the store
    /// is known complete) to now; `None` before the first complete sync or
    /// when the store did not answer.
    pub sync_lag_seconds: Option<f64>,
}

#[derive(Debug, Default)]
struct Live {
    values: Mutex<LiveValues>,
}

/// A label set of one pair, for the collector's families.
struct Pair(&'static str, &'static str);

impl EncodeLabelSet for Pair {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        (self.0, self.1).encode(encoder.encode_label())
    }
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let values = *self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let subscribers =
            ConstGauge::new(i64::try_from(values.sse_subscribers).unwrap_or(i64::MAX));
        subscribers.encode(encoder.encode_descriptor(
            "callview_sse_subscribers",
            "Open live event streams (GET /api/events)",
            None,
            subscribers.metric_type(),
        )?)?;
        if let Some(pool) = values.pool {
            let gauge = ConstGauge::new(0i64);
            let mut family = encoder.encode_descriptor(
                "callview_db_pool_connections",
                "Database connections by state (PostgreSQL: the pool; SQLite: the read connections, or the one connection of an in-memory database)",
                None,
                gauge.metric_type(),
            )?;
            for (state, n) in [("idle", pool.idle), ("in_use", pool.in_use)] {
                ConstGauge::new(i64::from(n))
                    .encode(family.encode_family(&Pair("state", state))?)?;
            }
            let max = ConstGauge::new(i64::from(pool.max));
            max.encode(encoder.encode_descriptor(
                "callview_db_pool_max_connections",
                "The most connections the database pool opens",
                None,
                max.metric_type(),
            )?)?;
        }
        if let Some(lag) = values.sync_lag_seconds {
            let lag = ConstGauge::new(lag);
            lag.encode(encoder.encode_descriptor(
                "callview_sync_lag_seconds",
                "Seconds since the instant up to which the store is known complete (the sync watermark)",
                None,
                lag.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// Counts a Twilio client's requests ([`Metrics::twilio_observer`]).
#[derive(Clone, Debug)]
struct TwilioMetrics {
    requests: Family<StatusLabel, Counter>,
    duration: Histogram,
    retries: Family<StatusLabel, Counter>,
}

impl Default for TwilioMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: duration_histogram(),
            retries: Family::default(),
        }
    }
}

fn status_label(status: Option<u16>) -> StatusLabel {
    StatusLabel {
        status: status.map_or_else(|| "none".to_owned(), |s| s.to_string()),
    }
}

impl TwilioObserver for TwilioMetrics {
    fn observe(&self, event: &TwilioEvent) {
        match *event {
            TwilioEvent::Answered { status, elapsed } => {
                self.requests
                    .get_or_create(&status_label(Some(status)))
                    .inc();
                self.duration.observe(elapsed.as_secs_f64());
            }
            TwilioEvent::NoAnswer { elapsed } => {
                self.requests.get_or_create(&status_label(None)).inc();
                self.duration.observe(elapsed.as_secs_f64());
            }
            TwilioEvent::Retry { status, .. } => {
                self.retries.get_or_create(&status_label(status)).inc();
            }
            _ => {}
        }
    }
}

/// The `method` label: the standard methods as they are, anything else
/// `other` (a client must not be able to add label values at will).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The `trigger` label.
fn trigger_label(trigger: SyncTrigger) -> &'static str {
    match trigger {
        SyncTrigger::Initial => "initial",
        SyncTrigger::Scheduled => "scheduled",
        SyncTrigger::Manual => "manual",
        SyncTrigger::Recent => "recent",
        SyncTrigger::Other => "other",
    }
}

/// The route label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Middleware counting every request by its route's template (axum's
/// [`MatchedPath`], never the raw path: ids would make a series each),
/// method and status, with the time to the response's headers.
pub async fn track_http(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned();
    let method = req.method().clone();
    let response = next.run(req).await;
    metrics.record_http(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_series_show_before_anything_is_counted() {
        let metrics = Metrics::new();
        metrics.set_live(LiveValues {
            sse_subscribers: 2,
            pool: Some(PoolStatus {
                max: 4,
                idle: 1,
                in_use: 2,
            }),
            sync_lag_seconds: Some(12.5),
        });
        let text = metrics.encode(false);
        for needle in [
            "# TYPE callview_sync_duration_seconds histogram",
            "callview_calls_fetched_total 0",
            "callview_calls_ingested_total{result=\"inserted\"} 0",
            "callview_recordings_ingested_total{result=\"deleted\"} 0",
            "callview_texts_ingested_total{result=\"inserted\"} 0",
            "# TYPE callview_twilio_request_duration_seconds histogram",
            "callview_sse_subscribers 2",
            "callview_db_pool_connections{state=\"idle\"} 1",
            "callview_db_pool_connections{state=\"in_use\"} 2",
            "callview_db_pool_max_connections 4",
            "callview_sync_lag_seconds 12.5",
            "callview_build_info{version=",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        let open = metrics.encode(true);
        assert!(open.ends_with("# EOF\n"), "{open}");
    }

    #[test]
    fn unknown_values_are_left_out() {
        let metrics = Metrics::new();
        let text = metrics.encode(false);
        assert!(!text.contains("callview_sync_lag_seconds"), "{text}");
        assert!(!text.contains("callview_db_pool_connections"), "{text}");
        assert!(text.contains("callview_sse_subscribers 0"), "{text}");
    }

    #[test]
    fn twilio_events_count_by_status() {
        let metrics = Metrics::new();
        let observer = metrics.twilio_observer();
        for event in [
            TwilioEvent::Answered {
                status: 429,
                elapsed: Duration::from_millis(3),
            },
            TwilioEvent::Retry {
                attempt: 1,
                delay: Duration::ZERO,
                status: Some(429),
            },
            TwilioEvent::Answered {
                status: 200,
                elapsed: Duration::from_millis(3),
            },
            TwilioEvent::NoAnswer {
                elapsed: Duration::from_millis(3),
            },
        ] {
            observer.observe(&event);
        }
        let text = metrics.encode(false);
        for needle in [
            "callview_twilio_requests_total{status=\"429\"} 1",
            "callview_twilio_requests_total{status=\"200\"} 1",
            "callview_twilio_requests_total{status=\"none\"} 1",
            "callview_twilio_retries_total{status=\"429\"} 1",
            "callview_twilio_request_duration_seconds_count 3",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }

    #[test]
    fn unusual_methods_share_one_label() {
        let method = axum::http::Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&method), "other");
        assert_eq!(method_label(&axum::http::Method::PATCH), "PATCH");
    }
}
