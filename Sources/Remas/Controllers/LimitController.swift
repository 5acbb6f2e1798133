import Hummingbird
import Logging

/// `/limit`: parse, authorize, `LimitRepository` / `EffectiveLimits`, respond.
struct LimitController {
    let env: AppEnvironment
    var limits: LimitRepository { LimitRepository(db: self.env.db) }

    func register(_ routes: RouteBuilder) {
        routes.get("/limit") { request, context in
            try await self.env.tokens.authenticate(request).requireAdmin()
            return try await self.limits.list(try request.listWindow()).response(logger: context.logger)
        }
        routes.get("/limit/user/:user_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("user_id")
            try caller.requireAdmin()
            return try await self.limits.list(ofUser: id, try request.listWindow()).response(logger: context.logger)
        }
        routes.get("/limit/group/:group_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("group_id")
            try caller.requireAdmin()
            return try await self.limits.list(ofGroup: id, try request.listWindow()).response(logger: context.logger)
        }
        routes.get("/limit/user_all/:user_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("user_id")
            guard caller.isAdmin || caller.id == id else { throw AppError.forbidden() }
            let limits = try await self.limits.effective(forUser: id, logger: context.logger)
            guard let limits else { throw AppError.notFound("User with id \(id) not found!") }
            return .json(limits.json)
        }
        routes.get("/limit/usage/:user_id", self.usage)
        routes.get("/limit/group_all/:group_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("group_id")
            try await caller.requireMember(ofGroup: id, users: UserRepository(db: self.env.db), logger: context.logger)
            let limits = try await self.limits.effective(forGroup: id, logger: context.logger)
            guard let limits else { throw AppError.notFound("Group with id \(id) not found!") }
            return .json(limits.json)
        }
        routes.get("/limit/:limit_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("limit_id")
            try caller.requireAdmin()
            return .json(try await self.limits.json(id: id, logger: context.logger).orNotFound("Limit", id))
        }
        routes.post("/limit") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let limit = try LimitRepository.Fields(body)
            try caller.requireAdmin()
            if limit.userID != nil && limit.groupID != nil {
                throw AppError.badRequest("Limit can't have both user_id and group_id specified at the same time!")
            }
            if limit.userID == nil && limit.groupID == nil {
                throw AppError.badRequest("Limit must have either user_id or group_id specified!")
            }
            let id = try await self.limits.create(limit, logger: context.logger)
            return .json(try await self.limits.json(id: id, logger: context.logger).orNotFound("Limit", id))
        }
        routes.put("/limit") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let limit = try LimitRepository.Fields(body)
            try caller.requireAdmin()
            guard let id = limit.id, try await self.limits.exists(id: id, logger: context.logger) else {
                throw AppError.notFound("Limit with id \(idText(limit.id)) not found!")
            }
            if limit.userID == nil && limit.groupID == nil {
                throw AppError.badRequest("Limit must have either user or group specified!")
            }
            if limit.userID != nil && limit.groupID != nil {
                throw AppError.badRequest("Limit can't have both user_id and group_id specified at the same time!")
            }
            try await self.limits.update(id: id, limit, logger: context.logger)
            return .json(try await self.limits.json(id: id, logger: context.logger).orNotFound("Limit", id))
        }
        routes.delete("/limit/:limit_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("limit_id")
            try caller.requireAdmin()
            guard try await self.limits.delete(id: id, logger: context.logger) else { throw AppError.notFound("Limit with id \(id) not found!") }
            return .message("Limit deleted")
        }
    }

    /// `GET /limit/usage/{user_id}?start=&end=` (README "Limits"): per effective limit and node, the peak of the user's
    /// scheduled and running reservations within the window next to the limit, so users see how much is left. The
    /// user themself or an admin.
    @Sendable func usage(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try await self.env.tokens.authenticate(request)
        let id = try context.pathID("user_id")
        let start = try request.queryDateTime("start", zone: self.env.zone, required: true)!
        let end = try request.queryDateTime("end", zone: self.env.zone, required: true)!
        guard caller.isAdmin || caller.id == id else { throw AppError.forbidden() }
        guard start < end else { throw AppError.badRequest("The window's start must be before its end!") }
        let limits = try await self.limits.effective(forUser: id, logger: context.logger)
        guard let limits else { throw AppError.notFound("User with id \(id) not found!") }
        let reservations = try await self.limits.reservations(ofUser: id, from: start, to: end, logger: context.logger)
        var w = JSONWriter()
        w.beginArray()
        for (pair, limit) in limits.winners.sorted(by: { ($0.value.id, $0.key.node) < ($1.value.id, $1.key.node) }) {
            let peak = BookingService.peakLoad(reservations[pair] ?? [], from: start.microseconds, to: end.microseconds)
            w.beginObject()
            w.field("limit_id", limit.id)
            w.field("limit_name", limit.name)
            w.field("resource_id", pair.resource)
            w.field("node_id", pair.node)
            w.field("amount", limit.amount)
            w.field("peak", peak)
            w.field("available", limit.amount - peak)
            w.endObject()
        }
        w.endArray()
        return .json(w.text)
    }
}

extension LimitRepository.Fields {
    init(_ body: BodyFields) throws {
        self.id = try body.optionalID("id")
        self.name = try body.string("name")
        self.description = try body.optionalString("description")
        self.amount = try body.int64("amount")
        // 0 means "not set", as in the original (the UI sends 0 for an empty select).
        self.userID = try body.optionalID("user_id").flatMap { $0 == 0 ? nil : $0 }
        self.groupID = try body.optionalID("group_id").flatMap { $0 == 0 ? nil : $0 }
        self.resourceID = try body.id("resource_id")
        self.nodeIDs = try body.idList("node_ids")
    }
}
