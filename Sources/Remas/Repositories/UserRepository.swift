import Logging
import PostgresNIO

/// Users: raw SQL on `users`, wire objects built by PostgreSQL.
///
/// A concrete struct, not a protocol plus implementation: our own SQL is only ever tested against PostgreSQL, so a
/// second conformer would never exist.
struct UserRepository: Sendable {
    let db: Database

    /// Admin = the user's group is Administrators or descends from it. The walk is bounded, so even a corrupt tree cannot hang it.
    static let isAdminSQL = """
        EXISTS (WITH RECURSIVE chain(id, parent_id, depth) AS (
            SELECT g.id, g.parent_id, 0 FROM groups g WHERE g.id = u.group_id
            UNION ALL
            SELECT g.id, g.parent_id, c.depth + 1 FROM groups g JOIN chain c ON g.id = c.parent_id WHERE c.depth < 256)
          SELECT 1 FROM chain WHERE chain.id = \(SeededGroup.administrators.rawValue))
        """

    /// Every user, as `GET /user` answers them.
    func list(_ window: ListWindow) -> ListPages<UserList> {
        ListPages(db: self.db, window: window)
    }

    /// One user's document (`GET`, `PUT` and `POST /user` answer the same); nil when there is no such user.
    func json(id: Int, logger: Logger) async throws -> String? {
        try await self.db.json(UserJSONStatement(id: id), logger: logger)
    }

    /// One user's document as `GET /user/{id}` answers it, through this replica's copies: a kept copy that the
    /// database confirms (one probe of the change counters, `UserDocumentCache.confirm`) is sent as it is; otherwise
    /// the document is built, with its validator in the same statement (one snapshot), and kept. nil when there is no
    /// such user.
    func document(id: Int, cache: UserDocumentCache, logger: Logger) async throws -> ByteBuffer? {
        if let kept = cache.entry(id) {
            let now = try await cache.confirm(id, in: self.db, logger: logger)
            if kept.isCurrent(changes: now.changes, now: now.clock) { return kept.body }
        }
        guard let built = try await self.db.run(UserDocumentStatement(id: id), logger: logger).first else { return nil }
        cache.store(id, built)
        return built.body
    }

    struct Credentials {
        let id: Int
        let username: String
        let passwordHash: String
        let isAdmin: Bool
        /// Goes into the tokens issued for the user (migration 0004).
        let tokenEpoch: Int
    }

    func credentials(username: String, logger: Logger) async throws -> Credentials? {
        let rows = try await self.db.query(
            "SELECT u.id, u.username, u.password, \(unescaped: Self.isAdminSQL), u.token_epoch FROM users u WHERE u.username = \(username)",
            logger: logger)
        guard let row = rows.first else { return nil }
        let (id, name, hash, admin, epoch) = try row.decode((Int, String, String, Bool, Int).self)
        return Credentials(id: id, username: name, passwordHash: hash, isAdmin: admin, tokenEpoch: epoch)
    }

    func credentials(id: Int, logger: Logger) async throws -> Credentials? {
        let rows = try await self.db.query(
            "SELECT u.id, u.username, u.password, \(unescaped: Self.isAdminSQL), u.token_epoch FROM users u WHERE u.id = \(id)",
            logger: logger)
        guard let row = rows.first else { return nil }
        let (id, name, hash, admin, epoch) = try row.decode((Int, String, String, Bool, Int).self)
        return Credentials(id: id, username: name, passwordHash: hash, isAdmin: admin, tokenEpoch: epoch)
    }

    /// Sets a password and ends the user's sessions (the trigger of migration 0004 moves the user's epoch on, which
    /// also ends tokens without a session). With `keeping`, that one session is carried over to the new epoch: the
    /// user's own change of password keeps the session that made it. False when the user does not exist.
    func setPassword(id: Int, hash: String, keeping session: Int64? = nil, logger: Logger) async throws -> Bool {
        try await self.db.execute(
            """
            WITH u AS (UPDATE users SET password = \(hash) WHERE id = \(id) RETURNING id, token_epoch),
            kept AS (UPDATE sessions s SET token_epoch = u.token_epoch FROM u WHERE s.id = \(session ?? 0) AND s.user_id = u.id),
            gone AS (DELETE FROM sessions s USING u WHERE s.user_id = u.id AND s.id <> \(session ?? 0))
            SELECT id FROM u
            """, logger: logger) > 0
    }

    /// Every admin's id (the Administrators group and the groups below it), the recipients of operational notices.
    func adminIDs(on executor: any SQLExecutor, logger: Logger) async throws -> [Int] {
        try await executor.query("SELECT u.id FROM users u WHERE \(unescaped: Self.isAdminSQL) ORDER BY u.id", logger: logger)
            .map { try $0.decode(Int.self) }
    }

    func exists(id: Int, on executor: (any SQLExecutor)? = nil, logger: Logger) async throws -> Bool {
        try await (executor ?? self.db).exists("SELECT 1 FROM users WHERE id = \(id)", logger: logger)
    }

    /// Moves the user into the group; false when there is no such user.
    func move(_ id: Int, toGroup groupID: Int, logger: Logger) async throws -> Bool {
        try await withConflictMapping("update", "user") {
            try await self.db.execute("UPDATE users SET group_id = \(groupID) WHERE id = \(id) RETURNING id", logger: logger) > 0
        }
    }

    /// The user's group and whether its members share statistics; nil when there is no such user.
    func membership(ofUser id: Int, logger: Logger) async throws -> (groupID: Int, sharesStatistics: Bool)? {
        let rows = try await self.db.query(
            "SELECT g.id, g.users_share_statistics FROM users u JOIN groups g ON g.id = u.group_id WHERE u.id = \(id)", logger: logger)
        return try rows.first.map { try $0.decode((Int, Bool).self) }
    }

    struct NewUser {
        var name: String?
        var surname: String?
        var uid: Int
        var username: String
        var email: String
        var passwordHash: String
        var groupID: Int
    }

    func create(_ user: NewUser, logger: Logger) async throws -> String {
        try await withConflictMapping("create", "user") {
            try await self.db.text(
                """
                WITH u AS (INSERT INTO users (name, surname, uid, username, email, password, group_id)
                           VALUES (\(user.name), \(user.surname), \(user.uid), \(user.username), \(user.email), \(user.passwordHash), \(user.groupID))
                           RETURNING *)
                SELECT \(unescaped: JSONSQL.userFull("u"))::text FROM u
                """, logger: logger)!
        }
    }

    func uid(ofUser id: Int, logger: Logger) async throws -> Int? {
        try await self.db.int("SELECT uid FROM users WHERE id = \(id)", logger: logger)
    }

    func update(id: Int, name: String?, surname: String?, email: String, uid: Int, logger: Logger) async throws -> Bool {
        try await withConflictMapping("update", "user") {
            try await self.db.execute(
                "UPDATE users SET name = \(name), surname = \(surname), email = \(email), uid = \(uid) WHERE id = \(id) RETURNING id",
                logger: logger) > 0
        }
    }

    func delete(id: Int, logger: Logger) async throws -> Bool {
        try await self.db.execute("DELETE FROM users WHERE id = \(id) RETURNING id", logger: logger) > 0
    }
}

enum UserList: ListDefinition {
    static let pageSQL = JSONSQL.listPage(JSONSQL.userFull("u"), table: "users", alias: "u")
    /// A user embeds all their tasks.
    static let pageRows: Int64 = 50
}

struct UserJSONStatement: JSONByIDStatement {
    static let sql = "SELECT \(JSONSQL.userFull("u"))::text FROM users u WHERE u.id = $1"
    let id: Int
}

/// The validator of a user's document (`UserDocumentCache`): the sum of the user's change counters (scope 'o', their
/// tasks, migration 0012; scope 'u', the rest of the document, migration 0015; a probe of one index) and the clock
/// statuses follow, in microseconds.
enum UserDocumentSQL {
    /// The sum of the counters of the user whose id is `user`.
    static func changes(_ user: String) -> String {
        "(SELECT COALESCE(sum(x.changes), 0)::int8 FROM calendar_changes x WHERE x.scope IN ('o', 'u') AND x.key = \(user))"
    }
    static func micros(_ instant: String) -> String { "(extract(epoch FROM \(instant)) * 1000000)::int8" }
    /// The first start or end of one of the user's tasks after now (two probes of the owner's start and end indexes).
    static let nextStatusChange = micros(
        """
        LEAST((SELECT min(t.start_time) FROM tasks t WHERE t.owner_id = u.id AND t.start_time > localtimestamp),\
        (SELECT min(t.end_time) FROM tasks t WHERE t.owner_id = u.id AND t.end_time > localtimestamp))
        """)
}

/// The validators of several users' documents, one row per id in the ids' order, read in one snapshot (a batch of
/// `UserDocumentCache.confirm`).
struct UserDocumentValidatorsStatement: ByIDsStatement {
    typealias Row = UserDocumentCache.Validator
    static let sql = """
        SELECT \(UserDocumentSQL.changes("k.id")), \(UserDocumentSQL.micros("localtimestamp"))
        FROM unnest($1::int4[]) WITH ORDINALITY AS k(id, n) ORDER BY k.n
        """
    let ids: [Int32]

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (changes, clock) = try row.decode((Int64, Int64).self)
        return .init(changes: changes, clock: clock)
    }
}

/// A user's document with its validator, read in one statement.
struct UserDocumentStatement: ByIDStatement {
    typealias Row = UserDocumentCache.Entry
    static let sql = """
        SELECT \(UserDocumentSQL.changes("$1")), \(UserDocumentSQL.micros("localtimestamp")), \(UserDocumentSQL.nextStatusChange),
        \(JSONSQL.userFull("u"))::text FROM users u WHERE u.id = $1
        """
    let id: Int

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (changes, builtAt, changesAt, body) = try row.decode((Int64, Int64, Int64?, ByteBuffer).self)
        return .init(changes: changes, builtAt: builtAt, changesAt: changesAt, body: body)
    }
}
