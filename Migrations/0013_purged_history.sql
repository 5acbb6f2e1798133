-- Purged history (`remas purge`, README "Old history"): finished tasks before a day are archived and deleted in batches;
-- their usage lives on in the day figures of usage reports (migration 0010), which become final below that day: no
-- change drops them any more, so no roll-up recomputes them from the tasks that are left. One row at most.
-- A new table and a function replaced: nothing existing is rewritten or scanned.
CREATE TABLE usage_history_purged (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    before    date NOT NULL,
    purged_at timestamptz NOT NULL DEFAULT now()
);

-- As in 0010, but days before the purge horizon are left alone (their figures are all that remains of them).
CREATE OR REPLACE FUNCTION remas_usage_days_drop(days date[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    d date;
    horizon date;
BEGIN
    IF days IS NULL THEN RETURN; END IF;
    SELECT before INTO horizon FROM usage_history_purged;
    IF horizon IS NOT NULL THEN
        days := ARRAY(SELECT x FROM unnest(days) x WHERE x >= horizon);
        IF cardinality(days) = 0 THEN RETURN; END IF;
    END IF;
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
