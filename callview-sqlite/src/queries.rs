//! The statements behind each `Store` method, as blocking functions over a
//! connection. The async wrappers in `lib.rs` run them off the runtime.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use callview_core::annotations::{Annotations, CallEdit, ContactEdit, EditMeta};
use callview_core::call::CallSid;
use callview_core::endpoint::ActualDirection;
use callview_core::model::{
    fold_interactions, Aggregate, CallWrite, ConversationId, ConversationLookup, ConversationRef,
    ConversationState, DisplayStatus, FoundConversations, Interaction, MessageType,
    NewConversation, NewestRoot, Plan, StoredCall, ThreadKinds,
};
use callview_core::store::{
    check_version, count_tags, message_of, ContactRecord, ConversationCursor, ConversationPage,
    ConversationQuery, ConversationRecord, ConversationView, MessageCursor, MessagePage,
    MessageQuery, RefreshUpdate, StoreCounts, StoreError, TagCount, UnfinishedQuery,
};
use callview_core::text::MessageSid;
use callview_core::{CallDirection, CallStatus};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Params, TransactionBehavior};

use crate::rows::{self, CONTACT_COLUMNS, CONVERSATION_COLUMNS, MESSAGE_COLUMNS};
use crate::time;

/// Wraps a rusqlite error with what was being done.
/// Names what failed and SQLite's reason ("database or disk is full"); the
/// store adds which database.
pub(crate) fn db(what: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let what = what.into();
    move |e| StoreError::backend(format!("{what}: {e}"), e)
}

/// A JSON array of strings, for `json_each(?)` IN-lists of any length.
pub(crate) fn json_array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    serde_json::Value::Array(
        items
            .into_iter()
            .map(|s| serde_json::Value::String(s.to_owned()))
            .collect(),
    )
    .to_string()
}

/// A JSON array of integers.
pub(crate) fn json_ids(ids: impl IntoIterator<Item = i64>) -> String {
    serde_json::Value::Array(ids.into_iter().map(serde_json::Value::from).collect()).to_string()
}

fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("{what} is too large: {value}")))
}

/// Runs a query whose rows are `messages` rows (selected with
/// [`MESSAGE_COLUMNS`]) and reads them.
fn query_calls(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    what: &str,
) -> Result<Vec<StoredCall>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db(what))?;
    let mut rows = stmt.query(params).map_err(db(what))?;
    let mut calls = Vec::new();
    while let Some(row) = rows.next().map_err(db(what))? {
        calls.push(rows::stored_call(row)?);
    }
    Ok(calls)
}

/// Runs a query whose rows are conversations with their contacts.
fn query_conversations(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    what: &str,
) -> Result<Vec<(ConversationRecord, ContactRecord)>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db(what))?;
    let mut rows = stmt.query(params).map_err(db(what))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db(what))? {
        out.push(rows::conversation_and_contact(row)?);
    }
    Ok(out)
}

// ---------------------------------------------------------------- reads

/// `Store::load_trees`.
pub(crate) fn load_trees(
    conn: &Connection,
    sids: &[CallSid],
) -> Result<Vec<StoredCall>, StoreError> {
    if sids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "WITH wanted(sid) AS (SELECT value FROM json_each(?1)),
              roots(root) AS (
                  SELECT root_call_sid FROM messages WHERE twilio_sid IN (SELECT sid FROM wanted)
                  UNION
                  SELECT root_call_sid FROM messages WHERE parent_call_sid IN (SELECT sid FROM wanted)
              )
         SELECT {MESSAGE_COLUMNS} FROM messages m
         WHERE m.root_call_sid IN (SELECT root FROM roots)"
    );
    let list = json_array(sids.iter().map(CallSid::as_str));
    query_calls(
        conn,
        &sql,
        [list],
        "loading the stored call trees of a batch",
    )
}

/// `Store::load_conversations`.
pub(crate) fn load_conversations(
    conn: &Connection,
    lookup: &ConversationLookup,
) -> Result<FoundConversations, StoreError> {
    let what = "loading the conversations of a batch";
    let mut taken_external_ids = Vec::new();
    if !lookup.external_ids.is_empty() {
        let mut stmt = conn
            .prepare_cached(
                "SELECT external_id FROM conversations
                 WHERE external_id IN (SELECT value FROM json_each(?1))
                 ORDER BY external_id",
            )
            .map_err(db(what))?;
        let list = json_array(lookup.external_ids.iter().map(String::as_str));
        let rows = stmt
            .query_map([list], |r| r.get::<_, String>(0))
            .map_err(db(what))?;
        for row in rows {
            taken_external_ids.push(row.map_err(db(what))?);
        }
    }
    let conversations = conversation_states(conn, lookup)?;
    Ok(FoundConversations {
        conversations,
        taken_external_ids,
    })
}

/// The conversations of a lookup with their totals.
fn conversation_states(
    conn: &Connection,
    lookup: &ConversationLookup,
) -> Result<Vec<ConversationState>, StoreError> {
    if lookup.keys.is_empty() && lookup.ids.is_empty() {
        return Ok(Vec::new());
    }
    let what = "loading the conversations of a batch";
    let keys = json_array(lookup.keys.iter().map(String::as_str));
    let ids = json_ids(lookup.ids.iter().map(|id| id.0));
    let exclude = json_array(lookup.exclude.iter().map(CallSid::as_str));

    let mut states: Vec<ConversationState> = Vec::new();
    {
        let mut stmt = conn
            .prepare_cached(
                "SELECT cv.id, ct.phone_number FROM contacts ct
                 JOIN conversations cv ON cv.contact_id = ct.id
                 WHERE ct.phone_number IN (SELECT value FROM json_each(?1))
                 UNION
                 SELECT cv.id, ct.phone_number FROM conversations cv
                 JOIN contacts ct ON ct.id = cv.contact_id
                 WHERE cv.id IN (SELECT value FROM json_each(?2))
                 ORDER BY 1",
            )
            .map_err(db(what))?;
        let rows = stmt
            .query_map([&keys, &ids], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(db(what))?;
        for row in rows {
            let (id, key) = row.map_err(db(what))?;
            states.push(ConversationState {
                id: ConversationId(id),
                key,
                rest: Aggregate::default(),
            });
        }
    }
    if states.is_empty() {
        return Ok(states);
    }
    let index: HashMap<i64, usize> = states
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.0, i))
        .collect();
    let found = json_ids(states.iter().map(|s| s.id.0));

    // Totals over the rows outside `exclude`. This and the next query read
    // `idx_messages_conversation_totals` alone (a covering index), not the
    // rows: a backfill runs them for every conversation of every page.
    {
        let mut stmt = conn
            .prepare_cached(
                "SELECT m.conversation_id,
                        count(*),
                        coalesce(sum(m.root_call_sid = m.twilio_sid), 0),
                        coalesce(sum(CASE WHEN m.root_call_sid = m.twilio_sid
                                          THEN coalesce(m.duration, 0) ELSE 0 END), 0),
                        max(m.start_time)
                 FROM messages m
                 WHERE m.conversation_id IN (SELECT value FROM json_each(?1))
                   AND m.twilio_sid NOT IN (SELECT value FROM json_each(?2))
                 GROUP BY m.conversation_id",
            )
            .map_err(db(what))?;
        let mut rows = stmt.query([&found, &exclude]).map_err(db(what))?;
        while let Some(row) = rows.next().map_err(db(what))? {
            let id: i64 = row.get(0).map_err(db(what))?;
            let last: Option<String> = row.get(4).map_err(db(what))?;
            let Some(&i) = index.get(&id) else { continue };
            let rest = &mut states[i].rest;
            rest.calls = rows::non_negative(row.get(1).map_err(db(what))?);
            rest.root_calls = rows::non_negative(row.get(2).map_err(db(what))?);
            rest.root_duration = rows::non_negative(row.get(3).map_err(db(what))?);
            rest.last_call_at = parse_optional_time(last, || format!("conversation {id}"))?;
        }
    }

    // The newest root of each: greatest (start_time IS NOT NULL, start_time,
    // twilio_sid). One step down `idx_messages_conversation_totals` per
    // conversation, whose order this is (a DESC index puts NULLs last); the
    // first root outside `exclude` is it. (Ranking every root of every
    // conversation with a window function took 10 ms of a 1,000-call
    // page at 100k calls, this 2 ms.)
    {
        let mut stmt = conn
            .prepare_cached(
                "SELECT c.value, n.twilio_sid, n.start_time, n.direction,
                        json_extract(n.metadata, '$.actual_direction'),
                        json_extract(n.metadata, '$.display_status'), n.status, n.duration
                 FROM json_each(?1) c
                 JOIN messages n ON n.id = (
                     SELECT m.id FROM messages m
                     WHERE m.conversation_id = c.value
                       AND m.root_call_sid = m.twilio_sid
                       AND m.twilio_sid NOT IN (SELECT value FROM json_each(?2))
                     ORDER BY m.start_time DESC, m.twilio_sid DESC
                     LIMIT 1)",
            )
            .map_err(db(what))?;
        let mut rows = stmt.query([&found, &exclude]).map_err(db(what))?;
        while let Some(row) = rows.next().map_err(db(what))? {
            let id: i64 = row.get(0).map_err(db(what))?;
            let sid: String = row.get(1).map_err(db(what))?;
            let start: Option<String> = row.get(2).map_err(db(what))?;
            let direction: String = row.get(3).map_err(db(what))?;
            let actual: Option<String> = row.get(4).ok().flatten();
            let display: Option<String> = row.get(5).ok().flatten();
            let status: String = row.get(6).map_err(db(what))?;
            let duration: Option<i64> = row.get(7).map_err(db(what))?;
            let Some(&i) = index.get(&id) else { continue };
            let Some(sid) = CallSid::new(sid) else {
                continue;
            };
            let direction =
                ActualDirection::from_stored(actual.as_deref(), &CallDirection::parse(&direction));
            let display_status = DisplayStatus::from_stored(
                display.as_deref(),
                &CallStatus::parse(&status),
                duration.map_or(0, |d| u32::try_from(d).unwrap_or(0)),
            );
            let start_time = parse_optional_time(start, || format!("call {sid}"))?;
            states[i].rest.newest_root = Some(NewestRoot {
                start_time,
                sid,
                direction,
                display_status,
            });
        }
    }
    crate::texts::add_totals(conn, &mut states, &lookup.exclude_texts)?;
    Ok(states)
}

fn parse_optional_time(
    text: Option<String>,
    what: impl FnOnce() -> String,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    match text {
        None => Ok(None),
        Some(text) => time::parse(&text)
            .map(Some)
            .ok_or_else(|| StoreError::Backend {
                message: format!(
                    "{} has a start time that is not a timestamp: {text:?}",
                    what()
                ),
                source: None,
            }),
    }
}

/// `Store::read_cursor`.
pub(crate) fn read_cursor(conn: &Connection, name: &str) -> Result<Option<String>, StoreError> {
    let what = || format!("reading the sync cursor {name:?}");
    conn.prepare_cached("SELECT value FROM sync_cursors WHERE name = ?1")
        .map_err(db(what()))?
        .query_row([name], |r| r.get(0))
        .optional()
        .map_err(db(what()))
}

/// `Store::unfinished_calls`.
pub(crate) fn unfinished_calls(
    conn: &Connection,
    query: &UnfinishedQuery,
) -> Result<Vec<StoredCall>, StoreError> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m
         WHERE m.status NOT IN ('completed', 'busy', 'failed', 'no-answer', 'canceled')
           AND m.unfollowed_at IS NULL
           AND (m.refresh_due_at IS NULL OR m.refresh_due_at <= ?2)
           AND (?3 IS NULL OR m.start_time IS NULL OR m.start_time < ?3)
         ORDER BY m.start_time IS NULL DESC, m.start_time DESC, m.twilio_sid DESC
         LIMIT ?1"
    );
    query_calls(
        conn,
        &sql,
        params![
            i64::from(query.limit),
            time::format(&query.due_at),
            query.started_before.as_ref().map(time::format),
        ],
        "loading the unfinished calls",
    )
}

/// A `WHERE` clause over `conversations cv` and its parameters, in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    pub(crate) clauses: Vec<String>,
    pub(crate) params: Vec<rusqlite::types::Value>,
}

impl Filter {
    pub(crate) fn param(&mut self, value: impl Into<rusqlite::types::Value>) -> &'static str {
        self.params.push(value.into());
        "?"
    }

    fn one_of(&mut self, expression: &str, values: &[&str]) {
        let marks: Vec<&str> = values.iter().map(|v| self.param(v.to_string())).collect();
        self.clauses
            .push(format!("{expression} IN ({})", marks.join(", ")));
    }

    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// `%text%` for `LIKE ... ESCAPE '\'`, with the wildcards of `text` escaped.
fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Up to this many matches, a filtered page is read through the filter's
/// index and sorted; above, by walking the list's order (see
/// [`conversation_filter`]).
const SORT_MATCHES_UP_TO: i64 = 5_000;

/// The filters of a conversations query, in SQL.
///
/// With `use_indexes`, the direction and status expressions are exactly
/// those of `idx_conversations_last_direction` and
/// `idx_conversations_last_status`, so SQLite reads the matches from them
/// (the count, and a page of few matches, which it then sorts). Without,
/// they are written `+json_extract(...)`, which keeps SQLite from choosing
/// those indexes: it walks `idx_conversations_activity` in the list's order
/// and stops at the page's last row, which is faster when many
/// conversations match (the indexes cannot give the order for a list of
/// several values).
pub(crate) fn conversation_filter(query: &ConversationQuery, use_indexes: bool) -> Filter {
    let indexed = if use_indexes { "" } else { "+" };
    let mut f = Filter::default();
    if let Some(search) = &query.search {
        // The trigram index (migration 11) narrows the contacts read to
        // those holding a search term; the conditions below decide.
        let narrowed = match search.trigram_terms() {
            Some(terms) => {
                let phrases: Vec<String> = terms.iter().map(|t| format!("\"{t}\"")).collect();
                let mark = f.param(phrases.join(" OR "));
                format!(
                    "s.id IN (SELECT rowid FROM contact_search WHERE contact_search MATCH {mark}) AND "
                )
            }
            None => String::new(),
        };
        let mut matches = Vec::new();
        for digits in &search.digits {
            let mark = f.param(contains_pattern(digits));
            matches.push(format!("s.phone_number LIKE {mark} ESCAPE '\\'"));
        }
        let mut on_calls = String::new();
        if !search.text.is_empty() {
            let pattern = contains_pattern(&search.text);
            for column in [
                "s.display_name",
                "s.formatted_number",
                "s.phone_number",
                "s.company_name",
                "s.notes",
            ] {
                let mark = f.param(pattern.clone());
                matches.push(format!("{column} LIKE {mark} ESCAPE '\\'"));
            }
            let mark = f.param(pattern.clone());
            matches.push(format!(
                "EXISTS (SELECT 1 FROM json_each(s.tags) t WHERE t.value LIKE {mark} ESCAPE '\\')"
            ));
            let (notes, tag) = (f.param(pattern.clone()), f.param(pattern.clone()));
            let said = f.param(pattern);
            on_calls = format!(
                " OR cv.id IN (SELECT m.conversation_id FROM messages m
                   WHERE (m.notes IS NOT NULL OR m.tags <> '[]')
                     AND (m.notes LIKE {notes} ESCAPE '\\'
                          OR EXISTS (SELECT 1 FROM json_each(m.tags) t
                                     WHERE t.value LIKE {tag} ESCAPE '\\')))
                 OR cv.id IN (SELECT m.conversation_id
                   FROM transcripts t
                   LEFT JOIN recordings r ON r.sid = t.recording_sid AND r.deleted_at IS NULL
                   JOIN messages m ON m.twilio_sid = coalesce(t.call_sid, r.call_sid)
                   WHERE t.text LIKE {said} ESCAPE '\\')"
            );
        }
        if !matches.is_empty() {
            f.clauses.push(format!(
                "(cv.contact_id IN (SELECT s.id FROM contacts s WHERE {narrowed}({})){on_calls})",
                matches.join(" OR ")
            ));
        }
    }
    if let Some(values) = query.direction_values() {
        f.one_of(
            &format!("{indexed}json_extract(cv.metadata, '$.last_call_direction')"),
            values,
        );
    }
    if let Some(status) = query.status {
        f.one_of(
            &format!("{indexed}json_extract(cv.metadata, '$.last_display_status')"),
            status.display_statuses(),
        );
    }
    if let Some(tag) = &query.tag {
        let (on_contact, on_call) = (f.param(tag.clone()), f.param(tag.clone()));
        f.clauses.push(format!(
            "(cv.contact_id IN (SELECT s.id FROM contacts s, json_each(s.tags) t
                                WHERE s.tags <> '[]' AND cv_fold(t.value) = cv_fold({on_contact}))
              OR cv.id IN (SELECT m.conversation_id FROM messages m, json_each(m.tags) t
                           WHERE (m.notes IS NOT NULL OR m.tags <> '[]')
                             AND cv_fold(t.value) = cv_fold({on_call})))"
        ));
    }
    if query.has_recording {
        f.clauses.push(
            "cv.id IN (SELECT m.conversation_id FROM messages m WHERE m.recording_url IS NOT NULL)"
                .to_owned(),
        );
    }
    match query.kinds {
        ThreadKinds::All => {}
        ThreadKinds::Calls => f
            .clauses
            .push("CAST(json_extract(cv.metadata, '$.total_calls') AS INTEGER) > 0".to_owned()),
        ThreadKinds::Texts => f
            .clauses
            .push("CAST(json_extract(cv.metadata, '$.total_messages') AS INTEGER) > 0".to_owned()),
    }
    if let Some(since) = &query.since {
        let mark = f.param(time::format(since));
        f.clauses.push(format!("cv.last_message_at >= {mark}"));
    }
    if let Some(until) = &query.until {
        let mark = f.param(time::format(until));
        f.clauses.push(format!("cv.last_message_at < {mark}"));
    }
    f
}

/// Where a segment of the list starts, over `conversations cv`.
///
/// The list is two segments in the index `idx_conversations_activity`
/// `(last_message_at DESC, id DESC)`: the rows with a `last_message_at`,
/// then those without (SQLite sorts NULL last in a descending order). A
/// cursor inside the first segment is a range on the index (a row value
/// comparison), the second segment an equality (`IS NULL`) ordered by id;
/// written as one `OR`, SQLite could only filter a walk from the top.
enum Start {
    /// `offset` rows into the whole list (which skips them in the index).
    Offset(i64),
    /// Rows with a `last_message_at` after `(at, id)`.
    After { at: String, id: i64 },
    /// Rows without a `last_message_at`, with an id below `before` if given.
    Unstarted { before: Option<i64> },
}

/// Up to `limit` rows of the list matching `filter`, from `start` on.
fn list_rows(
    conn: &Connection,
    filter: &Filter,
    start: &Start,
    limit: i64,
    what: &str,
) -> Result<Vec<(ConversationRecord, ContactRecord)>, StoreError> {
    let mut f = filter.clone();
    let mut offset = 0;
    match start {
        Start::Offset(n) => offset = *n,
        Start::After { at, id } => {
            let (at, id) = (f.param(at.clone()), f.param(*id));
            f.clauses
                .push(format!("(cv.last_message_at, cv.id) < ({at}, {id})"));
        }
        Start::Unstarted { before } => {
            f.clauses.push("cv.last_message_at IS NULL".to_owned());
            if let Some(before) = before {
                let id = f.param(*before);
                f.clauses.push(format!("cv.id < {id}"));
            }
        }
    }
    let order = "ORDER BY cv.last_message_at DESC NULLS LAST, cv.id DESC";
    let where_clause = f.sql();
    let mut params = f.params;
    params.push(limit.into());
    let sql = if offset > 0 {
        // The skipped rows are only stepped over in the subquery, never
        // joined to their contact nor decoded; without filters it reads
        // `idx_conversations_activity` alone (a covering index: the order
        // and the id), not the table.
        params.push(offset.into());
        format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations cv
             JOIN contacts ct ON ct.id = cv.contact_id
             WHERE cv.id IN (SELECT cv.id FROM conversations cv {where_clause}
                             {order} LIMIT ? OFFSET ?)
             {order}"
        )
    } else {
        format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations cv
             JOIN contacts ct ON ct.id = cv.contact_id
             {where_clause}
             {order} LIMIT ?"
        )
    };
    query_conversations(conn, &sql, rusqlite::params_from_iter(params), what)
}

/// `Store::list_conversations` (in one read transaction, for a consistent page).
pub(crate) fn list_conversations(
    conn: &mut Connection,
    query: &ConversationQuery,
) -> Result<ConversationPage, StoreError> {
    query.validate()?;
    let what = "listing conversations";
    let count_filter = conversation_filter(query, true);
    let tx = conn.transaction().map_err(db(what))?;
    // Unfiltered, the number the triggers of migration 3 keep (counted
    // should its row be missing).
    let count_sql = if query.has_filters() {
        format!(
            "SELECT count(*) FROM conversations cv {}",
            count_filter.sql()
        )
    } else {
        "SELECT COALESCE((SELECT n FROM conversation_count WHERE id = 1),
                         (SELECT count(*) FROM conversations))"
            .to_owned()
    };
    let total: i64 = tx
        .prepare_cached(&count_sql)
        .map_err(db(what))?
        .query_row(
            rusqlite::params_from_iter(count_filter.params.iter()),
            |r| r.get(0),
        )
        .map_err(db(what))?;
    let filter = conversation_filter(query, total <= SORT_MATCHES_UP_TO);
    // One row more than the page says whether another page follows.
    let want = i64::from(query.limit) + 1;
    let mut records = match &query.after {
        None => {
            let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
            list_rows(&tx, &filter, &Start::Offset(offset), want, what)?
        }
        Some(cursor) => {
            let id = cursor.id().0;
            match cursor.last_message_at() {
                Some(at) => {
                    let at = time::format(&at);
                    let mut rows = list_rows(&tx, &filter, &Start::After { at, id }, want, what)?;
                    let missing = want - rows.len() as i64;
                    if missing > 0 {
                        let unstarted = Start::Unstarted { before: None };
                        rows.extend(list_rows(&tx, &filter, &unstarted, missing, what)?);
                    }
                    rows
                }
                None => {
                    let unstarted = Start::Unstarted { before: Some(id) };
                    list_rows(&tx, &filter, &unstarted, want, what)?
                }
            }
        }
    };
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let next_cursor = if records.len() > limit {
        records.truncate(limit);
        records.last().map(|(c, _)| ConversationCursor::after(c))
    } else {
        None
    };
    let conversations = views(&tx, records)?;
    tx.finish().map_err(db(what))?;
    Ok(ConversationPage {
        conversations,
        total: rows::non_negative(total),
        next_cursor,
    })
}

/// `Store::conversation`.
pub(crate) fn conversation(
    conn: &mut Connection,
    id: ConversationId,
) -> Result<ConversationView, StoreError> {
    let what = format!("loading conversation {id}");
    let tx = conn.transaction().map_err(db(what.clone()))?;
    let sql = format!(
        "SELECT {CONVERSATION_COLUMNS} FROM conversations cv
         JOIN contacts ct ON ct.id = cv.contact_id
         WHERE cv.id = ?1"
    );
    let records = query_conversations(&tx, &sql, [id.0], &what)?;
    let view = views(&tx, records)?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("conversation {id}")))?;
    tx.finish().map_err(db(what))?;
    Ok(view)
}

/// Adds each conversation's last interaction: the fold of the rows whose
/// root is its `last_root_sid`, all loaded in one query.
fn views(
    conn: &Connection,
    records: Vec<(ConversationRecord, ContactRecord)>,
) -> Result<Vec<ConversationView>, StoreError> {
    let roots: Vec<&str> = records
        .iter()
        .filter_map(|(c, _)| c.counters.last_root_sid.as_ref().map(CallSid::as_str))
        .collect();
    let mut by_root: HashMap<CallSid, Vec<StoredCall>> = HashMap::new();
    if !roots.is_empty() {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m
             WHERE m.root_call_sid IN (SELECT value FROM json_each(?1))"
        );
        let calls = query_calls(
            conn,
            &sql,
            [json_array(roots)],
            "loading the last interactions of conversations",
        )?;
        for call in calls {
            by_root.entry(call.root_sid.clone()).or_default().push(call);
        }
    }
    let text_sids: Vec<MessageSid> = records
        .iter()
        .filter_map(|(c, _)| c.counters.last_text_sid.clone())
        .collect();
    let mut last_texts = crate::texts::by_sid(conn, &text_sids)?;
    Ok(records
        .into_iter()
        .map(|(conversation, contact)| {
            let last_message = conversation
                .counters
                .last_root_sid
                .as_ref()
                .and_then(|sid| by_root.remove(sid))
                .and_then(|rows| fold_interactions(rows).into_iter().next());
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

/// `NotFound` unless conversation `id` exists.
pub(crate) fn require_conversation(
    conn: &Connection,
    id: ConversationId,
    what: &str,
) -> Result<(), StoreError> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM conversations WHERE id = ?1")
        .map_err(db(what))?
        .exists([id.0])
        .map_err(db(what))?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("conversation {id}")))
    }
}

/// `Store::conversation_calls`.
pub(crate) fn conversation_calls(
    conn: &mut Connection,
    id: ConversationId,
) -> Result<Vec<StoredCall>, StoreError> {
    let what = format!("loading the calls of conversation {id}");
    let tx = conn.transaction().map_err(db(what.clone()))?;
    require_conversation(&tx, id, &what)?;
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.conversation_id = ?1");
    let calls = query_calls(&tx, &sql, [id.0], &what)?;
    tx.finish().map_err(db(what))?;
    Ok(calls)
}

/// `Store::counts`.
pub(crate) fn counts(conn: &Connection) -> Result<StoreCounts, StoreError> {
    let what = "counting rows";
    let (contacts, conversations, calls, texts): (i64, i64, i64, i64) = conn
        .prepare_cached(
            "SELECT (SELECT count(*) FROM contacts),
                    (SELECT count(*) FROM conversations),
                    (SELECT count(*) FROM messages),
                    (SELECT count(*) FROM texts)",
        )
        .map_err(db(what))?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .map_err(db(what))?;
    Ok(StoreCounts {
        contacts: rows::non_negative(contacts),
        conversations: rows::non_negative(conversations),
        calls: rows::non_negative(calls),
        texts: rows::non_negative(texts),
    })
}

/// `Store::health`.
pub(crate) fn health(conn: &Connection) -> Result<(), StoreError> {
    conn.prepare_cached("SELECT 1")
        .map_err(db("checking the database answers"))?
        .query_row([], |r| r.get::<_, i64>(0))
        .map_err(db("checking the database answers"))?;
    Ok(())
}

// ---------------------------------------------------------------- writes

/// `IngestTx::apply`: the whole plan, inside the ingest's open
/// `BEGIN IMMEDIATE` transaction.
pub(crate) fn apply(tx: &Connection, plan: &Plan) -> Result<(), StoreError> {
    let now = time::format(&time::now());

    // 1. Contacts and conversations.
    let mut created: HashMap<&str, i64> = HashMap::with_capacity(plan.new_conversations.len());
    for new in &plan.new_conversations {
        let id = create_conversation(tx, new, &now)?;
        created.insert(new.key.as_str(), id);
    }

    // 2. Calls, and the recordings and transcripts stored before a new
    //    call arrived (a stored call keeps its columns: the plan carries
    //    them over).
    for write in &plan.calls {
        let conversation_id = resolve(tx, &created, &write.conversation)?;
        upsert_call(tx, write, conversation_id, &now)?;
    }
    crate::media::refresh_call_columns(
        tx,
        plan.calls
            .iter()
            .filter(|w| w.recording_url.is_none())
            .map(|w| w.call.sid.as_str()),
    )?;
    crate::texts::upsert_texts(tx, plan, &created, &now)?;

    // 3. Counters, and the newest root's display status (read from its
    //    row, written in step 2 when it changed) for the status filter.
    for update in &plan.counters {
        let id = resolve(tx, &created, &update.conversation)?;
        let c = &update.counters;
        let what = || format!("updating the counters of conversation {id}");
        let changed = tx
            .prepare_cached(
                "UPDATE conversations
                 SET last_message_at = ?2,
                     metadata = json_set(
                         CASE WHEN json_valid(metadata) AND json_type(metadata) = 'object'
                              THEN metadata ELSE '{}' END,
                         '$.total_calls', ?3,
                         '$.total_duration', ?4,
                         '$.last_call_direction', ?5,
                         '$.last_root_sid', ?6,
                         '$.last_display_status', ?8,
                         '$.total_messages', ?9,
                         '$.last_message_type', ?10,
                         '$.last_text_sid', ?11),
                     updated_at = ?7
                 WHERE id = ?1",
            )
            .map_err(db(what()))?
            .execute(params![
                id,
                c.last_message_at.as_ref().map(time::format),
                to_i64(c.total_calls, "total_calls")?,
                to_i64(c.total_duration, "total_duration")?,
                c.last_call_direction.map(ActualDirection::as_str),
                c.last_root_sid.as_ref().map(CallSid::as_str),
                now,
                c.last_display_status.as_ref().map(DisplayStatus::as_str),
                to_i64(c.total_messages, "total_messages")?,
                c.last_message_type.map(MessageType::as_str),
                c.last_text_sid.as_ref().map(MessageSid::as_str),
            ])
            .map_err(db(what()))?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("conversation {id}")));
        }
    }

    // 4. Conversations left empty, and then their contacts.
    for id in &plan.removed {
        let what = || format!("removing the empty conversation {id}");
        let contact: Option<i64> = tx
            .prepare_cached(
                "DELETE FROM conversations
                 WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM messages WHERE conversation_id = ?1)
                   AND NOT EXISTS (SELECT 1 FROM texts WHERE conversation_id = ?1)
                 RETURNING contact_id",
            )
            .map_err(db(what()))?
            .query_row([id.0], |r| r.get(0))
            .optional()
            .map_err(db(what()))?;
        if let Some(contact) = contact {
            tx.prepare_cached(
                "DELETE FROM contacts
                 WHERE id = ?1 AND edited_at IS NULL
                   AND NOT EXISTS (SELECT 1 FROM conversations WHERE contact_id = ?1)",
            )
            .map_err(db(what()))?
            .execute([contact])
            .map_err(db(what()))?;
        }
    }

    // 5. The statistics of the interactions the plan touched.
    crate::stats::apply(tx, plan, &created)
}

/// Step 1 for one new conversation: reuses the contact with the key and its
/// conversation when they exist. Returns the conversation's id.
fn create_conversation(
    conn: &Connection,
    new: &NewConversation,
    now: &str,
) -> Result<i64, StoreError> {
    let what = || format!("creating the conversation of {:?}", new.key);
    conn.prepare_cached(
        "INSERT INTO contacts (phone_number, formatted_number, display_name, metadata,
                               created_at, updated_at)
         VALUES (?1, ?2, ?2, '{}', ?3, ?3)
         ON CONFLICT (phone_number) DO NOTHING",
    )
    .map_err(db(what()))?
    .execute(params![new.key, new.display, now])
    .map_err(db(what()))?;
    let contact: i64 = conn
        .prepare_cached("SELECT id FROM contacts WHERE phone_number = ?1")
        .map_err(db(what()))?
        .query_row([&new.key], |r| r.get(0))
        .map_err(db(what()))?;
    let existing: Option<i64> = conn
        .prepare_cached("SELECT id FROM conversations WHERE contact_id = ?1 ORDER BY id LIMIT 1")
        .map_err(db(what()))?
        .query_row([contact], |r| r.get(0))
        .optional()
        .map_err(db(what()))?;
    if let Some(id) = existing {
        return Ok(id);
    }
    conn.prepare_cached(
        "INSERT INTO conversations (contact_id, external_id, subject, status, metadata,
                                    created_at, updated_at)
         VALUES (?1, ?2, ?3, 'active', '{}', ?4, ?4)
         RETURNING id",
    )
    .map_err(db(what()))?
    .query_row(params![contact, new.external_id, new.subject, now], |r| {
        r.get(0)
    })
    .map_err(db(what()))
}

/// The conversation id a plan entry refers to.
pub(crate) fn resolve(
    conn: &Connection,
    created: &HashMap<&str, i64>,
    conversation: &ConversationRef,
) -> Result<i64, StoreError> {
    match conversation {
        ConversationRef::Existing(id) => Ok(id.0),
        ConversationRef::New(key) => match created.get(key.as_str()) {
            Some(id) => Ok(*id),
            // Not created by this plan: accept a conversation stored under the key.
            None => conn
                .prepare_cached(
                    "SELECT cv.id FROM conversations cv JOIN contacts ct ON ct.id = cv.contact_id
                     WHERE ct.phone_number = ?1 ORDER BY cv.id LIMIT 1",
                )
                .map_err(db(format!("finding the conversation of {key:?}")))?
                .query_row([key], |r| r.get(0))
                .optional()
                .map_err(db(format!("finding the conversation of {key:?}")))?
                .ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "the plan writes to a new conversation {key:?} it does not create"
                    ))
                }),
        },
    }
}

/// Step 2 for one call: insert, or update every column but `created_at`.
fn upsert_call(
    conn: &Connection,
    write: &CallWrite,
    conversation_id: i64,
    now: &str,
) -> Result<(), StoreError> {
    let call = &write.call;
    let what = || format!("writing call {}", call.sid);
    // The record is kept apart, compact (`raw_record`).
    let (metadata, record) = write.metadata_and_raw_json();
    let record = crate::raw_record::encode(&record).map_err(|e| {
        StoreError::backend(format!("compressing the record of call {}", call.sid), e)
    })?;
    conn.prepare_cached(
        "INSERT INTO messages (conversation_id, twilio_sid, direction, status, from_number,
                               to_number, duration, price, price_unit, start_time, end_time,
                               recording_url, parent_call_sid, root_call_sid, metadata,
                               created_at, updated_at, raw_zstd)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16, ?17)
         ON CONFLICT (twilio_sid) DO UPDATE SET
             conversation_id = excluded.conversation_id,
             direction = excluded.direction,
             status = excluded.status,
             from_number = excluded.from_number,
             to_number = excluded.to_number,
             duration = excluded.duration,
             price = excluded.price,
             price_unit = excluded.price_unit,
             start_time = excluded.start_time,
             end_time = excluded.end_time,
             recording_url = excluded.recording_url,
             parent_call_sid = excluded.parent_call_sid,
             root_call_sid = excluded.root_call_sid,
             metadata = excluded.metadata,
             raw_zstd = excluded.raw_zstd,
             updated_at = excluded.updated_at",
    )
    .map_err(db(what()))?
    .execute(params![
        conversation_id,
        call.sid.as_str(),
        call.direction.as_str(),
        call.status.as_str(),
        call.from.as_deref().unwrap_or(""),
        call.to.as_deref().unwrap_or(""),
        call.duration.map(i64::from),
        call.price.map(|p| p.to_string()),
        call.price_unit,
        call.start_time.as_ref().map(time::format),
        call.end_time.as_ref().map(time::format),
        write.recording_url,
        call.parent_call_sid.as_ref().map(CallSid::as_str),
        write.root_sid.as_str(),
        metadata,
        now,
        record,
    ])
    .map_err(db(what()))?;
    Ok(())
}

/// `IngestTx::write_cursor` (and `Store::write_cursor`, in a transaction
/// of its own).
pub(crate) fn write_cursor(conn: &Connection, name: &str, value: &str) -> Result<(), StoreError> {
    let what = || format!("writing the sync cursor {name:?}");
    conn.prepare_cached(
        "INSERT INTO sync_cursors (name, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .map_err(db(what()))?
    .execute(params![name, value, time::format(&time::now())])
    .map_err(db(what()))?;
    Ok(())
}

/// `IngestTx::record_refresh`.
pub(crate) fn record_refresh(
    conn: &Connection,
    updates: &[RefreshUpdate],
) -> Result<(), StoreError> {
    let what = "recording refresh attempts";
    let mut stmt = conn
        .prepare_cached(
            "UPDATE messages SET refresh_attempts = ?2, refresh_due_at = ?3, unfollowed_at = ?4
             WHERE twilio_sid = ?1
               AND status NOT IN ('completed', 'busy', 'failed', 'no-answer', 'canceled')",
        )
        .map_err(db(what))?;
    for update in updates {
        let state = &update.state;
        stmt.execute(params![
            update.sid.as_str(),
            i64::from(state.attempts),
            state.due_at.as_ref().map(time::format),
            state.unfollowed_at.as_ref().map(time::format),
        ])
        .map_err(db(what))?;
    }
    Ok(())
}

/// `Store::messages`: the page's roots by keyset, then their legs.
pub(crate) fn messages(
    conn: &mut Connection,
    id: ConversationId,
    query: &MessageQuery,
) -> Result<MessagePage, StoreError> {
    let what = format!("loading the messages of conversation {id}");
    let tx = conn.transaction().map_err(db(what.clone()))?;
    require_conversation(&tx, id, &what)?;
    // One root more than the page says whether another page follows. The
    // order is `newest_first`: started calls by start time, then SID, both
    // descending; calls without a start time last (SQLite sorts NULL as
    // the smallest value, so `DESC` puts them last, and the walk follows
    // `idx_messages_conversation_totals`).
    let want = i64::from(query.limit) + 1;
    let (after_at, after_sid) = match &query.after {
        Some(c) => (
            c.start_time().as_ref().map(time::format),
            Some(c.sid().to_owned()),
        ),
        None => (None, None),
    };
    let root_sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m
         WHERE m.conversation_id = ?1 AND m.root_call_sid = m.twilio_sid
           AND (?3 IS NULL
                OR (?2 IS NOT NULL AND (m.start_time IS NULL
                                        OR (m.start_time, m.twilio_sid) < (?2, ?3)))
                OR (?2 IS NULL AND m.start_time IS NULL AND m.twilio_sid < ?3))
         ORDER BY m.start_time DESC, m.twilio_sid DESC
         LIMIT ?4"
    );
    let mut roots = query_calls(
        &tx,
        &root_sql,
        params![id.0, after_at, after_sid, want],
        &what,
    )?;
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let more = roots.len() > limit;
    roots.truncate(limit);
    let mut calls = roots;
    if !calls.is_empty() {
        let list = json_array(calls.iter().map(|c| c.call.sid.as_str()));
        let legs_sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m
             WHERE m.conversation_id = ?1
               AND m.root_call_sid IN (SELECT value FROM json_each(?2))
               AND m.root_call_sid <> m.twilio_sid"
        );
        let legs = query_calls(&tx, &legs_sql, params![id.0, list], &what)?;
        calls.extend(legs);
    }
    tx.finish().map_err(db(what))?;
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

/// `Store::contact`.
pub(crate) fn contact(conn: &Connection, id: i64) -> Result<ContactRecord, StoreError> {
    let what = format!("loading contact {id}");
    let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts ct WHERE ct.id = ?1");
    let mut stmt = conn.prepare_cached(&sql).map_err(db(what.clone()))?;
    let mut rows = stmt.query([id]).map_err(db(what.clone()))?;
    match rows.next().map_err(db(what))? {
        Some(row) => rows::contact(row),
        None => Err(StoreError::NotFound(format!("contact {id}"))),
    }
}

/// `Store::contacts_page`.
pub(crate) fn contacts_page(
    conn: &Connection,
    after: i64,
    limit: u32,
) -> Result<Vec<ContactRecord>, StoreError> {
    let what = "listing contacts";
    let sql = format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts ct WHERE ct.id > ?1 ORDER BY ct.id LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db(what))?;
    let mut rows = stmt
        .query(params![after, i64::from(limit)])
        .map_err(db(what))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db(what))? {
        out.push(rows::contact(row)?);
    }
    Ok(out)
}

/// `IngestTx::ensure_contact`.
pub(crate) fn ensure_contact(
    conn: &Connection,
    key: &str,
    display: &str,
) -> Result<i64, StoreError> {
    let what = format!("creating the contact {key:?}");
    let now = time::format(&time::now());
    conn.prepare_cached(
        "INSERT INTO contacts (phone_number, formatted_number, display_name, metadata,
                               created_at, updated_at)
         VALUES (?1, ?2, ?2, '{}', ?3, ?3)
         ON CONFLICT (phone_number) DO NOTHING",
    )
    .map_err(db(what.clone()))?
    .execute(params![key, display, now])
    .map_err(db(what.clone()))?;
    conn.prepare_cached("SELECT id FROM contacts WHERE phone_number = ?1")
        .map_err(db(what.clone()))?
        .query_row([key], |r| r.get(0))
        .map_err(db(what))
}

/// `Store::message`: the root row `id` and its legs, folded.
pub(crate) fn message(
    conn: &mut Connection,
    id: i64,
) -> Result<(ConversationId, Interaction), StoreError> {
    let what = format!("loading message {id}");
    let tx = conn.transaction().map_err(db(what.clone()))?;
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m
         WHERE m.root_call_sid = (SELECT r.twilio_sid FROM messages r
                                  WHERE r.id = ?1 AND r.root_call_sid = r.twilio_sid)"
    );
    let calls = query_calls(&tx, &sql, [id], &what)?;
    tx.finish().map_err(db(what))?;
    message_of(calls, id)
}

/// `Store::tags`.
pub(crate) fn tags(conn: &Connection) -> Result<Vec<TagCount>, StoreError> {
    let what = "listing tags";
    let mut stmt = conn
        .prepare_cached(
            "SELECT t.value, 1 FROM contacts s, json_each(s.tags) t WHERE s.tags <> '[]'
             UNION ALL
             SELECT t.value, 0 FROM messages m, json_each(m.tags) t
             WHERE (m.notes IS NOT NULL OR m.tags <> '[]')",
        )
        .map_err(db(what))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? == 1))
        })
        .map_err(db(what))?;
    let mut all = Vec::new();
    for row in rows {
        all.push(row.map_err(db(what))?);
    }
    Ok(count_tags(all))
}

/// `IngestTx::edit_contact`.
pub(crate) fn edit_contact(
    conn: &Connection,
    id: i64,
    edit: &ContactEdit,
    expected: Option<i64>,
    meta: &EditMeta,
) -> Result<ContactRecord, StoreError> {
    let current = contact(conn, id)?;
    check_version(
        &format!("contact {id}"),
        current.annotations.version,
        expected,
    )?;
    let after = edit.apply(&current.fields(), meta);
    let a = &after.annotations;
    let what = format!("editing contact {id}");
    conn.prepare_cached(
        "UPDATE contacts SET display_name = ?2, company_name = ?3, notes = ?4, tags = ?5,
                             edited_by = ?6, edited_at = ?7, version = ?8, updated_at = ?9
         WHERE id = ?1",
    )
    .map_err(db(what.clone()))?
    .execute(params![
        id,
        after
            .name
            .as_deref()
            .or(current.formatted_number.as_deref()),
        after.company_name,
        a.notes,
        json_array(a.tags.iter().map(String::as_str)),
        a.edited_by,
        a.edited_at.as_ref().map(time::format),
        a.version,
        time::format(&meta.at),
    ])
    .map_err(db(what))?;
    contact(conn, id)
}

/// `IngestTx::edit_call`.
pub(crate) fn edit_call(
    conn: &Connection,
    id: i64,
    edit: &CallEdit,
    expected: Option<i64>,
    meta: &EditMeta,
) -> Result<Annotations, StoreError> {
    let what = format!("editing message {id}");
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?1 AND m.root_call_sid = m.twilio_sid"
    );
    let current = query_calls(conn, &sql, [id], &what)?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("message {id}")))?;
    check_version(
        &format!("message {id}"),
        current.annotations.version,
        expected,
    )?;
    let after = edit.apply(&current.annotations, meta);
    conn.prepare_cached(
        "UPDATE messages SET notes = ?2, tags = ?3, edited_by = ?4, edited_at = ?5, version = ?6
         WHERE id = ?1",
    )
    .map_err(db(what.clone()))?
    .execute(params![
        id,
        after.notes,
        json_array(after.tags.iter().map(String::as_str)),
        after.edited_by,
        after.edited_at.as_ref().map(time::format),
        after.version,
    ])
    .map_err(db(what))?;
    Ok(after)
}

// ---------------------------------------------------------------- sync lock

/// This machine's host name, as lock holders record it.
pub(crate) fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().replace(char::is_whitespace, "_"))
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// The names of this process's stores that have been dropped.
static DROPPED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// The name a store's sync lock leases are taken under, unique among the
/// stores of every process: `pid <pid> on <host> store <n> at <time>`
/// (the time to the microsecond). The pid and host let another process on
/// the same machine see that a holder has died; this process remembers
/// the names of its stores that have been dropped ([`holder_is_dead`]).
#[derive(Debug)]
pub(crate) struct LockHolder {
    name: String,
}

impl LockHolder {
    /// A new name.
    pub(crate) fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            name: format!(
                "pid {} on {} store {} at {}",
                std::process::id(),
                this_host(),
                NEXT.fetch_add(1, Ordering::Relaxed),
                time::format(&time::now())
            ),
        }
    }

    /// The name stored in `sync_locks.holder`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for LockHolder {
    /// Remembered as gone (a few dozen bytes per store dropped).
    fn drop(&mut self) {
        DROPPED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(std::mem::take(&mut self.name));
    }
}

/// Whether a lock holder (`pid <pid> on <host> ...`) is gone: a store of
/// this process that has been dropped without releasing its lease (the
/// release is a write, and fails on a full disk), or a process of this
/// machine that no longer runs. A holder with this process's pid that this
/// process did not name runs in another pid namespace (another container
/// with the same host name) and is alive. Holders of other machines, or on
/// systems without `/proc`, are never judged dead by their pid: their
/// lease must run out.
pub(crate) fn holder_is_dead(holder: &str) -> bool {
    if DROPPED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(holder)
    {
        return true;
    }
    let mut words = holder.split_whitespace();
    let (Some("pid"), Some(pid), Some("on"), Some(host)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if host != this_host() || pid == std::process::id() || !Path::new("/proc/self").exists() {
        return false;
    }
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// The name of the one sync lock.
const SYNC_LOCK: &str = "sync";

/// A lease on the sync lock: who holds it and for how long each renewal
/// extends it.
#[derive(Debug)]
pub(crate) struct SyncLease<'a> {
    pub(crate) holder: &'a str,
    pub(crate) duration: chrono::Duration,
}

impl SyncLease<'_> {
    fn expiry(&self) -> String {
        time::format(&(time::now() + self.duration))
    }

    /// Extends the lease, inside the caller's transaction; a lease another
    /// holder has taken over is [`StoreError::LockLost`].
    pub(crate) fn renew(&self, conn: &Connection) -> Result<(), StoreError> {
        let renewed = conn
            .prepare_cached("UPDATE sync_locks SET expires_at = ?3 WHERE name = ?1 AND holder = ?2")
            .map_err(db("renewing the sync lock"))?
            .execute(params![SYNC_LOCK, self.holder, self.expiry()])
            .map_err(db("renewing the sync lock"))?;
        if renewed == 0 {
            return Err(StoreError::LockLost(
                "its lease ran out and another process took the sync over; this run stops \
                 without writing its current page (the other run completes the work)"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// Takes the lock unless someone (this holder included) holds an
    /// unexpired lease.
    pub(crate) fn try_acquire(&self, conn: &mut Connection) -> Result<bool, StoreError> {
        let what = "taking the sync lock";
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db(what))?;
        let now = time::format(&time::now());
        let held: Option<String> = tx
            .prepare_cached("SELECT holder FROM sync_locks WHERE name = ?1 AND expires_at > ?2")
            .map_err(db(what))?
            .query_row(params![SYNC_LOCK, now], |r| r.get(0))
            .optional()
            .map_err(db(what))?;
        if let Some(holder) = held {
            if !holder_is_dead(&holder) {
                tracing::debug!(%holder, "the sync lock is held");
                return Ok(false);
            }
            tracing::warn!(%holder, "taking over the sync lock of a holder that no longer runs");
        }
        tx.prepare_cached(
            "INSERT INTO sync_locks (name, holder, acquired_at, expires_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                 acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
        )
        .map_err(db(what))?
        .execute(params![SYNC_LOCK, self.holder, now, self.expiry()])
        .map_err(db(what))?;
        tx.commit().map_err(db(what))?;
        Ok(true)
    }

    /// Releases the lock if this holder has it.
    pub(crate) fn release(&self, conn: &Connection) -> Result<(), StoreError> {
        conn.prepare_cached("DELETE FROM sync_locks WHERE name = ?1 AND holder = ?2")
            .map_err(db("releasing the sync lock"))?
            .execute(params![SYNC_LOCK, self.holder])
            .map_err(db("releasing the sync lock"))?;
        Ok(())
    }
}
