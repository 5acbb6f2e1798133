import Hummingbird
import Logging

/// `/group`.
struct GroupController {
    let env: AppEnvironment
    var groups: GroupRepository { GroupRepository(db: self.env.db) }
    var events: EventRepository { EventRepository(db: self.env.db) }
    var users: UserRepository { UserRepository(db: self.env.db) }

    func register(_ routes: RouteBuilder) {
        routes.get("/group") { request, context in
            try await self.env.tokens.authenticate(request).requireAdmin()
            return try await self.groups.list(try request.listWindow()).response(logger: context.logger)
        }
        routes.get("/group/:group_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("group_id")
            try await caller.requireMember(ofGroup: id, users: self.users, logger: context.logger)
            let json = try await self.groups.json(id: id, logger: context.logger).orNotFound("Group", id)
            return .json(json)
        }
        routes.post("/group") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let name = try body.string("name")
            let description = try body.optionalString("description")
            let share = try body.optionalBool("users_share_statistics") ?? true
            let parentID = try body.optionalID("parent_id")
            try caller.requireAdmin()
            guard name != "None" else { throw AppError.badRequest("'None' is reserved keyword that cannot be used as group name!") }
            let json = try await self.groups.create(
                name: name, description: description, shareStatistics: share, parentID: parentID, logger: context.logger)
            return .json(json, status: .created)
        }
        routes.put("/group") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let id = try body.optionalID("id")
            let name = try body.string("name")
            let description = try body.optionalString("description")
            let share = try body.optionalBool("users_share_statistics") ?? true
            try caller.requireAdmin()
            guard let id, try await self.groups.exists(id: id, logger: context.logger) else {
                throw AppError.notFound("Group with id \(idText(id)) not found!")
            }
            guard name != "None" else { throw AppError.badRequest("'None' is reserved keyword that cannot be used as group name!") }
            guard try await self.groups.update(id: id, name: name, description: description, shareStatistics: share, logger: context.logger)
            else { throw AppError.notFound("Group with id \(id) not found!") }
            return .json(try await self.groups.json(id: id, logger: context.logger) ?? "null")
        }
        routes.delete("/group/:group_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("group_id")
            try caller.requireAdmin()
            guard id > 3 else { throw AppError.forbidden("Cannot delete default groups!") }
            guard let affected = try await self.groups.delete(id: id, logger: context.logger) else {
                throw AppError.notFound("Group with id \(id) not found!")
            }
            try await self.events.usersMoved(affected, logger: context.logger)
            await self.env.grafana.changed(.users(affected), logger: context.logger)
            return .message("Group deleted")
        }
        routes.post("/group/add_user") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let userID = try body.id("user_id")
            let groupID = try body.id("group_id")
            try caller.requireAdmin()
            guard try await self.groups.exists(id: groupID, logger: context.logger) else {
                throw AppError.notFound("Group with id \(groupID) not found!")
            }
            guard try await UserRepository(db: self.env.db).move(userID, toGroup: groupID, logger: context.logger) else { throw AppError.notFound("User with id \(userID) not found!") }
            try await self.events.usersMoved([userID], logger: context.logger)
            await self.env.grafana.changed(.users([userID]), logger: context.logger)
            return .json(try await self.groups.json(id: groupID, logger: context.logger).orNotFound("Group", groupID))
        }
        routes.post("/group/change_parent") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let groupID = try body.id("group_id")
            let parentID = try body.id("parent_id")
            try caller.requireAdmin()
            guard groupID != parentID else { throw AppError.badRequest("Cannot change group parent to itself!") }
            switch try await self.groups.changeParent(groupID: groupID, parentID: parentID, logger: context.logger) {
            case .groupMissing: throw AppError.notFound("Group with id \(groupID) not found!")
            case .parentMissing: throw AppError.notFound("Group with id \(parentID) not found!")
            case .defaultGroup: throw AppError.forbidden("Cannot change default groups!")
            case .cycle: throw AppError.badRequest("Cannot change group parent to its own subgroup!")
            case .ok(let affected):
                try await self.events.usersMoved(affected, logger: context.logger)
                await self.env.grafana.changed(.users(affected), logger: context.logger)
            }
            return .json(try await self.groups.json(id: groupID, logger: context.logger).orNotFound("Group", groupID))
        }
    }
}
