//! Statistics: the figures a plan's `interactions` replace (and the summary
//! rows they change), `Store::root_sids_page` and `Store::stats`. Each
//! function returns sqlx's error; the store names what failed.

use callview_core::call::CallSid;
use callview_core::endpoint::ActualDirection;
use callview_core::model::{ConversationId, Outcome};
use callview_core::stats::{
    counters, slot_deltas, Counters, FactsRow, LineRow, SlotRow, StatsRows, TopContact,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, QueryBuilder, Row};

/// Rows per multi-row statement (PostgreSQL takes at most 65,535 binds).
const CHUNK: usize = 1_000;

/// Replaces the figures of `new` (root SID, conversation id, figures),
/// drops those of `former_roots`, and adds the difference to the summary
/// rows.
pub(crate) async fn apply(
    conn: &mut PgConnection,
    new: &[(&CallSid, i32, FactsRow)],
    former_roots: &[CallSid],
) -> Result<(), sqlx::Error> {
    if new.is_empty() && former_roots.is_empty() {
        return Ok(());
    }
    let sids: Vec<&str> = new
        .iter()
        .map(|(sid, _, _)| sid.as_str())
        .chain(former_roots.iter().map(CallSid::as_str))
        .collect();
    let old = stored_facts(conn, &sids).await?;

    for chunk in new.chunks(CHUNK) {
        let mut q = QueryBuilder::new(
            "INSERT INTO interactions (root_sid, conversation_id, slot, direction, outcome, \
             talk_time, wait_time, line, currency, cost_nanos) ",
        );
        q.push_values(chunk, |mut b, (sid, conversation, row)| {
            b.push_bind(sid.as_str())
                .push_bind(i64::from(*conversation))
                .push_bind(row.slot)
                .push_bind(row.direction.as_str())
                .push_bind(row.outcome.as_str())
                .push_bind(i64::from(row.talk_time))
                .push_bind(i64::from(row.wait_time))
                .push_bind(&row.line)
                .push_bind(&row.currency)
                .push_bind(row.cost_nanos);
        });
        q.push(
            " ON CONFLICT (root_sid) DO UPDATE SET conversation_id = excluded.conversation_id, \
             slot = excluded.slot, direction = excluded.direction, outcome = excluded.outcome, \
             talk_time = excluded.talk_time, wait_time = excluded.wait_time, \
             line = excluded.line, currency = excluded.currency, cost_nanos = excluded.cost_nanos",
        );
        q.build().execute(&mut *conn).await?;
    }
    if !former_roots.is_empty() {
        let former: Vec<&str> = former_roots.iter().map(CallSid::as_str).collect();
        sqlx::query("DELETE FROM interactions WHERE root_sid = ANY($1)")
            .bind(&former)
            .execute(&mut *conn)
            .await?;
    }

    let deltas = slot_deltas(&old, new.iter().map(|(_, _, row)| row));
    let names = counters::columns();
    for chunk in deltas.chunks(CHUNK) {
        let mut q = QueryBuilder::new(format!(
            "INSERT INTO stats_slots (slot, currency, line, {}) ",
            names.join(", ")
        ));
        q.push_values(chunk, |mut b, (key, delta)| {
            b.push_bind(key.slot)
                .push_bind(&key.currency)
                .push_bind(&key.line);
            for value in delta.0 {
                b.push_bind(value);
            }
        });
        q.push(" ON CONFLICT (slot, currency, line) DO UPDATE SET ");
        q.push(
            names
                .iter()
                .map(|c| format!("{c} = stats_slots.{c} + excluded.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// The stored figures of the roots `sids`.
async fn stored_facts(
    conn: &mut PgConnection,
    sids: &[&str],
) -> Result<Vec<(CallSid, FactsRow)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT root_sid, slot, direction, outcome, talk_time, wait_time, line, currency,
                cost_nanos
         FROM interactions WHERE root_sid = ANY($1)",
    )
    .bind(sids)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let sid: String = r.try_get(0)?;
        let facts = FactsRow {
            slot: r.try_get(1)?,
            direction: ActualDirection::parse(r.try_get::<&str, _>(2)?)
                .unwrap_or(ActualDirection::Inbound),
            outcome: Outcome::parse(r.try_get::<&str, _>(3)?),
            talk_time: u32::try_from(r.try_get::<i32, _>(4)?).unwrap_or_default(),
            wait_time: u32::try_from(r.try_get::<i32, _>(5)?).unwrap_or_default(),
            line: r.try_get(6)?,
            currency: r.try_get(7)?,
            cost_nanos: r.try_get(8)?,
        };
        if let Some(sid) = CallSid::new(sid) {
            out.push((sid, facts));
        }
    }
    Ok(out)
}

/// `Store::root_sids_page`.
pub(crate) async fn root_sids_page(
    conn: &mut PgConnection,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<CallSid>, sqlx::Error> {
    let sids: Vec<String> = sqlx::query_scalar(
        "SELECT twilio_sid FROM messages
         WHERE twilio_sid > $1 AND root_call_sid = twilio_sid
         ORDER BY twilio_sid LIMIT $2",
    )
    .bind(after.unwrap_or(""))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    Ok(sids.into_iter().filter_map(CallSid::new).collect())
}

fn counters_at(row: &PgRow, first: usize) -> Result<Counters, sqlx::Error> {
    let mut c = Counters::default();
    for (i, value) in c.0.iter_mut().enumerate() {
        // `sum(bigint)` is numeric: read back as bigint by the cast below.
        *value = row.try_get(first + i)?;
    }
    Ok(c)
}

fn sums() -> String {
    counters::columns()
        .iter()
        .map(|c| format!("sum({c})::bigint"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Store::stats`.
pub(crate) async fn stats(
    conn: &mut PgConnection,
    first: i64,
    end: i64,
    top: u32,
) -> Result<StatsRows, sqlx::Error> {
    let sums = sums();
    let slots = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT slot, currency, {sums} FROM stats_slots
         WHERE slot >= $1 AND slot < $2 GROUP BY slot, currency ORDER BY slot, currency"
    )))
    .bind(first)
    .bind(end)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(SlotRow {
            slot: r.try_get(0)?,
            currency: r.try_get(1)?,
            counters: counters_at(r, 2)?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let lines = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT line, {sums} FROM stats_slots
         WHERE slot >= $1 AND slot < $2 GROUP BY line ORDER BY line COLLATE \"C\""
    )))
    .bind(first)
    .bind(end)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(LineRow {
            line: r.try_get(0)?,
            counters: counters_at(r, 1)?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let mut top_contacts = Vec::with_capacity(2);
    for (order, having) in [
        ("calls DESC", ""),
        ("missed DESC, calls DESC", "HAVING count(*) FILTER (WHERE outcome = 'missed') > 0"),
    ] {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH top AS (
                 SELECT conversation_id, count(*) AS calls,
                        count(*) FILTER (WHERE outcome = 'missed') AS missed
                 FROM interactions WHERE slot >= $1 AND slot < $2
                 GROUP BY conversation_id {having}
                 ORDER BY {order}, conversation_id LIMIT $3)
             SELECT top.conversation_id, cv.external_id, ct.display_name, top.calls, top.missed
             FROM top JOIN conversations cv ON cv.id = top.conversation_id
                      JOIN contacts ct ON ct.id = cv.contact_id
             ORDER BY {order}, top.conversation_id"
        )))
        .bind(first)
        .bind(end)
        .bind(i64::from(top))
        .fetch_all(&mut *conn)
        .await?;
        top_contacts.push(
            rows.iter()
                .map(|r| {
                    Ok(TopContact {
                        conversation_id: ConversationId(r.try_get(0)?),
                        external_id: r.try_get(1)?,
                        name: r
                            .try_get::<Option<String>, _>(2)?
                            .filter(|n| !n.is_empty()),
                        calls: r.try_get::<i64, _>(3)?.unsigned_abs(),
                        missed: r.try_get::<i64, _>(4)?.unsigned_abs(),
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?,
        );
    }
    let top_by_missed = top_contacts.pop().unwrap_or_default();
    let top_by_calls = top_contacts.pop().unwrap_or_default();
    Ok(StatsRows {
        slots,
        lines,
        top_by_calls,
        top_by_missed,
    })
}
