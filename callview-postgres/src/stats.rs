//! Statistics: the figures a plan's `interactions` replace (and the summary
//! rows they change), `Store::root_sids_page` and `Store::stats`. Each
//! function returns sqlx's error; the store names what failed.

use callview_core::call::CallSid;
use callview_core::endpoint::ActualDirection;
use callview_core::model::{ConversationId, Outcome};
use callview_core::stats::busiest::{
    count_directly, interactions_in, Ranking, Totals, FIRST_CANDIDATES, MAX_CANDIDATES,
};
use callview_core::stats::{
    counters, deltas, Counters, FactsRow, HeatRow, SlotRow, StatsQuery, StatsRows, TextCounts,
    TopContact, SLOT_SECONDS,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, QueryBuilder, Row};

/// Rows per multi-row statement (PostgreSQL takes at most 65,535 binds).
const CHUNK: usize = 1_000;

/// Replaces the figures of `new` (root SID and figures), drops those of
/// `former_roots`, and adds the difference to the summary tables (the
/// conversations `removed` by the plan lose their totals).
pub(crate) async fn apply(
    conn: &mut PgConnection,
    new: &[(&CallSid, FactsRow)],
    former_roots: &[CallSid],
    removed: &[i64],
) -> Result<(), sqlx::Error> {
    if new.is_empty() && former_roots.is_empty() {
        return Ok(());
    }
    let sids: Vec<&str> = new
        .iter()
        .map(|(sid, _)| sid.as_str())
        .chain(former_roots.iter().map(CallSid::as_str))
        .collect();
    let old = stored_facts(conn, &sids).await?;

    for chunk in new.chunks(CHUNK) {
        let mut q = QueryBuilder::new(
            "INSERT INTO interactions (root_sid, conversation_id, slot, direction, outcome, \
             talk_time, wait_time, line, currency, cost_nanos) ",
        );
        q.push_values(chunk, |mut b, (sid, row)| {
            b.push_bind(sid.as_str())
                .push_bind(row.conversation_id)
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

    let change = deltas(&old, new.iter().map(|(_, row)| row));
    let names = counters::columns();
    for (table, key, rows) in [
        ("stats_slots", "slot", &change.quarters),
        ("stats_hours", "hour", &change.hours),
    ] {
        for chunk in rows.chunks(CHUNK) {
            let mut q = QueryBuilder::new(format!(
                "INSERT INTO {table} ({key}, currency, line, {}) ",
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
            q.push(format!(
                " ON CONFLICT ({key}, currency, line) DO UPDATE SET "
            ));
            q.push(
                names
                    .iter()
                    .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            q.build().execute(&mut *conn).await?;
        }
    }
    // A conversation the plan removed has no interactions left.
    if !removed.is_empty() {
        sqlx::query("DELETE FROM conversation_stats WHERE conversation_id = ANY($1)")
            .bind(removed)
            .execute(&mut *conn)
            .await?;
    }
    let kept: Vec<_> = change
        .conversations
        .iter()
        .filter(|(id, _)| !removed.contains(id))
        .collect();
    if !kept.is_empty() {
        let ids: Vec<i64> = kept.iter().map(|(id, _)| *id).collect();
        let interactions: Vec<i64> = kept.iter().map(|(_, t)| t.interactions).collect();
        let missed: Vec<i64> = kept.iter().map(|(_, t)| t.missed).collect();
        sqlx::query(
            "INSERT INTO conversation_stats (conversation_id, external_id, interactions, missed)
             SELECT d.id, cv.external_id, d.interactions, d.missed
             FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[]) AS d(id, interactions, missed)
             JOIN conversations cv ON cv.id = d.id
             ON CONFLICT (conversation_id) DO UPDATE SET
                interactions = conversation_stats.interactions + excluded.interactions,
                missed = conversation_stats.missed + excluded.missed",
        )
        .bind(&ids)
        .bind(&interactions)
        .bind(&missed)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The stored figures of the roots `sids`.
async fn stored_facts(
    conn: &mut PgConnection,
    sids: &[&str],
) -> Result<Vec<FactsRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT conversation_id, slot, direction, outcome, talk_time, wait_time, line, currency,
                cost_nanos
         FROM interactions WHERE root_sid = ANY($1)",
    )
    .bind(sids)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(FactsRow {
                conversation_id: r.try_get(0)?,
                slot: r.try_get(1)?,
                // Written by `apply` from an `ActualDirection`.
                direction: ActualDirection::parse(r.try_get::<&str, _>(2)?)
                    .unwrap_or(ActualDirection::Inbound),
                outcome: Outcome::parse(r.try_get::<&str, _>(3)?),
                talk_time: u32::try_from(r.try_get::<i32, _>(4)?).unwrap_or_default(),
                wait_time: u32::try_from(r.try_get::<i32, _>(5)?).unwrap_or_default(),
                line: r.try_get(6)?,
                currency: r.try_get(7)?,
                cost_nanos: r.try_get(8)?,
            })
        })
        .collect()
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

fn counters_of(values: Vec<i64>) -> Counters {
    let mut c = Counters::default();
    for (slot, value) in c.0.iter_mut().zip(values) {
        *slot = value;
    }
    c
}

/// The rows of `table` (`stats_slots` by `slot`, `stats_hours` by `hour`)
/// in `ranges`.
async fn summary_rows(
    conn: &mut PgConnection,
    table: &str,
    key: &str,
    ranges: &[(i64, i64)],
) -> Result<Vec<SlotRow>, sqlx::Error> {
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    let firsts: Vec<i64> = ranges.iter().map(|r| r.0).collect();
    let ends: Vec<i64> = ranges.iter().map(|r| r.1).collect();
    // The counters as one array: one value to decode per row, not 40.
    let cols = counters::columns()
        .iter()
        .map(|c| format!("s.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT s.{key}, s.currency, s.line, ARRAY[{cols}]::bigint[]
         FROM UNNEST($1::bigint[], $2::bigint[]) AS r(first, last)
         JOIN {table} s ON s.{key} >= r.first AND s.{key} < r.last
         ORDER BY s.{key}, s.currency COLLATE \"C\", s.line COLLATE \"C\""
    )))
    .bind(&firsts)
    .bind(&ends)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SlotRow {
                slot: r.try_get(0)?,
                currency: r.try_get(1)?,
                line: r.try_get(2)?,
                counters: counters_of(r.try_get(3)?),
            })
        })
        .collect()
}

/// `Store::stats`.
pub(crate) async fn stats(
    conn: &mut PgConnection,
    query: &StatsQuery,
) -> Result<StatsRows, sqlx::Error> {
    let heat = match query.heat {
        None => None,
        Some((first, end)) => {
            let rows = sqlx::query(
                "SELECT slot, sum(inbound)::bigint, sum(inbound_missed)::bigint FROM stats_slots
                 WHERE slot >= $1 AND slot < $2 GROUP BY slot ORDER BY slot",
            )
            .bind(first)
            .bind(end)
            .fetch_all(&mut *conn)
            .await?;
            Some(
                rows.iter()
                    .map(|r| {
                        Ok(HeatRow {
                            slot: r.try_get(0)?,
                            inbound: r.try_get(1)?,
                            missed: r.try_get(2)?,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()?,
            )
        }
    };
    let hours = summary_rows(conn, "stats_hours", "hour", &query.hours).await?;
    let quarters = summary_rows(conn, "stats_slots", "slot", &query.quarters).await?;
    let read = !(query.hours.is_empty() && query.quarters.is_empty());
    let direct = count_directly(read.then(|| interactions_in(&hours) + interactions_in(&quarters)));
    Ok(StatsRows {
        top_by_calls: busiest(conn, query, Ranking::Calls, direct).await?,
        top_by_missed: busiest(conn, query, Ranking::Missed, direct).await?,
        hours,
        quarters,
        heat,
        texts: texts_in(conn, query.period).await?,
    })
}

/// The texts whose `sent_at` falls in the quarter hours `first..end`.
async fn texts_in(
    conn: &mut PgConnection,
    (first, end): (i64, i64),
) -> Result<TextCounts, sqlx::Error> {
    let bound = |slot: i64| {
        chrono::DateTime::from_timestamp(slot.saturating_mul(SLOT_SECONDS), 0)
            .map(|t| t.naive_utc())
    };
    let rows = sqlx::query(
        "SELECT actual_direction, status IN ('undelivered', 'failed'), count(*) FROM texts
         WHERE ($1::timestamp IS NULL OR sent_at >= $1)
           AND ($2::timestamp IS NULL OR sent_at < $2) AND sent_at IS NOT NULL
         GROUP BY 1, 2",
    )
    .bind(bound(first))
    .bind(bound(end))
    .fetch_all(&mut *conn)
    .await?;
    let mut counts = TextCounts::default();
    for r in &rows {
        let n: i64 = r.try_get(2)?;
        counts.add(&r.try_get::<String, _>(0)?, r.try_get(1)?, n.unsigned_abs());
    }
    Ok(counts)
}

fn top_contacts(rows: &[PgRow]) -> Result<Vec<TopContact>, sqlx::Error> {
    rows.iter()
        .map(|r| {
            Ok(TopContact {
                conversation_id: ConversationId(r.try_get::<i64, _>(0)?),
                external_id: r.try_get(1)?,
                name: r.try_get::<Option<String>, _>(2)?.filter(|n| !n.is_empty()),
                calls: r.try_get::<i64, _>(3)?.unsigned_abs(),
                missed: r.try_get::<i64, _>(4)?.unsigned_abs(),
            })
        })
        .collect()
}

/// The `query.top` busiest conversations of `query.period`
/// ([`callview_core::stats::busiest`]): counted from the greatest
/// all-time totals until settled, else every conversation of the period.
async fn busiest(
    conn: &mut PgConnection,
    query: &StatsQuery,
    by: Ranking,
    direct: bool,
) -> Result<Vec<TopContact>, sqlx::Error> {
    let (first, end) = query.period;
    let top = i64::from(query.top.max(1));
    let (candidates_order, listed) = (by.candidate_order(), by.listed_if());
    let order = by
        .order()
        .replace("cv.external_id", "cv.external_id COLLATE \"C\"");
    let columns =
        "SELECT c.conversation_id::bigint, cv.external_id, ct.display_name, c.calls, c.missed";
    let joins = "JOIN conversations cv ON cv.id = c.conversation_id
                 JOIN contacts ct ON ct.id = cv.contact_id";
    let mut candidates = if direct {
        MAX_CANDIDATES + 1
    } else {
        FIRST_CANDIDATES.max(top)
    };
    while candidates <= MAX_CANDIDATES {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH cand AS (SELECT conversation_id FROM conversation_stats
                           ORDER BY {candidates_order} LIMIT $3),
             c AS (SELECT i.conversation_id, count(*) AS calls,
                          count(*) FILTER (WHERE i.outcome = 'missed') AS missed
                   FROM cand JOIN interactions i ON i.conversation_id = cand.conversation_id
                   WHERE i.slot >= $1 AND i.slot < $2
                   GROUP BY i.conversation_id)
             {columns} FROM c {joins} WHERE {listed}
             ORDER BY {order}"
        )))
        .bind(first)
        .bind(end)
        .bind(candidates)
        .fetch_all(&mut *conn)
        .await?;
        let found = top_contacts(&rows)?;
        let next = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT interactions, missed, external_id FROM conversation_stats
             ORDER BY {candidates_order} LIMIT 1 OFFSET $1"
        )))
        .bind(candidates)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| {
            Ok::<_, sqlx::Error>(Totals {
                interactions: r.try_get::<i64, _>(0)?.unsigned_abs(),
                missed: r.try_get::<i64, _>(1)?.unsigned_abs(),
                external_id: r.try_get(2)?,
            })
        })
        .transpose()?;
        if by.settled(&found, top as usize, next.as_ref()) {
            return Ok(found.into_iter().take(top as usize).collect());
        }
        candidates *= 4;
    }
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH c AS (SELECT conversation_id, count(*) AS calls,
                           count(*) FILTER (WHERE outcome = 'missed') AS missed
                    FROM interactions WHERE slot >= $1 AND slot < $2 GROUP BY conversation_id)
         {columns} FROM c {joins} WHERE {listed}
         ORDER BY {order} LIMIT $3"
    )))
    .bind(first)
    .bind(end)
    .bind(top)
    .fetch_all(&mut *conn)
    .await?;
    top_contacts(&rows)
}
