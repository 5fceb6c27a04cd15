-- callview: lean call rows (issue 17).
--
-- 1. A call's Twilio record (`messages.metadata.raw`) is stored without the
--    URIs that follow from its account and call SIDs (`uri` and every entry
--    of `subresource_uris`, about 1.5 KB of a 2.4 KB record);
--    `metadata.raw_uris` lists the keys of `subresource_uris` in their
--    order (or is "standard" for the eleven Twilio sends today) and the
--    reader rebuilds them (callview_core::raw_uris), so the
--    record read back equals what Twilio sent. This converts the rows
--    already stored, in place, where every URI is one of the sub-resources
--    Twilio sends and equals the derived one; any other row is kept whole
--    (the reader takes both forms). Freed pages are reused by later writes
--    (`VACUUM` returns them to the file system).
-- 2. Indexes that only repeat the prefix of another go: idx_messages_conversation
--    (of idx_messages_conversation_start), idx_conversations_last_message
--    (of idx_conversations_activity) and idx_contacts_phone (of the UNIQUE
--    constraint's own index on contacts.phone_number).
-- 3. idx_messages_conversation_start becomes idx_messages_conversation_totals,
--    the same order with the columns a write's conversation totals read
--    (queries.rs, conversation_states): those read the index alone instead
--    of one table row per call of every conversation a page touches.

UPDATE messages
SET metadata = json_set(
        json_remove(metadata, '$.raw.uri', '$.raw.subresource_uris'),
        '$.raw_uris',
        (SELECT CASE WHEN keys = '["events","feedback","feedback_summaries","notifications","payments","recordings","siprec","streams","transcriptions","user_defined_message_subscriptions","user_defined_messages"]'
                     THEN 'standard' ELSE json(keys) END
         FROM (SELECT json_group_array(e.key) AS keys
               FROM json_each(messages.metadata, '$.raw.subresource_uris') e)))
WHERE json_valid(metadata)
  AND json_type(metadata, '$.raw_uris') IS NULL
  AND json_type(metadata, '$.raw.account_sid') = 'text'
  AND json_type(metadata, '$.raw.sid') = 'text'
  AND json_type(metadata, '$.raw.subresource_uris') = 'object'
  AND json_extract(metadata, '$.raw.uri') =
      '/2010-04-01/Accounts/' || json_extract(metadata, '$.raw.account_sid')
      || '/Calls/' || json_extract(metadata, '$.raw.sid') || '.json'
  AND NOT EXISTS (
      SELECT 1 FROM json_each(messages.metadata, '$.raw.subresource_uris') e
      WHERE e.type <> 'text'
         OR e.value IS NOT (
             CASE e.key
                 WHEN 'feedback_summaries' THEN
                     '/2010-04-01/Accounts/' || json_extract(messages.metadata, '$.raw.account_sid')
                     || '/Calls/FeedbackSummary.json'
                 ELSE
                     '/2010-04-01/Accounts/' || json_extract(messages.metadata, '$.raw.account_sid')
                     || '/Calls/' || json_extract(messages.metadata, '$.raw.sid') || '/'
                     || CASE e.key
                            WHEN 'feedback' THEN 'Feedback'
                            WHEN 'user_defined_messages' THEN 'UserDefinedMessages'
                            WHEN 'notifications' THEN 'Notifications'
                            WHEN 'recordings' THEN 'Recordings'
                            WHEN 'streams' THEN 'Streams'
                            WHEN 'payments' THEN 'Payments'
                            WHEN 'user_defined_message_subscriptions'
                                THEN 'UserDefinedMessageSubscriptions'
                            WHEN 'siprec' THEN 'Siprec'
                            WHEN 'events' THEN 'Events'
                            WHEN 'transcriptions' THEN 'Transcriptions'
                        END || '.json'
             END));

DROP INDEX IF EXISTS idx_messages_conversation;
DROP INDEX IF EXISTS idx_conversations_last_message;
DROP INDEX IF EXISTS idx_contacts_phone;
DROP INDEX IF EXISTS idx_messages_conversation_start;
CREATE INDEX IF NOT EXISTS idx_messages_conversation_totals
    ON messages (conversation_id, start_time DESC, twilio_sid DESC, root_call_sid, duration);
