import Hummingbird
import Logging

/// `/notification`: notifications, their receivers and their reminders.
struct NotificationController {
    let env: AppEnvironment
    var notifications: NotificationRepository { NotificationRepository(db: self.env.db) }

    func register(_ routes: RouteBuilder) {
        routes.get("/notification") { request, context in
            try await self.env.tokens.authenticate(request).requireAdmin()
            return try await self.notifications.all(try request.listWindow()).response(logger: context.logger)
        }
        routes.post("/notification", self.create)
        routes.put("/notification", self.update)
        routes.post("/notification/assign") { request, context in try await self.assign(request, context, assign: true) }
        routes.post("/notification/unassign") { request, context in try await self.assign(request, context, assign: false) }
        routes.get("/notification/group/:group_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("group_id")
            // The original answers 404 for an unknown group before it checks membership.
            let json = try await self.notifications.forGroup(id, logger: context.logger).orNotFound("Group", id)
            try await caller.requireMember(ofGroup: id, users: UserRepository(db: self.env.db), logger: context.logger)
            return .json(json)
        }
        routes.get("/notification/user/:user_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("user_id")
            let json = try await self.notifications.forUser(id, logger: context.logger).orNotFound("User", id)
            guard caller.isAdmin || caller.id == id else { throw AppError.forbidden() }
            return .json(json)
        }
        routes.get("/notification/owner/:owner_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("owner_id")
            guard caller.isAdmin || caller.id == id else { throw AppError.forbidden() }
            guard try await UserRepository(db: self.env.db).exists(id: id, logger: context.logger) else {
                throw AppError.notFound("User with id \(id) not found!")
            }
            return try await self.notifications.owned(by: id, try request.listWindow()).response(logger: context.logger)
        }
        routes.get("/notification/:notification_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("notification_id")
            try caller.requireAdmin()
            return .json(try await self.notifications.json(id: id, logger: context.logger).orNotFound("Notification", id))
        }
        routes.delete("/notification/:notification_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("notification_id")
            guard let ownership = try await self.notifications.ownership(of: id, logger: context.logger) else {
                throw AppError.notFound("Notification with id \(id) not found!")
            }
            guard caller.isAdmin || ownership.ownerID == caller.id else { throw AppError.forbidden("Can't remove notification owned by another user!") }
            let touched = await self.env.grafana.touchedLogged(by: .notification(id), logger: context.logger)
            // Its events and receiver links go with it (ON DELETE CASCADE).
            guard try await self.notifications.delete(id: id, logger: context.logger) else {
                throw AppError.notFound("Notification with id \(id) not found!")
            }
            await self.env.grafana.enqueueLogged(touched, logger: context.logger)
            return .message("Notification deleted")
        }
    }

    /// Admin-created notifications have no owner; anyone else owns what they create.
    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (body, caller) = try await self.env.bodyAndCaller(request)
        let input = try NotificationInput(body)
        var fields = NotificationRepository.Fields(
            name: input.name, description: input.description, timeOffset: nil, template: input.template,
            type: try input.validatedType(), defaultAmount: input.defaultAmount.number, resourceID: input.resourceID.number.map { Int($0) })
        fields.timeOffset = try input.timeOffset(for: fields.type)
        try Self.check(fields, caller: caller)
        let json = try await self.notifications.create(fields, ownerID: caller.isAdmin ? nil : caller.id, logger: context.logger)
        return .json(json)
    }

    /// A full replacement of the editable fields; task-type fields or Grafana fields, by the new type.
    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (body, caller) = try await self.env.bodyAndCaller(request)
        let id = try body.optionalID("id")
        let input = try NotificationInput(body)
        let logger = context.logger
        guard let id else { throw AppError.notFound("Notification with id None not found!") }
        try await NotificationService(db: self.env.db).update(id: id, caller: caller, logger: logger) { stored in
            var fields = stored
            fields.name = input.name
            fields.description = input.description
            fields.template = input.template
            fields.type = try input.validatedType()
            if NotificationType.grafana.contains(fields.type) {
                fields.defaultAmount = input.defaultAmount.number
                fields.resourceID = input.resourceID.number.map { Int($0) }
            } else {
                fields.timeOffset = try input.timeOffset(for: fields.type)
            }
            try Self.check(fields, caller: caller)
            return fields
        }
        await self.env.grafana.changed(.notification(id), logger: logger)
        return .json(try await self.notifications.json(id: id, logger: logger).orNotFound("Notification", id))
    }

    /// The checks of create and update: Grafana alerts need an amount, a resource and a rule template;
    /// task reminders need a mail template (a null one blocked the original's scheduler).
    /// A rule template must render to a JSON object: checked here, before anything is written, instead of after the
    /// commit as in the original (which then answered 400 with the change already saved).
    static func check(_ f: NotificationRepository.Fields, caller: CurrentUser) throws {
        if NotificationType.grafana.contains(f.type) {
            guard let amount = f.defaultAmount, amount != 0 else { throw AppError.badRequest("Default amount is required for grafana alerts!") }
            guard let resource = f.resourceID, resource != 0 else { throw AppError.badRequest("Resource must be set for grafana alerts!") }
            guard let template = f.template, !template.isEmpty else {
                throw AppError.badRequest("Notification template must be set for grafana alerts!")
            }
            try AlertRuleRenderer.validate(template: template, notificationName: f.name, username: caller.username)
        }
        if NotificationType.taskReminders.contains(f.type) {
            guard let template = f.template, !template.isEmpty else {
                throw AppError.badRequest("Notification template must be set for task notifications!")
            }
        }
    }

    /// With the original's check order. Repeating an assignment or removing a missing one is a no-op.
    func assign(_ request: Request, _ context: AppRequestContext, assign: Bool) async throws -> Response {
        let (body, caller) = try await self.env.bodyAndCaller(request)
        let notificationID = try body.id("notification_id")
        let userID = try body.optionalID("user_id")
        let groupID = try body.optionalID("group_id")
        let logger = context.logger
        guard userID != nil || groupID != nil else { throw AppError.badRequest("Either user_id or group_id must be specified!") }
        guard let ownership = try await self.notifications.ownership(of: notificationID, logger: logger) else {
            throw AppError.notFound("Notification with id \(notificationID) not found!")
        }
        if !caller.isAdmin {
            if groupID != nil {
                throw AppError.forbidden("Can't assign/unassign notification to/from group! Insufficient permissions!")
            }
            if userID != caller.id { throw AppError.forbidden("Can't assign/unassign notification to/from another user!") }
            if ownership.ownerID != caller.id { throw AppError.forbidden("Can't assign/unassign notification owned by another user!") }
        }
        let affected = try await NotificationService(db: self.env.db).assign(
            notificationID, userID: userID, groupID: groupID, assign: assign, logger: logger)
        if !affected.isEmpty {
            await self.env.grafana.changed(.users(affected), logger: logger)
        }
        return .json(try await self.notifications.json(id: notificationID, logger: logger).orNotFound("Notification", notificationID))
    }
}

/// The Notification body: the original does not validate it, so it is read leniently (numeric strings and `""` for
/// the integer fields, a missing type means `other`, unknown keys ignored), but every value is type-checked.
struct NotificationInput {
    let name: String
    let description: String?
    let rawTimeOffset: BodyFields.LooseInt
    let template: String?
    let rawType: JSONValue?
    let defaultAmount: BodyFields.LooseInt
    let resourceID: BodyFields.LooseInt

    init(_ body: BodyFields) throws {
        self.name = try body.string("name")
        self.description = try body.optionalString("description")
        self.rawTimeOffset = try body.looseInt("time_offset", range: Int64(Int32.min)...Int64(Int32.max))
        self.template = try body.optionalString("notification_template")
        self.rawType = body.values["type"]
        self.defaultAmount = try body.looseInt("default_amount")
        self.resourceID = try body.looseInt("resource_id", range: Int64(Int32.min)...Int64(Int32.max))
    }

    /// The type, `other` when absent or null; an unknown one is the original's 400 (on update too, not a 500).
    func validatedType() throws -> String {
        switch self.rawType {
        case nil, .null?: return "other"
        case .string(let s)? where NotificationType.all.contains(s): return s
        case .string(let s)?: throw AppError.badRequest("Invalid notification type \(s)!")
        case let other?: throw AppError.badRequest("Invalid notification type \(other.text)!")
        }
    }

    /// Task reminders need an offset (`""` means 0); other types keep what was sent (`""` as null).
    func timeOffset(for type: String) throws -> Int? {
        switch self.rawTimeOffset {
        case .value(let v): return Int(v)
        case .blank: return NotificationType.taskReminders.contains(type) ? 0 : nil
        case .absent, .null:
            guard !NotificationType.taskReminders.contains(type) else {
                throw AppError.badRequest("Time offset must be set for task notifications!")
            }
            return nil
        }
    }
}
