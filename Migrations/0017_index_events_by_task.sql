-- remas:no-transaction
-- A task's events under one key instead of three indexes. Every booking writes three or more events (the task's start,
-- its end, a reminder per notification its owner receives), and each event went into five indexes: the primary key,
-- the due queue, `events_task_id_idx` (for the cascade from tasks) and one of the two partial unique keys, plus
-- `events_notification_id_idx` even when it has no notification. On the national data set that was 15 of a booking's 27
-- index insertions (pg_waldump). Now:
-- - `events_task_key` is both the cascade's index (task_id leads) and both uniqueness rules: a task has one event of
--   each type without a notification (NULLs not distinct: one start, one end), and one reminder per notification (a
--   reminder's type is always 'other', `events_reminder_has_notification`). Notices without a task are not in it, as
--   they were in neither key.
-- - `events_notification_idx` holds only the reminders; the cascade from notifications and every lookup by
--   notification (`notification_id = …`) imply that it is not NULL.
-- Built CONCURRENTLY like 0009, so bookings keep writing while it builds; each statement may run again.
DROP INDEX CONCURRENTLY IF EXISTS events_task_key;
CREATE UNIQUE INDEX CONCURRENTLY events_task_key ON events (task_id, notification_id, type) NULLS NOT DISTINCT
    WHERE task_id IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS events_task_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_task_notification_key;
DROP INDEX CONCURRENTLY IF EXISTS events_task_type_key;
DROP INDEX CONCURRENTLY IF EXISTS events_notification_idx;
CREATE INDEX CONCURRENTLY events_notification_idx ON events (notification_id) WHERE notification_id IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS events_notification_id_idx;
