import Hummingbird
import Logging

/// `/apikey`: machine credentials, admins only. The key is answered once, at creation.
struct ApiKeyController {
    let env: AppEnvironment
    var keys: ApiKeyRepository { ApiKeyRepository(db: self.env.db) }

    func register(_ routes: RouteBuilder) {
        routes.post("/apikey") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let name = try body.string("name")
            let scopes: [ApiKeyScope] = try body.choices("scopes")
            try caller.requireAdmin()
            guard !name.trimmingCharacters(in: .whitespaces).isEmpty else { throw AppError.badRequest("An API key needs a name!") }
            guard !scopes.isEmpty else { throw AppError.badRequest("An API key needs at least one scope ('status', 'alerts')!") }
            let json = try await self.keys.create(
                name: name, scopes: scopes.map(\.rawValue), key: ApiKeys.generate(), by: caller.id, logger: context.logger)
            return .json(json, status: .created)
        }
        routes.get("/apikey") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            try caller.requireAdmin()
            return .json(try await self.keys.list(logger: context.logger))
        }
        routes.delete("/apikey/:apikey_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("apikey_id")
            try caller.requireAdmin()
            guard try await self.keys.delete(id: id, logger: context.logger) else { throw AppError.notFound("API key with id \(id) not found!") }
            return .message("API key deleted")
        }
    }
}
