//! What people write on contacts and calls: a contact's name and company,
//! notes and tags on a contact or a call. Syncs never touch these.
//!
//! Everything here is pure: an edit is read from JSON (or a CSV row) and
//! checked here ([`ContactEdit::from_json`], [`CallEdit::from_json`]), and
//! applied to what a store read inside its transaction
//! ([`ContactEdit::apply`], [`CallEdit::apply`]); the store writes the
//! result.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The longest contact name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The longest company name, in characters.
pub const MAX_COMPANY_CHARS: usize = 200;
/// The longest note, in characters.
pub const MAX_NOTES_CHARS: usize = 10_000;
/// The most tags on one contact or call.
pub const MAX_TAGS: usize = 50;
/// The longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 50;

/// Notes and tags on a contact or a call, and who changed them last.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotations {
    /// Free text.
    pub notes: Option<String>,
    /// Short labels, stored as written, unique case-insensitively.
    pub tags: Vec<String>,
    /// Who made the last edit (a token's name, when known).
    pub edited_by: Option<String>,
    /// When the last edit was made; `None`: never edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// Counts edits, from 1: the `ETag` of the resource.
    pub version: i64,
}

/// A contact's editable fields as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactFields {
    /// `contacts.display_name`: what the list shows.
    pub name: Option<String>,
    /// `contacts.company_name`.
    pub company_name: Option<String>,
    /// Notes and tags.
    pub annotations: Annotations,
}

/// What an edit does to one field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Patch<T> {
    /// Leave it as it is (the field was not in the request).
    #[default]
    Keep,
    /// Empty it (`null`, or an empty text).
    Clear,
    /// Set it.
    Set(T),
}

impl<T: Clone> Patch<T> {
    fn apply_to(&self, current: Option<T>) -> Option<T> {
        match self {
            Self::Keep => current,
            Self::Clear => None,
            Self::Set(value) => Some(value.clone()),
        }
    }
}

/// An edit of a contact (`PATCH /api/contacts/{id}`, a CSV row).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactEdit {
    /// The name shown for the contact; cleared, the number is shown.
    pub name: Patch<String>,
    /// The company.
    pub company_name: Patch<String>,
    /// Notes.
    pub notes: Patch<String>,
    /// Tags (the whole set).
    pub tags: Patch<Vec<String>>,
}

/// An edit of a call (`PATCH /api/messages/{id}`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallEdit {
    /// Notes.
    pub notes: Patch<String>,
    /// Tags (the whole set).
    pub tags: Patch<Vec<String>>,
}

/// Why an edit was refused: the field and the reason, for a 400 that
/// names it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {reason}")]
pub struct EditError {
    /// The field (`name`, `tags`, ...), or `body` for the request itself.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl EditError {
    fn new(field: &str, reason: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Who made an edit and when: what every store records with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditMeta {
    /// The editor's name, when known.
    pub by: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

impl ContactEdit {
    /// Reads a JSON object with any of `name`, `company_name`, `notes`,
    /// `tags`; anything else (another field, a wrong type, a value too
    /// long, control characters) is an [`EditError`] naming the field.
    ///
    /// ```
    /// use callview_core::annotations::{ContactEdit, Patch};
    /// let edit = ContactEdit::from_json(&serde_json::json!({
    ///     "name": "Mrs Alvarez", "tags": ["VIP", " quote ", "vip"], "notes": null
    /// })).unwrap();
    /// assert_eq!(edit.name, Patch::Set("Mrs Alvarez".to_owned()));
    /// assert_eq!(edit.tags, Patch::Set(vec!["VIP".to_owned(), "quote".to_owned()]));
    /// assert_eq!(edit.notes, Patch::Clear);
    /// let err = ContactEdit::from_json(&serde_json::json!({"nick": "x"})).unwrap_err();
    /// assert_eq!(err.field, "nick");
    /// ```
    pub fn from_json(value: &Value) -> Result<Self, EditError> {
        let object = as_object(value)?;
        let mut edit = Self::default();
        for (field, value) in object {
            match field.as_str() {
                "name" => edit.name = text(field, value, MAX_NAME_CHARS, false)?,
                "company_name" => edit.company_name = text(field, value, MAX_COMPANY_CHARS, false)?,
                "notes" => edit.notes = text(field, value, MAX_NOTES_CHARS, true)?,
                "tags" => edit.tags = tags(field, value)?,
                other => return Err(unknown(other, "name, company_name, notes, tags")),
            }
        }
        Ok(edit)
    }

    /// Whether the edit changes nothing (no field given).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The fields after the edit, made by `meta`: the version goes up by one.
    pub fn apply(&self, current: &ContactFields, meta: &EditMeta) -> ContactFields {
        let annotations = &current.annotations;
        ContactFields {
            name: self.name.apply_to(current.name.clone()),
            company_name: self.company_name.apply_to(current.company_name.clone()),
            annotations: Annotations {
                notes: self.notes.apply_to(annotations.notes.clone()),
                tags: self
                    .tags
                    .apply_to(Some(annotations.tags.clone()))
                    .unwrap_or_default(),
                edited_by: meta.by.clone(),
                edited_at: Some(meta.at),
                version: annotations.version + 1,
            },
        }
    }
}

impl CallEdit {
    /// Reads a JSON object with `notes` and/or `tags` (see
    /// [`ContactEdit::from_json`]).
    ///
    /// ```
    /// use callview_core::annotations::{CallEdit, Patch};
    /// let edit = CallEdit::from_json(&serde_json::json!({"notes": "quoted $240"})).unwrap();
    /// assert_eq!(edit.notes, Patch::Set("quoted $240".to_owned()));
    /// assert!(CallEdit::from_json(&serde_json::json!({"tags": "vip"})).is_err());
    /// ```
    pub fn from_json(value: &Value) -> Result<Self, EditError> {
        let object = as_object(value)?;
        let mut edit = Self::default();
        for (field, value) in object {
            match field.as_str() {
                "notes" => edit.notes = text(field, value, MAX_NOTES_CHARS, true)?,
                "tags" => edit.tags = tags(field, value)?,
                other => return Err(unknown(other, "notes, tags")),
            }
        }
        Ok(edit)
    }

    /// Whether the edit changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The annotations after the edit, made by `meta`.
    pub fn apply(&self, current: &Annotations, meta: &EditMeta) -> Annotations {
        Annotations {
            notes: self.notes.apply_to(current.notes.clone()),
            tags: self
                .tags
                .apply_to(Some(current.tags.clone()))
                .unwrap_or_default(),
            edited_by: meta.by.clone(),
            edited_at: Some(meta.at),
            version: current.version + 1,
        }
    }
}

fn as_object(value: &Value) -> Result<&Map<String, Value>, EditError> {
    value
        .as_object()
        .ok_or_else(|| EditError::new("body", "must be a JSON object"))
}

fn unknown(field: &str, known: &str) -> EditError {
    EditError::new(
        field,
        format!("is not a field that can be edited ({known})"),
    )
}

/// A text field: a string (trimmed; empty clears) or `null` (clears).
fn text(
    field: &str,
    value: &Value,
    max_chars: usize,
    multiline: bool,
) -> Result<Patch<String>, EditError> {
    let text = match value {
        Value::Null => return Ok(Patch::Clear),
        Value::String(text) => text.trim(),
        _ => return Err(EditError::new(field, "must be a string or null")),
    };
    if text.is_empty() {
        return Ok(Patch::Clear);
    }
    check_text(field, text, max_chars, multiline)?;
    Ok(Patch::Set(text.to_owned()))
}

fn check_text(field: &str, text: &str, max_chars: usize, multiline: bool) -> Result<(), EditError> {
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(EditError::new(
            field,
            format!("is {chars} characters long, more than the {max_chars} allowed"),
        ));
    }
    let allowed = |c: char| multiline && (c == '\n' || c == '\t' || c == '\r');
    if text
        .chars()
        .any(|c| (c.is_control() && !allowed(c)) || is_invisible(c))
    {
        return Err(EditError::new(
            field,
            "must not contain control characters or invisible formatting characters",
        ));
    }
    Ok(())
}

/// Characters that change how text around them reads without showing
/// themselves: bidirectional overrides, zero-width characters, line and
/// paragraph separators, the byte-order mark (a name must read as it is).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// `tags`: an array of strings (or `null`, which clears them).
fn tags(field: &str, value: &Value) -> Result<Patch<Vec<String>>, EditError> {
    let items = match value {
        Value::Null => return Ok(Patch::Clear),
        Value::Array(items) => items,
        _ => return Err(EditError::new(field, "must be an array of strings")),
    };
    let mut raw = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(tag) => raw.push(tag.clone()),
            _ => return Err(EditError::new(field, "must be an array of strings")),
        }
    }
    let tags = normalize_tags(field, raw)?;
    Ok(if tags.is_empty() {
        Patch::Clear
    } else {
        Patch::Set(tags)
    })
}

/// Trims each tag, drops empty ones and repeats (compared
/// case-insensitively; the first spelling stays), and checks the limits.
///
/// ```
/// use callview_core::annotations::normalize_tags;
/// let tags = normalize_tags("tags", vec![" VIP".into(), "vip".into(), "".into(), "Quote".into()]).unwrap();
/// assert_eq!(tags, ["VIP", "Quote"]);
/// assert!(normalize_tags("tags", vec!["x".repeat(51)]).is_err());
/// ```
pub fn normalize_tags(field: &str, raw: Vec<String>) -> Result<Vec<String>, EditError> {
    let mut tags: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for tag in raw {
        let tag = tag.trim();
        if tag.is_empty() {
            continue;
        }
        check_text(field, tag, MAX_TAG_CHARS, false)
            .map_err(|e| EditError::new(field, format!("the tag {tag:?} {}", e.reason)))?;
        if tag.contains([',', ';']) {
            return Err(EditError::new(
                field,
                format!("the tag {tag:?} must not contain `,` or `;` (they separate tags in forms and CSV files)"),
            ));
        }
        if seen.insert(tag.to_lowercase()) {
            tags.push(tag.to_owned());
            if tags.len() > MAX_TAGS {
                return Err(EditError::new(
                    field,
                    format!("has more than the {MAX_TAGS} tags allowed"),
                ));
            }
        }
    }
    Ok(tags)
}

/// Whether two tags are the same tag (case-insensitive, Unicode lower case).
pub fn same_tag(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta() -> EditMeta {
        EditMeta {
            by: Some("alice".into()),
            at: DateTime::from_timestamp(1_770_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn every_bad_input_names_its_field() {
        let cases = [
            (json!([]), "body"),
            (json!({"name": 5}), "name"),
            (json!({"name": "x".repeat(201)}), "name"),
            (json!({"company_name": true}), "company_name"),
            (json!({"notes": "x".repeat(10_001)}), "notes"),
            (json!({"notes": "bell\u{7}"}), "notes"),
            (json!({"name": "tab\there"}), "name"),
            (json!({"tags": "vip"}), "tags"),
            (json!({"tags": [1]}), "tags"),
            (json!({"tags": ["x".repeat(51)]}), "tags"),
            (
                json!({"tags": (0..51).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
                "tags",
            ),
            (json!({"tags": ["a\u{0}b"]}), "tags"),
            (json!({"tags": ["a,b"]}), "tags"),
            (json!({"tags": ["a;b"]}), "tags"),
            (json!({"name": "evil\u{202E}gnp.exe"}), "name"),
            (json!({"name": "zero\u{200B}width"}), "name"),
            (json!({"id": 3}), "id"),
        ];
        for (body, field) in cases {
            let err = ContactEdit::from_json(&body).unwrap_err();
            assert_eq!(err.field, field, "{body}: {err}");
        }
        assert!(ContactEdit::from_json(&json!({"notes": "line\nnext\tcol"})).is_ok());
        assert!(ContactEdit::from_json(&json!({"name": "é".repeat(200)})).is_ok());
        assert_eq!(
            CallEdit::from_json(&json!({"name": "x"}))
                .unwrap_err()
                .field,
            "name"
        );
    }

    #[test]
    fn an_edit_changes_only_what_it_names_and_counts_the_version() {
        let current = ContactFields {
            name: Some("Old".into()),
            company_name: Some("Acme".into()),
            annotations: Annotations {
                notes: Some("n".into()),
                tags: vec!["a".into()],
                version: 3,
                ..Annotations::default()
            },
        };
        let edit = ContactEdit::from_json(&json!({"name": "New", "tags": null})).unwrap();
        let after = edit.apply(&current, &meta());
        assert_eq!(after.name.as_deref(), Some("New"));
        assert_eq!(after.company_name.as_deref(), Some("Acme"));
        assert_eq!(after.annotations.notes.as_deref(), Some("n"));
        assert!(after.annotations.tags.is_empty());
        assert_eq!(after.annotations.version, 4);
        assert_eq!(after.annotations.edited_by.as_deref(), Some("alice"));
        let cleared = ContactEdit::from_json(&json!({"company_name": "  "})).unwrap();
        assert_eq!(cleared.company_name, Patch::Clear);
        assert!(ContactEdit::from_json(&json!({})).unwrap().is_empty());
    }
}
