import Hummingbird
import Logging

/// `/node` (spec api-core §7).
struct NodeController {
    let env: AppEnvironment
    var db: Database { self.env.db }

    func register(_ routes: RouteBuilder) {
        routes.get("/node") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            return .json(try await self.db.json(NodeListStatement(), logger: context.logger) ?? "[]")
        }
        routes.get("/node/:node_id") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("node_id")
            return .json(try await self.nodeJSON(id, context.logger))
        }
        routes.post("/node") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let name = try body.string("name")
            let description = try body.optionalString("description")
            try caller.requireAdmin()
            let id = try await withConflictMapping("create", "node") {
                try await self.db.int("INSERT INTO nodes (name, description) VALUES (\(name), \(description)) RETURNING id", logger: context.logger)!
            }
            return .json(try await self.nodeJSON(id, context.logger))
        }
        routes.put("/node") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let id = try body.optionalID("id")
            let name = try body.string("name")
            let description = try body.optionalString("description")
            try caller.requireAdmin()
            let updated = try await withConflictMapping("update", "node") {
                try await self.db.execute(
                    "UPDATE nodes SET name = \(name), description = \(description) WHERE id = \(id) RETURNING id", logger: context.logger)
            }
            guard let id, updated > 0 else { throw AppError.notFound("Node with id \(idText(id)) not found!") }
            await self.env.grafana.changed(.node(id), logger: context.logger)
            return .json(try await self.nodeJSON(id, context.logger))
        }
        routes.delete("/node/:node_id", self.delete)
        routes.post("/node/add_resource") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let nodeID = try body.id("node_id")
            let resourceID = try body.id("resource_id")
            let amount = try body.int64("amount")
            try caller.requireAdmin()
            try await self.requireNodeAndResource(nodeID, resourceID, context.logger)
            guard amount > 0 else {
                throw AppError.unprocessable("Input should be greater than 0: body.amount (a node provides a positive amount)")
            }
            // An atomic upsert (concurrent calls cannot collide on the primary key), under the node lock that bookings
            // take, so a booking never checks against a capacity that is being changed.
            try await self.db.transaction(logger: context.logger) { tx in
                try await tx.query("SELECT 1 FROM nodes WHERE id = \(nodeID) FOR NO KEY UPDATE", logger: context.logger)
                try await tx.query(
                    """
                    INSERT INTO node_resources (node_id, resource_id, amount) VALUES (\(nodeID), \(resourceID), \(amount))
                    ON CONFLICT (node_id, resource_id) DO UPDATE SET amount = EXCLUDED.amount
                    """, logger: context.logger)
            }
            await self.env.grafana.changed(.resource(resourceID), logger: context.logger)
            return .json(try await self.nodeJSON(nodeID, context.logger))
        }
        routes.post("/node/remove_resource") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let nodeID = try body.id("node_id")
            let resourceID = try body.id("resource_id")
            _ = try body.optionalInt64("amount")  // required by the original, ignored; we accept it or its absence
            try caller.requireAdmin()
            try await self.requireNodeAndResource(nodeID, resourceID, context.logger)
            let removed = try await self.db.transaction(logger: context.logger) { tx in
                try await tx.query("SELECT 1 FROM nodes WHERE id = \(nodeID) FOR NO KEY UPDATE", logger: context.logger)
                return try await tx.execute(
                    "DELETE FROM node_resources WHERE node_id = \(nodeID) AND resource_id = \(resourceID) RETURNING node_id",
                    logger: context.logger)
            }
            guard removed > 0 else { throw AppError.notFound("Node with id \(nodeID) doesn't have resource with id \(resourceID)!") }
            await self.env.grafana.changed(.resource(resourceID), logger: context.logger)
            return .json(try await self.nodeJSON(nodeID, context.logger))
        }
    }

    func nodeJSON(_ id: Int, _ logger: Logger) async throws -> String {
        guard let json = try await self.db.json(NodeStatement(id: id), logger: logger) else {
            throw AppError.notFound("Node with id \(id) not found!")
        }
        return json
    }

    func requireNodeAndResource(_ nodeID: Int, _ resourceID: Int, _ logger: Logger) async throws {
        try await self.db.require("SELECT 1 FROM nodes WHERE id = \(nodeID)", else: .notFound("Node with id \(nodeID) not found!"), logger: logger)
        try await self.db.require(
            "SELECT 1 FROM resources WHERE id = \(resourceID)", else: .notFound("Resource with id \(resourceID) not found!"), logger: logger)
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try await self.env.tokens.authenticate(request)
        let id = try context.pathID("node_id")
        try caller.requireAdmin()
        try await GuardedDelete(
            noun: "Node",
            exists: "SELECT 1 FROM nodes WHERE id = \(id)",
            lock: "SELECT 1 FROM nodes WHERE id = \(id) FOR UPDATE",
            activeTasks: """
                SELECT count(DISTINCT a.task_id)::int FROM allocations a
                WHERE a.node_id = \(id) AND a.end_time > localtimestamp
                """,
            deletes: ["DELETE FROM nodes WHERE id = \(id)"]
        ).run(id: id, db: self.db, logger: context.logger, grafana: self.env.grafana, change: .node(id))
        return .message("Node deleted")
    }
}
