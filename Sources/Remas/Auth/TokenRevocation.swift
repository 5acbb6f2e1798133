import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Refuses tokens whose user is gone, whose session ended (logout, another session changed the password, an admin set
/// it: migration 0005), or that claim admin rights the user no longer has. A token without a session (issued before
/// sessions existed) is refused once its `epoch` is behind the user's `token_epoch`. The original trusts a token until
/// it expires: a deleted user kept reading everyone's e-mail address, a demoted admin kept admin rights.
///
/// Each server keeps what it read per user and session in memory, so a request costs a dictionary lookup, and drops
/// a user's entries when the `remas_auth_…` NOTIFY of another replica (or its own) announces a change to the user or
/// one of their sessions; a revoked token thus fails on every replica as soon as the notification arrives
/// (milliseconds after the commit). While the LISTEN connection is down nothing is cached, every request reads the
/// database, so a lost notification can never keep a revoked token alive. A read that overlaps an invalidation is not
/// cached (generation check), so a stale row read just before a change cannot be stored just after it.
public final class TokenRevocation: Sendable {
    struct UserState: Sendable, Equatable {
        let epoch: Int
        let isAdmin: Bool
        /// The token's session exists and stands for the user's current epoch (false for a token without a session).
        let sessionLive: Bool

        func admits(session: Int64?, epoch: Int, claimsAdmin: Bool) -> Bool {
            let current = session == nil ? self.epoch == epoch : self.sessionLive
            return current && (self.isAdmin || !claimsAdmin)
        }
    }

    private struct Cache {
        /// user id → session id (0: none) → what the database said (nil: no such user).
        var entries: [Int: [Int64: UserState?]] = [:]
        var count = 0
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
    func check(userID: Int, session: Int64?, epoch: Int, claimsAdmin: Bool) async throws {
        let state = try await self.state(of: userID, session: session)
        guard let state, state.admits(session: session, epoch: epoch, claimsAdmin: claimsAdmin) else {
            throw AppError.unauthorized("Could not validate credentials!", bearerChallenge: true)
        }
    }

    func state(of userID: Int, session: Int64?) async throws -> UserState? {
        let key = session ?? 0
        let (cached, generation) = self.cache.withLock { cache -> (UserState??, UInt64) in
            (cache.listening ? cache.entries[userID]?[key] : nil, cache.generation)
        }
        if let cached { return cached }
        // Not one of the endpoint's statements (tests count those), and usually served from the cache anyway.
        let state = try await StatementCounter.$current.withValue(nil) {
            try await SessionRepository(db: self.db).state(ofUser: userID, session: session, logger: self.logger)
        }
        self.cache.withLock { cache in
            guard cache.listening, cache.generation == generation else { return }
            if cache.count >= self.capacity {
                cache.entries.removeAll(keepingCapacity: true)
                cache.count = 0
            }
            if cache.entries[userID, default: [:]].updateValue(state, forKey: key) == nil { cache.count += 1 }
        }
        return state
    }

    /// A NOTIFY payload: a user id, or `*` for everyone.
    func invalidate(_ payload: String) {
        self.cache.withLock { cache in
            cache.generation &+= 1
            if let id = Int(payload) {
                cache.count -= cache.entries.removeValue(forKey: id)?.count ?? 0
            } else {
                cache.entries.removeAll()
                cache.count = 0
            }
        }
    }

    func setListening(_ listening: Bool) {
        self.cache.withLock { cache in
            cache.generation &+= 1
            cache.listening = listening
            cache.entries.removeAll()
            cache.count = 0
        }
    }

    /// The service that keeps the cache honest: LISTEN on `remas_auth_…` for as long as the server runs.
    struct Listener: Service {
        let revocation: TokenRevocation
        let target: DatabaseTarget
        let observer: ListenerObserver?
        let logger: Logger

        func run() async throws {
            // Cancelled on graceful shutdown, which also ends the LISTEN sequence it waits in.
            await cancelWhenGracefulShutdown {
                await NotificationListener(target: self.target, prefix: "remas_auth", table: "users", logger: self.logger).run(
                    isStopping: { Task.isCancelled },
                    listening: {
                        self.revocation.setListening(true)
                        self.observer?.setListening(true)
                    },
                    lost: {
                        self.revocation.setListening(false)
                        self.observer?.setListening(false)
                    },
                    received: {
                        self.revocation.invalidate($0)
                        self.observer?.record($0)
                    })
            }
        }
    }
}
