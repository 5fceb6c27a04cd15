-- callview: what people write on contacts and calls (names live in the
-- seed's `contacts.display_name`): the seed's planned `company_name`,
-- `notes` and `tags` (JSONB array of strings, compared case-insensitively)
-- on contacts, `notes` and `tags` on messages, who edited last and when,
-- and a version counting edits (the API's ETag). Additive and idempotent:
-- a database that already has some of these columns keeps them; syncs
-- never write them.

ALTER TABLE contacts ADD COLUMN IF NOT EXISTS company_name TEXT;
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS notes TEXT;
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS tags JSONB NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS edited_by TEXT;
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS edited_at TIMESTAMP;
ALTER TABLE contacts ADD COLUMN IF NOT EXISTS version INTEGER NOT NULL DEFAULT 1;

ALTER TABLE messages ADD COLUMN IF NOT EXISTS notes TEXT;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS tags JSONB NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS edited_by TEXT;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS edited_at TIMESTAMP;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS version INTEGER NOT NULL DEFAULT 1;

-- Searching notes and tags of calls reads only the calls people annotated.
CREATE INDEX IF NOT EXISTS idx_messages_annotated ON messages(conversation_id)
    WHERE notes IS NOT NULL OR tags <> '[]'::jsonb;
