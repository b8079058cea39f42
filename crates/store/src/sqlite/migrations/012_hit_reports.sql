-- Hit reports this agency sent: one row per report (an outbound alert),
-- keyed by the entry it matched and a digest of the person as screened,
-- so the same person screened again on the same entry within the node's
-- repeat window finds the report already sent instead of sending another.
CREATE TABLE IF NOT EXISTS hit_reports (
    alert_id    TEXT PRIMARY KEY REFERENCES alerts (id),
    owner       TEXT NOT NULL,
    entry_ref   TEXT NOT NULL,
    person_key  BLOB NOT NULL,
    reported_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS hit_reports_by_person
    ON hit_reports (owner, entry_ref, person_key, reported_at);
