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
    let db: Database
    var limitScope: LimitScope = .concurrent
    /// The down-node guard's settings (`NODE_DOWN_BOOKING_GUARD_MINUTES`, `NODE_STATUS_STALE_SECONDS`).
    var operations = OperationsSettings()
    var tasks: TaskRepository { TaskRepository(db: self.db) }

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

    func book(_ request: Request, caller: CurrentUser, logger: Logger) async throws -> Booked {
        try await self.db.transaction(logger: logger) { tx in
            var booked = try await self.store(request, caller: caller, in: tx, logger: logger)
            guard let json = try await self.tasks.json(id: booked.id, on: tx, logger: logger) else {
                throw AppError.notFound("Task with id \(booked.id) not found!")
            }
            booked.json = json
            return booked
        }
    }

    private func store(_ request: Request, caller: CurrentUser, in tx: LeasedConnection, logger: Logger) async throws -> Booked {
        let updatingID = request.id.flatMap { $0 == 0 ? nil : $0 }
        var stored: TaskRepository.Locked?
        var heldNodes: Set<Int> = []
        if let id = updatingID {
            guard let locked = try await self.tasks.lockForUpdate(id: id, in: tx, logger: logger) else {
                throw AppError.notFound("Task with id \(id) not found!")
            }
            guard locked.owner == caller.id else { throw AppError.forbidden("Task is not owned by current user!") }
            stored = locked
            let current = try await self.tasks.allocations(ofTask: id, in: tx, logger: logger)
            heldNodes = Set(current.map(\.node))
            // Same times and the same allocation set: only name and description change, whatever the status.
            if locked.start == request.start.microseconds, locked.end == request.end.microseconds {
                if Set(current) == Set(request.allocations.map { Triple(node: $0.node, resource: $0.resource, amount: $0.amount) }) {
                    try await self.tasks.rename(id: id, name: request.name, description: request.description, in: tx, logger: logger)
                    return Booked(id: id, changedWindows: [])
                }
            }
        }
        let nodes = Array(Set(request.allocations.map(\.node))).sorted()
        let nodeBinds = nodes.map { Int32(truncatingIfNeeded: $0) }
        let limits = try await self.checkLimits(request, caller: caller, tx, logger)

        // Serialise bookings per node: every booking touching one of these nodes waits here.
        let locked = try await NodeRepository(db: self.db).lockForBooking(nodeBinds, in: tx, logger: logger)
        if let missing = request.allocations.first(where: { !locked.contains($0.node) }) {
            throw AppError.notFound("Node with id \(missing.node) not found!")
        }
        // The down-node guard covers the nodes a booking takes; a task keeps being editable on the nodes it already holds
        // (its owner may want to shorten or move it because the node is down).
        let guarded = nodeBinds.filter { !heldNodes.contains(Int($0)) }
        let situation = try await self.tasks.situation(
            ofNodes: nodeBinds, guarding: guarded, from: request.start, to: request.end, overlapping: (request.start, request.end),
            excluding: updatingID ?? 0, caller: caller.id, operations: self.operations, in: tx, logger: logger)
        if let blocked = situation.blocked { throw AppError.conflict(blocked) }
        if let missing = request.allocations.first(where: { situation.capacity[NodeResource(node: $0.node, resource: $0.resource)] == nil }) {
            throw AppError.notFound("Node with id \(missing.node) doesn't have resource with id \(missing.resource)!")
        }
        try self.checkOverlaps(request, situation: situation, limits: limits)

        if let stored {
            if stored.status == "finished" {
                throw AppError.conflict("Task scheduling time cannot be updated after task has finished!")
            }
            if stored.status == "running", stored.start != request.start.microseconds {
                throw AppError.conflict("Task start time cannot be changed if task has already started!")
            }
        }
        let id = try await self.tasks.write(request, updating: updatingID, owner: caller.id, in: tx, logger: logger)
        var windows = [request.start.microseconds...request.end.microseconds]
        if let stored { windows.append(stored.start...stored.end) }
        return Booked(id: id, changedWindows: windows)
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
            let limits = try await self.checkLimits(request, caller: caller, tx, logger)
            let locked = try await NodeRepository(db: self.db).lockForBooking(nodeBinds, in: tx, logger: logger)
            if let missing = request.allocations.first(where: { !locked.contains($0.node) }) {
                throw AppError.notFound("Node with id \(missing.node) not found!")
            }
            // Capacities, and what blocks the first occurrence (a window, or a down node when it starts soon: only the
            // first occurrence can start within the guard); the windows of the whole span for the others.
            let situation = try await self.tasks.situation(
                ofNodes: nodeBinds, guarding: nodeBinds, from: first.start, to: first.end, overlapping: (first.start, last.end),
                excluding: 0, caller: caller.id, operations: self.operations, in: tx, logger: logger)
            let capacity = situation.capacity, firstBlocked = situation.blocked
            if let missing = request.allocations.first(where: { capacity[NodeResource(node: $0.node, resource: $0.resource)] == nil }) {
                throw AppError.notFound("Node with id \(missing.node) doesn't have resource with id \(missing.resource)!")
            }
            let blocks = try await self.tasks.maintenanceBlocks(onNodes: nodeBinds, from: first.start, to: last.end, in: tx, logger: logger)
            var everyone: [NodeResource: [(start: Int64, end: Int64, amount: Int64)]] = [:]
            var own: [NodeResource: [(start: Int64, end: Int64, amount: Int64)]] = [:]
            for o in situation.overlaps {
                everyone[o.pair, default: []].append((o.start, o.end, o.amount))
                if o.ownedByCaller { own[o.pair, default: []].append((o.start, o.end, o.amount)) }
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
            let (series, ids) = try await self.tasks.writeSeries(request, occurrences: occurrences, rule: rule, owner: caller.id, in: tx, logger: logger)
            return Series(id: series, taskIDs: ids, windows: occurrences.map { $0.start.microseconds...$0.end.microseconds })
        }
    }

    /// Per (node, resource) of the request, the caller's effective limit; the task's own amount is compared with it
    /// here (before any lock: in either scope a task larger than the limit is refused at once). Returns the limits of
    /// the request's pairs for the concurrent check.
    func checkLimits(_ request: Request, caller: CurrentUser, _ tx: LeasedConnection, _ logger: Logger) async throws -> [NodeResource: EffectiveLimits.Limit] {
        guard let limits = try await LimitRepository(db: self.db).effective(forUser: caller.id, on: tx, logger: logger) else {
            throw AppError.notFound("User with id \(caller.id) not found!")
        }
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

    /// Under the node locks, per (node, resource) with the reservations overlapping the new interval: with
    /// `LIMIT_SCOPE=concurrent`, the new amount plus the caller's own peak must fit the caller's limit; the new amount
    /// plus everyone's peak must fit the capacity.
    func checkOverlaps(_ request: Request, situation: TaskRepository.Situation, limits: [NodeResource: EffectiveLimits.Limit]) throws {
        var everyone: [NodeResource: [(start: Int64, end: Int64, amount: Int64)]] = [:]
        var own: [NodeResource: [(start: Int64, end: Int64, amount: Int64)]] = [:]
        for o in situation.overlaps {
            everyone[o.pair, default: []].append((o.start, o.end, o.amount))
            if o.ownedByCaller { own[o.pair, default: []].append((o.start, o.end, o.amount)) }
        }
        let from = request.start.microseconds, to = request.end.microseconds
        if self.limitScope == .concurrent {
            for allocation in request.allocations {
                let pair = NodeResource(node: allocation.node, resource: allocation.resource)
                guard let limit = limits[pair] else { continue }
                if allocation.amount + Self.peakLoad(own[pair] ?? [], from: from, to: to) > limit.amount { throw Self.overLimit(limit) }
            }
        }
        for allocation in request.allocations {
            let pair = NodeResource(node: allocation.node, resource: allocation.resource)
            if allocation.amount + Self.peakLoad(everyone[pair] ?? [], from: from, to: to) > situation.capacity[pair] ?? 0 {
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
