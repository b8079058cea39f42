-- Acknowledgement deadlines on both ends: on each delivery (originator),
-- and on each inbound alert (recipient). Rows from before this version have
-- no deadline (NULL).
ALTER TABLE deliveries ADD COLUMN due_at INTEGER;
ALTER TABLE alerts ADD COLUMN due_at INTEGER;

-- Every acknowledgement, sent (by this agency, for an inbound alert) or
-- received (from a recipient, for an outbound alert), with its envelope.
CREATE TABLE acknowledgements (
    id               TEXT PRIMARY KEY,
    alert_id         TEXT NOT NULL REFERENCES alerts (id),
    agency           TEXT NOT NULL,     -- the acknowledging recipient
    operator         TEXT NOT NULL,
    disposition      INTEGER NOT NULL,
    note             TEXT NOT NULL,
    acknowledged_at  INTEGER NOT NULL,  -- ms, signed
    stored_at        INTEGER NOT NULL,
    envelope         BLOB NOT NULL
) STRICT;

CREATE INDEX acknowledgements_by_alert ON acknowledgements (alert_id, agency, acknowledged_at);

-- The outbox for signed messages other than alerts (acknowledgements now;
-- reminders and notices later): same retry discipline as deliveries.
CREATE TABLE messages (
    id               TEXT PRIMARY KEY,  -- the message's own id
    peer             TEXT NOT NULL,
    kind             INTEGER NOT NULL,  -- 1 acknowledgement
    envelope         BLOB NOT NULL,
    state            INTEGER NOT NULL CHECK (state IN (1, 2, 3)),  -- pending, delivered, rejected
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    next_attempt_at  INTEGER,
    delivered_at     INTEGER
) STRICT;

CREATE INDEX messages_due ON messages (peer, next_attempt_at) WHERE state = 1;
