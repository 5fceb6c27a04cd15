//! The cookie that lets the viewer's `<audio>` element play recordings
//! (and `<img>` show an MMS's pictures) when the API needs a bearer token:
//! such elements cannot send an `Authorization` header, and the token must
//! never appear in a URL.
//!
//! `POST /api/session` (with the bearer token) answers with
//! `Set-Cookie: callview_media=v2.<expiry>.<subject>.<mac>`: an HMAC-SHA1,
//! keyed by a secret derived from the API token (or, without one, a random
//! secret kept in the database, [`crate::auth`]), of the expiry (Unix
//! seconds) and the subject: the name of the token that asked for it
//! (hex), so that revoking the token ends its cookies too. The
//! cookie is `HttpOnly`, `SameSite=Strict`, sent under `/api/` and valid
//! for [`LIFETIME`]; it is accepted only on `GET`/`HEAD` of a recording's
//! audio or of a text's media ([`opens`]), never on the rest of the API,
//! so it grants nothing but listening and looking. Changing the API token
//! invalidates every cookie.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The cookie's name.
pub const COOKIE_NAME: &str = "callview_media";
/// How long a cookie stays valid.
pub const LIFETIME: Duration = Duration::hours(12);
/// Where the browser sends it (it is accepted only on [`opens`] paths).
pub const COOKIE_PATH: &str = "/api/";

/// A cookie value for `subject` (a token's name) valid until `now + LIFETIME`.
pub fn issue(key: &[u8], subject: &str, now: DateTime<Utc>) -> String {
    let expiry = (now + LIFETIME).timestamp();
    let subject = hex(subject.as_bytes());
    format!("v2.{expiry}.{subject}.{}", hex(&mac(key, expiry, &subject)))
}

/// The subject of `value` when it was issued with `key` and has not
/// expired at `now`. The MAC is compared in constant time.
pub fn verify(key: &[u8], value: &str, now: DateTime<Utc>) -> Option<String> {
    let mut parts = value.trim().split('.');
    let (Some("v2"), Some(expiry), Some(subject), Some(given), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let expiry = expiry.parse::<i64>().ok()?;
    if expiry <= now.timestamp() || expiry > (now + LIFETIME).timestamp() + 60 {
        return None;
    }
    let given = unhex(given)?;
    let mut m = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(format!("{expiry}.{subject}").as_bytes());
    m.verify_slice(&given).ok()?;
    String::from_utf8(unhex(subject)?).ok()
}

/// The `Set-Cookie` header value for `value`, for the API served under
/// `prefix` (empty at the root).
pub fn set_cookie(value: &str, prefix: &str) -> String {
    format!(
        "{COOKIE_NAME}={value}; Path={prefix}{COOKIE_PATH}; Max-Age={}; HttpOnly; SameSite=Strict",
        LIFETIME.num_seconds()
    )
}

/// The value of our cookie in a `Cookie` request header, if any.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE_NAME).then_some(value)
    })
}

/// Whether `path` is a recording's audio (what the cookie may open).
/// Whether the cookie opens `path`: a recording's audio or a text's media.
pub fn opens(path: &str) -> bool {
    is_audio_path(path) || is_text_media_path(path)
}

/// `/api/texts/{sid}/media/{media_sid}`.
pub fn is_text_media_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/api/texts/") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    matches!(parts.as_slice(), [sid, "media", media] if !sid.is_empty() && !media.is_empty())
}

/// `/api/recordings/{sid}/audio`.
pub fn is_audio_path(path: &str) -> bool {
    path.strip_prefix("/api/recordings/")
        .and_then(|rest| rest.strip_suffix("/audio"))
        .is_some_and(|sid| !sid.is_empty() && !sid.contains('/'))
}

fn mac(key: &[u8], expiry: i64, subject_hex: &str) -> Vec<u8> {
    let mut m = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(format!("{expiry}.{subject_hex}").as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_verifies_with_its_key_until_it_expires() {
        let now = Utc::now();
        let value = issue(b"key", "alice", now);
        assert_eq!(verify(b"key", &value, now).as_deref(), Some("alice"));
        assert_eq!(verify(b"other key", &value, now), None);
        assert_eq!(
            verify(b"key", &value, now + LIFETIME + Duration::seconds(1)),
            None
        );
        // A forged expiry or subject breaks the MAC.
        let forged = value.replacen("v2.", "v2.9", 1);
        assert_eq!(verify(b"key", &forged, now), None);
        let other = issue(b"key", "bob", now);
        let parts: Vec<&str> = value.split('.').collect();
        let bob: Vec<&str> = other.split('.').collect();
        let swapped = format!("v2.{}.{}.{}", parts[1], bob[2], parts[3]);
        assert_eq!(verify(b"key", &swapped, now), None);
        assert_eq!(verify(b"key", "v2.x.y.z", now), None);
        assert_eq!(verify(b"key", "", now), None);
    }

    #[test]
    fn only_audio_paths_accept_it() {
        assert!(is_audio_path("/api/recordings/RE0123/audio"));
        assert!(!is_audio_path("/api/recordings/RE0123"));
        assert!(!is_audio_path("/api/recordings//audio"));
        assert!(!is_audio_path("/api/recordings/a/b/audio"));
        assert!(!is_audio_path("/api/conversations"));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        assert_eq!(
            from_cookie_header("a=1; callview_media=v1.2.ab; b=2"),
            Some("v1.2.ab")
        );
        assert_eq!(from_cookie_header("a=1"), None);
    }
}
