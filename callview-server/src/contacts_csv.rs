//! Contacts as CSV: `callview contacts import FILE.csv`,
//! `callview contacts export` and `GET /api/contacts.csv`.
//!
//! The columns are `phone,name,company,notes,tags` (a header row names
//! them, in any order; only `phone` is required). Numbers are written in
//! any format and canonicalised as call parties are (the server's default
//! region applies to numbers without a country code); tags are separated
//! by `;`. On import an empty cell leaves the field as it is; a row that
//! does not parse is reported with its line number and the reason, and the
//! rest are imported. A contact with no calls yet is created, so its first
//! call already shows the name. Export writes every contact in the same
//! form, so an export imports back unchanged.

use std::io::{Read, Write};
use std::sync::Arc;

use callview_core::annotations::{ContactEdit, EditMeta};
use callview_core::store::ContactRecord;
use callview_core::{EndpointKind, Normalizer, Store, StoreError};
use chrono::Utc;
use serde_json::{Map, Value};

/// The columns, in the order export writes them.
pub const COLUMNS: [&str; 5] = ["phone", "name", "company", "notes", "tags"];

/// How many rows one import transaction writes.
const BATCH: usize = 500;

/// A row that can be imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRow {
    /// Its line in the file (the header is line 1).
    pub line: u64,
    /// The canonical key (E.164).
    pub key: String,
    /// The number's display form.
    pub display: String,
    /// What the row sets.
    pub edit: ContactEdit,
}

/// A row that was not imported, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    /// Its line in the file.
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// Rows imported.
    pub imported: u64,
    /// Rows not imported, each with its line and reason.
    pub rejected: Vec<RowError>,
}

/// Why a file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file is not CSV, or has no `phone` column.
    #[error("{0}")]
    Format(String),
    /// Writing failed.
    #[error("writing the CSV: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads a CSV file into rows to import and rows refused.
pub fn parse(
    input: impl Read,
    normalizer: &Normalizer,
) -> Result<(Vec<ImportRow>, Vec<RowError>), CsvError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| CsvError::Format(format!("the header row does not parse: {e}")))?
        .clone();
    // `company_name` (the API's name for the field) is read as `company`.
    let canonical = |header: &str| {
        let header = header.trim().trim_start_matches('\u{feff}');
        if header.eq_ignore_ascii_case("company_name") {
            "company".to_owned()
        } else {
            header.to_ascii_lowercase()
        }
    };
    let column = |name: &str| headers.iter().position(|h| canonical(h) == name);
    let Some(phone_at) = column("phone") else {
        return Err(CsvError::Format(format!(
            "the header row must name a `phone` column (columns: {})",
            COLUMNS.join(",")
        )));
    };
    if let Some(unknown) = headers
        .iter()
        .find(|h| !COLUMNS.contains(&canonical(h).as_str()))
    {
        return Err(CsvError::Format(format!(
            "unknown column {unknown:?} (columns: {})",
            COLUMNS.join(",")
        )));
    }
    let (name_at, company_at, notes_at, tags_at) = (
        column("name"),
        column("company"),
        column("notes"),
        column("tags"),
    );
    let mut rows = Vec::new();
    let mut rejected = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                rejected.push(RowError {
                    line,
                    reason: format!("does not parse as CSV: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            // A blank row (spreadsheets write them): nothing to import.
            continue;
        }
        let cell = |at: Option<usize>| at.and_then(|i| record.get(i)).filter(|c| !c.is_empty());
        let phone = cell(Some(phone_at)).unwrap_or("");
        // A number in any format, or the other parties a call can have
        // (`client:`, `sip:`, `anonymous`), canonicalised like call parties.
        let endpoint = normalizer.classify(Some(phone));
        if phone.is_empty() || endpoint.kind == EndpointKind::Other {
            rejected.push(RowError {
                line,
                reason: format!("{phone:?} is not a phone number or a call party"),
            });
            continue;
        }
        let mut fields = Map::new();
        for (field, at) in [
            ("name", name_at),
            ("company_name", company_at),
            ("notes", notes_at),
        ] {
            if let Some(text) = cell(at) {
                fields.insert(field.to_owned(), Value::String(text.to_owned()));
            }
        }
        // Tags separated by `;`; a cell of separators only is empty.
        if let Some(tags) = cell(tags_at).filter(|t| t.split(';').any(|t| !t.trim().is_empty())) {
            let tags = tags.split(';').map(|t| Value::String(t.trim().to_owned()));
            fields.insert("tags".to_owned(), Value::Array(tags.collect()));
        }
        match ContactEdit::from_json(&Value::Object(fields)) {
            Ok(edit) => rows.push(ImportRow {
                line,
                display: normalizer.display(&endpoint),
                key: endpoint.canonical,
                edit,
            }),
            Err(e) => rejected.push(RowError {
                line,
                reason: e.to_string().replace("`company_name`", "`company`"),
            }),
        }
    }
    Ok((rows, rejected))
}

/// Imports rows, [`BATCH`] per store transaction; returns what it did
/// (with `rejected` the rows [`parse`] refused).
pub async fn import(
    store: &Arc<dyn Store>,
    rows: Vec<ImportRow>,
    rejected: Vec<RowError>,
) -> Result<ImportReport, CsvError> {
    let mut report = ImportReport {
        imported: 0,
        rejected,
    };
    let meta = EditMeta {
        by: Some("import".to_owned()),
        at: Utc::now(),
    };
    for batch in rows.chunks(BATCH) {
        let mut tx = store.begin_ingest().await?;
        for row in batch {
            let id = tx.ensure_contact(&row.key, &row.display).await?;
            if !row.edit.is_empty() {
                tx.edit_contact(id, &row.edit, None, &meta).await?;
            }
        }
        tx.commit().await?;
        report.imported += batch.len() as u64;
    }
    report.rejected.sort_by_key(|r| r.line);
    Ok(report)
}

/// Writes every contact as CSV (with the header row), a page at a time.
pub async fn export(store: &dyn Store, output: impl Write) -> Result<u64, CsvError> {
    let mut writer = csv::Writer::from_writer(output);
    writer
        .write_record(COLUMNS)
        .map_err(|e| CsvError::Io(e.into()))?;
    let mut after = 0;
    let mut written = 0;
    loop {
        let page = store.contacts_page(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for contact in &page {
            writer
                .write_record(row(contact))
                .map_err(|e| CsvError::Io(e.into()))?;
            written += 1;
        }
    }
    writer.flush()?;
    Ok(written)
}

/// One contact's cells: its name only when people set one (not the
/// number's display form).
fn row(contact: &ContactRecord) -> [String; 5] {
    let name = contact
        .display_name
        .clone()
        .filter(|n| Some(n) != contact.formatted_number.as_ref() && *n != contact.phone_number)
        .unwrap_or_default();
    [
        contact.phone_number.clone(),
        name,
        contact.company_name.clone().unwrap_or_default(),
        contact.annotations.notes.clone().unwrap_or_default(),
        contact.annotations.tags.join("; "),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_that_do_not_parse_are_reported_with_their_line() {
        let csv = "phone,name,company,notes,tags\n\
                   (978) 844-7773,Mrs Alvarez,Alvarez Plumbing,\"quoted $240, Friday\",VIP; quote\n\
                   not a number,x,,,\n\
                   +44 20 7946 0958,,,,\n\
                   617-500-6181,bell\u{7},,,\n\
                   ,,,,\n\
                   client:alice,Alice,,,;\n";
        let (rows, rejected) = parse(csv.as_bytes(), &Normalizer::default()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].key, "client:alice");
        assert_eq!(rows[2].edit.tags, callview_core::annotations::Patch::Keep);
        assert_eq!(rows[0].key, "+19788447773");
        assert_eq!(rows[0].line, 2);
        assert!(!rows[0].edit.is_empty());
        assert_eq!(rows[1].key, "+442079460958");
        assert!(rows[1].edit.is_empty());
        assert_eq!(
            rejected.iter().map(|r| r.line).collect::<Vec<_>>(),
            [3, 5],
            "{rejected:?}"
        );
        assert!(rejected[0].reason.contains("not a phone number"));
        let (rows, _) = parse(
            "\u{feff}Phone,Company_Name\n+19788447773,Acme\n".as_bytes(),
            &Normalizer::default(),
        )
        .unwrap();
        assert_eq!(rows.len(), 1, "a BOM and the API's column name");
        assert!(rejected[1].reason.contains("`name`"), "{rejected:?}");
        let err = parse("number,name\n1,2\n".as_bytes(), &Normalizer::default()).unwrap_err();
        assert!(err.to_string().contains("phone"), "{err}");
    }
}
