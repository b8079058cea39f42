-- The PostgreSQL schema: the SQLite schema as migrations 001 to 012 leave
-- it (crates/store/src/migrations), translated. Same tables, columns (in
-- the same order), constraints and index names, so that one set of
-- queries can serve both and a store can be moved from one to the other
-- row for row; the parity test (crates/store/tests/postgres_schema.rs)
-- holds the two together. Every integer, code and ms timestamp is BIGINT
-- (SQLite's INTEGER is 64-bit), every blob BYTEA, every text TEXT
-- COLLATE "C" (bytewise, as SQLite compares: ids, agencies and subjects
-- sort alike on both whatever the database's locale). The
-- comments on what the columns mean are in the SQLite migrations.
--
-- Two departures, both for several front nodes on one database:
-- `events.id`, `audit_log.seq` and `watchlist_log.seq` are allocated from
-- the `sequences` table, not by AUTOINCREMENT or MAX() + 1; and PostgreSQL
-- triggers are functions.

-- Gapless counters, allocated inside the write transaction that uses the
-- value:
--
--     UPDATE sequences SET next = next + 1 WHERE name = $1 RETURNING next - 1
--
-- The UPDATE takes the row's lock and holds it until the transaction
-- commits or rolls back, so a second writer waits for the first: values
-- are handed out in commit order, a rolled-back transaction's value is
-- handed out again, and a reader that follows the ids never skips a row
-- that commits later with a smaller id (what a PostgreSQL SEQUENCE or
-- IDENTITY column allows: they are allocated outside the transaction and
-- commit out of order). `next` is the value the next allocation gets.
CREATE TABLE sequences (
    name  TEXT COLLATE "C" PRIMARY KEY,
    next  BIGINT NOT NULL CHECK (next >= 1)
);

INSERT INTO sequences (name, next) VALUES
    ('events', 1),         -- events.id
    ('audit_log', 1),      -- audit_log.seq, the chain's order
    ('watchlist_log', 1);  -- watchlist_log.seq, this agency's own list

CREATE TABLE alerts (
    id          TEXT COLLATE "C" PRIMARY KEY,
    direction   BIGINT NOT NULL CHECK (direction IN (1, 2)),
    originator  TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    stored_at   BIGINT NOT NULL,
    precedence  BIGINT NOT NULL,
    category    TEXT COLLATE "C" NOT NULL,
    summary     TEXT COLLATE "C" NOT NULL,
    digest      BYTEA NOT NULL,
    envelope    BYTEA NOT NULL,
    receipt     BYTEA,
    due_at      BIGINT,
    flag        BIGINT NOT NULL DEFAULT 0,
    flagged_at  BIGINT,
    reminders   BIGINT NOT NULL DEFAULT 0,
    status      BIGINT NOT NULL DEFAULT 0,
    closed_by   TEXT COLLATE "C",
    settled     BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX alerts_by_direction ON alerts (direction, stored_at DESC, id DESC);
CREATE INDEX alerts_open_deadlines ON alerts (due_at)
    WHERE flag = 0 AND direction = 2 AND settled = 0;

CREATE TABLE deliveries (
    alert_id         TEXT COLLATE "C" NOT NULL REFERENCES alerts (id),
    recipient        TEXT COLLATE "C" NOT NULL,
    state            BIGINT NOT NULL CHECK (state IN (1, 2, 3)),
    attempts         BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT COLLATE "C",
    next_attempt_at  BIGINT,
    delivered_at     BIGINT,
    receipt          BYTEA,
    due_at           BIGINT,
    flag             BIGINT NOT NULL DEFAULT 0,
    flagged_at       BIGINT,
    ladder           BIGINT NOT NULL DEFAULT 0,
    next_step_at     BIGINT,
    settled          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (alert_id, recipient)
);

CREATE INDEX deliveries_due ON deliveries (recipient, next_attempt_at, alert_id)
    WHERE state = 1;
CREATE INDEX deliveries_open_deadlines ON deliveries (due_at)
    WHERE flag = 0 AND state != 3 AND settled = 0;
CREATE INDEX deliveries_next_step ON deliveries (next_step_at)
    WHERE ladder < 3 AND state != 3 AND settled = 0;

CREATE TABLE acknowledgements (
    id               TEXT COLLATE "C" PRIMARY KEY,
    alert_id         TEXT COLLATE "C" NOT NULL REFERENCES alerts (id),
    agency           TEXT COLLATE "C" NOT NULL,
    operator         TEXT COLLATE "C" NOT NULL,
    disposition      BIGINT NOT NULL,
    note             TEXT COLLATE "C" NOT NULL,
    acknowledged_at  BIGINT NOT NULL,
    stored_at        BIGINT NOT NULL,
    envelope         BYTEA NOT NULL
);

CREATE INDEX acknowledgements_by_alert ON acknowledgements (alert_id, agency, acknowledged_at);

CREATE TABLE messages (
    id               TEXT COLLATE "C" PRIMARY KEY,
    peer             TEXT COLLATE "C" NOT NULL,
    kind             BIGINT NOT NULL,
    envelope         BYTEA NOT NULL,
    state            BIGINT NOT NULL CHECK (state IN (1, 2, 3)),
    attempts         BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT COLLATE "C",
    next_attempt_at  BIGINT,
    delivered_at     BIGINT
);

CREATE INDEX messages_due ON messages (peer, next_attempt_at, id) WHERE state = 1;

-- id from sequences 'events', not AUTOINCREMENT (see above).
CREATE TABLE events (
    id         BIGINT PRIMARY KEY,
    at         BIGINT NOT NULL,
    kind       BIGINT NOT NULL,
    alert_id   TEXT COLLATE "C" NOT NULL,
    agency     TEXT COLLATE "C" NOT NULL,
    direction  BIGINT NOT NULL,
    detail     TEXT COLLATE "C" NOT NULL
);

CREATE TABLE received_messages (
    id           TEXT COLLATE "C" PRIMARY KEY,
    kind         BIGINT NOT NULL,
    alert_id     TEXT COLLATE "C" NOT NULL,
    agency       TEXT COLLATE "C" NOT NULL,
    received_at  BIGINT NOT NULL,
    envelope     BYTEA NOT NULL
);

CREATE TABLE subject_keys (
    key       TEXT COLLATE "C" NOT NULL,
    alert_id  TEXT COLLATE "C" NOT NULL REFERENCES alerts (id),
    PRIMARY KEY (key, alert_id)
);

CREATE INDEX subject_keys_by_alert ON subject_keys (alert_id);

CREATE TABLE subject_flags (
    subject     TEXT COLLATE "C" NOT NULL,
    recipient   TEXT COLLATE "C" NOT NULL,
    label       TEXT COLLATE "C" NOT NULL,
    alert_ids   TEXT COLLATE "C" NOT NULL,
    flagged_at  BIGINT NOT NULL,
    PRIMARY KEY (subject, recipient)
);

-- `settled`, kept by triggers as in SQLite (migration 007): a deadline is
-- open until the recipient acknowledges or the alert is closed.
CREATE FUNCTION settle_on_ack() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE deliveries SET settled = 1
     WHERE alert_id = NEW.alert_id AND recipient = NEW.agency AND settled = 0;
    UPDATE alerts SET settled = 1
     WHERE id = NEW.alert_id AND direction = 2 AND settled = 0;
    RETURN NULL;
END;
$$;

CREATE TRIGGER settle_on_ack AFTER INSERT ON acknowledgements
    FOR EACH ROW EXECUTE FUNCTION settle_on_ack();

CREATE FUNCTION settle_on_close() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE alerts SET settled = 1 WHERE id = NEW.id AND settled = 0;
    UPDATE deliveries SET settled = 1 WHERE alert_id = NEW.id AND settled = 0;
    RETURN NULL;
END;
$$;

-- UPDATE OF status: the function's own UPDATE of `settled` does not fire it.
CREATE TRIGGER settle_on_close AFTER UPDATE OF status ON alerts
    FOR EACH ROW WHEN (NEW.status != 0) EXECUTE FUNCTION settle_on_close();

-- seq from sequences 'audit_log' (see above): 1, 2, 3, ... with no gaps.
CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    event_id   BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    kind       BIGINT NOT NULL,
    alert_id   TEXT COLLATE "C" NOT NULL,
    agency     TEXT COLLATE "C" NOT NULL,
    direction  BIGINT NOT NULL,
    detail     TEXT COLLATE "C" NOT NULL,
    evidence   BYTEA NOT NULL,
    prev_hash  BYTEA NOT NULL,
    hash       BYTEA NOT NULL
);

-- Append-only, against mistakes, as in SQLite (migration 008); the chain,
-- not the triggers, is what detects a change. TRUNCATE too, which
-- PostgreSQL has and row triggers do not see.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0];
END;
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change('audit_log is append-only');
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change('audit_log is append-only');
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('audit_log is append-only');
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION refuse_change('events are append-only');
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION refuse_change('events are append-only');
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('events are append-only');

CREATE TABLE peer_blocks (
    peer    TEXT COLLATE "C" PRIMARY KEY,
    reason  TEXT COLLATE "C" NOT NULL,
    since   BIGINT NOT NULL
);

-- seq from sequences 'watchlist_log' (see above), gapless from 1.
CREATE TABLE watchlist_log (
    seq          BIGINT PRIMARY KEY,
    ref          TEXT COLLATE "C" NOT NULL,
    authored_at  BIGINT NOT NULL,
    "full"       BYTEA NOT NULL,  -- a reserved word in PostgreSQL: quoted
    withdrawal   BYTEA,
    stub         BYTEA NOT NULL
);

CREATE TABLE watchlist_log_readers (
    reader  TEXT COLLATE "C" NOT NULL,
    seq     BIGINT NOT NULL REFERENCES watchlist_log (seq),
    view    BIGINT NOT NULL,
    PRIMARY KEY (reader, seq)
);

CREATE TABLE watchlist_own (
    ref            TEXT COLLATE "C" PRIMARY KEY,
    entry          BYTEA NOT NULL,
    releasable_to  TEXT COLLATE "C" NOT NULL,
    seq            BIGINT NOT NULL,
    changed_at     BIGINT NOT NULL,
    expires_at     BIGINT
);

CREATE INDEX watchlist_own_expiry ON watchlist_own (expires_at)
    WHERE expires_at IS NOT NULL;

CREATE TABLE watchlist_held (
    owner       TEXT COLLATE "C" NOT NULL,
    ref         TEXT COLLATE "C" NOT NULL,
    entry       BYTEA NOT NULL,
    envelope    BYTEA NOT NULL,
    seq         BIGINT NOT NULL,
    changed_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    PRIMARY KEY (owner, ref)
);

CREATE INDEX watchlist_held_expiry ON watchlist_held (owner, expires_at);

CREATE TABLE watchlist_cursors (
    owner     TEXT COLLATE "C" PRIMARY KEY,
    seq       BIGINT NOT NULL DEFAULT 0,
    seq_at    BIGINT,
    head      BIGINT NOT NULL DEFAULT 0,
    head_at   BIGINT,
    heard_at  BIGINT,
    refusal   TEXT COLLATE "C"
);

CREATE TABLE hit_reports (
    alert_id     TEXT COLLATE "C" PRIMARY KEY REFERENCES alerts (id),
    owner        TEXT COLLATE "C" NOT NULL,
    entry_ref    TEXT COLLATE "C" NOT NULL,
    person_key   BYTEA NOT NULL,
    reported_at  BIGINT NOT NULL
);

CREATE INDEX hit_reports_by_person ON hit_reports (owner, entry_ref, person_key, reported_at);
