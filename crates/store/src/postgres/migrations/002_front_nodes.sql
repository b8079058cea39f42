-- Several front nodes on one database (issue 18 part 2). PostgreSQL only:
-- SQLite has one node per file, which needs neither.

-- Outbox claims. `due_deliveries` and `due_messages` claim the rows they
-- return for the caller's front node (`claimed_by`, a random id per
-- connection pool) until `claimed_until` (ms); another front node skips a
-- row whose claim is live, so no two send the same one at once. Recording
-- the attempt releases the claim whatever its outcome; a node that dies
-- leaves claims that lapse on their own.
ALTER TABLE deliveries
    ADD COLUMN claimed_by TEXT COLLATE "C",
    ADD COLUMN claimed_until BIGINT;
ALTER TABLE messages
    ADD COLUMN claimed_by TEXT COLLATE "C",
    ADD COLUMN claimed_until BIGINT;

-- Leases with fencing: the tracker's ('tracker') is held by one front node
-- at a time, until `expires_at` (ms); each taking-over adds one to `epoch`,
-- and each of the holder's writes checks, inside its transaction, that the
-- row still names it at that epoch, so a node that lost the lease without
-- knowing it writes nothing.
CREATE TABLE leases (
    name        TEXT COLLATE "C" PRIMARY KEY,
    holder      TEXT COLLATE "C" NOT NULL,
    epoch       BIGINT NOT NULL CHECK (epoch >= 1),
    expires_at  BIGINT NOT NULL
);
