//! Reading Twilio's JSON records, shared by every resource's parser.
//!
//! Twilio's REST API sends snake_case keys; the Twilio CLI sends the same
//! records in camelCase. [`Record`] reads a field under either name, treats
//! null and empty strings as absent, and names the field in every error.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::call::parse_twilio_time;

/// What was wrong with one record; each resource turns it into its own
/// error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordError {
    pub sid: Option<String>,
    pub reason: String,
}

/// One JSON object being read.
pub(crate) struct Record<'a> {
    object: &'a Map<String, Value>,
    /// Known (snake_case, camelCase) pairs; other names are converted.
    names: &'static [(&'static str, &'static str)],
    /// The record's SID once read, for errors.
    pub sid: Option<String>,
}

impl<'a> Record<'a> {
    /// Reads `object`; `names` lists irregular camelCase spellings (the rest
    /// are derived from the snake_case name).
    pub fn new(
        object: &'a Map<String, Value>,
        names: &'static [(&'static str, &'static str)],
    ) -> Self {
        Self {
            object,
            names,
            sid: None,
        }
    }

    /// The value of `snake` (or its camelCase form); null is absent.
    pub fn get(&self, snake: &str) -> Option<&'a Value> {
        if let Some(v) = self.object.get(snake).filter(|v| !v.is_null()) {
            return Some(v);
        }
        match self.names.iter().find(|(s, _)| *s == snake) {
            Some((_, camel)) => self.object.get(*camel),
            None => self.object.get(&camel_case(snake)),
        }
        .filter(|v| !v.is_null())
    }

    /// An error about this record.
    pub fn error(&self, reason: String) -> RecordError {
        RecordError {
            sid: self.sid.clone(),
            reason,
        }
    }

    /// A text field: strings are trimmed, empty becomes `None`; numbers and
    /// booleans are accepted as their text.
    pub fn text(&self, field: &str) -> Result<Option<String>, RecordError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => {
                let t = s.trim();
                Ok((!t.is_empty()).then(|| t.to_owned()))
            }
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => Err(self.error(format!(
                "field `{field}` should be text, found {}",
                kind_of(other)
            ))),
        }
    }

    /// A date field (RFC 2822 or RFC 3339).
    pub fn time(&self, field: &str) -> Result<Option<DateTime<Utc>>, RecordError> {
        match self.text(field)? {
            None => Ok(None),
            Some(text) => parse_twilio_time(&text)
                .map(Some)
                .ok_or_else(|| self.error(format!("field `{field}` is not a date: {text:?}"))),
        }
    }

    /// A non-negative integer field (numbers or their text).
    pub fn integer<T: std::str::FromStr>(&self, field: &str) -> Result<Option<T>, RecordError> {
        match self.text(field)? {
            None => Ok(None),
            Some(text) => text.parse::<T>().map(Some).map_err(|_| {
                self.error(format!(
                    "field `{field}` is not a non-negative integer: {text:?}"
                ))
            }),
        }
    }

    /// A decimal field, exact (`"-0.0025"`, `1e-3`).
    pub fn decimal(&self, field: &str) -> Result<Option<Decimal>, RecordError> {
        match self.text(field)? {
            None => Ok(None),
            Some(text) => text
                .parse::<Decimal>()
                .or_else(|_| Decimal::from_scientific(&text))
                .map(Some)
                .map_err(|_| self.error(format!("field `{field}` is not a number: {text:?}"))),
        }
    }
}

/// An optional text as a REST record holds it (`null` when absent).
pub(crate) fn text_value(v: &Option<String>) -> Value {
    v.clone().map(Value::String).unwrap_or(Value::Null)
}

/// An optional instant as a REST record holds it (RFC 2822, `null` when
/// absent).
pub(crate) fn time_value(v: &Option<DateTime<Utc>>) -> Value {
    v.as_ref()
        .map(|t| Value::String(crate::call::format_rfc2822(t)))
        .unwrap_or(Value::Null)
}

/// `call_sid` → `callSid`.
fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// "a string", "an object", ... for errors.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_of_snake_names() {
        assert_eq!(camel_case("call_sid"), "callSid");
        assert_eq!(camel_case("sid"), "sid");
        assert_eq!(camel_case("date_created"), "dateCreated");
    }

    #[test]
    fn reads_either_spelling_and_names_the_field() {
        let v = serde_json::json!({"callSid": "CA1", "duration": "x", "price": "-0.0025"});
        let Value::Object(o) = &v else { unreachable!() };
        let r = Record::new(o, &[]);
        assert_eq!(r.text("call_sid").unwrap().as_deref(), Some("CA1"));
        assert!(r
            .integer::<u32>("duration")
            .unwrap_err()
            .reason
            .contains("`duration`"));
        assert_eq!(r.decimal("price").unwrap().unwrap().to_string(), "-0.0025");
    }
}
