//! `Store::export_calls`: pages of calls by `messages.id`, filtered by the
//! conversation list's own filter SQL ([`conversation_filter`]).

use callview_core::export::{contact_name, rows_of, ExportQuery, ExportRow, ExportSource};
use callview_core::model::StoredCall;
use sqlx::PgConnection;

use crate::filters::{bind_filter, conversation_filter, Param};
use crate::rows::{to_db_time, MessageRow, MESSAGE_COLUMNS};

/// A `messages` row with what its conversation and contact add.
#[derive(sqlx::FromRow)]
struct ExportDbRow {
    #[sqlx(flatten)]
    message: MessageRow,
    export_external_id: Option<String>,
    export_display_name: Option<String>,
    export_formatted_number: Option<String>,
    export_phone_number: Option<String>,
}

/// `Store::export_calls` on `conn`, inside the caller's read transaction:
/// the page (a walk of the primary key from `after`, each call joined to
/// its conversation and contact, the list's filters on the conversation),
/// then every leg of the page's roots.
pub(crate) async fn export_calls(
    conn: &mut PgConnection,
    query: &ExportQuery,
    after: Option<i64>,
    limit: u32,
) -> Result<Vec<ExportRow>, sqlx::Error> {
    let mut f = conversation_filter(query.filters());
    if let Some(after) = after {
        let p = f.param(Param::Int(after));
        f.and(format!("m.id > {p}"));
    }
    if let Some(since) = query.since {
        let p = f.param(Param::Time(to_db_time(since)));
        f.and(format!("m.start_time >= {p}"));
    }
    if let Some(until) = query.until {
        let p = f.param(Param::Time(to_db_time(until)));
        f.and(format!("m.start_time < {p}"));
    }
    let where_clause = f.sql();
    let limit_at = f.next();
    // Rows of a conversation that is gone (possible in a database the
    // original application wrote) are kept without it when nothing filters
    // on the conversation.
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS}, v.external_id AS export_external_id, \
                c.display_name AS export_display_name, \
                c.formatted_number AS export_formatted_number, \
                c.phone_number AS export_phone_number \
         FROM messages m \
         LEFT JOIN conversations v ON v.id = m.conversation_id \
         LEFT JOIN contacts c ON c.id = v.contact_id \
         {where_clause} \
         ORDER BY m.id \
         LIMIT ${limit_at}"
    );
    let rows: Vec<ExportDbRow> = bind_filter!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), f)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    let page: Vec<ExportSource> = rows
        .into_iter()
        .map(|row| {
            let key = row.export_phone_number.unwrap_or_default();
            ExportSource {
                call: row.message.into_stored(),
                external_id: row.export_external_id.unwrap_or_default(),
                contact_name: contact_name(
                    row.export_display_name,
                    row.export_formatted_number.as_deref(),
                    &key,
                ),
            }
        })
        .collect();
    let roots: Vec<&str> = page
        .iter()
        .filter(|s| s.call.is_root())
        .map(|s| s.call.call.sid.as_str())
        .collect();
    let mut legs: Vec<StoredCall> = Vec::new();
    if !roots.is_empty() {
        let rows: Vec<MessageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m \
             WHERE m.root_call_sid = ANY($1) AND m.root_call_sid <> m.twilio_sid"
        )))
        .bind(&roots)
        .fetch_all(&mut *conn)
        .await?;
        legs = rows.into_iter().map(MessageRow::into_stored).collect();
    }
    Ok(rows_of(page, legs))
}
