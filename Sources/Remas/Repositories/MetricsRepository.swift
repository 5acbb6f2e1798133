import Logging
import PostgresNIO

/// The database state `/metrics` reports, in one prepared statement (planning it took longer than running it).
enum MetricsRepository {
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
    }

    static func snapshot(on executor: any SQLExecutor, logger: Logger) async throws -> Snapshot {
        var snapshot = Snapshot()
        for (kind, a, b, x, y, z) in try await executor.run(MetricsSnapshotStatement(), logger: logger) {
            switch kind {
            case 0: snapshot.capacity.append(Capacity(node: a, resource: b, capacity: x, reserved: y))
            case 1: snapshot.tasks = [("scheduled", x), ("running", y), ("finished", Int64(z))]
            case 2:
                snapshot.pendingEvents = x
                snapshot.failedEvents = y
                snapshot.schedulerLagSeconds = max(0, z)
            default: snapshot.grafana = GrafanaRepository.Backlog(pending: Int(x), failing: Int(y), oldestSeconds: z)
            }
        }
        return snapshot
    }
}

/// Rows `(kind, text, text, int, int, float)`: 0 = capacity and current reservation per node and resource (one
/// index-only range scan per node over the allocations still running or ahead), 1 = tasks scheduled / running /
/// finished (two range scans and one count), 2 = events pending / failed / lag, 3 = the Grafana outbox.
struct MetricsSnapshotStatement: PostgresPreparedStatement {
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
               (SELECT count(*) FROM tasks WHERE end_time > localtimestamp AND start_time <= localtimestamp),
               (SELECT count(*) FROM tasks WHERE end_time <= localtimestamp)::float8
        UNION ALL
        SELECT 2, '', '', count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'failed'),
               COALESCE(extract(epoch FROM localtimestamp - min(COALESCE(retry_at, time)) FILTER (WHERE state = 'pending')), 0)::float8
        FROM events WHERE state IN ('pending', 'failed')
        UNION ALL
        SELECT 3, '', '', count(*), count(*) FILTER (WHERE last_error IS NOT NULL),
               COALESCE(extract(epoch FROM localtimestamp - min(enqueued_at)), 0)::float8
        FROM grafana_outbox
        """

    func makeBindings() throws -> PostgresBindings { PostgresBindings() }
    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
