//! Twilio credentials and configuration, from code or the environment.

use std::fmt;

/// A secret string (auth token, API secret). `Debug` and `Display` print
/// `[redacted]`; the value is only reachable through [`Secret::expose`].
///
/// ```
/// use callview_core::twilio::Secret;
/// let s = Secret::new("hunter2");
/// assert_eq!(format!("{s:?}"), "[redacted]");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call only where it is sent, never where it is logged.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How to authenticate (HTTP Basic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// Account SID and Auth Token.
    AuthToken {
        /// `AC...`.
        account_sid: String,
        /// The account's auth token.
        auth_token: Secret,
    },
    /// An API key (`SK...`) and its secret: Twilio's recommendation.
    ApiKey {
        /// `AC...` (the account the calls belong to).
        account_sid: String,
        /// `SK...`.
        api_key: String,
        /// The key's secret.
        api_secret: Secret,
    },
}

impl Credentials {
    /// The account whose resources are listed.
    pub fn account_sid(&self) -> &str {
        match self {
            Self::AuthToken { account_sid, .. } | Self::ApiKey { account_sid, .. } => account_sid,
        }
    }

    /// Basic-auth user name and password.
    pub fn basic_auth(&self) -> (&str, &Secret) {
        match self {
            Self::AuthToken {
                account_sid,
                auth_token,
            } => (account_sid, auth_token),
            Self::ApiKey {
                api_key,
                api_secret,
                ..
            } => (api_key, api_secret),
        }
    }
}

/// Everything `HttpTwilioClient` (feature `http`) needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwilioConfig {
    /// Who we are.
    pub credentials: Credentials,
    /// API base URL, default `https://api.twilio.com`.
    pub base_url: String,
    /// Voice Intelligence base URL (transcripts), default
    /// `https://intelligence.twilio.com` (`TWILIO_INTELLIGENCE_BASE_URL`).
    pub intelligence_base_url: String,
}

/// The default API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// The default Voice Intelligence base URL.
pub const DEFAULT_INTELLIGENCE_BASE_URL: &str = "https://intelligence.twilio.com";

impl TwilioConfig {
    /// Reads `TWILIO_ACCOUNT_SID` plus either `TWILIO_API_KEY` and
    /// `TWILIO_API_SECRET` or `TWILIO_AUTH_TOKEN`, and the base URLs
    /// `TWILIO_API_BASE_URL` and `TWILIO_INTELLIGENCE_BASE_URL`.
    ///
    /// Returns `Ok(None)` when no Twilio variable is set at all (the caller
    /// may fall back to the simulated account) and an error naming the
    /// missing variable when the set is incomplete.
    pub fn from_env() -> Result<Option<Self>, super::TwilioError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`TwilioConfig::from_env`], reading variables through `get`.
    ///
    /// ```
    /// use callview_core::twilio::TwilioConfig;
    /// let vars = [("TWILIO_ACCOUNT_SID", "AC123"), ("TWILIO_AUTH_TOKEN", "tok")];
    /// let get = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
    /// let config = TwilioConfig::from_lookup(get).unwrap().unwrap();
    /// assert_eq!(config.credentials.account_sid(), "AC123");
    /// assert_eq!(config.base_url, "https://api.twilio.com");
    /// ```
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, super::TwilioError> {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let account_sid = var("TWILIO_ACCOUNT_SID");
        let auth_token = var("TWILIO_AUTH_TOKEN");
        let api_key = var("TWILIO_API_KEY");
        let api_secret = var("TWILIO_API_SECRET");
        let base_url = var("TWILIO_API_BASE_URL");
        let intelligence_base_url = var("TWILIO_INTELLIGENCE_BASE_URL");
        if account_sid.is_none()
            && auth_token.is_none()
            && api_key.is_none()
            && api_secret.is_none()
        {
            return Ok(None);
        }
        let missing = |name: &str| {
            super::TwilioError::Config(format!("the environment variable {name} is not set"))
        };
        let account_sid = account_sid.ok_or_else(|| missing("TWILIO_ACCOUNT_SID"))?;
        let credentials = match (api_key, api_secret, auth_token) {
            (Some(api_key), Some(api_secret), _) => Credentials::ApiKey {
                account_sid,
                api_key,
                api_secret: Secret::new(api_secret),
            },
            (Some(_), None, _) => return Err(missing("TWILIO_API_SECRET")),
            (None, Some(_), _) => return Err(missing("TWILIO_API_KEY")),
            (None, None, Some(token)) => Credentials::AuthToken {
                account_sid,
                auth_token: Secret::new(token),
            },
            (None, None, None) => {
                return Err(super::TwilioError::Config(
                    "set TWILIO_AUTH_TOKEN, or TWILIO_API_KEY and TWILIO_API_SECRET".into(),
                ))
            }
        };
        Ok(Some(Self {
            credentials,
            base_url: base_url.unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
            intelligence_base_url: intelligence_base_url
                .unwrap_or_else(|| DEFAULT_INTELLIGENCE_BASE_URL.to_owned()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn nothing_set_means_no_config() {
        assert!(TwilioConfig::from_lookup(lookup(&[])).unwrap().is_none());
    }

    #[test]
    fn api_key_wins_over_auth_token() {
        let c = TwilioConfig::from_lookup(lookup(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "tok"),
            ("TWILIO_API_KEY", "SK1"),
            ("TWILIO_API_SECRET", "sec"),
            ("TWILIO_API_BASE_URL", "http://127.0.0.1:9"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.credentials.basic_auth().0, "SK1");
        assert_eq!(c.credentials.basic_auth().1.expose(), "sec");
        assert_eq!(c.base_url, "http://127.0.0.1:9");
    }

    #[test]
    fn missing_variables_are_named() {
        let err = TwilioConfig::from_lookup(lookup(&[("TWILIO_AUTH_TOKEN", "tok")])).unwrap_err();
        assert!(err.to_string().contains("TWILIO_ACCOUNT_SID"), "{err}");
        let err = TwilioConfig::from_lookup(lookup(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_API_KEY", "SK1"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("TWILIO_API_SECRET"), "{err}");
        let err = TwilioConfig::from_lookup(lookup(&[("TWILIO_ACCOUNT_SID", "AC1")])).unwrap_err();
        assert!(err.to_string().contains("TWILIO_AUTH_TOKEN"), "{err}");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = TwilioConfig::from_lookup(lookup(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "super-secret-token"),
        ]))
        .unwrap()
        .unwrap();
        let shown = format!("{c:?} {:#?}", c.credentials);
        assert!(!shown.contains("super-secret-token"), "{shown}");
        assert!(shown.contains("AC1"));
    }
}
