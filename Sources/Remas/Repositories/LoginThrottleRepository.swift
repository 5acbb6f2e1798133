import Logging
import PostgresNIO

/// Failed logins per client address and username and per client address (migration 0005): every statement on
/// `login_throttle`. The rules are `LoginThrottleSettings`'s.
struct LoginThrottleRepository: Sendable {
    let db: Database
    let settings: LoginThrottleSettings

    /// Usernames are counted by their first 255 characters (an index entry must stay small; a longer name gains nothing).
    static let keyLength = 255

    /// Counts one attempt of `username` from `address` before its password is checked, unless the address, or the
    /// address with this username, is locked out: then nothing is counted and the result is the number of seconds to
    /// wait. Both rows are locked (address first, in every caller) for the decision, so parallel attempts on any
    /// replica are counted one after the other and never more than the limit of them get past. Attempts are timed by
    /// the clock when the row is held (`clock_timestamp()`), not by the transaction's start: a transaction that waited
    /// for the lock started before the attempt it waited for.
    func admit(address: String, username: String, logger: Logger) async throws -> Int? {
        let settings = self.settings
        return try await self.db.transaction(logger: logger) { tx -> Int? in
            let rows = try await tx.query(
                """
                INSERT INTO login_throttle (address, scope, username)
                VALUES (\(address), 'address', ''), (\(address), 'user', left(\(username), \(unescaped: String(Self.keyLength))))
                ON CONFLICT (address, scope, username) DO UPDATE SET failures = login_throttle.failures
                RETURNING scope = 'user', failures, extract(epoch FROM clock_timestamp() - last_attempt)::float8
                """, logger: logger)
            var wait = 0.0
            for row in rows {
                let (perUser, failures, sinceLast) = try row.decode((Bool, Int, Double).self)
                let lockout = settings.lockout(failures: failures, limit: perUser ? settings.maxFailuresPerUser : settings.maxFailuresPerAddress)
                wait = max(wait, Double(lockout) - max(0, sinceLast))
            }
            if wait > 0 { return max(1, Int(wait.rounded(.up))) }
            // A row whose window is over starts a new one (it is not locked, or the lockout would have answered). Rows
            // long over are removed on the way; never waiting for them (SKIP LOCKED) keeps two addresses from deadlocking.
            try await tx.query(
                """
                WITH stale AS (
                    DELETE FROM login_throttle WHERE ctid IN (
                        SELECT ctid FROM login_throttle
                        WHERE last_attempt < now() - make_interval(secs => \(settings.windowSeconds + LoginThrottleSettings.maxLockoutSeconds))
                          AND address <> \(address)
                        LIMIT 100 FOR UPDATE SKIP LOCKED))
                UPDATE login_throttle SET
                    failures = CASE WHEN window_start <= now() - make_interval(secs => \(settings.windowSeconds)) THEN 1 ELSE failures + 1 END,
                    window_start = CASE WHEN window_start <= now() - make_interval(secs => \(settings.windowSeconds)) THEN now() ELSE window_start END,
                    last_attempt = clock_timestamp()
                WHERE address = \(address)
                  AND ((scope = 'address' AND username = '') OR (scope = 'user' AND username = left(\(username), \(unescaped: String(Self.keyLength)))))
                """, logger: logger)
            return nil
        }
    }

    /// A correct password: the username's count from this address starts afresh, and the address gets its one attempt
    /// back (only back to the edge of its limit: a login with an account of one's own cannot wipe an address's guesses).
    func succeeded(address: String, username: String, logger: Logger) async throws {
        try await self.db.query(
            """
            WITH mine AS (
                DELETE FROM login_throttle WHERE address = \(address) AND scope = 'user' AND username = left(\(username), \(unescaped: String(Self.keyLength))))
            UPDATE login_throttle SET failures = greatest(least(failures - 1, \(self.settings.maxFailuresPerAddress - 1)), 0)
            WHERE address = \(address) AND scope = 'address' AND username = ''
            """, logger: logger)
    }
}
