//! API tokens (`api_tokens`, migration 9): `Store::create_token`,
//! `tokens`, `revoke_token` and `authenticate`.
//!
//! Token writes run in a short transaction of their own, not in an
//! `IngestTx`: they share nothing with what plans write, and need not wait
//! for the ingest lock a sync's page holds. The partial unique index on
//! `name` keeps one unrevoked token per name even when two processes
//! create one at once.

use callview_core::access::{NewToken, Role, TokenHash, TokenRecord, LAST_USED_GRANULARITY};
use callview_core::store::StoreError;
use chrono::{DateTime, NaiveDateTime, Utc};

use crate::rows::{from_db_time, to_db_time};
use crate::store::Db;

const COLUMNS: &str =
    "id, name, role, created_at, last_used_at, expires_at, revoked_at, token_hash";

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: i64,
    name: String,
    role: String,
    created_at: NaiveDateTime,
    last_used_at: Option<NaiveDateTime>,
    expires_at: Option<NaiveDateTime>,
    revoked_at: Option<NaiveDateTime>,
    token_hash: String,
}

impl TokenRow {
    fn into_record(self) -> Result<(i64, TokenRecord, TokenHash), StoreError> {
        let role = Role::parse(&self.role).map_err(|e| StoreError::Backend {
            message: format!("token {:?} has an unknown role: {e}", self.name),
            source: None,
        })?;
        Ok((
            self.id,
            TokenRecord {
                name: self.name,
                role,
                created_at: from_db_time(self.created_at),
                last_used_at: self.last_used_at.map(from_db_time),
                expires_at: self.expires_at.map(from_db_time),
                revoked_at: self.revoked_at.map(from_db_time),
            },
            TokenHash::from_stored(self.token_hash),
        ))
    }
}

fn taken_error(name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a token named {name:?} already exists; revoke it first or choose another name"
    ))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "23505")
}

impl Db {
    pub(crate) async fn create_token(&self, token: &NewToken) -> Result<TokenRecord, StoreError> {
        let what = "creating a token";
        let mut tx = self.pool.begin().await.map_err(self.error(what))?;
        let created = to_db_time(token.created_at);
        // An expired token gives its name up.
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 \
             WHERE name = $1 AND revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $2",
        )
        .bind(&token.name)
        .bind(created)
        .execute(&mut *tx)
        .await
        .map_err(self.error(what))?;
        let row: TokenRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO api_tokens (name, role, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        )))
        .bind(&token.name)
        .bind(token.role.as_str())
        .bind(token.hash.as_str())
        .bind(created)
        .bind(token.expires_at.map(to_db_time))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                taken_error(&token.name)
            } else {
                self.error(what)(e)
            }
        })?;
        tx.commit().await.map_err(self.error(what))?;
        Ok(row.into_record()?.1)
    }

    pub(crate) async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_tokens ORDER BY created_at, id"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(self.error("listing tokens"))?;
        rows.into_iter()
            .map(|r| r.into_record().map(|(_, record, _)| record))
            .collect()
    }

    pub(crate) async fn revoke_token(
        &self,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<TokenRecord, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL \
             RETURNING {COLUMNS}"
        )))
        .bind(name)
        .bind(to_db_time(at))
        .fetch_all(&self.pool)
        .await
        .map_err(self.error("revoking a token"))?;
        let newest = rows.into_iter().max_by_key(|r| r.id).ok_or_else(|| {
            StoreError::NotFound(format!(
                "no token named {name:?} (that is not revoked already)"
            ))
        })?;
        Ok(newest.into_record()?.1)
    }

    pub(crate) async fn authenticate(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let what = "looking a token up";
        let row: Option<TokenRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_tokens \
             WHERE token_hash = $1 AND revoked_at IS NULL \
               AND (expires_at IS NULL OR expires_at > $2)"
        )))
        .bind(hash.as_str())
        .bind(to_db_time(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(self.error(what))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (id, mut record, stored) = row.into_record()?;
        // The lookup was by hash; check it once more in constant time.
        if !stored.matches(hash) {
            return Ok(None);
        }
        if record.last_use_is_stale(now) {
            let touched = sqlx::query(
                "UPDATE api_tokens SET last_used_at = $2 \
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)",
            )
            .bind(id)
            .bind(to_db_time(now))
            .bind(to_db_time(now - LAST_USED_GRANULARITY))
            .execute(&self.pool)
            .await;
            match touched {
                Ok(done) if done.rows_affected() > 0 => {
                    record.last_used_at = Some(chrono::SubsecRound::trunc_subsecs(now, 6))
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    error = %self.error("recording a token's use")(e),
                    "could not record a token's last use"
                ),
            }
        }
        Ok(Some(record))
    }
}
