import Logging
import PostgresNIO

/// Hot read paths run as prepared statements: PostgresNIO prepares them once per connection, so PostgreSQL plans
/// the (large, JSON-building) query once instead of on every request. Planning cost more than executing for these.
protocol JSONStatement: PostgresPreparedStatement where Row == String? {}

extension JSONStatement {
    func decodeRow(_ row: PostgresRow) throws -> String? { try row.decode(String?.self) }
}

/// A statement whose one parameter is an integer id (`$1`).
protocol ByIDStatement: PostgresPreparedStatement {
    var id: Int { get }
}

/// A statement whose one parameter is an array of integer ids (`$1::int4[]`).
protocol ByIDsStatement: PostgresPreparedStatement {
    var ids: [Int32] { get }
}

extension ByIDsStatement {
    static var bindingDataTypes: [PostgresDataType] { [.int4Array] }
    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(self.ids)
        return bindings
    }
}

/// A JSON document selected by one integer id (`$1`).
protocol JSONByIDStatement: JSONStatement, ByIDStatement {}

extension ByIDStatement {
    static var bindingDataTypes: [PostgresDataType] { [.int4] }
    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(Int32(truncatingIfNeeded: self.id))
        return bindings
    }
}

extension SQLExecutor {
    /// Runs a prepared JSON statement and returns the document of its first row.
    func json<S: JSONStatement>(_ statement: S, logger: Logger) async throws -> String? {
        try await self.run(statement, logger: logger).first ?? nil
    }

    /// A list document: the statement's array, `[]` when it selects nothing.
    func jsonList<S: JSONStatement>(_ statement: S, logger: Logger) async throws -> String {
        try await self.json(statement, logger: logger) ?? "[]"
    }
}
