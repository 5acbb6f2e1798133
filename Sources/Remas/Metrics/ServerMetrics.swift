import CoreMetrics
import Foundation
import Hummingbird
import Logging
import Prometheus
import Synchronization

/// `GET /metrics` in the Prometheus text format.
///
/// Two sources: request counters and latency histograms recorded through swift-metrics into this server's own
/// swift-prometheus registry (one per application, so tests and several servers in one process never mix), and
/// gauges read at scrape time from PostgreSQL and the in-process counters (capacity and current reservations per
/// node and resource, tasks by status, the Grafana outbox, the scheduler, the connection pool). The database state
/// is shared by every replica, so those series say the same on each; the request and pool series are per process.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    let finishedTasks = FinishedTaskCount()

    public init() {
        self.registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: self.registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
        ]
        self.factory = factory
    }

    /// One request: counted by route template, method and status, timed by route template and method.
    func record(route: String, method: String, status: Int, nanoseconds: Int64) {
        let key = SeriesKey(route: route, method: method, status: status)
        let series = self.series.withLock { $0[key] } ?? self.makeSeries(key)
        series.requests.increment()
        series.duration.recordNanoseconds(nanoseconds)
    }

    /// The series of one route template, method and status: a bounded set (templates, not paths).
    private struct SeriesKey: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    private struct Series: Sendable {
        let requests: CoreMetrics.Counter
        let duration: CoreMetrics.Timer
    }

    /// Each request's handles, made once per series: making them through the factory looks the series up in the
    /// registry by its label and dimensions on every request (1–2 % of a `GET /user/{id}`'s CPU in `perf`).
    private let series = Mutex<[SeriesKey: Series]>([:])

    private func makeSeries(_ key: SeriesKey) -> Series {
        let made = Series(
            requests: CoreMetrics.Counter(
                label: "remas_http_requests_total",
                dimensions: [("route", key.route), ("method", key.method), ("status", String(key.status))], factory: self.factory),
            duration: CoreMetrics.Timer(
                label: "remas_http_request_duration_seconds", dimensions: [("route", key.route), ("method", key.method)],
                factory: self.factory))
        return self.series.withLock { series in
            if let kept = series[key] { return kept }
            series[key] = made
            return made
        }
    }

    /// The whole exposition: the registry's series, then the ones read now.
    func render(environment env: AppEnvironment, logger: Logger) async throws -> ByteBuffer {
        var text = self.registry.emitToString()
        let state = try await MetricsRepository(db: env.db).snapshot(finished: self.finishedTasks, logger: logger)
        var out = Exposition()
        out.family("remas_node_resource_capacity", "gauge", "Amount of a resource a node provides.")
        for row in state.capacity { out.sample("remas_node_resource_capacity", [("node", row.node), ("resource", row.resource)], Double(row.capacity)) }
        out.family("remas_node_resource_reserved", "gauge", "Amount of a resource reserved on a node by running tasks right now.")
        for row in state.capacity { out.sample("remas_node_resource_reserved", [("node", row.node), ("resource", row.resource)], Double(row.reserved)) }
        out.family("remas_node_maintenance", "gauge", "1 while a maintenance window holds the node, else 0.")
        for row in state.maintenance { out.sample("remas_node_maintenance", [("node", row.node)], row.inWindow ? 1 : 0) }
        out.family(
            "remas_resource_booked_ratio", "gauge",
            "Peak booked share of a resource over the next CAPACITY_HORIZON_HOURS, per node and cluster-wide (node \"\"), as of the last capacity pass.")
        for row in state.bookedRatio { out.sample("remas_resource_booked_ratio", [("resource", row.resource), ("node", row.node)], row.ratio) }
        out.family("remas_tasks", "gauge", "Tasks by status (derived from the clock; finished re-counted at most once a minute).")
        for (status, count) in state.tasks { out.sample("remas_tasks", [("status", status)], Double(count)) }
        out.family("remas_events_pending", "gauge", "Scheduler events waiting to be processed.")
        out.sample("remas_events_pending", [], Double(state.pendingEvents))
        out.family("remas_events_failed", "gauge", "Reminders given up after their last attempt.")
        out.sample("remas_events_failed", [], Double(state.failedEvents))
        out.family("remas_scheduler_lag_seconds", "gauge", "How long the oldest due event has been waiting (0 when none is overdue).")
        out.sample("remas_scheduler_lag_seconds", [], state.schedulerLagSeconds)
        let stats = env.schedulerStats
        out.family("remas_capacity_passes_total", "counter", "Capacity passes run by this process (only when reservations, capacities or the clock changed the answer).")
        out.sample("remas_capacity_passes_total", [], Double(stats.capacityPasses))
        out.family("remas_mails_sent_total", "counter", "Reminder mails accepted by the SMTP server (this process).")
        out.sample("remas_mails_sent_total", [], Double(stats.mailsSent))
        out.family("remas_mails_failed_total", "counter", "Reminder mails given up (this process).")
        out.sample("remas_mails_failed_total", [], Double(stats.mailsFailed))
        out.family("remas_mails_retried_total", "counter", "Reminder sends that failed and were rescheduled (this process).")
        out.sample("remas_mails_retried_total", [], Double(stats.mailsRetried))
        out.family("remas_grafana_sync_pending", "gauge", "Users queued for a Grafana sync.")
        out.sample("remas_grafana_sync_pending", [], Double(state.grafana.pending))
        out.family("remas_grafana_sync_failing", "gauge", "Queued users whose last Grafana sync failed.")
        out.sample("remas_grafana_sync_failing", [], Double(state.grafana.failing))
        out.family("remas_grafana_sync_oldest_seconds", "gauge", "Age of the oldest queued Grafana sync.")
        out.sample("remas_grafana_sync_oldest_seconds", [], state.grafana.oldestSeconds)
        out.family("remas_grafana_users_synced_total", "counter", "User syncs Grafana accepted completely (this process).")
        out.sample("remas_grafana_users_synced_total", [], Double(env.grafanaStats.usersSynced))
        out.family("remas_grafana_sync_failures_total", "counter", "User syncs that failed and were rescheduled (this process).")
        out.sample("remas_grafana_sync_failures_total", [], Double(env.grafanaStats.syncFailures))
        out.family("remas_password_checks_total", "counter", "Passwords checked with bcrypt: logins and password changes (this process).")
        out.sample("remas_password_checks_total", [], Double(env.hasher.checks))
        let pool = env.db.pool.statistics
        out.family("remas_db_connections", "gauge", "Database connections of this process's pool by state.")
        out.sample("remas_db_connections", [("state", "in_use")], Double(pool.inUse))
        out.sample("remas_db_connections", [("state", "idle")], Double(pool.idle))
        out.family("remas_db_connection_waiters", "gauge", "Requests waiting for a database connection.")
        out.sample("remas_db_connection_waiters", [], Double(pool.waiting))
        out.family("remas_db_connections_max", "gauge", "Size limit of this process's pool.")
        out.sample("remas_db_connections_max", [], Double(pool.maximum))
        text += out.text
        return ByteBuffer(string: text)
    }
}

/// Builds Prometheus text exposition lines.
struct Exposition {
    var text = ""

    mutating func family(_ name: String, _ type: String, _ help: String) {
        self.text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        self.text += name
        if !labels.isEmpty {
            self.text += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        self.text += " " + (value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)) + "\n"
    }

    /// Label values escape backslash, double quote and newline.
    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}

/// Counts and times every request by its route template (never the raw path: ids would make a series per object).
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let method = request.method.rawValue
        do {
            let response = try await next(request, context)
            self.metrics.record(route: Self.route(context), method: method, status: response.status.code, nanoseconds: Self.elapsed(since: started))
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            self.metrics.record(route: Self.route(context), method: method, status: status, nanoseconds: Self.elapsed(since: started))
            throw error
        }
    }

    /// The matched route's template; every request no route matched shares one series.
    static func route(_ context: Context) -> String {
        guard let path = context.endpointPath, path != "NotFound" else { return "unmatched" }
        return path
    }

    static func elapsed(since start: ContinuousClock.Instant) -> Int64 {
        let d = ContinuousClock.now - start
        return d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }
}
