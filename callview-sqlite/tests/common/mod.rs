//! Helpers shared by the SQLite store's integration tests.
#![allow(dead_code)]

/// SQL that takes a database back to before migrations 4 to 6 (their
/// columns and indexes), for tests that make a database look like one
/// written by an older callview.
pub const UNDO_MIGRATIONS_4_TO_6: &str = "DROP INDEX idx_messages_recorded;
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
