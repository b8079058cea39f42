-- Alerts this node sent (direction 1) or received (direction 2), each with
-- the envelope exactly as signed by its originator.
CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    direction   INTEGER NOT NULL CHECK (direction IN (1, 2)),
    originator  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,  -- ms since the epoch, from the signed alert
    stored_at   INTEGER NOT NULL,  -- ms, when this node committed it
    precedence  INTEGER NOT NULL,
    category    TEXT NOT NULL,
    summary     TEXT NOT NULL,     -- subjects, for listings
    digest      BLOB NOT NULL,     -- SHA-256 of PAE(type, payload)
    envelope    BLOB NOT NULL,     -- encoded tocsin.v1.Envelope
    receipt     BLOB               -- inbound: the receipt envelope this node issued
) STRICT;

CREATE INDEX alerts_by_direction ON alerts (direction, stored_at DESC, id DESC);

-- One row per (outbound alert, recipient): the durable outbox and the
-- delivery state the operator sees.
CREATE TABLE deliveries (
    alert_id         TEXT NOT NULL REFERENCES alerts (id),
    recipient        TEXT NOT NULL,
    state            INTEGER NOT NULL CHECK (state IN (1, 2, 3)),  -- pending, delivered, rejected
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    next_attempt_at  INTEGER,      -- ms; set while pending
    delivered_at     INTEGER,      -- ms, from the recipient's signed receipt
    receipt          BLOB,         -- encoded receipt envelope
    PRIMARY KEY (alert_id, recipient)
) STRICT;

CREATE INDEX deliveries_due ON deliveries (recipient, next_attempt_at) WHERE state = 1;
