-- A task's allocations and events go with it through a trigger instead of two foreign keys. On every row they insert,
-- `allocations.task_id` and `events.task_id` cost a lookup of the task with a `FOR KEY SHARE` lock: five or six per
-- booking of 1-4 nodes (its start and end, a reminder, each allocation). A booking's own rows are inserted by the
-- statement that inserts its task, where no other transaction can see the task, let alone delete it, so that check
-- can never fail there. On the national data set, bookings at 16 clients by 16 users took 5.73 % of the pgbench -S
-- ceiling with these two checks switched off and 4.83 % with them, PostgreSQL 406 against 506 us of CPU per booking
-- (means of three alternations; README "Bookings under load").
--
-- What the keys guaranteed still holds:
-- - Deleting a task deletes its allocations and events (`tasks_delete_rows`, a row trigger as the cascade was; each
--   delete probes `allocations_pkey` and `events_task_key` by the task id). The server runs READ COMMITTED, so each
--   of these deletes sees the rows committed before it, including those of a transaction the task's delete waited for.
-- - No row names a task that is gone. Every path that adds rows to a task that already exists holds a lock on the
--   task that a delete waits for: an update of a task holds it `FOR UPDATE`; a reschedule of reminders takes
--   `FOR KEY SHARE` on the tasks it adds reminders to (`RescheduleRemindersSQL.added`), skipping one deleted meanwhile;
--   `remas import` takes `FOR KEY SHARE` on the tasks it names before it writes their rows.
--
-- Dropping a key takes an exclusive lock on both of its tables (tasks and allocations, tasks and events), and a booking
-- reads allocations and tasks before it writes them: a booking that read them just before the migration locked the
-- first table would wait for the migration on it while the migration waits for the booking on the second, until the
-- migrator's lock timeout rolls the migration back. Under steady bookings every retry met such a booking (120 in a
-- row, `BENCH_SCALE=0.01 scripts/bench-scale`). So the migration first stops new bookings where they start, at their
-- node locks (`EXCLUSIVE` on nodes still lets nodes be read), waits for the bookings under way to commit, and then
-- takes the other locks from transactions that wait for nothing it holds. Bookings wait only while the statements
-- below run: none of them rewrites or scans a table. The trigger is created before the keys are dropped, in the same
-- transaction.
LOCK TABLE nodes IN EXCLUSIVE MODE;

CREATE FUNCTION remas_task_rows_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM allocations WHERE task_id = OLD.id;
    DELETE FROM events WHERE task_id = OLD.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_delete_rows AFTER DELETE ON tasks FOR EACH ROW EXECUTE FUNCTION remas_task_rows_deleted();

ALTER TABLE allocations DROP CONSTRAINT allocations_task_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_task_id_fkey;
