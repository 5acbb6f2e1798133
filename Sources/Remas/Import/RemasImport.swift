import Foundation
import Logging
import PostgresNIO

/// `remas import --from <url>`: copies an existing REMAS database (the original's schema: quoted `user`, `group` and
/// `limit`, link tables such as `nodeprovidesresource`, the enums `unit`, `taskstatus`, `notificationtype`) into ours,
/// keeping every id so clients' links stay valid, in one transaction, then moves the id sequences past the copied ids.
///
/// - Each source table is read as one JSON document (`json_agg`) and written with one `jsonb_to_recordset` statement
///   per table, so 10,000 tasks and 30,000 allocations take a handful of round trips.
/// - Rows are upserted by id and only rewritten when they differ: a second run changes nothing and says so.
/// - What the original let into its database that ours refuses is reported with the reason and left out, with what
///   depends on it: a task with id 0 or an empty or inverted interval, allocations and node amounts that are not
///   positive, limits without exactly one owner, unknown enum values. Task statuses are not copied (ours derives them
///   from the clock); tasks whose stored status is behind the clock are reported.
/// - Events are not copied: start and end events and the reminders of the imported tasks are made as bookings make
///   them; those whose time has already passed are recorded as done or skipped, so nothing is mailed twice.
/// - `dryRun` runs everything and rolls back, so the report is exactly what a real run would do.
public struct RemasImporter: Sendable {
    public let source: DatabaseTarget
    public let target: Database
    public let logger: Logger
    /// Progress: each table read, then each table written (`rows` so far of `total` read), then the commit.
    public var progress: @Sendable (Progress) -> Void = { _ in }

    public init(source: DatabaseTarget, target: Database, logger: Logger, progress: @escaping @Sendable (Progress) -> Void = { _ in }) {
        self.source = source
        self.target = target
        self.logger = logger
        self.progress = progress
    }

    public enum Progress: Sendable {
        case read(table: String, rows: Int)
        case wrote(table: String, rows: Int, total: Int)
        case committing
    }

    /// Per table: rows read, written (inserted, updated, unchanged) and refused with reasons.
    public struct TableReport: Sendable {
        public var table: String
        public var read = 0
        public var inserted = 0
        public var updated = 0
        public var unchanged = 0
        public var refused: [String] = []
    }

    public struct Report: Sendable {
        public var tables: [TableReport] = []
        public var notes: [String] = []
        public var dryRun = false

        public var text: String {
            var lines = [dryRun ? "remas import (dry run: nothing was written)" : "remas import"]
            lines.append("table                      read  inserted   updated unchanged  refused")
            for t in self.tables {
                lines.append(
                    t.table.padding(toLength: 24, withPad: " ", startingAt: 0)
                        + [t.read, t.inserted, t.updated, t.unchanged, t.refused.count].map { String($0).leftPad(10) }.joined())
            }
            for t in self.tables where !t.refused.isEmpty {
                lines.append("refused from \(t.table):")
                lines += t.refused.map { "  - " + $0 }
            }
            if !self.notes.isEmpty {
                lines.append("notes:")
                lines += self.notes.map { "  - " + $0 }
            }
            return lines.joined(separator: "\n")
        }

        public var changed: Int { self.tables.reduce(0) { $0 + $1.inserted + $1.updated } }
    }

    struct RolledBack: Error { let report: Report }

    public func run(dryRun: Bool) async throws -> Report {
        let data = try await self.read()
        do {
            return try await self.target.transaction(logger: self.logger) { tx in
                var report = try await self.write(data, in: tx)
                report.dryRun = dryRun
                if dryRun { throw RolledBack(report: report) }
                self.progress(.committing)
                return report
            }
        } catch let rolledBack as RolledBack {
            return rolledBack.report
        }
    }

    // MARK: reading

    /// The source tables as JSON arrays of objects, in our column names.
    static let sourceQueries: [(String, String)] = [
        ("groups", #"SELECT id, name, description, users_share_statistics, parent_id FROM "group""#),
        ("users", #"SELECT id, name, surname, uid, username, password, email, group_id FROM "user""#),
        ("nodes", "SELECT id, name, description FROM node"),
        ("resources", "SELECT id, name, description, unit::text AS unit FROM resource"),
        ("node_resources", "SELECT node_id, resource_id, amount FROM nodeprovidesresource"),
        ("resource_aliases", "SELECT id, name, description FROM resourcealias"),
        ("resource_alias_links", "SELECT resource_id, alias_id FROM resourcehasalias"),
        ("limits", #"SELECT id, name, description, amount, user_id, group_id, resource_id FROM "limit""#),
        ("limit_nodes", "SELECT limit_id, node_id FROM nodeislimitedby"),
        ("task_tags", "SELECT id, name, description, user_id FROM tasktag"),
        ("tasks", """
            SELECT id, name, description, to_char(start_time, 'YYYY-MM-DD"T"HH24:MI:SS.US') AS start_time,
                   to_char(end_time, 'YYYY-MM-DD"T"HH24:MI:SS.US') AS end_time, status::text AS status, owner_id FROM task
            """),
        ("allocations", "SELECT task_id, node_id, resource_id, amount FROM resourceallocation"),
        ("task_tag_links", "SELECT task_id, tag_id FROM taskhastag"),
        ("notifications", """
            SELECT id, name, description, time_offset, notification_template, type::text AS type, default_amount, owner_id,
                   resource_id FROM notification
            """),
        ("notification_users", "SELECT user_id, notification_id FROM userhasnotification"),
        ("notification_groups", "SELECT group_id, notification_id FROM grouphasnotification"),
    ]

    typealias Rows = [[String: JSONValue]]

    func read() async throws -> [String: Rows] {
        // Statements through a pool of one, like every other statement (a source that goes away fails them at once).
        let pool = ConnectionPool(target: self.source, maximumConnections: 1, logger: self.logger)
        do {
            let source = Database(pool: pool)
            var data: [String: Rows] = [:]
            for (table, query) in Self.sourceQueries {
                let text = try await source.text(
                    PostgresQuery(unsafeSQL: "SELECT coalesce(json_agg(t), '[]')::text FROM (\(query)) t"), logger: self.logger) ?? "[]"
                guard case .array(let items) = try JSONValue.parse(text: Array(text.utf8)) else { continue }
                data[table] = items.compactMap { item -> [String: JSONValue]? in
                    if case .object(let o) = item { return o }
                    return nil
                }
                self.progress(.read(table: table, rows: data[table]?.count ?? 0))
            }
            await pool.shutdown()
            return data
        } catch {
            await pool.shutdown()
            throw error
        }
    }

    // MARK: checking and writing

    func write(_ data: [String: Rows], in tx: LeasedConnection) async throws -> Report {
        var report = Report()
        let total = data.values.reduce(0) { $0 + $1.count }
        var written = 0
        /// A table is written: into the report, and reported as progress.
        func finished(_ table: TableReport) {
            report.tables.append(table)
            written += table.read
            self.progress(.wrote(table: table.table, rows: written, total: total))
        }
        func int(_ row: [String: JSONValue], _ key: String) -> Int? { row[key]?.intValue }
        func describe(_ row: [String: JSONValue]) -> String { String(decoding: JSONValue.object(row).jsonData, as: UTF8.self) }

        // Groups: written without parents first (a parent may come later in the table), then parents set.
        var groups = TableReport(table: "groups")
        let groupRows = data["groups"] ?? []
        groups.read = groupRows.count
        try await self.upsert(
            groupRows.map { $0.merging(["parent_id": .null]) { _, new in new } }, into: "groups",
            columns: "id int, name text, description text, users_share_statistics bool, parent_id int",
            compared: ["name", "description", "users_share_statistics"], report: &groups, in: tx)
        try await tx.query(
            """
            UPDATE groups g SET parent_id = r.parent_id
            FROM jsonb_to_recordset(\(Self.json(groupRows))::jsonb) AS r(id int, parent_id int)
            WHERE g.id = r.id AND g.parent_id IS DISTINCT FROM r.parent_id
            """, logger: self.logger)
        finished(groups)

        var users = TableReport(table: "users")
        let userRows = data["users"] ?? []
        users.read = userRows.count
        try await self.upsert(
            userRows.map { $0["group_id"] == nil || $0["group_id"] == .null ? $0.merging(["group_id": .int(Int64(SeededGroup.users.rawValue))]) { _, n in n } : $0 },
            into: "users", columns: "id int, name text, surname text, uid int, username text, password text, email text, group_id int",
            compared: ["name", "surname", "uid", "username", "password", "email", "group_id"], report: &users, in: tx)
        finished(users)

        for (table, columns, compared) in [
            ("nodes", "id int, name text, description text", ["name", "description"]),
            ("resource_aliases", "id int, name text, description text", ["name", "description"]),
        ] {
            var t = TableReport(table: table)
            let rows = data[table] ?? []
            t.read = rows.count
            try await self.upsert(rows, into: table, columns: columns, compared: compared, report: &t, in: tx)
            finished(t)
        }

        var resources = TableReport(table: "resources")
        var resourceRows: Rows = []
        for row in data["resources"] ?? [] {
            resources.read += 1
            guard let label = row["unit"]?.stringValue, let unit = ResourceUnit(wireOrOriginal: label)?.rawValue
            else {
                resources.refused.append("resource \(int(row, "id") ?? 0): unknown unit \(row["unit"]?.text ?? "None")")
                continue
            }
            resourceRows.append(row.merging(["unit": .string(unit)]) { _, n in n })
        }
        try await self.upsert(resourceRows, into: "resources", columns: "id int, name text, description text, unit text",
                              compared: ["name", "description", "unit"], report: &resources, in: tx)
        finished(resources)
        let resourceIDs = Set(resourceRows.compactMap { int($0, "id") })

        var nodeResources = TableReport(table: "node_resources")
        var nodeResourceRows: Rows = []
        for row in data["node_resources"] ?? [] {
            nodeResources.read += 1
            guard (row["amount"]?.intValue ?? 0) > 0 else {
                nodeResources.refused.append("node \(int(row, "node_id") ?? 0) provides resource \(int(row, "resource_id") ?? 0): amount \(row["amount"]?.text ?? "None") is not positive")
                continue
            }
            guard resourceIDs.contains(int(row, "resource_id") ?? -1) else { continue }
            nodeResourceRows.append(row)
        }
        try await self.upsert(nodeResourceRows, into: "node_resources", columns: "node_id int, resource_id int, amount int8",
                              key: "node_id, resource_id", compared: ["amount"], report: &nodeResources, in: tx)
        finished(nodeResources)

        finished(try await self.link(
            data, "resource_alias_links", columns: "resource_id int, alias_id int", keeping: "resource_id", of: resourceIDs, in: tx))

        var limits = TableReport(table: "limits")
        var limitRows: Rows = []
        for row in data["limits"] ?? [] {
            limits.read += 1
            let user = row["user_id"]?.intValue, group = row["group_id"]?.intValue
            guard (user == nil) != (group == nil) else {
                limits.refused.append("limit \(int(row, "id") ?? 0) '\(row["name"]?.text ?? "")': "
                    + (user == nil ? "belongs to no user and no group (orphaned by a group delete in REMAS)" : "belongs to a user and a group at once"))
                continue
            }
            guard resourceIDs.contains(int(row, "resource_id") ?? -1) else { continue }
            limitRows.append(row)
        }
        try await self.upsert(
            limitRows, into: "limits", columns: "id int, name text, description text, amount int8, user_id int, group_id int, resource_id int",
            compared: ["name", "description", "amount", "user_id", "group_id", "resource_id"], report: &limits, in: tx)
        finished(limits)
        let limitIDs = Set(limitRows.compactMap { int($0, "id") })
        finished(try await self.link(data, "limit_nodes", columns: "limit_id int, node_id int", keeping: "limit_id", of: limitIDs, in: tx))

        var tags = TableReport(table: "task_tags")
        tags.read = data["task_tags"]?.count ?? 0
        try await self.upsert(data["task_tags"] ?? [], into: "task_tags", columns: "id int, name text, description text, user_id int",
                              compared: ["name", "description", "user_id"], report: &tags, in: tx)
        finished(tags)

        // Tasks and their allocations (each allocation copies its task's interval, as bookings write it).
        var tasks = TableReport(table: "tasks")
        var allocations = TableReport(table: "allocations")
        var allocationsByTask: [Int: Rows] = [:]
        for row in data["allocations"] ?? [] {
            allocations.read += 1
            guard let task = int(row, "task_id") else { continue }
            guard (row["amount"]?.intValue ?? 0) > 0 else {
                allocations.refused.append("task \(task), node \(int(row, "node_id") ?? 0), resource \(int(row, "resource_id") ?? 0): amount \(row["amount"]?.text ?? "None") is not positive")
                continue
            }
            guard resourceIDs.contains(int(row, "resource_id") ?? -1) else { continue }
            allocationsByTask[task, default: []].append(row)
        }
        var taskRows: Rows = []
        var allocationRows: Rows = []
        var behind = 0
        let now = try await tx.text("SELECT to_char(localtimestamp, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')", logger: self.logger) ?? ""
        for row in data["tasks"] ?? [] {
            tasks.read += 1
            let id = int(row, "id") ?? 0
            let start = row["start_time"]?.stringValue ?? "", end = row["end_time"]?.stringValue ?? ""
            guard id > 0 else {
                tasks.refused.append("task \(id) '\(row["name"]?.text ?? "")': id \(id) is not positive (ours start at 1)")
                continue
            }
            guard start < end else {
                tasks.refused.append("task \(id) '\(row["name"]?.text ?? "")': starts \(start) but ends \(end)")
                continue
            }
            guard let own = allocationsByTask[id], !own.isEmpty else {
                tasks.refused.append("task \(id) '\(row["name"]?.text ?? "")': reserves nothing (no allocation with a positive amount)")
                continue
            }
            let derived = end <= now ? "finished" : start <= now ? "running" : "scheduled"
            if let stored = row["status"]?.stringValue, stored != derived { behind += 1 }
            taskRows.append(row)
            allocationRows += own.map { $0.merging(["start_time": .string(start), "end_time": .string(end)]) { _, n in n } }
        }
        if behind > 0 {
            report.notes.append("\(behind) task(s) had a stored status behind the clock (the original's scheduler had not run); remas derives the status from the times")
        }
        let taskIDs = Set(taskRows.compactMap { int($0, "id") })
        let ids = taskIDs.map { Int32(truncatingIfNeeded: $0) }.sorted()
        // The tasks that exist already are locked against a delete until the import commits: it writes their
        // allocations and events, and no foreign key ties those to a task since migration 0019.
        try await tx.query("SELECT 1 FROM tasks WHERE id = ANY(\(ids)) ORDER BY id FOR KEY SHARE", logger: self.logger)
        try await self.upsert(
            taskRows, into: "tasks", columns: "id int, name text, description text, start_time timestamp, end_time timestamp, owner_id int",
            compared: ["name", "description", "start_time", "end_time", "owner_id"], report: &tasks, in: tx)
        finished(tasks)
        try await self.upsert(
            allocationRows, into: "allocations",
            columns: "task_id int, node_id int, resource_id int, amount int8, start_time timestamp, end_time timestamp",
            key: "task_id, node_id, resource_id", compared: ["amount", "start_time", "end_time"], report: &allocations, in: tx)
        finished(allocations)

        finished(try await self.link(data, "task_tag_links", columns: "task_id int, tag_id int", keeping: "task_id", of: taskIDs, in: tx))

        var notifications = TableReport(table: "notifications")
        var notificationRows: Rows = []
        for row in data["notifications"] ?? [] {
            notifications.read += 1
            guard let type = row["type"]?.stringValue, NotificationType.all.contains(type) else {
                notifications.refused.append("notification \(int(row, "id") ?? 0): unknown type \(row["type"]?.text ?? "None")")
                continue
            }
            if let resource = int(row, "resource_id"), !resourceIDs.contains(resource) { continue }
            notificationRows.append(row)
        }
        try await self.upsert(
            notificationRows, into: "notifications",
            columns: "id int, name text, description text, time_offset int, notification_template text, type text, default_amount int8, owner_id int, resource_id int",
            compared: ["name", "description", "time_offset", "notification_template", "type", "default_amount", "owner_id", "resource_id"],
            report: &notifications, in: tx)
        finished(notifications)
        let notificationIDs = Set(notificationRows.compactMap { int($0, "id") })
        for (table, columns) in [("notification_users", "user_id int, notification_id int"), ("notification_groups", "group_id int, notification_id int")] {
            finished(try await self.link(data, table, columns: columns, keeping: "notification_id", of: notificationIDs, in: tx))
        }

        // The scheduler's events for the imported tasks: start and end (done when past), reminders as bookings make
        // them, those already due recorded as skipped (REMAS sent them, or its time has gone).
        try await tx.query(
            """
            INSERT INTO events (name, description, time, type, task_id, state, processed_at)
            SELECT t.name || CASE x.type WHEN 'task_start' THEN ' start' ELSE ' end' END,
                   CASE x.type WHEN 'task_start' THEN 'Start of ' ELSE 'End of ' END || t.name, x.at, x.type, t.id,
                   CASE WHEN x.at <= localtimestamp THEN 'done' ELSE 'pending' END,
                   CASE WHEN x.at <= localtimestamp THEN localtimestamp END
            FROM tasks t CROSS JOIN LATERAL (VALUES ('task_start', t.start_time), ('task_end', t.end_time)) AS x(type, at)
            WHERE t.id = ANY(\(ids))
            ON CONFLICT (task_id, notification_id, type) WHERE task_id IS NOT NULL DO NOTHING
            """, logger: self.logger)
        let owners = Array(Set(taskRows.compactMap { int($0, "owner_id") })).sorted()
        for chunk in stride(from: 0, to: owners.count, by: 500) {
            try await EventRepository(db: self.target).reschedule(users: Array(owners[chunk..<min(chunk + 500, owners.count)]), in: tx, logger: self.logger)
        }
        try await tx.query(
            """
            UPDATE events SET state = 'skipped', processed_at = localtimestamp, last_error = 'due before the import from REMAS'
            WHERE state = 'pending' AND notification_id IS NOT NULL AND time <= localtimestamp AND task_id = ANY(\(ids))
            """, logger: self.logger)

        // Sequences past the copied ids.
        for table in ["groups", "users", "nodes", "resources", "resource_aliases", "limits", "task_tags", "tasks", "notifications"] {
            try await tx.query(
                PostgresQuery(unsafeSQL: "SELECT setval(pg_get_serial_sequence('\(table)', 'id'), GREATEST((SELECT max(id) FROM \(table)), 1))"),
                logger: self.logger)
        }
        return report
    }

    static func json(_ rows: Rows) -> String {
        String(decoding: JSONValue.array(rows.map { .object($0) }).jsonData, as: UTF8.self)
    }

    /// Upserts by `key`; a row is rewritten only when one of `compared` differs. Counts what happened.
    func upsert(
        _ rows: Rows, into table: String, columns: String, key: String = "id", compared: [String], report: inout TableReport,
        in tx: LeasedConnection
    ) async throws {
        guard !rows.isEmpty else { return }
        let list = Self.columnNames(columns)
        let sets = compared.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        let differs = "(" + compared.map { "\(table).\($0)" }.joined(separator: ", ") + ") IS DISTINCT FROM ("
            + compared.map { "EXCLUDED.\($0)" }.joined(separator: ", ") + ")"
        var query = PostgresQuery(unsafeSQL: "")
        query.sql = """
            INSERT INTO \(table) (\(list)) SELECT \(list) FROM jsonb_to_recordset($1::jsonb) AS r(\(columns))
            ON CONFLICT (\(key)) DO UPDATE SET \(sets) WHERE \(differs)
            RETURNING (xmax = 0)
            """
        query.binds.append(Self.json(rows))
        let written = try await tx.query(query, logger: self.logger).map { try $0.decode(Bool.self) }
        let inserted = written.filter { $0 }.count
        report.inserted += inserted
        report.updated += written.count - inserted
        report.unchanged += rows.count - written.count
    }

    /// Inserts the link rows of source `table` that are missing (their whole row is the key), keeping only those whose
    /// `column` names a row that was taken (`ids`).
    func link(
        _ data: [String: Rows], _ table: String, columns: String, keeping column: String, of ids: Set<Int>, in tx: LeasedConnection
    ) async throws -> TableReport {
        var report = TableReport(table: table)
        let source = data[table] ?? []
        report.read = source.count
        let rows = source.filter { ids.contains($0[column]?.intValue ?? -1) }
        guard !rows.isEmpty else { return report }
        let names = Self.columnNames(columns)
        var query = PostgresQuery(unsafeSQL: "")
        query.sql = """
            INSERT INTO \(table) (\(names)) SELECT \(names) FROM jsonb_to_recordset($1::jsonb) AS r(\(columns))
            ON CONFLICT DO NOTHING RETURNING 1
            """
        query.binds.append(Self.json(rows))
        let inserted = try await tx.query(query, logger: self.logger).count
        report.inserted = inserted
        report.unchanged = rows.count - inserted
        return report
    }

    /// `"id int, name text"` → `"id, name"`.
    static func columnNames(_ columns: String) -> String {
        columns.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces).split(separator: " ")[0]) }.joined(separator: ", ")
    }
}

extension String {
    func leftPad(_ width: Int) -> String { String(repeating: " ", count: max(0, width - self.count)) + self }
}
