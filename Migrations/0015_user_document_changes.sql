-- A user's document (GET /user/{id}: the user, their group, limits, tasks, tags and notifications) kept by each
-- replica with a validator, so that reading it again costs one index probe instead of building it (README "A user's
-- document, cached"). The validator is the change counters of migration 0012: scope 'o' (the user's tasks, counted
-- there) and the new scope 'u' below, keyed by the user: what else the document shows. Every committed change of the
-- document adds to one of them, so a replica's copy is current exactly when their sum is what it was when the copy
-- was built (and no task of the user has started or ended since: statuses follow the clock; the replica checks that).
-- New triggers only: nothing existing is rewritten or scanned.

-- Rows with a user_id column (limits, task_tags, notification_users) count that user, before and after a change.
CREATE FUNCTION remas_user_document_rows_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        PERFORM remas_calendar_count('u', ARRAY(SELECT user_id FROM changed UNION SELECT user_id FROM before_change));
    ELSE
        PERFORM remas_calendar_count('u', ARRAY(SELECT DISTINCT user_id FROM changed));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER limits_user_document_insert AFTER INSERT ON limits
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_user_document_rows_changed();
CREATE TRIGGER limits_user_document_update AFTER UPDATE ON limits
    REFERENCING OLD TABLE AS before_change NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_user_document_rows_changed();
CREATE TRIGGER limits_user_document_delete AFTER DELETE ON limits
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_user_document_rows_changed();
CREATE TRIGGER task_tags_user_document_insert AFTER INSERT ON task_tags
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_user_document_rows_changed();
CREATE TRIGGER task_tags_user_document_update AFTER UPDATE ON task_tags
    REFERENCING OLD TABLE AS before_change NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_user_document_rows_changed();
CREATE TRIGGER task_tags_user_document_delete AFTER DELETE ON task_tags
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_user_document_rows_changed();
CREATE TRIGGER notification_users_user_document_insert AFTER INSERT ON notification_users
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_user_document_rows_changed();
CREATE TRIGGER notification_users_user_document_update AFTER UPDATE ON notification_users
    REFERENCING OLD TABLE AS before_change NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_user_document_rows_changed();
CREATE TRIGGER notification_users_user_document_delete AFTER DELETE ON notification_users
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_user_document_rows_changed();

-- Notifications: their owners ('created_notifications') and the users they are assigned to ('notifications'). A
-- deleted notification's assignments are deleted with it and counted by the trigger above.
CREATE FUNCTION remas_user_document_notifications_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        PERFORM remas_calendar_count('u', ARRAY(
            SELECT owner_id FROM changed UNION SELECT owner_id FROM before_change
            UNION SELECT nu.user_id FROM notification_users nu WHERE nu.notification_id IN (SELECT id FROM changed)));
    ELSE
        PERFORM remas_calendar_count('u', ARRAY(SELECT DISTINCT owner_id FROM changed));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER notifications_user_document_insert AFTER INSERT ON notifications
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_user_document_notifications_changed();
CREATE TRIGGER notifications_user_document_update AFTER UPDATE ON notifications
    REFERENCING OLD TABLE AS before_change NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_user_document_notifications_changed();
CREATE TRIGGER notifications_user_document_delete AFTER DELETE ON notifications
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_user_document_notifications_changed();

-- The user's own row (a deleted user's key is counted too, so a kept copy is not served for them), and the group
-- their document embeds: a change of a group counts its members.
CREATE FUNCTION remas_user_document_users_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM remas_calendar_count('u', ARRAY(SELECT id FROM changed));
    RETURN NULL;
END
$$;

CREATE TRIGGER users_user_document_update AFTER UPDATE ON users
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_user_document_users_changed();
CREATE TRIGGER users_user_document_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_user_document_users_changed();

CREATE FUNCTION remas_user_document_groups_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM remas_calendar_count('u', ARRAY(SELECT u.id FROM users u WHERE u.group_id IN (SELECT id FROM changed)));
    RETURN NULL;
END
$$;

CREATE TRIGGER groups_user_document_update AFTER UPDATE ON groups
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION remas_user_document_groups_changed();
