-- callview: initial SQLite schema.
--
-- The seed's three tables (contacts, conversations, messages) with the
-- columns the call model adds (messages.root_call_sid, messages.updated_at),
-- the named sync cursors and the cross-process sync lock.
--
-- Conventions:
--   * JSON is stored as TEXT and must be valid JSON (CHECK json_valid).
--   * Timestamps are TEXT in the fixed-width UTC form
--     `YYYY-MM-DDTHH:MM:SS.ffffffZ`, so text order is time order.
--     The application always writes them with microsecond precision; the
--     defaults and triggers below (SQLite's clock has millisecond precision)
--     pad to the same width.
--   * messages.price is TEXT holding the exact decimal Twilio sent ("-0.01400").

CREATE TABLE contacts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    phone_number     TEXT    NOT NULL UNIQUE,
    formatted_number TEXT,
    display_name     TEXT,
    metadata         TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    updated_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);

CREATE TABLE conversations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id      INTEGER NOT NULL REFERENCES contacts (id),
    external_id     TEXT    NOT NULL UNIQUE,
    subject         TEXT,
    status          TEXT    NOT NULL DEFAULT 'active',
    last_message_at TEXT,
    metadata        TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    updated_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    twilio_sid      TEXT    NOT NULL UNIQUE,
    direction       TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    from_number     TEXT    NOT NULL,
    to_number       TEXT    NOT NULL,
    duration        INTEGER,
    price           TEXT,
    price_unit      TEXT,
    start_time      TEXT,
    end_time        TEXT,
    recording_url   TEXT,
    parent_call_sid TEXT,
    root_call_sid   TEXT    NOT NULL,
    metadata        TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    updated_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);

CREATE TABLE sync_cursors (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);

-- The cross-process sync lock (Store::try_lock_sync): at most one row per
-- lock name, held by `holder` until `expires_at` (a lease renewed while the
-- holder writes, so a crashed holder does not block syncs for ever).
CREATE TABLE sync_locks (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

-- The seed's indexes.
CREATE INDEX idx_contacts_phone ON contacts (phone_number);
CREATE INDEX idx_conversations_contact ON conversations (contact_id);
CREATE INDEX idx_conversations_last_message ON conversations (last_message_at DESC);
CREATE INDEX idx_messages_conversation ON messages (conversation_id);
CREATE INDEX idx_messages_start_time ON messages (start_time DESC);

-- Added by the call model.
CREATE INDEX idx_messages_parent ON messages (parent_call_sid);
CREATE INDEX idx_messages_root ON messages (root_call_sid);
CREATE INDEX idx_messages_conversation_start ON messages (conversation_id, start_time DESC);
CREATE INDEX idx_conversations_activity ON conversations (last_message_at DESC, id DESC);
CREATE INDEX idx_messages_unfinished ON messages (start_time, twilio_sid)
    WHERE status NOT IN ('completed', 'busy', 'failed', 'no-answer', 'canceled');

-- The seed's update_*_updated_at triggers. SQLite cannot assign NEW in a
-- trigger, so each one stamps the row after an UPDATE that left updated_at
-- as it was (an UPDATE that sets updated_at itself is kept as written).
CREATE TRIGGER update_contacts_updated_at
AFTER UPDATE ON contacts
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE contacts SET updated_at = strftime('%Y-%m-%dT%H:%M:%f000Z', 'now') WHERE id = NEW.id;
END;

CREATE TRIGGER update_conversations_updated_at
AFTER UPDATE ON conversations
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE conversations SET updated_at = strftime('%Y-%m-%dT%H:%M:%f000Z', 'now') WHERE id = NEW.id;
END;

CREATE TRIGGER update_messages_updated_at
AFTER UPDATE ON messages
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE messages SET updated_at = strftime('%Y-%m-%dT%H:%M:%f000Z', 'now') WHERE id = NEW.id;
END;

CREATE TRIGGER update_sync_cursors_updated_at
AFTER UPDATE ON sync_cursors
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE sync_cursors SET updated_at = strftime('%Y-%m-%dT%H:%M:%f000Z', 'now') WHERE name = NEW.name;
END;
