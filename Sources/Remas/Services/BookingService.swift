import Logging
import PostgresNIO

/// Creates and updates tasks: every check of a booking (times, nodes, capacity, limits) in one transaction, race-free.
///
/// No overbooking across any number of replicas: the rows of the requested nodes are locked (in id order, so two
/// bookings cannot deadlock) before the overlapping reservations are read, and held until the new allocations are
/// committed. Bookings on different nodes never wait for each other.
///
/// Limits (README "Limits") mean what REMAS's documentation says, "the most the user can allocate at once": with
/// `LIMIT_SCOPE=concurrent` (the default) the caller's own overlapping scheduled and running reservations of a
/// (node, resource) count against the limit together with the new amount, at every instant; checked under the node
/// locks, so concurrent bookings of one user cannot pass a limit together. `LIMIT_SCOPE=task` compares each task's own
/// amount, as the original does.
struct BookingService: Sendable {
    var db: Database
    var limitScope: LimitScope = .concurrent
    /// The down-node guard's settings (`NODE_DOWN_BOOKING_GUARD_MINUTES`, `NODE_STATUS_STALE_SECONDS`).
    var operations = OperationsSettings()
    var tasks: TaskRepository { TaskRepository(db: self.db) }

    /// The same service on `db` (itself when nil).
    func on(_ db: Database?) -> BookingService {
        guard let db else { return self }
        var service = self
        service.db = db
        return service
    }

    struct Triple: Hashable {
        let node: Int
        let resource: Int
        let amount: Int64
    }

    struct Request: Sendable {
        var id: Int?
        var name: String
        var description: String?
        var allocations: [(node: Int, resource: Int, amount: Int64)]
        var start: LocalDateTime
        var end: LocalDateTime
    }

    /// What a booking did: the task's id, and the time windows (microseconds) whose reservations it changed: the
    /// task's old window and its new one; none when only the name or description changed.
    struct Booked: Sendable {
        let id: Int
        let changedWindows: [ClosedRange<Int64>]
        /// The task as answered (TaskFull), read in the booking's own transaction: an answer is never lost to a
        /// failure after the commit, so a 503 always means nothing was written.
        var json = ""

        /// True when a changed window holds `instant` (then the owner's current allocation, and so their Grafana
        /// thresholds, changed).
        func changesAllocation(at instant: Int64) -> Bool {
            self.changedWindows.contains { $0.lowerBound <= instant && instant < $0.upperBound }
        }
    }

    /// A new booking (a request without id) and who makes it.
    struct NewBooking: Sendable {
        let request: Request
        let caller: CurrentUser
    }

    /// Books a task: a new one through `batcher` when there is one (so that concurrent bookings of this server share a
    /// transaction: `BookingBatcher`), else in a transaction of its own; an update (a request with an id) always alone.
    func book(_ request: Request, caller: CurrentUser, batcher: BookingBatcher? = nil, logger: Logger) async throws -> Booked {
        if let id = request.id, id != 0 {
            return try await self.db.transaction(logger: logger) { tx in
                var booked = try await self.update(id, to: request, caller: caller, in: tx, logger: logger)
                guard let json = try await self.tasks.json(id: booked.id, on: tx, logger: logger) else {
                    throw AppError.notFound("Task with id \(booked.id) not found!")
                }
                booked.json = json
                return booked
            }
        }
        let booking = NewBooking(request: request, caller: caller)
        if let batcher { return try await batcher.book(booking, with: self, logger: logger) }
        return try await self.bookNew([booking], logger: logger)[0].get()
    }

    /// Books new tasks in one transaction, each checked as if booked alone after the ones before it (limits, node
    /// locks, capacity, maintenance windows, the down-node guard, each counting the reservations of the earlier
    /// bookings of the list), in two statements for all of them: the callers' limits, the node locks (the union of
    /// their nodes, in id order) and what they are checked against (`TaskRepository.lockAndRead`); then the insert of
    /// the accepted ones with their events and reminders, which also answers them. One booking's refusal is its own
    /// outcome and does not touch the others; a database error fails them all, and nothing of any is written.
    func bookNew(_ bookings: [NewBooking], logger: Logger) async throws -> [Result<Booked, any Error>] {
        try await self.db.transaction(logger: logger) { tx in
            var outcomes = [Result<Booked, any Error>?](repeating: nil, count: bookings.count)
            let read = try await self.tasks.lockAndRead(
                bookings.map {
                    let request = $0.request
                    return TaskRepository.SituationQuery(
                        request, start: request.start, end: request.end, overlapping: (request.start, request.end))
                }, callers: bookings.map(\.caller.id), operations: self.operations, in: tx, logger: logger)
            // The reservations of the bookings accepted so far, which the later ones count.
            var earlier: [TaskRepository.Overlap] = []
            var accepted: [Int] = []
            for (index, booking) in bookings.enumerated() {
                let situation = read.situations[index]
                do {
                    let caller = booking.caller.id
                    let limits = try self.applicableLimits(booking.request, caller: caller, limits: read.limits[caller])
                    try Self.checkNodes(booking.request, locked: read.locked)
                    try self.check(booking.request, caller: caller, situation: situation, earlier: earlier, limits: limits)
                } catch {
                    outcomes[index] = .failure(error)
                    continue
                }
                accepted.append(index)
                // Like the stored ones, a reservation that is over by now counts for nobody.
                guard booking.request.end.microseconds > situation.now else { continue }
                for allocation in booking.request.allocations {
                    earlier.append(
                        TaskRepository.Overlap(
                            pair: NodeResource(node: allocation.node, resource: allocation.resource), amount: allocation.amount,
                            start: booking.request.start.microseconds, end: booking.request.end.microseconds, owner: booking.caller.id))
                }
            }
            guard !accepted.isEmpty else { return outcomes.map { $0! } }

            let tasks = accepted.map { index in
                let booking = bookings[index]
                return TaskRepository.NewTask(
                    request: booking.request, start: booking.request.start, end: booking.request.end, owner: booking.caller.id)
            }
            let inserted = try await self.tasks.insert(tasks, series: nil, answers: true, in: tx, logger: logger).tasks
            for (index, task) in zip(accepted, inserted) {
                let request = bookings[index].request
                outcomes[index] = .success(
                    Booked(id: task.id, changedWindows: [request.start.microseconds...request.end.microseconds], json: task.json ?? ""))
            }
            return outcomes.map { $0! }
        }
    }

    /// Every node of the request exists (the locks found it).
    private static func checkNodes(_ request: Request, locked: Set<Int>) throws {
        if let missing = request.allocations.first(where: { !locked.contains($0.node) }) {
            throw AppError.notFound("Node with id \(missing.node) not found!")
        }
    }

    /// Rewrites the caller's task `id`: the same checks as a new booking, its own reservations left out, under its row
    /// lock; a change of name or description alone passes whatever the task's status.
    private func update(_ id: Int, to request: Request, caller: CurrentUser, in tx: LeasedConnection, logger: Logger) async throws -> Booked {
        guard let stored = try await self.tasks.lockForUpdate(id: id, in: tx, logger: logger) else {
            throw AppError.notFound("Task with id \(id) not found!")
        }
        guard stored.owner == caller.id else { throw AppError.forbidden("Task is not owned by current user!") }
        let current = try await self.tasks.allocations(ofTask: id, in: tx, logger: logger)
        let heldNodes = Set(current.map(\.node))
        // Same times and the same allocation set: only name and description change, whatever the status.
        if stored.start == request.start.microseconds, stored.end == request.end.microseconds {
            if Set(current) == Set(request.allocations.map { Triple(node: $0.node, resource: $0.resource, amount: $0.amount) }) {
                try await self.tasks.rename(id: id, name: request.name, description: request.description, in: tx, logger: logger)
                return Booked(id: id, changedWindows: [])
            }
        }
        // The down-node guard covers the nodes a booking takes; a task keeps being editable on the nodes it already holds
        // (its owner may want to shorten or move it because the node is down).
        let query = TaskRepository.SituationQuery(
            request, start: request.start, end: request.end, overlapping: (request.start, request.end), excluding: id,
            guarded: { !heldNodes.contains($0) })
        let read = try await self.tasks.lockAndRead([query], callers: [caller.id], operations: self.operations, in: tx, logger: logger)
        let limits = try self.applicableLimits(request, caller: caller.id, limits: read.limits[caller.id])
        try Self.checkNodes(request, locked: read.locked)
        try self.check(request, caller: caller.id, situation: read.situations[0], earlier: [], limits: limits)
        if stored.status == "finished" {
            throw AppError.conflict("Task scheduling time cannot be updated after task has finished!")
        }
        if stored.status == "running", stored.start != request.start.microseconds {
            throw AppError.conflict("Task start time cannot be changed if task has already started!")
        }
        try await self.tasks.update(id, to: request, owner: caller.id, in: tx, logger: logger)
        return Booked(id: id, changedWindows: [request.start.microseconds...request.end.microseconds, stored.start...stored.end])
    }

    /// Under the node locks, what blocks the booking, in the order of its refusals: a maintenance window or a down
    /// node, a resource the node lacks, then the reservations (`checkOverlaps`).
    private func check(
        _ request: Request, caller: Int, situation: TaskRepository.Situation, earlier: [TaskRepository.Overlap],
        limits: [NodeResource: EffectiveLimits.Limit]
    ) throws {
        if let blocked = situation.blocked { throw AppError.conflict(blocked) }
        if let missing = request.allocations.first(where: { situation.capacity[NodeResource(node: $0.node, resource: $0.resource)] == nil }) {
            throw AppError.notFound("Node with id \(missing.node) doesn't have resource with id \(missing.resource)!")
        }
        try self.checkOverlaps(request, caller: caller, overlaps: situation.overlaps + earlier, capacity: situation.capacity, limits: limits)
    }

    /// What a series booking wrote.
    struct Series: Sendable {
        let id: Int
        let taskIDs: [Int]
        /// The occurrences' windows (microseconds), for Grafana and the capacity monitor.
        let windows: [ClosedRange<Int64>]
    }

    /// Books every occurrence of a series in one transaction, or none: the same checks as a single booking (limits,
    /// capacity, maintenance windows, the down-node guard), each occurrence against the reservations already there and
    /// the series' own earlier occurrences, under the node locks taken once. When any occurrence fails, the 409 lists
    /// every failing one with why, and nothing is written.
    func bookSeries(
        _ request: Request, occurrences: [(start: LocalDateTime, end: LocalDateTime)], rule: String, caller: CurrentUser, logger: Logger
    ) async throws -> Series {
        guard let first = occurrences.first, let last = occurrences.last else { throw AppError.badRequest("The series has no occurrence") }
        return try await self.db.transaction(logger: logger) { tx in
            let nodes = Array(Set(request.allocations.map(\.node))).sorted()
            let nodeBinds = nodes.map { Int32(truncatingIfNeeded: $0) }
            // Capacities, and what blocks the first occurrence (a window, or a down node when it starts soon: only the
            // first occurrence can start within the guard); the windows of the whole span for the others.
            let query = TaskRepository.SituationQuery(request, start: first.start, end: first.end, overlapping: (first.start, last.end))
            let read = try await self.tasks.lockAndRead([query], callers: [caller.id], operations: self.operations, in: tx, logger: logger)
            let limits = try self.applicableLimits(request, caller: caller.id, limits: read.limits[caller.id])
            try Self.checkNodes(request, locked: read.locked)
            let situation = read.situations[0]
            let capacity = situation.capacity, firstBlocked = situation.blocked
            if let missing = request.allocations.first(where: { capacity[NodeResource(node: $0.node, resource: $0.resource)] == nil }) {
                throw AppError.notFound("Node with id \(missing.node) doesn't have resource with id \(missing.resource)!")
            }
            let blocks = try await self.tasks.maintenanceBlocks(onNodes: nodeBinds, from: first.start, to: last.end, in: tx, logger: logger)
            var everyone: [NodeResource: [(start: Int64, end: Int64, amount: Int64)]] = [:]
            var own: [NodeResource: [(start: Int64, end: Int64, amount: Int64)]] = [:]
            for o in situation.overlaps {
                everyone[o.pair, default: []].append((o.start, o.end, o.amount))
                if o.owner == caller.id { own[o.pair, default: []].append((o.start, o.end, o.amount)) }
            }
            var names: (nodes: [Int: String], resources: [Int: String])?
            var failures: [String] = []
            for (index, occurrence) in occurrences.enumerated() {
                let from = occurrence.start.microseconds, to = occurrence.end.microseconds
                func within(_ list: [(start: Int64, end: Int64, amount: Int64)]?) -> [(start: Int64, end: Int64, amount: Int64)] {
                    (list ?? []).filter { $0.start < to && $0.end > from }
                }
                var why: [String] = []
                if index == 0, let firstBlocked {
                    why.append(firstBlocked)
                } else if let block = blocks.first(where: { $0.start < to && $0.end > from }) {
                    why.append(block.text)
                }
                for allocation in request.allocations {
                    let pair = NodeResource(node: allocation.node, resource: allocation.resource)
                    if self.limitScope == .concurrent, let limit = limits[pair],
                        allocation.amount + Self.peakLoad(within(own[pair]), from: from, to: to) > limit.amount
                    {
                        why.append("exceeds the limit \(limit.name) (\(limit.amount))")
                    }
                    if allocation.amount + Self.peakLoad(within(everyone[pair]), from: from, to: to) > capacity[pair] ?? 0 {
                        if names == nil {
                            names = try await self.tasks.names(
                                nodes: nodeBinds, resources: request.allocations.map { Int32(truncatingIfNeeded: $0.resource) }, in: tx,
                                logger: logger)
                        }
                        why.append(
                            "not enough \(names?.resources[allocation.resource] ?? "resource \(allocation.resource)") on node "
                                + (names?.nodes[allocation.node] ?? String(allocation.node)))
                    }
                }
                if why.isEmpty {
                    // Later occurrences count this one (a series may overlap itself when an occurrence outlasts the interval).
                    for allocation in request.allocations {
                        let pair = NodeResource(node: allocation.node, resource: allocation.resource)
                        everyone[pair, default: []].append((from, to, allocation.amount))
                        own[pair, default: []].append((from, to, allocation.amount))
                    }
                } else {
                    failures.append("\(occurrence.start.spaced): \(why.joined(separator: ", "))")
                }
            }
            guard failures.isEmpty else {
                throw AppError.conflict(
                    "\(failures.count) of \(occurrences.count) occurrences cannot be booked, so none is: " + failures.joined(separator: "; "))
            }
            let (series, tasks) = try await self.tasks.insert(
                occurrences.map { TaskRepository.NewTask(request: request, start: $0.start, end: $0.end, owner: caller.id) }, series: rule,
                answers: false, in: tx, logger: logger)
            guard let series else { throw AppError.internalError }
            return Series(id: series, taskIDs: tasks.map(\.id), windows: occurrences.map { $0.start.microseconds...$0.end.microseconds })
        }
    }

    /// Per (node, resource) of the request, the caller's effective limit (`limits`, nil when the caller no longer
    /// exists: a 404); the task's own amount is compared with it here, first of a booking's checks (in either scope a
    /// task larger than the limit is refused whatever else is booked). Returns the limits of the request's pairs for the
    /// concurrent check.
    func applicableLimits(_ request: Request, caller: Int, limits: EffectiveLimits?) throws -> [NodeResource: EffectiveLimits.Limit] {
        guard let limits else { throw AppError.notFound("User with id \(caller) not found!") }
        var applying: [NodeResource: EffectiveLimits.Limit] = [:]
        for allocation in request.allocations {
            guard let limit = limits.winners[NodeResource(node: allocation.node, resource: allocation.resource)] else { continue }
            if limit.amount < allocation.amount { throw Self.overLimit(limit) }
            applying[NodeResource(node: allocation.node, resource: allocation.resource)] = limit
        }
        return applying
    }

    static func overLimit(_ limit: EffectiveLimits.Limit) -> AppError {
        AppError.conflict("Task resource allocation exeeds user limits! Exceeded resource: \(limit.name), Limit: \(limit.amount)")
    }

    /// Per (node, resource), with the reservations overlapping the new interval (`overlaps`): with
    /// `LIMIT_SCOPE=concurrent`, the new amount plus the caller's own peak must fit the caller's limit; the new amount
    /// plus everyone's peak must fit the capacity.
    func checkOverlaps(
        _ request: Request, caller: Int, overlaps: [TaskRepository.Overlap], capacity: [NodeResource: Int64],
        limits: [NodeResource: EffectiveLimits.Limit]
    ) throws {
        var everyone: [NodeResource: [(start: Int64, end: Int64, amount: Int64)]] = [:]
        var own: [NodeResource: [(start: Int64, end: Int64, amount: Int64)]] = [:]
        let from = request.start.microseconds, to = request.end.microseconds
        for o in overlaps where o.start < to && o.end > from {
            everyone[o.pair, default: []].append((o.start, o.end, o.amount))
            if o.owner == caller { own[o.pair, default: []].append((o.start, o.end, o.amount)) }
        }
        if self.limitScope == .concurrent {
            for allocation in request.allocations {
                let pair = NodeResource(node: allocation.node, resource: allocation.resource)
                guard let limit = limits[pair] else { continue }
                if allocation.amount + Self.peakLoad(own[pair] ?? [], from: from, to: to) > limit.amount { throw Self.overLimit(limit) }
            }
        }
        for allocation in request.allocations {
            let pair = NodeResource(node: allocation.node, resource: allocation.resource)
            if allocation.amount + Self.peakLoad(everyone[pair] ?? [], from: from, to: to) > capacity[pair] ?? 0 {
                throw AppError.conflict("Not enough resources for the task!")
            }
        }
    }

    /// The largest total amount in use at any instant of [from, to). Ends sort before starts at the same instant.
    static func peakLoad(_ intervals: [(start: Int64, end: Int64, amount: Int64)], from: Int64, to: Int64) -> Int64 {
        var events: [(time: Int64, delta: Int64)] = []
        events.reserveCapacity(intervals.count * 2)
        for i in intervals {
            events.append((max(i.start, from), i.amount))
            events.append((min(i.end, to), -i.amount))
        }
        events.sort { $0.time != $1.time ? $0.time < $1.time : $0.delta < $1.delta }
        var load: Int64 = 0
        var peak: Int64 = 0
        for e in events {
            load += e.delta
            peak = max(peak, load)
        }
        return peak
    }
}
