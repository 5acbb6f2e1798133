import Hummingbird
import Logging

/// `/maintenance`: parse, authorize, `MaintenanceRepository`, respond. Admins write; any logged-in user reads.
struct MaintenanceController {
    let env: AppEnvironment
    var windows: MaintenanceRepository { MaintenanceRepository(db: self.env.db) }

    func register(_ routes: RouteBuilder) {
        routes.get("/maintenance") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            let start = try request.queryDateTime("start", zone: self.env.zone, required: false)
            let end = try request.queryDateTime("end", zone: self.env.zone, required: false)
            if let start, let end, start >= end { throw AppError.badRequest("The window's start must be before its end!") }
            return .json(try await self.windows.list(from: start, to: end, logger: context.logger))
        }
        routes.get("/maintenance/:maintenance_id") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("maintenance_id")
            return .json(try await self.windows.json(id: id, logger: context.logger).orNotFound("Maintenance window", id))
        }
        routes.post("/maintenance") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let fields = try self.fields(body)
            try caller.requireAdmin()
            let written = try await self.windows.create(fields, by: caller.id, logger: context.logger)
            await self.changed(written, logger: context.logger)
            return .json(written.json, status: .created)
        }
        routes.put("/maintenance/:maintenance_id") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let id = try context.pathID("maintenance_id")
            let fields = try self.fields(body)
            try caller.requireAdmin()
            guard let written = try await self.windows.update(id: id, fields, logger: context.logger) else {
                throw AppError.notFound("Maintenance window with id \(id) not found!")
            }
            await self.changed(written, logger: context.logger)
            return .json(written.json)
        }
        routes.delete("/maintenance/:maintenance_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("maintenance_id")
            try caller.requireAdmin()
            guard try await self.windows.delete(id: id, logger: context.logger) else {
                throw AppError.notFound("Maintenance window with id \(id) not found!")
            }
            return .message("Maintenance window deleted")
        }
    }

    /// The body of `POST`/`PUT /maintenance`: 422 for a malformed field, 400 for a window that is not a window.
    func fields(_ body: BodyFields) throws -> MaintenanceRepository.Fields {
        let name = try body.string("name")
        let description = try body.optionalString("description")
        let start = try body.dateTime("start_time", zone: self.env.zone)
        let end = try body.dateTime("end_time", zone: self.env.zone)
        let nodeIDs = try body.optionalIDList("node_ids")
        let conflicts = try body.choice("conflicts", default: MaintenanceRepository.ConflictMode.refuse)
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty else { throw AppError.badRequest("A maintenance window needs a name!") }
        guard start < end else { throw AppError.badRequest("The window's start must be before its end!") }
        guard end > LocalDateTime.now(in: self.env.zone) else { throw AppError.badRequest("The maintenance window is already over!") }
        if let nodeIDs, nodeIDs.isEmpty {
            throw AppError.badRequest("A maintenance window needs at least one node (node_ids null means every node)!")
        }
        return .init(name: name, description: description, start: start, end: end, nodeIDs: nodeIDs, conflicts: conflicts)
    }

    /// Running reservations a `cancel` cut short change their owners' current allocations: Grafana follows.
    func changed(_ written: MaintenanceRepository.Written, logger: Logger) async {
        if written.affected.contains(where: { $0.fate != .kept }) { self.env.capacityChanged() }
        let owners = Set(written.affected.filter { $0.fate == .shortened }.map(\.ownerID))
        if !owners.isEmpty { await self.env.grafana.changed(.users(owners.sorted()), logger: logger) }
    }
}
