-- Maintenance windows: a time during which nodes take no reservations. `all_nodes` covers every node, also nodes
-- created later; otherwise `maintenance_nodes` lists them. Times are local, like the tasks'.
CREATE TABLE maintenance_windows (
    id          serial PRIMARY KEY,
    name        varchar NOT NULL,
    description varchar,
    start_time  timestamp NOT NULL,
    end_time    timestamp NOT NULL,
    all_nodes   boolean NOT NULL,
    created_by  integer REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT maintenance_windows_interval_check CHECK (start_time < end_time)
);
-- Bookings look for the windows overlapping their interval that are not over.
CREATE INDEX maintenance_windows_end_time_idx ON maintenance_windows (end_time);

CREATE TABLE maintenance_nodes (
    window_id integer NOT NULL REFERENCES maintenance_windows (id) ON DELETE CASCADE,
    node_id   integer NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    PRIMARY KEY (window_id, node_id)
);
CREATE INDEX maintenance_nodes_node_id_idx ON maintenance_nodes (node_id);

-- Notices: mails remas writes itself (to the owners of reservations a maintenance window met, and later about
-- outages and capacity), queued in `events` beside the reminders, so they are claimed, sent once and retried the same
-- way. A notice names its recipient and carries its subject and text; `notice_key`, when set, makes a second notice of
-- the same occurrence a no-op. New columns have no defaults, so no row is rewritten; the checks scan the table once.
ALTER TABLE events
    ALTER COLUMN task_id DROP NOT NULL,
    ADD COLUMN recipient_id integer REFERENCES users (id) ON DELETE CASCADE,
    ADD COLUMN subject      varchar,
    ADD COLUMN body         text,
    ADD COLUMN notice_key   varchar,
    DROP CONSTRAINT events_type_check,
    ADD CONSTRAINT events_type_check CHECK (type IN ('task_start', 'task_end', 'other', 'notice')) NOT VALID,
    ADD CONSTRAINT events_notice_shape CHECK (
        (type = 'notice') = (recipient_id IS NOT NULL AND subject IS NOT NULL AND body IS NOT NULL)) NOT VALID,
    ADD CONSTRAINT events_task_shape CHECK (type = 'notice' OR task_id IS NOT NULL) NOT VALID;
ALTER TABLE events VALIDATE CONSTRAINT events_type_check;
ALTER TABLE events VALIDATE CONSTRAINT events_notice_shape;
ALTER TABLE events VALIDATE CONSTRAINT events_task_shape;
CREATE UNIQUE INDEX events_notice_key ON events (notice_key) WHERE notice_key IS NOT NULL;
CREATE INDEX events_recipient_id_idx ON events (recipient_id) WHERE recipient_id IS NOT NULL;
