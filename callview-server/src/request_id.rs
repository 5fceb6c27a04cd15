//! Request ids: every request gets one, in the `X-Request-Id` header of
//! its response and in the `request_id` field of its log lines.
//!
//! An id the client (or a proxy in front) sent is kept when it is short
//! and plain (at most [`MAX_LEN`] characters among `A-Z a-z 0-9 - _ . : / + =`),
//! so one id follows a request through every service; anything else is
//! replaced by a new random UUID (never logged as sent: a header is the
//! client's text, and a log line must not carry whatever it holds).

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The header carrying the id, both ways.
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest id accepted from a client.
pub const MAX_LEN: usize = 128;

/// A request's id, in the request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ever built from text that passed `is_acceptable`, or a UUID.
        self.0.to_str().unwrap_or_default()
    }
}

/// Whether a client's id is kept as it is.
///
/// ```
/// use callview_server::request_id::is_acceptable;
/// assert!(is_acceptable("7f3c2a9e-1b4d-4c8e-9f00-0a1b2c3d4e5f"));
/// assert!(is_acceptable("lb:1234/abc+def="));
/// assert!(!is_acceptable(""));
/// assert!(!is_acceptable("two words"));
/// assert!(!is_acceptable("line\nbreak"));
/// assert!(!is_acceptable(&"x".repeat(129)));
/// ```
pub fn is_acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
}

/// A new id: a random (v4) UUID.
pub fn generate() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// The request's id: the client's when acceptable, else a new one.
fn choose(req: &Request) -> HeaderValue {
    req.headers()
        .get(&HEADER)
        .filter(|v| v.to_str().is_ok_and(is_acceptable))
        .cloned()
        .unwrap_or_else(generate)
}

/// Middleware: picks the request's id, puts it in the request (header and
/// [`RequestId`] extension, for the handlers and the trace span) and in
/// the response's `X-Request-Id`.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = choose(&req);
    req.headers_mut().insert(HEADER.clone(), id.clone());
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(req).await;
    response.headers_mut().insert(HEADER.clone(), id);
    response
}

/// The id [`request_id`] gave `req` (for the trace span); empty when the
/// middleware did not run.
pub fn of(req: &Request) -> &str {
    req.extensions()
        .get::<RequestId>()
        .map(RequestId::as_str)
        .unwrap_or_default()
}
