-- callview: three index changes found by the benchmarks (issue 17).
--
-- 1. A conversation's calls in the order its thread shows them.
--    The thread (`GET /api/conversations/{id}/messages`) and the newest
--    root call of a conversation read root calls newest first, calls never
--    started last: `ORDER BY start_time DESC NULLS LAST, twilio_sid
--    COLLATE "C" DESC`. idx_messages_conversation_start was
--    `(conversation_id, start_time DESC)`, whose DESC puts NULLs first, so
--    PostgreSQL read every call of the conversation and sorted them (4.8 ms
--    for the first page of a 1,000-call conversation). It is replaced by
--    the same columns in that order, NULLs last: a page reads its rows in
--    order from the index (sorting only calls that started in the same
--    second, by SID) and stops at its limit. Same size, same write cost;
--    the queries that only need `conversation_id` use it as before.
--
-- 2. The trigram index on conversations.external_id (migration 12) was on
--    the bare column. pg_trgm's operator class also answers `=`, and the
--    planner sometimes chose it for the sync's `external_id = ANY($1)`
--    lookup (one trigram search per id, about a minute per page of 1,000
--    calls on 100,000 conversations) over the UNIQUE constraint's btree.
--    The index is now on an expression (`external_id || ''`, the same text;
--    an expression no planner rewrites back to the column) that only the
--    search's condition uses (filters.rs, EXTERNAL_ID_TEXT), so equality
--    lookups keep the btree.
--
-- 3. idx_messages_parent holds only the calls that have a parent. It
--    answers "the children of these calls" (when a parent arrives after its
--    legs); most calls have no parent, and their NULL entries were written
--    and never read. A lookup by value implies NOT NULL, so PostgreSQL
--    still uses the partial index.

CREATE INDEX IF NOT EXISTS idx_messages_conversation_recent
    ON messages (conversation_id, start_time DESC NULLS LAST);
DROP INDEX IF EXISTS idx_messages_conversation_start;

DROP INDEX IF EXISTS idx_conversations_external_id_search;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX IF NOT EXISTS idx_conversations_external_id_text
            ON conversations USING gin ((external_id || '') gin_trgm_ops);
    END IF;
END
$$;

DROP INDEX IF EXISTS idx_messages_parent;
CREATE INDEX IF NOT EXISTS idx_messages_parent ON messages (parent_call_sid)
    WHERE parent_call_sid IS NOT NULL;
