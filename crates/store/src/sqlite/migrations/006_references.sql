-- An alert closed by a later one: 0 active, 1 superseded (by an update or a
-- supersede), 2 cancelled. A closed alert's clock stops on both nodes.
ALTER TABLE alerts ADD COLUMN status INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN closed_by TEXT;
