//! # callview-postgres
//!
//! The PostgreSQL implementation of [`callview_core::Store`], on the seed's
//! documented schema (`contacts`, `conversations`, `messages`) plus what the
//! call model needs (`messages.root_call_sid`, `messages.updated_at`,
//! `sync_cursors`, a few indexes). `docs/postgres-schema.md` lists every deviation.
//!
//! * [`PostgresStore::connect`] / [`PostgresStore::connect_with`] open a pool
//!   and run the embedded migrations. They create the schema in an empty
//!   database and upgrade, in place, a database created by the seed's
//!   original application (no `_sqlx_migrations` table yet).
//! * [`Store::apply`](callview_core::Store::apply) is one transaction of a
//!   handful of batched statements, whatever the batch size.
//! * [`Store::try_lock_sync`](callview_core::Store::try_lock_sync) takes a
//!   session-level advisory lock ([`SYNC_LOCK_KEY`]), so several processes
//!   can share one database and only one of them syncs at a time.
//! * Passwords never appear in errors, logs or `Debug` output: everything
//!   shows [`redact_url`]'s form, `postgres://user:***@host/db`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use callview_core::{Store, SyncEngine};
//! use callview_postgres::{PostgresOptions, PostgresStore};
//!
//! # async fn demo(client: Arc<dyn callview_core::TwilioClient>) -> Result<(), Box<dyn std::error::Error>> {
//! let options = PostgresOptions::new("postgres://callview:secret@localhost/callview").max_connections(16);
//! let store: Arc<dyn Store> = Arc::new(PostgresStore::connect_with(options).await?);
//! let engine = SyncEngine::new(client, store.clone(), Default::default());
//! let report = engine.run(callview_core::SyncMode::incremental(), None).await?;
//! println!("{} new calls", report.inserted);
//! # Ok(()) }
//! ```

mod export;
mod filters;
mod media;
mod options;
mod rows;
mod stats;
mod store;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
mod texts;
mod tokens;

pub use options::{redact_url, PostgresOptions};
pub use store::{PostgresStore, SYNC_LOCK_KEY};
