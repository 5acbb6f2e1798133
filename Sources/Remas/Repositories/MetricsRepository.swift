import Logging
import PostgresNIO
import Synchronization

/// The database state `/metrics` reports, in one prepared statement (planning it took longer than running it).
struct MetricsRepository: Sendable {
    let db: Database

    struct Capacity: Sendable {
        let node: String
        let resource: String
        let capacity: Int64
        let reserved: Int64
    }

    struct Snapshot: Sendable {
        var capacity: [Capacity] = []
        var tasks: [(String, Int64)] = []
        var pendingEvents: Int64 = 0
        var failedEvents: Int64 = 0
        var schedulerLagSeconds = 0.0
        var grafana = GrafanaRepository.Backlog()
        /// Every node, and whether a maintenance window holds it now.
        var maintenance: [(node: String, inWindow: Bool)] = []
        /// The last capacity pass's peak booked share per resource, per node and cluster-wide (node "").
        var bookedRatio: [(resource: String, node: String, ratio: Double)] = []
    }

    /// The finished-task count is the one figure that grows without bound (a cluster keeps years of history) and costs
    /// a scan; it is read at most once a minute per process (`finished` keeps the last reading), the rest every scrape.
    func snapshot(finished: FinishedTaskCount, logger: Logger) async throws -> Snapshot {
        var snapshot = Snapshot()
        let finishedCount: Int64
        if let cached = finished.fresh() {
            finishedCount = cached
        } else {
            finishedCount = try await self.db.int("SELECT count(*)::int8 FROM tasks WHERE end_time <= localtimestamp", logger: logger).map(Int64.init) ?? 0
            finished.store(finishedCount)
        }
        for (kind, a, b, x, y, z) in try await self.db.run(MetricsSnapshotStatement(), logger: logger) {
            switch kind {
            case 0: snapshot.capacity.append(Capacity(node: a, resource: b, capacity: x, reserved: y))
            case 1: snapshot.tasks = [("scheduled", x), ("running", y), ("finished", finishedCount)]
            case 2:
                snapshot.pendingEvents = x
                snapshot.failedEvents = y
                snapshot.schedulerLagSeconds = max(0, z)
            case 3: snapshot.grafana = GrafanaRepository.Backlog(pending: Int(x), failing: Int(y), oldestSeconds: z)
            case 4: snapshot.maintenance.append((a, x == 1))
            default: snapshot.bookedRatio.append((a, b, z))
            }
        }
        return snapshot
    }
}

/// Rows `(kind, text, text, int, int, float)`: 0 = capacity and current reservation per node and resource (one
/// index-only range scan per node over the allocations still running or ahead), 1 = tasks scheduled / running /
/// (two range scans; finished is read apart, see `snapshot`), 2 = events pending / failed / lag, 3 = the Grafana outbox,
/// 4 = per node 1 while a maintenance window holds it, 5 = the capacity pass's booked share per resource and node.
struct MetricsSnapshotStatement: NamedStatement {
    typealias Row = (Int, String, String, Int64, Int64, Double)
    static let sql = """
        SELECT 0, n.name, r.name, nr.amount, COALESCE(h.amount, 0)::int8, 0::float8
        FROM node_resources nr JOIN nodes n ON n.id = nr.node_id JOIN resources r ON r.id = nr.resource_id
        LEFT JOIN LATERAL (
            SELECT sum(a.amount)::int8 AS amount FROM allocations a
            WHERE a.node_id = nr.node_id AND a.end_time > localtimestamp AND a.start_time <= localtimestamp
              AND a.resource_id = nr.resource_id) h ON true
        UNION ALL
        SELECT 1, '', '', (SELECT count(*) FROM tasks WHERE start_time > localtimestamp),
               (SELECT count(*) FROM tasks WHERE end_time > localtimestamp AND start_time <= localtimestamp), 0::float8
        UNION ALL
        SELECT 2, '', '', count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'failed'),
               COALESCE(extract(epoch FROM localtimestamp - min(COALESCE(retry_at, time)) FILTER (WHERE state = 'pending')), 0)::float8
        FROM events WHERE state IN ('pending', 'failed')
        UNION ALL
        SELECT 3, '', '', count(*), count(*) FILTER (WHERE last_error IS NOT NULL),
               COALESCE(extract(epoch FROM localtimestamp - min(enqueued_at)), 0)::float8
        FROM grafana_outbox
        UNION ALL
        SELECT 4, n.name, '', (EXISTS (
                   SELECT 1 FROM maintenance_windows w
                   WHERE w.end_time > localtimestamp AND w.start_time <= localtimestamp
                     AND (w.all_nodes OR EXISTS (SELECT 1 FROM maintenance_nodes m WHERE m.window_id = w.id AND m.node_id = n.id))))::int::int8,
               0::int8, 0::float8
        FROM nodes n
        UNION ALL
        SELECT 5, r.name, COALESCE(n.name, ''), 0::int8, 0::int8, c.ratio
        FROM capacity_alerts c JOIN resources r ON r.id = c.resource_id LEFT JOIN nodes n ON n.id = c.node_id
        WHERE c.node_id = 0 OR n.id IS NOT NULL
        """

    func makeBindings() throws -> PostgresBindings { PostgresBindings() }
    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// The last finished-task count of this process and when it was read.
final class FinishedTaskCount: Sendable {
    private let reading = Mutex<(value: Int64, at: ContinuousClock.Instant)?>(nil)
    let maxAge: Duration

    init(maxAge: Duration = .seconds(60)) { self.maxAge = maxAge }

    func fresh() -> Int64? {
        self.reading.withLock { reading in
            guard let reading, ContinuousClock.now - reading.at < self.maxAge else { return nil }
            return reading.value
        }
    }

    func store(_ value: Int64) { self.reading.withLock { $0 = (value, ContinuousClock.now) } }
}
