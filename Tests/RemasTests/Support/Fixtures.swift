import Foundation
import Logging
import PostgresNIO

@testable import Remas

/// Small insert helpers: each test creates exactly the rows it needs.
extension TestContext {
    @discardableResult
    func makeNode(_ name: String) async throws -> Int {
        try await self.db.int("INSERT INTO nodes (name) VALUES (\(name)) RETURNING id", logger: self.logger)!
    }

    @discardableResult
    func makeResource(_ name: String, unit: String = "") async throws -> Int {
        try await self.db.int("INSERT INTO resources (name, unit) VALUES (\(name), \(unit)) RETURNING id", logger: self.logger)!
    }

    func provide(node: Int, resource: Int, amount: Int64) async throws {
        try await self.db.execute(
            "INSERT INTO node_resources (node_id, resource_id, amount) VALUES (\(node), \(resource), \(amount))", logger: self.logger)
    }

    @discardableResult
    func makeLimit(_ name: String, amount: Int64, user: Int? = nil, group: Int? = nil, resource: Int, nodes: [Int]) async throws -> Int {
        let id = try await self.db.int(
            """
            INSERT INTO limits (name, amount, user_id, group_id, resource_id) VALUES (\(name), \(amount), \(user), \(group), \(resource))
            RETURNING id
            """, logger: self.logger)!
        for node in nodes {
            try await self.db.execute("INSERT INTO limit_nodes (limit_id, node_id) VALUES (\(id), \(node))", logger: self.logger)
        }
        return id
    }

    @discardableResult
    func makeTag(_ name: String, user: Int) async throws -> Int {
        try await self.db.int("INSERT INTO task_tags (name, user_id) VALUES (\(name), \(user)) RETURNING id", logger: self.logger)!
    }

    /// Counts the SQL statements one request issues.
    func statements(_ body: @Sendable () async throws -> Void) async throws -> Int {
        let counter = StatementCounter()
        try await StatementCounter.$current.withValue(counter) { try await body() }
        return counter.count
    }
}

func ids(_ array: [[String: Any]]) -> [Int] { array.compactMap { $0["id"] as? Int } }
