-- One stored copy of an incoming message, shared by the per-thwonk message rows of its
-- delivery (issue 13 item 8: a message to ten thwonks was stored ten times). PostgreSQL
-- flavour; keep in step with ../sqlite/0008_message_bodies.sql.
--
-- A body lives as long as a message row refers to it: the store deletes a body in the same
-- transaction as the last message that used it.
CREATE TABLE message_bodies (
    id              TEXT    NOT NULL PRIMARY KEY,
    raw             BYTEA   NOT NULL,
    size            BIGINT  NOT NULL,
    created_at_ms   BIGINT  NOT NULL
);

ALTER TABLE messages ADD COLUMN body_id TEXT REFERENCES message_bodies (id);

-- Existing rows: each keeps its bytes, moved into a body of its own (same id as the row).
INSERT INTO message_bodies (id, raw, size, created_at_ms)
    SELECT id, raw, size, received_at_ms FROM messages;
UPDATE messages SET body_id = id;

ALTER TABLE messages ALTER COLUMN body_id SET NOT NULL;
ALTER TABLE messages DROP COLUMN raw;
CREATE INDEX messages_body ON messages (body_id);
