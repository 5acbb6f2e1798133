-- A calendar feed's validator (its ETag) at constant cost: counters of the changes of what feeds show, kept by
-- triggers, instead of aggregates over every task a feed shows (README "Calendar feeds"). Counted per scope and key:
-- 'o' a user's tasks (key: the owner), 'n' the reservations on a node (key: the node), 's' what every feed shares
-- (key 0: maintenance windows, and the names of users, nodes and resources that events quote).
--
-- A key's counter is the sum of its rows. A change adds one to a row of the key that no other transaction holds
-- (FOR UPDATE SKIP LOCKED), or adds a row when all are held. So writers never wait for each other (nothing can
-- deadlock either), a key has as many rows as transactions ever changed it at once, and the sum, read in one
-- snapshot, grows with every committed change and never repeats. The count is not indexed and the table leaves room
-- in its pages, so an update is a heap-only (HOT) update: the index does not grow with changes.
-- A new table and triggers only: nothing existing is rewritten or scanned.
CREATE TABLE calendar_changes (
    scope   "char" NOT NULL,
    key     integer NOT NULL,
    changes bigint NOT NULL
) WITH (fillfactor = 50);
CREATE INDEX calendar_changes_key_idx ON calendar_changes (scope, key);

-- Counts one change of each key (NULLs and repeats ignored). PL/pgSQL, so its statements' plans are kept per session;
-- one key at a time, each an update of a row found by the index and updated by its address (a set-based statement
-- planned a sequential scan for the addresses).
CREATE FUNCTION remas_calendar_count(kind "char", keys integer[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    k integer;
BEGIN
    IF COALESCE(cardinality(keys), 0) = 0 THEN RETURN; END IF;
    IF cardinality(keys) > 1 THEN keys := ARRAY(SELECT DISTINCT x FROM unnest(keys) x ORDER BY x); END IF;
    FOREACH k IN ARRAY keys LOOP
        CONTINUE WHEN k IS NULL;
        UPDATE calendar_changes SET changes = changes + 1
        WHERE ctid = (SELECT c.ctid FROM calendar_changes c WHERE c.scope = kind AND c.key = k LIMIT 1 FOR UPDATE SKIP LOCKED);
        IF NOT FOUND THEN
            INSERT INTO calendar_changes (scope, key, changes) VALUES (kind, k, 1);
        END IF;
    END LOOP;
END
$$;

-- Tasks: their owners' feeds; an update (a rename, a move) also the feeds of the nodes the task holds (an insert has
-- no allocations yet and a delete removes them: the allocations' triggers count those nodes).
CREATE FUNCTION remas_calendar_tasks_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        PERFORM remas_calendar_count('o', ARRAY(SELECT owner_id FROM changed UNION SELECT owner_id FROM before_change));
        PERFORM remas_calendar_count('n', ARRAY(SELECT DISTINCT a.node_id FROM allocations a WHERE a.task_id IN (SELECT id FROM changed)));
    ELSE
        PERFORM remas_calendar_count('o', ARRAY(SELECT DISTINCT owner_id FROM changed));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_calendar_insert AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_calendar_tasks_changed();
CREATE TRIGGER tasks_calendar_update AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS before_change NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_calendar_tasks_changed();
CREATE TRIGGER tasks_calendar_delete AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_calendar_tasks_changed();

-- Allocations: the feeds of their nodes.
CREATE FUNCTION remas_calendar_allocations_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        PERFORM remas_calendar_count('n', ARRAY(SELECT node_id FROM changed UNION SELECT node_id FROM before_change));
    ELSE
        PERFORM remas_calendar_count('n', ARRAY(SELECT DISTINCT node_id FROM changed));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER allocations_calendar_insert AFTER INSERT ON allocations
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_calendar_allocations_changed();
CREATE TRIGGER allocations_calendar_update AFTER UPDATE ON allocations
    REFERENCING OLD TABLE AS before_change NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_calendar_allocations_changed();
CREATE TRIGGER allocations_calendar_delete AFTER DELETE ON allocations
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_calendar_allocations_changed();

-- What all feeds share: maintenance windows and their nodes, and the names events quote (a deleted node or resource
-- also takes its allocations out of descriptions).
CREATE FUNCTION remas_calendar_shared_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM remas_calendar_count('s', ARRAY[0]);
    RETURN NULL;
END
$$;

CREATE TRIGGER maintenance_windows_calendar AFTER INSERT OR UPDATE OR DELETE ON maintenance_windows
    FOR EACH STATEMENT EXECUTE FUNCTION remas_calendar_shared_changed();
CREATE TRIGGER maintenance_nodes_calendar AFTER INSERT OR UPDATE OR DELETE ON maintenance_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION remas_calendar_shared_changed();
CREATE TRIGGER nodes_calendar_rename AFTER UPDATE OF name ON nodes
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION remas_calendar_shared_changed();
CREATE TRIGGER nodes_calendar_delete AFTER DELETE ON nodes
    FOR EACH STATEMENT EXECUTE FUNCTION remas_calendar_shared_changed();
CREATE TRIGGER resources_calendar_rename AFTER UPDATE OF name, unit ON resources
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.unit IS DISTINCT FROM NEW.unit)
    EXECUTE FUNCTION remas_calendar_shared_changed();
CREATE TRIGGER resources_calendar_delete AFTER DELETE ON resources
    FOR EACH STATEMENT EXECUTE FUNCTION remas_calendar_shared_changed();
CREATE TRIGGER users_calendar_rename AFTER UPDATE OF username ON users
    FOR EACH ROW WHEN (OLD.username IS DISTINCT FROM NEW.username) EXECUTE FUNCTION remas_calendar_shared_changed();
