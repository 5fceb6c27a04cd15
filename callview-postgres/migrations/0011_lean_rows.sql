-- callview: lean call rows (issue 17).
--
-- 1. A call's Twilio record (`messages.metadata.raw`) is stored without the
--    URIs that follow from its account and call SIDs (`uri` and every entry
--    of `subresource_uris`, about 1.5 KB of a 2.4 KB record);
--    `metadata.raw_uris` lists the keys of `subresource_uris` (in byte order,
--    as callview writes them; "standard" for the eleven Twilio sends today)
--    and the
--    reader rebuilds them (callview_core::raw_uris), so the record read back
--    equals what Twilio sent. A query on `metadata -> 'raw' -> 'uri'` finds
--    nothing on such rows: see docs/postgres-schema.md. This converts the
--    rows already stored, in place, where every URI is one of the
--    sub-resources Twilio sends and equals the derived one; any other row is
--    kept whole (the reader takes both forms).
-- 2. Indexes that only repeat the prefix of another go: idx_messages_conversation
--    (of idx_messages_conversation_start), idx_conversations_last_message
--    (of idx_conversations_activity) and idx_contacts_phone (of the UNIQUE
--    constraint's own index on contacts.phone_number).

UPDATE messages
SET metadata = (metadata #- '{raw,uri}' #- '{raw,subresource_uris}')
    || jsonb_build_object(
           'raw_uris',
           (SELECT CASE WHEN keys = '["events","feedback","feedback_summaries","notifications","payments","recordings","siprec","streams","transcriptions","user_defined_message_subscriptions","user_defined_messages"]'::jsonb
                        THEN '"standard"'::jsonb ELSE keys END
            FROM (SELECT coalesce(jsonb_agg(e.key ORDER BY e.key COLLATE "C"), '[]'::jsonb) AS keys
                  FROM jsonb_each(metadata -> 'raw' -> 'subresource_uris') e) k))
WHERE jsonb_typeof(metadata) = 'object'
  AND NOT metadata ? 'raw_uris'
  AND jsonb_typeof(metadata -> 'raw' -> 'account_sid') = 'string'
  AND jsonb_typeof(metadata -> 'raw' -> 'sid') = 'string'
  AND jsonb_typeof(metadata -> 'raw' -> 'subresource_uris') = 'object'
  AND metadata -> 'raw' ->> 'uri' =
      '/2010-04-01/Accounts/' || (metadata -> 'raw' ->> 'account_sid')
      || '/Calls/' || (metadata -> 'raw' ->> 'sid') || '.json'
  AND NOT EXISTS (
      SELECT 1 FROM jsonb_each(metadata -> 'raw' -> 'subresource_uris') e
      WHERE jsonb_typeof(e.value) <> 'string'
         OR (e.value #>> '{}') IS DISTINCT FROM (
             CASE e.key
                 WHEN 'feedback_summaries' THEN
                     '/2010-04-01/Accounts/' || (metadata -> 'raw' ->> 'account_sid')
                     || '/Calls/FeedbackSummary.json'
                 ELSE
                     '/2010-04-01/Accounts/' || (metadata -> 'raw' ->> 'account_sid')
                     || '/Calls/' || (metadata -> 'raw' ->> 'sid') || '/'
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
