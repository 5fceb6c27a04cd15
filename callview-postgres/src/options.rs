//! Connection settings and the redacted form of a database URL.

use std::fmt;
use std::time::Duration;

/// How to reach the database and how big the pool is.
///
/// `Debug` shows the URL with its password replaced by `***`.
///
/// ```
/// use std::time::Duration;
/// use callview_postgres::PostgresOptions;
///
/// let options = PostgresOptions::new("postgres://app:hunter2@db.internal/callview")
///     .max_connections(20)
///     .acquire_timeout(Duration::from_secs(3))
///     .statement_timeout(Some(Duration::from_secs(30)));
/// assert_eq!(options.max_connections, 20);
/// assert!(!format!("{options:?}").contains("hunter2"));
/// assert_eq!(options.redacted_url(), "postgres://app:***@db.internal/callview");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// `postgres://user:password@host:port/database?sslmode=...`.
    pub url: String,
    /// Most connections the pool opens (the sync lock uses one more, outside
    /// the pool). Default 10.
    pub max_connections: u32,
    /// How long an operation waits for a free connection (and, at connect,
    /// for the first one) before it fails. Default 10 s.
    pub acquire_timeout: Duration,
    /// The server-side `statement_timeout` of every connection; `None`
    /// keeps the server's setting. Default `None`.
    pub statement_timeout: Option<Duration>,
}

impl PostgresOptions {
    /// Default pool size.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
    /// Default acquire timeout.
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

    /// Options for `url` with the defaults.
    ///
    /// ```
    /// let o = callview_postgres::PostgresOptions::new("postgres://localhost/callview");
    /// assert_eq!(o.max_connections, 10);
    /// assert!(o.statement_timeout.is_none());
    /// ```
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
            statement_timeout: None,
        }
    }

    /// Sets the pool size (at least 1).
    ///
    /// ```
    /// let o = callview_postgres::PostgresOptions::new("postgres://localhost/db").max_connections(0);
    /// assert_eq!(o.max_connections, 1);
    /// ```
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Sets how long to wait for a connection.
    ///
    /// ```
    /// use std::time::Duration;
    /// let o = callview_postgres::PostgresOptions::new("postgres://localhost/db")
    ///     .acquire_timeout(Duration::from_millis(500));
    /// assert_eq!(o.acquire_timeout, Duration::from_millis(500));
    /// ```
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Sets (or clears) the server-side statement timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// let o = callview_postgres::PostgresOptions::new("postgres://localhost/db")
    ///     .statement_timeout(Some(Duration::from_secs(60)));
    /// assert_eq!(o.statement_timeout, Some(Duration::from_secs(60)));
    /// ```
    pub fn statement_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// The URL with its password replaced by `***` (see [`redact_url`]).
    ///
    /// ```
    /// let o = callview_postgres::PostgresOptions::new("postgres://u:pw@h/db");
    /// assert_eq!(o.redacted_url(), "postgres://u:***@h/db");
    /// ```
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &self.redacted_url())
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

const MASK: &str = "***";

/// The URL with every password replaced by `***`: the one in the user-info
/// part (`postgres://user:secret@host/db`) and a `password=` query
/// parameter. Safe for logs and error messages; a value that is not a URL
/// is masked too (everything up to its last `@`).
///
/// ```
/// use callview_postgres::redact_url;
/// assert_eq!(redact_url("postgres://user:secret@db:5432/app"), "postgres://user:***@db:5432/app");
/// assert_eq!(redact_url("postgres://user@db/app"), "postgres://user@db/app");
/// assert_eq!(
///     redact_url("postgres://db/app?user=u&password=secret&sslmode=require"),
///     "postgres://db/app?user=u&password=***&sslmode=require"
/// );
/// assert!(!redact_url("not a url: user:secret@host").contains("secret"));
/// ```
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.has_host() || parsed.password().is_some() => redact_parsed(parsed),
        _ => redact_text(url),
    }
}

fn redact_parsed(mut parsed: url::Url) -> String {
    if parsed.password().is_some() {
        // Cannot fail: the URL has a host (it has a password).
        let _ = parsed.set_password(Some(MASK));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let masked = is_secret_key(&k);
                (
                    k.into_owned(),
                    if masked {
                        MASK.to_owned()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        // Rebuild the query by hand so `***` stays readable (not `%2A%2A%2A`).
        let query = pairs
            .iter()
            .map(|(k, v)| {
                if v == MASK {
                    format!("{}={MASK}", encode(k))
                } else {
                    format!("{}={}", encode(k), encode(v))
                }
            })
            .collect::<Vec<_>>()
            .join("&");
        parsed.set_query(Some(&query));
    }
    parsed.to_string()
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password") || key == "pass" || key == "pwd"
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Masks text that does not parse as a URL: keeps the scheme and the user
/// name when they can be told apart, drops everything else before the last
/// `@`, and masks `password=...` parameters.
fn redact_text(text: &str) -> String {
    let (scheme, rest) = match text.find("://") {
        Some(i) => (&text[..i + 3], &text[i + 3..]),
        None => ("", text),
    };
    let rest = match rest.rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            let user = user
                .rsplit(|c: char| c.is_whitespace())
                .next()
                .unwrap_or("");
            format!("{user}:{MASK}{}", &rest[at..])
        }
        None => rest.to_owned(),
    };
    let mut out = String::with_capacity(scheme.len() + rest.len());
    out.push_str(scheme);
    // Mask `password=value` wherever it appears (query or key/value form).
    let mut remaining = rest.as_str();
    while let Some(pos) = remaining.to_ascii_lowercase().find("password=") {
        let end_key = pos + "password=".len();
        out.push_str(&remaining[..end_key]);
        out.push_str(MASK);
        let value_end = remaining[end_key..]
            .find(|c: char| c == '&' || c.is_whitespace())
            .map(|i| end_key + i)
            .unwrap_or(remaining.len());
        remaining = &remaining[value_end..];
    }
    out.push_str(remaining);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_user_info_password() {
        assert_eq!(
            redact_url("postgres://postgres:pa%40ss@127.0.0.1:5432/postgres"),
            "postgres://postgres:***@127.0.0.1:5432/postgres"
        );
        assert_eq!(
            redact_url("postgresql://u:p@h/d?sslmode=require"),
            "postgresql://u:***@h/d?sslmode=require"
        );
    }

    #[test]
    fn leaves_urls_without_password_alone() {
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(
            redact_url("postgres://localhost/db"),
            "postgres://localhost/db"
        );
    }

    #[test]
    fn masks_query_passwords() {
        let r = redact_url("postgres://h/d?password=top%20secret&application_name=x");
        assert_eq!(r, "postgres://h/d?password=***&application_name=x");
        let r = redact_url("postgres://u:one@h/d?PASSWORD=two");
        assert!(!r.contains("one") && !r.contains("two"), "{r}");
    }

    #[test]
    fn masks_text_that_is_not_a_url() {
        for text in [
            "postgres://user:sec ret@host/db",
            "user:secret@host",
            "host=db user=u password=secret dbname=x",
            "postgres://user:secret@[::1/db",
        ] {
            let r = redact_url(text);
            assert!(
                !r.contains("secret") && !r.contains("sec ret"),
                "{text} -> {r}"
            );
        }
        assert_eq!(redact_url(""), "");
    }
}
