import Hummingbird
import Logging

/// `/user`.
struct UserController {
    let env: AppEnvironment
    var users: UserRepository { UserRepository(db: self.env.db) }

    func register(_ routes: RouteBuilder) {
        routes.get("/user") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            return try await self.users.list(try request.listWindow()).response(logger: context.logger)
        }
        routes.get("/user/:user_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("user_id")
            guard caller.isAdmin || caller.id == id else { throw AppError.forbidden() }
            let document = try await self.users.document(id: id, cache: self.env.userDocuments, logger: context.logger)
            return .json(try document.orNotFound("User", id))
        }
        routes.post("/user", self.create)
        routes.put("/user", self.update)
        routes.delete("/user/:user_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("user_id")
            try caller.requireAdmin()
            guard id != SeededUser.administratorID else { throw AppError.forbidden("Cannot delete default user!") }
            guard try await self.users.exists(id: id, logger: context.logger) else {
                throw AppError.notFound("User with id \(id) not found!")
            }
            let touched = await self.env.grafana.touchedLogged(by: .userDeleted(userID: id), logger: context.logger)
            guard try await self.users.delete(id: id, logger: context.logger) else {
                throw AppError.notFound("User with id \(id) not found!")
            }
            // The queued username now names nobody: the sync removes the user's rules, folders, contact point and account.
            await self.env.grafana.enqueueLogged(touched, logger: context.logger)
            self.env.capacityChanged()  // the user's reservations went with them
            return .message("User deleted")
        }
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (body, caller) = try await self.env.bodyAndCaller(request)
        let uid = try body.id("uid")
        let username = try body.string("username")
        let email = try body.string("email")
        let password = try body.string("password")
        let name = try body.optionalString("name")
        let surname = try body.optionalString("surname")
        let groupID = try body.optionalID("group_id") ?? 3
        try caller.requireAdmin()
        guard try await GroupRepository(db: self.env.db).exists(id: groupID, logger: context.logger) else {
            throw AppError.notFound("Group with id \(groupID) not found!")
        }
        let hash = try await self.env.hasher.hash(password)
        let json = try await self.users.create(
            .init(name: name, surname: surname, uid: uid, username: username, email: email, passwordHash: hash, groupID: groupID),
            logger: context.logger)
        await self.env.grafana.changed(.userCreated(username: username, password: password), logger: context.logger)
        return .json(json, status: .created)
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (body, caller) = try await self.env.bodyAndCaller(request)
        let id = try body.id("id")
        let name = try body.requiredNullableString("name")
        let surname = try body.requiredNullableString("surname")
        _ = try body.string("username")  // required by the schema, never changed
        let email = try body.string("email")
        let uid = try body.id("uid")
        guard caller.isAdmin || caller.id == id else { throw AppError.forbidden() }
        guard let storedUID = try await self.users.uid(ofUser: id, logger: context.logger) else {
            throw AppError.notFound("User with id \(id) not found!")
        }
        if storedUID != uid && !caller.isAdmin { throw AppError.forbidden("Only administrators can change uid!") }
        guard try await self.users.update(id: id, name: name, surname: surname, email: email, uid: uid, logger: context.logger) else {
            throw AppError.notFound("User with id \(id) not found!")
        }
        await self.env.grafana.changed(.userUpdated(userID: id), logger: context.logger)
        let json = try await self.users.json(id: id, logger: context.logger).orNotFound("User", id)
        return .json(json)
    }
}
