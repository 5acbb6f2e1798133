import Logging
import PostgresNIO
import Synchronization

/// LISTEN on one of this schema's channels on a connection of its own, reconnecting with backoff (1 s doubling to
/// 30 s). Channel names carry a hash of the schema (`<prefix>_<16 hex>`, as the triggers compute them), so
/// deployments and tests sharing a database never hear each other. Used by the scheduler (`remas_events_…`) and by
/// token revocation (`remas_auth_…`).
struct NotificationListener: Sendable {
    let target: DatabaseTarget
    /// `remas_events` or `remas_auth`.
    let prefix: String
    /// A table of the schema, to find which schema the connection's search path resolves to.
    let table: String
    let logger: Logger

    /// Runs until `isStopping` says so or the task is cancelled. `listening` runs each time LISTEN is in place (a
    /// reconnect may have missed notifications), `lost` each time the connection ends, `received` per payload.
    func run(
        isStopping: @Sendable () -> Bool,
        listening: @Sendable () -> Void,
        lost: @Sendable () -> Void,
        received: @Sendable (String) -> Void
    ) async {
        var backoff = 1.0
        while !Task.isCancelled && !isStopping() {
            do {
                let connection = try await self.target.connect(id: 0, logger: self.logger)
                // Closed on every path (awaited: a connection must not be released before it is closed).
                let failure: (any Error)?
                do {
                    // Cancelled while connecting, `connect` may still return the connection, closed by its cancellation;
                    // a query handed to it then never answered (PostgresNIO drops statements on a closed channel, see
                    // `ConnectionPool.withConnection`), and the service group waited for this listener forever
                    // (NotificationListenerTests). So the query is checked on the connection's loop, and cancellation
                    // closes the connection, which ends whatever state the LISTEN is in.
                    try await withTaskCancellationHandler {
                        let channel = try await withTaskExecutorPreference(EventLoopTaskExecutor.on(connection.eventLoop)) {
                            try connection.ensureOpen()
                            return try await self.channel(on: connection)
                        }
                        try await connection.listen(on: channel) { notifications in
                            backoff = 1
                            listening()
                            for try await notification in notifications { received(notification.payload) }
                        }
                    } onCancel: {
                        connection.close().whenComplete { _ in }
                    }
                    failure = nil
                } catch {
                    failure = error
                }
                lost()
                try? await connection.close()
                if let failure { throw failure }
            } catch {
                lost()
                if Task.isCancelled || isStopping() { return }
                self.logger.warning("LISTEN connection lost", metadata: ["channel": "\(self.prefix)", "error": "\(String(reflecting: error))"])
            }
            try? await Task.sleep(for: .seconds(backoff))
            backoff = min(backoff * 2, 30)
        }
    }

    func channel(on connection: PostgresConnection) async throws -> String {
        let rows = try await connection.query(
            """
            SELECT \(self.prefix) || '_' || left(md5(n.nspname), 16) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.oid = \(self.table)::regclass
            """, logger: self.logger)
        for try await row in rows { return try row.decode(String.self) }
        throw MissingTable()
    }

    struct MissingTable: Error {}
}

/// Follows a listener from outside: whether LISTEN is in place and which payloads arrived (after the listener acted
/// on them). Tests wait on it instead of sleeping a fixed time; `buildApplication` takes one for token revocation.
public final class ListenerObserver: Sendable {
    private let state = Mutex<(listening: Bool, losses: Int, received: [String])>((false, 0, []))

    public init() {}

    func setListening(_ listening: Bool) {
        self.state.withLock { state in
            if state.listening && !listening { state.losses += 1 }
            state.listening = listening
        }
    }
    func record(_ payload: String) { self.state.withLock { $0.received.append(payload) } }

    public var isListening: Bool { self.state.withLock { $0.listening } }
    /// How many times the LISTEN connection was lost.
    public var losses: Int { self.state.withLock { $0.losses } }
    public var received: [String] { self.state.withLock { $0.received } }
}
