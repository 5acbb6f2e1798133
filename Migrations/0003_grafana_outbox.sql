-- Grafana sync as a per-user outbox: a change commits in the database first, then queues the usernames whose
-- Grafana state (user, contact point, folders, alert rules) it touched. The scheduler reconciles each queued user
-- against Grafana and removes the row only when Grafana accepted everything; while Grafana is down the rows stay
-- and are retried with backoff. Keyed by username, not id: a deleted user's row outlives the user and tells the
-- sync to remove what Grafana still holds for that name.
CREATE TABLE grafana_outbox (
    username    varchar PRIMARY KEY,
    -- bumped by every new change: a sync that read older state does not remove a row queued again meanwhile
    generation  bigint    NOT NULL DEFAULT 1,
    -- a password the Grafana user must get, sealed with a key derived from SECRET_KEY; gone with the row
    password    bytea,
    enqueued_at timestamp NOT NULL DEFAULT localtimestamp,
    retry_at    timestamp NOT NULL DEFAULT localtimestamp,
    -- a replica working on the row holds it until then (a crashed one's lease simply runs out)
    lease_until timestamp,
    attempts    integer   NOT NULL DEFAULT 0,
    last_error  text
);
CREATE INDEX grafana_outbox_due_idx ON grafana_outbox (retry_at);

-- When the last full resync (every user queued) began: replicas agree through this row on who runs the next one.
CREATE TABLE grafana_resync (
    id      integer PRIMARY KEY CHECK (id = 1),
    last_at timestamp
);
INSERT INTO grafana_resync (id, last_at) VALUES (1, NULL);

-- Wake the schedulers of every replica when a user is queued for an immediate sync: the same per-schema channel as
-- events, with the payload 'grafana' (event payloads are timestamps).
CREATE FUNCTION remas_grafana_wake() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('remas_events_' || left(md5(TG_TABLE_SCHEMA), 16), 'grafana');
    RETURN NULL;
END
$$;

CREATE TRIGGER grafana_outbox_wake AFTER INSERT OR UPDATE OF generation ON grafana_outbox FOR EACH ROW
    WHEN (NEW.retry_at <= localtimestamp AND NEW.lease_until IS NULL)
    EXECUTE FUNCTION remas_grafana_wake();
