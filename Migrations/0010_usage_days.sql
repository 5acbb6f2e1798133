-- Usage reports read whole past days from figures computed once per day (README "Usage reports": day figures), instead
-- of sweeping every allocation of the period again. Per day, way of grouping (1 user, 2 group, 3 node, 4 resource) and
-- key: per resource the amount-hours within the day and the peak held at once; per key the tasks starting that day
-- and those overlapping it (a period's task count is its first piece's overlapping plus each later piece's starting).
-- New tables and triggers only: nothing existing is rewritten or scanned.
CREATE TABLE usage_days (
    day         date NOT NULL,
    grouping    smallint NOT NULL,
    key         integer NOT NULL,
    resource_id integer NOT NULL,
    hours       double precision NOT NULL,
    peak        bigint NOT NULL,
    PRIMARY KEY (grouping, day, key, resource_id)
);

CREATE TABLE usage_day_tasks (
    day         date NOT NULL,
    grouping    smallint NOT NULL,
    key         integer NOT NULL,
    started     integer NOT NULL,
    overlapping integer NOT NULL,
    PRIMARY KEY (grouping, day, key)
);

-- The days whose figures above are current (a day without reservations has no rows there, but is done). Only a row
-- here makes a day's figures count: a change drops the row, the next roll-up replaces the figures.
CREATE TABLE usage_days_done (
    day         date PRIMARY KEY,
    computed_at timestamptz NOT NULL DEFAULT now()
);

-- Drops the figures of days, each under a shared advisory lock of that day. The roll-up of a day holds the same lock
-- exclusively while it reads and writes (ReportRepository.rollUp), so a change either commits before the roll-up
-- reads, or waits for the roll-up to commit and then drops what it wrote. The lock is per schema: each schema is a
-- remas of its own (tests run side by side in one database). A change of more than 31 days (an import, a long
-- reservation, a user with years of history changing group) takes one table lock instead of a lock per day: SHARE ROW
-- EXCLUSIVE on usage_days_done waits for the roll-ups in progress (each holds ROW EXCLUSIVE on it from its start) and
-- keeps new ones out until the change commits.
CREATE FUNCTION remas_usage_days_drop(days date[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d date;
BEGIN
    IF days IS NULL THEN RETURN; END IF;
    IF cardinality(days) > 31 THEN
        LOCK TABLE usage_days_done IN SHARE ROW EXCLUSIVE MODE;
        DELETE FROM usage_days_done WHERE day = ANY (days);
        RETURN;
    END IF;
    FOREACH d IN ARRAY days LOOP
        PERFORM pg_advisory_xact_lock_shared(hashtext('remas.usage_day ' || current_schema()), d - date '2000-01-01');
        DELETE FROM usage_days_done WHERE day = d;
    END LOOP;
END
$$;

-- The days an interval touches, up to the day after tomorrow: days are only rolled up once closed in the server's
-- zone, and the bound leaves room for sessions in another zone. Reservations further ahead touch nothing. A plain SQL
-- set-returning function, so PostgreSQL inlines it into the statements below (a function call per trigger would cost
-- a booking more than the trigger's whole work).
CREATE FUNCTION remas_usage_days_touched(s timestamp, e timestamp) RETURNS SETOF date
LANGUAGE sql STABLE AS $$
    SELECT g::date FROM generate_series(s::date, LEAST((e - interval '1 microsecond')::date, current_date + 2), interval '1 day') g
    WHERE s < current_date + 3
$$;

-- The statement triggers on allocations: the days of the rows a statement inserted, deleted or updated (an update
-- fires twice, with the rows before and after). A statement with nothing before the day after tomorrow (a booking
-- ahead of time) ends at the first check.
CREATE FUNCTION remas_usage_days_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    days date[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM changed WHERE start_time < current_date + 3) THEN RETURN NULL; END IF;
    SELECT array_agg(DISTINCT d ORDER BY d) INTO days FROM changed c, remas_usage_days_touched(c.start_time, c.end_time) d;
    PERFORM remas_usage_days_drop(days);
    RETURN NULL;
END
$$;

CREATE TRIGGER allocations_usage_days_insert AFTER INSERT ON allocations
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_usage_days_changed();
CREATE TRIGGER allocations_usage_days_delete AFTER DELETE ON allocations
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_usage_days_changed();
CREATE TRIGGER allocations_usage_days_update_before AFTER UPDATE ON allocations
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_usage_days_changed();
CREATE TRIGGER allocations_usage_days_update_after AFTER UPDATE ON allocations
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_usage_days_changed();

-- A user who moves to another group moves their past reservations with them: the days they reserved are rolled up
-- again (reports group by the user's group now, as every other figure of remas does).
CREATE FUNCTION remas_usage_days_regrouped() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM remas_usage_days_drop((
        SELECT array_agg(DISTINCT d ORDER BY d) FROM tasks t, remas_usage_days_touched(t.start_time, t.end_time) d
        WHERE t.owner_id = NEW.id));
    RETURN NULL;
END
$$;

CREATE TRIGGER users_usage_days_regroup AFTER UPDATE OF group_id ON users
    FOR EACH ROW WHEN (OLD.group_id IS DISTINCT FROM NEW.group_id) EXECUTE FUNCTION remas_usage_days_regrouped();
