import Foundation
import PostgresNIO

/// `postgresql://user:password@host:port/database` as used by the original's `DATABASE_URL`, and libpq's multi-host
/// form `postgresql://user:password@h1:5432,h2:5432/database?target_session_attrs=read-write`.
public struct DatabaseURL: Sendable {
    public var hosts: [(host: String, port: Int)]
    public var username: String
    public var password: String?
    public var database: String
    /// `target_session_attrs`: `any` or `read-write`. Unlike libpq, several hosts without it mean `read-write`: a remas
    /// server writes, so a standby is no use to it.
    public var sessionAttributes: DatabaseTarget.SessionAttributes
    /// The query's parameters (`target_session_attrs`; `remas import --from` reads `search_path`).
    public var parameters: [String: String] = [:]

    /// The first host (the only one, usually).
    public var host: String { self.hosts[0].host }
    public var port: Int { self.hosts[0].port }

    static let usage = "DATABASE_URL must look like postgresql://user:password@host:port/database (or host1:port1,host2:port2)"

    public init(parsing raw: String) throws {
        guard let schemeEnd = raw.range(of: "://"),
            ["postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"].contains(String(raw[..<schemeEnd.lowerBound]))
        else { throw ConfigurationError(Self.usage) }
        var rest = Substring(raw[schemeEnd.upperBound...])
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var query = Substring("")
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        let slash = rest.firstIndex(of: "/")
        let authority = slash.map { rest[..<$0] } ?? rest
        let path = slash.map { rest[rest.index(after: $0)...] } ?? ""
        var hostList = authority
        var user: Substring?
        var password: Substring?
        if let at = authority.lastIndex(of: "@") {
            let info = authority[..<at]
            hostList = authority[authority.index(after: at)...]
            if let colon = info.firstIndex(of: ":") {
                user = info[..<colon]
                password = info[info.index(after: colon)...]
            } else {
                user = info
            }
        }
        self.username = user.flatMap { $0.isEmpty ? nil : String($0).removingPercentEncoding } ?? "postgres"
        self.password = password.flatMap { String($0).removingPercentEncoding }
        self.hosts = try hostList.split(separator: ",", omittingEmptySubsequences: false).map(Self.hostAndPort)
        guard !path.isEmpty else { throw ConfigurationError("DATABASE_URL names no database") }
        self.database = String(path).removingPercentEncoding ?? String(path)
        for pair in query.split(separator: "&") {
            let (name, value) = pair.firstIndex(of: "=").map { (pair[..<$0], pair[pair.index(after: $0)...]) } ?? (pair, "")
            self.parameters[String(name).removingPercentEncoding ?? String(name)] = String(value).removingPercentEncoding ?? String(value)
        }
        if let value = self.parameters["target_session_attrs"] {
            guard let known = DatabaseTarget.SessionAttributes(rawValue: value) else {
                throw ConfigurationError("DATABASE_URL: target_session_attrs must be any or read-write, not '\(value)'")
            }
            self.sessionAttributes = known
        } else {
            self.sessionAttributes = self.hosts.count > 1 ? .readWrite : .any
        }
    }

    /// `host`, `host:port`, `[v6]` or `[v6]:port`; an empty host is `localhost`, a missing port 5432.
    static func hostAndPort(_ text: Substring) throws -> (host: String, port: Int) {
        var host = text
        var port: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw ConfigurationError(Self.usage) }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw ConfigurationError(Self.usage) }
                port = after.dropFirst()
            }
        } else if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        let number: Int
        if let port {
            guard let value = Int(port), (1...65_535).contains(value) else {
                throw ConfigurationError("DATABASE_URL: '\(port)' is not a port number")
            }
            number = value
        } else {
            number = 5432
        }
        let name = String(host).removingPercentEncoding ?? String(host)
        return (name.isEmpty ? "localhost" : name, number)
    }

    /// Where connections go. Timestamps are naive wall-clock values bound and read as text or epoch numbers; the
    /// session zone is the server's `TZ` so that `localtimestamp` (which derives task status) is that same wall clock.
    /// JIT compilation is off: remas's statements run for milliseconds, and the planner's estimates for the larger ones
    /// (a usage report's CTEs over millions of allocations, of which a day-figure report reads none) cross
    /// `jit_above_cost` and would pay seconds of compilation for nothing (2.1 s → 21 ms for a month's report).
    public func target(searchPath: String?, timeZone: TimeZone) -> DatabaseTarget {
        var parameters: [(String, String)] = [("TimeZone", timeZone.identifier), ("application_name", "remas"), ("jit", "off")]
        if let searchPath { parameters.append(("search_path", searchPath)) }
        let servers = self.hosts.map { host, port in
            var configuration = PostgresConnection.Configuration(
                host: host, port: port, username: self.username, password: self.password, database: self.database, tls: .disable)
            configuration.options.additionalStartupParameters = parameters
            return DatabaseTarget.Server(label: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)", configuration: configuration)
        }
        return DatabaseTarget(servers: servers, sessionAttributes: self.sessionAttributes)
    }
}
