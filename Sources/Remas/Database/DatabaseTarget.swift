import Logging
import PostgresNIO

/// Where every connection of remas goes: one PostgreSQL server, or several tried in the order listed (libpq's
/// multi-host `DATABASE_URL`), with `target_session_attrs=read-write` only one that accepts writes. A connection is
/// only ever made here (the pools, the LISTEN connections), so after a failover each new connection finds the new
/// primary by itself: the old one refuses connections or, back as a standby, answers `transaction_read_only = on`.
public struct DatabaseTarget: Sendable {
    /// libpq's `target_session_attrs` values that a server which writes can use.
    public enum SessionAttributes: String, Sendable {
        case any
        case readWrite = "read-write"
    }

    public struct Server: Sendable {
        /// `host:port`, for messages.
        public let label: String
        public var configuration: PostgresConnection.Configuration
    }

    public var servers: [Server]
    public var sessionAttributes: SessionAttributes

    public init(servers: [Server], sessionAttributes: SessionAttributes) {
        precondition(!servers.isEmpty, "a database target names at least one server")
        self.servers = servers
        self.sessionAttributes = sessionAttributes
    }

    /// The same servers with one more startup parameter on every connection.
    public func adding(parameter name: String, _ value: String) -> DatabaseTarget {
        var target = self
        for index in target.servers.indices {
            target.servers[index].configuration.options.additionalStartupParameters.append((name, value))
        }
        return target
    }

    /// Connects to the first server, in the order listed, that answers (and, for `read-write`, accepts writes: libpq's
    /// check, `SHOW transaction_read_only`, one round trip per new connection). A single server's own error is thrown
    /// as it is; with several, `NoUsableServer` names what each said.
    public func connect(id: Int, logger: Logger) async throws -> PostgresConnection {
        var reasons: [String] = []
        for server in self.servers {
            let connection: PostgresConnection
            do {
                connection = try await PostgresConnection.connect(configuration: server.configuration, id: id, logger: logger)
            } catch {
                if self.servers.count == 1 { throw error }
                reasons.append("\(server.label): \(Self.describe(error))")
                continue
            }
            guard self.sessionAttributes == .readWrite else { return connection }
            do {
                let readOnly = try await connection.query("SHOW transaction_read_only", logger: logger).collect().first?.decode(String.self)
                if readOnly == "off" { return connection }
                reasons.append("\(server.label): read-only (a standby)")
            } catch {
                reasons.append("\(server.label): \(Self.describe(error))")
            }
            try? await connection.close()
        }
        throw NoUsableServer(reasons: reasons)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            return error.serverInfo?[.message] ?? "\(error.code)"
        }
        return "\(error)"
    }

    /// None of the servers could be used (down, unreachable, or only standbys for `read-write`): a failover in
    /// progress, answered 503 like a database that is down.
    public struct NoUsableServer: Error, CustomStringConvertible {
        public let reasons: [String]
        public var description: String { "no usable PostgreSQL server: " + self.reasons.joined(separator: "; ") }
    }
}
