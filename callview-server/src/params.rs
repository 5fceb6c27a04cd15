//! Query-string and path parameters, parsed by hand so that every mistake
//! is answered with the API's JSON error naming the parameter and the reason.

use std::collections::HashMap;

use callview_core::ConversationId;

use crate::error::ApiError;

/// The largest `limit` a list accepts.
pub const MAX_LIMIT: u32 = 200;
/// The `limit` of `GET /api/conversations` when none is given.
pub const DEFAULT_LIMIT: u32 = 20;
/// The `limit` of `GET /api/calls/active` when none is given.
pub const DEFAULT_ACTIVE_LIMIT: u32 = 100;

/// The decoded query string. A parameter given twice is an error.
#[derive(Debug, Default)]
pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    /// Decodes `a=1&b=2` (percent-encoding and `+` as space).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut map = HashMap::new();
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if map.insert(key.to_string(), value.to_string()).is_some() {
                return Err(ApiError::bad_request(
                    "invalid_parameter",
                    format!("`{key}` is given more than once; give it once"),
                ));
            }
        }
        Ok(Self(map))
    }

    /// `limit`: a whole number from 1 to [`MAX_LIMIT`], `default` when absent.
    pub fn limit(&self, default: u32) -> Result<u32, ApiError> {
        let Some(text) = self.0.get("limit") else {
            return Ok(default);
        };
        let value = whole_number("limit", text)?;
        if value == 0 || value > u64::from(MAX_LIMIT) {
            return Err(ApiError::bad_request(
                "invalid_parameter",
                format!("`limit` must be between 1 and {MAX_LIMIT}, got {value}"),
            ));
        }
        Ok(value as u32)
    }

    /// `offset`: a whole number, 0 or more, 0 when absent.
    pub fn offset(&self) -> Result<u64, ApiError> {
        match self.0.get("offset") {
            None => Ok(0),
            Some(text) => whole_number("offset", text),
        }
    }
}

fn whole_number(name: &str, text: &str) -> Result<u64, ApiError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("`{name}` is empty; give a whole number or leave it out"),
        ));
    }
    if trimmed.starts_with('-')
        && trimmed[1..].chars().all(|c| c.is_ascii_digit())
        && trimmed.len() > 1
    {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("`{name}` must not be negative, got {trimmed}"),
        ));
    }
    if !trimmed.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("`{name}` must be a whole number, got {trimmed:?}"),
        ));
    }
    trimmed.parse::<u64>().map_err(|_| {
        ApiError::bad_request(
            "invalid_parameter",
            format!("`{name}` is too large, got {trimmed}"),
        )
    })
}

/// A conversation id from the path: a positive whole number.
pub fn conversation_id(text: &str) -> Result<ConversationId, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_id",
            format!("conversation id must be a positive whole number, got {text:?}"),
        )
    };
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid());
    }
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(ConversationId(id)),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(raw: &str) -> QueryParams {
        QueryParams::parse(Some(raw)).unwrap()
    }

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(q("").limit(20).unwrap(), 20);
        assert_eq!(q("").offset().unwrap(), 0);
        assert_eq!(q("limit=200&offset=5").limit(20).unwrap(), 200);
        assert_eq!(q("limit=200&offset=5").offset().unwrap(), 5);
        for bad in [
            "limit=0",
            "limit=201",
            "limit=-1",
            "limit=abc",
            "limit=",
            "limit=1.5",
        ] {
            let e = q(bad).limit(20).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{bad}");
            assert!(e.message().contains("`limit`"), "{bad}: {}", e.message());
        }
        for bad in ["offset=-1", "offset=x", "offset=99999999999999999999999"] {
            let e = q(bad).offset().unwrap_err();
            assert!(e.message().contains("`offset`"), "{bad}: {}", e.message());
        }
        assert!(QueryParams::parse(Some("limit=1&limit=2")).is_err());
    }

    #[test]
    fn ids() {
        assert_eq!(conversation_id("12").unwrap(), ConversationId(12));
        for bad in ["", "abc", "-1", "0", "1e3", "99999999999999999999", " 1"] {
            assert_eq!(
                conversation_id(bad).unwrap_err().code(),
                "invalid_id",
                "{bad}"
            );
        }
    }
}
