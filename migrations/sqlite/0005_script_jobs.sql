-- Jobs that scripts publish for workers (`thwonk.jobs(queue).publish(payload)`), and the
-- guard that a job's result runs `onJobResult` once. SQLite flavour; keep in step with
-- ../postgres/0005_script_jobs.sql.

-- Written in the publishing run's commit transaction (a failed run writes none), pushed to
-- the Thoonk job queue `thoonk_queue` (ADDRESS/QUEUE) after the commit. `published_at_ms`
-- NULL: not yet on Redis (it was away); a retry pass publishes it later (publishing is
-- idempotent by id). `result_run_id` is set by the commit of the `onJobResult` run that
-- took the job's result (the first one wins; NULL: no result yet).
CREATE TABLE script_jobs (
    id              TEXT    PRIMARY KEY,                -- {run_id}.j{n}
    run_id          TEXT    NOT NULL REFERENCES runs (id),
    thwonk_id       TEXT    NOT NULL REFERENCES thwonks (id) ON DELETE CASCADE,
    queue           TEXT    NOT NULL,                   -- the script's name for the queue
    thoonk_queue    TEXT    NOT NULL,                   -- the Thoonk job queue: ADDRESS/QUEUE
    payload         TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    published_at_ms INTEGER,
    result_run_id   TEXT    REFERENCES runs (id),
    result_at_ms    INTEGER
);
CREATE INDEX script_jobs_unpublished ON script_jobs (created_at_ms) WHERE published_at_ms IS NULL;
CREATE INDEX script_jobs_open ON script_jobs (created_at_ms) WHERE result_run_id IS NULL;
