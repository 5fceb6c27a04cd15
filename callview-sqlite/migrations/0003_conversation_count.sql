-- callview: the number of conversations, kept by triggers, so that the
-- unfiltered `total` of `GET /api/conversations` is one row read instead
-- of a count over every conversation on each request.
--
-- One row (id 1). SQLite has one writer at a time, so the triggers never
-- make writers wait for each other. A filtered list still counts its
-- matches (through the filter indexes).

CREATE TABLE conversation_count (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);

INSERT INTO conversation_count (id, n) SELECT 1, count(*) FROM conversations;

CREATE TRIGGER conversation_count_insert
AFTER INSERT ON conversations
BEGIN
    UPDATE conversation_count SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER conversation_count_delete
AFTER DELETE ON conversations
BEGIN
    UPDATE conversation_count SET n = n - 1 WHERE id = 1;
END;
