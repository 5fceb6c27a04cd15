//! Errors from talking to Twilio.

/// Why a request to Twilio failed. Never contains a credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with an error status and (usually) its error body.
    #[error("Twilio answered {status}{}: {message}{}", code.map(|c| format!(" (error {c})")).unwrap_or_default(), more_info.as_ref().map(|m| format!(" (see {m})")).unwrap_or_default())]
    Api {
        /// The HTTP status.
        status: u16,
        /// Twilio's error code (e.g. 20404), when the body had one.
        code: Option<i64>,
        /// Twilio's message, or a description of the status.
        message: String,
        /// Twilio's link to the error's documentation.
        more_info: Option<String>,
    },
    /// Credentials were rejected (401/403): nothing was retried.
    #[error("Twilio rejected the credentials ({status}): {message}; check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET)")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// Twilio's message.
        message: String,
    },
    /// The resource does not exist (404).
    #[error("not found at Twilio: {what}")]
    NotFound {
        /// What was asked for.
        what: String,
    },
    /// The connection failed, was reset, or timed out.
    #[error("could not reach Twilio: {0}")]
    Transport(String),
    /// The body was not the JSON we expected (for example truncated).
    #[error("Twilio sent a body that is not valid JSON for {context}: {reason}")]
    Decode {
        /// Which request.
        context: String,
        /// What the parser said.
        reason: String,
    },
    /// Every retry failed; `last` is the final failure.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// How many requests were made.
        attempts: u32,
        /// The last failure.
        last: Box<TwilioError>,
    },
    /// The client is not configured (a missing environment variable, a bad URL).
    #[error("Twilio is not configured: {0}")]
    Config(String),
}

impl TwilioError {
    /// Whether retrying the same request may succeed (429, 5xx, transport and
    /// decode failures).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status == 429 || *status >= 500,
            Self::Transport(_) | Self::Decode { .. } => true,
            Self::Unauthorized { .. }
            | Self::NotFound { .. }
            | Self::RetriesExhausted { .. }
            | Self::Config(_) => false,
        }
    }
}
