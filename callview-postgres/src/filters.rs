//! The filters of `list_conversations` (`ConversationQuery`'s search,
//! direction, status and time range) as SQL over `conversations v`, and the
//! `last_display_status` the status filter reads.
//!
//! `conversations.metadata.last_display_status` is the display status of the
//! newest root call (the row named by `metadata.last_root_sid`), as the
//! planner computed it; `apply` writes it with the counters; migration 3
//! filled it in for conversations stored before.

use std::cmp::Reverse;

use callview_core::model::ThreadKinds;
use callview_core::store::{ConversationCursor, ConversationQuery};
use chrono::NaiveDateTime;

use crate::rows::to_db_time;

/// A parameter of a filter.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Param {
    Text(String),
    Texts(Vec<String>),
    Time(NaiveDateTime),
    Int(i64),
    Ids(Vec<i32>),
}

/// Where a segment of the conversations list starts.
///
/// The list (`last_message_at DESC NULLS LAST, id DESC`, the order of
/// `idx_conversations_activity`) is two segments of that index: the rows
/// with a `last_message_at`, then those without. A position inside the
/// first is a row comparison the index scan starts at; the second is an
/// `IS NULL` index condition ordered by id. (One `OR` of the two would be a
/// filter over a walk from the top of the index: the scan a cursor avoids.)
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Start {
    /// From the top (then `OFFSET`).
    Top,
    /// Rows with a `last_message_at` after `(at, id)`.
    After { at: NaiveDateTime, id: i64 },
    /// Rows without a `last_message_at`, with an id below `before` if given.
    Unstarted { before: Option<i64> },
}

/// One conversation's place in the list's order (`last_message_at DESC
/// NULLS LAST, id DESC`): smaller comes first.
fn list_order(last_message_at: Option<NaiveDateTime>, id: i64) -> impl Ord {
    (
        last_message_at.is_none(),
        Reverse(last_message_at),
        Reverse(id),
    )
}

/// The ids of one page of the list, cut from `matches` (the `(id,
/// last_message_at)` of every conversation the filter keeps, in any order):
/// in the list's order, starting just after `after` (or `offset` rows in),
/// at most `want` of them. What `list_rows` does in SQL, for matches
/// already in hand.
pub(crate) fn page_of(
    mut matches: Vec<(i32, Option<NaiveDateTime>)>,
    after: Option<&ConversationCursor>,
    offset: u64,
    want: usize,
) -> Vec<i32> {
    let key = |&(id, at): &(i32, Option<NaiveDateTime>)| list_order(at, i64::from(id));
    let start = match after {
        Some(cursor) => {
            let position = list_order(cursor.last_message_at().map(to_db_time), cursor.id().0);
            matches.retain(|m| key(m) > position);
            0
        }
        None => usize::try_from(offset).unwrap_or(usize::MAX),
    };
    // Only the rows up to the page's end are sorted: a broad search's
    // matches are many, a page is few.
    let end = start.saturating_add(want);
    if end < matches.len() {
        matches.select_nth_unstable_by_key(end, key);
        matches.truncate(end);
    }
    matches.sort_unstable_by_key(key);
    matches.into_iter().skip(start).map(|(id, _)| id).collect()
}

/// A `WHERE` clause (empty without filters) and its parameters, numbered
/// from `$1`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    clauses: Vec<String>,
    pub(crate) params: Vec<Param>,
    /// The search's matching conversations as one `SELECT` of their
    /// `(id, last_message_at)`, when the filter has a search.
    search_keys: Option<String>,
}

impl Filter {
    /// Adds a parameter; its placeholder (`$n`).
    pub(crate) fn param(&mut self, value: Param) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    /// Adds a condition (its parameters added with [`Filter::param`]).
    pub(crate) fn and(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// `WHERE ...`, or nothing.
    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// A `SELECT` of the `(id, last_message_at)` of the conversations the
    /// filter keeps: the list's order key. A search alone is its own
    /// `UNION`, which reads those columns where it finds the matches (each
    /// id is a stored conversation's), so no match is looked up twice.
    pub(crate) fn keys_sql(&self) -> String {
        match &self.search_keys {
            Some(union) if self.clauses.len() == 1 => union.clone(),
            _ => format!(
                "SELECT v.id, v.last_message_at FROM conversations v {}",
                self.sql()
            ),
        }
    }

    /// The number the next parameter gets (`$n`).
    pub(crate) fn next(&self) -> usize {
        self.params.len() + 1
    }

    /// The conversations `ids` (found beforehand by the filter they replace).
    pub(crate) fn ids(ids: Vec<i32>) -> Filter {
        let mut f = Filter::default();
        let p = f.param(Param::Ids(ids));
        f.and(format!("v.id = ANY({p})"));
        f
    }

    /// Keeps only the rows from `start` on.
    pub(crate) fn start_at(&mut self, start: &Start) {
        match start {
            Start::Top => {}
            Start::After { at, id } => {
                let at = self.param(Param::Time(*at));
                let id = self.param(Param::Int(*id));
                self.clauses
                    .push(format!("(v.last_message_at, v.id) < ({at}, {id})"));
            }
            Start::Unstarted { before } => {
                self.clauses.push("v.last_message_at IS NULL".to_owned());
                if let Some(before) = before {
                    let id = self.param(Param::Int(*before));
                    self.clauses.push(format!("v.id < {id}"));
                }
            }
        }
    }
}

/// `%text%` for `LIKE`/`ILIKE` (backslash escapes), with the wildcards of
/// `text` escaped.
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

/// A contact's searchable fields in one text: the expression of
/// `idx_contacts_search` (migration 12, a pg_trgm index), over `s`.
const CONTACT_TEXT: &str =
    "(coalesce(s.display_name, '') || ' ' || coalesce(s.formatted_number, '') || ' ' \
     || coalesce(s.phone_number, '') || ' ' || coalesce(s.company_name, '') || ' ' \
     || coalesce(s.notes, '') || ' ' || coalesce(s.tags::text, ''))";

/// A call's notes and tags in one text: the expression of
/// `idx_messages_annotations_search`, over `m`.
const CALL_NOTES_TEXT: &str = "(coalesce(m.notes, '') || ' ' || coalesce(m.tags::text, ''))";

/// A conversation's external id as the expression of
/// `idx_conversations_external_id_text` (migration 13), over `k`: an
/// expression rather than the column, so that equality lookups of external
/// ids never pick the trigram index.
const EXTERNAL_ID_TEXT: &str = "(k.external_id || '')";

/// The filters of `query` over `conversations v`.
///
/// A search adds, before its exact conditions, the `ILIKE` of each term on
/// the texts the trigram indexes of migration 12 hold
/// ([`Search::trigram_terms`](callview_core::store::Search::trigram_terms)):
/// the index finds the candidates (a superset), the exact conditions decide.
/// Without those indexes the extra condition costs a little per row read.
pub(crate) fn conversation_filter(query: &ConversationQuery) -> Filter {
    let mut f = Filter::default();
    if let Some(search) = &query.search {
        let mut matches = Vec::new();
        // Conditions over `conversations k`, and selects of conversation
        // ids from other tables.
        let mut by_conversation: Vec<String> = Vec::new();
        let mut by_message: Vec<String> = Vec::new();
        let mut narrow_contacts = String::new();
        let mut narrow_calls = String::new();
        if let Some(terms) = search.trigram_terms() {
            let marks: Vec<String> = terms
                .iter()
                .map(|t| f.param(Param::Text(contains_pattern(t))))
                .collect();
            let any = |text: &str| {
                let each: Vec<String> = marks.iter().map(|m| format!("{text} ILIKE {m}")).collect();
                format!("({}) AND ", each.join(" OR "))
            };
            narrow_contacts = any(CONTACT_TEXT);
            narrow_calls = any(CALL_NOTES_TEXT);
        }
        for digits in &search.digits {
            let p = f.param(Param::Text(contains_pattern(digits)));
            matches.push(format!("s.phone_number LIKE {p}"));
        }
        if !search.text.is_empty() {
            let p = f.param(Param::Text(contains_pattern(&search.text)));
            for column in [
                "s.display_name",
                "s.formatted_number",
                "s.phone_number",
                "s.company_name",
                "s.notes",
            ] {
                matches.push(format!("{column} ILIKE {p}"));
            }
            matches.push(format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(s.tags) = 'array' THEN s.tags ELSE '[]'::jsonb END) t WHERE t ILIKE {p})"
            ));
            by_conversation.push(format!("{EXTERNAL_ID_TEXT} ILIKE {p}"));
            by_message.push(format!(
                "SELECT m.conversation_id FROM transcripts t \
                 LEFT JOIN recordings r ON r.sid = t.recording_sid AND r.deleted_at IS NULL \
                 JOIN messages m ON m.twilio_sid = coalesce(t.call_sid, r.call_sid) \
                 WHERE t.text ILIKE {p}"
            ));
            by_message.push(format!(
                "SELECT m.conversation_id FROM messages m \
                 WHERE (m.notes IS NOT NULL OR m.tags <> '[]'::jsonb) AND {narrow_calls}\
                   (m.notes ILIKE {p} OR EXISTS ( \
                        SELECT 1 FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(m.tags) = 'array' THEN m.tags ELSE '[]'::jsonb END) t WHERE t ILIKE {p}))"
            ));
        }
        if !matches.is_empty() {
            // The matching conversations, found once (each part through its
            // index), then looked up: an `OR` of subqueries per row would
            // test every conversation.
            by_conversation.insert(
                0,
                format!(
                    "k.contact_id = ANY(ARRAY( \
                     SELECT s.id FROM contacts s WHERE {narrow_contacts}({})))",
                    matches.join(" OR ")
                ),
            );
            let over_conversations = |columns: &str| -> Vec<String> {
                by_conversation
                    .iter()
                    .map(|c| format!("SELECT {columns} FROM conversations k WHERE {c}"))
                    .collect()
            };
            // The ids: the parts over other tables give them as they are.
            let mut ids = over_conversations("k.id");
            ids.extend(by_message.iter().cloned());
            f.clauses
                .push(format!("v.id = ANY(ARRAY({}))", ids.join(" UNION ")));
            // The order keys: those parts' conversations looked up once.
            let keys = "k.id, k.last_message_at";
            let mut with_keys = over_conversations(keys);
            if !by_message.is_empty() {
                with_keys.push(format!(
                    "SELECT {keys} FROM conversations k WHERE k.id = ANY(ARRAY({}))",
                    by_message.join(" UNION ")
                ));
            }
            f.search_keys = Some(with_keys.join(" UNION "));
        }
    }
    if let Some(tag) = &query.tag {
        let p = f.param(Param::Text(tag.clone()));
        f.clauses.push(format!(
            "(v.contact_id IN (SELECT s.id FROM contacts s, jsonb_array_elements_text(CASE WHEN jsonb_typeof(s.tags) = 'array' THEN s.tags ELSE '[]'::jsonb END) t \
                               WHERE s.tags <> '[]'::jsonb AND lower(t) = lower({p})) \
              OR v.id IN (SELECT m.conversation_id FROM messages m, \
                               jsonb_array_elements_text(CASE WHEN jsonb_typeof(m.tags) = 'array' THEN m.tags ELSE '[]'::jsonb END) t \
                          WHERE (m.notes IS NOT NULL OR m.tags <> '[]'::jsonb) \
                            AND lower(t) = lower({p})))"
        ));
    }
    if query.has_recording {
        f.clauses.push(
            "v.id IN (SELECT m.conversation_id FROM messages m WHERE m.recording_url IS NOT NULL)"
                .to_owned(),
        );
    }
    match query.kinds {
        ThreadKinds::All => {}
        ThreadKinds::Calls => f.clauses.push(
            // A positive count (any other value counts as none).
            "v.metadata->>'total_calls' ~ '^[1-9][0-9]*$'".to_owned(),
        ),
        ThreadKinds::Texts => f
            .clauses
            .push("v.metadata->>'total_messages' ~ '^[1-9][0-9]*$'".to_owned()),
    }
    if let Some(values) = query.direction_values() {
        let p = f.param(Param::Texts(
            values.iter().map(|v| (*v).to_owned()).collect(),
        ));
        f.clauses.push(format!(
            "v.metadata->>'last_call_direction' = ANY({p}::text[])"
        ));
    }
    if let Some(status) = query.status {
        let values = status.display_statuses();
        let p = f.param(Param::Texts(
            values.iter().map(|v| (*v).to_owned()).collect(),
        ));
        f.clauses.push(format!(
            "v.metadata->>'last_display_status' = ANY({p}::text[])"
        ));
    }
    if let Some(since) = query.since {
        let p = f.param(Param::Time(to_db_time(since)));
        f.clauses.push(format!("v.last_message_at >= {p}"));
    }
    if let Some(until) = query.until {
        let p = f.param(Param::Time(to_db_time(until)));
        f.clauses.push(format!("v.last_message_at < {p}"));
    }
    f
}

/// Binds a filter's parameters, in order, to a `sqlx` query.
macro_rules! bind_filter {
    ($query:expr, $filter:expr) => {{
        let mut query = $query;
        for param in &$filter.params {
            query = match param {
                $crate::filters::Param::Text(v) => query.bind(v.clone()),
                $crate::filters::Param::Texts(v) => query.bind(v.clone()),
                $crate::filters::Param::Time(v) => query.bind(*v),
                $crate::filters::Param::Int(v) => query.bind(*v),
                $crate::filters::Param::Ids(v) => query.bind(v.clone()),
            };
        }
        query
    }};
}
pub(crate) use bind_filter;

#[cfg(test)]
mod tests {
    use super::*;
    use callview_core::model::ConversationId;
    use callview_core::store::{Search, StatusFilter};
    use callview_core::{ActualDirection, Normalizer};

    #[test]
    fn no_filter_no_where() {
        let f = conversation_filter(&ConversationQuery::page(20, 0));
        assert_eq!(f.sql(), "");
        assert_eq!(f.next(), 1);
    }

    #[test]
    fn filters_are_numbered_in_order() {
        let query = ConversationQuery::page(20, 0)
            .with_search(Search::new("978-844", &Normalizer::default()))
            .with_direction(ActualDirection::Inbound)
            .with_status(StatusFilter::Missed);
        let f = conversation_filter(&query);
        let sql = f.sql();
        // The trigram terms first (the digits, the text), then the exact
        // conditions.
        assert!(
            sql.contains(&format!(
                "({CONTACT_TEXT} ILIKE $1 OR {CONTACT_TEXT} ILIKE $2) AND"
            )),
            "{sql}"
        );
        assert!(
            sql.contains(&format!("{CALL_NOTES_TEXT} ILIKE $1 OR")),
            "{sql}"
        );
        assert!(sql.contains("s.phone_number LIKE $3"), "{sql}");
        assert!(sql.contains("s.display_name ILIKE $4"), "{sql}");
        assert!(
            sql.contains("'last_call_direction' = ANY($5::text[])"),
            "{sql}"
        );
        assert!(
            sql.contains("'last_display_status' = ANY($6::text[])"),
            "{sql}"
        );
        assert_eq!(f.next(), 7);
        assert_eq!(f.params[0], Param::Text("%978844%".into()));
        assert_eq!(f.params[1], Param::Text("%978-844%".into()));
        assert_eq!(f.params[2], Param::Text("%978844%".into()));
        assert_eq!(f.params[3], Param::Text("%978-844%".into()));
    }

    #[test]
    fn a_search_alone_selects_its_matches_with_their_order_key() {
        let search = || Search::new("alice", &Normalizer::default());
        let alone = conversation_filter(&ConversationQuery::page(20, 0).with_search(search()));
        let sql = alone.keys_sql();
        assert!(
            sql.starts_with(
                "SELECT k.id, k.last_message_at FROM conversations k WHERE k.contact_id = ANY("
            ),
            "{sql}"
        );
        // The matches found through calls and transcripts carry the key too.
        assert!(
            sql.contains("UNION SELECT k.id, k.last_message_at FROM conversations k WHERE k.id = ANY(ARRAY(SELECT m.conversation_id FROM transcripts"),
            "{sql}"
        );
        assert!(!sql.contains("v."), "{sql}");
        // With another filter, the matches are looked up and filtered.
        let both = conversation_filter(
            &ConversationQuery::page(20, 0)
                .with_search(search())
                .with_status(StatusFilter::Busy),
        );
        let sql = both.keys_sql();
        assert!(
            sql.starts_with("SELECT v.id, v.last_message_at FROM conversations v WHERE v.id = ANY(ARRAY(SELECT k.id FROM"),
            "{sql}"
        );
        assert!(sql.contains("'last_display_status' = ANY("), "{sql}");
        // The ids found through calls and transcripts are not looked up again.
        assert!(
            sql.contains("UNION SELECT m.conversation_id FROM transcripts"),
            "{sql}"
        );
    }

    #[test]
    fn a_page_of_many_matches_is_the_page_of_the_whole_sorted_list() {
        // Ties, rows without activity and a shuffled order, against the
        // whole list sorted.
        let matches: Vec<(i32, Option<NaiveDateTime>)> = (1..=300)
            .map(|i: i32| {
                let at = (i % 7 != 0).then(|| {
                    chrono::DateTime::from_timestamp(1_770_000_000 + i64::from((i * 37) % 50), 0)
                        .unwrap()
                        .naive_utc()
                });
                ((i * 131) % 307, at)
            })
            .collect();
        let mut sorted = matches.clone();
        sorted.sort_by_key(|&(id, at)| (at.is_none(), Reverse(at), Reverse(id)));
        let ids: Vec<i32> = sorted.iter().map(|(id, _)| *id).collect();
        for (offset, want) in [(0, 21), (5, 21), (279, 21), (290, 21), (300, 5), (0, 400)] {
            let end = (offset + want).min(ids.len());
            let expected = ids.get(offset.min(ids.len())..end).unwrap_or_default();
            assert_eq!(
                page_of(matches.clone(), None, offset as u64, want),
                expected
            );
        }
        for at in [0, 10, 120, 150, 290, 299] {
            let (id, time) = sorted[at];
            let cursor =
                ConversationCursor::new(time.map(|t| t.and_utc()), ConversationId(i64::from(id)));
            let expected: Vec<i32> = ids[at + 1..].iter().copied().take(21).collect();
            assert_eq!(
                page_of(matches.clone(), Some(&cursor), 0, 21),
                expected,
                "after {at}"
            );
        }
    }

    #[test]
    fn pages_are_cut_in_the_list_order() {
        let at =
            |s: i64| chrono::DateTime::from_timestamp(1_770_000_000 + s, 0).map(|t| t.naive_utc());
        // Newest first, ties by id descending, never-active last by id descending.
        let matches = vec![
            (1, at(10)),
            (2, None),
            (3, at(30)),
            (4, at(10)),
            (5, None),
            (6, at(20)),
        ];
        let all = page_of(matches.clone(), None, 0, 100);
        assert_eq!(all, vec![3, 6, 4, 1, 5, 2]);
        assert_eq!(page_of(matches.clone(), None, 2, 3), vec![4, 1, 5]);
        assert_eq!(page_of(matches.clone(), None, 9, 3), Vec::<i32>::new());
        // After a cursor: strictly after its position, across the two segments.
        let cursor = |at: Option<i64>, id| {
            ConversationCursor::new(
                at.and_then(|s| chrono::DateTime::from_timestamp(1_770_000_000 + s, 0)),
                ConversationId(id),
            )
        };
        assert_eq!(
            page_of(matches.clone(), Some(&cursor(Some(10), 4)), 0, 3),
            vec![1, 5, 2]
        );
        assert_eq!(
            page_of(matches.clone(), Some(&cursor(Some(20), 6)), 0, 1),
            vec![4]
        );
        assert_eq!(
            page_of(matches.clone(), Some(&cursor(None, 5)), 0, 9),
            vec![2]
        );
        // A cursor at a position no match holds (its row no longer matches).
        assert_eq!(
            page_of(matches, Some(&cursor(Some(25), 99)), 0, 2),
            vec![6, 4]
        );
    }

    #[test]
    fn short_terms_are_not_narrowed() {
        let query =
            ConversationQuery::page(20, 0).with_search(Search::new("ab", &Normalizer::default()));
        let sql = conversation_filter(&query).sql();
        assert!(!sql.contains(CONTACT_TEXT), "{sql}");
        assert!(sql.contains("s.display_name ILIKE $1"), "{sql}");
    }

    #[test]
    fn starts_follow_the_filters() {
        let query = ConversationQuery::page(20, 0).with_status(StatusFilter::Busy);
        let mut f = conversation_filter(&query);
        let at = chrono::DateTime::from_timestamp(1_770_391_033, 0)
            .unwrap()
            .naive_utc();
        f.start_at(&Start::After { at, id: 7 });
        assert!(
            f.sql()
                .ends_with("AND (v.last_message_at, v.id) < ($2, $3)"),
            "{}",
            f.sql()
        );
        assert_eq!(f.params[2], Param::Int(7));
        let mut f = conversation_filter(&ConversationQuery::page(20, 0));
        f.start_at(&Start::Unstarted { before: Some(3) });
        assert_eq!(f.sql(), "WHERE v.last_message_at IS NULL AND v.id < $1");
        let mut f = conversation_filter(&ConversationQuery::page(20, 0));
        f.start_at(&Start::Top);
        assert_eq!(f.sql(), "");
    }

    #[test]
    fn wildcards_are_escaped() {
        assert_eq!(contains_pattern("50%_\\"), "%50\\%\\_\\\\%");
    }
}
