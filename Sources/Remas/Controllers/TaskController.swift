import Hummingbird
import Logging
import PostgresNIO

/// `/task`: parse, authorize, `TaskRepository` / `BookingService`, respond.
struct TaskController {
    let env: AppEnvironment
    var tasks: TaskRepository { TaskRepository(db: self.env.db) }

    func register(_ routes: RouteBuilder) {
        routes.get("/task") { request, context in
            try await self.env.tokens.authenticate(request).requireAdmin()
            return try await self.tasks.list(try request.listWindow()).response(logger: context.logger)
        }
        routes.get("/task/user/:user_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("user_id")
            guard caller.isAdmin || caller.id == id else { throw AppError.forbidden() }
            return try await self.tasks.list(ofUser: id, try request.listWindow()).response(logger: context.logger)
        }
        routes.post("/task/user/:user_id/active") { request, context in
            try await self.page(request, context, ownOnly: true) { UserActivePage(limit: $0, offset: $1, userID: $2) }
        }
        routes.post("/task/user/:user_id/finished") { request, context in
            try await self.page(request, context, ownOnly: true) { UserFinishedPage(limit: $0, offset: $1, userID: $2) }
        }
        routes.post("/task/active") { request, context in
            try await self.page(request, context, ownOnly: false) { AllActivePage(limit: $0, offset: $1, userID: $2) }
        }
        routes.post("/task/finished") { request, context in
            try await self.page(request, context, ownOnly: false) { AllFinishedPage(limit: $0, offset: $1, userID: $2) }
        }
        routes.post("/task/get_scheduling", self.scheduling)
        routes.post("/task/add_tag") { request, context in try await self.changeTag(request, context, add: true) }
        routes.post("/task/remove_tag") { request, context in try await self.changeTag(request, context, add: false) }
        routes.get("/task/:task_id", self.get)
        routes.post("/task", self.createOrUpdate)
        routes.post("/task/recurring", self.bookSeries)
        routes.get("/task/series/:series_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("series_id")
            let series = TaskSeriesRepository(db: self.env.db)
            guard let owner = try await series.owner(ofSeries: id, logger: context.logger) else {
                throw AppError.notFound("Series with id \(id) not found!")
            }
            guard caller.isAdmin || owner == caller.id else { throw AppError.forbidden() }
            return .json(try await series.json(id: id, logger: context.logger).orNotFound("Series", id))
        }
        routes.delete("/task/series/:series_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("series_id")
            let from = try request.queryDateTime("from", zone: self.env.zone, required: false)
            let series = TaskSeriesRepository(db: self.env.db)
            guard let owner = try await series.owner(ofSeries: id, logger: context.logger) else {
                throw AppError.notFound("Series with id \(id) not found!")
            }
            guard owner == caller.id else { throw AppError.forbidden("Can't remove a series owned by another user!") }
            guard let deleted = try await series.delete(id: id, from: from, logger: context.logger) else {
                throw AppError.notFound("Series with id \(id) not found!")
            }
            if !deleted.ids.isEmpty { self.env.capacityChanged(windows: deleted.windows) }
            if BookingService.Booked(id: id, changedWindows: deleted.windows).changesAllocation(at: self.allocationInstant()) {
                await self.env.grafana.changed(.users([caller.id]), logger: context.logger)
            }
            return .message(deleted.ids.count == 1 ? "1 occurrence deleted" : "\(deleted.ids.count) occurrences deleted")
        }
        routes.delete("/task/:task_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("task_id")
            guard let owner = try await self.tasks.owner(ofTask: id, logger: context.logger) else {
                throw AppError.notFound("Task with id \(id) not found!")
            }
            guard owner == caller.id else { throw AppError.forbidden("Can't remove task owned by another user!") }
            guard let (start, end) = try await self.tasks.delete(id: id, owner: caller.id, logger: context.logger) else {
                throw AppError.notFound("Task with id \(id) not found!")
            }
            self.env.capacityChanged(windows: start <= end ? [start...end] : nil)
            if start <= end, BookingService.Booked(id: id, changedWindows: [start...end]).changesAllocation(at: self.allocationInstant()) {
                await self.env.grafana.changed(.users([caller.id]), logger: context.logger)
            }
            return .message("Task deleted")
        }
    }

    /// The instant (microseconds of local wall-clock time) at which Grafana thresholds count allocations: now, as the
    /// sync reads them (`GrafanaRepository.ruleSpecs`).
    func allocationInstant() -> Int64 {
        LocalDateTime.now(in: self.env.zone).microseconds
    }

    /// Admin, owner, or a member of the owner's group when that group shares statistics.
    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try await self.env.tokens.authenticate(request)
        let id = try context.pathID("task_id")
        guard let (owner, ownerGroup, callerGroup, shares) = try await self.tasks.visibility(ofTask: id, to: caller.id, logger: context.logger)
        else { throw AppError.notFound("Task with id \(id) not found!") }
        guard callerGroup != nil else { throw AppError.notFound("User with id \(caller.id) not found!") }
        guard caller.isAdmin || owner == caller.id || (ownerGroup == callerGroup && shares == true) else { throw AppError.forbidden() }
        return .json(try await self.tasks.json(id: id, logger: context.logger).orNotFound("Task", id))
    }

    func page<S: TaskPage>(
        _ request: Request, _ context: AppRequestContext, ownOnly: Bool, _ make: (Int64, Int64, Int) -> S
    ) async throws -> Response {
        let (body, caller) = try await self.env.bodyAndCaller(request)
        var userID = caller.id
        if ownOnly {
            userID = try context.pathID("user_id")
        }
        let pageNumber = try body.int64("page_number")
        let pageSize = try body.int64("page_size")
        guard pageNumber >= 0 else { throw AppError.unprocessable("Input should be greater than or equal to 0: body.page_number") }
        guard pageSize >= 0 else { throw AppError.unprocessable("Input should be greater than or equal to 0: body.page_size") }
        let (offset, overflow) = pageNumber.multipliedReportingOverflow(by: pageSize)
        guard !overflow else { throw AppError.unprocessable("page_number * page_size is too large: body.page_number") }
        if ownOnly { guard caller.isAdmin || caller.id == userID else { throw AppError.forbidden() } }
        return .json(try await self.tasks.page(make(pageSize, offset, userID), logger: context.logger))
    }

    /// Create (id null or 0) or update.
    @Sendable func createOrUpdate(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (body, caller) = try await self.env.bodyAndCaller(request)
        let booking = try self.bookingRequest(body)
        let booked = try await BookingService(
            db: self.env.db, limitScope: self.env.configuration.limitScope, operations: self.env.configuration.operations).book(
            booking, caller: caller, batcher: self.env.bookings, logger: context.logger)
        if !booked.changedWindows.isEmpty { self.env.capacityChanged(windows: booked.changedWindows) }
        // A current task created or changed moves the owner's Grafana thresholds now (the original waited for the next
        // start or end).
        if booked.changesAllocation(at: self.allocationInstant()) {
            await self.env.grafana.changed(.users([caller.id]), logger: context.logger)
        }
        return .json(booked.json)
    }

    /// Adding or removing a tag, with the original's check order; admins get no bypass.
    func changeTag(_ request: Request, _ context: AppRequestContext, add: Bool) async throws -> Response {
        let (body, caller) = try await self.env.bodyAndCaller(request)
        let taskID = try body.optionalID("task_id")
        let tagID = try body.optionalID("tag_id")
        let logger = context.logger
        guard let tagID, let tagOwner = try await TaskTagRepository(db: self.env.db).owner(ofTag: tagID, logger: logger) else {
            throw AppError.notFound("Tag with id \(idText(tagID)) not found!")
        }
        guard tagOwner == caller.id else {
            throw AppError.forbidden(add ? "Can't add tag owned by another user!" : "Can't remove tag owned by another user!")
        }
        guard let taskID, let taskOwner = try await self.tasks.owner(ofTask: taskID, logger: logger) else {
            throw AppError.notFound("Task with id \(idText(taskID)) not found!")
        }
        guard taskOwner == caller.id else {
            throw AppError.forbidden(add ? "Can't add tag to task owned by another user!" : "Can't remove tag from task owned by another user!")
        }
        if add {
            guard try await self.tasks.addTag(tagID, to: taskID, logger: logger) else { throw AppError.conflict("Tag is already assigned to the task!") }
        } else {
            guard try await self.tasks.removeTag(tagID, from: taskID, logger: logger) else { throw AppError.notFound("Tag is not assigned to the task!") }
        }
        return .json(try await self.tasks.json(id: taskID, logger: logger).orNotFound("Task", taskID))
    }

    /// The availability timeline; one query, then the sweep of `Timeline`.
    @Sendable func scheduling(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (body, _) = try await self.env.bodyAndCaller(request)
        let start = try body.dateTime("start_time", zone: self.env.zone)
        let end = try body.dateTime("end_time", zone: self.env.zone)
        let exclude = try body.optionalID("exclude_task_id")
        let allocations = try await self.tasks.schedulingAllocations(from: start, to: end, excluding: exclude, logger: context.logger)
        // Streamed in chunks (chunked transfer encoding): large windows produce tens of megabytes.
        let encoder = UnsafeTransfer(TimelineEncoder(allocations))
        let stream = ResponseBody { writer in
            var done = false
            while !done {
                var buffer = ByteBufferAllocator().buffer(capacity: 256 * 1024 + 4096)
                done = encoder.value.fill(&buffer, limit: 256 * 1024)
                try await writer.write(buffer)
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: stream)
    }

    /// `POST /task/recurring` `{task, rule}`: every occurrence booked in one transaction, or none (409 listing each
    /// failing occurrence). The task's `id` must be null or 0: a series is new tasks.
    @Sendable func bookSeries(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (body, caller) = try await self.env.bodyAndCaller(request)
        let booking = try self.bookingRequest(try body.object("task"))
        let ruleText = try body.string("rule")
        guard booking.id == nil || booking.id == 0 else {
            throw AppError.badRequest("A recurring reservation books new tasks: task.id must be null")
        }
        let rule: RecurrenceRule
        let occurrences: [(start: LocalDateTime, end: LocalDateTime)]
        do {
            rule = try RecurrenceRule.parse(ruleText, zone: self.env.zone)
            occurrences = try rule.occurrences(start: booking.start, end: booking.end)
        } catch let error as RuleError {
            throw AppError.unprocessable("\(error.description): body.rule")
        }
        let series = try await BookingService(
            db: self.env.db, limitScope: self.env.configuration.limitScope, operations: self.env.configuration.operations
        ).bookSeries(booking, occurrences: occurrences, rule: rule.text, caller: caller, logger: context.logger)
        self.env.capacityChanged(windows: series.windows)
        if BookingService.Booked(id: series.id, changedWindows: series.windows).changesAllocation(at: self.allocationInstant()) {
            await self.env.grafana.changed(.users([caller.id]), logger: context.logger)
        }
        var w = JSONWriter()
        w.beginObject()
        w.field("series_id", series.id)
        w.field("rule", rule.text)
        w.key("task_ids")
        w.beginArray()
        for id in series.taskIDs { w.int(id) }
        w.endArray()
        w.endObject()
        return .json(w.text, status: .created)
    }

    /// The body of `POST /task` (also the `task` of `POST /task/recurring`), checked field by field: 422 for a malformed
    /// field (paths under `location`), 400 for a task that is not one.
    func bookingRequest(_ body: BodyFields) throws -> BookingService.Request {
        let id = try body.requiredNullableID("id")
        let name = try body.string("name")
        let description = try body.requiredNullableString("description")
        _ = try body.idList("tag_ids")  // validated, ignored (as in the original)
        let items = try body.objectList("resource_allocations")
        let start = try body.dateTime("start_time", zone: self.env.zone)
        let end = try body.dateTime("end_time", zone: self.env.zone)
        var allocations: [(node: Int, resource: Int, amount: Int64)] = []
        var seen = Set<NodeResource>()
        for (index, item) in items.enumerated() {
            let node = try item.id("node_id")
            let resource = try item.id("resource_id")
            let amount = try item.int64("amount")
            guard amount > 0 else {
                throw AppError.unprocessable("Input should be greater than 0: \(body.path("resource_allocations")).\(index).amount")
            }
            guard seen.insert(.init(node: node, resource: resource)).inserted else {
                throw AppError.unprocessable(
                    "Node \(node) and resource \(resource) appear more than once: \(body.path("resource_allocations")).\(index)")
            }
            allocations.append((node, resource, amount))
        }
        guard !allocations.isEmpty else { throw AppError.badRequest("Task must have at least one resource allocation!") }
        guard start < end else { throw AppError.badRequest("Task start time must be before its end time!") }
        return .init(id: id, name: name, description: description, allocations: allocations, start: start, end: end)
    }
}

/// The encoder is created and used by one response writer only; this box carries it into the writer's closure.
struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
