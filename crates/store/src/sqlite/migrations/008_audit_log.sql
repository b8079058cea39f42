-- The tamper-evident record (see src/audit.rs for the hash): one entry per
-- event, written in the event's transaction, each holding a copy of the
-- event, the digests of the signed envelopes its step stored, and the
-- previous entry's hash. The hook that runs with this migration builds the
-- chain over the events already stored.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,  -- 1, 2, 3, ... with no gaps
    event_id   INTEGER NOT NULL,     -- events.id
    at         INTEGER NOT NULL,     -- the event's columns, as recorded
    kind       INTEGER NOT NULL,
    alert_id   TEXT NOT NULL,
    agency     TEXT NOT NULL,
    direction  INTEGER NOT NULL,
    detail     TEXT NOT NULL,
    evidence   BLOB NOT NULL,        -- encoded (kind, key, key2, sha256) list
    prev_hash  BLOB NOT NULL,        -- the previous entry's hash (zeros for the first)
    hash       BLOB NOT NULL         -- SHA-256 of this entry's canonical encoding
) STRICT;

-- Append-only, against mistakes: nothing in Tocsin updates or deletes an
-- event or an entry. (Someone editing the file can drop these; the chain,
-- not the triggers, is what detects that.)
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
