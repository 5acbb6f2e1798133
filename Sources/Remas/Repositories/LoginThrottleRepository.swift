import Logging
import PostgresNIO

/// Failed logins per client address and username and per client address (migration 0005): every statement on
/// `login_throttle`. The rules are `LoginThrottleSettings`'s.
struct LoginThrottleRepository: Sendable {
    let db: Database
    let settings: LoginThrottleSettings

    /// Usernames are counted by their first 255 characters (an index entry must stay small; a longer name gains nothing).
    static func key(_ username: String) -> String { String(username.prefix(255)) }
    /// An attempt still "checking its password" after this long belonged to a replica that died: it no longer counts.
    static let pendingSeconds = 30.0

    /// Lets one attempt of `username` from `address` check its password, or answers how many seconds to wait. A
    /// row below its limit lets an attempt in while its failures and the attempts in progress stay below the limit; a
    /// locked-out row lets nothing in until the lockout ran out, then one attempt at a time. Both rows are locked
    /// (address first, in every caller) for the decision, so parallel attempts on any replica are decided one after
    /// the other. Times come from the clock when the row is held (`clock_timestamp()`), not from the transaction's
    /// start: a transaction that waited for the lock started before the attempt it waited for.
    func admit(address: String, username: String, logger: Logger) async throws -> Int? {
        let settings = self.settings
        let key = Self.key(username)
        return try await self.db.transaction(logger: logger) { tx -> Int? in
            let rows = try await tx.query(
                """
                INSERT INTO login_throttle (address, scope, username) VALUES (\(address), 'address', ''), (\(address), 'user', \(key))
                ON CONFLICT (address, scope, username) DO UPDATE SET failures = login_throttle.failures
                RETURNING scope = 'user', failures, pending, extract(epoch FROM clock_timestamp() - last_attempt)::float8
                """, logger: logger)
            var wait = 0.0
            for row in rows {
                let (perUser, failures, storedPending, sinceLast) = try row.decode((Bool, Int, Int, Double).self)
                let limit = perUser ? settings.maxFailuresPerUser : settings.maxFailuresPerAddress
                let pending = sinceLast < Self.pendingSeconds ? storedPending : 0
                let since = max(0, sinceLast)
                if failures >= limit {
                    // Locked out until the lockout runs out; then one attempt at a time.
                    let lockout = Double(settings.lockout(failures: failures, limit: limit))
                    wait = max(wait, since < lockout ? lockout - since : (pending > 0 ? 1 : 0))
                } else if failures + pending >= limit {
                    wait = max(wait, 1)  // as many attempts in progress as may still fail: one of them ends soon
                }
            }
            if wait > 0 { return max(1, Int(wait.rounded(.up))) }
            // A row whose window is over starts a new one (nothing is locked, or the answer above would have said so).
            // Rows long over are removed on the way; never waiting for them (SKIP LOCKED) keeps two addresses from
            // deadlocking.
            try await tx.query(
                """
                WITH stale AS (
                    DELETE FROM login_throttle WHERE ctid IN (
                        SELECT ctid FROM login_throttle
                        WHERE last_attempt < now() - make_interval(secs => \(settings.windowSeconds + LoginThrottleSettings.maxLockoutSeconds))
                          AND address <> \(address)
                        LIMIT 100 FOR UPDATE SKIP LOCKED))
                UPDATE login_throttle SET
                    failures = CASE WHEN window_start <= clock_timestamp() - make_interval(secs => \(settings.windowSeconds)) THEN 0 ELSE failures END,
                    window_start = CASE WHEN window_start <= clock_timestamp() - make_interval(secs => \(settings.windowSeconds))
                                        THEN clock_timestamp() ELSE window_start END,
                    pending = CASE WHEN last_attempt < clock_timestamp() - make_interval(secs => \(Self.pendingSeconds)) THEN 1 ELSE pending + 1 END,
                    last_attempt = clock_timestamp()
                WHERE address = \(address) AND ((scope = 'address' AND username = '') OR (scope = 'user' AND username = \(key)))
                """, logger: logger)
            return nil
        }
    }

    /// A wrong password: a failure for the address and for the username there (the lockout runs from now).
    func failed(address: String, username: String, logger: Logger) async throws {
        try await self.finish(address: address, username: username, failed: true, logger: logger)
    }

    /// An attempt that ended without an answer (the database or the hasher failed): it no longer counts as in progress.
    func abandoned(address: String, username: String, logger: Logger) async throws {
        try await self.finish(address: address, username: username, failed: false, logger: logger)
    }

    private func finish(address: String, username: String, failed: Bool, logger: Logger) async throws {
        try await self.db.query(
            """
            UPDATE login_throttle SET pending = greatest(pending - 1, 0),
                failures = failures + \(failed ? 1 : 0),
                last_attempt = CASE WHEN \(failed) THEN clock_timestamp() ELSE last_attempt END
            WHERE address = \(address) AND ((scope = 'address' AND username = '') OR (scope = 'user' AND username = \(Self.key(username))))
            """, logger: logger)
    }

    /// A correct password: the username's count from this address starts afresh; the address's failures stay (one's
    /// own account cannot wipe an address's guesses), only a lockout of the address ends with it.
    func succeeded(address: String, username: String, logger: Logger) async throws {
        try await self.db.query(
            """
            WITH mine AS (
                DELETE FROM login_throttle
                WHERE address = \(address) AND scope = 'user' AND username = \(Self.key(username)))
            UPDATE login_throttle SET pending = greatest(pending - 1, 0), failures = least(failures, \(self.settings.maxFailuresPerAddress - 1))
            WHERE address = \(address) AND scope = 'address' AND username = ''
            """, logger: logger)
    }
}
