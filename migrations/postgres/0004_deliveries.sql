-- Per-recipient delivery state, VERP bounce tokens and bounce records. PostgreSQL flavour; keep in
-- step with ../sqlite/0004_deliveries.sql.

-- The token of the row's VERP envelope sender (bounces+TOKEN@domain): a bounce that comes back
-- to that address is matched to this row. NULL for rows from before this migration and for
-- DSNs (sent from the null sender).
ALTER TABLE outbox ADD COLUMN bounce_token TEXT;
CREATE UNIQUE INDEX outbox_bounce_token ON outbox (bounce_token) WHERE bounce_token IS NOT NULL;

-- One row per envelope recipient of an outbox row: a retry re-attempts only the `queued` ones,
-- so a recipient that took the message never gets it twice. `attempts` counts this
-- recipient's attempts; `last_reply` is the remote server's last answer (or what failed).
CREATE TABLE outbox_recipients (
    outbox_id       TEXT    NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    rcpt            TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('queued', 'sent', 'failed')),
    attempts        BIGINT  NOT NULL DEFAULT 0,
    last_reply      TEXT,
    updated_at_ms   BIGINT  NOT NULL,
    PRIMARY KEY (outbox_id, rcpt)
);

-- Bounces of an outbox row (and so of the run that sent it): `remote` ones arrived as mail to
-- the row's bounce address (fields read from the DSN, best effort); `local` ones are egress
-- giving up on a recipient where no DSN is sent (the sender is the thwonk itself).
CREATE TABLE bounces (
    id              TEXT    NOT NULL PRIMARY KEY,
    outbox_id       TEXT    NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    source          TEXT    NOT NULL CHECK (source IN ('remote', 'local')),
    rcpt            TEXT,                      -- NULL: the DSN named no recipient we could read
    action          TEXT,
    status          TEXT,                      -- RFC 3463, e.g. 5.1.1
    remote_mta      TEXT,
    diagnostic      TEXT,
    reported_by     TEXT,                      -- remote: the bounce's envelope sender
    received_at_ms  BIGINT  NOT NULL
);
CREATE INDEX bounces_outbox ON bounces (outbox_id);
