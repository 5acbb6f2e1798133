import Hummingbird
import Logging

/// `/task_tag` (spec api-core §10). Fixes the original's hole: only the stored owner (or an admin) may change a tag.
struct TaskTagController {
    let env: AppEnvironment
    var db: Database { self.env.db }

    func register(_ routes: RouteBuilder) {
        routes.get("/task_tag") { request, context in
            try await self.env.tokens.authenticate(request).requireAdmin()
            return .json(try await self.db.json(TagListStatement(), logger: context.logger) ?? "[]")
        }
        routes.get("/task_tag/user/:user_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("user_id")
            guard caller.isAdmin || caller.id == id else { throw AppError.forbidden() }
            return .json(try await self.db.json(UserTagsStatement(id: id), logger: context.logger) ?? "[]")
        }
        routes.get("/task_tag/group/:group_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("group_id")
            if caller.isAdmin {
                try await self.db.require("SELECT 1 FROM groups WHERE id = \(id)",
                    else: .notFound("Group with id \(id) not found!"), logger: context.logger)
            } else {
                let rows = try await self.db.query(
                    "SELECT g.id, g.users_share_statistics FROM users u JOIN groups g ON g.id = u.group_id WHERE u.id = \(caller.id)",
                    logger: context.logger)
                guard let row = rows.first else { throw AppError.unauthorized("Could not validate credentials!", bearerChallenge: true) }
                let (own, shares) = try row.decode((Int, Bool).self)
                guard own == id, shares else { throw AppError.forbidden() }
            }
            return .json(try await self.db.json(GroupTagsStatement(id: id), logger: context.logger) ?? "[]")
        }
        routes.get("/task_tag/:task_tag_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("task_tag_id")
            try await self.requireOwnerOrAdmin(tag: id, caller: caller, context.logger)
            return .json(try await self.tagJSON(id, context.logger))
        }
        routes.post("/task_tag") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let name = try body.string("name")
            let description = try body.optionalString("description")
            let id = try await self.db.int(
                """
                INSERT INTO task_tags (name, description, user_id)
                SELECT \(name), \(description), u.id FROM users u WHERE u.id = \(caller.id) RETURNING id
                """, logger: context.logger)
            guard let id else { throw AppError.unauthorized("Could not validate credentials!", bearerChallenge: true) }
            return .json(try await self.tagJSON(id, context.logger))
        }
        routes.put("/task_tag") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let id = try body.optionalID("id")
            let name = try body.string("name")
            let description = try body.optionalString("description")
            guard let id else { throw AppError.notFound("Tag with id None not found!") }
            try await self.requireOwnerOrAdmin(tag: id, caller: caller, context.logger)
            try await self.db.require(
                "UPDATE task_tags SET name = \(name), description = \(description) WHERE id = \(id) RETURNING id",
                else: .notFound("Tag with id \(id) not found!"), logger: context.logger)
            return .json(try await self.tagJSON(id, context.logger))
        }
        routes.delete("/task_tag/:task_tag_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("task_tag_id")
            try await self.requireOwnerOrAdmin(tag: id, caller: caller, context.logger)
            try await self.db.require("DELETE FROM task_tags WHERE id = \(id) RETURNING id",
                else: .notFound("Tag with id \(id) not found!"), logger: context.logger)
            return .message("Task tag deleted")
        }
    }

    /// Existence first (404), then owner or admin (403), as the original orders them.
    func requireOwnerOrAdmin(tag id: Int, caller: CurrentUser, _ logger: Logger) async throws {
        guard let owner = try await self.db.int("SELECT user_id FROM task_tags WHERE id = \(id)", logger: logger) else {
            throw AppError.notFound("Tag with id \(id) not found!")
        }
        guard caller.isAdmin || owner == caller.id else { throw AppError.forbidden() }
    }

    func tagJSON(_ id: Int, _ logger: Logger) async throws -> String {
        guard let json = try await self.db.json(TagStatement(id: id), logger: logger) else {
            throw AppError.notFound("Tag with id \(id) not found!")
        }
        return json
    }
}
