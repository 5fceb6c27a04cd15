//! Helpers shared by the SQLite store's integration tests.
#![allow(dead_code)]

/// Takes a database back to before migration 13: each call's record back
/// under `metadata.raw`, the `raw_zstd` column gone, the migration
/// unrecorded.
pub fn undo_compact_records(conn: &rusqlite::Connection) {
    let rows: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT id, raw_zstd FROM messages WHERE raw_zstd IS NOT NULL")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (id, blob) in rows {
        let record = callview_sqlite::raw_record::decode(&blob).unwrap();
        conn.execute(
            "UPDATE messages SET metadata = json_set(metadata, '$.raw', json(?2)) WHERE id = ?1",
            rusqlite::params![id, record],
        )
        .unwrap();
    }
    conn.execute_batch(
        "ALTER TABLE messages DROP COLUMN raw_zstd;
         DELETE FROM schema_migrations WHERE version >= 13;",
    )
    .unwrap();
}

/// A `messages` row's `metadata` as stored, with its record (kept apart
/// in `raw_zstd`, when the database has that column) back under `raw`.
pub fn stored_metadata(conn: &rusqlite::Connection, sid: &str) -> serde_json::Value {
    let compact: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM pragma_table_info('messages') WHERE name = 'raw_zstd'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let sql = if compact {
        "SELECT metadata, raw_zstd FROM messages WHERE twilio_sid = ?1"
    } else {
        "SELECT metadata, NULL FROM messages WHERE twilio_sid = ?1"
    };
    let (text, blob): (String, Option<Vec<u8>>) = conn
        .query_row(sql, [sid], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    let mut metadata: serde_json::Value = serde_json::from_str(&text).unwrap();
    if let Some(blob) = blob {
        assert!(metadata.get("raw").is_none(), "{metadata}");
        let record = callview_sqlite::raw_record::decode(&blob).unwrap();
        metadata["raw"] = serde_json::from_str(&record).unwrap();
    }
    metadata
}

/// SQL that takes a database back to before migrations 4 to 7 (their
/// tables, columns and indexes), for tests that make a database look like
/// one written by an older callview. Migration 11's search index goes
/// first (its triggers read the contacts' columns dropped here).
pub const UNDO_MIGRATIONS_4_TO_7: &str = "DROP TRIGGER contact_search_insert;
     DROP TRIGGER contact_search_delete;
     DROP TRIGGER contact_search_update;
     DROP TABLE contact_search;
     DROP TABLE conversation_stats;
     DROP TABLE stats_hours;
     DROP TABLE stats_slots;
     DROP TABLE interactions;
     DELETE FROM sync_cursors WHERE name = 'stats_rebuild';
     DROP INDEX idx_messages_recorded;
     DROP TABLE transcripts;
     DROP TABLE recordings;
     ALTER TABLE messages DROP COLUMN transcription_text;
     DROP INDEX idx_messages_annotated;
     ALTER TABLE contacts DROP COLUMN company_name;
     ALTER TABLE contacts DROP COLUMN notes;
     ALTER TABLE contacts DROP COLUMN tags;
     ALTER TABLE contacts DROP COLUMN edited_by;
     ALTER TABLE contacts DROP COLUMN edited_at;
     ALTER TABLE contacts DROP COLUMN version;
     ALTER TABLE messages DROP COLUMN notes;
     ALTER TABLE messages DROP COLUMN tags;
     ALTER TABLE messages DROP COLUMN edited_by;
     ALTER TABLE messages DROP COLUMN edited_at;
     ALTER TABLE messages DROP COLUMN version;
     DROP INDEX idx_messages_refresh;
     ALTER TABLE messages DROP COLUMN refresh_attempts;
     ALTER TABLE messages DROP COLUMN refresh_due_at;
     ALTER TABLE messages DROP COLUMN unfollowed_at;";
