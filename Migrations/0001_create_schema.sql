-- remas schema: users and groups, the cluster inventory, limits, tasks and their allocations, tags,
-- notifications and events. Table names are our own; the wire format is what matches the original.

-- Naive timestamps on the wire: YYYY-MM-DDTHH:MM:SS, with .ffffff only when the fraction is non-zero.
CREATE FUNCTION remas_ts(t timestamp) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN t IS NULL THEN NULL
                WHEN (date_part('microseconds', t)::bigint % 1000000) = 0 THEN to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS')
                ELSE to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS.US') END
$$;

CREATE TABLE groups (
    id                     serial PRIMARY KEY,
    name                   varchar NOT NULL,
    description            varchar,
    users_share_statistics boolean NOT NULL DEFAULT true,
    -- The application re-parents children before deleting a group; SET NULL is only the last resort.
    parent_id              integer REFERENCES groups (id) ON DELETE SET NULL,
    CONSTRAINT groups_name_key UNIQUE (name),
    CONSTRAINT groups_not_own_parent CHECK (parent_id IS NULL OR parent_id <> id)
);
CREATE INDEX groups_parent_id_idx ON groups (parent_id);

CREATE TABLE users (
    id       serial PRIMARY KEY,
    name     varchar,
    surname  varchar,
    uid      integer NOT NULL,
    username varchar NOT NULL,
    password varchar NOT NULL,
    email    varchar NOT NULL,
    -- Members are moved away before a group is deleted, so a dangling reference is a bug: RESTRICT.
    group_id integer NOT NULL REFERENCES groups (id) ON DELETE RESTRICT,
    CONSTRAINT users_uid_key UNIQUE (uid),
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_email_key UNIQUE (email)
);
CREATE INDEX users_group_id_idx ON users (group_id);

CREATE TABLE nodes (
    id          serial PRIMARY KEY,
    name        varchar NOT NULL,
    description varchar,
    CONSTRAINT nodes_name_key UNIQUE (name)
);

CREATE TABLE resources (
    id          serial PRIMARY KEY,
    name        varchar NOT NULL,
    description varchar,
    unit        varchar NOT NULL DEFAULT '',
    CONSTRAINT resources_name_key UNIQUE (name),
    CONSTRAINT resources_unit_check CHECK (unit IN ('', 'Bytes (SI)', 'Bytes (IEC)'))
);

-- What a node provides: the capacity that bookings are checked against.
CREATE TABLE node_resources (
    node_id     integer NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    resource_id integer NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    amount      bigint NOT NULL,
    PRIMARY KEY (node_id, resource_id),
    CONSTRAINT node_resources_amount_positive CHECK (amount > 0)
);
CREATE INDEX node_resources_resource_id_idx ON node_resources (resource_id);

CREATE TABLE resource_aliases (
    id          serial PRIMARY KEY,
    name        varchar NOT NULL,
    description varchar,
    CONSTRAINT resource_aliases_name_key UNIQUE (name)
);

CREATE TABLE resource_alias_links (
    resource_id integer NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    alias_id    integer NOT NULL REFERENCES resource_aliases (id) ON DELETE CASCADE,
    PRIMARY KEY (resource_id, alias_id)
);
CREATE INDEX resource_alias_links_alias_id_idx ON resource_alias_links (alias_id);

-- A limit belongs to exactly one user or one group (the original only checked this in code, on create).
-- Amounts are not range-checked, as in the original.
CREATE TABLE limits (
    id          serial PRIMARY KEY,
    name        varchar NOT NULL,
    description varchar,
    amount      bigint NOT NULL,
    user_id     integer REFERENCES users (id) ON DELETE CASCADE,
    group_id    integer REFERENCES groups (id) ON DELETE CASCADE,
    resource_id integer NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    CONSTRAINT limits_one_owner CHECK ((user_id IS NULL) <> (group_id IS NULL))
);
CREATE INDEX limits_user_id_idx ON limits (user_id);
CREATE INDEX limits_group_id_idx ON limits (group_id);
CREATE INDEX limits_resource_id_idx ON limits (resource_id);

CREATE TABLE limit_nodes (
    limit_id integer NOT NULL REFERENCES limits (id) ON DELETE CASCADE,
    node_id  integer NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    PRIMARY KEY (limit_id, node_id)
);
CREATE INDEX limit_nodes_node_id_idx ON limit_nodes (node_id);

CREATE TABLE tasks (
    id          serial PRIMARY KEY,
    name        varchar NOT NULL,
    description varchar,
    start_time  timestamp NOT NULL,
    end_time    timestamp NOT NULL,
    status      varchar NOT NULL DEFAULT 'scheduled',
    owner_id    integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT tasks_id_positive CHECK (id > 0),
    CONSTRAINT tasks_status_check CHECK (status IN ('scheduled', 'running', 'finished')),
    CONSTRAINT tasks_start_before_end CHECK (start_time < end_time)
);
CREATE INDEX tasks_owner_id_idx ON tasks (owner_id);
CREATE INDEX tasks_status_start_idx ON tasks (status, start_time, id);
CREATE INDEX tasks_active_window_idx ON tasks (end_time, start_time) WHERE status <> 'finished';

-- One row per (node, resource) a task reserves. start_time/end_time copy the task's interval so that the capacity
-- check can find the overlapping reservations of a node from this table's index alone.
CREATE TABLE allocations (
    task_id     integer NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    node_id     integer NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    resource_id integer NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    amount      bigint NOT NULL,
    start_time  timestamp NOT NULL,
    end_time    timestamp NOT NULL,
    PRIMARY KEY (task_id, node_id, resource_id),
    CONSTRAINT allocations_amount_positive CHECK (amount > 0),
    CONSTRAINT allocations_start_before_end CHECK (start_time < end_time)
);
CREATE INDEX allocations_node_time_idx ON allocations (node_id, end_time, start_time) INCLUDE (resource_id, amount);
CREATE INDEX allocations_resource_id_idx ON allocations (resource_id);

-- Tag names are not unique (duplicates allowed, even for one owner).
CREATE TABLE task_tags (
    id          serial PRIMARY KEY,
    name        varchar NOT NULL,
    description varchar,
    user_id     integer NOT NULL REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX task_tags_user_id_idx ON task_tags (user_id);
CREATE INDEX task_tags_name_idx ON task_tags (name);

CREATE TABLE task_tag_links (
    task_id integer NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    tag_id  integer NOT NULL REFERENCES task_tags (id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, tag_id)
);
CREATE INDEX task_tag_links_tag_id_idx ON task_tag_links (tag_id);

CREATE TABLE notifications (
    id                    serial PRIMARY KEY,
    name                  varchar NOT NULL,
    description           varchar,
    time_offset           integer,
    notification_template text,
    type                  varchar NOT NULL DEFAULT 'other',
    default_amount        bigint,
    owner_id              integer REFERENCES users (id) ON DELETE CASCADE,
    resource_id           integer REFERENCES resources (id) ON DELETE CASCADE,
    CONSTRAINT notifications_name_key UNIQUE (name),
    CONSTRAINT notifications_type_check CHECK (type IN
        ('task_start', 'task_end', 'grafana_resource_exceedance_task', 'grafana_resource_exceedance_general', 'other'))
);
CREATE INDEX notifications_owner_id_idx ON notifications (owner_id);
CREATE INDEX notifications_resource_id_idx ON notifications (resource_id);

CREATE TABLE notification_users (
    user_id         integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    notification_id integer NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, notification_id)
);
CREATE INDEX notification_users_notification_id_idx ON notification_users (notification_id);

CREATE TABLE notification_groups (
    group_id        integer NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    notification_id integer NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, notification_id)
);
CREATE INDEX notification_groups_notification_id_idx ON notification_groups (notification_id);

-- The scheduler's work queue: task start/end and reminder events.
CREATE TABLE events (
    id              serial PRIMARY KEY,
    name            varchar NOT NULL,
    description     varchar,
    time            timestamp NOT NULL,
    type            varchar NOT NULL,
    task_id         integer NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    notification_id integer REFERENCES notifications (id) ON DELETE CASCADE,
    CONSTRAINT events_type_check CHECK (type IN ('task_start', 'task_end', 'other'))
);
CREATE INDEX events_time_idx ON events (time);
CREATE INDEX events_task_id_idx ON events (task_id);
CREATE INDEX events_notification_id_idx ON events (notification_id);
