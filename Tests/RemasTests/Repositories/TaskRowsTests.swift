import Logging
import PostgresNIO
import Testing

@testable import Remas

/// A task's allocations and events go with it (migration 0019: a trigger instead of the foreign keys from
/// `allocations` and `events` to `tasks`), and no path leaves a row that names a task that is gone.
@Suite struct TaskRowsTests {
    /// Rows of allocations and events whose task does not exist.
    static func orphans(_ t: TestContext) async throws -> Int {
        try await t.count(
            """
            SELECT (SELECT count(*) FROM allocations a WHERE NOT EXISTS (SELECT 1 FROM tasks x WHERE x.id = a.task_id))::int
                 + (SELECT count(*) FROM events e WHERE e.task_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tasks x WHERE x.id = e.task_id))::int
            """)
    }

    @Test func deletesTakeTheTasksRows() async throws {
        try await withApp { t in
            let (nodes, resources) = try await t.cluster(nodes: 2, capacity: 8)
            let (ada, token) = try await t.userWithToken("ada")
            let notification = try await t.makeNotification("soon")
            try await t.db.execute(
                "INSERT INTO notification_users (user_id, notification_id) VALUES (\(ada), \(notification))", logger: t.logger)
            var ids: [Int] = []
            for day in 1...3 {
                let r = try await t.book(
                    token, name: "t\(day)", start: "2031-01-0\(day) 10:00", end: "2031-01-0\(day) 12:00",
                    [(nodes[0], resources[0], 2), (nodes[1], resources[0], 1)])
                #expect(r.status == .ok, "\(r.body)")
                ids.append(try #require(r.object["id"] as? Int))
            }
            // Each booking: 2 allocations, its start and end, a reminder.
            #expect(try await t.count("SELECT count(*)::int FROM allocations") == 6)
            #expect(try await t.count("SELECT count(*)::int FROM events") == 9)

            // The owner deletes one.
            let r = try await t.request(.delete, "/task/\(ids[0])", token: token)
            #expect(r.status == .ok, "\(r.body)")
            #expect(try await t.count("SELECT count(*)::int FROM allocations WHERE task_id = \(ids[0])") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE task_id = \(ids[0])") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM allocations") == 4)
            #expect(try await t.count("SELECT count(*)::int FROM events") == 6)

            // Deleting the owner deletes their tasks (a foreign key's cascade), and those take their rows.
            let admin = try await t.adminToken()
            #expect(try await t.request(.delete, "/user/\(ada)", token: admin).status == .ok)
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM allocations") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE task_id IS NOT NULL") == 0)
            #expect(try await Self.orphans(t) == 0)
        }
    }

    /// A reschedule of reminders (a notification assigned, a user moved) and a delete of one of the tasks it gives a
    /// reminder, in both orders: the second waits for the first, and no reminder is left naming the deleted task.
    @Test func aReminderRacingItsTasksDeleteIsNotLeftBehind() async throws {
        try await withApp { t in
            let (nodes, resources) = try await t.cluster(nodes: 1, capacity: 8)
            let (ada, token) = try await t.userWithToken("ada")
            var booked: [Int] = []
            for day in 1...2 {
                let r = try await t.book(
                    token, name: "t\(day)", start: "2031-02-0\(day) 10:00", end: "2031-02-0\(day) 12:00", [(nodes[0], resources[0], 1)])
                booked.append(try #require(r.object["id"] as? Int, "\(r.body)"))
            }
            let ids = booked
            let notification = try await t.makeNotification("soon")
            try await t.db.execute(
                "INSERT INTO notification_users (user_id, notification_id) VALUES (\(ada), \(notification))", logger: t.logger)
            let events = EventRepository(db: t.db)

            /// `body` in a transaction, on a pool of its own (the app's stays free for the polls), that first hands its
            /// backend's pid to `pid` and then stays open until `release` is raised.
            func holding(_ pid: Pid, until release: Flag, _ body: @escaping @Sendable (LeasedConnection) async throws -> Void) async throws {
                try await withDatabase(t.configuration, logger: t.logger) { db in
                    try await db.transaction(logger: t.logger) { tx in
                        await pid.set(try #require(try await tx.query("SELECT pg_backend_pid()", logger: t.logger).first?.decode(Int.self)))
                        try await body(tx)
                        _ = try await waitUntil(timeout: 60) { await release.isRaised }
                    }
                }
            }
            /// Whether the transaction of `pid` is seen waiting for a lock (once it has begun).
            func waitsForLock(_ pid: Pid) async throws -> Bool {
                guard try await waitUntil(timeout: 10, { await pid.value != nil }), let value = await pid.value else { return false }
                return try await seenWaitingForLock(t.db, "pid = \(value)", logger: t.logger)
            }

            // 1. The delete first: the reschedule, which starts before the delete commits, waits for it and then
            //    skips the task.
            let deleter = Pid(), rescheduler = Pid()
            let deleteMayCommit = Flag(), free = Flag()
            await free.raise()
            async let deleted: Void = holding(deleter, until: deleteMayCommit) { tx in
                try await tx.query("DELETE FROM tasks WHERE id = \(ids[0])", logger: t.logger)
            }
            #expect(try await waitUntil(timeout: 10) { await deleter.value != nil })
            async let rescheduled: Void = holding(rescheduler, until: free) { tx in
                try await events.reschedule(users: [ada], in: tx, logger: t.logger)
            }
            #expect(try await waitsForLock(rescheduler), "the reschedule did not wait for the task's delete")
            await deleteMayCommit.raise()
            try await deleted
            try await rescheduled
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE task_id = \(ids[0])") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE task_id = \(ids[1]) AND notification_id = \(notification)") == 1)
            #expect(try await Self.orphans(t) == 0)

            // 2. The reschedule first (of a second notification): the delete waits for it, then takes the new reminder
            //    with the task.
            let second = try await t.makeNotification("later", offset: "600")
            try await t.db.execute(
                "INSERT INTO notification_users (user_id, notification_id) VALUES (\(ada), \(second))", logger: t.logger)
            let holder = Pid(), secondDeleter = Pid()
            let rescheduleMayCommit = Flag(), inserted = Flag()
            async let held: Void = holding(holder, until: rescheduleMayCommit) { tx in
                try await events.reschedule(users: [ada], in: tx, logger: t.logger)
                await inserted.raise()
            }
            // The reminder is in (not committed yet) before the delete starts.
            #expect(try await waitUntil(timeout: 10) { await inserted.isRaised })
            async let gone: Void = holding(secondDeleter, until: free) { tx in
                try await tx.query("DELETE FROM tasks WHERE id = \(ids[1])", logger: t.logger)
            }
            #expect(try await waitsForLock(secondDeleter), "the delete did not wait for the reschedule")
            await rescheduleMayCommit.raise()
            try await held
            try await gone
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE task_id IS NOT NULL") == 0)
            #expect(try await Self.orphans(t) == 0)
        }
    }
}

/// A backend's pid, handed from one task of a test to another.
private actor Pid {
    private(set) var value: Int?
    func set(_ pid: Int) { self.value = pid }
}
