-- Sending budgets over time, and the extra domains an admin grants an owner (issue 13 items
-- 1 and 2). PostgreSQL flavour; keep in step with
-- ../sqlite/0006_budgets_and_domains.sql.

-- What a thwonk (scope 'thwonk', scope_id its id) or an owner (scope 'owner', scope_id the
-- user's id) used in one fixed window: window_ms is 60000 (the clock minute), 3600000 (the
-- clock hour) or 86400000 (the UTC day), bucket_ms the window's start. Counted in the run's
-- commit transaction, with the outbox rows they count; old windows are pruned as they go.
CREATE TABLE budget_counts (
    scope           TEXT    NOT NULL CHECK (scope IN ('thwonk', 'owner')),
    scope_id        TEXT    NOT NULL,
    window_ms       BIGINT NOT NULL,
    bucket_ms       BIGINT NOT NULL,
    runs            BIGINT NOT NULL DEFAULT 0,
    messages        BIGINT NOT NULL DEFAULT 0,
    recipients      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, scope_id, window_ms, bucket_ms)
);

-- Domains besides smtp.domains where an owner may create thwonks (lower case).
CREATE TABLE user_domains (
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    domain          TEXT    NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    PRIMARY KEY (user_id, domain)
);
