//! [`SyncTrigger`]: what started a sync (shown by `/healthz` and in live
//! events).

use serde::Serialize;

/// What started a sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncTrigger {
    /// The sync run when the server starts.
    Initial,
    /// The periodic incremental sync.
    Scheduled,
    /// `POST /api/sync/today`.
    Manual,
    /// `POST /api/sync/recent`.
    Recent,
    /// Anything else (an embedding application, a test).
    Other,
}
