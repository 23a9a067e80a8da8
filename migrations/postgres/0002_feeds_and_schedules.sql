-- Feeds committed with their run, and the schedule ticks that have run. PostgreSQL flavour;
-- keep in step with ../sqlite/0002_feeds_and_schedules.sql.

-- A run's feed publishes and retracts, written in the run's commit transaction and applied to
-- Redis (the Thoonk feed `feed`) afterwards, in `seq` order per thwonk. `applied_at_ms` NULL:
-- not yet applied (Redis was away); a retry pass applies it later. Applying twice is harmless:
-- a publish of an existing id is an edit, a retract of a missing id does nothing.
CREATE TABLE feed_ops (
    seq             BIGSERIAL PRIMARY KEY,
    run_id          TEXT    NOT NULL REFERENCES runs (id),
    thwonk_id       TEXT    NOT NULL REFERENCES thwonks (id) ON DELETE CASCADE,
    feed            TEXT    COLLATE "C" NOT NULL,  -- the Thoonk feed: ADDRESS/NAME
    op              TEXT    NOT NULL CHECK (op IN ('publish', 'retract')),
    item_id         TEXT    NOT NULL,
    item            TEXT,                          -- publish only
    created_at_ms   BIGINT  NOT NULL,
    applied_at_ms   BIGINT
);
CREATE INDEX feed_ops_pending ON feed_ops (thwonk_id, seq) WHERE applied_at_ms IS NULL;

-- One row per schedule tick that ran: the guard that makes a tick commit once even when its
-- job is delivered twice, as the message status does for mail.
CREATE TABLE schedule_ticks (
    thwonk_id       TEXT    NOT NULL REFERENCES thwonks (id) ON DELETE CASCADE,
    at_ms           BIGINT  NOT NULL,
    run_id          TEXT    NOT NULL REFERENCES runs (id),
    PRIMARY KEY (thwonk_id, at_ms)
);
