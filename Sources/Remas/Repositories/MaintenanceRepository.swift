import Logging
import PostgresNIO

/// Maintenance windows (`maintenance_windows`, `maintenance_nodes`): every statement on them, and their documents.
///
/// A window's write locks the rows of the nodes it covers the way a booking locks its nodes (in id order, `FOR NO KEY
/// UPDATE`), and a booking looks for windows after it has locked its nodes (`TaskRepository.capacities`).
/// So whichever commits first, the other sees it: no reservation lands inside a window unless the window's `conflicts`
/// mode kept it.
struct MaintenanceRepository: Sendable {
    let db: Database

    /// What happens to the scheduled and running reservations a window overlaps.
    enum ConflictMode: String, Sendable, CaseIterable {
        /// The write is refused (409) while any overlap.
        case refuse
        /// They stay; their owners are told.
        case keep
        /// Scheduled ones are deleted, running ones end where the window starts.
        case cancel
    }

    /// What `POST`/`PUT /maintenance` carry.
    struct Fields: Sendable {
        var name: String
        var description: String?
        var start: LocalDateTime
        var end: LocalDateTime
        /// nil: every node (also nodes created later).
        var nodeIDs: [Int]?
        var conflicts: ConflictMode
    }

    /// A reservation a window's write met, and what became of it.
    struct Affected: Sendable {
        enum Fate: String, Sendable {
            case kept
            case deleted
            /// Ends where the window starts (it was running).
            case shortened
        }

        let taskID: Int
        let ownerID: Int
        let name: String
        let start: LocalDateTime
        let end: LocalDateTime
        let fate: Fate
        /// Where a shortened reservation ends now.
        var newEnd: LocalDateTime? = nil
    }

    struct Written: Sendable {
        let id: Int
        let affected: [Affected]
        /// The window's document, with `affected_task_ids` the tasks this write met.
        let json: String
    }

    /// Windows that overlap [start, end) (either bound may be left open), by start.
    func list(from start: LocalDateTime?, to end: LocalDateTime?, logger: Logger) async throws -> String {
        try await self.db.text(
            """
            SELECT COALESCE(json_agg(\(unescaped: Self.document("w")) ORDER BY w.start_time, w.id), '[]')::text
            FROM maintenance_windows w
            WHERE (\(end?.sqlText)::timestamp IS NULL OR w.start_time < \(end?.sqlText)::timestamp)
              AND (\(start?.sqlText)::timestamp IS NULL OR w.end_time > \(start?.sqlText)::timestamp)
            """, logger: logger) ?? "[]"
    }

    /// One window's document; nil when there is no such window.
    func json(id: Int, logger: Logger) async throws -> String? {
        try await self.db.text("SELECT \(unescaped: Self.document("w"))::text FROM maintenance_windows w WHERE w.id = \(id)", logger: logger)
    }

    /// Creates a window under the node locks; refused (409) in `refuse` mode while reservations overlap it.
    func create(_ fields: Fields, by creator: Int, logger: Logger) async throws -> Written {
        try await withConflictMapping("create", "maintenance window") {
            try await self.db.transaction(logger: logger) { tx in
                let nodes = try await self.lockNodes(fields.nodeIDs, in: tx, logger: logger)
                let affected = try await self.settle(fields, nodes: nodes, in: tx, logger: logger)
                try await self.tellOwners(affected, fields, nodes: nodes, in: tx, logger: logger)
                let id = try await tx.int(
                    """
                    INSERT INTO maintenance_windows (name, description, start_time, end_time, all_nodes, created_by)
                    VALUES (\(fields.name), \(fields.description), \(fields.start.sqlText)::timestamp, \(fields.end.sqlText)::timestamp,
                            \(fields.nodeIDs == nil), \(creator))
                    RETURNING id
                    """, logger: logger)!
                try await self.setNodes(id, fields.nodeIDs, in: tx, logger: logger)
                return try await self.written(id, affected, in: tx, logger: logger)
            }
        }
    }

    /// Moves or reshapes a window, under the same rules for its new interval and nodes; nil when there is no such window.
    func update(id: Int, _ fields: Fields, logger: Logger) async throws -> Written? {
        try await withConflictMapping("update", "maintenance window") {
            try await self.db.transaction(logger: logger) { tx -> Written? in
                guard try await tx.exists("SELECT 1 FROM maintenance_windows WHERE id = \(id) FOR UPDATE", logger: logger) else { return nil }
                let nodes = try await self.lockNodes(fields.nodeIDs, in: tx, logger: logger)
                let affected = try await self.settle(fields, nodes: nodes, in: tx, logger: logger)
                try await self.tellOwners(affected, fields, nodes: nodes, in: tx, logger: logger)
                try await tx.query(
                    """
                    UPDATE maintenance_windows SET name = \(fields.name), description = \(fields.description),
                        start_time = \(fields.start.sqlText)::timestamp, end_time = \(fields.end.sqlText)::timestamp,
                        all_nodes = \(fields.nodeIDs == nil)
                    WHERE id = \(id)
                    """, logger: logger)
                try await tx.query("DELETE FROM maintenance_nodes WHERE window_id = \(id)", logger: logger)
                try await self.setNodes(id, fields.nodeIDs, in: tx, logger: logger)
                return try await self.written(id, affected, in: tx, logger: logger)
            }
        }
    }

    /// False when there was no such window.
    func delete(id: Int, logger: Logger) async throws -> Bool {
        try await self.db.exists("DELETE FROM maintenance_windows WHERE id = \(id) RETURNING id", logger: logger)
    }

    // MARK: inside a window's write

    /// Locks the covered nodes in id order (every node when `ids` is nil); 404 for an id that is not a node.
    private func lockNodes(_ ids: [Int]?, in tx: LeasedConnection, logger: Logger) async throws -> [Int32] {
        // The bookings' own node lock, so both take the same rows in the same order.
        let locked = try await NodeRepository(db: self.db).lock(
            ids.map { Array(Set($0)).sorted().map { Int32(truncatingIfNeeded: $0) } }, in: tx, logger: logger)
        if let missing = ids?.first(where: { !locked.contains($0) }) { throw AppError.notFound("Node with id \(missing) not found!") }
        return locked.map { Int32(truncatingIfNeeded: $0) }
    }

    /// Applies the window's `conflicts` mode to the scheduled and running reservations it overlaps on `nodes`, and
    /// returns them with their fate. `refuse` throws the 409 when there are any.
    private func settle(_ fields: Fields, nodes: [Int32], in tx: LeasedConnection, logger: Logger) async throws
        -> [Affected]
    {
        let rows = try await tx.query(
            """
            SELECT t.id, t.owner_id, t.name,
                   (extract(epoch FROM t.start_time) * 1000000)::int8, (extract(epoch FROM t.end_time) * 1000000)::int8,
                   t.start_time <= localtimestamp AND t.start_time < GREATEST(\(fields.start.sqlText)::timestamp, localtimestamp)
            FROM tasks t
            WHERE t.id IN (
                SELECT a.task_id FROM allocations a
                WHERE a.node_id = ANY(\(nodes)) AND a.end_time > \(fields.start.sqlText)::timestamp
                  AND a.start_time < \(fields.end.sqlText)::timestamp AND a.end_time > localtimestamp)
            ORDER BY t.start_time, t.id
            FOR UPDATE OF t
            """, logger: logger)
        // startsBeforeCut: running, and begun before the cut (a task that begins at the very instant of the cut is
        // deleted instead, as an end at its start would be no reservation).
        var met: [(id: Int, owner: Int, name: String, start: Int64, end: Int64, startsBeforeCut: Bool)] = []
        for row in rows {
            let (id, owner, name, start, end, before) = try row.decode((Int, Int, String, Int64, Int64, Bool).self)
            met.append((id, owner, name, start, end, before))
        }
        guard !met.isEmpty else { return [] }
        switch fields.conflicts {
        case .refuse:
            let shown = met.prefix(5).map { String($0.id) }.joined(separator: ", ")
            throw AppError.conflict(
                "The maintenance window overlaps \(met.count) scheduled or running reservation(s) (task ids \(shown)\(met.count > 5 ? ", …" : "")); "
                    + "move them first, or send conflicts \"keep\" or \"cancel\"")
        case .keep:
            return met.map {
                Affected(taskID: $0.id, ownerID: $0.owner, name: $0.name, start: LocalDateTime(microseconds: $0.start),
                         end: LocalDateTime(microseconds: $0.end), fate: .kept)
            }
        case .cancel:
            // Scheduled reservations are deleted (with their allocations, events and tag links, ON DELETE CASCADE);
            // running ones end at the cut: where the window starts, or now when it already has.
            let deleted = met.filter { !$0.startsBeforeCut }.map { Int32(truncatingIfNeeded: $0.id) }
            let shortened = met.filter(\.startsBeforeCut).map { Int32(truncatingIfNeeded: $0.id) }
            if !deleted.isEmpty { try await tx.query("DELETE FROM tasks WHERE id = ANY(\(deleted))", logger: logger) }
            var cut = fields.start
            if !shortened.isEmpty {
                let cutMicros = try await tx.query(
                    """
                    WITH cut AS (SELECT GREATEST(\(fields.start.sqlText)::timestamp, localtimestamp) AS at),
                    tasks_cut AS (UPDATE tasks SET end_time = cut.at FROM cut WHERE tasks.id = ANY(\(shortened)) RETURNING tasks.id),
                    allocations_cut AS (UPDATE allocations SET end_time = cut.at FROM cut WHERE allocations.task_id = ANY(\(shortened))),
                    events_moved AS (
                        UPDATE events SET time = cut.at, state = 'pending', attempts = 0, retry_at = NULL, processed_at = NULL, last_error = NULL
                        FROM cut WHERE events.task_id = ANY(\(shortened)) AND events.type = 'task_end')
                    SELECT (extract(epoch FROM at) * 1000000)::int8 FROM cut
                    """, logger: logger
                ).first.map { try $0.decode(Int64.self) }
                if let cutMicros { cut = LocalDateTime(microseconds: cutMicros) }
                let owners = Array(Set(met.filter(\.startsBeforeCut).map(\.owner))).sorted()
                let events = EventRepository(db: self.db)
                try await events.lockReceivers(shared: true, in: tx, logger: logger)
                try await events.reschedule(users: owners, tasks: shortened.map(Int.init), in: tx, logger: logger)
            }
            return met.map {
                Affected(taskID: $0.id, ownerID: $0.owner, name: $0.name, start: LocalDateTime(microseconds: $0.start),
                         end: LocalDateTime(microseconds: $0.end), fate: $0.startsBeforeCut ? .shortened : .deleted,
                         newEnd: $0.startsBeforeCut ? cut : nil)
            }
        }
    }

    /// One notice per owner of the reservations the write met, in the write's transaction (so it goes out once, and
    /// only if the window is written), listing each reservation and what became of it.
    private func tellOwners(_ affected: [Affected], _ fields: Fields, nodes: [Int32], in tx: LeasedConnection, logger: Logger) async throws {
        guard !affected.isEmpty else { return }
        let place = fields.nodeIDs == nil
            ? "every node"
            : "node(s) " + (try await tx.text("SELECT string_agg(name, ', ' ORDER BY id) FROM nodes WHERE id = ANY(\(nodes))", logger: logger) ?? "")
        let events = EventRepository(db: self.db)
        for (owner, reservations) in Dictionary(grouping: affected, by: \.ownerID).sorted(by: { $0.key < $1.key }) {
            var body = "Maintenance \"\(fields.name)\" takes \(place) out of service from \(fields.start.spaced) to \(fields.end.spaced).\n"
            if let description = fields.description, !description.isEmpty { body += "\n\(description)\n" }
            body += "\nYour reservations in that time:\n"
            for r in reservations {
                let what: String
                switch r.fate {
                case .kept: what = "kept: the node may not be usable during the maintenance"
                case .deleted: what = "cancelled"
                case .shortened: what = "cut short: it now ends at \(r.newEnd?.spaced ?? fields.start.spaced)"
                }
                body += "- \(r.name) (task \(r.taskID), \(r.start.spaced) to \(r.end.spaced)): \(what)\n"
            }
            try await events.queueNotice(to: owner, subject: "Maintenance: \(fields.name)", body: body, in: tx, logger: logger)
        }
    }

    private func setNodes(_ id: Int, _ nodeIDs: [Int]?, in tx: LeasedConnection, logger: Logger) async throws {
        guard let nodeIDs, !nodeIDs.isEmpty else { return }
        try await tx.query(
            """
            INSERT INTO maintenance_nodes (window_id, node_id)
            SELECT \(id), n FROM unnest(\(Array(Set(nodeIDs)).sorted().map { Int32(truncatingIfNeeded: $0) })::int4[]) AS n
            """, logger: logger)
    }

    private func written(_ id: Int, _ affected: [Affected], in tx: LeasedConnection, logger: Logger) async throws -> Written {
        let ids = affected.map { Int32(truncatingIfNeeded: $0.taskID) }.sorted()
        let json = try await tx.text(
            """
            SELECT \(unescaped: Self.document("w", affected: "to_json(x.ids)"))::text
            FROM maintenance_windows w CROSS JOIN (SELECT \(ids)::int4[] AS ids) x WHERE w.id = \(id)
            """, logger: logger)
        return Written(id: id, affected: affected, json: json ?? "null")
    }

    // MARK: documents

    /// A window as the wire has it. `affected_task_ids`: the tasks the answering write met, or, when read, the
    /// scheduled and running tasks that overlap the window on its nodes now.
    static func document(_ w: String, affected: String? = nil) -> String {
        let overlapping = """
            COALESCE((SELECT json_agg(DISTINCT a.task_id) FROM allocations a
                      WHERE a.end_time > \(w).start_time AND a.start_time < \(w).end_time AND a.end_time > localtimestamp
                        AND (\(w).all_nodes OR a.node_id IN (SELECT m.node_id FROM maintenance_nodes m WHERE m.window_id = \(w).id))),
                     '[]'::json)
            """
        return """
            json_build_object('id',\(w).id,'name',\(w).name,'description',\(w).description,\
            'start_time',remas_ts(\(w).start_time),'end_time',remas_ts(\(w).end_time),\
            'node_ids',CASE WHEN \(w).all_nodes THEN NULL ELSE COALESCE((SELECT json_agg(m.node_id ORDER BY m.node_id) \
            FROM maintenance_nodes m WHERE m.window_id = \(w).id),'[]'::json) END,\
            'created_by',\(w).created_by,'affected_task_ids',\(affected ?? overlapping))
            """
    }
}
