//! Named API tokens with roles (issue 18).
//!
//! A person or a device gets a token of their own: a name (who edited
//! what), a [`Role`] (what it may do), a creation time, a last use and an
//! optional expiry. The token's text is 256 random bits, shown once when it
//! is made ([`TokenSecret::generate`]); stores keep only its SHA-256
//! ([`TokenHash`]), so a copy of the database opens nothing. A request's
//! token is hashed and looked up by hash ([`crate::Store::authenticate`]);
//! the stored hash is compared with the computed one in constant time.
//!
//! Nothing here does I/O: the store methods are on [`crate::Store`]
//! (`create_token`, `tokens`, `revoke_token`, `authenticate`).

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::twilio::Secret;

/// What a token may do. Ordered: `Viewer < Editor < Admin`; a token may
/// use every route whose required role is at most its own.
///
/// ```
/// use callview_core::access::Role;
/// assert!(Role::Viewer < Role::Editor && Role::Editor < Role::Admin);
/// assert_eq!("editor".parse::<Role>().unwrap(), Role::Editor);
/// assert_eq!(Role::Admin.as_str(), "admin");
/// assert!("owner".parse::<Role>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads everything (conversations, calls, recordings, statistics).
    Viewer,
    /// Also edits contacts, notes and tags.
    Editor,
    /// Also triggers syncs and manages tokens.
    Admin,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Admin];

    /// The role's name: `viewer`, `editor` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// Reads a role's name (case-insensitive, surrounding spaces ignored).
    pub fn parse(text: &str) -> Result<Self, AccessError> {
        let text = text.trim();
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                AccessError::Role(format!(
                    "{text:?} is not a role; use viewer, editor or admin"
                ))
            })
    }

    /// Whether a token of this role may do what needs `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = AccessError;

    fn from_str(text: &str) -> Result<Self, AccessError> {
        Self::parse(text)
    }
}

impl serde::Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A token name, role or expiry that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// The name is empty, too long, has characters other than letters,
    /// digits and `.`, `_`, `-`, `@`, or is reserved.
    #[error("invalid token name: {0}")]
    Name(String),
    /// Not a role.
    #[error("invalid role: {0}")]
    Role(String),
    /// The expiry is not a positive number of days within the limit.
    #[error("invalid expiry: {0}")]
    Expiry(String),
}

/// The name the server gives the `CALLVIEW_API_TOKEN` (an admin): stored
/// tokens may not take it.
pub const API_TOKEN_NAME: &str = "api-token";

/// The longest token name.
pub const MAX_NAME_LEN: usize = 64;

/// The longest expiry, in days (ten years).
pub const MAX_EXPIRY_DAYS: i64 = 3650;

/// `last_used_at` is written at most this often per token, so that
/// reading the API does not write to the database on every request.
pub const LAST_USED_GRANULARITY: Duration = Duration::seconds(60);

/// Checks a token name: 1 to [`MAX_NAME_LEN`] characters, letters
/// (any script), digits, `.`, `_`, `-`, `@`; not [`API_TOKEN_NAME`].
/// Returns it trimmed.
///
/// ```
/// use callview_core::access::validate_name;
/// assert_eq!(validate_name(" wall-screen ").unwrap(), "wall-screen");
/// assert!(validate_name("alice@example.com").is_ok());
/// assert!(validate_name("").is_err());
/// assert!(validate_name("two words").is_err());
/// assert!(validate_name("api-token").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<String, AccessError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AccessError::Name("a token needs a name".into()));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(AccessError::Name(format!(
            "a name has at most {MAX_NAME_LEN} characters"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
    {
        return Err(AccessError::Name(format!(
            "{name:?} holds {c:?}; use letters, digits, '.', '_', '-' and '@'"
        )));
    }
    if name.eq_ignore_ascii_case(API_TOKEN_NAME) {
        return Err(AccessError::Name(format!(
            "{API_TOKEN_NAME:?} is the name of CALLVIEW_API_TOKEN; choose another"
        )));
    }
    Ok(name.to_owned())
}

/// An expiry given in days from `now`: `None` for none; 1 to
/// [`MAX_EXPIRY_DAYS`] days.
pub fn expiry_after_days(
    days: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AccessError> {
    match days {
        None => Ok(None),
        Some(d) if (1..=MAX_EXPIRY_DAYS).contains(&d) => Ok(Some(now + Duration::days(d))),
        Some(d) => Err(AccessError::Expiry(format!(
            "{d} days; give 1 to {MAX_EXPIRY_DAYS} days"
        ))),
    }
}

/// The text of a token: `cv_` and 43 base64url characters (256 random
/// bits from the operating system). Never printed by `Debug` or
/// `Display`; [`TokenSecret::expose`] gives the text to show once.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(Secret);

impl TokenSecret {
    /// The prefix of every generated token.
    pub const PREFIX: &'static str = "cv_";

    /// A new random token.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(Secret::new(format!(
            "{}{}",
            Self::PREFIX,
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    /// Wraps a token someone sent.
    pub fn new(text: impl Into<String>) -> Self {
        Self(Secret::new(text))
    }

    /// The token's text. Call only where it is shown to its owner.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// What stores keep of it.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.expose())
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret([redacted])")
    }
}

/// The SHA-256 of a token's text, in lower-case hex: what stores keep and
/// look tokens up by.
///
/// ```
/// use callview_core::access::{TokenHash, TokenSecret};
/// let token = TokenSecret::generate();
/// assert_eq!(token.hash(), TokenHash::of(token.expose()));
/// assert_eq!(token.hash().as_str().len(), 64);
/// assert!(token.hash().matches(&TokenHash::of(token.expose())));
/// assert!(!token.hash().matches(&TokenHash::of("guess")));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    /// The hash of `token`'s text.
    pub fn of(token: &str) -> Self {
        let digest = Sha256::digest(token.as_bytes());
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// A hash read back from a store.
    pub fn from_stored(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares two hashes in constant time (for equal lengths): a store's
    /// lookup by hash is followed by this check.
    pub fn matches(&self, other: &TokenHash) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash opens nothing, but there is no reason to print it whole.
        write!(f, "TokenHash({}…)", &self.0[..self.0.len().min(8)])
    }
}

/// A token to store ([`crate::Store::create_token`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    /// Its name ([`validate_name`]).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The hash of its text.
    pub hash: TokenHash,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working (`None`: never).
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewToken {
    /// A new token named `name` (checked) with `role`, expiring at
    /// `expires_at`: the secret to show once, and what to store.
    pub fn generate(
        name: &str,
        role: Role,
        created_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(TokenSecret, NewToken), AccessError> {
        let name = validate_name(name)?;
        let secret = TokenSecret::generate();
        let token = NewToken {
            name,
            role,
            hash: secret.hash(),
            created_at,
            expires_at,
        };
        Ok((secret, token))
    }
}

/// A stored token, without its hash.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TokenRecord {
    /// Its name: who edits are recorded as made by.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was last used (to the minute, [`LAST_USED_GRANULARITY`]).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it stops working (`None`: never).
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked (`None`: it was not).
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Where a token stands at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    /// It opens the API.
    Active,
    /// Its expiry has passed.
    Expired,
    /// It was revoked.
    Revoked,
}

impl TokenStatus {
    /// `active`, `expired` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Expired => "expired",
            TokenStatus::Revoked => "revoked",
        }
    }
}

impl TokenRecord {
    /// Where the token stands at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> TokenStatus {
        if self.revoked_at.is_some() {
            TokenStatus::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            TokenStatus::Expired
        } else {
            TokenStatus::Active
        }
    }

    /// Whether `last_used_at` should be written for a use at `now`.
    pub fn last_use_is_stale(&self, now: DateTime<Utc>) -> bool {
        self.last_used_at
            .is_none_or(|t| t <= now - LAST_USED_GRANULARITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_long_random_and_url_safe() {
        let a = TokenSecret::generate();
        let b = TokenSecret::generate();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("cv_"));
        assert_eq!(a.expose().len(), 3 + 43);
        assert!(a.expose()[3..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert!(!format!("{a:?}").contains(&a.expose()[3..]));
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(
            TokenHash::of("abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn statuses() {
        let now = DateTime::from_timestamp(1_770_000_000, 0).unwrap();
        let mut t = TokenRecord {
            name: "a".into(),
            role: Role::Viewer,
            created_at: now,
            last_used_at: None,
            expires_at: Some(now + Duration::seconds(1)),
            revoked_at: None,
        };
        assert_eq!(t.status(now), TokenStatus::Active);
        assert_eq!(t.status(now + Duration::seconds(1)), TokenStatus::Expired);
        t.revoked_at = Some(now);
        assert_eq!(t.status(now), TokenStatus::Revoked);
        assert!(t.last_use_is_stale(now));
        t.last_used_at = Some(now);
        assert!(!t.last_use_is_stale(now + Duration::seconds(59)));
        assert!(t.last_use_is_stale(now + Duration::seconds(60)));
    }

    #[test]
    fn expiries() {
        let now = DateTime::from_timestamp(1_770_000_000, 0).unwrap();
        assert_eq!(expiry_after_days(None, now), Ok(None));
        assert_eq!(
            expiry_after_days(Some(90), now),
            Ok(Some(now + Duration::days(90)))
        );
        assert!(expiry_after_days(Some(0), now).is_err());
        assert!(expiry_after_days(Some(MAX_EXPIRY_DAYS + 1), now).is_err());
    }

    #[test]
    fn names() {
        assert!(validate_name(&"x".repeat(MAX_NAME_LEN)).is_ok());
        assert!(validate_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(validate_name("Zoë").is_ok());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name("API-TOKEN").is_err());
    }
}
