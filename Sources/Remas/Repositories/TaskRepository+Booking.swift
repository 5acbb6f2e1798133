import Logging
import PostgresNIO

/// The statements of a booking (`tasks`, `allocations` and the task's start/end `events`), each run inside the
/// booking's transaction (`BookingService` decides; these read and write).
extension TaskRepository {
    /// A task as it is stored, locked until the transaction ends; nil when there is no such task.
    struct Locked: Sendable {
        let owner: Int
        let status: String
        /// Microseconds of local time.
        let start: Int64
        let end: Int64
    }

    func lockForUpdate(id: Int, in tx: LeasedConnection, logger: Logger) async throws -> Locked? {
        let rows = try await tx.query(
            """
            SELECT owner_id, remas_status(start_time, end_time),
                   (extract(epoch FROM start_time) * 1000000)::int8, (extract(epoch FROM end_time) * 1000000)::int8
            FROM tasks WHERE id = \(id) FOR UPDATE
            """, logger: logger)
        return try rows.first.map {
            let (owner, status, start, end) = try $0.decode((Int, String, Int64, Int64).self)
            return Locked(owner: owner, status: status, start: start, end: end)
        }
    }

    /// The task's allocations as (node, resource, amount).
    func allocations(ofTask id: Int, in tx: LeasedConnection, logger: Logger) async throws -> [BookingService.Triple] {
        try await tx.query("SELECT node_id, resource_id, amount FROM allocations WHERE task_id = \(id)", logger: logger).map { row in
            let (n, r, a) = try row.decode((Int, Int, Int64).self)
            return BookingService.Triple(node: n, resource: r, amount: a)
        }
    }

    func rename(id: Int, name: String, description: String?, in tx: LeasedConnection, logger: Logger) async throws {
        try await tx.query("UPDATE tasks SET name = \(name), description = \(description) WHERE id = \(id)", logger: logger)
    }

    /// What one booking is checked against (`lockAndRead`): its interval, the interval whose reservations count, the
    /// task it replaces (0: none) and what it asks for (each (node, resource) once), with whether the down-node guard
    /// covers the node.
    struct SituationQuery: Sendable {
        var start: LocalDateTime
        var end: LocalDateTime
        var overlapping: (from: LocalDateTime, to: LocalDateTime)
        var excluding: Int = 0
        var allocations: [(node: Int32, resource: Int32, guarded: Bool)]

        /// A booking of `request`'s allocations over `overlapping`, every node guarded unless `guarded` says otherwise.
        init(
            _ request: BookingService.Request, start: LocalDateTime, end: LocalDateTime, overlapping: (from: LocalDateTime, to: LocalDateTime),
            excluding: Int = 0, guarded: (Int) -> Bool = { _ in true }
        ) {
            self.start = start
            self.end = end
            self.overlapping = overlapping
            self.excluding = excluding
            self.allocations = request.allocations.map {
                (Int32(truncatingIfNeeded: $0.node), Int32(truncatingIfNeeded: $0.resource), guarded($0.node))
            }
        }
    }

    /// What `lockAndRead` found.
    struct BookingRead: Sendable {
        /// The nodes that exist, now locked.
        var locked: Set<Int> = []
        /// Per caller, their effective limits; a caller that does not exist has none.
        var limits: [Int: EffectiveLimits] = [:]
        /// One per query, in their order.
        var situations: [Situation] = []
    }

    /// The first step of bookings, in one prepared statement for any number of them (`BookingCheckStatement`):
    /// - the effective limits of the `callers` (as `LimitRepository.effective`: read, like before, without a lock);
    /// - the locks of the queries' nodes (all of them, in id order: every booking touching one of these nodes waits
    ///   here), and the reminders' receivers lock, shared (`EventRepository.receiversLock`);
    /// - then, read after those locks are held (so it sees every reservation committed by the bookings it waited for),
    ///   what each booking is checked against: what the nodes provide of the resources asked for, per (node, resource)
    ///   (the same for every booking); why the booking cannot have them, worded as its 409 (nil when nothing blocks
    ///   it): the first maintenance window (by node id, then start) that overlaps [start, end) on one of its nodes,
    ///   else the first of its guarded nodes that is down (a current report) when the booking starts within
    ///   `NODE_DOWN_BOOKING_GUARD_MINUTES`; the scheduled and running reservations of what it asks for that overlap
    ///   `overlapping` (touching intervals do not), the task `excluding` left out, with their owners: one indexed range
    ///   scan per (booking, node, resource), each row's owner looked up by primary key (a join let the planner hash
    ///   all tasks: +2 ms with 5,000 tasks).
    func lockAndRead(
        _ queries: [SituationQuery], callers: [Int], operations: OperationsSettings, in tx: LeasedConnection, logger: Logger
    ) async throws -> BookingRead {
        var statement = BookingCheckStatement(
            guardMinutes: Int32(operations.bookingGuardMinutes), staleSeconds: Int32(operations.statusStaleSeconds))
        statement.callers = Set(callers.map { Int32(truncatingIfNeeded: $0) }).sorted()
        var allNodes = Set<Int32>()
        for (index, query) in queries.enumerated() {
            statement.starts.append(query.start.sqlText)
            statement.ends.append(query.end.sqlText)
            statement.overlapFrom.append(query.overlapping.from.sqlText)
            statement.overlapTo.append(query.overlapping.to.sqlText)
            statement.excluding.append(Int32(truncatingIfNeeded: query.excluding))
            for (node, resource, guarded) in query.allocations {
                statement.entries.append(Int32(index + 1))
                statement.entryNodes.append(node)
                statement.entryResources.append(resource)
                statement.guarded.append(guarded && operations.bookingGuardMinutes > 0)
                allNodes.insert(node)
            }
        }
        statement.nodes = allNodes.sorted()
        var read = BookingRead()
        var capacity: [NodeResource: Int64] = [:]
        var situations = Array(repeating: Situation(), count: queries.count)
        var downs = [String?](repeating: nil, count: queries.count)
        var callers = Set<Int>()
        var candidates: [Int: [EffectiveLimits.Limit]] = [:]
        var now: Int64 = 0
        for row in try await tx.run(statement, logger: logger) {
            switch row {
            case .locked(let node): read.locked.insert(node)
            case .capacity(let pair, let amount, let clock):
                capacity[pair] = amount
                now = clock
            case .blocked(let index, let text): situations[index].blocked = text
            case .down(let index, let text): downs[index] = text
            case .overlap(let index, let overlap): situations[index].overlaps.append(overlap)
            case .caller(let id): callers.insert(id)
            case .candidate(let caller, let limit): candidates[caller, default: []].append(limit)
            }
        }
        for index in situations.indices {
            situations[index].capacity = capacity
            situations[index].now = now
            if situations[index].blocked == nil { situations[index].blocked = downs[index] }
        }
        read.situations = situations
        for caller in callers { read.limits[caller] = EffectiveLimits(candidates: candidates[caller] ?? []) }
        return read
    }

    struct Situation: Sendable {
        var capacity: [NodeResource: Int64] = [:]
        /// The database's clock (microseconds of local time) when it was read: reservations that end by then no longer
        /// count (0 when the nodes provide nothing).
        var now: Int64 = 0
        var blocked: String?
        var overlaps: [Overlap] = []
    }

    /// One reservation overlapping a booking's interval.
    struct Overlap: Sendable {
        let pair: NodeResource
        let amount: Int64
        let start: Int64
        let end: Int64
        /// The task's owner (nil only when the task vanished under the read, which the node locks prevent).
        let owner: Int?
    }

    /// Rewrites a task (`id`): its name, description and times, its allocations, its start/end events moved with it,
    /// and its owner's reminders of it recomputed.
    func update(_ id: Int, to request: BookingService.Request, owner: Int, in tx: LeasedConnection, logger: Logger) async throws {
        let start = request.start.sqlText
        let end = request.end.sqlText
        try await tx.query(
            """
            UPDATE tasks SET name = \(request.name), description = \(request.description),
                start_time = \(start)::timestamp, end_time = \(end)::timestamp WHERE id = \(id)
            """, logger: logger)
        try await tx.query("DELETE FROM allocations WHERE task_id = \(id)", logger: logger)
        // Existing start/end events move with the task (their names stay as they were); one that moved is due again.
        try await tx.query(
            """
            UPDATE events SET time = x.at, state = 'pending', attempts = 0, retry_at = NULL, processed_at = NULL, last_error = NULL
            FROM (VALUES ('task_start', \(start)::timestamp), ('task_end', \(end)::timestamp)) AS x(type, at)
            WHERE events.task_id = \(id) AND events.type = x.type AND events.time IS DISTINCT FROM x.at
            """, logger: logger)
        try await tx.query(
            """
            INSERT INTO allocations (task_id, node_id, resource_id, amount, start_time, end_time)
            SELECT \(id), x.n, x.r, x.a, \(start)::timestamp, \(end)::timestamp
            FROM unnest(\(request.allocations.map { Int32(truncatingIfNeeded: $0.node) })::int4[],
                        \(request.allocations.map { Int32(truncatingIfNeeded: $0.resource) })::int4[],
                        \(request.allocations.map(\.amount))::int8[]) AS x(n, r, a)
            """, logger: logger)
        // Reminders of the notifications the owner receives follow the task's new times (the receivers' lock is held
        // since the node locks: `lockAndRead`).
        try await EventRepository(db: self.db).reschedule(users: [owner], tasks: [id], in: tx, logger: logger)
    }

    /// A task to insert: the request's fields at one (start, end), owned by `owner`.
    struct NewTask: Sendable {
        let request: BookingService.Request
        let start: LocalDateTime
        let end: LocalDateTime
        let owner: Int
    }

    /// Inserts the tasks, each with its start and end events, its allocations and its owner's reminders of it, and with
    /// a rule, the series that holds them all (`NewTasksStatement`, prepared: one statement whatever their number; the
    /// receivers' lock is held since the node locks: `lockAndRead`). Returns the series id (nil without a rule) and the
    /// task ids in the order of `tasks`, each with its answer (TaskFull) when `answers` is set, built by the same
    /// statement from what it inserts.
    func insert(_ tasks: [NewTask], series rule: String?, answers: Bool, in tx: LeasedConnection, logger: Logger) async throws
        -> (series: Int?, tasks: [(id: Int, json: String?)])
    {
        var statement = NewTasksStatement(rule: rule, answers: answers)
        for (index, task) in tasks.enumerated() {
            statement.names.append(task.request.name)
            statement.descriptions.append(task.request.description ?? "")
            statement.described.append(task.request.description != nil)
            statement.starts.append(task.start.sqlText)
            statement.ends.append(task.end.sqlText)
            statement.owners.append(Int32(truncatingIfNeeded: task.owner))
            for allocation in task.request.allocations {
                statement.allocationTasks.append(Int32(index + 1))
                statement.nodes.append(Int32(truncatingIfNeeded: allocation.node))
                statement.resources.append(Int32(truncatingIfNeeded: allocation.resource))
                statement.amounts.append(allocation.amount)
            }
        }
        let rows = try await tx.run(statement, logger: logger)
        guard rows.count == tasks.count, !answers || rows.allSatisfy({ $0.2 != nil }) else { throw AppError.internalError }
        return (rows.first?.0.map(Int.init), rows.map { (Int($0.1), $0.2) })
    }

}

/// `TaskRepository.lockAndRead`: the callers' limit candidates (`LimitRepository.candidatesSQL` for the users `$13`),
/// and the rows of `remas_booking_situation` (migration 0016, which takes the node locks and then reads, with a new
/// snapshot, what the bookings are checked against): kind 4, a node locked (of `$1`); kind 0, a capacity asked for
/// with the database's clock; per booking (its number, from 1, in `entry`), at most one row of kind 1 naming a
/// maintenance conflict and at most one of kind 2 naming a down node, and rows of kind 3, the reservations overlapping
/// its window with their times in microseconds and their owners. What a booking asks for is the rows of
/// `$7`…`$10` with its number.
struct BookingCheckStatement: NamedStatement {
    enum Row: Sendable {
        case locked(Int)
        case capacity(NodeResource, amount: Int64, now: Int64)
        case blocked(Int, String)
        case down(Int, String)
        case overlap(Int, TaskRepository.Overlap)
        /// The caller exists.
        case caller(Int)
        case candidate(caller: Int, EffectiveLimits.Limit)
    }

    static let sql = """
        SELECT r_kind, r_entry, r_node, r_resource, r_amount, r_text, r_from, r_to, r_owner, NULL::varchar, NULL::int4, NULL::int4[]
        FROM remas_booking_situation($1::int4[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::int4[], $8::int4[],
                                     $9::int4[], $10::bool[], $11::int4, $12::int4)
        UNION ALL
        SELECT CASE WHEN c.depth < 0 THEN 6 ELSE 5 END, c.who, c.id, c.resource_id, c.amount, c.name, c.depth, NULL, c.user_id, c.description,
               c.group_id, c.node_ids
        FROM (\(LimitRepository.candidatesSQL(
                seed: "SELECT u.id, u.group_id, 1 FROM users u WHERE u.id = ANY($13::int4[])",
                sentinel: "SELECT id FROM users WHERE id = ANY($13::int4[])", ownLimits: "l.user_id = ANY($13::int4[])"))
        ) c(who, id, name, description, amount, user_id, group_id, resource_id, depth, node_ids)
        """
    static var bindingDataTypes: [PostgresDataType] {
        [.int4Array, .textArray, .textArray, .textArray, .textArray, .int4Array, .int4Array, .int4Array, .int4Array, .boolArray, .int4, .int4,
         .int4Array]
    }

    var nodes: [Int32] = []
    var starts: [String] = []
    var ends: [String] = []
    var overlapFrom: [String] = []
    var overlapTo: [String] = []
    var excluding: [Int32] = []
    var entries: [Int32] = []
    var entryNodes: [Int32] = []
    var entryResources: [Int32] = []
    var guarded: [Bool] = []
    let guardMinutes: Int32
    let staleSeconds: Int32
    var callers: [Int32] = []

    init(guardMinutes: Int32, staleSeconds: Int32) {
        self.guardMinutes = guardMinutes
        self.staleSeconds = staleSeconds
    }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 13)
        bindings.append(self.nodes)
        bindings.append(self.starts)
        bindings.append(self.ends)
        bindings.append(self.overlapFrom)
        bindings.append(self.overlapTo)
        bindings.append(self.excluding)
        bindings.append(self.entries)
        bindings.append(self.entryNodes)
        bindings.append(self.entryResources)
        bindings.append(self.guarded)
        bindings.append(self.guardMinutes)
        bindings.append(self.staleSeconds)
        bindings.append(self.callers)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (kind, entry, n, r, amount, text, from, to, owner, description, group, limitNodes) =
            try row.decode((Int32, Int32, Int32, Int32, Int64, String?, Int64?, Int64?, Int32?, String?, Int32?, [Int32]?).self)
        let index = Int(entry) - 1
        switch kind {
        case 4: return .locked(Int(n))
        case 0: return .capacity(NodeResource(node: Int(n), resource: Int(r)), amount: amount, now: from ?? 0)
        case 1: return .blocked(index, text ?? "")
        case 2: return .down(index, text ?? "")
        case 3:
            guard let from, let to else { throw AppError.internalError }
            return .overlap(
                index,
                TaskRepository.Overlap(
                    pair: NodeResource(node: Int(n), resource: Int(r)), amount: amount, start: from, end: to, owner: owner.map(Int.init)))
        case 6: return .caller(Int(entry))
        default:
            return .candidate(
                caller: Int(entry),
                EffectiveLimits.Limit(
                    id: Int(n), name: text ?? "", description: description, amount: amount, userID: owner.map(Int.init),
                    groupID: group.map(Int.init), resourceID: Int(r), depth: Int(from ?? 0), nodeIDs: (limitNodes ?? []).map(Int.init)))
        }
    }
}

/// `TaskRepository.insert`: the tasks of `$1`…`$6` (name, description, whether it has one, start, end, owner), their
/// start and end events, the allocations `$8`…`$10` of task number `$7` (from 1), when a rule `$11` is given the
/// series of them all (owned by the first task's owner) and its links, and the reminders of the notifications their
/// owners (`$12`, each once) receive (`RescheduleRemindersSQL.desired` and `.added(newTasks: true)`: a new task has no
/// reminder to move, remove or skip). Each task's id is drawn from the sequence first, so the rows map ids to tasks by their number,
/// not by any order of insertion. Returns a row per task in the order of the arrays: the series id (NULL without a
/// rule), the task id and, when `$13`, its answer (TaskFull), built from the rows being inserted (which the
/// statement's own snapshot cannot see): a new task has no tags, and its allocations are those of the arrays.
struct NewTasksStatement: NamedStatement {
    typealias Row = (Int32?, Int32, String?)
    static let sql = """
        WITH RECURSIVE \(NotificationRepository.receives(of: "$12::int4[]", fewUsers: true)),
        x AS MATERIALIZED (
            SELECT nextval('tasks_id_seq')::int4 AS id, x.n, x.name, CASE WHEN x.described THEN x.description END AS description,
                   x.s::timestamp AS start_time, x.e::timestamp AS end_time, x.owner
            FROM unnest($1::text[], $2::text[], $3::bool[], $4::text[], $5::text[], $6::int4[])
                 WITH ORDINALITY AS x(name, description, described, s, e, owner, n)),
        a AS MATERIALIZED (SELECT * FROM unnest($7::int4[], $8::int4[], $9::int4[], $10::int8[]) AS a(n, node_id, resource_id, amount)),
        s AS (INSERT INTO task_series (rule, owner_id) SELECT $11, $6[1] WHERE $11 IS NOT NULL RETURNING id),
        t AS (
            INSERT INTO tasks (id, name, description, start_time, end_time, owner_id)
            SELECT x.id, x.name, x.description, x.start_time, x.end_time, x.owner FROM x ORDER BY x.n
            RETURNING id, name, start_time, end_time),
        members AS (INSERT INTO task_series_members (series_id, task_id) SELECT s.id, t.id FROM s, t),
        start_end AS (
            INSERT INTO events (name, description, time, type, task_id)
            SELECT t.name || ' start', 'Start of ' || t.name, t.start_time, 'task_start', t.id FROM t
            UNION ALL
            SELECT t.name || ' end', 'End of ' || t.name, t.end_time, 'task_end', t.id FROM t),
        allocated AS (
            INSERT INTO allocations (task_id, node_id, resource_id, amount, start_time, end_time)
            SELECT x.id, a.node_id, a.resource_id, a.amount, x.start_time, x.end_time FROM a JOIN x ON x.n = a.n),
        scope AS (SELECT x.id, x.name, x.owner AS owner_id, x.start_time, x.end_time FROM x),
        \(RescheduleRemindersSQL.desired),
        \(RescheduleRemindersSQL.added(newTasks: true))
        SELECT (SELECT id FROM s), x.id, CASE WHEN $13 THEN (\(TaskSQL.full("x", allocations: ("a ta", "ta.n = x.n"))))::text END
        FROM x ORDER BY x.n
        """
    static var bindingDataTypes: [PostgresDataType] {
        [.textArray, .textArray, .boolArray, .textArray, .textArray, .int4Array, .int4Array, .int4Array, .int4Array, .int8Array, .varchar,
         .int4Array, .bool]
    }

    var names: [String] = []
    var descriptions: [String] = []
    var described: [Bool] = []
    var starts: [String] = []
    var ends: [String] = []
    var owners: [Int32] = []
    var allocationTasks: [Int32] = []
    var nodes: [Int32] = []
    var resources: [Int32] = []
    var amounts: [Int64] = []
    let rule: String?
    let answers: Bool

    init(rule: String?, answers: Bool) {
        self.rule = rule
        self.answers = answers
    }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 13)
        bindings.append(self.names)
        bindings.append(self.descriptions)
        bindings.append(self.described)
        bindings.append(self.starts)
        bindings.append(self.ends)
        bindings.append(self.owners)
        bindings.append(self.allocationTasks)
        bindings.append(self.nodes)
        bindings.append(self.resources)
        bindings.append(self.amounts)
        bindings.append(self.rule)
        bindings.append(Array(Set(self.owners)).sorted())
        bindings.append(self.answers)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

// MARK: series

extension TaskRepository {
    /// A maintenance window on one of the nodes that overlaps [start, end), worded as the booking's 409.
    struct Block: Sendable {
        let start: Int64
        let end: Int64
        let text: String
    }

    /// The maintenance windows on the nodes that overlap [start, end), for a series checked occurrence by occurrence.
    func maintenanceBlocks(onNodes nodes: [Int32], from start: LocalDateTime, to end: LocalDateTime, in tx: LeasedConnection, logger: Logger)
        async throws -> [Block]
    {
        try await tx.query(
            """
            SELECT (extract(epoch FROM w.start_time) * 1000000)::int8, (extract(epoch FROM w.end_time) * 1000000)::int8,
                   'Node ' || n.name || ' is under maintenance from ' || remas_ts(w.start_time) || ' to ' || remas_ts(w.end_time)
                   || ' (' || w.name || ')'
            FROM maintenance_windows w JOIN nodes n
              ON n.id = ANY(\(nodes))
             AND (w.all_nodes OR EXISTS (SELECT 1 FROM maintenance_nodes m WHERE m.window_id = w.id AND m.node_id = n.id))
            WHERE w.end_time > \(start.sqlText)::timestamp AND w.start_time < \(end.sqlText)::timestamp
            ORDER BY n.id, w.start_time
            """, logger: logger
        ).map { row in
            let (s, e, text) = try row.decode((Int64, Int64, String).self)
            return Block(start: s, end: e, text: text)
        }
    }

    /// Node and resource names of a request, for the series' 409.
    func names(nodes: [Int32], resources: [Int32], in tx: LeasedConnection, logger: Logger) async throws -> (nodes: [Int: String], resources: [Int: String]) {
        var result: (nodes: [Int: String], resources: [Int: String]) = ([:], [:])
        for row in try await tx.query(
            """
            SELECT 0, id, name FROM nodes WHERE id = ANY(\(nodes))
            UNION ALL SELECT 1, id, name FROM resources WHERE id = ANY(\(resources))
            """, logger: logger)
        {
            let (kind, id, name) = try row.decode((Int, Int, String).self)
            if kind == 0 { result.nodes[id] = name } else { result.resources[id] = name }
        }
        return result
    }
}
