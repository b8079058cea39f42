-- The held entries of one owner by expiry. Every page a holder applies
-- deletes the owner's expired entries, and every sync status counts the
-- unexpired ones; without this index both read the whole of the owner's
-- held rows (entries and envelopes, over a kilobyte each), so a full sync
-- of a large list cost time quadratic in its length.
CREATE INDEX IF NOT EXISTS watchlist_held_expiry ON watchlist_held (owner, expires_at);
