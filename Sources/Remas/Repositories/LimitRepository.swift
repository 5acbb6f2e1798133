import Logging
import PostgresNIO

/// Limits and the nodes they apply to (`limits`, `limit_nodes`): every statement on them, and their wire documents.
/// Which limit wins where is resolved by `EffectiveLimits` from the candidates read here.
struct LimitRepository: Sendable {
    let db: Database

    /// What a limit is made of, as `POST`/`PUT /limit` carry it.
    struct Fields: Sendable {
        let id: Int?
        let name: String
        let description: String?
        let amount: Int64
        let userID: Int?
        let groupID: Int?
        let resourceID: Int
        let nodeIDs: [Int]
    }

    func list(_ window: ListWindow) -> ListPages<LimitList> {
        ListPages(db: self.db, window: window)
    }

    /// The limits set on one user (not inherited ones).
    func list(ofUser id: Int, _ window: ListWindow) -> ListPages<UserLimitList> {
        ListPages(db: self.db, key: id, window: window)
    }

    /// The limits set on one group (not inherited ones).
    func list(ofGroup id: Int, _ window: ListWindow) -> ListPages<GroupLimitList> {
        ListPages(db: self.db, key: id, window: window)
    }

    /// One limit's document; nil when there is no such limit.
    func json(id: Int, logger: Logger) async throws -> String? {
        try await self.db.json(LimitStatement(id: id), logger: logger)
    }

    func exists(id: Int, logger: Logger) async throws -> Bool {
        try await self.db.exists("SELECT 1 FROM limits WHERE id = \(id)", logger: logger)
    }

    /// Creates the limit with its nodes in one transaction; 404 for a user, group or resource that does not exist.
    func create(_ limit: Fields, logger: Logger) async throws -> Int {
        try await self.db.transaction(logger: logger) { tx in
            try await self.checkReferences(limit, tx, logger)
            let id = try await withConflictMapping("create", "limit") {
                try await tx.int(
                    """
                    INSERT INTO limits (name, description, amount, user_id, group_id, resource_id)
                    VALUES (\(limit.name), \(limit.description), \(limit.amount), \(limit.userID), \(limit.groupID), \(limit.resourceID))
                    RETURNING id
                    """, logger: logger)!
            }
            try await self.setNodes(id, limit.nodeIDs, tx, logger)
            return id
        }
    }

    /// Replaces the limit and its nodes in one transaction; 404 for the limit or a reference that does not exist.
    func update(id: Int, _ limit: Fields, logger: Logger) async throws {
        try await self.db.transaction(logger: logger) { tx in
            try await self.checkReferences(limit, tx, logger)
            let updated = try await withConflictMapping("update", "limit") {
                try await tx.execute(
                    """
                    UPDATE limits SET name = \(limit.name), description = \(limit.description), amount = \(limit.amount),
                        user_id = \(limit.userID), group_id = \(limit.groupID), resource_id = \(limit.resourceID)
                    WHERE id = \(id) RETURNING id
                    """, logger: logger)
            }
            guard updated > 0 else { throw AppError.notFound("Limit with id \(id) not found!") }
            try await tx.query("DELETE FROM limit_nodes WHERE limit_id = \(id)", logger: logger)
            try await self.setNodes(id, limit.nodeIDs, tx, logger)
        }
    }

    /// False when there is no such limit.
    func delete(id: Int, logger: Logger) async throws -> Bool {
        try await self.db.exists("DELETE FROM limits WHERE id = \(id) RETURNING id", logger: logger)
    }

    /// The user's effective limits (candidates resolved by `EffectiveLimits`); nil when there is no such user.
    func effective(forUser id: Int, logger: Logger) async throws -> EffectiveLimits? {
        try await Self.effective(UserCandidatesStatement(id: id), self.db, logger)
    }

    /// A group's effective limits (its own and its ancestors'); nil when there is no such group.
    func effective(forGroup id: Int, logger: Logger) async throws -> EffectiveLimits? {
        try await Self.effective(GroupCandidatesStatement(id: id), self.db, logger)
    }

    private static func effective<S: CandidatesStatement>(_ statement: S, _ executor: any SQLExecutor, _ logger: Logger) async throws
        -> EffectiveLimits?
    {
        var exists = false
        var candidates: [EffectiveLimits.Limit] = []
        for limit in try await executor.run(statement, logger: logger) {
            if limit.depth < 0 { exists = true } else { candidates.append(limit) }
        }
        return exists ? EffectiveLimits(candidates: candidates) : nil
    }

    /// The user's reservations that are not over, within the window, per node and resource (for `GET /limit/usage`).
    func reservations(ofUser id: Int, from start: LocalDateTime, to end: LocalDateTime, logger: Logger) async throws
        -> [NodeResource: [(start: Int64, end: Int64, amount: Int64)]]
    {
        var reservations: [NodeResource: [(start: Int64, end: Int64, amount: Int64)]] = [:]
        let rows = try await self.db.query(
            """
            SELECT a.node_id, a.resource_id, a.amount,
                   (extract(epoch FROM a.start_time) * 1000000)::int8, (extract(epoch FROM a.end_time) * 1000000)::int8
            FROM allocations a JOIN tasks t ON t.id = a.task_id
            WHERE t.owner_id = \(id) AND a.end_time > \(start.sqlText)::timestamp AND a.start_time < \(end.sqlText)::timestamp
              AND a.end_time > localtimestamp
            """, logger: logger)
        for row in rows {
            let (n, r, amount, s, e) = try row.decode((Int, Int, Int64, Int64, Int64).self)
            reservations[NodeResource(node: n, resource: r), default: []].append((s, e, amount))
        }
        return reservations
    }

    /// The limit's user, group and resource exist (and stay while the transaction runs).
    private func checkReferences(_ limit: Fields, _ tx: LeasedConnection, _ logger: Logger) async throws {
        if let user = limit.userID, !(try await tx.exists("SELECT 1 FROM users WHERE id = \(user) FOR SHARE", logger: logger)) {
            throw AppError.notFound("User with id \(user) not found!")
        }
        if let group = limit.groupID, !(try await tx.exists("SELECT 1 FROM groups WHERE id = \(group) FOR SHARE", logger: logger)) {
            throw AppError.notFound("Group with id \(group) not found!")
        }
        if !(try await tx.exists("SELECT 1 FROM resources WHERE id = \(limit.resourceID) FOR SHARE", logger: logger)) {
            throw AppError.notFound("Resource with id \(limit.resourceID) not found!")
        }
    }

    /// Unknown node ids are dropped silently and duplicates collapse (the original's behaviour).
    private func setNodes(_ limitID: Int, _ nodeIDs: [Int], _ tx: LeasedConnection, _ logger: Logger) async throws {
        guard !nodeIDs.isEmpty else { return }
        try await tx.query(
            """
            INSERT INTO limit_nodes (limit_id, node_id)
            SELECT \(limitID), n.id FROM nodes n WHERE n.id = ANY(\(nodeIDs.map { Int32(truncatingIfNeeded: $0) }))
            ON CONFLICT DO NOTHING
            """, logger: logger)
    }
}

enum LimitList: ListDefinition {
    static let pageSQL = JSONSQL.listPage(JSONSQL.limitResponse("l"), table: "limits", alias: "l")
}

struct LimitStatement: JSONByIDStatement {
    static let sql = "SELECT \(JSONSQL.limitResponse("l"))::text FROM limits l WHERE l.id = $1"
    let id: Int
}

enum UserLimitList: ListDefinition {
    static let pageSQL = JSONSQL.listPage(JSONSQL.limitResponse("l"), table: "limits", alias: "l", where: "l.user_id = $1")
}

enum GroupLimitList: ListDefinition {
    static let pageSQL = JSONSQL.listPage(JSONSQL.limitResponse("l"), table: "limits", alias: "l", where: "l.group_id = $1")
}

// MARK: effective limits

/// Rows: one sentinel with depth -1 when the subject exists, then every candidate limit with its depth (each row led by
/// the subject's id: `LimitRepository.candidatesSQL`).
protocol CandidatesStatement: NamedStatement where Row == EffectiveLimits.Limit {
    var id: Int { get }
}

extension CandidatesStatement {
    static var bindingDataTypes: [PostgresDataType] { [.int4] }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(Int32(truncatingIfNeeded: self.id))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> EffectiveLimits.Limit {
        let (_, id, name, description, amount, user, group, resource, depth, nodes) =
            try row.decode((Int32, Int, String, String?, Int64, Int?, Int?, Int, Int, [Int32]).self)
        return .init(
            id: id, name: name, description: description, amount: amount, userID: user, groupID: group, resourceID: resource,
            depth: depth, nodeIDs: nodes.map(Int.init))
    }
}

extension LimitRepository {
    /// The candidate limits of users or groups (`who`), as rows `(who, id, name, description, amount, user_id,
    /// group_id, resource_id, depth, node_ids)`: one sentinel per subject that exists (depth -1), then the limits of
    /// every group up its chain (depth 1 for its own group) and, with `ownLimits`, those set on the user (depth 0).
    /// `seed` gives `(who, group_id, 1)` per subject, `sentinel` the ids of the subjects that exist, `ownLimits` the
    /// condition on `limits l` of the users' own limits (their `who` is `l.user_id`).
    static func candidatesSQL(seed: String, sentinel: String, ownLimits: String?) -> String {
        let columns = """
            l.id, l.name, l.description, l.amount, l.user_id, l.group_id, l.resource_id
            """
        let nodes = "ARRAY(SELECT ln.node_id FROM limit_nodes ln WHERE ln.limit_id = l.id ORDER BY ln.node_id)"
        // The chain's limits by `limits_group_id_idx` (a lateral probe per group, as in the chain itself).
        var sql = """
            WITH RECURSIVE \(GroupRepository.ancestorChain(seed: seed, carrying: "who"))
            SELECT s.who::int4, 0, '', NULL::varchar, 0::int8, NULL::int4, NULL::int4, 0, -1, ARRAY[]::int4[] FROM (\(sentinel)) s(who)
            UNION ALL
            SELECT c.who::int4, \(columns), c.depth, \(nodes)
            FROM chain c CROSS JOIN LATERAL (SELECT * FROM limits l WHERE l.group_id = c.group_id OFFSET 0) l
            """
        if let ownLimits { sql += "\nUNION ALL\nSELECT l.user_id::int4, \(columns), 0, \(nodes) FROM limits l WHERE \(ownLimits)" }
        return sql
    }
}

struct UserCandidatesStatement: CandidatesStatement {
    static let sql = LimitRepository.candidatesSQL(
        seed: "SELECT u.id, u.group_id, 1 FROM users u WHERE u.id = $1", sentinel: "SELECT id FROM users WHERE id = $1",
        ownLimits: "l.user_id = $1")
    let id: Int
}

struct GroupCandidatesStatement: CandidatesStatement {
    static let sql = LimitRepository.candidatesSQL(
        seed: "SELECT g.id, g.id, 1 FROM groups g WHERE g.id = $1", sentinel: "SELECT id FROM groups WHERE id = $1", ownLimits: nil)
    let id: Int
}
