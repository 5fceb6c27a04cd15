//! Status callbacks of sent texts: what Twilio POSTs to a message's
//! `StatusCallback` URL when its status changes, signed as Twilio signs
//! webhooks, and the background task that delivers them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// The auth token callbacks are signed with until another is set (the
/// password `callview` sends to a simulator when only its URL is known).
pub const DEFAULT_AUTH_TOKEN: &str = "simulator";

/// One status callback: the URL and the form fields Twilio posts
/// (`MessageSid`, `MessageStatus`, `SmsSid`, `SmsStatus`, `From`, `To`,
/// `AccountSid`, `ApiVersion`, and `ErrorCode` on failure).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusCallback {
    /// The message's `StatusCallback` URL, exactly as given.
    pub url: String,
    /// The form fields, in the order they are sent.
    pub params: Vec<(String, String)>,
}

impl StatusCallback {
    /// The value of one field.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `X-Twilio-Signature` of this callback signed with `auth_token`
    /// (see [`twilio_signature`]).
    pub fn signature(&self, auth_token: &str) -> String {
        twilio_signature(auth_token, &self.url, &self.params)
    }

    /// The body: `application/x-www-form-urlencoded`.
    pub fn form_body(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.params)
            .finish()
    }
}

/// Twilio's request signature:
/// `base64(HMAC-SHA1(auth_token, url + name1 + value1 + name2 + value2 ...))`
/// over the POST parameters sorted by name (then value).
///
/// ```
/// let params = [("MessageSid".to_owned(), "SM1".to_owned())];
/// let s = callview_sim::twilio_signature("token", "https://example.com/cb", &params);
/// assert_eq!(s.len(), 28);
/// ```
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The sending side shared by every clone of a
/// [`SimulatedTwilio`](crate::SimulatedTwilio): the signing key and the
/// queue of the delivery task (started on first use, on the runtime that
/// uses it).
#[derive(Debug)]
pub(crate) struct Dispatcher {
    auth_token: Arc<Mutex<String>>,
    queue: Mutex<Option<UnboundedSender<StatusCallback>>>,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Self {
            auth_token: Arc::new(Mutex::new(DEFAULT_AUTH_TOKEN.to_owned())),
            queue: Mutex::new(None),
        }
    }
}

impl Dispatcher {
    /// Signs later callbacks with `token`.
    pub(crate) fn set_auth_token(&self, token: &str) {
        *self.auth_token.lock().unwrap_or_else(|p| p.into_inner()) = token.to_owned();
    }

    /// The queue of a running delivery task, starting one when there is
    /// none (or the previous one's runtime is gone); `None` outside a Tokio
    /// runtime.
    pub(crate) fn queue(&self) -> Option<UnboundedSender<StatusCallback>> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = queue.as_ref().filter(|tx| !tx.is_closed()) {
            return Some(tx.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = unbounded_channel();
        runtime.spawn(deliver(rx, Arc::clone(&self.auth_token)));
        *queue = Some(tx.clone());
        Some(tx)
    }
}

/// POSTs each callback in turn (so a text's callbacks arrive in order),
/// signed with the current auth token. Failures are dropped, as Twilio
/// does not retry message status callbacks by default.
async fn deliver(mut rx: UnboundedReceiver<StatusCallback>, auth_token: Arc<Mutex<String>>) {
    let Ok(http) = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent("TwilioProxy/1.1")
        .build()
    else {
        return;
    };
    while let Some(callback) = rx.recv().await {
        let token = auth_token.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let _ = http
            .post(&callback.url)
            .header("X-Twilio-Signature", callback.signature(&token))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(callback.form_body())
            .send()
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_twilios_documented_example() {
        // Twilio's documentation example ("Validating requests").
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(
            twilio_signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }
}
