//! Statistics: the figures a plan's `interactions` replace (and the summary
//! rows they change), `Store::root_sids_page` and `Store::stats`. SQL texts
//! are built only from constant column and table names.

use std::collections::HashMap;

use callview_core::call::CallSid;
use callview_core::endpoint::ActualDirection;
use callview_core::model::{ConversationId, Outcome, Plan};
use callview_core::stats::busiest::{
    count_directly, interactions_in, Ranking, Totals, FIRST_CANDIDATES, MAX_CANDIDATES,
};
use callview_core::stats::{
    counters, deltas, Counters, FactsRow, HeatRow, SlotRow, StatsQuery, StatsRows, TextCounts,
    TopContact, SLOT_SECONDS,
};
use callview_core::store::StoreError;
use chrono::DateTime;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::queries::{db, json_array, resolve};

/// The last step of applying a plan: its interactions' figures replace
/// the stored ones, former roots lose theirs, and the summary tables take
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
    let mut new = Vec::with_capacity(plan.interactions.len());
    for facts in &plan.interactions {
        new.push(FactsRow::new(
            facts,
            resolve(tx, created, &facts.conversation)?,
        ));
    }

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
        upsert
            .execute(params![
                facts.root_sid.as_str(),
                row.conversation_id,
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

    let change = deltas(&old, &new);
    for (table, rows) in [
        ("stats_slots", &change.quarters),
        ("stats_hours", &change.hours),
    ] {
        let key = if table == "stats_slots" {
            "slot"
        } else {
            "hour"
        };
        let names = counters::columns();
        let sql = format!(
            "INSERT INTO {table} ({key}, currency, line, {cols}) VALUES (?1, ?2, ?3, {params})
             ON CONFLICT ({key}, currency, line) DO UPDATE SET {sets}",
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
        for (key, delta) in rows {
            let mut values: Vec<rusqlite::types::Value> = vec![
                key.slot.into(),
                key.currency.clone().into(),
                key.line.clone().into(),
            ];
            values.extend(delta.0.iter().map(|v| rusqlite::types::Value::from(*v)));
            add.execute(rusqlite::params_from_iter(values))
                .map_err(db(what()))?;
        }
    }
    // A conversation the plan removed has no interactions left.
    let mut forget = tx
        .prepare_cached("DELETE FROM conversation_stats WHERE conversation_id = ?1")
        .map_err(db(what()))?;
    for id in &plan.removed {
        forget.execute([id.0]).map_err(db(what()))?;
    }
    let mut totals = tx
        .prepare_cached(
            "INSERT INTO conversation_stats (conversation_id, external_id, interactions, missed)
             SELECT id, external_id, ?2, ?3 FROM conversations WHERE id = ?1
             ON CONFLICT (conversation_id) DO UPDATE SET
                interactions = interactions + excluded.interactions,
                missed = missed + excluded.missed",
        )
        .map_err(db(what()))?;
    for (conversation, t) in &change.conversations {
        if plan.removed.iter().any(|id| id.0 == *conversation) {
            continue;
        }
        totals
            .execute(params![conversation, t.interactions, t.missed])
            .map_err(db(what()))?;
    }
    Ok(())
}

/// The stored figures of the roots in `sids` (a JSON array).
fn stored_facts(conn: &Connection, sids: &str) -> Result<Vec<FactsRow>, StoreError> {
    let what = || "reading the statistics of interactions".to_owned();
    let mut statement = conn
        .prepare_cached(
            "SELECT conversation_id, slot, direction, outcome, talk_time, wait_time, line,
                    currency, cost_nanos
             FROM interactions WHERE root_sid IN (SELECT value FROM json_each(?1))",
        )
        .map_err(db(what()))?;
    let rows = statement
        .query_map([sids], |r| {
            Ok(FactsRow {
                conversation_id: r.get(0)?,
                slot: r.get(1)?,
                // Written by `apply` from an `ActualDirection`.
                direction: ActualDirection::parse(&r.get::<_, String>(2)?)
                    .unwrap_or(ActualDirection::Inbound),
                outcome: Outcome::parse(&r.get::<_, String>(3)?),
                talk_time: r.get(4)?,
                wait_time: r.get(5)?,
                line: r.get(6)?,
                currency: r.get(7)?,
                cost_nanos: r.get(8)?,
            })
        })
        .map_err(db(what()))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db(what()))
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

/// The rows of `table` (`stats_slots` by `slot`, `stats_hours` by `hour`)
/// in `ranges`: one primary-key range read each.
fn summary_rows(
    conn: &Connection,
    table: &str,
    key: &str,
    ranges: &[(i64, i64)],
) -> Result<Vec<SlotRow>, StoreError> {
    let what = || format!("reading {table}");
    let sql = format!(
        "SELECT {key}, currency, line, {cols} FROM {table}
         WHERE {key} >= ?1 AND {key} < ?2 ORDER BY {key}, currency, line",
        cols = counters::columns().join(", ")
    );
    let mut statement = conn.prepare_cached(&sql).map_err(db(what()))?;
    let mut out = Vec::new();
    for (first, end) in ranges {
        let rows = statement
            .query_map(params![first, end], |r| {
                Ok(SlotRow {
                    slot: r.get(0)?,
                    currency: r.get(1)?,
                    line: r.get(2)?,
                    counters: counters_at(r, 3)?,
                })
            })
            .map_err(db(what()))?;
        for row in rows {
            out.push(row.map_err(db(what()))?);
        }
    }
    Ok(out)
}

/// `Store::stats`.
pub(crate) fn stats(conn: &Connection, query: &StatsQuery) -> Result<StatsRows, StoreError> {
    let what = || "reading statistics".to_owned();
    let heat = match query.heat {
        None => None,
        Some((first, end)) => Some(
            conn.prepare_cached(
                "SELECT slot, sum(inbound), sum(inbound_missed) FROM stats_slots
                 WHERE slot >= ?1 AND slot < ?2 GROUP BY slot ORDER BY slot",
            )
            .map_err(db(what()))?
            .query_map(params![first, end], |r| {
                Ok(HeatRow {
                    slot: r.get(0)?,
                    inbound: r.get(1)?,
                    missed: r.get(2)?,
                })
            })
            .map_err(db(what()))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db(what()))?,
        ),
    };
    let hours = summary_rows(conn, "stats_hours", "hour", &query.hours)?;
    let quarters = summary_rows(conn, "stats_slots", "slot", &query.quarters)?;
    let read = !(query.hours.is_empty() && query.quarters.is_empty());
    let direct = count_directly(read.then(|| interactions_in(&hours) + interactions_in(&quarters)));
    Ok(StatsRows {
        top_by_calls: busiest(conn, query, Ranking::Calls, direct)?,
        top_by_missed: busiest(conn, query, Ranking::Missed, direct)?,
        hours,
        quarters,
        heat,
        texts: texts_in(conn, query.period)?,
    })
}

/// The texts whose `sent_at` falls in the quarter hours `first..end`.
fn texts_in(conn: &Connection, (first, end): (i64, i64)) -> Result<TextCounts, StoreError> {
    let what = || "counting the texts of a period".to_owned();
    let bound = |slot: i64| {
        DateTime::from_timestamp(slot.saturating_mul(SLOT_SECONDS), 0)
            .map(|t| crate::time::format(&t))
    };
    let mut counts = TextCounts::default();
    let mut stmt = conn
        .prepare_cached(
            "SELECT actual_direction, status IN ('undelivered', 'failed'), count(*) FROM texts
             WHERE sent_at >= coalesce(?1, sent_at) AND sent_at < coalesce(?2, '9')
             GROUP BY 1, 2",
        )
        .map_err(db(what()))?;
    let rows = stmt
        .query_map(params![bound(first), bound(end)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(db(what()))?;
    for row in rows {
        let (direction, failed, n) = row.map_err(db(what()))?;
        counts.add(&direction, failed, n.unsigned_abs());
    }
    Ok(counts)
}

/// The `query.top` busiest conversations of `query.period`
/// ([`callview_core::stats::busiest`]): counted from the greatest
/// all-time totals until settled, else every conversation of the period.
fn busiest(
    conn: &Connection,
    query: &StatsQuery,
    by: Ranking,
    direct: bool,
) -> Result<Vec<TopContact>, StoreError> {
    let what = || "finding the busiest conversations".to_owned();
    let (first, end) = query.period;
    let top = i64::from(query.top.max(1));
    let (candidates_order, order, listed) = (by.candidate_order(), by.order(), by.listed_if());
    let columns = "SELECT c.conversation_id, cv.external_id, ct.display_name, c.calls, c.missed";
    let joins = "JOIN conversations cv ON cv.id = c.conversation_id
                 JOIN contacts ct ON ct.id = cv.contact_id";
    let read =
        |sql: &str, params: &[&dyn rusqlite::ToSql]| -> Result<Vec<TopContact>, StoreError> {
            conn.prepare_cached(sql)
                .map_err(db(what()))?
                .query_map(params, |r| {
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
    let mut candidates = if direct {
        MAX_CANDIDATES + 1
    } else {
        FIRST_CANDIDATES.max(top)
    };
    while candidates <= MAX_CANDIDATES {
        let found = read(
            &format!(
                "WITH cand AS (SELECT conversation_id FROM conversation_stats
                               ORDER BY {candidates_order} LIMIT ?3),
                 c AS (SELECT i.conversation_id, count(*) AS calls,
                              sum(i.outcome = 'missed') AS missed
                       FROM cand JOIN interactions i INDEXED BY idx_interactions_conversation
                         ON i.conversation_id = cand.conversation_id
                       WHERE i.slot >= ?1 AND i.slot < ?2
                       GROUP BY i.conversation_id)
                 {columns} FROM c {joins} WHERE {listed}
                 ORDER BY {order}"
            ),
            params![first, end, candidates],
        )?;
        let next: Option<Totals> = conn
            .prepare_cached(&format!(
                "SELECT interactions, missed, external_id FROM conversation_stats
                 ORDER BY {candidates_order} LIMIT 1 OFFSET ?1"
            ))
            .map_err(db(what()))?
            .query_row([candidates], |r| {
                Ok(Totals {
                    interactions: r.get::<_, i64>(0)?.unsigned_abs(),
                    missed: r.get::<_, i64>(1)?.unsigned_abs(),
                    external_id: r.get(2)?,
                })
            })
            .optional()
            .map_err(db(what()))?;
        if by.settled(&found, top as usize, next.as_ref()) {
            return Ok(found.into_iter().take(top as usize).collect());
        }
        candidates *= 4;
    }
    read(
        &format!(
            "WITH c AS (SELECT conversation_id, count(*) AS calls,
                               sum(outcome = 'missed') AS missed
                        FROM interactions INDEXED BY idx_interactions_slot
                        WHERE slot >= ?1 AND slot < ?2 GROUP BY conversation_id)
             {columns} FROM c {joins} WHERE {listed}
             ORDER BY {order} LIMIT ?3"
        ),
        params![first, end, top],
    )
}
