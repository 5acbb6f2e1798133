import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Refuses tokens whose user is gone, whose password changed since (the token's `epoch` is behind the user's
/// `token_epoch`, migration 0004), or that claim admin rights the user no longer has. The original trusts a token
/// until it expires: a deleted user kept reading everyone's e-mail address, a demoted admin kept admin rights.
///
/// Each server keeps the (epoch, admin) of the users it saw in memory, so a request costs a dictionary lookup, and
/// drops entries when the `remas_auth_…` NOTIFY of another replica (or its own) announces a change; a revoked token
/// thus fails on every replica as soon as the notification arrives (milliseconds after the commit). While the LISTEN
/// connection is down nothing is cached, every request reads the database, so a lost notification can never keep a
/// revoked token alive. A read that overlaps an invalidation is not cached (generation check), so a stale row read
/// just before a change cannot be stored just after it.
public final class TokenRevocation: Sendable {
    struct UserState: Sendable, Equatable {
        let epoch: Int
        let isAdmin: Bool
    }

    private struct Cache {
        var entries: [Int: UserState?] = [:]
        var generation: UInt64 = 0
        var listening = false
    }

    private let cache = Mutex(Cache())
    let db: Database
    let logger: Logger
    let capacity = 100_000

    init(db: Database, logger: Logger) {
        self.db = db
        self.logger = logger
    }

    /// Throws the 401 of an invalid token when the token no longer stands for its user.
    func check(userID: Int, epoch: Int, claimsAdmin: Bool) async throws {
        let state = try await self.state(of: userID)
        guard let state, state.epoch == epoch, state.isAdmin || !claimsAdmin else {
            throw AppError.unauthorized("Could not validate credentials!", bearerChallenge: true)
        }
    }

    func state(of userID: Int) async throws -> UserState? {
        let (cached, generation) = self.cache.withLock { cache -> (UserState??, UInt64) in
            (cache.listening ? cache.entries[userID] : nil, cache.generation)
        }
        if let cached { return cached }
        // Not one of the endpoint's statements (tests count those), and usually served from the cache anyway.
        let rows = try await StatementCounter.$current.withValue(nil) {
            try await self.db.query(
                "SELECT u.token_epoch, \(unescaped: UserRepository.isAdminSQL) FROM users u WHERE u.id = \(userID)", logger: self.logger)
        }
        let state = try rows.first.map { row in
            let (epoch, admin) = try row.decode((Int, Bool).self)
            return UserState(epoch: epoch, isAdmin: admin)
        }
        self.cache.withLock { cache in
            guard cache.listening, cache.generation == generation else { return }
            if cache.entries.count >= self.capacity { cache.entries.removeAll(keepingCapacity: true) }
            cache.entries[userID] = .some(state)
        }
        return state
    }

    /// A NOTIFY payload: a user id, or `*` for everyone.
    func invalidate(_ payload: String) {
        self.cache.withLock { cache in
            cache.generation &+= 1
            if let id = Int(payload) { cache.entries.removeValue(forKey: id) } else { cache.entries.removeAll() }
        }
    }

    func setListening(_ listening: Bool) {
        self.cache.withLock { cache in
            cache.generation &+= 1
            cache.listening = listening
            cache.entries.removeAll()
        }
    }

    /// The service that keeps the cache honest: LISTEN on `remas_auth_…` for as long as the server runs.
    struct Listener: Service {
        let revocation: TokenRevocation
        let connection: PostgresConnection.Configuration
        let logger: Logger

        func run() async throws {
            // Cancelled on graceful shutdown, which also ends the LISTEN sequence it waits in.
            await cancelWhenGracefulShutdown {
                await NotificationListener(connection: self.connection, prefix: "remas_auth", table: "users", logger: self.logger).run(
                    isStopping: { Task.isCancelled },
                    listening: { self.revocation.setListening(true) },
                    lost: { self.revocation.setListening(false) },
                    received: { self.revocation.invalidate($0) })
            }
        }
    }
}
