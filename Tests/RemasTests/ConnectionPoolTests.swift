import Foundation
import Logging
import PostgresNIO
import Testing

@testable import Remas

@Suite struct ConnectionPoolTests {
    /// With PostgreSQL unreachable every caller fails at once, including those queued behind the connection attempts
    /// (they used to wait for a release that never came: a request hung for its client's whole timeout).
    @Test func unreachableDatabaseFailsEveryCallerFast() async throws {
        // A port nothing listens on.
        let port = try ServerSocketProbe.unusedPort()
        let configuration = try TestDatabase.configuration(
            schema: "public", extra: ["DATABASE_URL": "postgresql://remas@127.0.0.1:\(port)/remas"]
        ).connectionConfiguration
        let pool = ConnectionPool(configuration: configuration, maximumConnections: 2, logger: TestDatabase.logger)
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
}

enum ServerSocketProbe {
    /// A loopback port that was free a moment ago (bound, then closed).
    static func unusedPort() throws -> Int {
        let fd = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
