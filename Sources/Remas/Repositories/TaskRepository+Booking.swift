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

    /// What a booking is checked against, read under the node locks (like the windows' own writes and the status
    /// reports) in one prepared statement:
    /// - what each of the nodes provides, per (node, resource);
    /// - why the booking cannot have them, worded as its 409 (nil when nothing blocks it): the first maintenance window
    ///   (by node id, then start) that overlaps [start, end) on one of them, else the first of the `guarding` nodes that
    ///   is down (a current report) when the booking starts within `NODE_DOWN_BOOKING_GUARD_MINUTES`;
    /// - the scheduled and running reservations on the nodes that overlap `overlapping` (touching intervals do not),
    ///   the task `excluding` left out: one indexed range scan, each row's owner looked up by primary key (a join let
    ///   the planner hash all tasks: +2 ms with 5,000 tasks).
    func situation(
        ofNodes nodes: [Int32], guarding: [Int32], from start: LocalDateTime, to end: LocalDateTime,
        overlapping window: (from: LocalDateTime, to: LocalDateTime), excluding taskID: Int, caller: Int, operations: OperationsSettings,
        in tx: LeasedConnection, logger: Logger
    ) async throws -> Situation {
        var situation = Situation()
        let statement = BookingSituationStatement(
            nodes: nodes, start: start.sqlText, end: end.sqlText, guarding: operations.bookingGuardMinutes > 0 ? guarding : [],
            guardMinutes: Int32(operations.bookingGuardMinutes), staleSeconds: Int32(operations.statusStaleSeconds),
            overlapFrom: window.from.sqlText, overlapTo: window.to.sqlText, excluding: Int32(truncatingIfNeeded: taskID),
            caller: Int32(truncatingIfNeeded: caller))
        for (n, r, amount, conflict, from, to, mine) in try await tx.run(statement, logger: logger) {
            let pair = NodeResource(node: Int(n), resource: Int(r))
            if let conflict {
                situation.blocked = situation.blocked ?? conflict
            } else if let from, let to {
                situation.overlaps.append(Overlap(pair: pair, amount: amount, start: from, end: to, ownedByCaller: mine ?? false))
            } else {
                situation.capacity[pair] = amount
            }
        }
        return situation
    }

    struct Situation: Sendable {
        var capacity: [NodeResource: Int64] = [:]
        var blocked: String?
        var overlaps: [Overlap] = []
    }

    /// One reservation overlapping a booking's interval.
    struct Overlap: Sendable {
        let pair: NodeResource
        let amount: Int64
        let start: Int64
        let end: Int64
        let ownedByCaller: Bool
    }

    /// Writes the task (a new one when `id` is nil, with its start and end events), replaces its allocations, moves
    /// its start/end events with it and recomputes its owner's reminders of it. Returns the task's id.
    func write(_ request: BookingService.Request, updating id: Int?, owner: Int, in tx: LeasedConnection, logger: Logger) async throws -> Int {
        let start = request.start.sqlText
        let end = request.end.sqlText
        let taskID: Int
        if let id {
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
            taskID = id
        } else {
            taskID = try await self.insertTasks(request, at: [(request.start, request.end)], series: nil, owner: owner, in: tx, logger: logger)
                .tasks[0]
        }
        // Reminders of the notifications the owner receives follow the task's new times (the receivers' lock is held
        // since the node lock: `NodeRepository.lockForBooking`).
        try await EventRepository(db: self.db).reschedule(users: [owner], tasks: [taskID], in: tx, logger: logger)
        return taskID
    }

    /// Inserts one task of the request per (start, end), each with its start and end events and its allocations, and
    /// with a rule, the series that holds them (`NewTasksStatement`, prepared). Returns the series id (nil without a
    /// rule) and the task ids by start.
    func insertTasks(
        _ request: BookingService.Request, at times: [(start: LocalDateTime, end: LocalDateTime)], series rule: String?, owner: Int,
        in tx: LeasedConnection, logger: Logger
    ) async throws -> (series: Int?, tasks: [Int]) {
        let statement = NewTasksStatement(
            name: request.name, description: request.description, starts: times.map(\.start.sqlText), ends: times.map(\.end.sqlText),
            owner: Int32(truncatingIfNeeded: owner), nodes: request.allocations.map { Int32(truncatingIfNeeded: $0.node) },
            resources: request.allocations.map { Int32(truncatingIfNeeded: $0.resource) }, amounts: request.allocations.map(\.amount),
            rule: rule)
        guard let (series, tasks) = try await tx.run(statement, logger: logger).first, tasks.count == times.count else {
            throw AppError.internalError
        }
        return (series.map(Int.init), tasks.map(Int.init))
    }

}

/// `TaskRepository.situation`: the capacity rows, then at most one row naming a maintenance conflict, then at most one
/// naming a down node (the down branch reads `node_status` by primary key for the guarded nodes only), then the
/// overlapping reservations (with their times in microseconds and whether the caller owns them).
struct BookingSituationStatement: PostgresPreparedStatement {
    typealias Row = (Int32, Int32, Int64, String?, Int64?, Int64?, Bool?)
    static let sql = """
        SELECT nr.node_id, nr.resource_id, nr.amount, NULL::text, NULL::int8, NULL::int8, NULL::bool
        FROM node_resources nr WHERE nr.node_id = ANY($1::int4[])
        UNION ALL
        (SELECT 0, 0, 0::int8, 'Node ' || n.name || ' is under maintenance from ' || remas_ts(w.start_time) || ' to '
                || remas_ts(w.end_time) || ' (' || w.name || ')', NULL, NULL, NULL
         FROM maintenance_windows w JOIN nodes n
           ON n.id = ANY($1::int4[])
          AND (w.all_nodes OR EXISTS (SELECT 1 FROM maintenance_nodes m WHERE m.window_id = w.id AND m.node_id = n.id))
         WHERE w.end_time > $2::timestamp AND w.start_time < $3::timestamp
         ORDER BY n.id, w.start_time
         LIMIT 1)
        UNION ALL
        (SELECT 0, 0, 0::int8, 'Node ' || n.name || ' is down since ' || remas_ts(s.since) || ': ' || COALESCE(s.message, 'no reason given'),
                NULL, NULL, NULL
         FROM node_status s JOIN nodes n ON n.id = s.node_id
         WHERE s.node_id = ANY($4::int4[]) AND s.status = 'down'
           AND $2::timestamp < localtimestamp + make_interval(mins => $5::int4)
           AND (s.source NOT LIKE 'api key %' OR s.reported_at >= localtimestamp - make_interval(secs => $6::int4))
         ORDER BY n.id
         LIMIT 1)
        UNION ALL
        SELECT a.node_id, a.resource_id, a.amount, NULL,
               (extract(epoch FROM a.start_time) * 1000000)::int8, (extract(epoch FROM a.end_time) * 1000000)::int8,
               (SELECT t.owner_id FROM tasks t WHERE t.id = a.task_id) = $10::int4
        FROM allocations a
        WHERE a.node_id = ANY($1::int4[]) AND a.end_time > $7::timestamp AND a.start_time < $8::timestamp
          AND a.end_time > localtimestamp AND a.task_id <> $9::int4
        """
    static var bindingDataTypes: [PostgresDataType] { [.int4Array, .text, .text, .int4Array, .int4, .int4, .text, .text, .int4, .int4] }

    let nodes: [Int32]
    let start: String
    let end: String
    let guarding: [Int32]
    let guardMinutes: Int32
    let staleSeconds: Int32
    let overlapFrom: String
    let overlapTo: String
    let excluding: Int32
    let caller: Int32

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 10)
        bindings.append(self.nodes)
        bindings.append(self.start)
        bindings.append(self.end)
        bindings.append(self.guarding)
        bindings.append(self.guardMinutes)
        bindings.append(self.staleSeconds)
        bindings.append(self.overlapFrom)
        bindings.append(self.overlapTo)
        bindings.append(self.excluding)
        bindings.append(self.caller)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// `TaskRepository.insertTasks`: one task per (start, end) of `$3`/`$4` with their start and end events and
/// allocations, and when a rule `$9` is given, the series row and its links. Returns the series id (NULL without a rule)
/// and the task ids by start.
struct NewTasksStatement: PostgresPreparedStatement {
    typealias Row = (Int32?, [Int32])
    static let sql = """
        WITH s AS (INSERT INTO task_series (rule, owner_id) SELECT $9, $5 WHERE $9 IS NOT NULL RETURNING id),
        t AS (
            INSERT INTO tasks (name, description, start_time, end_time, owner_id)
            SELECT $1, $2, x.s::timestamp, x.e::timestamp, $5
            FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS x(s, e, n)
            ORDER BY x.n
            RETURNING id, start_time, end_time),
        members AS (INSERT INTO task_series_members (series_id, task_id) SELECT s.id, t.id FROM s, t),
        start_end AS (
            INSERT INTO events (name, description, time, type, task_id)
            SELECT $1 || ' start', 'Start of ' || $1, t.start_time, 'task_start', t.id FROM t
            UNION ALL
            SELECT $1 || ' end', 'End of ' || $1, t.end_time, 'task_end', t.id FROM t),
        allocated AS (
            INSERT INTO allocations (task_id, node_id, resource_id, amount, start_time, end_time)
            SELECT t.id, a.n, a.r, a.a, t.start_time, t.end_time
            FROM t, unnest($6::int4[], $7::int4[], $8::int8[]) AS a(n, r, a))
        SELECT (SELECT id FROM s), array_agg(t.id ORDER BY t.start_time, t.id) FROM t
        """
    static var bindingDataTypes: [PostgresDataType] {
        [.varchar, .varchar, .textArray, .textArray, .int4, .int4Array, .int4Array, .int8Array, .varchar]
    }

    let name: String
    let description: String?
    let starts: [String]
    let ends: [String]
    let owner: Int32
    let nodes: [Int32]
    let resources: [Int32]
    let amounts: [Int64]
    let rule: String?

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 9)
        bindings.append(self.name)
        bindings.append(self.description)
        bindings.append(self.starts)
        bindings.append(self.ends)
        bindings.append(self.owner)
        bindings.append(self.nodes)
        bindings.append(self.resources)
        bindings.append(self.amounts)
        bindings.append(self.rule)
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

    /// Writes a series: its row, one task per occurrence (with its start and end events and allocations) and the
    /// links, in one statement whatever the number of occurrences; then the owner's reminders of them. Returns the
    /// series id and the task ids by start.
    func writeSeries(
        _ request: BookingService.Request, occurrences: [(start: LocalDateTime, end: LocalDateTime)], rule: String, owner: Int,
        in tx: LeasedConnection, logger: Logger
    ) async throws -> (series: Int, tasks: [Int]) {
        let (series, ids) = try await self.insertTasks(request, at: occurrences, series: rule, owner: owner, in: tx, logger: logger)
        guard let series else { throw AppError.internalError }
        // The receivers' lock is held since the node lock (`NodeRepository.lockForBooking`).
        try await EventRepository(db: self.db).reschedule(users: [owner], tasks: ids, in: tx, logger: logger)
        return (series, ids)
    }
}
