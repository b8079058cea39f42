-- Watchlists (issue 15). This agency's own log of changes, gapless from 1:
-- the write that makes a change takes MAX(seq) + 1 in its transaction.
-- Each change is kept in the signed forms its readers get: in full (those
-- it is releasable to), as a withdrawal (those no longer named), and as a
-- stub carrying only owner and seq (everyone else), so every reader sees
-- every seq and can tell a gap from a change it may not read.
CREATE TABLE IF NOT EXISTS watchlist_log (
    seq         INTEGER PRIMARY KEY,
    ref         TEXT NOT NULL,
    authored_at INTEGER NOT NULL,  -- ms, node clock
    full        BLOB NOT NULL,     -- Envelope(WatchlistChange)
    withdrawal  BLOB,              -- Envelope(WatchlistChange), WITHDRAWN
    stub        BLOB NOT NULL      -- Envelope(WatchlistChange), stub
) STRICT;

-- Which form of a change each reader gets; a reader without a row gets
-- the stub. view: 1 full, 2 withdrawal (store::watchlist::View).
CREATE TABLE IF NOT EXISTS watchlist_log_readers (
    reader TEXT NOT NULL,
    seq    INTEGER NOT NULL REFERENCES watchlist_log (seq),
    view   INTEGER NOT NULL,
    PRIMARY KEY (reader, seq)
) STRICT, WITHOUT ROWID;

-- This agency's entries as they now are.
CREATE TABLE IF NOT EXISTS watchlist_own (
    ref           TEXT PRIMARY KEY,
    entry         BLOB NOT NULL,     -- WatchlistEntry
    releasable_to TEXT NOT NULL,     -- agency ids, one per line
    seq           INTEGER NOT NULL,
    changed_at    INTEGER NOT NULL,  -- ms
    expires_at    INTEGER            -- ms; NULL: never
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS watchlist_own_expiry ON watchlist_own (expires_at)
    WHERE expires_at IS NOT NULL;

-- Other agencies' entries releasable to this one, as last pulled.
CREATE TABLE IF NOT EXISTS watchlist_held (
    owner      TEXT NOT NULL,
    ref        TEXT NOT NULL,
    entry      BLOB NOT NULL,     -- WatchlistEntry
    envelope   BLOB NOT NULL,     -- the owner's signed change that put it
    seq        INTEGER NOT NULL,
    changed_at INTEGER NOT NULL,  -- ms, owner's clock
    expires_at INTEGER,           -- ms; NULL: never
    PRIMARY KEY (owner, ref)
) STRICT, WITHOUT ROWID;

-- How far this node has read each owner's log (the cursor is the owner's
-- seq, never a time), and what it last heard of the owner's head.
CREATE TABLE IF NOT EXISTS watchlist_cursors (
    owner    TEXT PRIMARY KEY,
    seq      INTEGER NOT NULL DEFAULT 0,
    seq_at   INTEGER,              -- ms: when the owner made change `seq`
    head     INTEGER NOT NULL DEFAULT 0,
    head_at  INTEGER,
    heard_at INTEGER,              -- ms, node clock
    refusal  TEXT                  -- why the owner's log was last refused
) STRICT, WITHOUT ROWID;
