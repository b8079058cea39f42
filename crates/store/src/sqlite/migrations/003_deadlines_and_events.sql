-- Deadline flags: set when a deadline passes with no acknowledgement.
-- 0 none, 1 overdue, 2 undelivered (originator side only).
ALTER TABLE deliveries ADD COLUMN flag INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN flagged_at INTEGER;
ALTER TABLE alerts ADD COLUMN flag INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN flagged_at INTEGER;

-- Open deadlines, for the tracker's next wake-up.
CREATE INDEX deliveries_open_deadlines ON deliveries (due_at) WHERE flag = 0 AND state != 3;
CREATE INDEX alerts_open_deadlines ON alerts (due_at) WHERE flag = 0 AND direction = 2;

-- Everything that happened, in order; written in the same transaction as
-- the change it records. Feeds the watch stream.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,   -- ms, node clock
    kind       INTEGER NOT NULL,   -- tocsin.v1.EventKind
    alert_id   TEXT NOT NULL,
    agency     TEXT NOT NULL,
    direction  INTEGER NOT NULL,   -- 1 outbound, 2 inbound
    detail     TEXT NOT NULL
) STRICT;
