//! Opening a store from a database URL: the scheme picks the backend.

use std::sync::Arc;

use callview_core::Store;

/// The backend a database URL names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: `sqlite://path`, `sqlite:path`, `sqlite::memory:`, or a plain path.
    Sqlite,
    /// PostgreSQL: `postgres://...` or `postgresql://...`.
    Postgres,
}

/// Which backend `url` names; `None` for an unknown scheme (`mysql://`).
///
/// ```
/// use callview_server::db::{backend_of, Backend};
/// assert_eq!(backend_of("sqlite://callview.db"), Some(Backend::Sqlite));
/// assert_eq!(backend_of("./data/calls.db"), Some(Backend::Sqlite));
/// assert_eq!(backend_of("postgresql://u@h/db"), Some(Backend::Postgres));
/// assert_eq!(backend_of("mysql://h/db"), None);
/// ```
pub fn backend_of(url: &str) -> Option<Backend> {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        Some(Backend::Postgres)
    } else if lower.starts_with("sqlite:") || !lower.contains("://") {
        Some(Backend::Sqlite)
    } else {
        None
    }
}

/// The URL with any password replaced by `***`, for logs and messages.
///
/// ```
/// use callview_server::db::redact;
/// assert_eq!(redact("postgres://app:hunter2@db/calls"), "postgres://app:***@db/calls");
/// assert_eq!(redact("sqlite://callview.db"), "sqlite://callview.db");
/// ```
pub fn redact(url: &str) -> String {
    callview_postgres::redact_url(url)
}

/// Why a store could not be opened. The message never holds a password.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    /// The URL's scheme is neither SQLite nor PostgreSQL.
    #[error("unsupported database URL {0}: use sqlite://PATH (or a plain file path) or postgres://USER@HOST/DB")]
    UnsupportedScheme(String),
    /// The database could not be opened or migrated.
    #[error("cannot open the database {url}: {source}")]
    Open {
        /// The redacted URL.
        url: String,
        /// What failed.
        #[source]
        source: callview_core::StoreError,
    },
}

/// Opens (creating and migrating when needed) the store `url` names, and
/// computes the statistics of calls stored before they were kept
/// ([`callview_core::stats::ensure_built`]).
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, OpenStoreError> {
    let store = open_backend(url).await?;
    callview_core::stats::ensure_built(store.as_ref())
        .await
        .map_err(|source| OpenStoreError::Open {
            url: redact(url),
            source,
        })?;
    Ok(store)
}

async fn open_backend(url: &str) -> Result<Arc<dyn Store>, OpenStoreError> {
    let redacted = redact(url);
    let open_error = |source| OpenStoreError::Open {
        url: redacted.clone(),
        source,
    };
    match backend_of(url) {
        Some(Backend::Sqlite) => {
            tracing::info!(url = %redacted, "opening the SQLite store");
            let store = callview_sqlite::SqliteStore::connect(url.trim())
                .await
                .map_err(open_error)?;
            Ok(Arc::new(store))
        }
        Some(Backend::Postgres) => {
            tracing::info!(url = %redacted, "connecting to the PostgreSQL store");
            let store = callview_postgres::PostgresStore::connect(url.trim())
                .await
                .map_err(open_error)?;
            Ok(Arc::new(store))
        }
        None => Err(OpenStoreError::UnsupportedScheme(redacted)),
    }
}
