//! `GET /api/export/calls.csv` and `GET /api/export/calls.jsonl`: every
//! call the conversation list's filters keep (legs included, one row per
//! Twilio call), streamed a page at a time ([`callview_core::export`]).
//!
//! The filters are the list's (`q`, `direction`, `status`, `tag`,
//! `has_recording`, read by the same parser, [`ConversationFilters`]), on
//! each call's conversation; `since`/`until` bound each call's own start
//! time. Mistakes are 400 `invalid_parameter`, like the list's.
//!
//! The first page (a small one, [`callview_core::export::FIRST_PAGE`]
//! rows) is read before the answer starts, so a store that fails is a JSON
//! error; the header row and that page are the first bytes. Each
//! later page is read when the client has taken the previous one
//! (constant memory, whatever the number of calls). A store error after
//! the first page ends the body abnormally (the client sees a broken
//! transfer, never a silently short file) and is logged. The routes have
//! no request timeout (a long export streams for as long as it takes);
//! gzip, when asked for, is flushed whenever the next page is being read.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use callview_core::export::{
    pages, ExportError, ExportFormat, ExportQuery, ExportRow, ExportWriter, DEFAULT_PAGE,
};
use callview_core::store::ConversationQuery;
use callview_core::Normalizer;
use futures::{StreamExt, TryStreamExt};

use crate::error::{ApiError, ErrorChain};
use crate::params::{ConversationFilters, QueryParams};
use crate::state::AppState;

/// The CSV export's path.
pub const CSV_PATH: &str = "/api/export/calls.csv";
/// The JSON Lines export's path.
pub const JSONL_PATH: &str = "/api/export/calls.jsonl";

/// Parameters of the list that an export refuses (it holds every match).
const PAGING: [&str; 3] = ["limit", "offset", "cursor"];

/// The export a request asks for: the conversation list's filters (the
/// same parser, the same 400s), with `since`/`until` on each call's start
/// time. `limit`, `offset` and `cursor` are refused: an export holds every
/// matching call.
///
/// ```
/// use callview_server::export::export_query;
/// use callview_server::params::QueryParams;
/// use callview_core::Normalizer;
/// let params = QueryParams::parse(Some("status=missed&since=2026-02-01T00:00:00Z")).unwrap();
/// let query = export_query(&params, &Normalizer::default()).unwrap();
/// assert_eq!(query.since.unwrap().to_rfc3339(), "2026-02-01T00:00:00+00:00");
/// assert!(query.filters().status.is_some());
/// let bad = QueryParams::parse(Some("limit=5")).unwrap();
/// assert_eq!(export_query(&bad, &Normalizer::default()).unwrap_err().code(), "invalid_parameter");
/// ```
pub fn export_query(
    params: &QueryParams,
    normalizer: &Normalizer,
) -> Result<ExportQuery, ApiError> {
    if let Some(name) = PAGING.iter().find(|name| params.get(name).is_some()) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("`{name}` is not accepted here: an export holds every matching call"),
        ));
    }
    let filters = ConversationFilters::parse(params, normalizer)?;
    let mut list = ConversationQuery::page(0, 0);
    list.search = filters.search;
    list.direction = filters.direction;
    list.status = filters.status;
    list.since = filters.since;
    list.until = filters.until;
    list.tag = filters.tag;
    list.has_recording = filters.has_recording;
    Ok(ExportQuery::from_list_filters(list))
}

/// What the API shows of a row: the recording's URL on this server (rows
/// adopted from the original application may hold Twilio's).
pub fn served(row: &mut ExportRow) {
    row.recording_url = row
        .recording_url
        .as_deref()
        .and_then(crate::recordings::served_url);
}

/// `GET /api/export/calls.csv`.
pub async fn export_csv(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    export(state, query, ExportFormat::Csv).await
}

/// `GET /api/export/calls.jsonl`.
pub async fn export_jsonl(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    export(state, query, ExportFormat::JsonLines).await
}

fn encode(writer: &ExportWriter, mut rows: Vec<ExportRow>) -> Result<Bytes, ExportError> {
    rows.iter_mut().for_each(served);
    writer.encode(&rows).map(Bytes::from)
}

async fn export(
    state: AppState,
    raw_query: Option<String>,
    format: ExportFormat,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(raw_query.as_deref())?;
    let query = export_query(&params, state.normalizer())?;
    let mut pages = Box::pin(pages(Arc::clone(state.store()), query, DEFAULT_PAGE));
    let first = pages.next().await.transpose()?.unwrap_or_default();
    let writer = ExportWriter::new(format);
    let mut head = writer.header();
    head.extend_from_slice(&encode(&writer, first).map_err(|e| ApiError::internal(&e))?);
    let rest = pages
        .map_err(ExportError::from)
        .and_then(move |rows| std::future::ready(encode(&writer, rows)))
        .inspect_err(|e| {
            tracing::error!(error = %ErrorChain(e), "an export stopped part-way");
        });
    let body = futures::stream::once(std::future::ready(Ok(Bytes::from(head)))).chain(rest);
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    let name = format.file_name(chrono::Utc::now().date_naive());
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
