-- callview: what the conversation filters of `GET /api/conversations` need
-- (`?direction=`, `?status=`).
--
-- * conversations.metadata.last_display_status: the display status of the
--   newest root call (the row named by metadata.last_root_sid). Store::apply
--   sets it with the counters from then on; this fills it in for the
--   conversations stored before.
-- * Expression indexes on the two filtered metadata keys, ordered like the
--   conversations list, so a filtered page and its count read the index.

UPDATE conversations
SET metadata = json_set(
        metadata,
        '$.last_display_status',
        (SELECT json_extract(m.metadata, '$.display_status')
         FROM messages m
         WHERE m.twilio_sid = json_extract(conversations.metadata, '$.last_root_sid')))
WHERE json_type(metadata, '$.last_root_sid') = 'text';

CREATE INDEX idx_conversations_last_status
    ON conversations (json_extract(metadata, '$.last_display_status'), last_message_at DESC, id DESC);
CREATE INDEX idx_conversations_last_direction
    ON conversations (json_extract(metadata, '$.last_call_direction'), last_message_at DESC, id DESC);
