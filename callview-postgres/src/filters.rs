//! The filters of `list_conversations` (`ConversationQuery`'s search,
//! direction, status and time range) as SQL over `conversations v`, and the
//! `last_display_status` the status filter reads.
//!
//! `conversations.metadata.last_display_status` is the display status of the
//! newest root call (the row named by `metadata.last_root_sid`), as the
//! planner computed it; `apply` writes it with the counters; migration 3
//! filled it in for conversations stored before.

use callview_core::model::ThreadKinds;
use callview_core::store::ConversationQuery;
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

/// A `WHERE` clause (empty without filters) and its parameters, numbered
/// from `$1`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    clauses: Vec<String>,
    pub(crate) params: Vec<Param>,
    /// The search's matching conversation ids as one `SELECT` (the `UNION`
    /// its clause looks up), when the filter has a search.
    search_ids: Option<String>,
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

    /// A `SELECT` of the ids of the conversations the filter keeps. A search
    /// alone is its `UNION` of ids as is: every id it yields is a stored
    /// conversation's, so looking each up in `conversations` again (what
    /// the `WHERE` would do) only costs a probe per match.
    pub(crate) fn ids_sql(&self) -> String {
        match &self.search_ids {
            Some(union) if self.clauses.len() == 1 => {
                format!("SELECT found.id FROM ({union}) AS found(id)")
            }
            _ => format!("SELECT v.id FROM conversations v {}", self.sql()),
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
        let mut outside = Vec::new();
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
            outside.push(format!(
                "SELECT k.id FROM conversations k WHERE {EXTERNAL_ID_TEXT} ILIKE {p}"
            ));
            outside.push(format!(
                "SELECT m.conversation_id FROM transcripts t \
                 LEFT JOIN recordings r ON r.sid = t.recording_sid AND r.deleted_at IS NULL \
                 JOIN messages m ON m.twilio_sid = coalesce(t.call_sid, r.call_sid) \
                 WHERE t.text ILIKE {p}"
            ));
            outside.push(format!(
                "SELECT m.conversation_id FROM messages m \
                 WHERE (m.notes IS NOT NULL OR m.tags <> '[]'::jsonb) AND {narrow_calls}\
                   (m.notes ILIKE {p} OR EXISTS ( \
                        SELECT 1 FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(m.tags) = 'array' THEN m.tags ELSE '[]'::jsonb END) t WHERE t ILIKE {p}))"
            ));
        }
        if !matches.is_empty() {
            // The matching conversations' ids, found once (each part through
            // its index), then looked up: an `OR` of subqueries per row
            // would test every conversation.
            let mut any = vec![format!(
                "SELECT k.id FROM conversations k WHERE k.contact_id = ANY(ARRAY( \
                 SELECT s.id FROM contacts s WHERE {narrow_contacts}({})))",
                matches.join(" OR ")
            )];
            any.extend(outside);
            let union = any.join(" UNION ");
            f.clauses.push(format!("v.id = ANY(ARRAY({union}))"));
            f.search_ids = Some(union);
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
    fn a_search_alone_selects_its_matches_directly() {
        let search = || Search::new("alice", &Normalizer::default());
        let alone = conversation_filter(&ConversationQuery::page(20, 0).with_search(search()));
        let sql = alone.ids_sql();
        assert!(
            sql.starts_with("SELECT found.id FROM (SELECT k.id FROM conversations k"),
            "{sql}"
        );
        assert!(!sql.contains("v.id"), "{sql}");
        // With another filter, the matches are looked up and filtered.
        let both = conversation_filter(
            &ConversationQuery::page(20, 0)
                .with_search(search())
                .with_status(StatusFilter::Busy),
        );
        let sql = both.ids_sql();
        assert!(
            sql.starts_with("SELECT v.id FROM conversations v WHERE v.id = ANY(ARRAY("),
            "{sql}"
        );
        assert!(sql.contains("'last_display_status' = ANY("), "{sql}");
        let none =
            conversation_filter(&ConversationQuery::page(20, 0).with_status(StatusFilter::Busy));
        assert!(none
            .ids_sql()
            .starts_with("SELECT v.id FROM conversations v WHERE"));
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
