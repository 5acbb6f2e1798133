import Logging
import PostgresNIO

/// Login sessions (migration 0005): every statement on `sessions`. A session is valid while its row exists and its
/// `token_epoch` equals its user's.
struct SessionRepository: Sendable {
    let db: Database

    /// What a token of `userID` and `session` may rely on; nil when the user does not exist.
    func state(ofUser userID: Int, session: Int64?, logger: Logger) async throws -> TokenRevocation.UserState? {
        let rows = try await self.db.query(
            """
            SELECT u.token_epoch, \(unescaped: UserRepository.isAdminSQL), COALESCE(s.token_epoch = u.token_epoch, false)
            FROM users u LEFT JOIN sessions s ON s.id = \(session ?? 0) AND s.user_id = u.id
            WHERE u.id = \(userID)
            """, logger: logger)
        return try rows.first.map { row in
            let (epoch, admin, live) = try row.decode((Int, Bool, Bool).self)
            return TokenRevocation.UserState(epoch: epoch, isAdmin: admin, sessionLive: live)
        }
    }

    /// Starts a session for the user at their current epoch, valid as long as a refresh token issued now; nil when the
    /// user is gone. The same statement removes a few sessions that ran out (a session nobody refreshed is clutter).
    func start(userID: Int, lifetimeSeconds: Int, logger: Logger) async throws -> Int64? {
        try await self.db.query(
            """
            WITH expired AS (
                DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < now() ORDER BY expires_at LIMIT 100))
            INSERT INTO sessions (user_id, token_epoch, expires_at)
            SELECT u.id, u.token_epoch, now() + make_interval(secs => \(lifetimeSeconds)) FROM users u WHERE u.id = \(userID)
            RETURNING id
            """, logger: logger
        ).first?.decode(Int64.self)
    }

    /// A refresh: the session lives as long as the new refresh token.
    func extend(_ session: Int64, userID: Int, lifetimeSeconds: Int, logger: Logger) async throws {
        try await self.db.query(
            """
            UPDATE sessions SET expires_at = greatest(expires_at, now() + make_interval(secs => \(lifetimeSeconds)))
            WHERE id = \(session) AND user_id = \(userID)
            """, logger: logger)
    }

    /// Logout: ends one session of the user.
    func end(_ session: Int64, userID: Int, logger: Logger) async throws {
        try await self.db.query("DELETE FROM sessions WHERE id = \(session) AND user_id = \(userID)", logger: logger)
    }
}
