-- Statistics (issue 16): what `/api/stats` adds up, kept exact by the
-- ingest transaction.
--
-- `interactions`: one row per root call with the figures statistics count
-- (computed by the call model: direction, outcome, talk and wait time, the
-- business line, the cost in billionths of its currency). `slot` is the
-- quarter hour (Unix seconds / 900) of its start.
--
-- `stats_slots`: per quarter hour, currency and line, the sum of the
-- counters of its interactions (column order: `callview_core::stats::counters`);
-- `stats_hours` the same per hour (Unix seconds / 3600), so that a year
-- reads hours, and by quarters only the hours a local bucket starts inside.
-- `conversation_stats`: per conversation (with its external id, which
-- never changes), its dated interactions and missed ones of all time:
-- bounds that find the busiest conversations of a period without
-- counting all of them. Every write of `interactions` adds its
-- change to the three in the same transaction.
--
-- A database holding calls already gets its figures computed by the
-- application on open (`stats_rebuild` cursor, `callview_core::stats::ensure_built`).

CREATE TABLE IF NOT EXISTS interactions (
    root_sid        TEXT    PRIMARY KEY,
    conversation_id BIGINT  NOT NULL,
    slot            BIGINT,
    direction       TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,
    talk_time       INTEGER NOT NULL,
    wait_time       INTEGER NOT NULL,
    line            TEXT    NOT NULL,
    currency        TEXT    NOT NULL,
    cost_nanos      BIGINT  NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_interactions_slot ON interactions (slot, conversation_id, outcome);
CREATE INDEX IF NOT EXISTS idx_interactions_conversation ON interactions (conversation_id, slot, outcome);

CREATE TABLE IF NOT EXISTS stats_slots (
    slot     BIGINT  NOT NULL,
    currency TEXT    NOT NULL,
    line     TEXT    NOT NULL,
    inbound            BIGINT  NOT NULL DEFAULT 0,
    inbound_answered   BIGINT  NOT NULL DEFAULT 0,
    inbound_missed     BIGINT  NOT NULL DEFAULT 0,
    outbound           BIGINT  NOT NULL DEFAULT 0,
    outbound_answered  BIGINT  NOT NULL DEFAULT 0,
    outbound_missed    BIGINT  NOT NULL DEFAULT 0,
    internal           BIGINT  NOT NULL DEFAULT 0,
    internal_answered  BIGINT  NOT NULL DEFAULT 0,
    internal_missed    BIGINT  NOT NULL DEFAULT 0,
    live               BIGINT  NOT NULL DEFAULT 0,
    talk_sum           BIGINT  NOT NULL DEFAULT 0,
    wait_sum           BIGINT  NOT NULL DEFAULT 0,
    cost_nanos         BIGINT  NOT NULL DEFAULT 0,
    wait_0             BIGINT  NOT NULL DEFAULT 0,
    wait_1             BIGINT  NOT NULL DEFAULT 0,
    wait_2             BIGINT  NOT NULL DEFAULT 0,
    wait_3             BIGINT  NOT NULL DEFAULT 0,
    wait_4             BIGINT  NOT NULL DEFAULT 0,
    wait_5             BIGINT  NOT NULL DEFAULT 0,
    wait_6             BIGINT  NOT NULL DEFAULT 0,
    wait_7             BIGINT  NOT NULL DEFAULT 0,
    wait_8             BIGINT  NOT NULL DEFAULT 0,
    wait_9             BIGINT  NOT NULL DEFAULT 0,
    wait_10            BIGINT  NOT NULL DEFAULT 0,
    wait_11            BIGINT  NOT NULL DEFAULT 0,
    wait_12            BIGINT  NOT NULL DEFAULT 0,
    wait_13            BIGINT  NOT NULL DEFAULT 0,
    wait_14            BIGINT  NOT NULL DEFAULT 0,
    talk_0             BIGINT  NOT NULL DEFAULT 0,
    talk_1             BIGINT  NOT NULL DEFAULT 0,
    talk_2             BIGINT  NOT NULL DEFAULT 0,
    talk_3             BIGINT  NOT NULL DEFAULT 0,
    talk_4             BIGINT  NOT NULL DEFAULT 0,
    talk_5             BIGINT  NOT NULL DEFAULT 0,
    talk_6             BIGINT  NOT NULL DEFAULT 0,
    talk_7             BIGINT  NOT NULL DEFAULT 0,
    talk_8             BIGINT  NOT NULL DEFAULT 0,
    talk_9             BIGINT  NOT NULL DEFAULT 0,
    talk_10            BIGINT  NOT NULL DEFAULT 0,
    talk_11            BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (slot, currency, line)
);

CREATE TABLE IF NOT EXISTS stats_hours (
    hour     BIGINT  NOT NULL,
    currency TEXT    NOT NULL,
    line     TEXT    NOT NULL,
    inbound            BIGINT  NOT NULL DEFAULT 0,
    inbound_answered   BIGINT  NOT NULL DEFAULT 0,
    inbound_missed     BIGINT  NOT NULL DEFAULT 0,
    outbound           BIGINT  NOT NULL DEFAULT 0,
    outbound_answered  BIGINT  NOT NULL DEFAULT 0,
    outbound_missed    BIGINT  NOT NULL DEFAULT 0,
    internal           BIGINT  NOT NULL DEFAULT 0,
    internal_answered  BIGINT  NOT NULL DEFAULT 0,
    internal_missed    BIGINT  NOT NULL DEFAULT 0,
    live               BIGINT  NOT NULL DEFAULT 0,
    talk_sum           BIGINT  NOT NULL DEFAULT 0,
    wait_sum           BIGINT  NOT NULL DEFAULT 0,
    cost_nanos         BIGINT  NOT NULL DEFAULT 0,
    wait_0             BIGINT  NOT NULL DEFAULT 0,
    wait_1             BIGINT  NOT NULL DEFAULT 0,
    wait_2             BIGINT  NOT NULL DEFAULT 0,
    wait_3             BIGINT  NOT NULL DEFAULT 0,
    wait_4             BIGINT  NOT NULL DEFAULT 0,
    wait_5             BIGINT  NOT NULL DEFAULT 0,
    wait_6             BIGINT  NOT NULL DEFAULT 0,
    wait_7             BIGINT  NOT NULL DEFAULT 0,
    wait_8             BIGINT  NOT NULL DEFAULT 0,
    wait_9             BIGINT  NOT NULL DEFAULT 0,
    wait_10            BIGINT  NOT NULL DEFAULT 0,
    wait_11            BIGINT  NOT NULL DEFAULT 0,
    wait_12            BIGINT  NOT NULL DEFAULT 0,
    wait_13            BIGINT  NOT NULL DEFAULT 0,
    wait_14            BIGINT  NOT NULL DEFAULT 0,
    talk_0             BIGINT  NOT NULL DEFAULT 0,
    talk_1             BIGINT  NOT NULL DEFAULT 0,
    talk_2             BIGINT  NOT NULL DEFAULT 0,
    talk_3             BIGINT  NOT NULL DEFAULT 0,
    talk_4             BIGINT  NOT NULL DEFAULT 0,
    talk_5             BIGINT  NOT NULL DEFAULT 0,
    talk_6             BIGINT  NOT NULL DEFAULT 0,
    talk_7             BIGINT  NOT NULL DEFAULT 0,
    talk_8             BIGINT  NOT NULL DEFAULT 0,
    talk_9             BIGINT  NOT NULL DEFAULT 0,
    talk_10            BIGINT  NOT NULL DEFAULT 0,
    talk_11            BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, currency, line)
);

CREATE TABLE IF NOT EXISTS conversation_stats (
    conversation_id BIGINT PRIMARY KEY,
    external_id     TEXT COLLATE "C" NOT NULL,
    interactions    BIGINT NOT NULL DEFAULT 0,
    missed          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS idx_conversation_stats_interactions
    ON conversation_stats (interactions DESC, external_id);
CREATE INDEX IF NOT EXISTS idx_conversation_stats_missed
    ON conversation_stats (missed DESC, interactions DESC, external_id);

INSERT INTO sync_cursors (name, value)
SELECT 'stats_rebuild', 'pending' WHERE EXISTS (SELECT 1 FROM messages)
ON CONFLICT (name) DO UPDATE SET value = excluded.value;
