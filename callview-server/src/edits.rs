//! The editing endpoints: `GET`/`PATCH /api/contacts/{id}`,
//! `PATCH /api/messages/{id}` and `GET /api/tags`.
//!
//! An edit is read and checked in core ([`ContactEdit::from_json`],
//! [`CallEdit::from_json`]: unknown fields, wrong types, lengths, control
//! characters are a 400 naming the field), then applied in one store
//! transaction that reads the current version ([`IngestTx::edit_contact`]).
//! Responses carry an `ETag` (the version); a `PATCH` with an `If-Match`
//! that is not the current version gets 412 `changed_elsewhere` and
//! changes nothing; without `If-Match` the last write wins. Every edit is
//! published on `GET /api/events` (`edited`).
//!
//! [`IngestTx::edit_contact`]: callview_core::store::IngestTx::edit_contact

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use callview_core::annotations::{CallEdit, ContactEdit, EditError, EditMeta};
use callview_core::store::check_version;
use callview_core::StoreError;
use chrono::Utc;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::events::ServerEvent;
use crate::state::AppState;
use crate::views;

/// A row id from the path: a whole number.
fn row_id(path: Result<Path<String>, PathRejection>, what: &str) -> Result<i64, ApiError> {
    let text = match path {
        Ok(Path(text)) => text,
        Err(rejection) => return Err(ApiError::bad_request("invalid_id", rejection.body_text())),
    };
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_id",
                format!("{what} ids are whole numbers, got {text:?}"),
            )
        })
}

/// The version an `If-Match` names: `"3"` (or `3`); `None` for no
/// header or `*`. An entity tag that is not one of ours (a weak `W/"3"`,
/// which `If-Match` never matches, or `"abc"`) matches no version: the edit
/// is refused with 412. A list of tags, or a value that is not an entity
/// tag at all, is a 400.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    let bad = || {
        ApiError::bad_request(
            "invalid_if_match",
            "`If-Match` must be one `ETag` of an earlier response, such as \"3\"",
        )
    };
    if text.is_empty() || text.contains(',') {
        return Err(bad());
    }
    if text.starts_with("W/") {
        return Ok(Some(NO_VERSION));
    }
    let bare = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(quoted) => quoted,
        None if text.chars().all(|c| c.is_ascii_digit()) => text,
        None => return Err(bad()),
    };
    Ok(Some(bare.parse::<i64>().unwrap_or(NO_VERSION)))
}

/// A version no resource has: what an entity tag that is not ours means.
const NO_VERSION: i64 = -1;

/// 412 unless `expected` is absent or `current`.
fn check_current(what: &str, current: i64, expected: Option<i64>) -> Result<(), ApiError> {
    check_version(what, current, expected).map_err(ApiError::from)
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// JSON with an `ETag`.
fn tagged(body: impl serde::Serialize, version: i64) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    response
}

fn body_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })
}

fn invalid_edit(e: EditError) -> ApiError {
    ApiError::bad_request("invalid_field", e.to_string())
}

fn not_found(what: String) -> impl FnOnce(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound(_) => ApiError::not_found(format!("{what} does not exist")),
        other => other.into(),
    }
}

/// Who makes an edit: the name of the caller's token (none when the API
/// is open), and when.
fn meta(caller: &Option<Extension<Caller>>) -> EditMeta {
    EditMeta {
        by: caller.as_ref().and_then(|Extension(c)| c.name.clone()),
        at: Utc::now(),
    }
}

/// `GET /api/contacts/{id}`.
pub async fn get_contact(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = row_id(path, "contact")?;
    let record = state
        .store()
        .contact(id)
        .await
        .map_err(not_found(format!("contact {id}")))?;
    let version = record.annotations.version;
    Ok(tagged(views::contact(&record, state.normalizer()), version))
}

/// `PATCH /api/contacts/{id}`.
pub async fn patch_contact(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = row_id(path, "contact")?;
    let expected = if_match(&headers)?;
    let edit = ContactEdit::from_json(&body_json(&body)?).map_err(invalid_edit)?;
    if edit.is_empty() {
        // Nothing to change: the contact as it is (no new version).
        let record = state
            .store()
            .contact(id)
            .await
            .map_err(not_found(format!("contact {id}")))?;
        check_current(
            &format!("contact {id}"),
            record.annotations.version,
            expected,
        )?;
        let version = record.annotations.version;
        return Ok(tagged(views::contact(&record, state.normalizer()), version));
    }
    let mut tx = state.store().begin_ingest().await?;
    let record = tx
        .edit_contact(id, &edit, expected, &meta(&caller))
        .await
        .map_err(not_found(format!("contact {id}")))?;
    tx.commit().await?;
    let version = record.annotations.version;
    state
        .events()
        .publish(ServerEvent::edited("contact", id, version));
    Ok(tagged(views::contact(&record, state.normalizer()), version))
}

/// `PATCH /api/messages/{id}`: the notes and tags of a call (a message of
/// a conversation; its id as the messages list shows it).
pub async fn patch_message(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = row_id(path, "message")?;
    let expected = if_match(&headers)?;
    let edit = CallEdit::from_json(&body_json(&body)?).map_err(invalid_edit)?;
    if edit.is_empty() {
        let (_, interaction) = state
            .store()
            .message(id)
            .await
            .map_err(not_found(format!("message {id}")))?;
        check_current(
            &format!("message {id}"),
            interaction.root.annotations.version,
            expected,
        )?;
    } else {
        // Only messages (root calls) are edited here, checked inside the
        // transaction: a leg's id is not one.
        let mut tx = state.store().begin_ingest().await?;
        let annotations = tx
            .edit_call(id, &edit, expected, &meta(&caller))
            .await
            .map_err(not_found(format!("message {id}")))?;
        tx.commit().await?;
        state
            .events()
            .publish(ServerEvent::edited("message", id, annotations.version));
    }
    let (conversation, interaction) = state
        .store()
        .message(id)
        .await
        .map_err(not_found(format!("message {id}")))?;
    let view = state.store().conversation(conversation).await?;
    let contact = views::contact(&view.contact, state.normalizer());
    let version = interaction.root.annotations.version;
    let mut message = views::message(&interaction, &contact);
    crate::recordings::attach(&state, &[&interaction], vec![&mut message]).await?;
    Ok(tagged(message, version))
}

/// `GET /api/contacts.csv`: every contact as CSV
/// ([`crate::contacts_csv`]), to import elsewhere or back.
pub async fn export_contacts(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut body = Vec::new();
    crate::contacts_csv::export(state.store().as_ref(), &mut body)
        .await
        .map_err(|e| match e {
            crate::contacts_csv::CsvError::Store(e) => ApiError::from(e),
            other => ApiError::internal(&other),
        })?;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"contacts.csv\""),
    );
    Ok(response)
}

/// `GET /api/tags`: the tags in use, most used first.
pub async fn list_tags(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let tags = state.store().tags().await?;
    Ok(Json(json!({"total": tags.len(), "tags": tags})))
}
