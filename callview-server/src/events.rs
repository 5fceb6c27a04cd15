//! Live updates: `GET /api/events`, a server-sent event stream telling the
//! viewer when stored calls changed, so it refreshes what it shows.
//!
//! Producers publish [`ServerEvent`]s on an [`EventHub`] (the
//! [`SyncRunner`](crate::SyncRunner) after every sync and after every page
//! a sync applies; an embedding application or a webhook through
//! [`AppState::events`](crate::AppState::events)). Each open stream
//! receives every event published after it connected, as one SSE event
//! whose `event:` name is the event's `type` and whose `data:` is its JSON:
//!
//! ```text
//! event: sync
//! data: {"type":"sync","trigger":"scheduled","ok":true,"inserted":2,"updated":1,"moved":0,"fetched":40,"at":1770391033000}
//! ```
//!
//! A comment line (`: keep-alive`) is sent every [`KEEP_ALIVE`] so proxies
//! do not close an idle stream. A stream that falls behind (more than
//! [`CAPACITY`] events unread) receives a `resync` event telling it to
//! reload everything. Streams end when the server shuts down
//! ([`EventHub::close`]), so open viewers never hold a graceful shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::Utc;
use futures::Stream;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::trigger::SyncTrigger;

/// How often an idle stream gets a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How many events a slow stream may leave unread before it gets `resync`.
pub const CAPACITY: usize = 256;
/// How long a disconnected `EventSource` waits before it reconnects (the
/// `retry:` field of the first event).
pub const RETRY: Duration = Duration::from_secs(3);

/// Something the viewer may want to refresh for. Serialised with a `type`
/// field naming the variant in snake case.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerEvent {
    /// Sent first on every stream: the connection works.
    Hello {
        /// Unix milliseconds.
        at: i64,
    },
    /// A sync started.
    SyncStarted {
        /// What started it.
        trigger: SyncTrigger,
        /// Unix milliseconds.
        at: i64,
    },
    /// A running sync applied one more page (what it stored so far is
    /// visible to readers).
    SyncProgress {
        /// What started it.
        trigger: SyncTrigger,
        /// Records received so far.
        fetched: u64,
        /// Pages received so far.
        pages: u64,
        /// Unix milliseconds.
        at: i64,
    },
    /// A sync finished (`ok: false`: it failed, `error` says why; what it
    /// applied before failing stays).
    Sync {
        /// What started it.
        trigger: SyncTrigger,
        /// Whether it succeeded.
        ok: bool,
        /// Calls stored for the first time.
        inserted: u64,
        /// Stored calls that changed.
        updated: u64,
        /// Stored calls moved under a parent that arrived later.
        moved: u64,
        /// Records received from Twilio.
        fetched: u64,
        /// Why it failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Unix milliseconds (when it finished).
        at: i64,
    },
    /// Calls changed outside a sync (a status callback, an embedding
    /// application).
    Changed {
        /// Calls stored for the first time.
        inserted: u64,
        /// Stored calls that changed.
        updated: u64,
        /// Unix milliseconds.
        at: i64,
    },
    /// Someone edited a contact or a call (name, company, notes, tags).
    Edited {
        /// `contact` or `message`.
        resource: &'static str,
        /// Its id (as the API shows it).
        id: String,
        /// Its new version (`ETag`).
        version: i64,
        /// Unix milliseconds.
        at: i64,
    },
    /// This stream missed events: reload everything.
    Resync {
        /// Unix milliseconds.
        at: i64,
    },
}

impl ServerEvent {
    /// The `type` field.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::SyncStarted { .. } => "sync_started",
            Self::SyncProgress { .. } => "sync_progress",
            Self::Sync { .. } => "sync",
            Self::Changed { .. } => "changed",
            Self::Edited { .. } => "edited",
            Self::Resync { .. } => "resync",
        }
    }

    /// A [`ServerEvent::Changed`] stamped now.
    pub fn changed(inserted: u64, updated: u64) -> Self {
        Self::Changed {
            inserted,
            updated,
            at: now(),
        }
    }

    /// A [`ServerEvent::Edited`] stamped now.
    pub fn edited(resource: &'static str, id: i64, version: i64) -> Self {
        Self::Edited {
            resource,
            id: id.to_string(),
            version,
            at: now(),
        }
    }

    fn to_sse(&self) -> Event {
        let data = serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned());
        Event::default().event(self.kind()).data(data)
    }
}

/// Unix milliseconds now.
pub(crate) fn now() -> i64 {
    Utc::now().timestamp_millis()
}

/// Where events are published and streams subscribe. Cheap to clone:
/// clones share the channel.
#[derive(Clone, Debug)]
pub struct EventHub {
    inner: Arc<HubInner>,
}

#[derive(Debug)]
struct HubInner {
    sender: broadcast::Sender<ServerEvent>,
    closed: watch::Sender<bool>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    /// A hub with no subscriber.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        let (closed, _) = watch::channel(false);
        Self {
            inner: Arc::new(HubInner { sender, closed }),
        }
    }

    /// Sends `event` to every open stream (none open: dropped).
    pub fn publish(&self, event: ServerEvent) {
        let _ = self.inner.sender.send(event);
    }

    /// How many streams are open.
    pub fn subscribers(&self) -> usize {
        self.inner.sender.receiver_count()
    }

    /// Ends every open stream and every stream opened later.
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    /// Whether [`EventHub::close`] was called.
    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }

    /// A stream of the events published from now on, starting with
    /// [`ServerEvent::Hello`]; it ends when the hub is closed.
    pub fn subscribe(&self) -> impl Stream<Item = ServerEvent> + Send + 'static {
        let receiver = self.inner.sender.subscribe();
        let closed = self.inner.closed.subscribe();
        struct State {
            receiver: broadcast::Receiver<ServerEvent>,
            closed: watch::Receiver<bool>,
            greeted: bool,
        }
        futures::stream::unfold(
            State {
                receiver,
                closed,
                greeted: false,
            },
            |mut state| async move {
                if *state.closed.borrow() {
                    return None;
                }
                if !state.greeted {
                    state.greeted = true;
                    return Some((ServerEvent::Hello { at: now() }, state));
                }
                let event = tokio::select! {
                    received = state.receiver.recv() => match received {
                        Ok(event) => event,
                        Err(broadcast::error::RecvError::Lagged(_)) => ServerEvent::Resync { at: now() },
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = state.closed.wait_for(|closed| *closed) => return None,
                };
                Some((event, state))
            },
        )
    }

    /// The `text/event-stream` response of `GET /api/events`.
    pub fn sse(&self) -> Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static> {
        use futures::StreamExt;
        let mut first = true;
        let stream = self.subscribe().map(move |event| {
            let mut sse = event.to_sse();
            if std::mem::take(&mut first) {
                sse = sse.retry(RETRY);
            }
            Ok(sse)
        });
        Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn subscribers_get_hello_then_what_is_published_and_end_on_close() {
        let hub = EventHub::new();
        let mut stream = Box::pin(hub.subscribe());
        assert!(matches!(
            stream.next().await,
            Some(ServerEvent::Hello { .. })
        ));
        assert_eq!(hub.subscribers(), 1);
        hub.publish(ServerEvent::changed(1, 2));
        match stream.next().await {
            Some(ServerEvent::Changed {
                inserted, updated, ..
            }) => assert_eq!((inserted, updated), (1, 2)),
            other => panic!("{other:?}"),
        }
        hub.close();
        assert!(stream.next().await.is_none());
        // A stream opened after closing ends at once.
        assert!(Box::pin(hub.subscribe()).next().await.is_none());
    }

    #[tokio::test]
    async fn a_stream_that_falls_behind_is_told_to_resync() {
        let hub = EventHub::new();
        let mut stream = Box::pin(hub.subscribe());
        stream.next().await;
        for _ in 0..CAPACITY + 5 {
            hub.publish(ServerEvent::changed(1, 0));
        }
        assert!(matches!(
            stream.next().await,
            Some(ServerEvent::Resync { .. })
        ));
    }

    #[test]
    fn events_serialise_with_their_type() {
        let json = serde_json::to_value(ServerEvent::Sync {
            trigger: SyncTrigger::Scheduled,
            ok: true,
            inserted: 2,
            updated: 1,
            moved: 0,
            fetched: 40,
            error: None,
            at: 5,
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "sync", "trigger": "scheduled", "ok": true,
                "inserted": 2, "updated": 1, "moved": 0, "fetched": 40, "at": 5})
        );
        assert_eq!(
            ServerEvent::changed(0, 0).kind(),
            serde_json::to_value(ServerEvent::changed(0, 0)).unwrap()["type"]
        );
    }
}
