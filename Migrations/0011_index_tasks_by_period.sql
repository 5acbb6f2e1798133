-- remas:no-transaction
-- The tasks overlapping a past day or any period, found without scanning everything that ends later (a B-tree on
-- start or end time bounds only one side of an overlap): the roll-up of a day's usage figures and the live part of a
-- usage report read the tasks whose period overlaps theirs from this index, then their allocations by task.
-- Built CONCURRENTLY like 0009, so bookings keep writing while it builds on a large table.
DROP INDEX CONCURRENTLY IF EXISTS tasks_period_idx;
CREATE INDEX CONCURRENTLY tasks_period_idx ON tasks USING gist (tsrange(start_time, end_time));
