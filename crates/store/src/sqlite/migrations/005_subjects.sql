-- Match keys of each alert's subjects (see tocsin_core::subject): alerts
-- sharing a key are about the same subject.
CREATE TABLE subject_keys (
    key       TEXT NOT NULL,
    alert_id  TEXT NOT NULL REFERENCES alerts (id),
    PRIMARY KEY (key, alert_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX subject_keys_by_alert ON subject_keys (alert_id);

-- REPEATED_UNANSWERED: one recipient left two or more alerts about one
-- subject unanswered past their deadlines.
CREATE TABLE subject_flags (
    subject     TEXT NOT NULL,      -- the subject's canonical (smallest) key
    recipient   TEXT NOT NULL,      -- the agency that did not answer
    label       TEXT NOT NULL,      -- who or what, for people
    alert_ids   TEXT NOT NULL,      -- comma-separated, oldest first
    flagged_at  INTEGER NOT NULL,
    PRIMARY KEY (subject, recipient)
) STRICT;
