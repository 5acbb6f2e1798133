import Foundation
import Logging
import PostgresNIO
import Testing

@testable import Remas

/// `DatabaseTarget` against real servers: the test PostgreSQL and its hot standby (`scripts/test` starts both; the
/// standby's port is POSTGRES_STANDBY_PORT), and a port nothing listens on.
@Suite struct DatabaseTargetTests {
    static var standbyPort: Int {
        get throws {
            guard let port = ProcessInfo.processInfo.environment["POSTGRES_STANDBY_PORT"].flatMap(Int.init) else {
                throw TestFailure("POSTGRES_STANDBY_PORT is not set: run the tests through scripts/test, which starts a hot standby")
            }
            return port
        }
    }

    static var primaryPort: Int { Int(ProcessInfo.processInfo.environment["POSTGRES_PORT"] ?? "5432") ?? 5432 }

    static func deadPort() throws -> Int {
        let socket = try ServerSocket()
        defer { socket.close() }
        return socket.port
    }

    static func target(_ ports: [Int], _ attributes: String? = nil) throws -> DatabaseTarget {
        let hosts = ports.map { "127.0.0.1:\($0)" }.joined(separator: ",")
        let query = attributes.map { "?target_session_attrs=\($0)" } ?? ""
        return try DatabaseURL(parsing: "postgresql://remas@\(hosts)/remas\(query)").target(searchPath: nil, timeZone: .gmt)
    }

    /// The port of the server a target connects to.
    static func portReached(_ target: DatabaseTarget) async throws -> Int {
        let connection = try await target.connect(id: 1, logger: TestDatabase.logger)
        defer { connection.close().whenComplete { _ in withExtendedLifetime(connection) {} } }
        return try await connection.query("SELECT inet_server_port()", logger: TestDatabase.logger).collect().first!.decode(Int.self)
    }

    @Test func findsTheWritableServer() async throws {
        let (primary, standby, dead) = (Self.primaryPort, try Self.standbyPort, try Self.deadPort())
        // In the order listed; a host that refuses connections is passed over.
        #expect(try await Self.portReached(Self.target([dead, primary])) == primary)
        // read-write (also the default with several hosts) passes over the standby; any takes it.
        #expect(try await Self.portReached(Self.target([standby, primary])) == primary)
        #expect(try await Self.portReached(Self.target([dead, standby, primary], "read-write")) == primary)
        #expect(try await Self.portReached(Self.target([standby, primary], "any")) == standby)
        // Only a standby and a dead host: nothing usable, said per server, and answered as "database unavailable".
        do {
            _ = try await Self.portReached(Self.target([dead, standby]))
            Issue.record("connected to a standby for read-write")
        } catch let error as DatabaseTarget.NoUsableServer {
            #expect(error.reasons.count == 2 && error.reasons[1].contains("read-only"), "\(error)")
            #expect(ErrorMiddleware<AppRequestContext>.databaseUnavailable(error))
        }
        // A single host keeps its own error.
        do {
            _ = try await Self.portReached(Self.target([dead]))
            Issue.record("connected to a dead port")
        } catch {
            #expect(!(error is DatabaseTarget.NoUsableServer) && ErrorMiddleware<AppRequestContext>.databaseUnavailable(error))
        }
    }

    /// A write on a server that has become read-only under a pooled connection (here: the standby, reached with
    /// `any`) is answered "database unavailable", and the connection is dropped, so the pool reconnects.
    @Test func aWriteRefusedAsReadOnlyDropsTheConnection() async throws {
        let pool = ConnectionPool(target: try Self.target([try Self.standbyPort], "any"), maximumConnections: 1, logger: TestDatabase.logger)
        let db = Database(pool: pool)
        do {
            try await db.query("CREATE TEMP TABLE refused (x int)", logger: TestDatabase.logger)
            Issue.record("a standby accepted a write")
        } catch {
            #expect((error as? PSQLError)?.sqlState == "25006")
            #expect(ErrorMiddleware<AppRequestContext>.databaseUnavailable(error))
        }
        #expect(pool.statistics.idle == 0, "the refused connection went back closed and was not kept")
        #expect(try await db.int("SELECT 1", logger: TestDatabase.logger) == 1, "the pool connects anew")
        await pool.shutdown()
    }
}
