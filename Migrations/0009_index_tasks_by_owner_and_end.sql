-- remas:no-transaction
-- A calendar feed's validator (ETag) aggregates the owner's tasks ending in the last 30 days or later; this index
-- answers it from the index alone. It also serves everything the plain owner index did (owner_id leads), which it
-- replaces, so bookings maintain no more indexes than before.
-- Built CONCURRENTLY (bookings keep writing while it builds on a large table), so this file runs outside a transaction,
-- statement by statement; each statement may be run again after an interruption.
DROP INDEX CONCURRENTLY IF EXISTS tasks_owner_end_idx;
CREATE INDEX CONCURRENTLY tasks_owner_end_idx ON tasks (owner_id, end_time) INCLUDE (id, revision, modified_at);
DROP INDEX CONCURRENTLY IF EXISTS tasks_owner_id_idx;
