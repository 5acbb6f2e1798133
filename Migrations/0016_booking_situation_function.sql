-- A booking takes its node locks and reads what it is checked against in one call (one round trip instead of two;
-- README "Bookings under load"). The read has to see every reservation committed by the transactions it waited for
-- at the locks, so it cannot share the locking statement's snapshot; a VOLATILE PL/pgSQL function takes a new
-- snapshot for each of its statements (READ COMMITTED), so its second statement sees them. Called by
-- `BookingCheckStatement` (Sources/Remas/Repositories/TaskRepository+Booking.swift, which documents the rows).
-- A new function only: nothing existing is rewritten or scanned.
--
-- $1 the nodes to lock; per booking (numbered from 1 by position) $2/$3 its interval, $4/$5 the interval whose
-- reservations count, $6 the task it replaces (0: none); $7/$8/$9/$10 what it asks for (booking number, node,
-- resource, whether the down-node guard covers the node); $11 NODE_DOWN_BOOKING_GUARD_MINUTES, $12
-- NODE_STATUS_STALE_SECONDS.
CREATE FUNCTION remas_booking_situation(int4[], text[], text[], text[], text[], int4[], int4[], int4[], int4[], bool[], int4, int4)
RETURNS TABLE (r_kind int4, r_entry int4, r_node int4, r_resource int4, r_amount int8, r_text text, r_from int8, r_to int8, r_owner int4)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- The rest of the booking's transaction (this read, the insert) runs its prepared statements' generic plans.
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
    -- Kind 4: the nodes locked, in id order (so that two bookings cannot deadlock); then the reminders' receivers
    -- lock, shared (EventRepository.receiversLock).
    RETURN QUERY
        SELECT 4, 0, l.id, 0, 0::int8, NULL::text, NULL::int8, NULL::int8, NULL::int4
        FROM (SELECT n.id FROM nodes n WHERE n.id = ANY($1) ORDER BY n.id FOR NO KEY UPDATE) l;
    PERFORM pg_advisory_xact_lock_shared(hashtext('remas.receivers'));
    -- Kind 0: what the nodes provide of the resources asked for (with the database's clock); per booking at most one
    -- row of kind 1 naming a maintenance conflict and one of kind 2 naming a down node; kind 3: the reservations of
    -- what it asks for that overlap its window, one range scan of allocations_node_time_idx per (booking, node,
    -- resource) (OFFSET 0 keeps the generic plan from hashing the bookings against every current reservation).
    RETURN QUERY
        WITH e AS MATERIALIZED (
            SELECT e.i::int4 AS i, e.s::timestamp AS s, e.e::timestamp AS e, e.os::timestamp AS os, e.oe::timestamp AS oe, e.excluding
            FROM unnest($2, $3, $4, $5, $6) WITH ORDINALITY AS e(s, e, os, oe, excluding, i)),
        en AS MATERIALIZED (SELECT * FROM unnest($7, $8, $9, $10) AS en(i, node, resource, guarded))
        SELECT 0, 0, nr.node_id, nr.resource_id, nr.amount, NULL::text, (extract(epoch FROM localtimestamp) * 1000000)::int8,
               NULL::int8, NULL::int4
        FROM node_resources nr WHERE (nr.node_id, nr.resource_id) IN (SELECT en.node, en.resource FROM en)
        UNION ALL
        SELECT 1, e.i, 0, 0, 0::int8, b.text, NULL, NULL, NULL
        FROM e CROSS JOIN LATERAL (
            SELECT 'Node ' || n.name || ' is under maintenance from ' || remas_ts(w.start_time) || ' to '
                   || remas_ts(w.end_time) || ' (' || w.name || ')' AS text
            FROM maintenance_windows w JOIN nodes n
              ON n.id IN (SELECT en.node FROM en WHERE en.i = e.i)
             AND (w.all_nodes OR EXISTS (SELECT 1 FROM maintenance_nodes m WHERE m.window_id = w.id AND m.node_id = n.id))
            WHERE w.end_time > e.s AND w.start_time < e.e
            ORDER BY n.id, w.start_time
            LIMIT 1) b
        UNION ALL
        SELECT 2, e.i, 0, 0, 0::int8, d.text, NULL, NULL, NULL
        FROM e CROSS JOIN LATERAL (
            SELECT 'Node ' || n.name || ' is down since ' || remas_ts(s.since) || ': ' || COALESCE(s.message, 'no reason given') AS text
            FROM en JOIN node_status s ON s.node_id = en.node JOIN nodes n ON n.id = s.node_id
            WHERE en.i = e.i AND en.guarded AND s.status = 'down'
              AND e.s < localtimestamp + make_interval(mins => $11)
              AND (s.source NOT LIKE 'api key %' OR s.reported_at >= localtimestamp - make_interval(secs => $12))
            ORDER BY n.id
            LIMIT 1) d
        UNION ALL
        SELECT 3, e.i, a.node_id, a.resource_id, a.amount, NULL, a.s, a.e, (SELECT t.owner_id FROM tasks t WHERE t.id = a.task_id)
        FROM en JOIN e ON e.i = en.i
        CROSS JOIN LATERAL (
            SELECT a.node_id, a.resource_id, a.amount, a.task_id,
                   (extract(epoch FROM a.start_time) * 1000000)::int8 AS s, (extract(epoch FROM a.end_time) * 1000000)::int8 AS e
            FROM allocations a
            WHERE a.node_id = en.node AND a.resource_id = en.resource AND a.end_time > e.os AND a.start_time < e.oe
              AND a.end_time > localtimestamp AND a.task_id <> e.excluding
            OFFSET 0) a;
END
$$;
