//! [`TwilioObserver`]: what an application is told about each HTTP request
//! [`HttpTwilioClient`](super::HttpTwilioClient) makes, for metrics.
//!
//! Core records nothing itself and depends on no metrics library: the
//! server counts these events in its Prometheus registry.

use std::time::Duration;

/// Something that happened to one request to Twilio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TwilioEvent {
    /// Twilio (or, for audio, the storage host a redirect points to)
    /// answered with `status`, redirects and errors included.
    Answered {
        /// The HTTP status.
        status: u16,
        /// From sending the request to receiving the response's headers.
        elapsed: Duration,
    },
    /// No answer: the connection failed, was reset or timed out.
    NoAnswer {
        /// From sending the request to the failure.
        elapsed: Duration,
    },
    /// A failed attempt (429, 5xx, no answer, a broken body) is tried again
    /// after `delay`.
    Retry {
        /// The failed attempt, 1-based.
        attempt: u32,
        /// The wait before the next attempt.
        delay: Duration,
        /// The failed attempt's status, when Twilio answered.
        status: Option<u16>,
    },
}

/// Told about every request of an
/// [`HttpTwilioClient`](super::HttpTwilioClient) (see
/// [`with_observer`](super::HttpTwilioClient::with_observer)). Called on the
/// request's task: keep it quick (count, do not wait).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use callview_core::twilio::{TwilioEvent, TwilioObserver};
///
/// #[derive(Default)]
/// struct Count429(AtomicU64);
///
/// impl TwilioObserver for Count429 {
///     fn observe(&self, event: &TwilioEvent) {
///         if let TwilioEvent::Answered { status: 429, .. } = event {
///             self.0.fetch_add(1, Ordering::Relaxed);
///         }
///     }
/// }
/// ```
pub trait TwilioObserver: Send + Sync + 'static {
    /// One event.
    fn observe(&self, event: &TwilioEvent);
}
