-- Bookings stop counting the nodes they reserve on. Migration 0012 kept a change counter per node ('n') for the
-- validator of an admin's node feed (`?node=`), and every write of allocations added one to it, node by node, in a
-- PL/pgSQL loop: a batch of 16 bookings on 1-4 nodes each updated about 40 counter rows, each a row lock and a heap
-- update with its WAL record. On the national data set, bookings at 16 clients took 4.93 % of the pgbench -S ceiling
-- with these triggers and 5.40 % without them (means of three alternations; README "Bookings under load"). A node
-- feed's validator is now a digest of what the feed shows (`ICalendarWriter.validator`), computed when an admin's
-- calendar polls it: a node shows tens of tasks in its window, even at that size.
--
-- The counters of a user's tasks ('o'), of users' documents ('u') and of what all feeds share ('s') stay as they
-- were: every write of allocations also writes its task (an insert, an update of its times, a delete), whose
-- trigger counts the owner.
--
-- Dropping a trigger takes a short exclusive lock on allocations, waited for under the migrator's lock timeout and
-- retried; nothing is rewritten or scanned.
CREATE OR REPLACE FUNCTION remas_calendar_tasks_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        PERFORM remas_calendar_count('o', ARRAY(SELECT owner_id FROM changed UNION SELECT owner_id FROM before_change));
    ELSE
        PERFORM remas_calendar_count('o', ARRAY(SELECT DISTINCT owner_id FROM changed));
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER allocations_calendar_insert ON allocations;
DROP TRIGGER allocations_calendar_update ON allocations;
DROP TRIGGER allocations_calendar_delete ON allocations;
DROP FUNCTION remas_calendar_allocations_changed();
DELETE FROM calendar_changes WHERE scope = 'n';
