-- The escalation ladder per delivery: 0 none, 1 reminded, 2 escalated,
-- 3 unanswered; next_step_at is the absolute time of the next step.
ALTER TABLE deliveries ADD COLUMN ladder INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN next_step_at INTEGER;
CREATE INDEX deliveries_next_step ON deliveries (next_step_at) WHERE ladder < 3 AND state != 3;

-- Inbound alerts: how many reminders the originator sent.
ALTER TABLE alerts ADD COLUMN reminders INTEGER NOT NULL DEFAULT 0;

-- Signed reminders and escalation notices received, kept as evidence.
CREATE TABLE received_messages (
    id           TEXT PRIMARY KEY,
    kind         INTEGER NOT NULL,   -- 2 reminder, 3 escalation notice
    alert_id     TEXT NOT NULL,
    agency       TEXT NOT NULL,      -- the sender
    received_at  INTEGER NOT NULL,
    envelope     BLOB NOT NULL
) STRICT;
