-- Task status is derived from the clock on every read instead of being stored: a task is 'running' from its start and
-- 'finished' from its end, whether or not a scheduler ran. Connections set TimeZone to the server's zone, so
-- localtimestamp is the same naive wall clock the task times are written in.
ALTER TABLE tasks DROP COLUMN status;

CREATE FUNCTION remas_status(s timestamp, e timestamp) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN e <= localtimestamp THEN 'finished' WHEN s <= localtimestamp THEN 'running' ELSE 'scheduled' END
$$;

CREATE INDEX tasks_start_idx ON tasks (start_time, id);
CREATE INDEX tasks_end_idx ON tasks (end_time);
CREATE INDEX tasks_owner_start_idx ON tasks (owner_id, start_time, id);

-- Events become a durable work queue: rows stay after processing with their outcome, so a reminder is sent once
-- and a sent one is not repeated when its task is edited (unless its due time moves later).
ALTER TABLE events
    ADD COLUMN state        varchar NOT NULL DEFAULT 'pending',
    ADD COLUMN attempts     integer NOT NULL DEFAULT 0,
    ADD COLUMN retry_at     timestamp,
    ADD COLUMN processed_at timestamp,
    ADD COLUMN last_error   text,
    ADD CONSTRAINT events_state_check CHECK (state IN ('pending', 'done', 'sent', 'skipped', 'failed')),
    ADD CONSTRAINT events_reminder_has_notification CHECK ((type = 'other') = (notification_id IS NOT NULL));

-- One reminder per (task, notification), one start and one end event per task.
CREATE UNIQUE INDEX events_task_notification_key ON events (task_id, notification_id) WHERE notification_id IS NOT NULL;
CREATE UNIQUE INDEX events_task_type_key ON events (task_id, type) WHERE notification_id IS NULL;
DROP INDEX events_time_idx;
-- The scheduler's claim and "next due" queries read only pending rows, in due order.
CREATE INDEX events_due_idx ON events ((COALESCE(retry_at, time)), id) WHERE state = 'pending';
CREATE INDEX events_failed_idx ON events (id) WHERE state = 'failed';

-- Wake the schedulers of every replica when a pending event appears or moves and is due within 10 minutes: NOTIFY
-- (delivered at commit) with the due time as payload, so a scheduler that already plans to wake earlier ignores it.
-- Later events need no announcement: a scheduler never sleeps longer than 5 minutes (Scheduler.idleRecheckSeconds)
-- and finds them itself. Bookings far ahead thus neither call the function nor pay NOTIFY's commit serialisation
-- (measured on 8 concurrent writers: -35 % throughput when every booking notified).
CREATE FUNCTION remas_events_wake() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- One channel per schema, so deployments (and tests) sharing a database do not wake each other.
    PERFORM pg_notify('remas_events_' || left(md5(TG_TABLE_SCHEMA), 16),
                      to_char(COALESCE(NEW.retry_at, NEW.time), 'YYYY-MM-DD"T"HH24:MI:SS.US'));
    RETURN NULL;
END
$$;

CREATE TRIGGER events_wake_insert AFTER INSERT ON events FOR EACH ROW
    WHEN (NEW.state = 'pending' AND COALESCE(NEW.retry_at, NEW.time) < localtimestamp + interval '10 minutes')
    EXECUTE FUNCTION remas_events_wake();
CREATE TRIGGER events_wake_update AFTER UPDATE ON events FOR EACH ROW
    WHEN (NEW.state = 'pending' AND COALESCE(NEW.retry_at, NEW.time) < localtimestamp + interval '10 minutes'
          AND (OLD.state <> 'pending' OR NEW.time IS DISTINCT FROM OLD.time OR NEW.retry_at IS DISTINCT FROM OLD.retry_at))
    EXECUTE FUNCTION remas_events_wake();
