import Hummingbird
import Logging

/// `/resource` (spec api-core §8).
struct ResourceController {
    let env: AppEnvironment
    var db: Database { self.env.db }
    static let units: Set<String> = ["", "Bytes (SI)", "Bytes (IEC)"]

    func register(_ routes: RouteBuilder) {
        routes.get("/resource") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            return .json(try await self.db.json(ResourceListStatement(), logger: context.logger) ?? "[]")
        }
        routes.get("/resource/:resource_id") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            return .json(try await self.resourceJSON(try context.pathID("resource_id"), context.logger))
        }
        routes.post("/resource") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let name = try body.string("name")
            let description = try body.optionalString("description")
            let unit = try self.unit(body)
            try caller.requireAdmin()
            let unitValue = try Self.validate(unit)
            let id = try await withConflictMapping("create", "resource") {
                try await self.db.int(
                    "INSERT INTO resources (name, description, unit) VALUES (\(name), \(description), \(unitValue)) RETURNING id",
                    logger: context.logger)!
            }
            return .json(try await self.resourceJSON(id, context.logger))
        }
        routes.put("/resource") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let id = try body.optionalID("id")
            let name = try body.string("name")
            let description = try body.optionalString("description")
            let unit = try self.unit(body)
            try caller.requireAdmin()
            guard let id, try await self.db.exists("SELECT 1 FROM resources WHERE id = \(id)", logger: context.logger) else {
                throw AppError.notFound("Resource with id \(idText(id)) not found!")
            }
            let unitValue = try Self.validate(unit)
            let updated = try await withConflictMapping("update", "resource") {
                try await self.db.execute(
                    "UPDATE resources SET name = \(name), description = \(description), unit = \(unitValue) WHERE id = \(id) RETURNING id",
                    logger: context.logger)
            }
            guard updated > 0 else { throw AppError.notFound("Resource with id \(id) not found!") }
            await self.env.grafana.changed(.resource(id), logger: context.logger)
            return .json(try await self.resourceJSON(id, context.logger))
        }
        routes.delete("/resource/:resource_id", self.delete)
        routes.post("/resource/add_alias") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let resourceID = try body.id("resource_id")
            // The UI has a (never reached) call that names the field resource_alias_id; accept it as a synonym.
            let aliasID = body.has("alias_id") || !body.has("resource_alias_id") ? try body.id("alias_id") : try body.id("resource_alias_id")
            try caller.requireAdmin()
            try await self.requireResourceAndAlias(resourceID, aliasID, context.logger)
            try await self.db.execute(
                "INSERT INTO resource_alias_links (resource_id, alias_id) VALUES (\(resourceID), \(aliasID)) ON CONFLICT DO NOTHING",
                logger: context.logger)
            return .json(try await self.resourceJSON(resourceID, context.logger))
        }
        routes.post("/resource/remove_alias") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let resourceID = try body.id("resource_id")
            let aliasID = try body.id("alias_id")
            try caller.requireAdmin()
            try await self.requireResourceAndAlias(resourceID, aliasID, context.logger)
            let removed = try await self.db.transaction(logger: context.logger) { tx -> Bool in
                guard try await tx.exists(
                    "DELETE FROM resource_alias_links WHERE resource_id = \(resourceID) AND alias_id = \(aliasID) RETURNING alias_id",
                    logger: context.logger)
                else { return false }
                // An alias that no longer names any resource goes away with its last link.
                try await tx.query(
                    """
                    DELETE FROM resource_aliases a WHERE a.id = \(aliasID)
                    AND NOT EXISTS (SELECT 1 FROM resource_alias_links l WHERE l.alias_id = a.id)
                    """, logger: context.logger)
                return true
            }
            guard removed else { throw AppError.notFound("Resource with id \(resourceID) doesn't have alias with id \(aliasID)!") }
            return .json(try await self.resourceJSON(resourceID, context.logger))
        }
    }

    /// `unit` left out means `""`; an explicit null is reported as `None`, as the original does.
    func unit(_ body: BodyFields) throws -> String? {
        guard body.has("unit") else { return "" }
        return try body.optionalString("unit")
    }

    static func validate(_ unit: String?) throws -> String {
        guard let unit, Self.units.contains(unit) else { throw AppError.badRequest("Unit \(unit ?? "None") is not supported!") }
        return unit
    }

    func resourceJSON(_ id: Int, _ logger: Logger) async throws -> String {
        guard let json = try await self.db.json(ResourceStatement(id: id), logger: logger) else {
            throw AppError.notFound("Resource with id \(id) not found!")
        }
        return json
    }

    func requireResourceAndAlias(_ resourceID: Int, _ aliasID: Int, _ logger: Logger) async throws {
        try await self.db.require(
            "SELECT 1 FROM resources WHERE id = \(resourceID)", else: .notFound("Resource with id \(resourceID) not found!"), logger: logger)
        try await self.db.require(
            "SELECT 1 FROM resource_aliases WHERE id = \(aliasID)", else: .notFound("Alias with id \(aliasID) not found!"), logger: logger)
    }

    /// Like nodes (`GuardedDelete`); otherwise the resource goes with its node amounts, alias links (and aliases left
    /// without a resource), limits, notifications and finished reservations.
    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try await self.env.tokens.authenticate(request)
        let id = try context.pathID("resource_id")
        try caller.requireAdmin()
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
        ).run(id: id, db: self.db, logger: context.logger, grafana: self.env.grafana, change: .resource(id))
        return .message("Resource deleted")
    }
}
