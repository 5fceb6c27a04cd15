//! `GET /api/stats`: the dashboard's figures for a period, in local
//! calendar buckets of a time zone (`callview_core::stats`).

use axum::extract::{RawQuery, State};
use axum::Json;
use callview_core::stats::{Bound, Bucket, RangeError, StatsRange, StatsReport, TOP_CONTACTS};
use chrono::{Days, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::error::ApiError;
use crate::params::QueryParams;
use crate::state::AppState;

/// Days in the default period (today and the 29 before).
const DEFAULT_DAYS: u64 = 30;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_parameter", message)
}

fn range_error(e: RangeError) -> ApiError {
    invalid(format!("`{}`: {}", e.parameter, e.reason))
}

/// The period, zone and buckets a request asks for.
pub fn range_of(params: &QueryParams, default_tz: Tz) -> Result<StatsRange, ApiError> {
    let tz = match params.get("tz").map(str::trim).filter(|t| !t.is_empty()) {
        Some(name) => name.parse::<Tz>().map_err(|_| {
            invalid(format!(
                "`tz`: {name:?} is not an IANA time zone (for example Europe/Paris or America/New_York)"
            ))
        })?,
        None => default_tz,
    };
    let bucket = match params
        .get("bucket")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        Some(text) => Bucket::parse(text).ok_or_else(|| {
            invalid(format!(
                "`bucket`: {text:?} is not one of hour, day, week, month"
            ))
        })?,
        None => Bucket::Day,
    };
    let bound = |name: &'static str| -> Result<Option<Bound>, ApiError> {
        params
            .get(name)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|text| Bound::parse(name, text).map_err(range_error))
            .transpose()
    };
    let today: NaiveDate = Utc::now().with_timezone(&tz).date_naive();
    let until = bound("until")?.unwrap_or(Bound::Date(today));
    let since = match bound("since")? {
        Some(since) => since,
        None => {
            let last_day = match until {
                Bound::Date(d) => d,
                Bound::Instant(t) => t.with_timezone(&tz).date_naive(),
            };
            Bound::Date(
                last_day
                    .checked_sub_days(Days::new(DEFAULT_DAYS - 1))
                    .unwrap_or(last_day),
            )
        }
    };
    StatsRange::new(tz, since, until, bucket).map_err(range_error)
}

/// `GET /api/stats?since=&until=&tz=&bucket=`.
pub async fn get_stats(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = QueryParams::parse(query.as_deref())?;
    let range = range_of(&params, state.timezone())?;
    let rows = state.store().stats(&range.query(TOP_CONTACTS)).await?;
    let report = StatsReport::build(&range, rows);
    let mut body = serde_json::to_value(&report).map_err(|e| ApiError::internal(&e))?;
    // Each line also in the form the viewer shows numbers.
    let normalizer = state.normalizer();
    if let Some(lines) = body
        .get_mut("by_owned_number")
        .and_then(Value::as_array_mut)
    {
        for line in lines {
            let display = line
                .get("number")
                .and_then(Value::as_str)
                .map(|n| normalizer.display(&normalizer.classify(Some(n))));
            if let (Some(object), Some(display)) = (line.as_object_mut(), display) {
                object.insert("display".into(), Value::String(display));
            }
        }
    }
    Ok(Json(body))
}
