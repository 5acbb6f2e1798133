-- Recurring reservations: a series is the rule its occurrences were booked from; every occurrence is an ordinary task,
-- linked here (a task belongs to at most one series). New tables only: nothing of `tasks` is rewritten or scanned, so
-- the migration holds no lock that bookings wait for on a large database.
CREATE TABLE task_series (
    id         serial PRIMARY KEY,
    rule       varchar NOT NULL,
    owner_id   integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamp NOT NULL DEFAULT localtimestamp
);
CREATE INDEX task_series_owner_id_idx ON task_series (owner_id);

CREATE TABLE task_series_members (
    task_id   integer PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    series_id integer NOT NULL REFERENCES task_series (id) ON DELETE CASCADE
);
CREATE INDEX task_series_members_series_id_idx ON task_series_members (series_id);
