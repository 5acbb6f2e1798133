import Logging
import PostgresNIO

/// The database state `/metrics` reports, in one statement.
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
        // Reservations right now come from the allocations' own copies of the task window, through the
        // (node_id, end_time, start_time) index; the task counts take one scan of `tasks`.
        let rows = try await executor.query(
            """
            WITH now_held AS (
                SELECT a.node_id, a.resource_id, sum(a.amount)::int8 AS amount FROM allocations a
                WHERE a.end_time > localtimestamp AND a.start_time <= localtimestamp GROUP BY 1, 2)
            SELECT 0, n.name, r.name, nr.amount, COALESCE(h.amount, 0)::int8, 0::float8
            FROM node_resources nr JOIN nodes n ON n.id = nr.node_id JOIN resources r ON r.id = nr.resource_id
            LEFT JOIN now_held h ON h.node_id = nr.node_id AND h.resource_id = nr.resource_id
            UNION ALL
            SELECT 1, '', '', count(*) FILTER (WHERE start_time > localtimestamp),
                   count(*) FILTER (WHERE start_time <= localtimestamp AND end_time > localtimestamp),
                   count(*) FILTER (WHERE end_time <= localtimestamp)::float8 FROM tasks
            UNION ALL
            SELECT 3, 'events', '', count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'failed'),
                   COALESCE(extract(epoch FROM localtimestamp - min(COALESCE(retry_at, time)) FILTER (WHERE state = 'pending')), 0)::float8
            FROM events WHERE state IN ('pending', 'failed')
            UNION ALL
            SELECT 4, 'grafana', '', count(*), count(*) FILTER (WHERE last_error IS NOT NULL),
                   COALESCE(extract(epoch FROM localtimestamp - min(enqueued_at)), 0)::float8
            FROM grafana_outbox
            """, logger: logger)
        var snapshot = Snapshot()
        for row in rows {
            let (kind, a, b, x, y, z) = try row.decode((Int, String, String, Int64, Int64, Double).self)
            switch kind {
            case 0: snapshot.capacity.append(Capacity(node: a, resource: b, capacity: x, reserved: y))
            case 1: snapshot.tasks = [("scheduled", x), ("running", y), ("finished", Int64(z))]
            case 3:
                snapshot.pendingEvents = x
                snapshot.failedEvents = y
                snapshot.schedulerLagSeconds = max(0, z)
            default: snapshot.grafana = GrafanaRepository.Backlog(pending: Int(x), failing: Int(y), oldestSeconds: z)
            }
        }
        return snapshot
    }
}
