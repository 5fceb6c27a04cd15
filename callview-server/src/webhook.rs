//! `POST /webhooks/twilio/call-status`: Twilio's status callbacks, so a
//! call's status is stored the moment it changes (the live viewer shows it
//! without waiting for the next sync).
//!
//! The route sits outside the `/api` bearer-token check: Twilio cannot send
//! a bearer token, so the request is authenticated by its
//! `X-Twilio-Signature` instead, which is
//! `base64(HMAC-SHA1(auth token, URL + sorted parameters))`, where the URL
//! is the one Twilio requested (the configured public base URL plus the
//! path and query) and every POST parameter follows, sorted by name, each
//! name immediately followed by its value. The comparison takes constant
//! time. A request without a signature, with a wrong one, or arriving
//! while no auth token is configured is answered 403 JSON.
//!
//! A verified callback is merged into the stored call
//! ([`callview_core::callback`]: replays and out-of-order events are
//! ignored, a final status never goes back) and applied through the
//! planner, all in one store transaction
//! ([`callview_core::Store::begin_ingest`]): the stored call is read, the
//! callback merged into it and the plan written there, so two callbacks
//! of one call, or a callback and a sync page, in this process or another,
//! never undo each other. A change is announced once on `GET /api/events`
//! (a `changed` event) so open viewers refresh at once. A call not stored yet is fetched from Twilio (when
//! a client is configured) or built from the callback alone; the next sync
//! completes it.
//!
//! ```
//! use callview_server::webhook::twilio_signature;
//! let params = [("CallSid".to_owned(), "CA1".to_owned()), ("CallStatus".to_owned(), "ringing".to_owned())];
//! let signature = twilio_signature("token", "https://example.com/webhooks/twilio/call-status", &params);
//! assert_eq!(signature.len(), 28);
//! ```

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use callview_core::callback::{Merge, StatusCallback};
use callview_core::sync::ingest_in;
use callview_core::twilio::Secret;
use callview_core::{Call, TwilioError};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::signature::{signature_matches, signed_urls};
pub use crate::signature::{twilio_signature, WebhookConfig};
use crate::state::AppState;

/// The webhook's path.
pub const CALL_STATUS_PATH: &str = "/webhooks/twilio/call-status";

/// How long the webhook waits for Twilio when it fetches a call it does not know.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

fn forbidden(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, message)
}

/// The handler of [`CALL_STATUS_PATH`].
pub async fn call_status(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let params = verified_params(&state, &uri, &headers, &body)?;
    let config = state
        .webhook()
        .expect("verified_params refuses requests without a webhook configuration");
    let callback = StatusCallback::from_form(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| ApiError::bad_request("invalid_callback", e.to_string()))?;
    let Some(runner) = state.sync_runner() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "sync_unavailable",
            "this server was started without a Twilio account to store callbacks for",
        ));
    };
    let engine = runner.engine();

    let sid = callback.call_sid.clone();
    // A call not stored yet is fetched from Twilio before the transaction
    // opens (no network wait while every writer waits for it).
    let peeked = state
        .store()
        .load_trees(std::slice::from_ref(&sid))
        .await?
        .into_iter()
        .any(|row| row.call.sid == sid);
    let fetched = if peeked {
        None
    } else {
        fetch(config, &callback).await
    };
    let rules = engine.cached_rules().await?;

    // Read, merge and write in one store transaction: a sync page or a
    // callback in another process waits, and this one merges into what
    // that one committed.
    let mut tx = state.store().begin_ingest().await?;
    let stored: Option<Call> = tx
        .load_trees(std::slice::from_ref(&sid))
        .await?
        .into_iter()
        .find(|row| row.call.sid == sid)
        .map(|row| row.call);
    let call = match callback.merge(stored.as_ref().or(fetched.as_ref())) {
        Merge::Apply(call) => *call,
        Merge::Ignore(reason) => {
            tracing::debug!(sid = %sid, reason, "status callback ignored");
            return Ok(Json(
                json!({"status": "ignored", "call_sid": sid, "reason": reason}),
            ));
        }
    };
    let stats = ingest_in(tx.as_mut(), &rules, vec![call]).await?;
    tx.commit().await?;
    if stats.inserted + stats.updated + stats.moved > 0 {
        // Open viewers refresh at once (GET /api/events): once per change.
        state.events().publish(crate::events::ServerEvent::changed(
            stats.inserted,
            stats.updated + stats.moved,
        ));
    }
    tracing::info!(sid = %sid, status = ?callback.status.as_ref().map(ToString::to_string), "status callback applied");
    Ok(Json(
        json!({"status": "applied", "call_sid": sid, "stats": stats}),
    ))
}

/// The form parameters of a webhook request whose `X-Twilio-Signature`
/// verifies (403 JSON otherwise, or when no auth token is configured).
pub(crate) fn verified_params(
    state: &AppState,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Vec<(String, String)>, ApiError> {
    let Some(config) = state.webhook().filter(|c| c.is_enabled()) else {
        return Err(forbidden(
            "webhook_disabled",
            "status callbacks are refused: no Twilio auth token is configured to verify them (set TWILIO_AUTH_TOKEN)",
        ));
    };
    let Some(given) = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
    else {
        return Err(forbidden(
            "missing_signature",
            "the request has no X-Twilio-Signature header",
        ));
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let urls = signed_urls(config, headers, path_and_query);
    let token = config.auth_token.as_ref().map(Secret::expose).unwrap_or("");
    if !signature_matches(token, &urls, &params, given) {
        tracing::warn!(path = %uri.path(), "refused a status callback with a wrong signature (check --public-url / CALLVIEW_PUBLIC_URL)");
        return Err(forbidden(
            "invalid_signature",
            "the X-Twilio-Signature does not match this request",
        ));
    }

    Ok(params)
}

/// The call from Twilio, when a client is configured and answers in time.
async fn fetch(config: &WebhookConfig, callback: &StatusCallback) -> Option<Call> {
    let client = config.client.as_ref()?;
    match tokio::time::timeout(FETCH_TIMEOUT, client.fetch_call(&callback.call_sid)).await {
        Ok(Ok(call)) => Some(call),
        Ok(Err(TwilioError::NotFound { .. })) => None,
        Ok(Err(e)) => {
            tracing::warn!(sid = %callback.call_sid, error = %crate::error::ErrorChain(&e), "could not fetch the call of a status callback; storing what the callback says");
            None
        }
        Err(_) => {
            tracing::warn!(sid = %callback.call_sid, "Twilio did not answer in time; storing what the callback says");
            None
        }
    }
}
