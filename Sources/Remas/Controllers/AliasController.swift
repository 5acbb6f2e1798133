import Hummingbird
import Logging

/// `/resource_alias`: parse, authorize, `AliasRepository`, respond.
struct AliasController {
    let env: AppEnvironment
    var aliases: AliasRepository { AliasRepository(db: self.env.db) }

    func register(_ routes: RouteBuilder) {
        routes.get("/resource_alias") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            return try await self.aliases.list(try request.listWindow()).response(logger: context.logger)
        }
        routes.get("/resource_alias/:alias_id") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("alias_id")
            return .json(try await self.aliases.json(id: id, logger: context.logger).orNotFound("Resource alias", id))
        }
        routes.post("/resource_alias") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let name = try body.string("name")
            let description = try body.optionalString("description")
            try caller.requireAdmin()
            let id = try await self.aliases.create(name: name, description: description, logger: context.logger)
            return .json(try await self.aliases.json(id: id, logger: context.logger).orNotFound("Resource alias", id))
        }
        routes.put("/resource_alias") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let id = try body.optionalID("id")
            let name = try body.string("name")
            let description = try body.optionalString("description")
            try caller.requireAdmin()
            let updated = try await self.aliases.update(id: id, name: name, description: description, logger: context.logger)
            guard let id, updated else { throw AppError.notFound("Resource alias with id \(idText(id)) not found!") }
            return .json(try await self.aliases.json(id: id, logger: context.logger).orNotFound("Resource alias", id))
        }
        routes.delete("/resource_alias/:alias_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("alias_id")
            try caller.requireAdmin()
            guard try await self.aliases.delete(id: id, logger: context.logger) else {
                throw AppError.notFound("Resource alias with id \(id) not found!")
            }
            return .message("Resource alias deleted")
        }
    }
}
