import Logging
import PostgresNIO

/// Resources and their alias links (`resources`, `resource_alias_links`): every statement on them, and their wire
/// documents.
struct ResourceRepository: Sendable {
    let db: Database

    func list(_ window: ListWindow) -> ListPages<ResourceList> {
        ListPages(db: self.db, window: window)
    }

    /// One resource's document; nil when there is no such resource.
    func json(id: Int, logger: Logger) async throws -> String? {
        try await self.db.json(ResourceStatement(id: id), logger: logger)
    }

    func exists(id: Int, logger: Logger) async throws -> Bool {
        try await self.db.exists("SELECT 1 FROM resources WHERE id = \(id)", logger: logger)
    }

    func create(name: String, description: String?, unit: String, logger: Logger) async throws -> Int {
        try await withConflictMapping("create", "resource") {
            try await self.db.int(
                "INSERT INTO resources (name, description, unit) VALUES (\(name), \(description), \(unit)) RETURNING id", logger: logger)!
        }
    }

    /// False when there is no such resource.
    func update(id: Int, name: String, description: String?, unit: String, logger: Logger) async throws -> Bool {
        try await withConflictMapping("update", "resource") {
            try await self.db.execute(
                "UPDATE resources SET name = \(name), description = \(description), unit = \(unit) WHERE id = \(id) RETURNING id",
                logger: logger) > 0
        }
    }

    /// Links the alias to the resource (linking twice is a no-op).
    func addAlias(_ alias: Int, to resource: Int, logger: Logger) async throws {
        try await self.db.execute(
            "INSERT INTO resource_alias_links (resource_id, alias_id) VALUES (\(resource), \(alias)) ON CONFLICT DO NOTHING", logger: logger)
    }

    /// Unlinks the alias; an alias that no longer names any resource goes away with its last link. False when the
    /// two were not linked.
    func removeAlias(_ alias: Int, from resource: Int, logger: Logger) async throws -> Bool {
        try await self.db.transaction(logger: logger) { tx -> Bool in
            guard try await tx.exists(
                "DELETE FROM resource_alias_links WHERE resource_id = \(resource) AND alias_id = \(alias) RETURNING alias_id", logger: logger)
            else { return false }
            try await tx.query(
                """
                DELETE FROM resource_aliases a WHERE a.id = \(alias)
                AND NOT EXISTS (SELECT 1 FROM resource_alias_links l WHERE l.alias_id = a.id)
                """, logger: logger)
            return true
        }
    }

    /// Like nodes (`GuardedDelete`); otherwise the resource goes with its node amounts, alias links (and aliases left
    /// without a resource), limits, notifications and finished reservations.
    func delete(id: Int, grafana: any GrafanaSync, logger: Logger) async throws {
        try await GuardedDelete(
            noun: "Resource",
            exists: "SELECT 1 FROM resources WHERE id = \(id)",
            // Bookings lock their nodes: lock the nodes providing this resource the same way (in id order), then the row.
            lock: """
                WITH nodes_locked AS (
                    SELECT n.id FROM nodes n WHERE n.id IN (SELECT node_id FROM node_resources WHERE resource_id = \(id))
                    ORDER BY n.id FOR UPDATE)
                SELECT 1 FROM resources WHERE id = \(id) AND (SELECT count(*) FROM nodes_locked) >= 0 FOR UPDATE
                """,
            activeTasks: """
                SELECT count(DISTINCT a.task_id)::int FROM allocations a
                WHERE a.resource_id = \(id) AND a.end_time > localtimestamp
                """,
            deletes: [
                """
                DELETE FROM resource_aliases a WHERE a.id IN (SELECT alias_id FROM resource_alias_links WHERE resource_id = \(id))
                AND NOT EXISTS (SELECT 1 FROM resource_alias_links l WHERE l.alias_id = a.id AND l.resource_id <> \(id))
                """,
                "DELETE FROM resources WHERE id = \(id)",
            ]
        ).run(id: id, db: self.db, logger: logger, grafana: grafana, change: .resource(id))
    }
}

enum ResourceList: ListDefinition {
    static let pageSQL = JSONSQL.listPage(JSONSQL.resourceResponse("r"), table: "resources", alias: "r")
}

struct ResourceStatement: JSONByIDStatement {
    static let sql = "SELECT \(JSONSQL.resourceResponse("r"))::text FROM resources r WHERE r.id = $1"
    let id: Int
}
