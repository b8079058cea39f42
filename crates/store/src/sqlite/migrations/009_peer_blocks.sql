-- Peers this node's outbox cannot deliver to for a reason retrying alone
-- will not fix: the peer's node presents a certificate the CRL revokes.
-- Pending deliveries to a blocked peer show as BLOCKED, with the reason;
-- they stay in the outbox and are still tried, and the row goes as soon as
-- anything reaches the peer again (a renewed certificate). IF NOT EXISTS:
-- a store rolled back to an older version by hand migrates again.
CREATE TABLE IF NOT EXISTS peer_blocks (
    peer    TEXT PRIMARY KEY,
    reason  TEXT NOT NULL,
    since   INTEGER NOT NULL      -- ms, node clock
) STRICT, WITHOUT ROWID;
