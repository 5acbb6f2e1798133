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

-- iCalendar feeds: one secret token per user (only its SHA-256 is kept); a new one replaces the old.
CREATE TABLE calendar_tokens (
    user_id    integer PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    created_at timestamp NOT NULL DEFAULT localtimestamp
);

-- Calendar clients see an edit as a higher SEQUENCE of the same UID: tasks count their edits and keep when the last
-- was. Nullable columns without defaults (NULL = never edited): adding them rewrites nothing.
ALTER TABLE tasks ADD COLUMN revision integer, ADD COLUMN modified_at timestamptz;

CREATE FUNCTION remas_task_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := COALESCE(OLD.revision, 0) + 1;
    NEW.modified_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER tasks_revision BEFORE UPDATE OF name, description, start_time, end_time ON tasks FOR EACH ROW
    EXECUTE FUNCTION remas_task_revision();
