import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// A small, fixed-size pool of `PostgresConnection`s.
///
/// Why not `PostgresClient`: with postgres-nio 1.33.2 every lease/release of `PostgresClient`'s pool retained
/// memory (measured: about 1.5 KiB per query, 4 KiB per bare `withConnection`, RSS climbing past 250 MiB within a
/// minute of load; `scripts/bench` shows it). Our needs are simple — a bounded set of connections, FIFO waiting,
/// replacement of dead connections — so this pool does exactly that and nothing more.
public final class ConnectionPool: Service, Sendable {
    struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var waiters: [CheckedContinuation<PostgresConnection, any Error>] = []
        var nextID = 0
        var shutDown = false
    }

    enum Decision {
        case use(PostgresConnection)
        case create(Int)
        case wait
        case refuse
    }

    private let state = Mutex(State())
    let target: DatabaseTarget
    let maximumConnections: Int
    let prewarms: Bool
    let logger: Logger

    public init(target: DatabaseTarget, maximumConnections: Int, prewarm: Bool = false, logger: Logger) {
        self.target = target
        self.maximumConnections = max(1, maximumConnections)
        self.prewarms = prewarm
        self.logger = logger
    }

    public struct Statistics: Sendable {
        public let inUse: Int
        public let idle: Int
        public let waiting: Int
        public let maximum: Int
    }

    /// The pool right now (for `/metrics`).
    public var statistics: Statistics {
        self.state.withLock { s in
            Statistics(inUse: s.open - s.idle.count, idle: s.idle.count, waiting: s.waiters.count, maximum: self.maximumConnections)
        }
    }

    public func lease() async throws -> PostgresConnection {
        // Fast path without a continuation: an idle connection is usually there.
        let idle = self.state.withLock { s -> PostgresConnection? in
            guard !s.shutDown else { return nil }
            return Self.takeIdle(&s)
        }
        if let idle { return idle }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PostgresConnection, any Error>) in
            let decision = self.state.withLock { s -> Decision in
                if s.shutDown { return .refuse }
                if let connection = Self.takeIdle(&s) { return .use(connection) }
                if s.open < self.maximumConnections {
                    s.open += 1
                    s.nextID += 1
                    return .create(s.nextID)
                }
                s.waiters.append(continuation)
                return .wait
            }
            switch decision {
            case .use(let connection): continuation.resume(returning: connection)
            case .create(let id): self.connect(id: id, for: continuation)
            case .wait: break
            case .refuse: continuation.resume(throwing: PoolShutDown())
            }
        }
    }

    /// The idle connection used last (LIFO); closed ones found on the way are dropped.
    private static func takeIdle(_ s: inout State) -> PostgresConnection? {
        while let connection = s.idle.popLast() {
            if !connection.isClosed { return connection }
            s.open -= 1
        }
        return nil
    }

    public func release(_ connection: PostgresConnection) {
        enum After {
            case handOver(CheckedContinuation<PostgresConnection, any Error>)
            case replace(CheckedContinuation<PostgresConnection, any Error>, Int)
            case close
            case none
        }
        let after = self.state.withLock { s -> After in
            if connection.isClosed || s.shutDown {
                s.open -= 1
                if !s.shutDown, !s.waiters.isEmpty {
                    s.open += 1
                    s.nextID += 1
                    return .replace(s.waiters.removeFirst(), s.nextID)
                }
                return connection.isClosed ? .none : .close
            }
            if !s.waiters.isEmpty { return .handOver(s.waiters.removeFirst()) }
            s.idle.append(connection)
            return .none
        }
        switch after {
        case .handOver(let waiter): waiter.resume(returning: connection)
        case .replace(let waiter, let id): self.connect(id: id, for: waiter)
        // The closure keeps the connection until its channel has closed: PostgresNIO asserts (debug builds) that a
        // connection is closed when it is deinitialised, and a lease released after shutdown was otherwise freed first.
        case .close: connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
        case .none: break
        }
    }

    private func connect(id: Int, for continuation: CheckedContinuation<PostgresConnection, any Error>) {
        Task {
            do {
                let connection = try await self.target.connect(id: id, logger: self.logger)
                continuation.resume(returning: connection)
            } catch {
                // The requests queued behind this one would wait for a release that never comes while no connection
                // can be made (PostgreSQL down or restarting): they fail now too, so every caller answers 503 at once.
                let waiters = self.state.withLock { s in
                    s.open -= 1
                    defer { s.waiters = [] }
                    return s.waiters
                }
                self.logger.error("database connection failed", metadata: ["error": "\(String(reflecting: error))"])
                continuation.resume(throwing: error)
                for waiter in waiters { waiter.resume(throwing: error) }
            }
        }
    }

    /// Runs `body` with a leased connection, on that connection's event loop. PostgresNIO (1.33.2) hands every
    /// statement to its channel without a completion: on a connection that has just closed (PostgreSQL restarted, or a
    /// LISTEN setup cancelled) the statement is dropped and its caller waits forever, holding its lease. On the loop,
    /// `ensureOpen()` and PostgresNIO's hand-over happen in one turn, so a statement either reaches an open connection
    /// (which fails it properly if it closes later) or fails at once. It costs no extra hop: the statement would go to
    /// that loop anyway, and its answer resumes the body there.
    public func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await self.lease()
        do {
            let value = try await withTaskExecutorPreference(EventLoopTaskExecutor.on(connection.eventLoop)) {
                try await body(connection)
            }
            self.release(connection)
            return value
        } catch {
            self.release(connection)
            throw error
        }
    }

    /// Closes every connection; waiting and later requests fail.
    public func shutdown() async {
        let (idle, waiters) = self.state.withLock { s in
            s.shutDown = true
            defer {
                s.open -= s.idle.count
                s.idle = []
                s.waiters = []
            }
            return (s.idle, s.waiters)
        }
        for waiter in waiters { waiter.resume(throwing: PoolShutDown()) }
        for connection in idle { try? await connection.close() }
    }

    public func run() async throws {
        if self.prewarms { await self.prewarm() }
        try? await gracefulShutdown()
        await self.shutdown()
    }

    /// Opens every connection up front, so the first burst of requests does not queue behind connection setup.
    /// Best effort: a database that is not reachable yet only delays connections until the first requests.
    func prewarm() async {
        var leased: [PostgresConnection] = []
        for _ in 0..<self.maximumConnections {
            guard let connection = try? await self.lease() else { break }
            leased.append(connection)
        }
        for connection in leased { self.release(connection) }
    }

    public struct PoolShutDown: Error {}
}

extension PostgresConnection {
    /// Throws unless the connection is open; call it right before each statement, on the connection's event loop
    /// (`ConnectionPool.withConnection`), so that no statement is handed to a closed channel (see there).
    func ensureOpen() throws {
        if self.isClosed { throw ChannelError.ioOnClosedChannel }
    }
}
