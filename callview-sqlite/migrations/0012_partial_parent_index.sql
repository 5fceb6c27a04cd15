-- callview: idx_messages_parent holds only the calls that have a parent
-- (issue 17).
--
-- The index answers "the children of these calls" (`parent_call_sid IN
-- (...)` when a parent arrives after its legs). Most calls have no parent:
-- their NULL entries were written, page after page, and never read. A
-- partial index skips them; a lookup by value implies NOT NULL, so SQLite
-- still uses it.

DROP INDEX IF EXISTS idx_messages_parent;
CREATE INDEX IF NOT EXISTS idx_messages_parent ON messages (parent_call_sid)
    WHERE parent_call_sid IS NOT NULL;
