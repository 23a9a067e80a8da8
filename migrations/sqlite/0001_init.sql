-- Thwonk schema, SQLite flavour. Keep in step with ../postgres/0001_init.sql: same tables,
-- columns and meaning; only the types differ (INTEGER/BLOB here, BIGINT/BYTEA there; PostgreSQL
-- also pins byte-order collation on address and path, which SQLite has by default).
-- Times are ms since the epoch; ids are UUID v7 text; flags are 0/1.

CREATE TABLE thwonks (
    id              TEXT    NOT NULL PRIMARY KEY,
    address         TEXT    NOT NULL UNIQUE,
    status          TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    active_version  INTEGER,
    schedule        TEXT,
    -- The run lease: which runner may run this thwonk's scripts, and until when.
    lease_owner     TEXT,
    lease_until_ms  INTEGER,
    created_at_ms   INTEGER NOT NULL
);

CREATE TABLE script_versions (
    thwonk_id       TEXT    NOT NULL REFERENCES thwonks (id) ON DELETE CASCADE,
    version         INTEGER NOT NULL,
    source          TEXT    NOT NULL,
    schedule        TEXT,
    created_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (thwonk_id, version)
);

CREATE TABLE runs (
    id              TEXT    NOT NULL PRIMARY KEY,
    thwonk_id       TEXT    NOT NULL REFERENCES thwonks (id) ON DELETE CASCADE,
    message_id      TEXT,
    "trigger"       TEXT    NOT NULL,
    script_version  INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('ok', 'error')),
    error_kind      TEXT,
    error_message   TEXT,
    error_stack     TEXT,
    logs            TEXT    NOT NULL,          -- JSON array of {level, message}
    logs_truncated  INTEGER NOT NULL DEFAULT 0,
    instructions    INTEGER NOT NULL,
    wall_ms         INTEGER NOT NULL,
    started_at_ms   INTEGER NOT NULL,
    finished_at_ms  INTEGER NOT NULL
);
CREATE INDEX runs_thwonk_started ON runs (thwonk_id, started_at_ms);

CREATE TABLE messages (
    -- Arrival order across every ingress process.
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    thwonk_id       TEXT    NOT NULL REFERENCES thwonks (id) ON DELETE CASCADE,
    mail_from       TEXT    NOT NULL,
    rcpt_to         TEXT    NOT NULL,          -- JSON array of strings
    raw             BLOB    NOT NULL,
    size            INTEGER NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('queued', 'processed', 'failed')),
    -- The run that consumed the message. Deferred: commit_run marks the message before it
    -- inserts the run, in the same transaction.
    run_id          TEXT    REFERENCES runs (id) DEFERRABLE INITIALLY DEFERRED,
    processed_at_ms INTEGER
);
CREATE INDEX messages_thwonk_status_seq ON messages (thwonk_id, status, seq);

CREATE TABLE vfs_files (
    thwonk_id       TEXT    NOT NULL REFERENCES thwonks (id) ON DELETE CASCADE,
    path            TEXT    NOT NULL,          -- normalised (thwonk_core::vfs), byte order
    content         BLOB    NOT NULL,
    size            INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (thwonk_id, path)
);

CREATE TABLE outbox (
    id                  TEXT    NOT NULL PRIMARY KEY,
    run_id              TEXT    NOT NULL REFERENCES runs (id),
    thwonk_id           TEXT    NOT NULL REFERENCES thwonks (id) ON DELETE CASCADE,
    mail_from           TEXT    NOT NULL,
    rcpt_to             TEXT    NOT NULL,      -- JSON array of strings
    raw                 BLOB    NOT NULL,
    status              TEXT    NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    next_attempt_at_ms  INTEGER NOT NULL,
    created_at_ms       INTEGER NOT NULL,
    sent_at_ms          INTEGER
);
CREATE INDEX outbox_status_next ON outbox (status, next_attempt_at_ms);
