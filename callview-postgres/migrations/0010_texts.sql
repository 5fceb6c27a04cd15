-- callview: text messages (SMS and MMS), Twilio's Message resource, in the
-- conversation of their external party beside its calls. Keyed by Twilio's
-- SID; `sent_at` is when the text was sent or received (else created): the
-- thread's order. `media` lists an MMS's media (`[{"sid", "content_type"}]`);
-- `raw` keeps the record exactly as Twilio sent it (JSONB, queryable).
-- Conversations' new counters (`total_messages`, `last_message_type`,
-- `last_text_sid`) live in `conversations.metadata` beside the others.
-- Additive and idempotent.

CREATE TABLE IF NOT EXISTS texts (
    id               BIGSERIAL PRIMARY KEY,
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
    error_code       BIGINT,
    error_message    TEXT,
    price            NUMERIC,
    price_unit       TEXT,
    messaging_service_sid TEXT,
    sent_at          TIMESTAMP,
    date_created     TIMESTAMP,
    date_updated     TIMESTAMP,
    media            JSONB NOT NULL DEFAULT '[]',
    raw              JSONB NOT NULL,
    created_at       TIMESTAMP NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC'),
    updated_at       TIMESTAMP NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC')
);
-- A thread's texts newest first, and a conversation's text totals.
CREATE INDEX IF NOT EXISTS idx_texts_thread
    ON texts (conversation_id, sent_at DESC NULLS LAST, twilio_sid DESC);
