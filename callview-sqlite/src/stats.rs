//! Statistics: the figures a plan's `interactions` replace (and the summary
//! rows they change), `Store::root_sids_page` and `Store::stats`.

use std::collections::HashMap;

use callview_core::call::CallSid;
use callview_core::endpoint::ActualDirection;
use callview_core::model::{ConversationId, Outcome, Plan};
use callview_core::stats::{
    counters, slot_deltas, Counters, FactsRow, LineRow, SlotRow, StatsRows, TopContact,
};
use callview_core::store::StoreError;
use rusqlite::{params, Connection, Row};

use crate::queries::{db, json_array, resolve};

/// The last step of applying a plan: its interactions' figures replace
/// the stored ones, former roots lose theirs, and the summary rows take
/// the difference.
pub(crate) fn apply(
    tx: &Connection,
    plan: &Plan,
    created: &HashMap<&str, i64>,
) -> Result<(), StoreError> {
    if plan.interactions.is_empty() && plan.former_roots.is_empty() {
        return Ok(());
    }
    let sids = plan
        .interactions
        .iter()
        .map(|f| f.root_sid.as_str())
        .chain(plan.former_roots.iter().map(CallSid::as_str));
    let old = stored_facts(tx, &json_array(sids))?;
    let new: Vec<FactsRow> = plan.interactions.iter().map(FactsRow::from).collect();

    let what = || "writing the statistics of interactions".to_owned();
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO interactions (root_sid, conversation_id, slot, direction, outcome,
                                       talk_time, wait_time, line, currency, cost_nanos)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (root_sid) DO UPDATE SET
                conversation_id = excluded.conversation_id, slot = excluded.slot,
                direction = excluded.direction, outcome = excluded.outcome,
                talk_time = excluded.talk_time, wait_time = excluded.wait_time,
                line = excluded.line, currency = excluded.currency,
                cost_nanos = excluded.cost_nanos",
        )
        .map_err(db(what()))?;
    for (facts, row) in plan.interactions.iter().zip(&new) {
        let conversation = resolve(tx, created, &facts.conversation)?;
        upsert
            .execute(params![
                facts.root_sid.as_str(),
                conversation,
                row.slot,
                row.direction.as_str(),
                row.outcome.as_str(),
                row.talk_time,
                row.wait_time,
                row.line,
                row.currency,
                row.cost_nanos,
            ])
            .map_err(db(what()))?;
    }
    let mut delete = tx
        .prepare_cached("DELETE FROM interactions WHERE root_sid = ?1")
        .map_err(db(what()))?;
    for sid in &plan.former_roots {
        delete.execute([sid.as_str()]).map_err(db(what()))?;
    }

    let names = counters::columns();
    let sql = format!(
        "INSERT INTO stats_slots (slot, currency, line, {cols}) VALUES (?1, ?2, ?3, {params})
         ON CONFLICT (slot, currency, line) DO UPDATE SET {sets}",
        cols = names.join(", "),
        params = (4..4 + names.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", "),
        sets = names
            .iter()
            .map(|c| format!("{c} = {c} + excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let mut add = tx.prepare_cached(&sql).map_err(db(what()))?;
    for (key, delta) in slot_deltas(&old, &new) {
        let mut values: Vec<rusqlite::types::Value> = vec![
            key.slot.into(),
            key.currency.clone().into(),
            key.line.clone().into(),
        ];
        values.extend(delta.0.iter().map(|v| rusqlite::types::Value::from(*v)));
        add.execute(rusqlite::params_from_iter(values))
            .map_err(db(what()))?;
    }
    Ok(())
}

/// The stored figures of the roots in `sids` (a JSON array).
fn stored_facts(conn: &Connection, sids: &str) -> Result<Vec<(CallSid, FactsRow)>, StoreError> {
    let what = || "reading the statistics of interactions".to_owned();
    let mut statement = conn
        .prepare_cached(
            "SELECT root_sid, slot, direction, outcome, talk_time, wait_time, line, currency,
                    cost_nanos
             FROM interactions WHERE root_sid IN (SELECT value FROM json_each(?1))",
        )
        .map_err(db(what()))?;
    let rows = statement
        .query_map([sids], |r| {
            Ok((
                r.get::<_, String>(0)?,
                FactsRow {
                    slot: r.get(1)?,
                    direction: ActualDirection::parse(&r.get::<_, String>(2)?)
                        .unwrap_or(ActualDirection::Inbound),
                    outcome: Outcome::parse(&r.get::<_, String>(3)?),
                    talk_time: r.get(4)?,
                    wait_time: r.get(5)?,
                    line: r.get(6)?,
                    currency: r.get(7)?,
                    cost_nanos: r.get(8)?,
                },
            ))
        })
        .map_err(db(what()))?;
    let mut out = Vec::new();
    for row in rows {
        let (sid, facts) = row.map_err(db(what()))?;
        if let Some(sid) = CallSid::new(sid) {
            out.push((sid, facts));
        }
    }
    Ok(out)
}

/// `Store::root_sids_page`.
pub(crate) fn root_sids_page(
    conn: &Connection,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<CallSid>, StoreError> {
    let what = || "listing root calls".to_owned();
    let mut statement = conn
        .prepare_cached(
            "SELECT twilio_sid FROM messages
             WHERE twilio_sid > ?1 AND root_call_sid = twilio_sid
             ORDER BY twilio_sid LIMIT ?2",
        )
        .map_err(db(what()))?;
    let rows = statement
        .query_map(params![after.unwrap_or(""), limit], |r| {
            r.get::<_, String>(0)
        })
        .map_err(db(what()))?;
    let mut out = Vec::new();
    for sid in rows {
        out.extend(CallSid::new(sid.map_err(db(what()))?));
    }
    Ok(out)
}

fn counters_at(row: &Row<'_>, first: usize) -> rusqlite::Result<Counters> {
    let mut c = Counters::default();
    for (i, value) in c.0.iter_mut().enumerate() {
        *value = row.get(first + i)?;
    }
    Ok(c)
}

fn sums() -> String {
    counters::columns()
        .iter()
        .map(|c| format!("sum({c})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Store::stats`.
pub(crate) fn stats(
    conn: &Connection,
    first: i64,
    end: i64,
    top: u32,
) -> Result<StatsRows, StoreError> {
    let what = || "reading statistics".to_owned();
    let sums = sums();
    let slots = conn
        .prepare_cached(&format!(
            "SELECT slot, currency, {sums} FROM stats_slots
             WHERE slot >= ?1 AND slot < ?2 GROUP BY slot, currency ORDER BY slot, currency"
        ))
        .map_err(db(what()))?
        .query_map(params![first, end], |r| {
            Ok(SlotRow {
                slot: r.get(0)?,
                currency: r.get(1)?,
                counters: counters_at(r, 2)?,
            })
        })
        .map_err(db(what()))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db(what()))?;
    let lines = conn
        .prepare_cached(&format!(
            "SELECT line, {sums} FROM stats_slots
             WHERE slot >= ?1 AND slot < ?2 GROUP BY line ORDER BY line"
        ))
        .map_err(db(what()))?
        .query_map(params![first, end], |r| {
            Ok(LineRow {
                line: r.get(0)?,
                counters: counters_at(r, 1)?,
            })
        })
        .map_err(db(what()))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db(what()))?;
    let top_contacts = |order: &str, having: &str| -> Result<Vec<TopContact>, StoreError> {
        conn.prepare_cached(&format!(
            "WITH top AS (
                 SELECT conversation_id, count(*) AS calls,
                        sum(outcome = 'missed') AS missed
                 FROM interactions WHERE slot >= ?1 AND slot < ?2
                 GROUP BY conversation_id {having}
                 ORDER BY {order}, conversation_id LIMIT ?3)
             SELECT top.conversation_id, cv.external_id, ct.display_name, top.calls, top.missed
             FROM top JOIN conversations cv ON cv.id = top.conversation_id
                      JOIN contacts ct ON ct.id = cv.contact_id
             ORDER BY {order}, top.conversation_id"
        ))
        .map_err(db(what()))?
        .query_map(params![first, end, top], |r| {
            Ok(TopContact {
                conversation_id: ConversationId(r.get(0)?),
                external_id: r.get(1)?,
                name: r.get::<_, Option<String>>(2)?.filter(|n| !n.is_empty()),
                calls: r.get::<_, i64>(3)?.unsigned_abs(),
                missed: r.get::<_, i64>(4)?.unsigned_abs(),
            })
        })
        .map_err(db(what()))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db(what()))
    };
    Ok(StatsRows {
        slots,
        lines,
        top_by_calls: top_contacts("calls DESC", "")?,
        top_by_missed: top_contacts("missed DESC, calls DESC", "HAVING missed > 0")?,
    })
}
