import Hummingbird
import Logging

/// `/task_tag`. Fixes the original's hole: only the stored owner (or an admin) may change a tag.
struct TaskTagController {
    let env: AppEnvironment
    var tags: TaskTagRepository { TaskTagRepository(db: self.env.db) }

    func register(_ routes: RouteBuilder) {
        routes.get("/task_tag") { request, context in
            try await self.env.tokens.authenticate(request).requireAdmin()
            return try await self.tags.list(try request.listWindow()).response(logger: context.logger)
        }
        routes.get("/task_tag/user/:user_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("user_id")
            guard caller.isAdmin || caller.id == id else { throw AppError.forbidden() }
            return try await self.tags.list(ofUser: id, try request.listWindow()).response(logger: context.logger)
        }
        routes.get("/task_tag/group/:group_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("group_id")
            try await caller.requireMember(ofGroup: id, sharingStatistics: true, users: UserRepository(db: self.env.db), logger: context.logger)
            guard try await GroupRepository(db: self.env.db).exists(id: id, logger: context.logger) else {
                throw AppError.notFound("Group with id \(id) not found!")
            }
            return try await self.tags.list(ofGroup: id, try request.listWindow()).response(logger: context.logger)
        }
        routes.get("/task_tag/:task_tag_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("task_tag_id")
            try await self.requireOwnerOrAdmin(tag: id, caller: caller, context.logger)
            return .json(try await self.tags.json(id: id, logger: context.logger).orNotFound("Tag", id))
        }
        routes.post("/task_tag") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let name = try body.string("name")
            let description = try body.optionalString("description")
            guard let id = try await self.tags.create(name: name, description: description, owner: caller.id, logger: context.logger) else { throw AppError.unauthorized("Could not validate credentials!", bearerChallenge: true) }
            return .json(try await self.tags.json(id: id, logger: context.logger).orNotFound("Tag", id))
        }
        routes.put("/task_tag") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let id = try body.optionalID("id")
            let name = try body.string("name")
            let description = try body.optionalString("description")
            guard let id else { throw AppError.notFound("Tag with id None not found!") }
            try await self.requireOwnerOrAdmin(tag: id, caller: caller, context.logger)
            guard try await self.tags.update(id: id, name: name, description: description, logger: context.logger) else {
                throw AppError.notFound("Tag with id \(id) not found!")
            }
            return .json(try await self.tags.json(id: id, logger: context.logger).orNotFound("Tag", id))
        }
        routes.delete("/task_tag/:task_tag_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("task_tag_id")
            try await self.requireOwnerOrAdmin(tag: id, caller: caller, context.logger)
            guard try await self.tags.delete(id: id, logger: context.logger) else { throw AppError.notFound("Tag with id \(id) not found!") }
            return .message("Task tag deleted")
        }
    }

    /// Existence first (404), then owner or admin (403), as the original orders them.
    func requireOwnerOrAdmin(tag id: Int, caller: CurrentUser, _ logger: Logger) async throws {
        guard let owner = try await self.tags.owner(ofTag: id, logger: logger) else {
            throw AppError.notFound("Tag with id \(id) not found!")
        }
        guard caller.isAdmin || owner == caller.id else { throw AppError.forbidden() }
    }
}
