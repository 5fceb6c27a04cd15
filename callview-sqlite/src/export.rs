//! `Store::export_calls`: pages of calls by `messages.id`, filtered by the
//! conversation list's own filter SQL ([`conversation_filter`]).

use callview_core::export::{contact_name, rows_of, ExportQuery, ExportRow, ExportSource};
use callview_core::model::StoredCall;
use callview_core::store::StoreError;
use rusqlite::Connection;

use crate::queries::{conversation_filter, db, json_array};
use crate::rows::{self, MESSAGE_COLUMNS, MESSAGE_WIDTH};
use crate::time;

/// `Store::export_calls`, in one read transaction: the page, then the legs
/// of its roots.
///
/// The page walks the primary key from `after` (`ORDER BY m.id`), joining
/// each call to its conversation (`CROSS JOIN` keeps `messages` the outer
/// loop) and contact, and stops at `limit` matches: every page costs the
/// rows it steps over, and the whole export reads the table once. The
/// list's filters are built without their indexes (`use_indexes = false`)
/// and the start time bounds are written `+m.start_time`, so SQLite never
/// reads a filter's matches through another index and sorts them by id
/// for each page (a cost of every match per page, quadratic over the
/// export).
pub(crate) fn export_calls(
    conn: &mut Connection,
    query: &ExportQuery,
    after: Option<i64>,
    limit: u32,
) -> Result<Vec<ExportRow>, StoreError> {
    let what = "exporting calls";
    let mut f = conversation_filter(query.filters(), false);
    if let Some(after) = after {
        let mark = f.param(after);
        f.clauses.push(format!("m.id > {mark}"));
    }
    if let Some(since) = &query.since {
        let mark = f.param(time::format(since));
        f.clauses.push(format!("+m.start_time >= {mark}"));
    }
    if let Some(until) = &query.until {
        let mark = f.param(time::format(until));
        f.clauses.push(format!("+m.start_time < {mark}"));
    }
    let where_clause = f.sql();
    let mut params = f.params;
    params.push(i64::from(limit).into());
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS}, cv.external_id, ct.display_name, ct.formatted_number,
                ct.phone_number
         FROM messages m
         CROSS JOIN conversations cv ON cv.id = m.conversation_id
         CROSS JOIN contacts ct ON ct.id = cv.contact_id
         {where_clause}
         ORDER BY m.id
         LIMIT ?"
    );
    let tx = conn.transaction().map_err(db(what))?;
    let mut page = Vec::new();
    {
        let mut stmt = tx.prepare_cached(&sql).map_err(db(what))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params))
            .map_err(db(what))?;
        while let Some(row) = rows.next().map_err(db(what))? {
            let call = rows::stored_call(row)?;
            let external_id: String = row.get(MESSAGE_WIDTH).map_err(db(what))?;
            let display_name: Option<String> = row.get(MESSAGE_WIDTH + 1).map_err(db(what))?;
            let formatted: Option<String> = row.get(MESSAGE_WIDTH + 2).map_err(db(what))?;
            let key: String = row.get(MESSAGE_WIDTH + 3).map_err(db(what))?;
            page.push(ExportSource {
                call,
                external_id,
                contact_name: contact_name(display_name, formatted.as_deref(), &key),
            });
        }
    }
    let roots: Vec<&str> = page
        .iter()
        .filter(|s| s.call.is_root())
        .map(|s| s.call.call.sid.as_str())
        .collect();
    let mut legs: Vec<StoredCall> = Vec::new();
    if !roots.is_empty() {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m
             WHERE m.root_call_sid IN (SELECT value FROM json_each(?1))
               AND m.root_call_sid <> m.twilio_sid"
        );
        let mut stmt = tx.prepare_cached(&sql).map_err(db(what))?;
        let mut rows = stmt.query([json_array(roots)]).map_err(db(what))?;
        while let Some(row) = rows.next().map_err(db(what))? {
            legs.push(rows::stored_call(row)?);
        }
    }
    tx.finish().map_err(db(what))?;
    Ok(rows_of(page, legs))
}
