//! Text messages on the server: their JSON in threads and lists, sending
//! (`POST /api/conversations/{id}/messages`), the MMS media proxy
//! (`GET /api/texts/{sid}/media/{media_sid}`) and Twilio's message webhook
//! (`POST /webhooks/twilio/messages`: status callbacks of sent texts and
//! inbound texts, signed like call callbacks).
//!
//! Every write is one store transaction planned from what it read
//! ([`callview_core::text_sync::ingest_texts_in`]), and each change is
//! announced on `GET /api/events` so open viewers show it at once.
//!
//! Sending is off unless the server was given a sender
//! (`CALLVIEW_SMS_FROM`: one of the account's numbers, or a messaging
//! service `MG...`). A text Twilio refuses is answered with Twilio's code
//! and message and nothing is stored.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use callview_core::model::{IncomingText, StoredText};
use callview_core::text::{MessageSid, Text};
use callview_core::text_callback::{TextCallback, TextMerge};
use callview_core::text_sync::ingest_texts_in;
use callview_core::twilio::{OutgoingText, TextSender, TwilioClient};
use callview_core::{EndpointKind, TwilioError};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::events::ServerEvent;
use crate::state::AppState;
use crate::views::{iso, millis, ContactJson};

/// The path of Twilio's message webhook.
pub const MESSAGES_WEBHOOK_PATH: &str = "/webhooks/twilio/messages";

/// How texts are sent: from whom, through which client, and where Twilio
/// posts their status callbacks.
#[derive(Clone)]
pub struct Texting {
    /// `From` or `MessagingServiceSid`.
    pub sender: TextSender,
    /// The account.
    pub client: Arc<dyn TwilioClient>,
    /// `StatusCallback` (the server's public URL and
    /// [`MESSAGES_WEBHOOK_PATH`]); without a public URL, statuses arrive
    /// with the next sync.
    pub status_callback: Option<String>,
}

impl std::fmt::Debug for Texting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Texting")
            .field("sender", &self.sender)
            .field("status_callback", &self.status_callback)
            .finish_non_exhaustive()
    }
}

/// One media item of an MMS, served through this server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MediaJson {
    /// `ME...`.
    pub sid: String,
    /// Twilio's content type.
    pub content_type: Option<String>,
    /// The path on this server that serves it.
    pub url: String,
}

/// A text's `metadata`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TextMetadataJson {
    /// The message SID.
    pub message_sid: String,
    /// Twilio's status (`queued`, `sent`, `delivered`, `received`, ...).
    pub status: String,
    /// SMS segments.
    pub num_segments: Option<u32>,
    /// Media attached.
    pub num_media: u32,
    /// The media, served through this server.
    pub media: Vec<MediaJson>,
    /// Cost as Twilio wrote it, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// Currency of `price`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_unit: Option<String>,
    /// Twilio's error code when delivery failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    /// Twilio's error message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// `inbound`, `outbound` or `internal`.
    pub actual_direction: String,
    /// Twilio's direction.
    pub twilio_direction: String,
    /// Raw `from`.
    pub from_number: String,
    /// Raw `to`.
    pub to_number: String,
    /// The messaging service, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messaging_service_sid: Option<String>,
    /// ISO 8601, once sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_sent: Option<String>,
}

/// A text in a thread (the seed's `Message` with `type` `sms` or `mms`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TextJson {
    /// The message SID (texts have no editable row).
    pub id: String,
    /// The message SID.
    pub external_id: String,
    /// `sms` or `mms`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Twilio's direction.
    pub direction: String,
    /// Unix milliseconds: when it was sent or received.
    pub created_at: i64,
    /// `💬 Inbound text`.
    pub subject: String,
    /// The text.
    pub body: String,
    /// Its first words.
    pub blurb: String,
    /// The conversation's id.
    pub conversation_id: String,
    /// The conversation's contact.
    pub contact: ContactJson,
    /// Twilio's values.
    pub metadata: TextMetadataJson,
}

/// The longest preview of a text's body.
const BLURB_CHARS: usize = 80;

/// Builds a text's JSON.
pub fn text_json(stored: &StoredText, contact: &ContactJson) -> TextJson {
    let t = &stored.text;
    let sid = t.sid.to_string();
    let direction = stored.actual_direction.as_str();
    let kind = t.kind().as_str();
    let subject = match (kind, direction) {
        ("mms", "inbound") => "🖼️ Inbound picture message".to_owned(),
        ("mms", _) => "🖼️ Outbound picture message".to_owned(),
        (_, "inbound") => "💬 Inbound text".to_owned(),
        (_, "internal") => "💬 Internal text".to_owned(),
        _ => "💬 Outbound text".to_owned(),
    };
    let flat: String = t.body.split_whitespace().collect::<Vec<_>>().join(" ");
    let blurb = if flat.chars().count() > BLURB_CHARS {
        let cut: String = flat.chars().take(BLURB_CHARS - 1).collect();
        format!("{}…", cut.trim_end())
    } else if flat.is_empty() && t.num_media > 0 {
        "🖼️ Picture".to_owned()
    } else {
        flat
    };
    TextJson {
        id: sid.clone(),
        external_id: sid.clone(),
        kind,
        direction: t.direction.as_str().to_owned(),
        created_at: millis(t.at().unwrap_or_else(Utc::now)),
        subject,
        body: t.body.clone(),
        blurb,
        conversation_id: stored.conversation_id.to_string(),
        contact: contact.clone(),
        metadata: TextMetadataJson {
            message_sid: sid.clone(),
            status: t.status.as_str().to_owned(),
            num_segments: t.num_segments,
            num_media: t.num_media,
            media: stored
                .media
                .iter()
                .map(|m| MediaJson {
                    sid: m.sid.clone(),
                    content_type: m.content_type.clone(),
                    url: media_path(&t.sid, &m.sid),
                })
                .collect(),
            price: t.price.map(|p| p.to_string()),
            price_unit: t.price_unit.clone(),
            error_code: t.error_code,
            error_message: t.error_message.clone(),
            actual_direction: direction.to_owned(),
            twilio_direction: t.direction.as_str().to_owned(),
            from_number: t.from.clone().unwrap_or_default(),
            to_number: t.to.clone().unwrap_or_default(),
            messaging_service_sid: t.messaging_service_sid.clone(),
            date_sent: t.date_sent.map(iso),
        },
    }
}

/// The path that serves media `media_sid` of text `sid`.
pub fn media_path(sid: &MessageSid, media_sid: &str) -> String {
    format!("/api/texts/{sid}/media/{media_sid}")
}

/// What `POST /api/conversations/{id}/messages` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    /// The text.
    pub body: String,
}

/// `POST /api/conversations/{id}/messages`: sends a text to the
/// conversation's party and stores it at once.
pub async fn send(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<SendBody>, JsonRejection>,
) -> Result<(StatusCode, Json<TextJson>), ApiError> {
    let Some(texting) = state.texting() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "sending_disabled",
            "sending texts is off on this server (set CALLVIEW_SMS_FROM to the number or messaging service to send from)",
        ));
    };
    let id = crate::api::path_id(path)?;
    let Json(SendBody { body }) = body.map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!("expected {{\"body\": \"...\"}}: {}", e.body_text()),
        )
    })?;
    OutgoingText::check_body(&body).map_err(|m| ApiError::bad_request("invalid_body", m))?;
    let view = state
        .store()
        .conversation(id)
        .await
        .map_err(crate::api::missing_conversation(id))?;
    let key = view.contact.phone_number.clone();
    let party = state.normalizer().classify(Some(&key));
    if party.kind != EndpointKind::Phone {
        return Err(ApiError::bad_request(
            "cannot_text",
            format!(
                "{} cannot receive texts: only phone numbers can (this party is {})",
                view.conversation.external_id,
                match party.kind {
                    EndpointKind::Anonymous => "anonymous",
                    EndpointKind::SipPhone | EndpointKind::SipEndpoint => "a SIP address",
                    EndpointKind::Client => "a Voice SDK client",
                    _ => "not a phone number",
                }
            ),
        ));
    }
    let outgoing = OutgoingText {
        to: party.canonical,
        from: texting.sender.clone(),
        body,
        status_callback: texting.status_callback.clone(),
    };
    let sent = match texting.client.send_text(&outgoing).await {
        Ok(sent) => sent,
        Err(TwilioError::Api {
            status,
            code,
            message,
            ..
        }) => {
            tracing::info!(status, code, "Twilio refused a text");
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "twilio_refused",
                format!(
                    "Twilio refused the text{}: {message}",
                    code.map(|c| format!(" (error {c})")).unwrap_or_default()
                ),
            )
            .with_detail("twilio_code", code.map_or(Value::Null, Value::from))
            .with_detail("twilio_message", Value::String(message)));
        }
        Err(e) => {
            tracing::warn!(error = %crate::error::ErrorChain(&e), "sending a text failed");
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "twilio_unavailable",
                "Twilio could not be reached to send the text; nothing was sent or stored",
            ));
        }
    };
    let sid = sent.sid.clone();
    let incoming = IncomingText {
        text: sent,
        media: Some(Vec::new()),
    };
    // A new text: always written (the merge never refuses).
    let _written = write_text(&state, &sid, |_| Ok(incoming)).await?;
    let stored = state.store().text(&sid).await?;
    let contact = crate::views::contact(&view.contact, state.normalizer());
    Ok((StatusCode::CREATED, Json(text_json(&stored, &contact))))
}

/// Writes text `sid` in one transaction: reads what is stored of it, asks
/// `merge` what to write (`Err(reason)`: nothing), plans and applies it,
/// and announces a change on the live events. Answers whether it wrote.
async fn write_text(
    state: &AppState,
    sid: &MessageSid,
    merge: impl FnOnce(Option<&Text>) -> Result<IncomingText, &'static str>,
) -> Result<Result<(), &'static str>, ApiError> {
    let Some(runner) = state.sync_runner() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sync_unavailable",
            "this server was started without a Twilio account to store texts for",
        ));
    };
    let rules = runner.engine().cached_rules().await?;
    let mut tx = state.store().begin_ingest().await?;
    let stored = tx
        .load_texts(std::slice::from_ref(sid))
        .await?
        .pop()
        .map(|s| s.text);
    let incoming = match merge(stored.as_ref()) {
        Ok(incoming) => incoming,
        Err(reason) => return Ok(Err(reason)),
    };
    let stats = ingest_texts_in(tx.as_mut(), &rules, vec![incoming]).await?;
    tx.commit().await?;
    if stats.texts_inserted + stats.texts_updated > 0 {
        state.events().publish(ServerEvent::changed(
            stats.texts_inserted,
            stats.texts_updated,
        ));
    }
    Ok(Ok(()))
}

/// `GET /api/texts/{sid}/media/{media_sid}`: one media item of a stored
/// MMS, streamed from Twilio with its `Content-Type` (redirects followed
/// without credentials).
pub async fn media(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path((sid, media_sid))) = path else {
        return Err(ApiError::not_found("no such media"));
    };
    let sid = MessageSid::new(sid).ok_or_else(|| ApiError::not_found("no such text"))?;
    let stored = match state.store().text(&sid).await {
        Ok(stored) => stored,
        Err(callview_core::StoreError::NotFound(_)) => {
            return Err(ApiError::not_found(format!("no text {sid}")))
        }
        Err(e) => return Err(e.into()),
    };
    // Only media the stored text lists: the proxy fetches nothing else.
    if !stored.media.iter().any(|m| m.sid == media_sid) {
        return Err(ApiError::not_found(format!(
            "text {sid} has no media {media_sid}"
        )));
    }
    let Some(source) = state.recordings() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "media_unavailable",
            "this server has no Twilio account to fetch media from",
        ));
    };
    let content = match source.client.text_media_content(&sid, &media_sid).await {
        Ok(content) => content,
        Err(TwilioError::NotFound { .. }) => {
            return Err(ApiError::not_found(format!(
                "Twilio no longer has media {media_sid} of text {sid}"
            )))
        }
        Err(e) => {
            tracing::warn!(error = %crate::error::ErrorChain(&e), "fetching MMS media failed");
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "twilio_unavailable",
                "Twilio could not be reached for this media",
            ));
        }
    };
    let mut response = Body::from_stream(content.body).into_response();
    let headers = response.headers_mut();
    let content_type = content
        .content_type
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok())
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    if let Some(length) = content.content_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    // Media never change: the browser may keep them.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// [`MESSAGES_WEBHOOK_PATH`]: a signed status callback of a sent text, or
/// an inbound text, stored at once.
pub async fn webhook(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = crate::webhook::verified_params(&state, &uri, &headers, &body)?;
    let callback = TextCallback::from_form(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| ApiError::bad_request("invalid_callback", e.to_string()))?;
    let sid = callback.sid.clone();
    // Read, merge and write in one transaction.
    let written = write_text(&state, &sid, |stored| {
        match callback.merge(stored, Utc::now()) {
            TextMerge::Apply(incoming) => Ok(*incoming),
            TextMerge::Ignore(reason) => Err(reason),
        }
    })
    .await?;
    if let Err(reason) = written {
        tracing::debug!(sid = %sid, reason, "message callback ignored");
        return Ok(ack(
            callback.is_inbound(),
            json!({"status": "ignored", "message_sid": sid, "reason": reason}),
        ));
    }
    tracing::info!(sid = %sid, inbound = callback.is_inbound(), "message webhook applied");
    Ok(ack(
        callback.is_inbound(),
        json!({"status": "applied", "message_sid": sid}),
    ))
}

/// The answer to a message webhook: for an inbound text Twilio expects
/// TwiML (an empty `<Response/>` sends no reply); for a status callback,
/// JSON.
fn ack(inbound: bool, json: Value) -> Response {
    if inbound {
        (
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>",
        )
            .into_response()
    } else {
        Json(json).into_response()
    }
}
