-- callview-postgres migration 3: what the conversation filters of
-- `GET /api/conversations` (`?status=`) read.
--
-- conversations.metadata.last_display_status holds the display status of the
-- conversation's newest root call (the row metadata.last_root_sid names).
-- Store::apply sets it with the counters from now on; this fills it in for the
-- conversations stored before, including those of a database created by the
-- seed's original application (no last_root_sid; rows whose metadata has no
-- display_status are read from their columns). Other metadata keys are kept.

UPDATE conversations v
SET metadata = (CASE WHEN jsonb_typeof(v.metadata) = 'object' THEN v.metadata
                     ELSE '{}'::jsonb END)
               || jsonb_build_object('last_display_status', newest.display_status)
FROM (
    SELECT DISTINCT ON (m.conversation_id)
           m.conversation_id,
           COALESCE(m.metadata->>'display_status',
               CASE WHEN COALESCE(m.duration, 0) > 0 THEN 'completed'
                    WHEN m.status IN ('busy', 'failed', 'canceled') THEN m.status
                    WHEN m.status IN ('completed', 'no-answer') THEN 'no-answer'
                    ELSE m.status END) AS display_status
    FROM messages m
    WHERE m.root_call_sid = m.twilio_sid AND m.conversation_id IS NOT NULL
    ORDER BY m.conversation_id,
             (m.start_time IS NOT NULL) DESC, m.start_time DESC,
             m.twilio_sid COLLATE "C" DESC
) newest
WHERE newest.conversation_id = v.id;
