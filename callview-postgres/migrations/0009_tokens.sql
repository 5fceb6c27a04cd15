-- Named API tokens with roles (issue 18). A token's text is never
-- stored: `token_hash` is the SHA-256 (lower-case hex) of it. Rows are
-- never deleted: a revoked token keeps its row (`revoked_at`), so the
-- names edits were made by stay explained. One token per name is not
-- revoked at a time (the partial unique index); an expired one is marked
-- revoked when its name is given to a new token. Timestamps are UTC
-- (`TIMESTAMP`, like the other tables). Idempotent, like every migration.

CREATE TABLE IF NOT EXISTS api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT      NOT NULL,
    role         TEXT      NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    token_hash   TEXT      NOT NULL UNIQUE,
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    expires_at   TIMESTAMP,
    revoked_at   TIMESTAMP
);

CREATE UNIQUE INDEX IF NOT EXISTS idx_api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
