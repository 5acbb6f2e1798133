import Logging
import PostgresNIO

/// Usage reports: what was reserved over a period, grouped by user, group, node or resource.
public struct ReportRepository: Sendable {
    let db: Database

    public init(db: Database) { self.db = db }

    public enum Grouping: String, Sendable, CaseIterable {
        case user, group, node, resource
    }

    /// One (group key, resource) of a report.
    public struct Line: Sendable {
        public let keyID: Int
        public let keyName: String
        /// For `by=user`: the user's uid (Prometheus's process-exporter groups by it).
        public let uid: Int?
        public let resourceID: Int
        public let resource: String
        public let unit: String
        /// Amount × hours within the period.
        public let reservedHours: Double
        /// The largest amount held at once within the period.
        public let peak: Int64
        /// Tasks of the key overlapping the period (the same on every line of the key).
        public let tasks: Int
    }

    /// The report's lines, by key name then resource name. `onlyOwner`: a user's own reservations only.
    /// One statement: per node an index range scan of the allocations overlapping the period, clipped to it.
    public func usage(from start: LocalDateTime, to end: LocalDateTime, by grouping: Grouping, onlyOwner: Int?, logger: Logger) async throws
        -> [Line]
    {
        let key: String
        let name: String
        switch grouping {
        case .user: (key, name) = ("t.owner_id", "(SELECT u.username FROM users u WHERE u.id = s.key)")
        case .group: (key, name) = ("(SELECT u.group_id FROM users u WHERE u.id = t.owner_id)", "(SELECT g.name FROM groups g WHERE g.id = s.key)")
        case .node: (key, name) = ("a.node_id", "(SELECT n.name FROM nodes n WHERE n.id = s.key)")
        case .resource: (key, name) = ("a.resource_id", "(SELECT r.name FROM resources r WHERE r.id = s.key)")
        }
        let uid = grouping == .user ? "(SELECT u.uid FROM users u WHERE u.id = s.key)" : "NULL::int"
        let rows = try await self.db.query(
            """
            WITH p AS (SELECT \(start.sqlText)::timestamp AS t0, \(end.sqlText)::timestamp AS t1),
            a AS MATERIALIZED (
                SELECT x.task_id, x.node_id, x.resource_id, x.amount, GREATEST(x.start_time, p.t0) AS s, LEAST(x.end_time, p.t1) AS e
                FROM p CROSS JOIN nodes n
                CROSS JOIN LATERAL (
                    SELECT al.task_id, al.node_id, al.resource_id, al.amount, al.start_time, al.end_time FROM allocations al
                    WHERE al.node_id = n.id AND al.end_time > p.t0 AND al.start_time < p.t1) x),
            k AS MATERIALIZED (
                SELECT \(unescaped: key) AS key, a.task_id, a.resource_id, a.amount, a.s, a.e
                FROM a JOIN tasks t ON t.id = a.task_id
                WHERE \(onlyOwner.map { Int32(truncatingIfNeeded: $0) })::int4 IS NULL OR t.owner_id = \(onlyOwner.map { Int32(truncatingIfNeeded: $0) })::int4),
            sums AS (
                SELECT key, resource_id, sum(amount * extract(epoch FROM e - s))::float8 / 3600 AS hours FROM k GROUP BY key, resource_id),
            peaks AS (
                SELECT key, resource_id, max(held)::int8 AS peak
                FROM (SELECT key, resource_id, sum(d) OVER (PARTITION BY key, resource_id ORDER BY t, d ROWS UNBOUNDED PRECEDING) AS held
                      FROM (SELECT key, resource_id, s AS t, amount AS d FROM k UNION ALL SELECT key, resource_id, e, -amount FROM k) ev) r
                GROUP BY key, resource_id),
            counts AS (SELECT key, count(DISTINCT task_id)::int AS tasks FROM k GROUP BY key)
            SELECT s.key, COALESCE(\(unescaped: name), '(deleted)'), \(unescaped: uid), s.resource_id, r.name, r.unit, s.hours, p.peak, c.tasks
            FROM sums s JOIN peaks p ON p.key = s.key AND p.resource_id = s.resource_id JOIN counts c ON c.key = s.key
            JOIN resources r ON r.id = s.resource_id
            ORDER BY 2, 1, r.name
            """, logger: logger)
        return try rows.map { row in
            let (keyID, keyName, uid, resourceID, resource, unit, hours, peak, tasks) =
                try row.decode((Int, String, Int?, Int, String, String, Double, Int64, Int).self)
            return Line(
                keyID: keyID, keyName: keyName, uid: uid, resourceID: resourceID, resource: resource, unit: unit, reservedHours: hours, peak: peak,
                tasks: tasks)
        }
    }
}
