import Logging
import PostgresNIO

/// Nodes and what they provide (`nodes`, `node_resources`): every statement on them, and their wire documents.
struct NodeRepository: Sendable {
    let db: Database

    /// `GET /node`: every node (or the window asked for) with what it provides.
    func list(_ window: ListWindow) -> ListPages<NodeList> {
        ListPages(db: self.db, window: window)
    }

    /// One node's document; nil when there is no such node.
    func json(id: Int, logger: Logger) async throws -> String? {
        try await self.db.json(NodeStatement(id: id), logger: logger)
    }

    func exists(id: Int, logger: Logger) async throws -> Bool {
        try await self.db.exists("SELECT 1 FROM nodes WHERE id = \(id)", logger: logger)
    }

    func create(name: String, description: String?, logger: Logger) async throws -> Int {
        try await withConflictMapping("create", "node") {
            try await self.db.int("INSERT INTO nodes (name, description) VALUES (\(name), \(description)) RETURNING id", logger: logger)!
        }
    }

    /// False when there is no such node.
    func update(id: Int?, name: String, description: String?, logger: Logger) async throws -> Bool {
        try await withConflictMapping("update", "node") {
            try await self.db.execute(
                "UPDATE nodes SET name = \(name), description = \(description) WHERE id = \(id) RETURNING id", logger: logger) > 0
        }
    }

    /// The one node lock: locks the rows of the given nodes (every node when nil) in id order, so two holders cannot
    /// deadlock, until the transaction ends. Bookings, maintenance windows, capacity changes and status reports take it,
    /// so each sees the others' writes whole. `FOR NO KEY UPDATE` leaves foreign keys to the nodes unblocked. Returns
    /// the ids that exist.
    func lock(_ nodes: [Int32]?, in tx: LeasedConnection, logger: Logger) async throws -> [Int] {
        let rows = if let nodes {
            try await tx.query("SELECT id FROM nodes WHERE id = ANY(\(nodes)) ORDER BY id FOR NO KEY UPDATE", logger: logger)
        } else {
            try await tx.query("SELECT id FROM nodes ORDER BY id FOR NO KEY UPDATE", logger: logger)
        }
        return try rows.map { try $0.decode(Int.self) }
    }

    /// The node provides `amount` of the resource from now on (an atomic upsert, so concurrent calls cannot collide on
    /// the primary key), under the node lock that bookings take: a booking never checks against a capacity that is
    /// being changed.
    func provide(node: Int, resource: Int, amount: Int64, logger: Logger) async throws {
        try await self.db.transaction(logger: logger) { tx in
            _ = try await self.lock([Int32(truncatingIfNeeded: node)], in: tx, logger: logger)
            try await tx.query(
                """
                INSERT INTO node_resources (node_id, resource_id, amount) VALUES (\(node), \(resource), \(amount))
                ON CONFLICT (node_id, resource_id) DO UPDATE SET amount = EXCLUDED.amount
                """, logger: logger)
        }
    }

    /// The node no longer provides the resource (under the bookings' node lock); false when it did not.
    func withdraw(node: Int, resource: Int, logger: Logger) async throws -> Bool {
        try await self.db.transaction(logger: logger) { tx in
            _ = try await self.lock([Int32(truncatingIfNeeded: node)], in: tx, logger: logger)
            return try await tx.execute(
                "DELETE FROM node_resources WHERE node_id = \(node) AND resource_id = \(resource) RETURNING node_id", logger: logger) > 0
        }
    }

    /// Deletes the node unless scheduled or running tasks reserve it (`GuardedDelete`).
    func delete(id: Int, grafana: any GrafanaSync, logger: Logger) async throws {
        try await GuardedDelete(
            noun: "Node",
            exists: "SELECT 1 FROM nodes WHERE id = \(id)",
            lock: "SELECT 1 FROM nodes WHERE id = \(id) FOR UPDATE",
            activeTasks: """
                SELECT count(DISTINCT a.task_id)::int FROM allocations a
                WHERE a.node_id = \(id) AND a.end_time > localtimestamp
                """,
            deletes: ["DELETE FROM nodes WHERE id = \(id)"]
        ).run(id: id, db: self.db, logger: logger, grafana: grafana, change: .node(id))
    }
}

/// Nodes are rendered from plain records (`json_agg(record)`), which PostgreSQL encodes about 1.6x faster than the
/// equivalent `json_build_object` calls (measured with pgbench on 20 nodes x 5 resources); GET /node is a hot path.
enum NodeSQL {
    static let rows = """
        SELECT n.id, n.name, n.description,
               COALESCE((SELECT json_agg(rr ORDER BY rr.id) FROM (
                   SELECT r.id, r.name, r.description, r.unit, nr.amount
                   FROM node_resources nr JOIN resources r ON r.id = nr.resource_id WHERE nr.node_id = n.id) rr), '[]'::json) AS resources
        FROM nodes n
        """
}

enum NodeList: ListDefinition {
    static let pageSQL = """
        SELECT x.id, row_to_json(x)::text FROM (\(NodeSQL.rows) WHERE n.id > $2 ORDER BY n.id LIMIT $3 OFFSET $4) x ORDER BY x.id
        """
}

struct NodeStatement: JSONByIDStatement {
    static let sql = "SELECT row_to_json(x)::text FROM (\(NodeSQL.rows) WHERE n.id = $1) x"
    let id: Int
}
