import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

@testable import Remas

@Suite struct ConnectionPoolTests {
    /// With PostgreSQL unreachable every caller fails at once, including those queued behind the connection attempts
    /// (they used to wait for a release that never came: a request hung for its client's whole timeout).
    @Test func unreachableDatabaseFailsEveryCallerFast() async throws {
        // A port nothing listens on (taken, then given back).
        let socket = try ServerSocket()
        let port = socket.port
        socket.close()
        let configuration = try TestDatabase.configuration(
            schema: "public", extra: ["DATABASE_URL": "postgresql://remas@127.0.0.1:\(port)/remas"]
        ).databaseTarget
        let pool = ConnectionPool(target: configuration, maximumConnections: 2, logger: TestDatabase.logger)
        let started = ContinuousClock.now
        let failures = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    do {
                        _ = try await pool.withConnection { try await $0.query("SELECT 1", logger: TestDatabase.logger) }
                        return false
                    } catch {
                        return ErrorMiddleware<AppRequestContext>.databaseUnavailable(error)
                    }
                }
            }
            return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
        }
        #expect(failures == 20, "every caller fails, as 'database unavailable'")
        #expect(ContinuousClock.now - started < .seconds(10), "nobody waits for a connection that cannot come")
        #expect(pool.statistics.inUse == 0 && pool.statistics.waiting == 0)
        await pool.shutdown()
    }

    /// A statement on a connection that closed while leased (PostgreSQL restarted, say) fails at once as "database
    /// unavailable"; handed to the closed channel it was dropped by PostgresNIO and its caller waited forever.
    @Test func aStatementOnAClosedConnectionFailsInsteadOfHanging() async throws {
        try await withApp { t in
            let pool = ConnectionPool(
                target: t.configuration.databaseTarget, maximumConnections: 1, logger: TestDatabase.logger)
            let db = Database(pool: pool)
            let outcome = Mutex<String?>(nil)
            let attempt = Task {
                let result: String
                do {
                    try await db.transaction(logger: TestDatabase.logger) { tx in
                        try await tx.connection.close()
                        try await tx.query("SELECT 1", logger: TestDatabase.logger)
                    }
                    result = "succeeded"
                } catch {
                    result = ErrorMiddleware<AppRequestContext>.databaseUnavailable(error) ? "unavailable" : "\(error)"
                }
                outcome.withLock { $0 = result }
            }
            let answered = try await waitUntil(timeout: 10) { outcome.withLock { $0 } != nil }
            #expect(answered, "the statement still waits 10 s after its connection closed")
            #expect(outcome.withLock { $0 } == "unavailable")
            guard answered else { return }  // the attempt holds the only connection
            _ = await attempt.value
            // The pool replaces the closed connection: the next statement works.
            #expect(try await db.int("SELECT 7", logger: TestDatabase.logger) == 7)
            await pool.shutdown()
        }
    }
}
