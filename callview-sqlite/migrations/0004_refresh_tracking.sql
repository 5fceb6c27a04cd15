-- callview: how the refresh of unfinished calls follows each call, so that
-- calls Twilio answers 404 for, or that never reach a final status, back
-- off and are eventually no longer followed (kept, shown as such) instead
-- of holding the refresh's slots for ever. Additive: existing rows start
-- with no attempts, due at once.

ALTER TABLE messages ADD COLUMN refresh_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN refresh_due_at TEXT;
ALTER TABLE messages ADD COLUMN unfollowed_at TEXT;

-- The refresh lists followed unfinished calls newest first; this index
-- replaces the oldest-first one.
DROP INDEX IF EXISTS idx_messages_unfinished;
CREATE INDEX idx_messages_refresh ON messages (start_time DESC, twilio_sid DESC)
    WHERE status NOT IN ('completed', 'busy', 'failed', 'no-answer', 'canceled')
      AND unfollowed_at IS NULL;
