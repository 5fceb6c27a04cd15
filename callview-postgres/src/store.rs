//! [`PostgresStore`]: the [`Store`] implementation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres, Transaction};
use tokio::sync::Mutex;

use callview_core::access::{NewToken, TokenHash, TokenRecord};
use callview_core::annotations::{Annotations, CallEdit, ContactEdit, EditMeta};
use callview_core::call::CallSid;
use callview_core::export::{ExportQuery, ExportRow};
use callview_core::model::{
    fold_interactions, Aggregate, ConversationId, ConversationLookup, ConversationRef,
    ConversationState, CounterUpdate, DisplayStatus, FoundConversations, Interaction, MediaPlan,
    MessageType, NewConversation, NewestRoot, Plan, StoredCall, StoredRecording, StoredText,
};
use callview_core::recording::{RecordingSid, Transcript};
use callview_core::stats::{FactsRow, StatsQuery, StatsRows};
use callview_core::store::{
    check_version, count_tags, message_of, CallMedia, ContactRecord, ConversationCursor,
    ConversationPage, ConversationQuery, ConversationView, IngestTx, MessageCursor, MessagePage,
    MessageQuery, PoolStatus, RefreshUpdate, SchemaStatus, Store, StoreCounts, StoreError,
    TagCount, UnfinishedQuery,
};
use callview_core::text::MessageSid;
use callview_core::{ActualDirection, CallDirection, CallStatus};

use crate::filters::{bind_filter, conversation_filter, page_of, Filter, Start};
use crate::media;
use crate::options::{redact_url, PostgresOptions};
use crate::rows::{
    from_db_time, to_db_time, ContactRow, ConversationRow, MessageRow, CONTACT_COLUMNS,
    CONVERSATION_COLUMNS, MESSAGE_COLUMNS,
};
use crate::stats;
use crate::texts;

/// The migrations in `callview-postgres/migrations/`, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!();

/// The key of the session-level advisory lock that serialises syncs across
/// processes sharing one database (`pg_try_advisory_lock(SYNC_LOCK_KEY)`).
/// The bytes of `"callview"`.
pub const SYNC_LOCK_KEY: i64 = 0x6361_6c6c_7669_6577;

/// Statuses after which a call no longer changes.
const FINAL_STATUSES: &str = "('completed', 'busy', 'failed', 'no-answer', 'canceled')";

/// The PostgreSQL store: the documented schema plus what the call model
/// needs (see `docs/postgres-schema.md`), behind a connection pool.
///
/// Cheap to share: wrap it in an `Arc` (`Arc<dyn Store>`). `Debug` never
/// shows the password.
///
/// ```no_run
/// use std::sync::Arc;
/// use callview_core::Store;
/// use callview_postgres::PostgresStore;
///
/// # async fn demo() -> Result<(), callview_core::StoreError> {
/// let store = PostgresStore::connect("postgres://callview:secret@localhost/callview").await?;
/// println!("{store:?}"); // PostgresStore { url: "postgres://callview:***@localhost/callview", .. }
/// let store: Arc<dyn Store> = Arc::new(store);
/// store.health().await?;
/// # Ok(()) }
/// ```
pub struct PostgresStore {
    db: Db,
    connect_options: PgConnectOptions,
    /// The dedicated connection holding the sync lock, while held.
    sync_lock: Mutex<Option<PgConnection>>,
    /// Its backend's process id while held (0: not held): how an ingest
    /// checks in `pg_locks` that the lock is still held. Read without
    /// waiting, so an ingest never waits on the lock connection.
    sync_lock_pid: AtomicI32,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lock_held = self.sync_lock.try_lock().map(|g| g.is_some()).ok();
        f.debug_struct("PostgresStore")
            .field("url", &self.db.url)
            .field("pool_size", &self.db.pool.size())
            .field("idle_connections", &self.db.pool.num_idle())
            .field("sync_lock_held", &lock_held)
            .finish()
    }
}

/// Whether the error is one a retry or another writer explains.
fn is_conflict(error: &sqlx::Error) -> bool {
    matches!(
        error.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("40001" | "40P01" | "23505")
    )
}

/// What went wrong, in words a person can act on.
fn describe(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::PoolTimedOut => {
            "no connection became available in time (is the database reachable?)".to_owned()
        }
        sqlx::Error::PoolClosed => "the connection pool is closed".to_owned(),
        sqlx::Error::Io(e) => format!("cannot reach the database: {e}"),
        sqlx::Error::Database(e) => match e.code() {
            Some(code) => format!("{} (SQLSTATE {code})", e.message()),
            None => e.message().to_owned(),
        },
        other => other.to_string(),
    }
}

fn invalid_id(id: i64) -> StoreError {
    StoreError::Invalid(format!("conversation id {id} is out of range"))
}

/// A contact id as the `contacts.id` column holds it; `NotFound` when out of range.
fn contact_id(id: i64) -> Result<i32, StoreError> {
    i32::try_from(id).map_err(|_| StoreError::NotFound(format!("contact {id}")))
}

fn conversation_id(id: ConversationId) -> Option<i32> {
    i32::try_from(id.0).ok()
}

impl PostgresStore {
    /// Connects with the default pool settings and brings the schema up to
    /// date (creating it, or upgrading a database made by the seed's
    /// original application in place).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), callview_core::StoreError> {
    /// let store = callview_postgres::PostgresStore::connect("postgres://localhost/callview").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PostgresOptions::new(url)).await
    }

    /// Connects with explicit settings and runs the migrations.
    ///
    /// Errors are [`StoreError::Backend`] naming the redacted URL: a URL that
    /// does not parse, a server that cannot be reached within
    /// `acquire_timeout`, rejected credentials, a failed migration.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use callview_postgres::{PostgresOptions, PostgresStore};
    /// # async fn demo() -> Result<(), callview_core::StoreError> {
    /// let options = PostgresOptions::new("postgres://app:secret@db/callview")
    ///     .max_connections(20)
    ///     .acquire_timeout(Duration::from_secs(5))
    ///     .statement_timeout(Some(Duration::from_secs(30)));
    /// let store = PostgresStore::connect_with(options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_with(options: PostgresOptions) -> Result<Self, StoreError> {
        let url = redact_url(&options.url);
        let mut connect =
            PgConnectOptions::from_str(&options.url).map_err(|e| StoreError::Backend {
                message: format!("invalid database URL {url}: {}", describe(&e)),
                source: Some(Box::new(e)),
            })?;
        // Timestamps are stored as UTC in TIMESTAMP columns: make NOW()
        // (column defaults, the updated_at triggers) produce UTC too.
        connect = connect.options([("TimeZone", "UTC")]);
        // PostgreSQL's JIT compiler costs far more than it saves on these
        // short queries (measured with callview-bench: the conversation list
        // 26.6 ms with it, 0.27 ms without).
        connect = connect.options([("jit", "off")]);
        if let Some(timeout) = options.statement_timeout {
            connect = connect.options([("statement_timeout", timeout.as_millis().to_string())]);
        }
        if connect.get_application_name().is_none() {
            connect = connect.application_name("callview");
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(|e| StoreError::Backend {
                message: format!("could not connect to {url}: {}", describe(&e)),
                source: Some(Box::new(e)),
            })?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Backend {
            message: format!("could not bring the schema of {url} up to date: {e}"),
            source: Some(Box::new(e)),
        })?;
        tracing::info!(url = %url, max_connections = options.max_connections, "connected to PostgreSQL");
        Ok(Self {
            db: Db {
                pool,
                url: url.into(),
            },
            connect_options: connect,
            sync_lock: Mutex::new(None),
            sync_lock_pid: AtomicI32::new(0),
        })
    }

    /// The database URL with its password masked, as used in every message.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), callview_core::StoreError> {
    /// let store = callview_postgres::PostgresStore::connect("postgres://u:pw@localhost/db").await?;
    /// assert_eq!(store.redacted_url(), "postgres://u:***@localhost/db");
    /// # Ok(()) }
    /// ```
    pub fn redacted_url(&self) -> &str {
        &self.db.url
    }

    /// The connection pool, for queries of your own.
    ///
    /// ```no_run
    /// # async fn demo(store: &callview_postgres::PostgresStore) -> Result<(), sqlx::Error> {
    /// let n: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
    ///     .fetch_one(store.pool())
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    /// Releases the sync lock (if held) and closes every connection. Later
    /// calls fail with [`StoreError::Backend`].
    ///
    /// ```no_run
    /// # async fn demo(store: callview_postgres::PostgresStore) {
    /// store.close().await;
    /// # }
    /// ```
    pub async fn close(&self) {
        if let Some(conn) = self.sync_lock.lock().await.take() {
            self.sync_lock_pid.store(0, Ordering::Release);
            let _ = conn.close().await;
        }
        self.db.pool.close().await;
    }

    async fn read_tx(&self, what: &str) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.db
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(self.db.error(what))
    }

    /// A read transaction in which conversation `id` exists (`NotFound`
    /// otherwise), and its row id.
    async fn conversation_tx(
        &self,
        id: ConversationId,
        what: &str,
    ) -> Result<(Transaction<'static, Postgres>, i32), StoreError> {
        let not_found = || StoreError::NotFound(format!("conversation {id}"));
        let db_id = conversation_id(id).ok_or_else(not_found)?;
        let mut tx = self.read_tx(what).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM conversations WHERE id = $1)")
                .bind(db_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(self.db.error(what))?;
        if !exists {
            return Err(not_found());
        }
        Ok((tx, db_id))
    }

    /// Up to `limit` rows of the conversations list matching `filter`,
    /// from `start` on, skipping `offset`.
    async fn list_rows(
        &self,
        tx: &mut PgConnection,
        filter: &Filter,
        start: &Start,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ConversationRow>, StoreError> {
        let mut filter = filter.clone();
        filter.start_at(start);
        let where_clause = filter.sql();
        let (limit_at, offset_at) = (filter.next(), filter.next() + 1);
        let order = "ORDER BY v.last_message_at DESC NULLS LAST, v.id DESC";
        let sql = if offset > 0 {
            // The skipped rows are only stepped over in the subquery, never
            // joined to their contact nor projected (the last root's
            // subquery); without filters it is an index-only scan of
            // `idx_conversations_activity`.
            format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations v \
                 LEFT JOIN contacts c ON c.id = v.contact_id \
                 WHERE v.id IN (SELECT v.id FROM conversations v {where_clause} \
                                {order} LIMIT ${limit_at} OFFSET ${offset_at}) \
                 {order}"
            )
        } else {
            format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations v \
                 LEFT JOIN contacts c ON c.id = v.contact_id \
                 {where_clause} {order} LIMIT ${limit_at} OFFSET ${offset_at}"
            )
        };
        bind_filter!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), filter)
            .bind(limit)
            .bind(offset)
            .fetch_all(&mut *tx)
            .await
            .map_err(self.db.error("listing conversations"))
    }

    /// One page of the list under `filter`, from the query's cursor or
    /// offset: the rows with a `last_message_at` after the cursor, then
    /// those without.
    async fn list_page(
        &self,
        tx: &mut PgConnection,
        filter: &Filter,
        query: &ConversationQuery,
        want: i64,
    ) -> Result<Vec<ConversationRow>, StoreError> {
        Ok(match &query.after {
            None => {
                let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
                self.list_rows(tx, filter, &Start::Top, want, offset)
                    .await?
            }
            Some(cursor) => {
                let id = cursor.id().0;
                match cursor.last_message_at() {
                    Some(at) => {
                        let start = Start::After {
                            at: to_db_time(at),
                            id,
                        };
                        let mut rows = self.list_rows(tx, filter, &start, want, 0).await?;
                        let missing = want - rows.len() as i64;
                        if missing > 0 {
                            let unstarted = Start::Unstarted { before: None };
                            rows.extend(self.list_rows(tx, filter, &unstarted, missing, 0).await?);
                        }
                        rows
                    }
                    None => {
                        let unstarted = Start::Unstarted { before: Some(id) };
                        self.list_rows(tx, filter, &unstarted, want, 0).await?
                    }
                }
            }
        })
    }

    /// Conversations with their contacts, and each one's last interaction,
    /// from a query selecting [`CONVERSATION_COLUMNS`].
    async fn views(
        &self,
        tx: &mut PgConnection,
        rows: Vec<ConversationRow>,
    ) -> Result<Vec<ConversationView>, StoreError> {
        let (ids, roots): (Vec<i32>, Vec<String>) = rows
            .iter()
            .filter_map(|r| r.last_root_sid.clone().map(|sid| (r.id, sid)))
            .unzip();
        let mut by_conversation: HashMap<i64, Vec<StoredCall>> = HashMap::new();
        if !ids.is_empty() {
            let messages: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m \
                 JOIN UNNEST($1::int4[], $2::text[]) AS l(cid, root) \
                   ON m.conversation_id = l.cid AND m.root_call_sid = l.root"
            )))
            .bind(&ids)
            .bind(&roots)
            .fetch_all(&mut *tx)
            .await
            .map_err(self.db.error("loading last messages"))?;
            for row in messages {
                let stored = row.into_stored();
                by_conversation
                    .entry(stored.conversation_id.0)
                    .or_default()
                    .push(stored);
            }
        }
        let text_sids: Vec<MessageSid> = rows.iter().filter_map(|r| r.last_text_sid()).collect();
        let mut last_texts = texts::by_sid(tx, &text_sids)
            .await
            .map_err(self.db.media_error("loading last texts"))?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let conversation = row.conversation();
                let contact = row.contact();
                let last_message = by_conversation
                    .remove(&i64::from(row.id))
                    .and_then(|calls| pick_last(fold_interactions(calls), &row.last_root_sid));
                let last_text = conversation
                    .counters
                    .last_text_sid
                    .as_ref()
                    .and_then(|sid| last_texts.remove(sid));
                ConversationView {
                    conversation,
                    contact,
                    last_message,
                    last_text,
                }
            })
            .collect())
    }
}

/// The pool and the (redacted) URL every error names: what both the store
/// and its ingest transactions need.
#[derive(Clone)]
pub(crate) struct Db {
    pub(crate) pool: PgPool,
    url: Arc<str>,
}

impl Db {
    /// [`Db::error`] for the media statements, whose rows may also fail to
    /// read back.
    pub(crate) fn media_error(
        &self,
        what: &str,
    ) -> impl FnOnce(media::MediaError) -> StoreError + '_ {
        let what = what.to_owned();
        move |e| match e {
            media::MediaError::Db(e) => self.error(&what)(e),
            media::MediaError::Corrupt(e) => e,
        }
    }

    /// Maps a database error into a [`StoreError`] that says what was being
    /// done, on which (redacted) database.
    pub(crate) fn error(&self, what: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        let what = what.to_owned();
        move |e| {
            let message = format!("{what} on {}: {}", self.url, describe(&e));
            if is_conflict(&e) {
                StoreError::Conflict(message)
            } else {
                StoreError::Backend {
                    message,
                    source: Some(Box::new(e)),
                }
            }
        }
    }

    /// Step 1 of `apply`: contacts and conversations, reusing what exists.
    /// Returns canonical key → conversation id.
    async fn create_conversations(
        &self,
        tx: &mut PgConnection,
        new: &[NewConversation],
    ) -> Result<HashMap<String, i32>, StoreError> {
        if new.is_empty() {
            return Ok(HashMap::new());
        }
        let mut by_key: BTreeMap<&str, &NewConversation> = BTreeMap::new();
        for n in new {
            by_key.insert(n.key.as_str(), n);
        }
        let keys: Vec<String> = by_key.keys().map(|k| (*k).to_owned()).collect();
        let displays: Vec<String> = by_key.values().map(|n| n.display.clone()).collect();
        let subjects: Vec<String> = by_key.values().map(|n| n.subject.clone()).collect();
        let external_ids: Vec<String> = by_key.values().map(|n| n.external_id.clone()).collect();

        sqlx::query(
            "INSERT INTO contacts (phone_number, formatted_number, display_name, created_at, updated_at) \
             SELECT t.k, t.d, t.d, NOW() AT TIME ZONE 'UTC', NOW() AT TIME ZONE 'UTC' \
             FROM UNNEST($1::text[], $2::text[]) AS t(k, d) \
             ON CONFLICT (phone_number) DO NOTHING",
        )
        .bind(&keys)
        .bind(&displays)
        .execute(&mut *tx)
        .await
        .map_err(self.error("creating contacts"))?;

        sqlx::query(
            "INSERT INTO conversations (contact_id, external_id, subject, created_at, updated_at) \
             SELECT c.id, t.d, t.s, NOW() AT TIME ZONE 'UTC', NOW() AT TIME ZONE 'UTC' \
             FROM UNNEST($1::text[], $2::text[], $3::text[]) AS t(k, d, s) \
             JOIN contacts c ON c.phone_number = t.k \
             WHERE NOT EXISTS (SELECT 1 FROM conversations v WHERE v.contact_id = c.id)",
        )
        .bind(&keys)
        .bind(&external_ids)
        .bind(&subjects)
        .execute(&mut *tx)
        .await
        .map_err(self.error("creating conversations"))?;

        let ids = self.conversations_by_key(tx, &keys).await?;
        if let Some(missing) = keys.iter().find(|k| !ids.contains_key(*k)) {
            return Err(StoreError::Conflict(format!(
                "could not create a conversation for {missing} on {}",
                self.url
            )));
        }
        Ok(ids)
    }

    async fn conversations_by_key(
        &self,
        tx: &mut PgConnection,
        keys: &[String],
    ) -> Result<HashMap<String, i32>, StoreError> {
        let rows: Vec<(String, i32)> = sqlx::query_as(
            "SELECT c.phone_number, min(v.id) FROM contacts c \
             JOIN conversations v ON v.contact_id = c.id \
             WHERE c.phone_number = ANY($1) GROUP BY c.phone_number",
        )
        .bind(keys)
        .fetch_all(&mut *tx)
        .await
        .map_err(self.error("finding conversations"))?;
        Ok(rows.into_iter().collect())
    }

    /// Step 2 of `apply`: every call row, one statement.
    async fn write_calls(
        &self,
        tx: &mut PgConnection,
        plan: &Plan,
        resolve: &Resolver,
    ) -> Result<(), StoreError> {
        if plan.calls.is_empty() {
            return Ok(());
        }
        // One row per SID (the last write wins), or Postgres refuses the upsert.
        let mut seen = HashSet::new();
        let writes: Vec<_> = plan
            .calls
            .iter()
            .rev()
            .filter(|w| seen.insert(w.call.sid.clone()))
            .collect();
        let n = writes.len();
        let mut conversation_ids = Vec::with_capacity(n);
        let mut sids = Vec::with_capacity(n);
        let mut directions = Vec::with_capacity(n);
        let mut statuses = Vec::with_capacity(n);
        let mut froms = Vec::with_capacity(n);
        let mut tos = Vec::with_capacity(n);
        let mut durations: Vec<Option<i32>> = Vec::with_capacity(n);
        let mut prices: Vec<Option<Decimal>> = Vec::with_capacity(n);
        let mut price_units: Vec<Option<String>> = Vec::with_capacity(n);
        let mut starts: Vec<Option<NaiveDateTime>> = Vec::with_capacity(n);
        let mut ends: Vec<Option<NaiveDateTime>> = Vec::with_capacity(n);
        let mut recordings: Vec<Option<String>> = Vec::with_capacity(n);
        let mut parents: Vec<Option<String>> = Vec::with_capacity(n);
        let mut metadata: Vec<String> = Vec::with_capacity(n);
        let mut roots = Vec::with_capacity(n);
        for w in writes {
            let call = &w.call;
            conversation_ids.push(resolve.id(&w.conversation)?);
            sids.push(call.sid.to_string());
            directions.push(call.direction.as_str().to_owned());
            statuses.push(call.status.as_str().to_owned());
            froms.push(call.from.clone().unwrap_or_default());
            tos.push(call.to.clone().unwrap_or_default());
            durations.push(call.duration.map(|d| i32::try_from(d).unwrap_or(i32::MAX)));
            prices.push(call.price);
            price_units.push(call.price_unit.clone());
            starts.push(call.start_time.map(to_db_time));
            ends.push(call.end_time.map(to_db_time));
            recordings.push(w.recording_url.clone());
            parents.push(call.parent_call_sid.as_ref().map(|p| p.to_string()));
            metadata.push(w.metadata_json());
            roots.push(w.root_sid.to_string());
        }
        sqlx::query(
            "INSERT INTO messages (conversation_id, twilio_sid, direction, status, from_number, \
                 to_number, duration, price, price_unit, start_time, end_time, recording_url, \
                 parent_call_sid, metadata, root_call_sid, created_at, updated_at) \
             SELECT t.conversation_id, t.twilio_sid, t.direction, t.status, t.from_number, \
                 t.to_number, t.duration, t.price, t.price_unit, t.start_time, t.end_time, \
                 t.recording_url, t.parent_call_sid, t.metadata::jsonb, t.root_call_sid, \
                 NOW() AT TIME ZONE 'UTC', NOW() AT TIME ZONE 'UTC' \
             FROM UNNEST($1::int4[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                 $7::int4[], $8::numeric[], $9::text[], $10::timestamp[], $11::timestamp[], \
                 $12::text[], $13::text[], $14::text[], $15::text[]) \
                 AS t(conversation_id, twilio_sid, direction, status, from_number, to_number, \
                      duration, price, price_unit, start_time, end_time, recording_url, \
                      parent_call_sid, metadata, root_call_sid) \
             ON CONFLICT (twilio_sid) DO UPDATE SET \
                 conversation_id = EXCLUDED.conversation_id, \
                 direction = EXCLUDED.direction, \
                 status = EXCLUDED.status, \
                 from_number = EXCLUDED.from_number, \
                 to_number = EXCLUDED.to_number, \
                 duration = EXCLUDED.duration, \
                 price = EXCLUDED.price, \
                 price_unit = EXCLUDED.price_unit, \
                 start_time = EXCLUDED.start_time, \
                 end_time = EXCLUDED.end_time, \
                 recording_url = EXCLUDED.recording_url, \
                 parent_call_sid = EXCLUDED.parent_call_sid, \
                 metadata = EXCLUDED.metadata, \
                 root_call_sid = EXCLUDED.root_call_sid, \
                 updated_at = EXCLUDED.updated_at",
        )
        .bind(&conversation_ids)
        .bind(&sids)
        .bind(&directions)
        .bind(&statuses)
        .bind(&froms)
        .bind(&tos)
        .bind(&durations)
        .bind(&prices)
        .bind(&price_units)
        .bind(&starts)
        .bind(&ends)
        .bind(&recordings)
        .bind(&parents)
        .bind(&metadata)
        .bind(&roots)
        .execute(&mut *tx)
        .await
        .map_err(self.error("writing calls"))?;
        Ok(())
    }

    /// Step 3 of `apply`: counters merged into each conversation's metadata.
    async fn write_counters(
        &self,
        tx: &mut PgConnection,
        counters: &[CounterUpdate],
        resolve: &Resolver,
    ) -> Result<(), StoreError> {
        if counters.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(counters.len());
        let mut last_message_at: Vec<Option<NaiveDateTime>> = Vec::with_capacity(counters.len());
        let mut values = Vec::with_capacity(counters.len());
        for update in counters {
            let c = &update.counters;
            ids.push(resolve.id(&update.conversation)?);
            last_message_at.push(c.last_message_at.map(to_db_time));
            values.push(serde_json::json!({
                "total_calls": c.total_calls,
                "total_duration": c.total_duration,
                "last_call_direction": c.last_call_direction.map(|d| d.as_str()),
                "last_root_sid": c.last_root_sid.as_ref().map(|s| s.as_str()),
                "last_display_status": c.last_display_status.as_ref().map(DisplayStatus::as_str),
                "total_messages": c.total_messages,
                "last_message_type": c.last_message_type.map(MessageType::as_str),
                "last_text_sid": c.last_text_sid.as_ref().map(MessageSid::as_str),
            }));
        }
        // With the counters, the newest root's display status (the
        // planner's) for the status filter.
        sqlx::query(
            "UPDATE conversations v SET \
                 last_message_at = u.at, \
                 metadata = (CASE WHEN jsonb_typeof(v.metadata) = 'object' THEN v.metadata \
                             ELSE '{}'::jsonb END) || u.counters, \
                 updated_at = NOW() AT TIME ZONE 'UTC' \
             FROM UNNEST($1::int4[], $2::timestamp[], $3::jsonb[]) AS u(id, at, counters) \
             WHERE v.id = u.id",
        )
        .bind(&ids)
        .bind(&last_message_at)
        .bind(&values)
        .execute(&mut *tx)
        .await
        .map_err(self.error("updating conversation counters"))?;
        Ok(())
    }

    /// Step 4 of `apply`: empty conversations, then contacts left without one.
    async fn remove_conversations(
        &self,
        tx: &mut PgConnection,
        removed: &[ConversationId],
    ) -> Result<(), StoreError> {
        let ids: Vec<i32> = removed
            .iter()
            .filter_map(|id| conversation_id(*id))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let contacts: Vec<Option<i32>> = sqlx::query_scalar(
            "DELETE FROM conversations v WHERE v.id = ANY($1) \
             AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = v.id) \
             AND NOT EXISTS (SELECT 1 FROM texts t WHERE t.conversation_id = v.id) \
             RETURNING v.contact_id",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(self.error("removing empty conversations"))?;
        let contacts: Vec<i32> = contacts.into_iter().flatten().collect();
        if !contacts.is_empty() {
            sqlx::query(
                "DELETE FROM contacts c WHERE c.id = ANY($1) AND c.edited_at IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM conversations v WHERE v.contact_id = c.id)",
            )
            .bind(&contacts)
            .execute(&mut *tx)
            .await
            .map_err(self.error("removing unused contacts"))?;
        }
        Ok(())
    }

    /// `load_trees` on a connection (the pool's, or an ingest's transaction).
    async fn load_trees(
        &self,
        conn: &mut PgConnection,
        sids: &[CallSid],
    ) -> Result<Vec<StoredCall>, StoreError> {
        if sids.is_empty() {
            return Ok(Vec::new());
        }
        let sids: Vec<&str> = sids.iter().map(CallSid::as_str).collect();
        let rows: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            // One index lookup per SID, then per root: each `LATERAL (...
            // OFFSET 0)` is a fence the planner cannot turn into a hash join
            // over the whole table. Without it, a plan made on missing or
            // stale statistics (a table a backfill is filling faster than
            // autovacuum analyses it) scanned all of `messages` for a page of
            // new SIDs: 600 ms at 1M calls, against 0.3 ms now.
            "SELECT {MESSAGE_COLUMNS} FROM ( \
                 SELECT s.root_call_sid FROM unnest($1::text[]) AS p(sid) CROSS JOIN LATERAL ( \
                     SELECT s.root_call_sid FROM messages s WHERE s.twilio_sid = p.sid OFFSET 0) s \
                 UNION \
                 SELECT s.root_call_sid FROM unnest($1::text[]) AS p(sid) CROSS JOIN LATERAL ( \
                     SELECT s.root_call_sid FROM messages s WHERE s.parent_call_sid = p.sid OFFSET 0) s \
             ) r(root) CROSS JOIN LATERAL ( \
                 SELECT * FROM messages m WHERE m.root_call_sid = r.root OFFSET 0) m \
             ORDER BY m.root_call_sid COLLATE \"C\", m.twilio_sid COLLATE \"C\""
        )))
        .bind(&sids)
        .fetch_all(&mut *conn)
        .await
        .map_err(self.error("loading call trees"))?;
        Ok(rows.into_iter().map(MessageRow::into_stored).collect())
    }

    /// The conversations of a lookup with their totals, on `conn`.
    async fn load_conversations(
        &self,
        conn: &mut PgConnection,
        lookup: &ConversationLookup,
    ) -> Result<Vec<ConversationState>, StoreError> {
        if lookup.keys.is_empty() && lookup.ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i32> = lookup
            .ids
            .iter()
            .filter_map(|id| conversation_id(*id))
            .collect();
        let exclude: Vec<&str> = lookup.exclude.iter().map(CallSid::as_str).collect();
        // The conversations are picked through `= ANY(ARRAY(...))` at each
        // step: written as `IN (... JOIN ...)`, the planner misjudged a
        // freshly written (bloated, not yet analysed) `conversations` table
        // and scanned all of it, 78 ms of a 50-call sync at 1M calls.
        let rows: Vec<StateRow> = sqlx::query_as(
            "SELECT v.id, COALESCE(c.phone_number, '') AS key, \
                 a.calls, a.root_calls, a.root_duration, a.last_call_at, \
                 n.twilio_sid AS newest_sid, n.start_time AS newest_start, \
                 n.actual AS newest_actual, n.direction AS newest_direction, \
                 n.display AS newest_display, n.status AS newest_status, \
                 n.duration AS newest_duration \
             FROM conversations v \
             LEFT JOIN contacts c ON c.id = v.contact_id \
             CROSS JOIN LATERAL ( \
                 SELECT count(*) AS calls, \
                     count(*) FILTER (WHERE m.root_call_sid = m.twilio_sid) AS root_calls, \
                     COALESCE(sum(GREATEST(COALESCE(m.duration, 0), 0)) \
                         FILTER (WHERE m.root_call_sid = m.twilio_sid), 0)::int8 AS root_duration, \
                     max(m.start_time) AS last_call_at \
                 FROM messages m \
                 WHERE m.conversation_id = v.id AND m.twilio_sid <> ALL($3)) a \
             LEFT JOIN LATERAL ( \
                 SELECT m.twilio_sid, m.start_time, m.direction, \
                     m.metadata->>'actual_direction' AS actual, \
                     m.metadata->>'display_status' AS display, m.status, m.duration \
                 FROM messages m \
                 WHERE m.conversation_id = v.id AND m.root_call_sid = m.twilio_sid \
                   AND m.twilio_sid <> ALL($3) \
                 ORDER BY m.start_time DESC NULLS LAST, m.twilio_sid COLLATE \"C\" DESC \
                 LIMIT 1) n ON true \
             WHERE v.id = ANY(ARRAY( \
                 SELECT k.id FROM conversations k WHERE k.contact_id = ANY(ARRAY( \
                     SELECT kc.id FROM contacts kc WHERE kc.phone_number = ANY($1))) \
                 UNION SELECT unnest($2::int4[]))) \
             ORDER BY v.id",
        )
        .bind(&lookup.keys)
        .bind(&ids)
        .bind(&exclude)
        .fetch_all(&mut *conn)
        .await
        .map_err(self.error("loading conversations"))?;
        let mut states: Vec<ConversationState> =
            rows.into_iter().map(StateRow::into_state).collect();
        texts::add_totals(conn, &mut states, &lookup.exclude_texts)
            .await
            .map_err(self.media_error("loading the text totals of conversations"))?;
        Ok(states)
    }

    /// One contact, on `conn`; `NotFound` when it does not exist.
    async fn contact(&self, conn: &mut PgConnection, id: i64) -> Result<ContactRecord, StoreError> {
        let row: Option<ContactRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id = $1"
        )))
        .bind(contact_id(id)?)
        .fetch_optional(&mut *conn)
        .await
        .map_err(self.error("reading a contact"))?;
        row.map(ContactRow::into_record)
            .ok_or_else(|| StoreError::NotFound(format!("contact {id}")))
    }

    /// Writes a named cursor on `conn`.
    async fn write_cursor(
        &self,
        conn: &mut PgConnection,
        name: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sync_cursors (name, value, updated_at) \
             VALUES ($1, $2, NOW() AT TIME ZONE 'UTC') \
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(name)
        .bind(value)
        .execute(&mut *conn)
        .await
        .map_err(self.error("writing a sync cursor"))?;
        Ok(())
    }
}

/// Resolves a plan's conversation references to row ids.
struct Resolver {
    created: HashMap<String, i32>,
}

impl Resolver {
    fn id(&self, r: &ConversationRef) -> Result<i32, StoreError> {
        match r {
            ConversationRef::Existing(id) => conversation_id(*id).ok_or_else(|| invalid_id(id.0)),
            ConversationRef::New(key) => self.created.get(key).copied().ok_or_else(|| {
                StoreError::Invalid(format!(
                    "the plan writes to a new conversation {key:?} it does not create"
                ))
            }),
        }
    }
}

/// The interaction of `root` among `interactions` (newest first), else the newest.
fn pick_last(interactions: Vec<Interaction>, root: &Option<String>) -> Option<Interaction> {
    let position = interactions
        .iter()
        .position(|i| Some(i.root.call.sid.as_str()) == root.as_deref())
        .unwrap_or(0);
    interactions.into_iter().nth(position)
}

#[derive(sqlx::FromRow)]
struct StateRow {
    id: i32,
    key: String,
    calls: i64,
    root_calls: i64,
    root_duration: i64,
    last_call_at: Option<NaiveDateTime>,
    newest_sid: Option<String>,
    newest_start: Option<NaiveDateTime>,
    newest_actual: Option<String>,
    newest_direction: Option<String>,
    newest_display: Option<String>,
    newest_status: Option<String>,
    newest_duration: Option<i32>,
}

impl StateRow {
    fn into_state(self) -> ConversationState {
        let newest_root = self
            .newest_sid
            .and_then(CallSid::new)
            .map(|sid| NewestRoot {
                start_time: self.newest_start.map(from_db_time),
                sid,
                direction: ActualDirection::from_stored(
                    self.newest_actual.as_deref().filter(|a| !a.is_empty()),
                    &CallDirection::parse(self.newest_direction.as_deref().unwrap_or("")),
                ),
                display_status: DisplayStatus::from_stored(
                    self.newest_display.as_deref().filter(|d| !d.is_empty()),
                    &CallStatus::parse(self.newest_status.as_deref().unwrap_or("")),
                    self.newest_duration
                        .map_or(0, |d| u32::try_from(d).unwrap_or(0)),
                ),
            });
        ConversationState {
            id: ConversationId(i64::from(self.id)),
            key: self.key,
            rest: Aggregate {
                calls: self.calls.max(0) as u64,
                root_calls: self.root_calls.max(0) as u64,
                root_duration: self.root_duration.max(0) as u64,
                newest_root,
                last_call_at: self.last_call_at.map(from_db_time),
                texts: 0,
                newest_text: None,
            },
        }
    }
}

/// The key of the transaction-scoped advisory lock every ingest takes
/// first (`pg_advisory_xact_lock`), so that writers in every process using
/// the database run one at a time and each plans from what the previous
/// one committed. The bytes of `"cv-write"`.
pub const INGEST_LOCK_KEY: i64 = 0x6376_2d77_7269_7465;

/// One ingest: a transaction that took [`INGEST_LOCK_KEY`]. Dropping it
/// without [`IngestTx::commit`] rolls back (sqlx's `Transaction`).
struct PgIngest {
    db: Db,
    tx: Transaction<'static, Postgres>,
    /// The backend pid of this store's sync-lock session, when it holds the lock.
    lock_pid: Option<i32>,
}

#[async_trait]
impl IngestTx for PgIngest {
    async fn load_trees(&mut self, sids: &[CallSid]) -> Result<Vec<StoredCall>, StoreError> {
        self.db.load_trees(&mut self.tx, sids).await
    }

    async fn load_texts(&mut self, sids: &[MessageSid]) -> Result<Vec<StoredText>, StoreError> {
        texts::load_texts(&mut self.tx, sids)
            .await
            .map_err(self.db.media_error("loading stored texts"))
    }

    async fn load_conversations(
        &mut self,
        lookup: &ConversationLookup,
    ) -> Result<FoundConversations, StoreError> {
        let taken_external_ids: Vec<String> = if lookup.external_ids.is_empty() {
            Vec::new()
        } else {
            sqlx::query_scalar(
                "SELECT external_id FROM conversations WHERE external_id = ANY($1) \
                 ORDER BY external_id",
            )
            .bind(&lookup.external_ids)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(self.db.error("finding taken external ids"))?
        };
        let conversations = self.db.load_conversations(&mut self.tx, lookup).await?;
        Ok(FoundConversations {
            conversations,
            taken_external_ids,
        })
    }

    async fn apply(&mut self, plan: Plan) -> Result<(), StoreError> {
        if plan.is_empty() {
            return Ok(());
        }
        let tx = &mut *self.tx;
        let created = self
            .db
            .create_conversations(tx, &plan.new_conversations)
            .await?;
        let resolve = Resolver { created };
        self.db.write_calls(tx, &plan, &resolve).await?;
        // The recordings and transcripts stored before a new call arrived
        // (a stored call keeps its columns: the plan carries them over).
        let new_calls: Vec<String> = plan
            .calls
            .iter()
            .filter(|w| w.recording_url.is_none())
            .map(|w| w.call.sid.to_string())
            .collect();
        media::refresh_call_columns(tx, &new_calls)
            .await
            .map_err(self.db.error("attaching recordings to their calls"))?;
        let mut text_writes = Vec::with_capacity(plan.texts.len());
        for write in &plan.texts {
            text_writes.push((write, resolve.id(&write.conversation)?));
        }
        texts::upsert_texts(tx, &text_writes)
            .await
            .map_err(self.db.media_error("writing text messages"))?;
        self.db.write_counters(tx, &plan.counters, &resolve).await?;
        self.db.remove_conversations(tx, &plan.removed).await?;
        let mut facts = Vec::with_capacity(plan.interactions.len());
        for f in &plan.interactions {
            let conversation = i64::from(resolve.id(&f.conversation)?);
            facts.push((&f.root_sid, FactsRow::new(f, conversation)));
        }
        let removed: Vec<i64> = plan.removed.iter().map(|id| id.0).collect();
        stats::apply(tx, &facts, &plan.former_roots, &removed)
            .await
            .map_err(self.db.error("writing the statistics of interactions"))
    }

    async fn write_cursor(&mut self, name: &str, value: &str) -> Result<(), StoreError> {
        self.db.write_cursor(&mut self.tx, name, value).await
    }

    async fn record_refresh(&mut self, updates: &[RefreshUpdate]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let sids: Vec<&str> = updates.iter().map(|u| u.sid.as_str()).collect();
        let attempts: Vec<i32> = updates
            .iter()
            .map(|u| i32::try_from(u.state.attempts).unwrap_or(i32::MAX))
            .collect();
        let due: Vec<Option<NaiveDateTime>> = updates
            .iter()
            .map(|u| u.state.due_at.map(to_db_time))
            .collect();
        let unfollowed: Vec<Option<NaiveDateTime>> = updates
            .iter()
            .map(|u| u.state.unfollowed_at.map(to_db_time))
            .collect();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE messages m SET refresh_attempts = u.attempts, refresh_due_at = u.due, \
                 unfollowed_at = u.unfollowed \
             FROM UNNEST($1::text[], $2::int4[], $3::timestamp[], $4::timestamp[]) \
                 AS u(sid, attempts, due, unfollowed) \
             WHERE m.twilio_sid = u.sid AND m.status NOT IN {FINAL_STATUSES}"
        )))
        .bind(&sids)
        .bind(&attempts)
        .bind(&due)
        .bind(&unfollowed)
        .execute(&mut *self.tx)
        .await
        .map_err(self.db.error("recording refresh attempts"))?;
        Ok(())
    }

    async fn confirm_sync_lock(&mut self) -> Result<(), StoreError> {
        let Some(pid) = self.lock_pid else {
            return Ok(());
        };
        // A bigint advisory key shows in `pg_locks` as its high and low
        // halves (classid, objid) with objsubid 1.
        let held: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
                 AND pid = $1 AND granted AND objsubid = 1 \
                 AND classid::int8 = ($2 >> 32) AND objid::int8 = ($2 & 4294967295))",
        )
        .bind(pid)
        .bind(SYNC_LOCK_KEY)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(self.db.error("checking the sync lock"))?;
        if held {
            Ok(())
        } else {
            Err(StoreError::LockLost(
                "the database session holding it ended; this run stops without writing its \
                 current page"
                    .to_owned(),
            ))
        }
    }

    async fn edit_contact(
        &mut self,
        id: i64,
        edit: &ContactEdit,
        expected_version: Option<i64>,
        meta: &EditMeta,
    ) -> Result<ContactRecord, StoreError> {
        let current = self.db.contact(&mut self.tx, id).await?;
        check_version(
            &format!("contact {id}"),
            current.annotations.version,
            expected_version,
        )?;
        let after = edit.apply(&current.fields(), meta);
        let a = &after.annotations;
        sqlx::query(
            "UPDATE contacts SET display_name = $2, company_name = $3, notes = $4, tags = $5, \
                 edited_by = $6, edited_at = $7, version = $8, \
                 updated_at = NOW() AT TIME ZONE 'UTC' \
             WHERE id = $1",
        )
        .bind(contact_id(id)?)
        .bind(
            after
                .name
                .as_deref()
                .or(current.formatted_number.as_deref()),
        )
        .bind(&after.company_name)
        .bind(&a.notes)
        .bind(serde_json::json!(a.tags))
        .bind(&a.edited_by)
        .bind(a.edited_at.map(to_db_time))
        .bind(i32::try_from(a.version).unwrap_or(i32::MAX))
        .execute(&mut *self.tx)
        .await
        .map_err(self.db.error("editing a contact"))?;
        self.db.contact(&mut self.tx, id).await
    }

    async fn ensure_contact(&mut self, key: &str, display: &str) -> Result<i64, StoreError> {
        sqlx::query(
            "INSERT INTO contacts (phone_number, formatted_number, display_name, created_at, \
                 updated_at) \
             VALUES ($1, $2, $2, NOW() AT TIME ZONE 'UTC', NOW() AT TIME ZONE 'UTC') \
             ON CONFLICT (phone_number) DO NOTHING",
        )
        .bind(key)
        .bind(display)
        .execute(&mut *self.tx)
        .await
        .map_err(self.db.error("creating a contact"))?;
        let id: i32 = sqlx::query_scalar("SELECT id FROM contacts WHERE phone_number = $1")
            .bind(key)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(self.db.error("finding a contact"))?;
        Ok(i64::from(id))
    }

    async fn edit_call(
        &mut self,
        id: i64,
        edit: &CallEdit,
        expected_version: Option<i64>,
        meta: &EditMeta,
    ) -> Result<Annotations, StoreError> {
        let not_found = || StoreError::NotFound(format!("message {id}"));
        let row_id = i32::try_from(id).map_err(|_| not_found())?;
        let row: Option<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m \
             WHERE m.id = $1 AND m.root_call_sid = m.twilio_sid"
        )))
        .bind(row_id)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(self.db.error("reading a message"))?;
        let current = row.ok_or_else(not_found)?.into_stored();
        check_version(
            &format!("message {id}"),
            current.annotations.version,
            expected_version,
        )?;
        let after = edit.apply(&current.annotations, meta);
        sqlx::query(
            "UPDATE messages SET notes = $2, tags = $3, edited_by = $4, edited_at = $5, \
                 version = $6 WHERE id = $1",
        )
        .bind(row_id)
        .bind(&after.notes)
        .bind(serde_json::json!(after.tags))
        .bind(&after.edited_by)
        .bind(after.edited_at.map(to_db_time))
        .bind(i32::try_from(after.version).unwrap_or(i32::MAX))
        .execute(&mut *self.tx)
        .await
        .map_err(self.db.error("editing a message"))?;
        Ok(after)
    }

    async fn load_media(
        &mut self,
        recordings: &[RecordingSid],
        transcripts: &[String],
    ) -> Result<(Vec<StoredRecording>, Vec<Transcript>), StoreError> {
        media::load_media(&mut self.tx, recordings, transcripts)
            .await
            .map_err(self.db.media_error("reading stored recordings"))
    }

    async fn recordings_created_between(
        &mut self,
        after: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<RecordingSid>, StoreError> {
        media::recordings_created_between(&mut self.tx, after, before)
            .await
            .map_err(self.db.error("listing stored recordings of a window"))
    }

    async fn apply_media(&mut self, plan: MediaPlan) -> Result<(), StoreError> {
        if plan.is_empty() {
            return Ok(());
        }
        media::apply_media(&mut self.tx, &plan)
            .await
            .map_err(self.db.error("writing recordings and transcripts"))
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let db = self.db;
        self.tx
            .commit()
            .await
            .map_err(db.error("committing a transaction"))
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn begin_ingest(&self) -> Result<Box<dyn IngestTx>, StoreError> {
        let lock_pid = Some(self.sync_lock_pid.load(Ordering::Acquire)).filter(|pid| *pid != 0);
        // READ COMMITTED whatever the server's default: each statement
        // after the advisory lock sees what the previous writer committed.
        let mut tx = self
            .db
            .pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(self.db.error("starting a transaction"))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(INGEST_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .map_err(self.db.error("waiting for the write lock"))?;
        Ok(Box::new(PgIngest {
            db: self.db.clone(),
            tx,
            lock_pid,
        }))
    }

    async fn load_trees(&self, sids: &[CallSid]) -> Result<Vec<StoredCall>, StoreError> {
        if sids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(self.db.error("loading call trees"))?;
        self.db.load_trees(&mut conn, sids).await
    }

    async fn read_cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT value FROM sync_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(self.db.error("reading a sync cursor"))
    }

    async fn unfinished_calls(
        &self,
        query: &UnfinishedQuery,
    ) -> Result<Vec<StoredCall>, StoreError> {
        let rows: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m \
             WHERE m.status NOT IN {FINAL_STATUSES} AND m.unfollowed_at IS NULL \
               AND (m.refresh_due_at IS NULL OR m.refresh_due_at <= $2) \
               AND ($3::timestamp IS NULL OR m.start_time IS NULL OR m.start_time < $3) \
             ORDER BY m.start_time DESC NULLS FIRST, m.twilio_sid COLLATE \"C\" DESC \
             LIMIT $1"
        )))
        .bind(i64::from(query.limit))
        .bind(to_db_time(query.due_at))
        .bind(query.started_before.map(to_db_time))
        .fetch_all(&self.db.pool)
        .await
        .map_err(self.db.error("listing unfinished calls"))?;
        Ok(rows.into_iter().map(MessageRow::into_stored).collect())
    }

    async fn messages(
        &self,
        id: ConversationId,
        query: &MessageQuery,
    ) -> Result<MessagePage, StoreError> {
        let what = "reading a conversation's messages";
        let (mut tx, db_id) = self.conversation_tx(id, what).await?;
        // One root more than the page says whether another page follows;
        // the order is `newest_first` (started calls by time then SID,
        // descending; calls without a start time last).
        let want = i64::from(query.limit) + 1;
        let (after_at, after_sid) = match &query.after {
            Some(c) => (c.start_time().map(to_db_time), Some(c.sid())),
            None => (None, None),
        };
        let roots: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m \
             WHERE m.conversation_id = $1 AND m.root_call_sid = m.twilio_sid \
               AND ($3::text IS NULL \
                    OR ($2::timestamp IS NOT NULL AND (m.start_time IS NULL \
                        OR m.start_time < $2 \
                        OR (m.start_time = $2 AND m.twilio_sid COLLATE \"C\" < $3 COLLATE \"C\"))) \
                    OR ($2::timestamp IS NULL AND m.start_time IS NULL \
                        AND m.twilio_sid COLLATE \"C\" < $3 COLLATE \"C\")) \
             ORDER BY m.start_time DESC NULLS LAST, m.twilio_sid COLLATE \"C\" DESC \
             LIMIT $4"
        )))
        .bind(db_id)
        .bind(after_at)
        .bind(after_sid)
        .bind(want)
        .fetch_all(&mut *tx)
        .await
        .map_err(self.db.error(what))?;
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let more = roots.len() > limit;
        let mut calls: Vec<StoredCall> = roots
            .into_iter()
            .take(limit)
            .map(MessageRow::into_stored)
            .collect();
        if !calls.is_empty() {
            let root_sids: Vec<&str> = calls.iter().map(|c| c.call.sid.as_str()).collect();
            let legs: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages m \
                 WHERE m.conversation_id = $1 AND m.root_call_sid = ANY($2) \
                   AND m.root_call_sid <> m.twilio_sid"
            )))
            .bind(db_id)
            .bind(&root_sids)
            .fetch_all(&mut *tx)
            .await
            .map_err(self.db.error(what))?;
            calls.extend(legs.into_iter().map(MessageRow::into_stored));
        }
        tx.commit().await.map_err(self.db.error(what))?;
        let interactions = fold_interactions(calls);
        let next_cursor = if more {
            interactions.last().map(MessageCursor::after)
        } else {
            None
        };
        Ok(MessagePage {
            interactions,
            next_cursor,
        })
    }

    async fn texts(
        &self,
        id: ConversationId,
        query: &MessageQuery,
    ) -> Result<Vec<StoredText>, StoreError> {
        let what = "reading a conversation's texts";
        let (mut tx, db_id) = self.conversation_tx(id, what).await?;
        let texts = texts::thread_texts(&mut tx, db_id, query)
            .await
            .map_err(self.db.media_error(what))?;
        tx.commit().await.map_err(self.db.error(what))?;
        Ok(texts)
    }

    async fn text(&self, sid: &MessageSid) -> Result<StoredText, StoreError> {
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(self.db.error("reading a text"))?;
        texts::load_texts(&mut conn, std::slice::from_ref(sid))
            .await
            .map_err(self.db.media_error("reading a text"))?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("text {sid}")))
    }

    async fn list_conversations(
        &self,
        query: &ConversationQuery,
    ) -> Result<ConversationPage, StoreError> {
        query.validate()?;
        let what = "listing conversations";
        let filter = conversation_filter(query);
        let mut tx = self.read_tx(what).await?;
        // One row more than the page says whether another page follows.
        let want = i64::from(query.limit) + 1;
        let (total, mut rows) = if query.search.is_some() {
            // A search's matches are found once (trigram lookups, then the
            // exact conditions: most of the cost) with their order key,
            // counted, and the page cut from them here; only its rows are
            // read. The transaction's snapshot makes both agree.
            let matches: Vec<(i32, Option<NaiveDateTime>)> = bind_filter!(
                sqlx::query_as(sqlx::AssertSqlSafe(filter.keys_sql())),
                filter
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(self.db.error(what))?;
            let total = i64::try_from(matches.len()).unwrap_or(i64::MAX);
            let page = page_of(
                matches,
                query.after.as_ref(),
                query.offset,
                usize::try_from(want).unwrap_or(usize::MAX),
            );
            let rows = if page.is_empty() {
                Vec::new()
            } else {
                self.list_rows(&mut tx, &Filter::ids(page), &Start::Top, want, 0)
                    .await?
            };
            (total, rows)
        } else {
            // Unfiltered, the number the triggers of migration 4 keep.
            let count_sql = if query.has_filters() {
                format!("SELECT count(*) FROM conversations v {}", filter.sql())
            } else {
                "SELECT COALESCE(sum(delta), 0)::int8 FROM conversation_count".to_owned()
            };
            let total: i64 =
                bind_filter!(sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql)), filter)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(self.db.error(what))?;
            (total, self.list_page(&mut tx, &filter, query, want).await?)
        };
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|r| {
                ConversationCursor::new(
                    r.last_message_at.map(from_db_time),
                    ConversationId(i64::from(r.id)),
                )
            })
        } else {
            None
        };
        let conversations = self.views(&mut tx, rows).await?;
        tx.commit().await.map_err(self.db.error(what))?;
        Ok(ConversationPage {
            conversations,
            total: total.max(0) as u64,
            next_cursor,
        })
    }

    async fn conversation(&self, id: ConversationId) -> Result<ConversationView, StoreError> {
        let not_found = || StoreError::NotFound(format!("conversation {id}"));
        let db_id = conversation_id(id).ok_or_else(not_found)?;
        let what = "reading a conversation";
        let mut tx = self.read_tx(what).await?;
        let row: Option<ConversationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations v \
             LEFT JOIN contacts c ON c.id = v.contact_id WHERE v.id = $1"
        )))
        .bind(db_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(self.db.error(what))?;
        let row = row.ok_or_else(not_found)?;
        let view = self
            .views(&mut tx, vec![row])
            .await?
            .pop()
            .ok_or_else(not_found)?;
        tx.commit().await.map_err(self.db.error(what))?;
        Ok(view)
    }

    async fn conversation_calls(&self, id: ConversationId) -> Result<Vec<StoredCall>, StoreError> {
        let not_found = || StoreError::NotFound(format!("conversation {id}"));
        let db_id = conversation_id(id).ok_or_else(not_found)?;
        let rows: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.conversation_id = $1 \
             ORDER BY m.start_time ASC NULLS LAST, m.twilio_sid COLLATE \"C\""
        )))
        .bind(db_id)
        .fetch_all(&self.db.pool)
        .await
        .map_err(self.db.error("reading a conversation's calls"))?;
        if rows.is_empty() {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM conversations WHERE id = $1)")
                    .bind(db_id)
                    .fetch_one(&self.db.pool)
                    .await
                    .map_err(self.db.error("reading a conversation"))?;
            if !exists {
                return Err(not_found());
            }
        }
        Ok(rows.into_iter().map(MessageRow::into_stored).collect())
    }

    async fn contact(&self, id: i64) -> Result<ContactRecord, StoreError> {
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(self.db.error("reading a contact"))?;
        self.db.contact(&mut conn, id).await
    }

    async fn message(&self, id: i64) -> Result<(ConversationId, Interaction), StoreError> {
        let not_found = || StoreError::NotFound(format!("message {id}"));
        let row_id = i32::try_from(id).map_err(|_| not_found())?;
        let rows: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m \
             WHERE m.root_call_sid = (SELECT r.twilio_sid FROM messages r \
                                      WHERE r.id = $1 AND r.root_call_sid = r.twilio_sid)"
        )))
        .bind(row_id)
        .fetch_all(&self.db.pool)
        .await
        .map_err(self.db.error("reading a message"))?;
        message_of(rows.into_iter().map(MessageRow::into_stored).collect(), id)
    }

    async fn contacts_page(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ContactRecord>, StoreError> {
        let after = i32::try_from(after.max(0)).unwrap_or(i32::MAX);
        let rows: Vec<ContactRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts c WHERE c.id > $1 ORDER BY c.id LIMIT $2"
        )))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.db.pool)
        .await
        .map_err(self.db.error("listing contacts"))?;
        Ok(rows.into_iter().map(ContactRow::into_record).collect())
    }

    async fn create_token(&self, token: &NewToken) -> Result<TokenRecord, StoreError> {
        self.db.create_token(token).await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.db.tokens().await
    }

    async fn revoke_token(&self, name: &str, at: DateTime<Utc>) -> Result<TokenRecord, StoreError> {
        self.db.revoke_token(name, at).await
    }

    async fn authenticate(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.db.authenticate(hash, now).await
    }

    async fn export_calls(
        &self,
        query: &ExportQuery,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<ExportRow>, StoreError> {
        let what = "exporting calls";
        let mut tx = self.read_tx(what).await?;
        let rows = crate::export::export_calls(&mut tx, query, after, limit)
            .await
            .map_err(self.db.error(what))?;
        tx.commit().await.map_err(self.db.error(what))?;
        Ok(rows)
    }

    async fn tags(&self) -> Result<Vec<TagCount>, StoreError> {
        let rows: Vec<(String, bool)> = sqlx::query_as(
            "SELECT t, true FROM contacts s, jsonb_array_elements_text( \
                 CASE WHEN jsonb_typeof(s.tags) = 'array' THEN s.tags ELSE '[]'::jsonb END) t \
             WHERE jsonb_typeof(s.tags) = 'array' AND s.tags <> '[]'::jsonb \
             UNION ALL \
             SELECT t, false FROM messages m, jsonb_array_elements_text( \
                 CASE WHEN jsonb_typeof(m.tags) = 'array' THEN m.tags ELSE '[]'::jsonb END) t \
             WHERE jsonb_typeof(m.tags) = 'array' AND m.tags <> '[]'::jsonb",
        )
        .fetch_all(&self.db.pool)
        .await
        .map_err(self.db.error("listing tags"))?;
        Ok(count_tags(rows))
    }

    async fn recording(&self, sid: &RecordingSid) -> Result<StoredRecording, StoreError> {
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(self.db.error("reading a recording"))?;
        media::recording(&mut conn, sid)
            .await
            .map_err(self.db.media_error("reading a recording"))?
            .ok_or_else(|| StoreError::NotFound(format!("recording {sid}")))
    }

    async fn unfinished_media_since(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(self.db.error("finding unfinished recordings"))?;
        media::unfinished_media_since(&mut conn)
            .await
            .map_err(self.db.error("finding unfinished recordings"))
    }

    async fn media_of_calls(&self, sids: &[CallSid]) -> Result<CallMedia, StoreError> {
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(self.db.error("reading the recordings of calls"))?;
        media::media_of_calls(&mut conn, sids)
            .await
            .map_err(self.db.media_error("reading the recordings of calls"))
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        let (contacts, conversations, calls, texts): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM contacts), (SELECT count(*) FROM conversations), \
                    (SELECT count(*) FROM messages), (SELECT count(*) FROM texts)",
        )
        .fetch_one(&self.db.pool)
        .await
        .map_err(self.db.error("counting rows"))?;
        Ok(StoreCounts {
            contacts: contacts.max(0) as u64,
            conversations: conversations.max(0) as u64,
            calls: calls.max(0) as u64,
            texts: texts.max(0) as u64,
        })
    }

    async fn health(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.db.pool)
            .await
            .map_err(self.db.error("checking the database"))?;
        Ok(())
    }

    async fn schema_status(&self) -> Result<Option<SchemaStatus>, StoreError> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.db.pool)
                .await
                .map_err(self.db.error("reading _sqlx_migrations"))?;
        let applied: std::collections::BTreeSet<i64> = applied.into_iter().collect();
        Ok(Some(SchemaStatus {
            expected: MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0),
            applied: applied.last().copied().unwrap_or(0),
            missing: MIGRATOR
                .iter()
                .map(|m| m.version)
                .filter(|v| !applied.contains(v))
                .collect(),
        }))
    }

    fn pool_status(&self) -> Option<PoolStatus> {
        let pool = &self.db.pool;
        let size = pool.size();
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
        Some(PoolStatus {
            max: pool.options().get_max_connections(),
            idle,
            in_use: size - idle,
        })
    }

    async fn root_sids_page(
        &self,
        after: Option<&CallSid>,
        limit: u32,
    ) -> Result<Vec<CallSid>, StoreError> {
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(self.db.error("listing root calls"))?;
        stats::root_sids_page(&mut conn, after.map(CallSid::as_str), limit)
            .await
            .map_err(self.db.error("listing root calls"))
    }

    async fn stats(&self, query: &StatsQuery) -> Result<StatsRows, StoreError> {
        let mut conn = self
            .db
            .pool
            .acquire()
            .await
            .map_err(self.db.error("reading statistics"))?;
        stats::stats(&mut conn, query)
            .await
            .map_err(self.db.error("reading statistics"))
    }

    /// Takes `pg_try_advisory_lock(SYNC_LOCK_KEY)` on a dedicated connection
    /// (outside the pool, so a sync never starves the pool). `false` when
    /// another process, or this store already, holds it.
    async fn try_lock_sync(&self) -> Result<bool, StoreError> {
        let mut held = self.sync_lock.lock().await;
        if held.is_some() {
            return Ok(false);
        }
        let mut conn = PgConnection::connect_with(&self.connect_options)
            .await
            .map_err(self.db.error("opening the sync lock connection"))?;
        let (locked, pid): (bool, i32) =
            sqlx::query_as("SELECT pg_try_advisory_lock($1), pg_backend_pid()")
                .bind(SYNC_LOCK_KEY)
                .fetch_one(&mut conn)
                .await
                .map_err(self.db.error("taking the sync lock"))?;
        if locked {
            self.sync_lock_pid.store(pid, Ordering::Release);
            *held = Some(conn);
        } else {
            let _ = conn.close().await;
        }
        Ok(locked)
    }

    /// Releases the advisory lock and closes its connection. Closing the
    /// session releases the lock even when the unlock itself fails.
    async fn unlock_sync(&self) -> Result<(), StoreError> {
        let Some(mut conn) = self.sync_lock.lock().await.take() else {
            return Ok(());
        };
        self.sync_lock_pid.store(0, Ordering::Release);
        let unlocked: Result<bool, sqlx::Error> =
            sqlx::query_scalar("SELECT pg_advisory_unlock($1)")
                .bind(SYNC_LOCK_KEY)
                .fetch_one(&mut conn)
                .await;
        match unlocked {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(url = %self.db.url, "the sync lock was not held by its connection")
            }
            Err(e) => {
                tracing::warn!(url = %self.db.url, error = %describe(&e), "could not release the sync lock; closing its connection releases it")
            }
        }
        let _ = conn.close().await;
        Ok(())
    }
}
