import Foundation
import PostgresNIO

/// `postgresql://user:password@host:port/database` as used by the original's `DATABASE_URL`.
public struct DatabaseURL: Sendable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String

    public init(parsing raw: String) throws {
        guard let components = URLComponents(string: raw),
            let scheme = components.scheme, ["postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"].contains(scheme)
        else {
            throw ConfigurationError("DATABASE_URL must look like postgresql://user:password@host:port/database")
        }
        self.host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
        self.port = components.port ?? 5432
        self.username = components.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        self.password = components.password.flatMap { $0.removingPercentEncoding }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !path.isEmpty else { throw ConfigurationError("DATABASE_URL names no database") }
        self.database = path.removingPercentEncoding ?? path
    }

    /// Connection configuration. Timestamps are naive wall-clock values bound and read as text or epoch numbers; the
    /// session zone is the server's `TZ` so that `localtimestamp` (which derives task status) is that same wall clock.
    /// JIT compilation is off: remas's statements run for milliseconds, and the planner's estimates for the larger ones
    /// (a usage report's CTEs over millions of allocations, of which a day-figure report reads none) cross
    /// `jit_above_cost` and would pay seconds of compilation for nothing (2.1 s → 21 ms for a month's report).
    public func connectionConfiguration(searchPath: String?, timeZone: TimeZone) -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: self.host, port: self.port, username: self.username, password: self.password, database: self.database, tls: .disable)
        var parameters: [(String, String)] = [("TimeZone", timeZone.identifier), ("application_name", "remas"), ("jit", "off")]
        if let searchPath { parameters.append(("search_path", searchPath)) }
        configuration.options.additionalStartupParameters = parameters
        return configuration
    }
}
