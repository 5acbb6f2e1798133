import Hummingbird
import Logging

/// `/limit` (spec api-core §6).
struct LimitController {
    let env: AppEnvironment
    var db: Database { self.env.db }

    func register(_ routes: RouteBuilder) {
        routes.get("/limit") { request, context in
            try await self.env.tokens.authenticate(request).requireAdmin()
            return .json(try await self.db.json(LimitListStatement(), logger: context.logger) ?? "[]")
        }
        routes.get("/limit/user/:user_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("user_id")
            try caller.requireAdmin()
            return .json(try await self.db.json(UserLimitsStatement(id: id), logger: context.logger) ?? "[]")
        }
        routes.get("/limit/group/:group_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("group_id")
            try caller.requireAdmin()
            return .json(try await self.db.json(GroupLimitsStatement(id: id), logger: context.logger) ?? "[]")
        }
        routes.get("/limit/user_all/:user_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("user_id")
            guard caller.isAdmin || caller.id == id else { throw AppError.forbidden() }
            let limits = try await EffectiveLimits.forUser(id, on: self.db, logger: context.logger)
            guard let limits else { throw AppError.notFound("User with id \(id) not found!") }
            return .json(limits.json)
        }
        routes.get("/limit/usage/:user_id", self.usage)
        routes.get("/limit/group_all/:group_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("group_id")
            if !caller.isAdmin {
                guard let own = try await UserRepository(db: self.db).groupID(ofUser: caller.id, logger: context.logger) else {
                    throw AppError.unauthorized("Could not validate credentials!", bearerChallenge: true)
                }
                guard own == id else { throw AppError.forbidden() }
            }
            let limits = try await EffectiveLimits.forGroup(id, on: self.db, logger: context.logger)
            guard let limits else { throw AppError.notFound("Group with id \(id) not found!") }
            return .json(limits.json)
        }
        routes.get("/limit/:limit_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("limit_id")
            try caller.requireAdmin()
            return .json(try await self.limitJSON(id, context.logger))
        }
        routes.post("/limit") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let limit = try LimitRequest(body)
            try caller.requireAdmin()
            if limit.userID != nil && limit.groupID != nil {
                throw AppError.badRequest("Limit can't have both user_id and group_id specified at the same time!")
            }
            if limit.userID == nil && limit.groupID == nil {
                throw AppError.badRequest("Limit must have either user_id or group_id specified!")
            }
            let id = try await self.db.transaction(logger: context.logger) { tx in
                try await self.checkReferences(limit, tx, context.logger)
                let id = try await withConflictMapping("create", "limit") {
                    try await tx.int(
                        """
                        INSERT INTO limits (name, description, amount, user_id, group_id, resource_id)
                        VALUES (\(limit.name), \(limit.description), \(limit.amount), \(limit.userID), \(limit.groupID), \(limit.resourceID))
                        RETURNING id
                        """, logger: context.logger)!
                }
                try await self.setNodes(id, limit.nodeIDs, tx, context.logger)
                return id
            }
            return .json(try await self.limitJSON(id, context.logger))
        }
        routes.put("/limit") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let limit = try LimitRequest(body)
            try caller.requireAdmin()
            guard let id = limit.id, try await self.db.exists("SELECT 1 FROM limits WHERE id = \(id)", logger: context.logger) else {
                throw AppError.notFound("Limit with id \(idText(limit.id)) not found!")
            }
            if limit.userID == nil && limit.groupID == nil {
                throw AppError.badRequest("Limit must have either user or group specified!")
            }
            if limit.userID != nil && limit.groupID != nil {
                throw AppError.badRequest("Limit can't have both user_id and group_id specified at the same time!")
            }
            try await self.db.transaction(logger: context.logger) { tx in
                try await self.checkReferences(limit, tx, context.logger)
                let updated = try await withConflictMapping("update", "limit") {
                    try await tx.execute(
                        """
                        UPDATE limits SET name = \(limit.name), description = \(limit.description), amount = \(limit.amount),
                            user_id = \(limit.userID), group_id = \(limit.groupID), resource_id = \(limit.resourceID)
                        WHERE id = \(id) RETURNING id
                        """, logger: context.logger)
                }
                guard updated > 0 else { throw AppError.notFound("Limit with id \(id) not found!") }
                try await tx.query("DELETE FROM limit_nodes WHERE limit_id = \(id)", logger: context.logger)
                try await self.setNodes(id, limit.nodeIDs, tx, context.logger)
            }
            return .json(try await self.limitJSON(id, context.logger))
        }
        routes.delete("/limit/:limit_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("limit_id")
            try caller.requireAdmin()
            try await self.db.require("DELETE FROM limits WHERE id = \(id) RETURNING id",
                else: .notFound("Limit with id \(id) not found!"), logger: context.logger)
            return .message("Limit deleted")
        }
    }

    struct LimitRequest {
        let id: Int?
        let name: String
        let description: String?
        let amount: Int64
        let userID: Int?
        let groupID: Int?
        let resourceID: Int
        let nodeIDs: [Int]

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

    func checkReferences(_ limit: LimitRequest, _ tx: Transaction, _ logger: Logger) async throws {
        if let user = limit.userID, !(try await tx.exists("SELECT 1 FROM users WHERE id = \(user) FOR SHARE", logger: logger)) {
            throw AppError.notFound("User with id \(user) not found!")
        }
        if let group = limit.groupID, !(try await tx.exists("SELECT 1 FROM groups WHERE id = \(group) FOR SHARE", logger: logger)) {
            throw AppError.notFound("Group with id \(group) not found!")
        }
        try await tx.require("SELECT 1 FROM resources WHERE id = \(limit.resourceID) FOR SHARE",
            else: .notFound("Resource with id \(limit.resourceID) not found!"), logger: logger)
    }

    /// Unknown node ids are dropped silently and duplicates collapse (the original's behaviour).
    func setNodes(_ limitID: Int, _ nodeIDs: [Int], _ tx: Transaction, _ logger: Logger) async throws {
        guard !nodeIDs.isEmpty else { return }
        try await tx.query(
            """
            INSERT INTO limit_nodes (limit_id, node_id)
            SELECT \(limitID), n.id FROM nodes n WHERE n.id = ANY(\(nodeIDs.map { Int32(truncatingIfNeeded: $0) }))
            ON CONFLICT DO NOTHING
            """, logger: logger)
    }

    /// `GET /limit/usage/{user_id}?start=&end=` (issue 10): per effective limit and node, the peak of the user's
    /// scheduled and running reservations within the window next to the limit, so users see how much is left. The
    /// user themself or an admin.
    @Sendable func usage(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try await self.env.tokens.authenticate(request)
        let id = try context.pathID("user_id")
        func time(_ name: String) throws -> LocalDateTime {
            guard let raw = request.uri.queryParameters.get(name) else { throw AppError.unprocessable("Field required: query.\(name)") }
            guard let value = LocalDateTime.parse(raw, zone: self.env.zone) else {
                throw AppError.unprocessable("Input should be a valid datetime (YYYY-MM-DD HH:MM or ISO 8601): query.\(name)")
            }
            return value
        }
        let start = try time("start")
        let end = try time("end")
        guard caller.isAdmin || caller.id == id else { throw AppError.forbidden() }
        guard start < end else { throw AppError.badRequest("The window's start must be before its end!") }
        let limits = try await EffectiveLimits.forUser(id, on: self.db, logger: context.logger)
        guard let limits else { throw AppError.notFound("User with id \(id) not found!") }
        var reservations: [NodeResource: [(start: Int64, end: Int64, amount: Int64)]] = [:]
        let rows = try await self.db.query(
            """
            SELECT a.node_id, a.resource_id, a.amount,
                   (extract(epoch FROM a.start_time) * 1000000)::int8, (extract(epoch FROM a.end_time) * 1000000)::int8
            FROM allocations a JOIN tasks t ON t.id = a.task_id
            WHERE t.owner_id = \(id) AND a.end_time > \(start.sqlText)::timestamp AND a.start_time < \(end.sqlText)::timestamp
              AND a.end_time > localtimestamp
            """, logger: context.logger)
        for row in rows {
            let (n, r, amount, s, e) = try row.decode((Int, Int, Int64, Int64, Int64).self)
            reservations[NodeResource(node: n, resource: r), default: []].append((s, e, amount))
        }
        let entries = limits.winners.sorted { ($0.value.id, $0.key.node) < ($1.value.id, $1.key.node) }.map { pair, limit in
            let peak = BookingService.peakLoad(reservations[pair] ?? [], from: start.microseconds, to: end.microseconds)
            return """
                {"limit_id":\(limit.id),"limit_name":\(JSONText.quote(limit.name)),"resource_id":\(pair.resource),"node_id":\(pair.node),\
                "amount":\(limit.amount),"peak":\(peak),"available":\(limit.amount - peak)}
                """
        }
        return .json("[" + entries.joined(separator: ",") + "]")
    }

    func limitJSON(_ id: Int, _ logger: Logger) async throws -> String {
        guard let json = try await self.db.json(LimitStatement(id: id), logger: logger) else {
            throw AppError.notFound("Limit with id \(id) not found!")
        }
        return json
    }
}
