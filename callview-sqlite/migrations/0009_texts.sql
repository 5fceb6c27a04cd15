-- callview: text messages (SMS and MMS), Twilio's Message resource, in the
-- conversation of their external party beside its calls. Keyed by Twilio's
-- SID; `sent_at` is when the text was sent or received (else created): the
-- thread's order. `media` lists an MMS's media (`[{"sid", "content_type"}]`);
-- `raw` keeps the record exactly as Twilio sent it. Conversations' new
-- counters (`total_messages`, `last_message_type`, `last_text_sid`) live in
-- `conversations.metadata` beside the others.

CREATE TABLE IF NOT EXISTS texts (
    id               INTEGER PRIMARY KEY,
    conversation_id  INTEGER NOT NULL REFERENCES conversations (id),
    twilio_sid       TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL CHECK (kind IN ('sms', 'mms')),
    direction        TEXT NOT NULL,
    actual_direction TEXT NOT NULL,
    from_number      TEXT,
    to_number        TEXT,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL,
    num_segments     INTEGER,
    num_media        INTEGER NOT NULL,
    error_code       INTEGER,
    error_message    TEXT,
    price            TEXT,
    price_unit       TEXT,
    messaging_service_sid TEXT,
    sent_at          TEXT,
    date_created     TEXT,
    date_updated     TEXT,
    media            TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(media)),
    raw              TEXT NOT NULL CHECK (json_valid(raw)),
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
-- A thread's texts newest first, and a conversation's text totals.
CREATE INDEX IF NOT EXISTS idx_texts_thread ON texts (conversation_id, sent_at DESC, twilio_sid DESC);
