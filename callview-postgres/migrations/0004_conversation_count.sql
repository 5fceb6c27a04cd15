-- callview-postgres migration 4: the number of conversations, kept by
-- triggers, so that the unfiltered `total` of `GET /api/conversations` is a
-- few rows read instead of a count over every conversation on each request
-- (about 5 ms at 100,000 conversations). A filtered list still counts its
-- matches.
--
-- The number is sum(delta) over conversation_count. Each statement that
-- inserts or deletes conversations adds one row (never updates a shared
-- one, so concurrent writers never wait for each other nor deadlock on it)
-- and folds into it the rows no other transaction is folding
-- (FOR UPDATE SKIP LOCKED), so the table stays a row or two. Readers see
-- the rows of the transactions their snapshot sees: the sum is exact.

-- No conversation is written while the count starts.
LOCK TABLE conversations IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE IF NOT EXISTS conversation_count (
    id    BIGSERIAL PRIMARY KEY,
    delta BIGINT NOT NULL
);

DELETE FROM conversation_count;
INSERT INTO conversation_count (delta) SELECT count(*) FROM conversations;

-- Adds `change` to the count, folding the rows nobody else holds into one.
CREATE OR REPLACE FUNCTION callview_add_conversation_count(change BIGINT)
RETURNS void LANGUAGE sql AS $$
    WITH folded AS (
        DELETE FROM conversation_count
        WHERE id IN (SELECT id FROM conversation_count FOR UPDATE SKIP LOCKED)
        RETURNING delta
    )
    INSERT INTO conversation_count (delta)
    SELECT change + COALESCE(sum(delta), 0) FROM folded;
$$;

CREATE OR REPLACE FUNCTION callview_conversations_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    change BIGINT;
BEGIN
    SELECT count(*) INTO change FROM inserted_conversations;
    IF change <> 0 THEN
        PERFORM callview_add_conversation_count(change);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION callview_conversations_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    change BIGINT;
BEGIN
    SELECT count(*) INTO change FROM deleted_conversations;
    IF change <> 0 THEN
        PERFORM callview_add_conversation_count(-change);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION callview_conversations_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM conversation_count;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS conversation_count_insert ON conversations;
CREATE TRIGGER conversation_count_insert
    AFTER INSERT ON conversations
    REFERENCING NEW TABLE AS inserted_conversations
    FOR EACH STATEMENT EXECUTE FUNCTION callview_conversations_inserted();

DROP TRIGGER IF EXISTS conversation_count_delete ON conversations;
CREATE TRIGGER conversation_count_delete
    AFTER DELETE ON conversations
    REFERENCING OLD TABLE AS deleted_conversations
    FOR EACH STATEMENT EXECUTE FUNCTION callview_conversations_deleted();

DROP TRIGGER IF EXISTS conversation_count_truncate ON conversations;
CREATE TRIGGER conversation_count_truncate
    AFTER TRUNCATE ON conversations
    FOR EACH STATEMENT EXECUTE FUNCTION callview_conversations_truncated();
