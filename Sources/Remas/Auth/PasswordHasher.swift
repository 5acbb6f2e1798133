import Foundation
import HummingbirdBcrypt
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// bcrypt on a dedicated, low-priority thread pool.
///
/// A login flood must not stall other requests: the pool has one thread fewer than the machine has cores (at least
/// one) and its threads run at nice 10, so the event loops and PostgreSQL keep a core and win any contention.
public final class PasswordHasher: Service, Sendable {
    let pool: NIOThreadPool
    let cost: UInt8
    /// A real hash to compare against when the user does not exist, so a wrong username costs as much as a wrong password.
    let dummyHash: String
    private let verifications = Atomic<Int>(0)
    /// Passwords checked so far (each a bcrypt run; `/metrics`).
    public var checks: Int { self.verifications.load(ordering: .relaxed) }

    public init(cost: UInt8) {
        let threads = max(1, ProcessInfo.processInfo.activeProcessorCount - 1)
        self.pool = NIOThreadPool(numberOfThreads: threads)
        self.pool.start()
        self.cost = cost
        self.dummyHash = Bcrypt.hash("remas-dummy-password", cost: cost)
    }

    private func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws -> T {
        try await self.pool.runIfActive {
            Self.lowerPriority()
            return work()
        }
    }

    static func lowerPriority() {
        #if os(Linux)
        // On Linux, who = 0 names the calling thread: the nice value is per thread. Harmless to repeat.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        #endif
    }

    /// A password nobody chose (the seeded administrator's, a Grafana user's): letters and digits that cannot be
    /// mistaken for each other, from the system's secure generator.
    static func randomPassword(length: Int = 20) -> String {
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
    }

    public func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await self.run { Bcrypt.hash(password, cost: cost) }
    }

    /// Verifies `$2a$`, `$2b$` and `$2y$` hashes (`2y` is PHP's name for the same algorithm as `2b`).
    public func verify(_ password: String, hash: String?) async throws -> Bool {
        self.verifications.add(1, ordering: .relaxed)
        let stored = hash ?? self.dummyHash
        let normalized = stored.hasPrefix("$2y$") ? "$2b$" + stored.dropFirst(4) : stored
        let ok = try await self.run { Bcrypt.verify(password, hash: normalized) }
        return ok && hash != nil
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try await self.pool.shutdownGracefully()
    }
}
