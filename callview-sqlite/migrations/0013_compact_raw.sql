-- callview: a call's Twilio record in a compact column (issue 17).
--
-- `messages.metadata.raw` (about 700 bytes of JSON after migration 10)
-- moves to `messages.raw_zstd`: one format byte and a zstd frame
-- compressed against a fixed record-shaped prefix (callview_sqlite::raw_record),
-- about 200 bytes. `metadata` keeps every other key (the processed fields,
-- `raw_uris`). The reader takes both forms: a row whose `metadata` still
-- has `raw` (the seed application's rows have neither) reads as before.
--
-- The rows stored before are converted here, in place, by the SQL
-- function `cv_raw_zstd` that callview registers where it migrates (so
-- this file runs through callview, not the `sqlite3` shell). The
-- conversion changes how a record is kept, not what it is, so
-- `updated_at` is kept (the trigger that would set it is dropped for the
-- update and created again as migration 1 made it). It rewrites every
-- `messages` row in the migration's one transaction: writers wait for it
-- (about 1.3 s for 100,000 calls) and the WAL grows by about the table's
-- size until the next checkpoint. Freed pages are reused by later writes
-- (`VACUUM` returns them to the file system).

ALTER TABLE messages ADD COLUMN raw_zstd BLOB;

DROP TRIGGER IF EXISTS update_messages_updated_at;

UPDATE messages
SET raw_zstd = cv_raw_zstd(json_extract(metadata, '$.raw')),
    metadata = json_remove(metadata, '$.raw')
WHERE json_valid(metadata)
  AND json_type(metadata, '$.raw') = 'object';

CREATE TRIGGER update_messages_updated_at
AFTER UPDATE ON messages
FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN
    UPDATE messages SET updated_at = strftime('%Y-%m-%dT%H:%M:%f000Z', 'now') WHERE id = NEW.id;
END;
