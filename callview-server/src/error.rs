//! The API's error shape: `{"error": {"code": "...", "message": "..."}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use callview_core::StoreError;
use serde_json::json;

/// An error answered as JSON with an HTTP status.
///
/// Every error the API returns has this shape; `code` is a stable,
/// machine-readable word and `message` a sentence for people.
///
/// ```
/// use callview_server::ApiError;
/// let e = ApiError::bad_request("invalid_parameter", "`limit` must be between 1 and 200");
/// assert_eq!(e.status().as_u16(), 400);
/// assert_eq!(e.code(), "invalid_parameter");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// More fields of the `error` object (Twilio's code of a refusal).
    details: Vec<(&'static str, serde_json::Value)>,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// Adds a field to the `error` object.
    pub fn with_detail(mut self, name: &'static str, value: serde_json::Value) -> Self {
        self.details.push((name, value));
        self
    }

    /// 400 Bad Request.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 Not Found with code `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500 with a generic message; the details go to the log, never to the client.
    pub fn internal(details: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %details, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to handle the request; the details are in the server log",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({"code": self.code, "message": self.message});
        for (name, value) in &self.details {
            error[*name] = value.clone();
        }
        json!({ "error": error })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(format!("not found: {what}")),
            StoreError::Conflict(what) => Self::new(StatusCode::CONFLICT, "conflict", what),
            StoreError::Invalid(what) => Self::bad_request("invalid_request", what),
            StoreError::LockLost(what) => Self::new(StatusCode::CONFLICT, "sync_lock_lost", what),
            StoreError::Stale(what) => Self::new(
                StatusCode::PRECONDITION_FAILED,
                "changed_elsewhere",
                format!("changed elsewhere: {what}"),
            ),
            backend @ StoreError::Backend { .. } => Self::internal(&ErrorChain(&backend)),
        }
    }
}

/// Displays an error with its chain of sources (`a: b: c`), for logs.
pub(crate) struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
