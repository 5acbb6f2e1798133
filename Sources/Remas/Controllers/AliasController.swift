import Hummingbird
import Logging

/// `/resource_alias` (spec api-core §9).
struct AliasController {
    let env: AppEnvironment
    var db: Database { self.env.db }

    func register(_ routes: RouteBuilder) {
        routes.get("/resource_alias") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            return .json(try await self.db.json(AliasListStatement(), logger: context.logger) ?? "[]")
        }
        routes.get("/resource_alias/:alias_id") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            return .json(try await self.aliasJSON(try context.pathID("alias_id"), context.logger))
        }
        routes.post("/resource_alias") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let name = try body.string("name")
            let description = try body.optionalString("description")
            try caller.requireAdmin()
            let id = try await withConflictMapping("create", "resource alias") {
                try await self.db.int(
                    "INSERT INTO resource_aliases (name, description) VALUES (\(name), \(description)) RETURNING id", logger: context.logger)!
            }
            return .json(try await self.aliasJSON(id, context.logger))
        }
        routes.put("/resource_alias") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let id = try body.optionalID("id")
            let name = try body.string("name")
            let description = try body.optionalString("description")
            try caller.requireAdmin()
            let updated = try await withConflictMapping("update", "resource alias") {
                try await self.db.execute(
                    "UPDATE resource_aliases SET name = \(name), description = \(description) WHERE id = \(id) RETURNING id",
                    logger: context.logger)
            }
            guard let id, updated > 0 else { throw AppError.notFound("Resource alias with id \(idText(id)) not found!") }
            return .json(try await self.aliasJSON(id, context.logger))
        }
        routes.delete("/resource_alias/:alias_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("alias_id")
            try caller.requireAdmin()
            try await self.db.require("DELETE FROM resource_aliases WHERE id = \(id) RETURNING id",
                else: .notFound("Resource alias with id \(id) not found!"), logger: context.logger)
            return .message("Resource alias deleted")
        }
    }

    func aliasJSON(_ id: Int, _ logger: Logger) async throws -> String {
        guard let json = try await self.db.json(AliasStatement(id: id), logger: logger) else {
            throw AppError.notFound("Resource alias with id \(id) not found!")
        }
        return json
    }
}
