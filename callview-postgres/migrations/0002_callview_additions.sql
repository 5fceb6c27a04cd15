-- callview-postgres migration 2: what the call model adds to the documented
-- schema (docs/storage.md; each deviation is listed in SCHEMA.md).
--
-- Idempotent and safe on a database created by the seed's original
-- application: columns are widened and added in place, `root_call_sid` is
-- backfilled from the `parent_call_sid` chains, contacts stored in the seed's
-- display format are normalised to E.164. No row is deleted.

-- 1. Widen text columns that hold endpoint values. A SIP URI or a `client:`
--    identity does not fit the documented VARCHAR(20) / VARCHAR(30) /
--    VARCHAR(100). Only `character varying` columns are touched (a column an
--    operator already widened or changed is left alone); VARCHAR -> TEXT is
--    binary-coercible, so no table is rewritten.
DO $$
DECLARE
    col record;
BEGIN
    FOR col IN
        SELECT c.table_name, c.column_name
        FROM information_schema.columns c
        WHERE c.table_schema = current_schema()
          AND c.data_type = 'character varying'
          AND (c.table_name, c.column_name) IN (
              ('messages', 'from_number'),
              ('messages', 'to_number'),
              ('contacts', 'phone_number'),
              ('contacts', 'formatted_number'),
              ('contacts', 'display_name'),
              ('conversations', 'external_id'),
              ('conversations', 'subject'))
    LOOP
        EXECUTE format('ALTER TABLE %I ALTER COLUMN %I TYPE TEXT', col.table_name, col.column_name);
    END LOOP;
END
$$;

-- 2. New columns of `messages`.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS root_call_sid VARCHAR(100);
ALTER TABLE messages ADD COLUMN IF NOT EXISTS updated_at TIMESTAMP;
ALTER TABLE messages ALTER COLUMN updated_at SET DEFAULT NOW();

-- Needed by the backfill below (and by every tree lookup afterwards).
CREATE INDEX IF NOT EXISTS idx_messages_parent ON messages(parent_call_sid);

-- 3. Backfill `root_call_sid`: a row whose parent is NULL, empty or not
--    stored is a root; every other row takes its parent's root. Rows on a
--    parent cycle (never reachable from a root) are their own root.
--    Existing rows get `updated_at = created_at`.
WITH RECURSIVE tree(sid, root) AS (
    SELECT m.twilio_sid, m.twilio_sid
    FROM messages m
    WHERE m.root_call_sid IS NULL
      AND (m.parent_call_sid IS NULL
           OR NOT EXISTS (SELECT 1 FROM messages p WHERE p.twilio_sid = m.parent_call_sid))
  UNION
    SELECT c.twilio_sid, t.root
    FROM messages c
    JOIN tree t ON c.parent_call_sid = t.sid
    WHERE c.root_call_sid IS NULL AND c.twilio_sid <> t.sid
)
UPDATE messages m
SET root_call_sid = tree.root,
    updated_at = COALESCE(m.updated_at, m.created_at, NOW())
FROM tree
WHERE tree.sid = m.twilio_sid AND m.root_call_sid IS NULL;

UPDATE messages
SET root_call_sid = twilio_sid,
    updated_at = COALESCE(updated_at, created_at, NOW())
WHERE root_call_sid IS NULL;

UPDATE messages SET updated_at = COALESCE(created_at, NOW()) WHERE updated_at IS NULL;

ALTER TABLE messages ALTER COLUMN root_call_sid SET NOT NULL;

-- 4. Named sync cursors (`watermark`, `owned_numbers`).
CREATE TABLE IF NOT EXISTS sync_cursors (
    name       VARCHAR(100) PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMP DEFAULT NOW()
);

-- 5. `updated_at` triggers of the new tables/columns.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_trigger
        WHERE tgname = 'update_messages_updated_at' AND tgrelid = 'messages'::regclass
    ) THEN
        CREATE TRIGGER update_messages_updated_at
            BEFORE UPDATE ON messages
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_trigger
        WHERE tgname = 'update_sync_cursors_updated_at' AND tgrelid = 'sync_cursors'::regclass
    ) THEN
        CREATE TRIGGER update_sync_cursors_updated_at
            BEFORE UPDATE ON sync_cursors
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
    END IF;
END
$$;

-- 6. Indexes for the call model's queries.
CREATE INDEX IF NOT EXISTS idx_messages_root ON messages(root_call_sid);
CREATE INDEX IF NOT EXISTS idx_messages_conversation_start
    ON messages(conversation_id, start_time DESC);
CREATE INDEX IF NOT EXISTS idx_conversations_activity
    ON conversations(last_message_at DESC NULLS LAST, id DESC);
CREATE INDEX IF NOT EXISTS idx_messages_unfinished
    ON messages(start_time ASC NULLS FIRST, twilio_sid COLLATE "C")
    WHERE status NOT IN ('completed', 'busy', 'failed', 'no-answer', 'canceled');

-- 7. Contacts stored in the seed's display format `+1 (978) 844-7773` get
--    their canonical key `+19788447773`, so that later syncs find them. The
--    display form is kept in `formatted_number` (when that was empty). A
--    value whose E.164 form is already taken by another contact is left as it
--    is (merging two contacts is an operator's decision).
UPDATE contacts c
SET phone_number = regexp_replace(c.phone_number, '[^0-9+]', '', 'g'),
    formatted_number = COALESCE(NULLIF(c.formatted_number, ''), c.phone_number)
WHERE c.phone_number ~ '^\+1 \([0-9]{3}\) [0-9]{3}-[0-9]{4}$'
  AND NOT EXISTS (
      SELECT 1 FROM contacts o
      WHERE o.phone_number = regexp_replace(c.phone_number, '[^0-9+]', '', 'g')
  );
