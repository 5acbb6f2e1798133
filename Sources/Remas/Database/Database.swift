import Logging
import PostgresNIO
import Synchronization

/// Anything that runs one SQL statement: the pool, or a connection inside a transaction.
/// Rows are collected before the connection goes back to the pool.
public protocol SQLExecutor: Sendable {
    @discardableResult
    func query(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow]
    /// Runs a prepared statement (planned once per connection; a `NamedStatement`) and collects its rows.
    @discardableResult
    func run<S: NamedStatement>(_ statement: S, logger: Logger) async throws -> [S.Row] where S.Row: Sendable
}

/// Counts statements per task tree; tests use it to prove list endpoints issue a constant number of queries.
public final class StatementCounter: Sendable {
    private let value = Atomic<Int>(0)
    /// The counters a shared statement also counts for: a coalesced batch's statement counts for every request it
    /// serves (`Coalescer`), whichever task happens to run the batch.
    private let shared: [StatementCounter]
    public init() { self.shared = [] }
    init(countingFor counters: [StatementCounter]) { self.shared = counters }
    public var count: Int { self.value.load(ordering: .relaxed) }
    func increment() {
        self.value.add(1, ordering: .relaxed)
        for counter in self.shared { counter.increment() }
    }
    @TaskLocal public static var current: StatementCounter?
}

/// The shared pool. Every statement goes through `query`, so counting and logging have one place.
public struct Database: SQLExecutor {
    public let pool: ConnectionPool

    public init(pool: ConnectionPool) { self.pool = pool }

    @discardableResult
    public func query(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        try await self.pool.withConnection { try await LeasedConnection(connection: $0).query(query, logger: logger) }
    }

    @discardableResult
    public func run<S: NamedStatement>(_ statement: S, logger: Logger) async throws -> [S.Row] where S.Row: Sendable {
        try await self.pool.withConnection { try await LeasedConnection(connection: $0).run(statement, logger: logger) }
    }

    /// One round trip to PostgreSQL (`/ready`): throws when it cannot be reached.
    public func ping(logger: Logger) async throws {
        try await self.query("SELECT 1", logger: logger)
    }

    /// Runs `body` in one transaction on one connection; the body's own error is rethrown unchanged after ROLLBACK.
    public func transaction<T: Sendable>(logger: Logger, _ body: (LeasedConnection) async throws -> T) async throws -> T {
        try await self.pool.withConnection { connection in
            let tx = LeasedConnection(connection: connection)
            try await tx.query("BEGIN", logger: logger)
            do {
                let value = try await body(tx)
                try await tx.query("COMMIT", logger: logger)
                return value
            } catch {
                if !connection.isClosed { _ = try? await connection.query("ROLLBACK", logger: logger) }
                throw error
            }
        }
    }
}

/// The statements of one leased connection, on its event loop (`ConnectionPool.withConnection`): the one place that
/// counts, guards (`ensureOpen`) and runs a statement; `Database` runs its single statements through it too, as do
/// `Database.transaction` and the migrator (which runs its own transactions under a lock).
public struct LeasedConnection: SQLExecutor {
    let connection: PostgresConnection

    @discardableResult
    public func query(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        StatementCounter.current?.increment()
        try self.connection.ensureOpen()
        return try await self.droppingStandbys { try await self.connection.query(query, logger: logger).collect() }
    }

    @discardableResult
    public func run<S: NamedStatement>(_ statement: S, logger: Logger) async throws -> [S.Row] where S.Row: Sendable {
        StatementCounter.current?.increment()
        try self.connection.ensureOpen()
        return try await self.droppingStandbys {
            var rows: [S.Row] = []
            for try await row in try await self.connection.execute(statement, logger: logger) { rows.append(row) }
            return rows
        }
    }

    /// A server that refuses writes (SQLSTATE 25006) is no longer the primary (demoted without a restart, as some
    /// managed services do): the connection is closed, so that the pool's next connection looks for the writable
    /// server again (`DatabaseTarget`), and the error answers 503 (`ErrorMiddleware.databaseUnavailable`).
    private func droppingStandbys<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PSQLError where error.sqlState == "25006" {
            try? await self.connection.close()
            throw error
        }
    }
}

extension SQLExecutor {
    /// The first column of the first row as text (JSON documents built by PostgreSQL), or nil without rows.
    public func text(_ query: PostgresQuery, logger: Logger) async throws -> String? {
        try await self.query(query, logger: logger).first?.decode(String?.self) ?? nil
    }

    public func int(_ query: PostgresQuery, logger: Logger) async throws -> Int? {
        try await self.query(query, logger: logger).first?.decode(Int?.self) ?? nil
    }

    public func exists(_ query: PostgresQuery, logger: Logger) async throws -> Bool {
        try await !self.query(query, logger: logger).isEmpty
    }

    @discardableResult
    public func execute(_ query: PostgresQuery, logger: Logger) async throws -> Int {
        try await self.query(query, logger: logger).count
    }
}

extension PSQLError {
    /// SQLSTATE of a server error, e.g. `23505` for a unique violation.
    public var sqlState: String? {
        guard self.code == .server else { return nil }
        return self.serverInfo?[.sqlState]
    }
}

/// Maps constraint violations to the original's 409 text: `Failed to <action> <entity> in database due to
/// conflict:\n` followed by PostgreSQL's own message and detail (they name the column and value). Repositories name
/// the action and entity of their writes here; a violation no repository mapped gets the same text from
/// `ErrorMiddleware`, with the action taken from the HTTP method and the entity from the table.
public func withConflictMapping<T>(_ action: String, _ entity: String, _ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as PSQLError {
        throw mapConstraintError(error, action: action, entity: entity) ?? error
    }
}

/// The client's-input errors of PostgreSQL: integrity violations (class 23) → 409, data exceptions (class 22) → 422;
/// nil for anything else.
func mapConstraintError(_ error: PSQLError, action: String, entity: String? = nil) -> AppError? {
    guard let state = error.sqlState else { return nil }
    if state.hasPrefix("23") {
        var cause = "ERROR:  \(error.serverInfo?[.message] ?? "constraint violated")\n"
        if let detail = error.serverInfo?[.detail] { cause += "DETAIL:  \(detail)\n" }
        let entity = entity ?? error.serverInfo?[.tableName].map(entityName(ofTable:)) ?? "row"
        return AppError.conflict("Failed to \(action) \(entity) in database due to conflict:\n\(cause)")
    }
    if state == "22003" { return AppError.unprocessable("A number is out of range") }
    if state.hasPrefix("22") { return AppError.unprocessable("Invalid value: \(error.serverInfo?[.message] ?? "invalid value")") }
    return nil
}

/// What a table holds, as conflict texts name it: `resource_aliases` → `resource alias`, `nodes` → `node`.
func entityName(ofTable table: String) -> String {
    let words = table.split(separator: "_").map(String.init)
    guard let last = words.last else { return table }
    let singular = last.hasSuffix("ases") ? String(last.dropLast(2)) : last.hasSuffix("s") ? String(last.dropLast()) : last
    return (words.dropLast() + [singular]).joined(separator: " ")
}
