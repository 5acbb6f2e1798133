import Logging
import PostgresNIO

/// Groups and the group tree.
struct GroupRepository: Sendable {
    let db: Database

    func exists(id: Int, on executor: (any SQLExecutor)? = nil, logger: Logger) async throws -> Bool {
        try await (executor ?? self.db).exists("SELECT 1 FROM groups WHERE id = \(id)", logger: logger)
    }

    /// Every group, as `GET /group` answers them.
    func list(_ window: ListWindow) -> ListPages<GroupList> {
        ListPages(db: self.db, window: window)
    }

    func json(id: Int, on executor: (any SQLExecutor)? = nil, logger: Logger) async throws -> String? {
        try await (executor ?? self.db).text("SELECT \(unescaped: JSONSQL.groupResponse("g"))::text FROM groups g WHERE g.id = \(id)", logger: logger)
    }

    func create(name: String, description: String?, shareStatistics: Bool, parentID: Int?, logger: Logger) async throws -> String {
        try await withConflictMapping("create", "group") {
            try await self.db.text(
                """
                WITH g AS (INSERT INTO groups (name, description, users_share_statistics, parent_id)
                           VALUES (\(name), \(description), \(shareStatistics), \(parentID)) RETURNING *)
                SELECT \(unescaped: JSONSQL.groupResponse("g"))::text FROM g
                """, logger: logger)!
        }
    }

    func update(id: Int, name: String, description: String?, shareStatistics: Bool, logger: Logger) async throws -> Bool {
        try await withConflictMapping("update", "group") {
            try await self.db.execute(
                """
                UPDATE groups SET name = \(name), description = \(description), users_share_statistics = \(shareStatistics)
                WHERE id = \(id) RETURNING id
                """, logger: logger) > 0
        }
    }

    /// `chain([carried,] group_id, depth)`: the groups `seed` selects (as `[carried,] group_id, depth`) and all their
    /// ancestors up to the root. The walk is bounded, so even a corrupt tree cannot hang it. Effective limits,
    /// notification lists and reminder receivers all walk the tree up with it. Each step is a primary-key probe (the
    /// `OFFSET 0` keeps the lateral subquery from being flattened into a join, which the planner, guessing a large
    /// chain, answered with a hash of the whole `groups` table on every step).
    static func ancestorChain(seed: String, carrying carried: String? = nil) -> String {
        let carry = carried.map { ($0 + ", ", "c.\($0), ") } ?? ("", "")
        return """
            chain(\(carry.0)group_id, depth) AS (
                \(seed)
                UNION ALL
                SELECT \(carry.1)g.parent_id, c.depth + 1
                FROM chain c CROSS JOIN LATERAL (SELECT g.parent_id FROM groups g WHERE g.id = c.group_id OFFSET 0) g
                WHERE g.parent_id IS NOT NULL AND c.depth < 256)
            """
    }

    /// Ids of every member of the group and of all groups below it.
    static let subtreeMembersSQL = """
        WITH RECURSIVE sub(id, depth) AS (
            SELECT $1::int, 0
            UNION ALL SELECT g.id, s.depth + 1 FROM groups g JOIN sub s ON g.parent_id = s.id WHERE s.depth < 256)
        SELECT u.id FROM users u WHERE u.group_id IN (SELECT id FROM sub) ORDER BY u.id
        """

    func subtreeMembers(of groupID: Int, on executor: any SQLExecutor, logger: Logger) async throws -> [Int] {
        var bindings = PostgresBindings()
        bindings.append(groupID)
        return try await executor.query(PostgresQuery(unsafeSQL: Self.subtreeMembersSQL, binds: bindings), logger: logger)
            .map { try $0.decode(Int.self) }
    }

    /// Serialises every change of the group tree (re-parenting, deletion) across all replicas.
    func lockTree(_ tx: LeasedConnection, logger: Logger) async throws {
        try await tx.query("SELECT pg_advisory_xact_lock(hashtext('remas.group-tree'))", logger: logger)
    }

    /// Deletes a group: members move to its parent (or Users), children are re-parented to its parent, its limits and
    /// notification links go with it. Returns the users whose inherited settings changed, or nil if it did not exist.
    func delete(id: Int, logger: Logger) async throws -> [Int]? {
        try await self.db.transaction(logger: logger) { tx in
            try await self.lockTree(tx, logger: logger)
            guard let parent = try await tx.text("SELECT COALESCE(parent_id::text, '') FROM groups WHERE id = \(id) FOR UPDATE", logger: logger)
            else { return nil }
            let parentID = Int(parent)
            let affected = try await self.subtreeMembers(of: id, on: tx, logger: logger)
            try await tx.query("UPDATE users SET group_id = \(parentID ?? SeededGroup.users.rawValue) WHERE group_id = \(id)", logger: logger)
            try await tx.query("UPDATE groups SET parent_id = \(parentID) WHERE parent_id = \(id)", logger: logger)
            try await tx.query("DELETE FROM groups WHERE id = \(id)", logger: logger)
            return affected
        }
    }

    enum ParentChange { case ok(affected: [Int]), groupMissing, parentMissing, defaultGroup, cycle }

    func changeParent(groupID: Int, parentID: Int, logger: Logger) async throws -> ParentChange {
        try await self.db.transaction(logger: logger) { tx in
            try await self.lockTree(tx, logger: logger)
            guard try await self.exists(id: groupID, on: tx, logger: logger) else { return .groupMissing }
            guard try await self.exists(id: parentID, on: tx, logger: logger) else { return .parentMissing }
            guard groupID > SeededGroup.lastID else { return .defaultGroup }
            // A cycle appears exactly when the group is an ancestor of (or is) the new parent.
            let cycle = try await tx.exists(
                """
                WITH RECURSIVE up(id, depth) AS (
                    SELECT \(parentID)::int, 0
                    UNION ALL SELECT g.parent_id, u.depth + 1 FROM groups g JOIN up u ON g.id = u.id
                    WHERE g.parent_id IS NOT NULL AND u.depth < 256)
                SELECT 1 FROM up WHERE id = \(groupID)
                """, logger: logger)
            guard !cycle else { return .cycle }
            try await tx.query("UPDATE groups SET parent_id = \(parentID) WHERE id = \(groupID)", logger: logger)
            return .ok(affected: try await self.subtreeMembers(of: groupID, on: tx, logger: logger))
        }
    }
}

enum GroupList: ListDefinition {
    static let pageSQL = JSONSQL.listPage(JSONSQL.groupResponse("g"), table: "groups", alias: "g")
    /// A group embeds its members.
    static let pageRows: Int64 = 50
}
