import Hummingbird
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How password guessing is slowed down (OWASP Authentication Cheat Sheet, "Login Throttling"): after
/// `maxFailuresPerUser` failed logins for one username from one client address within `windowSeconds`, or
/// `maxFailuresPerAddress` from one address, further attempts from there are refused with 429 before any bcrypt runs,
/// for `lockoutSeconds`, doubling with every further failure, at most 15 minutes. The same username from another
/// address is not locked out, so nobody can lock a user out of their own account from elsewhere.
public struct LoginThrottleSettings: Sendable {
    public var maxFailuresPerUser = 5
    public var maxFailuresPerAddress = 50
    public var windowSeconds = 900
    public var lockoutSeconds = 60
    /// How long a refusal is held back. A guesser's connections wait instead of asking again at once: measured with
    /// `scripts/bench guess`, answering at once let 8 connections send ~2,900 guesses/s, which took more than half the
    /// CPU of other requests even though none of them ran bcrypt. A held request costs a sleeping task, nothing else.
    public var refusalDelayMilliseconds = 1000
    static let maxLockoutSeconds = 900

    public init() {}

    /// The lockout after `failures` counted attempts: none below `limit`, then `lockoutSeconds`, doubling with each
    /// further attempt, at most 15 minutes.
    func lockout(failures: Int, limit: Int) -> Int {
        guard failures >= limit else { return 0 }
        return min(Self.maxLockoutSeconds, self.lockoutSeconds << min(failures - limit, 20))
    }
}

/// Counts login attempts around their password check (`LoginThrottleRepository`): `admit` before bcrypt (it throws
/// the 429 of a locked-out client), then `failed` or `succeeded`.
struct LoginThrottle: Sendable {
    let repository: LoginThrottleRepository
    let lockouts: LockoutCache
    let refusalDelay: Duration

    init(db: Database, settings: LoginThrottleSettings, lockouts: LockoutCache) {
        self.repository = LoginThrottleRepository(db: db, settings: settings)
        self.lockouts = lockouts
        self.refusalDelay = .milliseconds(settings.refusalDelayMilliseconds)
    }

    func admit(address: String, username: String, logger: Logger) async throws {
        let key = LockoutCache.key(address: address, username: username)
        // A lockout only ever ends with time, so one this server answered holds until then: a flood of guesses is
        // answered from memory, without a transaction each.
        if let wait = self.lockouts.remaining(key) { throw await self.refusal(wait) }
        guard let wait = try await self.repository.admit(address: address, username: username, logger: logger) else { return }
        self.lockouts.lock(key, seconds: wait)
        logger.notice("login throttled", metadata: ["address": "\(address)", "username": "\(username)", "retry_after_s": "\(wait)"])
        throw await self.refusal(wait)
    }

    /// The 429, after `refusalDelay` (its `Retry-After` is counted from the decision, so it errs on the long side).
    func refusal(_ wait: Int) async -> AppError {
        if self.refusalDelay > .zero { try? await Task.sleep(for: self.refusalDelay) }
        return AppError(.tooManyRequests, "Too many failed login attempts, try again in \(wait) seconds", headers: [.retryAfter: String(wait)])
    }

    func succeeded(address: String, username: String, logger: Logger) async throws {
        try await self.repository.succeeded(address: address, username: username, logger: logger)
    }

    func failed(address: String, username: String, logger: Logger) async throws {
        try await self.repository.failed(address: address, username: username, logger: logger)
    }

    func abandoned(address: String, username: String, logger: Logger) async throws {
        try await self.repository.abandoned(address: address, username: username, logger: logger)
    }
}

/// `TRUSTED_PROXIES`: the peers whose `X-Forwarded-For` is believed (IP addresses, CIDR networks, and `unix` for
/// peers on a Unix domain socket such as a local nginx). Any other peer is the client itself, whatever it sends.
public struct TrustedProxies: Sendable, Equatable {
    struct Network: Sendable, Equatable {
        let bytes: [UInt8]
        let prefix: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == self.bytes.count else { return false }
            var left = self.prefix
            for (a, b) in zip(address, self.bytes) {
                guard left > 0 else { return true }
                let mask: UInt8 = left >= 8 ? 0xFF : ~(0xFF >> UInt8(left))
                if a & mask != b & mask { return false }
                left -= 8
            }
            return true
        }
    }

    var networks: [Network] = []
    var unixSockets = false

    public init() {}

    /// A comma-separated list such as `127.0.0.1, 10.0.0.0/8, ::1, unix`.
    public init(parsing text: String) throws {
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            if item.lowercased() == "unix" {
                self.unixSockets = true
                continue
            }
            let parts = item.split(separator: "/", maxSplits: 1).map(String.init)
            guard let bytes = Self.parseIP(parts[0]) else {
                throw ConfigurationError("TRUSTED_PROXIES: '\(item)' is not an IP address, a CIDR network or 'unix'")
            }
            let prefix = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
            guard let prefix, (0...(bytes.count * 8)).contains(prefix) else {
                throw ConfigurationError("TRUSTED_PROXIES: '\(item)' has a bad prefix length")
            }
            self.networks.append(Network(bytes: bytes, prefix: prefix))
        }
    }

    func trusts(ip bytes: [UInt8]) -> Bool { self.networks.contains { $0.contains(bytes) } }

    /// The client's address: the peer, or, when the peer is a trusted proxy, the rightmost `X-Forwarded-For` entry that
    /// is not itself a trusted proxy (entries further left were written by the client and prove nothing).
    func clientAddress(peer: SocketAddress?, forwardedFor: [String]) -> String {
        var client: String
        var trusted: Bool
        switch peer {
        case .v4, .v6:
            let text = peer?.ipAddress ?? "unknown"
            let bytes = Self.parseIP(text) ?? []
            client = Self.format(bytes) ?? text
            trusted = self.trusts(ip: bytes)
        case .unixDomainSocket:
            client = "unix"
            trusted = self.unixSockets
        case nil:
            client = "unknown"
            trusted = false
        }
        guard trusted else { return client }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard let bytes = Self.parseIP(Self.stripPort(hop)), let text = Self.format(bytes) else { return client }
            client = text
            if !self.trusts(ip: bytes) { return client }
        }
        return client
    }

    /// `[::1]:80` → `::1`, `1.2.3.4:80` → `1.2.3.4`; anything else unchanged.
    static func stripPort(_ hop: String) -> String {
        if hop.hasPrefix("["), let close = hop.firstIndex(of: "]") { return String(hop[hop.index(after: hop.startIndex)..<close]) }
        if hop.filter({ $0 == ":" }).count == 1, let colon = hop.firstIndex(of: ":") { return String(hop[..<colon]) }
        return hop
    }

    /// 4 or 16 bytes; an IPv4-mapped IPv6 address is read as its IPv4 address.
    static func parseIP(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return Array(bytes[12...]) }
        return bytes
    }

    static func format(_ bytes: [UInt8]) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        let ok = bytes.withUnsafeBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil }
        return ok ? String(cString: buffer) : nil
    }
}

/// The lockouts one server has answered, until they run out (bounded: emptied when full).
final class LockoutCache: Sendable {
    private let until = Mutex<[String: ContinuousClock.Instant]>([:])
    let capacity = 100_000

    static func key(address: String, username: String) -> String { address + "\u{0}" + username }

    /// Whole seconds left of a lockout of `key` (at least 1), nil when none holds.
    func remaining(_ key: String) -> Int? {
        let now = ContinuousClock.now
        return self.until.withLock { until -> Int? in
            guard let end = until[key] else { return nil }
            guard end > now else {
                until.removeValue(forKey: key)
                return nil
            }
            let left = end - now
            return max(1, Int(left.timeInterval.rounded(.up)))
        }
    }

    func lock(_ key: String, seconds: Int) {
        let end = ContinuousClock.now + .seconds(seconds)
        self.until.withLock { until in
            if until.count >= self.capacity { until.removeAll(keepingCapacity: true) }
            until[key] = end
        }
    }
}
