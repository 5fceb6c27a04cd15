-- callview-postgres migration 1: the documented schema
-- (shared/spec/seed-data-model-and-api.md, "PostgreSQL Tables"), exactly as
-- documented.
--
-- Every statement is idempotent so that this migration also runs on a
-- database created by the seed's original application (which has these
-- tables but no `_sqlx_migrations`): existing tables, indexes, rows and
-- triggers are left as they are. Migration 2 then widens and extends them.

CREATE TABLE IF NOT EXISTS contacts (
    id               SERIAL PRIMARY KEY,
    phone_number     VARCHAR(20) UNIQUE NOT NULL,
    formatted_number VARCHAR(30),
    display_name     VARCHAR(255),
    metadata         JSONB DEFAULT '{}',
    created_at       TIMESTAMP DEFAULT NOW(),
    updated_at       TIMESTAMP DEFAULT NOW()
);

CREATE TABLE IF NOT EXISTS conversations (
    id              SERIAL PRIMARY KEY,
    contact_id      INTEGER REFERENCES contacts(id),
    external_id     VARCHAR(100) UNIQUE NOT NULL,
    subject         VARCHAR(255),
    status          VARCHAR(50) DEFAULT 'active',
    last_message_at TIMESTAMP,
    metadata        JSONB DEFAULT '{}',
    created_at      TIMESTAMP DEFAULT NOW(),
    updated_at      TIMESTAMP DEFAULT NOW()
);

CREATE TABLE IF NOT EXISTS messages (
    id              SERIAL PRIMARY KEY,
    conversation_id INTEGER REFERENCES conversations(id),
    twilio_sid      VARCHAR(100) UNIQUE NOT NULL,
    direction       VARCHAR(50) NOT NULL,
    status          VARCHAR(50) NOT NULL,
    from_number     VARCHAR(20) NOT NULL,
    to_number       VARCHAR(20) NOT NULL,
    duration        INTEGER,
    price           DECIMAL(10,4),
    price_unit      VARCHAR(10),
    start_time      TIMESTAMP,
    end_time        TIMESTAMP,
    recording_url   TEXT,
    parent_call_sid VARCHAR(100),
    metadata        JSONB DEFAULT '{}',
    created_at      TIMESTAMP DEFAULT NOW()
);

CREATE INDEX IF NOT EXISTS idx_contacts_phone ON contacts(phone_number);
CREATE INDEX IF NOT EXISTS idx_conversations_contact ON conversations(contact_id);
CREATE INDEX IF NOT EXISTS idx_conversations_last_message ON conversations(last_message_at DESC);
CREATE INDEX IF NOT EXISTS idx_messages_conversation ON messages(conversation_id);
CREATE INDEX IF NOT EXISTS idx_messages_start_time ON messages(start_time DESC);

-- Keeps `updated_at` current on every UPDATE.
CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_trigger
        WHERE tgname = 'update_contacts_updated_at' AND tgrelid = 'contacts'::regclass
    ) THEN
        CREATE TRIGGER update_contacts_updated_at
            BEFORE UPDATE ON contacts
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_trigger
        WHERE tgname = 'update_conversations_updated_at' AND tgrelid = 'conversations'::regclass
    ) THEN
        CREATE TRIGGER update_conversations_updated_at
            BEFORE UPDATE ON conversations
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column();
    END IF;
END
$$;
