-- The automatic replies (`thwonk.reply`) each thwonk sent lately: at most one of the same reply
-- to one correspondent per `runner.auto_reply_interval_secs` (RFC 3834 section 2).
-- `reply_key` is the correspondent (the envelope sender answered, lower case), `/`, and a
-- fingerprint of the reply (thwonk_core::run::reply_key). PostgreSQL flavour; keep in step with
-- ../sqlite/0007_auto_replies.sql.
CREATE TABLE auto_replies (
    thwonk_id       TEXT    NOT NULL REFERENCES thwonks (id) ON DELETE CASCADE,
    correspondent   TEXT COLLATE "C"    NOT NULL,
    reply_key       TEXT COLLATE "C"    NOT NULL,
    replied_at_ms   BIGINT  NOT NULL,
    PRIMARY KEY (thwonk_id, reply_key)
);
CREATE INDEX auto_replies_correspondent ON auto_replies (thwonk_id, correspondent, replied_at_ms);
