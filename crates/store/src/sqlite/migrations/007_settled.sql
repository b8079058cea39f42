-- A deadline is open until the recipient acknowledges or the alert is
-- closed (updated, superseded, cancelled). `settled` records that on the
-- row itself, kept by triggers, so the open-deadline indexes shrink as
-- deadlines are answered: the tracker's queries then touch only open
-- deadlines, not every alert ever answered in time.
ALTER TABLE deliveries ADD COLUMN settled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN settled INTEGER NOT NULL DEFAULT 0;

UPDATE deliveries SET settled = 1
 WHERE (SELECT status FROM alerts WHERE id = deliveries.alert_id) != 0
    OR EXISTS (SELECT 1 FROM acknowledgements k
                WHERE k.alert_id = deliveries.alert_id AND k.agency = deliveries.recipient);
UPDATE alerts SET settled = 1
 WHERE status != 0
    OR (direction = 2 AND EXISTS (SELECT 1 FROM acknowledgements k WHERE k.alert_id = alerts.id));

CREATE TRIGGER settle_on_ack AFTER INSERT ON acknowledgements BEGIN
    UPDATE deliveries SET settled = 1
     WHERE alert_id = NEW.alert_id AND recipient = NEW.agency AND settled = 0;
    UPDATE alerts SET settled = 1
     WHERE id = NEW.alert_id AND direction = 2 AND settled = 0;
END;

CREATE TRIGGER settle_on_close AFTER UPDATE OF status ON alerts
WHEN NEW.status != 0 BEGIN
    UPDATE alerts SET settled = 1 WHERE id = NEW.id AND settled = 0;
    UPDATE deliveries SET settled = 1 WHERE alert_id = NEW.id AND settled = 0;
END;

DROP INDEX deliveries_open_deadlines;
DROP INDEX alerts_open_deadlines;
DROP INDEX deliveries_next_step;
CREATE INDEX deliveries_open_deadlines ON deliveries (due_at)
    WHERE flag = 0 AND state != 3 AND settled = 0;
CREATE INDEX alerts_open_deadlines ON alerts (due_at)
    WHERE flag = 0 AND direction = 2 AND settled = 0;
CREATE INDEX deliveries_next_step ON deliveries (next_step_at)
    WHERE ladder < 3 AND state != 3 AND settled = 0;

-- The outbox reads due work in (due time, id) order: with the id in the
-- index that is an index walk that stops at the batch size, not a sort of
-- the whole backlog for every batch.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (recipient, next_attempt_at, alert_id) WHERE state = 1;
DROP INDEX messages_due;
CREATE INDEX messages_due ON messages (peer, next_attempt_at, id) WHERE state = 1;
