//! Helpers shared by the SQLite store's integration tests.
#![allow(dead_code)]

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
