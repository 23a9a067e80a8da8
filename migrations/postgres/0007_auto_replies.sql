-- When each thwonk last auto-replied (`thwonk.reply`) to each correspondent (the envelope
-- sender it answered, lower case): at most one auto-reply per correspondent per
-- `runner.auto_reply_interval_secs` (RFC 3834 section 2). PostgreSQL flavour; keep in step
-- with ../sqlite/0007_auto_replies.sql.
CREATE TABLE auto_replies (
    thwonk_id       TEXT    NOT NULL REFERENCES thwonks (id) ON DELETE CASCADE,
    correspondent   TEXT    COLLATE "C" NOT NULL,
    replied_at_ms   BIGINT  NOT NULL,
    PRIMARY KEY (thwonk_id, correspondent)
);
