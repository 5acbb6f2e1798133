import Hummingbird
import Logging

/// `/resource`: parse, authorize, `ResourceRepository`, respond.
struct ResourceController {
    let env: AppEnvironment
    var resources: ResourceRepository { ResourceRepository(db: self.env.db) }
    var aliases: AliasRepository { AliasRepository(db: self.env.db) }

    func register(_ routes: RouteBuilder) {
        routes.get("/resource") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            return try await self.resources.list(try request.listWindow()).response(logger: context.logger)
        }
        routes.get("/resource/:resource_id") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("resource_id")
            return .json(try await self.resources.json(id: id, logger: context.logger).orNotFound("Resource", id))
        }
        routes.post("/resource") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let name = try body.string("name")
            let description = try body.optionalString("description")
            let unit = try self.unit(body)
            try caller.requireAdmin()
            let unitValue = try Self.validate(unit)
            let id = try await self.resources.create(name: name, description: description, unit: unitValue, logger: context.logger)
            return .json(try await self.resources.json(id: id, logger: context.logger).orNotFound("Resource", id))
        }
        routes.put("/resource") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let id = try body.optionalID("id")
            let name = try body.string("name")
            let description = try body.optionalString("description")
            let unit = try self.unit(body)
            try caller.requireAdmin()
            guard let id, try await self.resources.exists(id: id, logger: context.logger) else {
                throw AppError.notFound("Resource with id \(idText(id)) not found!")
            }
            let unitValue = try Self.validate(unit)
            let updated = try await self.resources.update(id: id, name: name, description: description, unit: unitValue, logger: context.logger)
            guard updated else { throw AppError.notFound("Resource with id \(id) not found!") }
            await self.env.grafana.changed(.resource(id), logger: context.logger)
            return .json(try await self.resources.json(id: id, logger: context.logger).orNotFound("Resource", id))
        }
        routes.delete("/resource/:resource_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("resource_id")
            try caller.requireAdmin()
            try await self.resources.delete(id: id, grafana: self.env.grafana, logger: context.logger)
            self.env.capacityChanged()
            return .message("Resource deleted")
        }
        routes.post("/resource/add_alias") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let resourceID = try body.id("resource_id")
            // The UI has a (never reached) call that names the field resource_alias_id; accept it as a synonym.
            let aliasID = body.has("alias_id") || !body.has("resource_alias_id") ? try body.id("alias_id") : try body.id("resource_alias_id")
            try caller.requireAdmin()
            try await self.requireResourceAndAlias(resourceID, aliasID, context.logger)
            try await self.resources.addAlias(aliasID, to: resourceID, logger: context.logger)
            return .json(try await self.resources.json(id: resourceID, logger: context.logger).orNotFound("Resource", resourceID))
        }
        routes.post("/resource/remove_alias") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let resourceID = try body.id("resource_id")
            let aliasID = try body.id("alias_id")
            try caller.requireAdmin()
            try await self.requireResourceAndAlias(resourceID, aliasID, context.logger)
            guard try await self.resources.removeAlias(aliasID, from: resourceID, logger: context.logger) else { throw AppError.notFound("Resource with id \(resourceID) doesn't have alias with id \(aliasID)!") }
            return .json(try await self.resources.json(id: resourceID, logger: context.logger).orNotFound("Resource", resourceID))
        }
    }

    /// `unit` left out means `""`; an explicit null is reported as `None`, as the original does.
    func unit(_ body: BodyFields) throws -> String? {
        guard body.has("unit") else { return "" }
        return try body.optionalString("unit")
    }

    static func validate(_ unit: String?) throws -> String {
        guard let unit, ResourceUnit(rawValue: unit) != nil else { throw AppError.badRequest("Unit \(unit ?? "None") is not supported!") }
        return unit
    }

    func requireResourceAndAlias(_ resourceID: Int, _ aliasID: Int, _ logger: Logger) async throws {
        guard try await self.resources.exists(id: resourceID, logger: logger) else {
            throw AppError.notFound("Resource with id \(resourceID) not found!")
        }
        guard try await self.aliases.exists(id: aliasID, logger: logger) else { throw AppError.notFound("Alias with id \(aliasID) not found!") }
    }
}
