-- callview: call recordings and their transcripts (both of Twilio's
-- products), each in a table of its own keyed by Twilio's SID and pointing
-- at its call by SID (never by row), so that a recording stored before its
-- call is attached when the call arrives. `metadata` keeps the record as
-- Twilio sent it (JSONB, queryable). `deleted_at` marks a recording Twilio
-- no longer has: it is kept, never dropped. The seed's planned
-- `messages.transcription_text` holds the newest completed transcript of a
-- call's recordings; the seed's `messages.recording_url` the server path
-- that plays its newest recording. Additive and idempotent.

ALTER TABLE messages ADD COLUMN IF NOT EXISTS transcription_text TEXT;

CREATE TABLE IF NOT EXISTS recordings (
    sid            TEXT PRIMARY KEY,
    call_sid       TEXT,
    conference_sid TEXT,
    channels       SMALLINT,
    status         TEXT NOT NULL,
    source         TEXT,
    duration       INTEGER,
    start_time     TIMESTAMP,
    date_created   TIMESTAMP,
    date_updated   TIMESTAMP,
    price          NUMERIC,
    price_unit     TEXT,
    error_code     BIGINT,
    deleted_at     TIMESTAMP,
    metadata       JSONB NOT NULL,
    created_at     TIMESTAMP NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC'),
    updated_at     TIMESTAMP NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC')
);
CREATE INDEX IF NOT EXISTS idx_recordings_call ON recordings(call_sid);
CREATE INDEX IF NOT EXISTS idx_recordings_created ON recordings(date_created);

CREATE TABLE IF NOT EXISTS transcripts (
    sid           TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('legacy', 'intelligence')),
    recording_sid TEXT,
    call_sid      TEXT,
    status        TEXT NOT NULL,
    language_code TEXT,
    text          TEXT NOT NULL,
    sentences     JSONB NOT NULL DEFAULT '[]'::jsonb,
    date_created  TIMESTAMP,
    date_updated  TIMESTAMP,
    metadata      JSONB NOT NULL,
    created_at    TIMESTAMP NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC'),
    updated_at    TIMESTAMP NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC')
);
CREATE INDEX IF NOT EXISTS idx_transcripts_recording ON transcripts(recording_sid);
CREATE INDEX IF NOT EXISTS idx_transcripts_call ON transcripts(call_sid) WHERE call_sid IS NOT NULL;

-- The conversation filter "has a recording" reads only the recorded calls.
CREATE INDEX IF NOT EXISTS idx_messages_recorded ON messages(conversation_id)
    WHERE recording_url IS NOT NULL;
