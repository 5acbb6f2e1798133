import Foundation
import HummingbirdBcrypt
import Logging

/// The initial data: the seeded groups (`SeededGroup`) and the administrator (`SeededUser`). Idempotent.
public enum Seeder {
    public struct Result: Sendable {
        /// Set when the administrator was created now; the password to print once.
        public let createdAdminPassword: String?
    }

    public static func seed(db: Database, adminPassword: String?, bcryptCost: UInt8, logger: Logger) async throws -> Result {
        try await db.transaction(logger: logger) { tx in
            try await tx.query("SELECT pg_advisory_xact_lock(hashtext('remas.seed.' || current_schema()))", logger: logger)
            for group in SeededGroup.allCases {
                try await tx.query(
                    """
                    INSERT INTO groups (id, name, description, users_share_statistics, parent_id)
                    VALUES (\(group.rawValue), \(group.name), NULL, true, \(group.parent?.rawValue))
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
            }
            try await tx.query(
                "SELECT setval(pg_get_serial_sequence('groups', 'id'), GREATEST((SELECT max(id) FROM groups), \(SeededGroup.lastID)))",
                logger: logger)
            var created: String?
            let admin = SeededUser.administratorID
            if !(try await tx.exists("SELECT 1 FROM users WHERE id = \(admin)", logger: logger)) {
                let password = adminPassword.flatMap { $0.isEmpty ? nil : $0 } ?? PasswordHasher.randomPassword()
                let hash = Bcrypt.hash(password, cost: bcryptCost)
                let inserted = try await tx.execute(
                    """
                    INSERT INTO users (id, name, surname, uid, username, password, email, group_id)
                    VALUES (\(admin), 'System', 'Administrator', 0, 'administrator', \(hash), 'administrator@localhost',
                            \(SeededGroup.administrators.rawValue))
                    ON CONFLICT DO NOTHING RETURNING id
                    """, logger: logger)
                if inserted > 0 { created = password }
            }
            try await tx.query(
                "SELECT setval(pg_get_serial_sequence('users', 'id'), GREATEST((SELECT max(id) FROM users), \(admin)))", logger: logger)
            return Result(createdAdminPassword: created)
        }
    }

}

/// Operator helper behind `remas set-password`.
public enum PasswordAdmin {
    public static func setPassword(db: Database, username: String, password: String, cost: UInt8, logger: Logger) async throws -> Bool {
        let hash = Bcrypt.hash(password, cost: cost)
        return try await db.execute("UPDATE users SET password = \(hash) WHERE username = \(username) RETURNING id", logger: logger) > 0
    }
}
