-- Sessions. A login starts a session; its id travels in both tokens (claim `sid`) and survives refreshes. A token of a
-- session is valid while the session row exists and its token_epoch equals its user's: a password set by an admin
-- (or written by hand) moves the user's epoch and so ends every session at once; a user's own change of password
-- moves the calling session's epoch along and deletes the user's other sessions; logout deletes its session.
-- Tokens without `sid` (issued before this migration) still count by their `epoch` claim alone.
CREATE TABLE sessions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     integer NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_epoch integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- When its refresh token runs out (moved on by every refresh); later the row is only clutter and is removed.
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- The servers' revocation caches hold sessions by user, so a session's change announces its user id, like a user's.
-- (Branches, not one CASE: PL/pgSQL resolves every field an expression names, and `users` rows have no user_id.)
CREATE OR REPLACE FUNCTION remas_auth_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    payload text := '*';
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        payload := OLD.id::text;
    ELSIF TG_TABLE_NAME = 'sessions' THEN
        payload := OLD.user_id::text;
    END IF;
    PERFORM pg_notify('remas_auth_' || left(md5(TG_TABLE_SCHEMA), 16), payload);
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_auth_update AFTER UPDATE ON sessions FOR EACH ROW
    WHEN (NEW.token_epoch <> OLD.token_epoch)
    EXECUTE FUNCTION remas_auth_changed();
CREATE TRIGGER sessions_auth_delete AFTER DELETE ON sessions FOR EACH ROW
    EXECUTE FUNCTION remas_auth_changed();

-- Failed logins, counted per client address and username (scope 'user') and per client address alone (scope
-- 'address', username ''), shared by every replica. An attempt is let in only while its failures and the attempts
-- still checking their password (`pending`) stay below the limit, so parallel guesses cannot slip past it while
-- bcrypt runs.
CREATE TABLE login_throttle (
    address      text NOT NULL,
    scope        text NOT NULL CHECK (scope IN ('user', 'address')),
    username     text NOT NULL,
    failures     integer NOT NULL DEFAULT 0,
    pending      integer NOT NULL DEFAULT 0,
    window_start timestamptz NOT NULL DEFAULT now(),
    -- The last attempt let in or failed: a lockout runs from the last failure.
    last_attempt timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (address, scope, username)
);
CREATE INDEX login_throttle_last_attempt_idx ON login_throttle (last_attempt);
