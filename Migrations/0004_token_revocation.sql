-- Token revocation across replicas. A token names its user's token_epoch (claim `epoch`, 0 when absent); a password
-- change or set moves the epoch on, so every token issued before stops working. A deleted user's tokens fail because
-- the user is gone, and a token claiming admin rights fails once its user is no longer an admin.
--
-- Every server caches (epoch, admin) per user and LISTENs on this schema's remas_auth_… channel: the triggers below
-- announce each change that can revoke a token (payload: the user id, or '*' when a group moved or went, which can
-- change the admin status of many users). NOTIFY is delivered at commit.
ALTER TABLE users ADD COLUMN token_epoch integer NOT NULL DEFAULT 0;

CREATE FUNCTION remas_users_new_epoch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.token_epoch := OLD.token_epoch + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_password_new_epoch BEFORE UPDATE OF password ON users FOR EACH ROW
    WHEN (NEW.password IS DISTINCT FROM OLD.password)
    EXECUTE FUNCTION remas_users_new_epoch();

CREATE FUNCTION remas_auth_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('remas_auth_' || left(md5(TG_TABLE_SCHEMA), 16),
                      CASE WHEN TG_TABLE_NAME = 'users' THEN OLD.id::text ELSE '*' END);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_auth_update AFTER UPDATE ON users FOR EACH ROW
    WHEN (NEW.token_epoch <> OLD.token_epoch OR NEW.group_id IS DISTINCT FROM OLD.group_id)
    EXECUTE FUNCTION remas_auth_changed();
CREATE TRIGGER users_auth_delete AFTER DELETE ON users FOR EACH ROW
    EXECUTE FUNCTION remas_auth_changed();
CREATE TRIGGER groups_auth_update AFTER UPDATE ON groups FOR EACH ROW
    WHEN (NEW.parent_id IS DISTINCT FROM OLD.parent_id)
    EXECUTE FUNCTION remas_auth_changed();
CREATE TRIGGER groups_auth_delete AFTER DELETE ON groups FOR EACH ROW
    EXECUTE FUNCTION remas_auth_changed();
