-- callview: trigram indexes for search (`q=`, issue 17), when the pg_trgm
-- extension can be had.
--
-- A search matches contacts (display name, formatted number, phone key,
-- company, notes, tags), the notes and tags of calls, and transcripts, as
-- substrings (`ILIKE '%...%'`). Without an index each search reads every
-- contact, every annotated call and every transcript. With pg_trgm,
-- GIN trigram indexes answer those substring conditions:
--   * idx_contacts_search: the contact's searchable fields in one text
--     (callview adds that text's `ILIKE` to the exact conditions, so the
--     index picks the candidates; filters.rs, SEARCH_TEXT);
--   * idx_messages_annotations_search: the same for a call's notes and
--     tags (only calls that have some);
--   * idx_transcripts_search: the transcript's text;
--   * idx_conversations_external_id_search: the conversation's external id.
-- Creating an extension needs a privilege a user of an existing database
-- may lack (or the server may not ship contrib): the migration then goes
-- on without these indexes, and search reads the rows as before (correct,
-- slower). To add them later: `CREATE EXTENSION pg_trgm;` (as a superuser
-- or the database owner), then the four `CREATE INDEX` statements below.

DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'callview: pg_trgm is not available (%): search reads every row', SQLERRM;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX IF NOT EXISTS idx_contacts_search ON contacts USING gin ((
            coalesce(display_name, '') || ' ' || coalesce(formatted_number, '') || ' '
            || coalesce(phone_number, '') || ' ' || coalesce(company_name, '') || ' '
            || coalesce(notes, '') || ' ' || coalesce(tags::text, '')) gin_trgm_ops);
        CREATE INDEX IF NOT EXISTS idx_messages_annotations_search ON messages USING gin ((
            coalesce(notes, '') || ' ' || coalesce(tags::text, '')) gin_trgm_ops)
            WHERE notes IS NOT NULL OR tags <> '[]'::jsonb;
        CREATE INDEX IF NOT EXISTS idx_transcripts_search ON transcripts USING gin (text gin_trgm_ops);
        CREATE INDEX IF NOT EXISTS idx_conversations_external_id_search
            ON conversations USING gin (external_id gin_trgm_ops);
    END IF;
END
$$;
