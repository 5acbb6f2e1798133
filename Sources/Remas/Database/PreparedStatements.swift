import Logging
import PostgresNIO
import Synchronization

/// Hot read paths run as prepared statements: PostgresNIO prepares them once per connection, so PostgreSQL plans
/// the (large, JSON-building) query once instead of on every request. Planning cost more than executing for these.
///
/// Every prepared statement of ours is a `NamedStatement`: PostgresNIO's default name is `String(reflecting:)` of the
/// type, worked out again (a demangling) on every execution — 1–2 % of a `GET /user/{id}`'s CPU in `perf`. Here the
/// name is the same text, made once per type.
public protocol NamedStatement: PostgresPreparedStatement {}

extension NamedStatement {
    public static var name: String { StatementNames.name(of: Self.self) }
}

/// The names of the statement types used so far (a few dozen, for the life of the process).
enum StatementNames {
    private static let names = Mutex<[ObjectIdentifier: String]>([:])

    static func name(of type: Any.Type) -> String {
        let key = ObjectIdentifier(type)
        if let name = Self.names.withLock({ $0[key] }) { return name }
        let name = String(reflecting: type)
        Self.names.withLock { $0[key] = name }
        return name
    }
}

protocol JSONStatement: NamedStatement where Row == String? {}

extension JSONStatement {
    func decodeRow(_ row: PostgresRow) throws -> String? { try row.decode(String?.self) }
}

/// A statement whose one parameter is an integer id (`$1`).
protocol ByIDStatement: NamedStatement {
    var id: Int { get }
}

/// A statement whose one parameter is an array of integer ids (`$1::int4[]`).
protocol ByIDsStatement: NamedStatement {
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
