//! Twilio's request signatures (`X-Twilio-Signature`) and what the
//! status-callback webhook ([`crate::webhook`]) needs to check them.
//!
//! ```
//! use callview_server::webhook::twilio_signature;
//! let params = [("CallSid".to_owned(), "CA1".to_owned())];
//! assert_eq!(twilio_signature("token", "https://example.com/x", &params).len(), 28);
//! ```

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use callview_core::twilio::Secret;
use callview_core::TwilioClient;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// What the status-callback webhook needs: the account's auth token (the
/// key of Twilio's signatures), the public base URL Twilio calls, and
/// optionally a Twilio client to fetch calls not stored yet.
///
/// `Debug` never shows the token.
pub struct WebhookConfig {
    pub(crate) auth_token: Option<Secret>,
    public_url: Option<String>,
    pub(crate) client: Option<Arc<dyn TwilioClient>>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "[redacted]"),
            )
            .field("public_url", &self.public_url)
            .field("client", &self.client.is_some())
            .finish()
    }
}

impl WebhookConfig {
    /// A webhook verifying signatures with `auth_token` (`None` or empty:
    /// every callback is refused with 403, as nothing can be verified).
    pub fn new(auth_token: Option<Secret>) -> Self {
        Self {
            auth_token: auth_token.filter(|t| !t.expose().is_empty()),
            public_url: None,
            client: None,
        }
    }

    /// The base URL Twilio uses to reach this server (scheme, host, port
    /// and any prefix a proxy strips), e.g. `https://calls.example.com`.
    /// Without it the URL is rebuilt from the request's `Host` and
    /// `X-Forwarded-Proto` headers.
    pub fn with_public_url(mut self, url: Option<&str>) -> Self {
        self.public_url = url
            .map(|u| u.trim().trim_end_matches('/').to_owned())
            .filter(|u| !u.is_empty());
        self
    }

    /// The client used to fetch a call the store does not hold yet.
    pub fn with_client(mut self, client: Arc<dyn TwilioClient>) -> Self {
        self.client = Some(client);
        self
    }

    /// Whether callbacks can be verified (an auth token is set).
    pub fn is_enabled(&self) -> bool {
        self.auth_token.is_some()
    }
}

/// Twilio's signature of a request to `url` with the POST `params`:
/// `base64(HMAC-SHA1(auth_token, url + name1 + value1 + name2 + value2 ...))`
/// with the parameters sorted by name (then value), duplicates once.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `given` is the signature of one of `urls` (compared in
/// constant time; every candidate is computed and compared).
pub(crate) fn signature_matches(
    auth_token: &str,
    urls: &[String],
    params: &[(String, String)],
    given: &str,
) -> bool {
    let mut ok = subtle::Choice::from(0);
    for url in urls {
        let expected = twilio_signature(auth_token, url, params);
        ok |= expected.as_bytes().ct_eq(given.as_bytes());
    }
    bool::from(ok)
}

/// The URLs Twilio may have signed: the public URL (or the one rebuilt from
/// the headers) plus the path and query, and the same with the default
/// port added or removed (Twilio's helper libraries accept either).
pub(crate) fn signed_urls(
    config: &WebhookConfig,
    headers: &HeaderMap,
    path_and_query: &str,
) -> Vec<String> {
    let base = match &config.public_url {
        Some(base) => base.clone(),
        None => {
            let header_text = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.split(',').next().unwrap_or("").trim().to_owned())
                    .filter(|v| !v.is_empty())
            };
            let scheme = header_text("x-forwarded-proto").unwrap_or_else(|| "http".into());
            let host = header_text(header::HOST.as_str()).unwrap_or_default();
            format!("{scheme}://{host}")
        }
    };
    let url = format!("{base}{path_and_query}");
    let mut urls = vec![url.clone()];
    if let Ok(mut parsed) = url::Url::parse(&url) {
        if parsed.port().is_none() {
            if let Some(port) = parsed.port_or_known_default() {
                if parsed.set_port(Some(port)).is_ok() {
                    // `Url` drops a default port when serialising; add it by hand.
                    let host = parsed.host_str().unwrap_or_default().to_owned();
                    urls.push(url.replacen(&host, &format!("{host}:{port}"), 1));
                }
            }
        } else if let Some(port) = parsed.port() {
            let default = match parsed.scheme() {
                "https" => Some(443),
                "http" => Some(80),
                _ => None,
            };
            if default == Some(port) {
                urls.push(url.replacen(&format!(":{port}"), "", 1));
            }
        }
    }
    urls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_documentation_example() {
        // The example of Twilio's "Webhooks security" page.
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let signature = twilio_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &params,
        );
        assert_eq!(signature, "GvWf1cFY/Q7PnoempGyD5oXAezc=");
    }

    #[test]
    fn default_ports_are_tried_both_ways() {
        let config =
            WebhookConfig::new(Some(Secret::new("t"))).with_public_url(Some("https://x.example/"));
        let urls = signed_urls(
            &config,
            &HeaderMap::new(),
            "/webhooks/twilio/call-status?a=1",
        );
        assert_eq!(
            urls,
            vec![
                "https://x.example/webhooks/twilio/call-status?a=1".to_owned(),
                "https://x.example:443/webhooks/twilio/call-status?a=1".to_owned(),
            ]
        );
    }
}
