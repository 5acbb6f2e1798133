import Crypto
import Foundation
import Logging
import PostgresNIO

/// Applies the numbered plain-SQL files of `Migrations/` in order.
///
/// One transaction per file, a `schema_migrations` table with SHA-256 checksums, a session advisory lock so two
/// starting replicas cannot both migrate, and a refusal, naming the file, when history and files disagree.
///
/// A file whose first line is `-- remas:no-transaction` runs statement by statement outside a transaction (for
/// `CREATE INDEX CONCURRENTLY`, which lets bookings go on while an index builds on a large table); it is recorded once
/// all its statements succeeded, so each of them must be safe to run again (`IF EXISTS`, `IF NOT EXISTS`).
///
/// A transactional file waits at most `lockTimeout` for each lock it takes (`SET LOCAL lock_timeout`): a DDL statement
/// queued behind a long reader would otherwise make every booking queue behind it. When a lock is not granted in time
/// the file is rolled back and tried again after `retryPause`, up to `attempts` times. (Files outside a transaction
/// get no lock timeout: `CREATE INDEX CONCURRENTLY` waits for older transactions without blocking writers, and a timeout
/// there would leave an invalid index behind.)
public struct Migrator: Sendable {
    public struct File: Sendable, Equatable {
        public let version: String
        public let name: String
        public let sql: String
        public var checksum: String { SHA256.hash(data: Data(self.sql.utf8)).map { String(format: "%02x", $0) }.joined() }
    }

    public enum MigrationError: Error, CustomStringConvertible {
        case badFileName(String)
        case duplicateVersion(String)
        case unknownApplied(String)
        case checksumMismatch(String)
        case failed(file: String, statement: Int, reason: String)
        case noDirectory(String)
        /// A lock was not granted within `lockTimeout` (the file is retried).
        case lockNotGranted(statement: Int)

        public var description: String {
            switch self {
            case .badFileName(let f): "migration file name must look like NNNN_verb_noun.sql: \(f)"
            case .duplicateVersion(let v): "two migration files share the version \(v)"
            case .unknownApplied(let v): "the database has migration \(v) applied, but no such file exists: refusing to continue"
            case .checksumMismatch(let f): "migration \(f) was changed after it was applied (checksum differs): add a new file instead"
            case .failed(let f, let n, let r): "migration \(f) failed at statement \(n): \(r)"
            case .noDirectory(let p): "migrations directory not found: \(p)"
            case .lockNotGranted(let n): "a lock was not granted in time at statement \(n)"
            }
        }
    }

    public let files: [File]
    public var lockTimeout: Duration = .milliseconds(500)
    public var retryPause: Duration = .seconds(1)
    public var attempts = 120
    /// Apply nothing after this version (`remas migrate --to`); later files still count as known, so a database that
    /// is already further along is not refused.
    public var lastVersion: String?

    public init(files: [File]) { self.files = files }

    /// Loads `NNNN_name.sql` files from a directory, sorted by name.
    public init(directory: String) throws {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory) else { throw MigrationError.noDirectory(directory) }
        var files: [File] = []
        var seen = Set<String>()
        for name in names.sorted() where name.hasSuffix(".sql") {
            guard let underscore = name.firstIndex(of: "_"), name[..<underscore].count == 4, name[..<underscore].allSatisfy(\.isNumber)
            else { throw MigrationError.badFileName(name) }
            let version = String(name[..<underscore])
            guard seen.insert(version).inserted else { throw MigrationError.duplicateVersion(version) }
            let sql = try String(contentsOfFile: directory + "/" + name, encoding: .utf8)
            files.append(File(version: version, name: name, sql: sql))
        }
        self.files = files
    }

    /// Applies every pending file; returns the names of the files applied (empty when up to date).
    @discardableResult
    public func migrate(db: Database, logger: Logger) async throws -> [String] {
        try await db.pool.withConnection { connection in
            let connection = LeasedConnection(connection: connection)
            // One lock per schema: replicas sharing a schema wait for each other, parallel test schemas do not. A waiting
            // replica polls instead of blocking in pg_advisory_lock: a statement blocked there holds a snapshot, and
            // CREATE INDEX CONCURRENTLY in the migrating replica would wait for that snapshot to go (a deadlock).
            var waited = false
            while try await connection.query(
                "SELECT pg_try_advisory_lock(hashtext('remas.migrate.' || current_schema()))", logger: logger
            ).first?.decode(Bool.self) != true {
                if !waited { logger.info("waiting for another process's migration") }
                waited = true
                try await Task.sleep(for: .milliseconds(100))
            }
            do {
                let applied = try await self.run(connection: connection, logger: logger)
                try await connection.query("SELECT pg_advisory_unlock(hashtext('remas.migrate.' || current_schema()))", logger: logger)
                return applied
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(hashtext('remas.migrate.' || current_schema()))", logger: logger)
                throw error
            }
        }
    }

    func run(connection: LeasedConnection, logger: Logger) async throws -> [String] {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())
            """, logger: logger)
        var history: [String: String] = [:]
        for row in try await connection.query("SELECT version, checksum FROM schema_migrations", logger: logger) {
            let (version, checksum) = try row.decode((String, String).self)
            history[version] = checksum
        }
        let byVersion = Dictionary(uniqueKeysWithValues: self.files.map { ($0.version, $0) })
        for version in history.keys.sorted() where byVersion[version] == nil {
            throw MigrationError.unknownApplied(version)
        }
        var appliedNow: [String] = []
        for file in self.files where self.lastVersion.map({ file.version <= $0 }) ?? true {
            if let checksum = history[file.version] {
                guard checksum == file.checksum else { throw MigrationError.checksumMismatch(file.name) }
                continue
            }
            let transactional = !file.sql.hasPrefix("-- remas:no-transaction")
            var attempt = 1
            while true {
                do {
                    try await self.apply(file, transactional: transactional, on: connection, logger: logger)
                    break
                } catch MigrationError.lockNotGranted(let statement) where attempt < self.attempts {
                    logger.warning(
                        "migration waited too long for a lock; rolled back, trying again",
                        metadata: ["file": "\(file.name)", "statement": "\(statement)", "attempt": "\(attempt)"])
                    attempt += 1
                    try await Task.sleep(for: self.retryPause)
                } catch MigrationError.lockNotGranted(let statement) {
                    throw MigrationError.failed(
                        file: file.name, statement: statement,
                        reason: "a lock was not granted within \(self.lockTimeout) in \(self.attempts) attempts (long transactions hold it)")
                }
            }
            logger.info("applied migration", metadata: ["file": "\(file.name)"])
            appliedNow.append(file.name)
        }
        return appliedNow
    }

    /// Runs one file's statements and records it; a transactional file is rolled back whole on any error.
    private func apply(_ file: File, transactional: Bool, on connection: LeasedConnection, logger: Logger) async throws {
        if transactional {
            try await connection.query("BEGIN", logger: logger)
            let milliseconds = max(1, Int(self.lockTimeout.timeInterval * 1000))
            try await connection.query(PostgresQuery(unsafeSQL: "SET LOCAL lock_timeout = '\(milliseconds)ms'"), logger: logger)
        }
        do {
            for (index, statement) in SQLSplitter.split(file.sql).enumerated() {
                do {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                } catch let error as PSQLError where transactional && error.sqlState == "55P03" {
                    throw MigrationError.lockNotGranted(statement: index + 1)
                } catch let error as PSQLError {
                    throw MigrationError.failed(file: file.name, statement: index + 1, reason: error.serverInfo?[.message] ?? "\(error)")
                }
            }
            try await connection.query(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (\(file.version), \(file.name), \(file.checksum))",
                logger: logger)
            if transactional { try await connection.query("COMMIT", logger: logger) }
        } catch {
            if transactional { _ = try? await connection.query("ROLLBACK", logger: logger) }
            throw error
        }
    }
}
