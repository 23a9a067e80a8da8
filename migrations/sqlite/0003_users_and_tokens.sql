-- Users and API tokens of the HTTP API, and who owns a thwonk. SQLite flavour; keep in step with
-- ../postgres/0003_users_and_tokens.sql.

-- admin: every thwonk and every route. owner: only the thwonks whose owner_id is theirs.
CREATE TABLE users (
    id              TEXT    NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL UNIQUE,
    role            TEXT    NOT NULL CHECK (role IN ('admin', 'owner')),
    created_at_ms   INTEGER NOT NULL
);

-- A token's secret is shown once, when it is created; only its SHA-256 (hex) is kept, and a
-- request's token is found by looking up the hash of what it presents.
CREATE TABLE api_tokens (
    id              TEXT    NOT NULL PRIMARY KEY,
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    hash            TEXT    NOT NULL UNIQUE,
    created_at_ms   INTEGER NOT NULL,
    last_used_at_ms INTEGER,
    revoked_at_ms   INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- NULL: created by the CLI or an admin, visible to admins only.
ALTER TABLE thwonks ADD COLUMN owner_id TEXT REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX thwonks_owner ON thwonks (owner_id);
