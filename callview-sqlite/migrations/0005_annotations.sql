-- callview: what people write on contacts and calls (names live in the
-- seed's `contacts.display_name`): a company name, notes and tags (a JSON
-- array of strings, compared case-insensitively), who edited last and
-- when, and a version counting edits (the API's ETag). Additive; syncs
-- never write these columns.

ALTER TABLE contacts ADD COLUMN company_name TEXT;
ALTER TABLE contacts ADD COLUMN notes TEXT;
ALTER TABLE contacts ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE contacts ADD COLUMN edited_by TEXT;
ALTER TABLE contacts ADD COLUMN edited_at TEXT;
ALTER TABLE contacts ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

ALTER TABLE messages ADD COLUMN notes TEXT;
ALTER TABLE messages ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE messages ADD COLUMN edited_by TEXT;
ALTER TABLE messages ADD COLUMN edited_at TEXT;
ALTER TABLE messages ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- Searching notes and tags of calls reads only the calls people annotated.
CREATE INDEX idx_messages_annotated ON messages (conversation_id)
    WHERE notes IS NOT NULL OR tags <> '[]';
