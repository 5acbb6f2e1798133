import Foundation
import PostgresNIO
import Testing

@testable import Remas

@Suite struct MigratorTests {
    let logger = TestDatabase.logger

    /// The text of `explain` (an `EXPLAIN` statement), a line per plan line; with `seqScans: false` planned without
    /// sequential scans, in a transaction of its own.
    private func plan(_ explain: String, on db: Database, seqScans: Bool = true) async throws -> String {
        try await db.transaction(logger: self.logger) { tx in
            if !seqScans { try await tx.query("SET LOCAL enable_seqscan = off", logger: self.logger) }
            return try await tx.query(PostgresQuery(unsafeSQL: explain), logger: self.logger)
                .map { try $0.decode(String.self) }.joined(separator: "\n")
        }
    }

    @Test func secondRunIsANoOp() async throws {
        try await TestDatabase.withSchema(seed: false) { _, configuration in
            try await withDatabase(configuration, logger: self.logger) { db in
                let migrator = try Migrator(directory: TestDatabase.migrationsPath)
                let again = try await migrator.migrate(db: db, logger: self.logger)
                #expect(again.isEmpty)
                let count = try await db.int("SELECT count(*)::int FROM schema_migrations", logger: self.logger)
                #expect(count == migrator.files.count)
            }
        }
    }

    @Test func changedChecksumIsRefused() async throws {
        try await TestDatabase.withSchema(seed: false) { _, configuration in
            try await withDatabase(configuration, logger: self.logger) { db in
                let real = try Migrator(directory: TestDatabase.migrationsPath)
                var files = real.files
                let first = files[0]
                files[0] = .init(version: first.version, name: first.name, sql: first.sql + "\n-- edited\n")
                await #expect(throws: Migrator.MigrationError.self) {
                    try await Migrator(files: files).migrate(db: db, logger: self.logger)
                }
            }
        }
    }

    @Test func unknownAppliedVersionIsRefused() async throws {
        try await TestDatabase.withSchema(seed: false) { _, configuration in
            try await withDatabase(configuration, logger: self.logger) { db in
                let real = try Migrator(directory: TestDatabase.migrationsPath)
                await #expect(throws: Migrator.MigrationError.self) {
                    try await Migrator(files: Array(real.files.dropLast())).migrate(db: db, logger: self.logger)
                }
            }
        }
    }

    @Test func failingFileIsRolledBackWhole() async throws {
        try await TestDatabase.withSchema(seed: false) { _, configuration in
            try await withDatabase(configuration, logger: self.logger) { db in
                let real = try Migrator(directory: TestDatabase.migrationsPath)
                let bad = Migrator.File(version: "9999", name: "9999_broken.sql", sql: "CREATE TABLE half_done (id int); SELECT nonsense_fn();")
                await #expect(throws: Migrator.MigrationError.self) {
                    try await Migrator(files: real.files + [bad]).migrate(db: db, logger: self.logger)
                }
                let exists = try await db.exists("SELECT 1 FROM pg_tables WHERE tablename = 'half_done' AND schemaname = current_schema()", logger: self.logger)
                #expect(!exists)
                let recorded = try await db.exists("SELECT 1 FROM schema_migrations WHERE version = '9999'", logger: self.logger)
                #expect(!recorded)
            }
        }
    }

    /// A `-- remas:no-transaction` file runs statement by statement: what ran before a failure stays, the file is not
    /// recorded, and once fixed it runs again from its first (repeatable) statement.
    @Test func fileOutsideATransaction() async throws {
        try await TestDatabase.withSchema(seed: false) { _, configuration in
            try await withDatabase(configuration, logger: self.logger) { db in
                let real = try Migrator(directory: TestDatabase.migrationsPath)
                let header = "-- remas:no-transaction\nCREATE TABLE IF NOT EXISTS outside (id int);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS outside_idx ON outside (id);\n"
                let broken = Migrator.File(version: "9999", name: "9999_outside.sql", sql: header + "SELECT nonsense_fn();")
                await #expect(throws: Migrator.MigrationError.self) {
                    try await Migrator(files: real.files + [broken]).migrate(db: db, logger: self.logger)
                }
                #expect(try await db.exists("SELECT 1 FROM pg_indexes WHERE indexname = 'outside_idx' AND schemaname = current_schema()", logger: self.logger))
                #expect(try await !db.exists("SELECT 1 FROM schema_migrations WHERE version = '9999'", logger: self.logger))
                let fixed = Migrator.File(version: "9999", name: "9999_outside.sql", sql: header + "SELECT 1;")
                #expect(try await Migrator(files: real.files + [fixed]).migrate(db: db, logger: self.logger) == ["9999_outside.sql"])
                #expect(try await db.exists("SELECT 1 FROM schema_migrations WHERE version = '9999'", logger: self.logger))
                // The shipped index replaced the plain owner index.
                #expect(try await db.exists("SELECT 1 FROM pg_indexes WHERE indexname = 'tasks_owner_end_idx' AND schemaname = current_schema()", logger: self.logger))
                #expect(try await !db.exists("SELECT 1 FROM pg_indexes WHERE indexname = 'tasks_owner_id_idx' AND schemaname = current_schema()", logger: self.logger))
            }
        }
    }

    @Test func concurrentMigratorsApplyOnce() async throws {
        try await TestDatabase.withSchema(seed: false) { schema, configuration in
            // A second, empty schema migrated by two clients at once.
            let other = schema + "_b"
            let config = try TestDatabase.configuration(schema: other)
            try await withDatabase(config, logger: self.logger) { db in
                try await db.execute(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(other)"), logger: self.logger)
            }
            let migrator = try Migrator(directory: TestDatabase.migrationsPath)
            let results = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        try await withDatabase(config, logger: self.logger) { db in try await migrator.migrate(db: db, logger: self.logger) }
                    }
                }
                return try await group.reduce(into: [[String]]()) { $0.append($1) }
            }
            #expect(results.map(\.count).sorted() == [0, migrator.files.count])
            try await TestDatabase.drop(other, configuration)
        }
    }

    /// `lastVersion` (`remas migrate --to`) stops before later files, and a database already further along is left
    /// as it is rather than refused.
    @Test func stopsAtTheLastVersion() async throws {
        try await TestDatabase.withSchema(seed: false) { _, configuration in
            try await withDatabase(configuration, logger: self.logger) { db in
                let real = try Migrator(directory: TestDatabase.migrationsPath)
                var stepping = Migrator(files: real.files + [.init(version: "9999", name: "9999_later.sql", sql: "CREATE TABLE later (id int)")])
                stepping.lastVersion = real.files.last!.version
                #expect(try await stepping.migrate(db: db, logger: self.logger) == [])
                stepping.lastVersion = "0005"
                #expect(try await stepping.migrate(db: db, logger: self.logger) == [])
                stepping.lastVersion = nil
                #expect(try await stepping.migrate(db: db, logger: self.logger) == ["9999_later.sql"])
            }
        }
    }

    /// A file needing a lock that a long transaction holds waits at most `lockTimeout` at a time, so the writes queued
    /// behind it (bookings) go on; it is applied once the lock is free. Without the timeout the ALTER would queue for
    /// the table's exclusive lock and every insert would queue behind it until the reader ended — and the reader here
    /// ends only after the writes (or after 10 s), so a write would take that long (checked: with a 60 s lock timeout
    /// the slowest write took 9.8 s).
    @Test func lockWaitsAreBounded() async throws {
        try await TestDatabase.withSchema(seed: false) { _, configuration in
            // The reader and the migrator on one pool (of two), the writer on another.
            try await withDatabase(configuration, logger: self.logger) { db in
                try await withDatabase(configuration, logger: self.logger) { writer in
                    try await db.execute("CREATE TABLE busy (id int)", logger: self.logger)
                    let real = try Migrator(directory: TestDatabase.migrationsPath)
                    var migrator = Migrator(
                        files: real.files + [.init(version: "9999", name: "9999_alter_busy.sql", sql: "ALTER TABLE busy ADD COLUMN c int")])
                    migrator.lockTimeout = .milliseconds(200)
                    migrator.retryPause = .milliseconds(100)
                    let writesDone = Flag()
                    let clock = ContinuousClock()
                    async let reader: Void = db.transaction(logger: self.logger) { tx in
                        try await tx.query("SELECT count(*) FROM busy", logger: self.logger)  // ACCESS SHARE until the end
                        _ = try await waitUntil(timeout: 10) { await writesDone.isRaised }
                    }
                    try await Task.sleep(for: .milliseconds(200))
                    async let applied = migrator.migrate(db: db, logger: self.logger)
                    // Once the file has been seen waiting for its lock, write.
                    #expect(try await seenWaitingForLock(writer, "query LIKE 'ALTER TABLE busy%'", logger: self.logger))
                    var slowest = Duration.zero
                    for _ in 0..<6 {
                        let t0 = clock.now
                        try await writer.execute("INSERT INTO busy (id) VALUES (1)", logger: self.logger)
                        slowest = max(slowest, clock.now - t0)
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    await writesDone.raise()
                    try await reader
                    #expect(try await applied == ["9999_alter_busy.sql"])
                    #expect(slowest < .seconds(1), "a write waited \(slowest) behind the migration")
                    #expect(try await db.exists("SELECT 1 FROM information_schema.columns WHERE table_name = 'busy' AND column_name = 'c' AND table_schema = current_schema()", logger: self.logger))
                }
            }
        }
    }

    /// A lock that never comes free fails the file after `attempts`, naming the statement, with nothing applied.
    @Test func lockNeverGrantedFailsTheFile() async throws {
        try await TestDatabase.withSchema(seed: false) { _, configuration in
            try await withDatabase(configuration, logger: self.logger) { db in
                try await db.execute("CREATE TABLE busy (id int)", logger: self.logger)
                let real = try Migrator(directory: TestDatabase.migrationsPath)
                var migrator = Migrator(files: real.files + [
                    .init(version: "9999", name: "9999_alter_busy.sql", sql: "CREATE TABLE first_part (id int); ALTER TABLE busy ADD COLUMN c int")
                ])
                migrator.lockTimeout = .milliseconds(100)
                migrator.retryPause = .milliseconds(50)
                migrator.attempts = 3
                try await db.transaction(logger: self.logger) { tx in
                    try await tx.query("SELECT count(*) FROM busy", logger: self.logger)
                    do {
                        _ = try await migrator.migrate(db: db, logger: self.logger)
                        Issue.record("the migration went through a held lock")
                    } catch let error as Migrator.MigrationError {
                        #expect("\(error)".contains("9999_alter_busy.sql failed at statement 2"), "\(error)")
                        #expect("\(error)".contains("3 attempts"), "\(error)")
                    }
                }
                #expect(try await !db.exists("SELECT 1 FROM pg_tables WHERE tablename = 'first_part' AND schemaname = current_schema()", logger: self.logger))
                #expect(try await !db.exists("SELECT 1 FROM schema_migrations WHERE version = '9999'", logger: self.logger))
            }
        }
    }

    /// Migration 0019 drops two foreign keys, each an exclusive lock on two tables that bookings read before they write
    /// them. A booking caught between its read and its writes when the file starts must not deadlock with it: the file
    /// first waits for such bookings at the nodes they lock, so it is applied at its first attempt. (Without that
    /// first lock, the file held tasks for its trigger while it waited for the booking's read of allocations, and the
    /// booking's insert into tasks waited for the file: the lock timeout rolled the file back, and under steady
    /// bookings every retry met such a booking.)
    @Test func droppingTheTaskKeysWaitsForBookingsUnderWay() async throws {
        try await TestDatabase.withSchema(seed: true) { _, configuration in
            try await withDatabase(configuration, logger: self.logger) { db in
                try await withDatabase(configuration, logger: self.logger) { booker in
                    // The schema as it was before 0019.
                    for statement in [
                        "DROP TRIGGER tasks_delete_rows ON tasks", "DROP FUNCTION remas_task_rows_deleted()",
                        "ALTER TABLE allocations ADD CONSTRAINT allocations_task_id_fkey FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE",
                        "ALTER TABLE events ADD CONSTRAINT events_task_id_fkey FOREIGN KEY (task_id) REFERENCES tasks (id) ON DELETE CASCADE",
                        "DELETE FROM schema_migrations WHERE version >= '0019'",
                    ] {
                        try await db.execute(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                    }
                    let node = try #require(try await db.int("INSERT INTO nodes (name) VALUES ('n1') RETURNING id", logger: self.logger))
                    let resource = try #require(try await db.int("INSERT INTO resources (name) VALUES ('cpu') RETURNING id", logger: self.logger))
                    let owner = try #require(try await db.int("SELECT min(id)::int FROM users", logger: self.logger))
                    var migrator = try Migrator(directory: TestDatabase.migrationsPath)
                    migrator.lastVersion = "0019"
                    migrator.attempts = 1
                    // The file waits here for the booking to commit, which on a machine busy with every suite takes more
                    // than the usual 500 ms; a deadlock would still end the file (PostgreSQL's detector, after 1 s).
                    migrator.lockTimeout = .seconds(30)
                    let read = Flag(), fileWaits = Flag()
                    // A booking as the server makes it: the node's lock, the reads, then (once the file waits) the writes.
                    async let booked: Void = booker.transaction(logger: self.logger) { tx in
                        try await tx.query("SELECT id FROM nodes WHERE id = \(node) FOR NO KEY UPDATE", logger: self.logger)
                        try await tx.query("SELECT count(*) FROM allocations WHERE node_id = \(node)", logger: self.logger)
                        try await tx.query("SELECT count(*) FROM tasks WHERE owner_id = \(owner)", logger: self.logger)
                        await read.raise()
                        _ = try await waitUntil(timeout: 10) { await fileWaits.isRaised }
                        let task = try #require(
                            try await tx.query(
                                """
                                INSERT INTO tasks (name, start_time, end_time, owner_id)
                                VALUES ('b', '2031-01-01 10:00', '2031-01-01 11:00', \(owner)) RETURNING id
                                """, logger: self.logger
                            ).first?.decode(Int.self))
                        try await tx.query(
                            """
                            INSERT INTO allocations (task_id, node_id, resource_id, amount, start_time, end_time)
                            VALUES (\(task), \(node), \(resource), 1, '2031-01-01 10:00', '2031-01-01 11:00')
                            """, logger: self.logger)
                        try await tx.query(
                            "INSERT INTO events (name, time, type, task_id) VALUES ('b start', '2031-01-01 10:00', 'task_start', \(task))",
                            logger: self.logger)
                    }
                    #expect(try await waitUntil(timeout: 10) { await read.isRaised })
                    async let applied = migrator.migrate(db: db, logger: self.logger)
                    // The file, started while the booking is between its reads and its writes, waits for a lock.
                    #expect(
                        try await seenWaitingForLock(
                            booker, "query LIKE 'LOCK TABLE nodes%' OR query LIKE 'ALTER TABLE allocations DROP%'", logger: self.logger))
                    await fileWaits.raise()
                    try await booked
                    #expect(try await applied == ["0019_cascade_task_rows_by_trigger.sql"])
                    #expect(try await !db.exists("SELECT 1 FROM pg_constraint WHERE conname IN ('allocations_task_id_fkey', 'events_task_id_fkey') AND connamespace = current_schema()::regnamespace", logger: self.logger))
                    try await db.execute("DELETE FROM tasks", logger: self.logger)
                    #expect(try await db.int("SELECT (SELECT count(*) FROM allocations) + (SELECT count(*) FROM events)", logger: self.logger) == 0)
                }
            }
        }
    }

    /// `remas_ts` (every timestamp of the wire documents) is inlined into the statements that call it (migration
    /// 0014): the plan shows its `to_char`, not a call; its output is unchanged.
    @Test func wireTimestampsAreInlined() async throws {
        try await TestDatabase.withSchema(seed: false) { _, configuration in
            try await withDatabase(configuration, logger: self.logger) { db in
                let plan = try await self.plan(
                    "EXPLAIN (VERBOSE, COSTS OFF) SELECT remas_ts(t) FROM (VALUES (localtimestamp)) v(t)", on: db)
                #expect(plan.contains("to_char"), "\(plan)")
                #expect(!plan.contains("remas_ts"), "\(plan)")
                let texts = try await db.query(
                    """
                    SELECT remas_ts(t) FROM (VALUES (timestamp '2031-01-01 10:00'), (timestamp '2031-01-01 10:00:00.5'),
                                                     (timestamp '2031-01-01 10:00:00.000001')) v(t)
                    """, logger: self.logger
                ).map { try $0.decode(String.self) }
                #expect(texts == ["2031-01-01T10:00:00", "2031-01-01T10:00:00.500000", "2031-01-01T10:00:00.000001"])
            }
        }
    }

    /// A task's events share one key (migration 0017): one start and one end per task, one reminder per notification,
    /// any number of notices without a task; the import's conflict target names it; the cascades from tasks and
    /// notifications find their events by index.
    @Test func eventKeysKeepTheirRules() async throws {
        try await TestDatabase.withSchema(seed: true) { _, configuration in
            try await withDatabase(configuration, logger: self.logger) { db in
                let owner = try #require(try await db.int("SELECT min(id)::int FROM users", logger: self.logger))
                let task = try #require(
                    try await db.int(
                        """
                        INSERT INTO tasks (name, start_time, end_time, owner_id)
                        VALUES ('t', '2031-01-01 10:00', '2031-01-01 11:00', \(owner)) RETURNING id
                        """, logger: self.logger))
                let notification = try #require(
                    try await db.int("INSERT INTO notifications (name, type) VALUES ('n', 'task_start') RETURNING id", logger: self.logger))
                /// The SQLSTATE of `sql`'s failure, nil when it succeeded.
                func failure(_ sql: PostgresQuery) async throws -> String? {
                    do {
                        try await db.query(sql, logger: self.logger)
                        return nil
                    } catch let error as PSQLError {
                        return error.sqlState
                    }
                }
                let start: PostgresQuery = "INSERT INTO events (name, time, type, task_id) VALUES ('s', '2031-01-01 10:00', 'task_start', \(task))"
                let reminder: PostgresQuery = """
                    INSERT INTO events (name, time, type, task_id, notification_id)
                    VALUES ('r', '2031-01-01 09:00', 'other', \(task), \(notification))
                    """
                let notice: PostgresQuery = """
                    INSERT INTO events (name, time, type, recipient_id, subject, body)
                    VALUES ('notice', '2031-01-01 09:00', 'notice', \(owner), 'subject', 'body')
                    """
                #expect(try await failure(start) == nil)
                #expect(try await failure(start) == "23505")
                #expect(try await failure("INSERT INTO events (name, time, type, task_id) VALUES ('e', '2031-01-01 11:00', 'task_end', \(task))") == nil)
                #expect(try await failure(reminder) == nil)
                #expect(try await failure(reminder) == "23505")
                #expect(try await failure(notice) == nil)
                #expect(try await failure(notice) == nil)
                let skipped = try await db.query(
                    """
                    INSERT INTO events (name, time, type, task_id) VALUES ('s', '2031-01-01 10:00', 'task_start', \(task))
                    ON CONFLICT (task_id, notification_id, type) WHERE task_id IS NOT NULL DO NOTHING RETURNING id
                    """, logger: self.logger)
                #expect(skipped.isEmpty)
                #expect(try await db.int("SELECT count(*)::int FROM events", logger: self.logger) == 5)

                // The statements of the cascades: the tasks' trigger (migration 0019) and the notifications' foreign
                // key, as PostgreSQL writes it; the table is tiny, so the plans are asked for with sequential scans off
                // (which index can serve each at all).
                let byTask = try await self.plan("EXPLAIN (COSTS OFF) DELETE FROM events WHERE task_id = 7", on: db, seqScans: false)
                let byNotification = try await self.plan(
                    "EXPLAIN (COSTS OFF) DELETE FROM ONLY events WHERE 7 OPERATOR(pg_catalog.=) notification_id", on: db, seqScans: false)
                #expect(byTask.contains("events_task_key"), "\(byTask)")
                #expect(byNotification.contains("events_notification_idx"), "\(byNotification)")

                try await db.query("DELETE FROM notifications WHERE id = \(notification)", logger: self.logger)
                #expect(try await db.int("SELECT count(*)::int FROM events WHERE type = 'other'", logger: self.logger) == 0)
                try await db.query("DELETE FROM tasks WHERE id = \(task)", logger: self.logger)
                #expect(try await db.int("SELECT count(*)::int FROM events", logger: self.logger) == 2)
            }
        }
    }
}
