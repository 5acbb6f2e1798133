import Logging
import PostgresNIO

/// Usage reports: what was reserved over a period, grouped by user, group, node or resource.
///
/// Whole past days come from figures rolled up once per day (`usage_days`, `usage_day_tasks`, migration 0010); the
/// rest of the period (today, the part days at its edges, days not rolled up yet) is swept live. Both are exact: a
/// day's figures are dropped by triggers when its allocations (or the group of a user who reserved on it) change, and
/// rolled up again by `rollUpPending` (the scheduler's `UsageRollup` loop, or `remas report rollup`).
public struct ReportRepository: Sendable {
    let db: Database

    public init(db: Database) { self.db = db }

    public enum Grouping: String, Sendable, CaseIterable {
        case user, group, node, resource

        /// The `grouping` column of the day figures.
        var code: Int16 {
            switch self {
            case .user: 1
            case .group: 2
            case .node: 3
            case .resource: 4
            }
        }
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

    /// Days are numbered from 2000-01-01 (the number is also the second key of the day's advisory lock).
    static let epochDay = "date '2000-01-01'"

    /// The allocations overlapping each interval of `ranges` (a CTE with columns `s`, `e`), clipped to it, as columns
    /// `task_id, node_id, resource_id, amount, began (the task's start), gs (the interval's start), s, e, owner_id`:
    /// the tasks overlapping the interval from the period index (migration 0011; with `oneOwner`, only those of the
    /// `owner` of CTE `p`), then their allocations by the primary key.
    static func clipped(ranges: String, oneOwner: Bool) -> String {
        """
        SELECT al.task_id, al.node_id, al.resource_id, al.amount, al.start_time AS began, g.s AS gs,
               GREATEST(al.start_time, g.s) AS s, LEAST(al.end_time, g.e) AS e, t.owner_id
        FROM \(ranges) g JOIN tasks t ON tsrange(t.start_time, t.end_time) && tsrange(g.s, g.e)\(oneOwner ? " AND t.owner_id = (SELECT owner FROM p)" : "")
        JOIN allocations al ON al.task_id = t.id
        """
    }

    /// Per (grouping, key, resource) of CTE `k` (columns `grouping, key, resource_id, amount, s, e`): amount-hours and
    /// the peak held at once (a sweep over the starts and ends; at one instant ends count before starts).
    static let sumsAndPeaks = """
        sums AS (
            SELECT grouping, key, resource_id, sum(amount * extract(epoch FROM e - s))::float8 / 3600 AS hours
            FROM k GROUP BY grouping, key, resource_id),
        peaks AS (
            SELECT grouping, key, resource_id, max(held)::int8 AS peak
            FROM (SELECT grouping, key, resource_id,
                         sum(d) OVER (PARTITION BY grouping, key, resource_id ORDER BY t, d ROWS UNBOUNDED PRECEDING) AS held
                  FROM (SELECT grouping, key, resource_id, s AS t, amount AS d FROM k
                        UNION ALL SELECT grouping, key, resource_id, e, -amount FROM k) ev) r
            GROUP BY grouping, key, resource_id)
        """

    /// The key of each way of grouping, from the columns of `clipped` (+ `group_id`).
    static func key(_ grouping: String) -> String {
        "CASE \(grouping) WHEN 1 THEN owner_id WHEN 2 THEN group_id WHEN 3 THEN node_id ELSE resource_id END"
    }

    /// The report's lines, by key name then resource name. `onlyOwner`: a user's own reservations only (by user, their
    /// day figures; by anything else, swept live from their own tasks). One statement, so one snapshot: the days it
    /// reads figures of and the days it sweeps are exactly complementary.
    public func usage(from start: LocalDateTime, to end: LocalDateTime, by grouping: Grouping, onlyOwner: Int?, logger: Logger) async throws
        -> [Line]
    {
        let name: String
        switch grouping {
        case .user: name = "(SELECT u.username FROM users u WHERE u.id = s.key)"
        case .group: name = "(SELECT g.name FROM groups g WHERE g.id = s.key)"
        case .node: name = "(SELECT n.name FROM nodes n WHERE n.id = s.key)"
        case .resource: name = "(SELECT r.name FROM resources r WHERE r.id = s.key)"
        }
        let uid = grouping == .user ? "(SELECT u.uid FROM users u WHERE u.id = s.key)" : "NULL::int"
        let owner = onlyOwner.map { Int32(truncatingIfNeeded: $0) }
        // Day figures hold everyone's reservations: one owner's can be read from them only by user.
        let useDays = owner == nil || grouping == .user
        let rows = try await self.db.query(
            """
            WITH p AS (
                SELECT \(start.sqlText)::timestamp AS t0, \(end.sqlText)::timestamp AS t1, \(grouping.code)::int2 AS grouping,
                       \(owner)::int4 AS owner),
            done AS (
                SELECT d.day FROM usage_days_done d, p
                WHERE \(useDays) AND d.day >= p.t0::date AND d.day::timestamp >= p.t0 AND d.day < p.t1::date),
            b AS (SELECT day::timestamp AS s, (day + 1)::timestamp AS e FROM done),
            gaps AS MATERIALIZED (
                SELECT x.prev AS s, x.s AS e
                FROM (SELECT b.s, COALESCE(lag(b.e) OVER (ORDER BY b.s), p.t0) AS prev FROM b, p) x WHERE x.prev < x.s
                UNION ALL
                SELECT l.last, p.t1 FROM p, LATERAL (SELECT COALESCE(max(b.e), p.t0) AS last FROM b) l WHERE l.last < p.t1),
            a AS MATERIALIZED (\(unescaped: Self.clipped(ranges: "gaps", oneOwner: owner != nil))),
            k AS MATERIALIZED (
                SELECT p.grouping, \(unescaped: Self.key("p.grouping")) AS key, a.task_id, a.resource_id, a.amount, a.began, a.gs, a.s, a.e
                FROM p, a JOIN users u ON u.id = a.owner_id),
            \(unescaped: Self.sumsAndPeaks),
            live_tasks AS (
                SELECT key, count(DISTINCT task_id) FILTER (WHERE gs = p.t0 OR began >= gs)::int AS tasks FROM k, p GROUP BY key),
            rolled AS (
                SELECT u.key, u.resource_id, sum(u.hours) AS hours, max(u.peak) AS peak
                FROM p JOIN usage_days u ON u.grouping = p.grouping JOIN done d ON d.day = u.day
                WHERE p.owner IS NULL OR u.key = p.owner GROUP BY u.key, u.resource_id),
            rolled_tasks AS (
                SELECT u.key, sum(CASE WHEN u.day::timestamp = p.t0 THEN u.overlapping ELSE u.started END)::int AS tasks
                FROM p JOIN usage_day_tasks u ON u.grouping = p.grouping JOIN done d ON d.day = u.day
                WHERE p.owner IS NULL OR u.key = p.owner GROUP BY u.key),
            lines AS (
                SELECT COALESCE(l.key, r.key) AS key, COALESCE(l.resource_id, r.resource_id) AS resource_id,
                       COALESCE(l.hours, 0) + COALESCE(r.hours, 0) AS hours, GREATEST(l.peak, r.peak) AS peak
                FROM (SELECT s.key, s.resource_id, s.hours, pk.peak FROM sums s JOIN peaks pk USING (grouping, key, resource_id)) l
                FULL JOIN rolled r ON r.key = l.key AND r.resource_id = l.resource_id),
            counts AS (
                SELECT COALESCE(l.key, r.key) AS key, COALESCE(l.tasks, 0) + COALESCE(r.tasks, 0) AS tasks
                FROM live_tasks l FULL JOIN rolled_tasks r ON r.key = l.key)
            SELECT s.key, COALESCE(\(unescaped: name), '(deleted)'), \(unescaped: uid), s.resource_id, r.name, r.unit, s.hours, s.peak, c.tasks
            FROM lines s JOIN counts c ON c.key = s.key JOIN resources r ON r.id = s.resource_id
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

    /// Rolls up one day (numbered from 2000-01-01) for every way of grouping, in one transaction under the day's
    /// exclusive advisory lock (changes of that day's allocations take it shared; changes of many days lock the table
    /// of done days instead: migration 0010). False when another replica or a change holds the lock, or the day is done.
    @discardableResult
    public func rollUp(day: Int32, logger: Logger) async throws -> Bool {
        try await self.db.transaction(logger: logger) { tx in
            // First the table lock that changes of many days take (waiting here holds no day lock yet), then the day's.
            try await tx.query("LOCK TABLE usage_days_done IN ROW EXCLUSIVE MODE", logger: logger)
            let locked = try await tx.query(
                "SELECT pg_try_advisory_xact_lock(hashtext('remas.usage_day ' || current_schema()), \(day))", logger: logger)
            guard try locked.first?.decode(Bool.self) == true else { return false }
            // Done, or before the purge horizon (migration 0013: those figures are all that is left of the day).
            let done = try await tx.query(
                """
                SELECT 1 FROM usage_days_done WHERE day = \(unescaped: Self.epochDay) + \(day)
                UNION ALL SELECT 1 FROM usage_history_purged WHERE before > \(unescaped: Self.epochDay) + \(day)
                """, logger: logger)
            guard done.isEmpty else { return false }
            try await tx.query(
                "DELETE FROM usage_days WHERE grouping IN (1, 2, 3, 4) AND day = \(unescaped: Self.epochDay) + \(day)", logger: logger)
            try await tx.query(
                "DELETE FROM usage_day_tasks WHERE grouping IN (1, 2, 3, 4) AND day = \(unescaped: Self.epochDay) + \(day)", logger: logger)
            try await tx.query(
                """
                WITH p AS (SELECT (\(unescaped: Self.epochDay) + \(day))::timestamp AS t0, (\(unescaped: Self.epochDay) + \(day) + 1)::timestamp AS t1),
                day AS (SELECT t0 AS s, t1 AS e FROM p),
                a AS MATERIALIZED (\(unescaped: Self.clipped(ranges: "day", oneOwner: false))),
                k AS MATERIALIZED (
                    SELECT g.grouping, \(unescaped: Self.key("g.grouping")) AS key, a.task_id, a.resource_id, a.amount, a.began, a.s, a.e
                    FROM a JOIN users u ON u.id = a.owner_id
                    CROSS JOIN (VALUES (1::int2), (2::int2), (3::int2), (4::int2)) g(grouping)),
                \(unescaped: Self.sumsAndPeaks),
                figures AS (
                    INSERT INTO usage_days (day, grouping, key, resource_id, hours, peak)
                    SELECT p.t0::date, s.grouping, s.key, s.resource_id, s.hours, pk.peak
                    FROM p, sums s JOIN peaks pk USING (grouping, key, resource_id))
                INSERT INTO usage_day_tasks (day, grouping, key, started, overlapping)
                SELECT p.t0::date, k.grouping, k.key, count(DISTINCT k.task_id) FILTER (WHERE k.began >= p.t0), count(DISTINCT k.task_id)
                FROM p, k GROUP BY p.t0, k.grouping, k.key
                """, logger: logger)
            try await tx.query("INSERT INTO usage_days_done (day) VALUES (\(unescaped: Self.epochDay) + \(day))", logger: logger)
            return true
        }
    }

    /// The closed days without current figures, newest first: from the first reservation's day to the day before
    /// the one that began `graceHours` ago in the server's zone (a day is rolled up once its last hour is that old).
    public func pendingDays(graceHours: Int = 1, limit: Int = 10_000, logger: Logger) async throws -> [Int32] {
        let rows = try await self.db.query(
            """
            SELECT n FROM generate_series(
                GREATEST((SELECT min(start_time)::date FROM tasks), (SELECT before FROM usage_history_purged)) - \(unescaped: Self.epochDay),
                (localtimestamp - make_interval(hours => \(Int32(graceHours))))::date - 1 - \(unescaped: Self.epochDay)) n
            WHERE NOT EXISTS (SELECT 1 FROM usage_days_done d WHERE d.day = \(unescaped: Self.epochDay) + n)
            ORDER BY n DESC LIMIT \(Int32(limit))
            """, logger: logger)
        return try rows.map { try $0.decode(Int32.self) }
    }

    /// Rolls up every pending day (see `pendingDays`); the days this call rolled up (others may be another replica's).
    public func rollUpPending(graceHours: Int = 1, isStopping: @Sendable () -> Bool = { false }, logger: Logger) async throws -> Int {
        var rolled = 0
        for day in try await self.pendingDays(graceHours: graceHours, logger: logger) {
            if isStopping() { break }
            if try await self.rollUp(day: day, logger: logger) { rolled += 1 }
        }
        return rolled
    }
}
