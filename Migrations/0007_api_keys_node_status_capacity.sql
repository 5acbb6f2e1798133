-- Machine credentials: collectors and Alertmanager call remas with a key instead of a login. Only the key's SHA-256
-- is stored (a key is 160 random bits, so a plain digest suffices where a password needs bcrypt); `scopes` says which
-- machine routes it opens.
CREATE TABLE api_keys (
    id           serial PRIMARY KEY,
    name         varchar NOT NULL,
    scopes       text[] NOT NULL,
    key_hash     bytea NOT NULL UNIQUE,
    created_by   integer REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamp NOT NULL DEFAULT localtimestamp,
    last_used_at timestamp,
    CONSTRAINT api_keys_scopes_check CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['status', 'alerts']::text[])
);

-- The last reported state of each node (no row: never reported, read as `unknown`). `since`: when the status became
-- what it is; `reported_at`: the last report (a collector's report older than NODE_STATUS_STALE_SECONDS reads as
-- `unknown`). `outage` counts the node's transitions to `down`, so each outage's notices have keys of their own;
-- `notified` are the users told of the current outage (told again when it ends). `resolved_alert` is the startsAt of
-- the last Alertmanager alert that resolved, so a late copy of that alert's firing is recognised and ignored.
CREATE TABLE node_status (
    node_id        integer PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    status         varchar NOT NULL,
    since          timestamp NOT NULL,
    reported_at    timestamp NOT NULL,
    message        varchar,
    source         varchar NOT NULL,
    outage         integer NOT NULL DEFAULT 0,
    notified       integer[] NOT NULL DEFAULT '{}',
    resolved_alert varchar,
    CONSTRAINT node_status_status_check CHECK (status IN ('up', 'down', 'degraded'))
);

-- Capacity alerts: per resource, the peak booked share over the coming horizon, cluster-wide (node_id 0) and per node.
-- `firing` with hysteresis (fires at the threshold, resolves below threshold - 0.05); `transitions` counts changes, so
-- each alert's notices have keys of their own. Written only by the capacity pass, under an advisory lock.
CREATE TABLE capacity_alerts (
    resource_id integer NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    node_id     integer NOT NULL,
    ratio       double precision NOT NULL,
    firing      boolean NOT NULL DEFAULT false,
    transitions integer NOT NULL DEFAULT 0,
    changed_at  timestamp NOT NULL DEFAULT localtimestamp,
    PRIMARY KEY (resource_id, node_id)
);
