import Foundation
import Logging
import PostgresNIO

/// Capacity alerts (`capacity_alerts`): the pass that computes each resource's peak booked share over the coming
/// horizon (per node and cluster-wide), the alert states with their hysteresis, and the notices of their transitions.
///
/// A pass runs in one transaction under an advisory lock, so passes of several replicas run one after the other and
/// each sees what the one before it wrote: a transition is found, written and told once, however many replicas and
/// restarts there are (the notices are queued in the same transaction).
public struct CapacityRepository: Sendable {
    let db: Database

    public init(db: Database) { self.db = db }

    /// A state change of one alert.
    public struct Transition: Sendable {
        public let resource: String
        /// nil: cluster-wide.
        public let node: String?
        public let ratio: Double
        public let firing: Bool
        /// The alert's transition count after this one (part of the notice key).
        let count: Int
        let resourceID: Int
        let nodeID: Int
    }

    public struct Pass: Sendable {
        public var transitions: [Transition] = []
        /// Alerts whose stored share changed.
        public var written = 0
        /// When the answer can next change by the clock alone: an allocation in the horizon ends, or one enters it.
        public var nextChange: LocalDateTime?
        public var notices = 0
    }

    /// One pass. Its cost follows what lies inside the horizon, not how far ahead the cluster is booked: the
    /// reservations in it are found through the tasks' period index (`tasks_period_idx`, migration 0011) and then their
    /// allocations by task, and the next one to enter it is the first later task (`tasks_start_idx`) that reserves
    /// anything. (Per node through `allocations_node_time_idx`, both read every later reservation of every node: on the
    /// national data set, with a year of bookings ahead, 0.24 s and 1.27 s of PostgreSQL's time against 0.01 s and
    /// 0.2 ms, each pass, and a pass follows every burst of bookings.) An allocation copies its task's period
    /// (migration 0001), so the task's period bounds it.
    public func evaluate(settings: OperationsSettings, logger: Logger) async throws -> Pass {
        try await self.db.transaction(logger: logger) { tx in
            try await tx.query("SELECT pg_advisory_xact_lock(hashtext('remas.capacity'))", logger: logger)
            var pass = Pass()
            let hours = Int32(settings.capacityHorizonHours)
            let rows = try await tx.query(
                """
                WITH w AS (SELECT localtimestamp AS t0, localtimestamp + make_interval(hours => \(hours)) AS t1),
                a AS MATERIALIZED (
                    SELECT al.node_id, al.resource_id, al.amount, GREATEST(al.start_time, w.t0) AS s, LEAST(al.end_time, w.t1) AS e
                    FROM w JOIN tasks t ON tsrange(t.start_time, t.end_time) && tsrange(w.t0, w.t1)
                    JOIN allocations al ON al.task_id = t.id
                    WHERE al.end_time > w.t0 AND al.start_time < w.t1),
                d AS MATERIALIZED (
                    SELECT node_id, resource_id, s AS t, amount AS delta FROM a
                    UNION ALL SELECT node_id, resource_id, e, -amount FROM a),
                node_peak AS (
                    SELECT node_id, resource_id, max(held) AS peak
                    FROM (SELECT node_id, resource_id,
                                 sum(delta) OVER (PARTITION BY node_id, resource_id ORDER BY t, delta ROWS UNBOUNDED PRECEDING) AS held
                          FROM d) r
                    GROUP BY node_id, resource_id),
                cluster_peak AS (
                    SELECT resource_id, max(held) AS peak
                    FROM (SELECT resource_id, sum(delta) OVER (PARTITION BY resource_id ORDER BY t, delta ROWS UNBOUNDED PRECEDING) AS held
                          FROM d) r
                    GROUP BY resource_id),
                ratios AS (
                    SELECT nr.resource_id, nr.node_id, COALESCE(p.peak, 0)::float8 / nr.amount AS ratio
                    FROM node_resources nr LEFT JOIN node_peak p ON p.node_id = nr.node_id AND p.resource_id = nr.resource_id
                    UNION ALL
                    SELECT c.resource_id, 0, COALESCE(p.peak, 0)::float8 / c.total
                    FROM (SELECT resource_id, sum(amount) AS total FROM node_resources GROUP BY resource_id) c
                    LEFT JOIN cluster_peak p ON p.resource_id = c.resource_id),
                decided AS (
                    SELECT r.resource_id, r.node_id, r.ratio, s.ratio AS old_ratio, COALESCE(s.firing, false) AS was,
                           CASE WHEN r.ratio >= \(settings.capacityThreshold) THEN true
                                WHEN r.ratio < \(settings.capacityThreshold - OperationsSettings.capacityHysteresis) THEN false
                                ELSE COALESCE(s.firing, false) END AS firing,
                           COALESCE(s.transitions, 0) AS transitions
                    FROM ratios r LEFT JOIN capacity_alerts s ON s.resource_id = r.resource_id AND s.node_id = r.node_id),
                written AS (
                    INSERT INTO capacity_alerts AS c (resource_id, node_id, ratio, firing, transitions, changed_at)
                    SELECT resource_id, node_id, ratio, firing, transitions + (firing <> was)::int, localtimestamp FROM decided
                    WHERE old_ratio IS NULL OR abs(old_ratio - ratio) > 1e-9 OR firing <> was
                    ON CONFLICT (resource_id, node_id) DO UPDATE SET ratio = EXCLUDED.ratio, firing = EXCLUDED.firing,
                        transitions = EXCLUDED.transitions,
                        changed_at = CASE WHEN EXCLUDED.firing <> c.firing THEN EXCLUDED.changed_at ELSE c.changed_at END
                    RETURNING 1),
                gone AS (
                    DELETE FROM capacity_alerts c
                    WHERE NOT EXISTS (SELECT 1 FROM ratios r WHERE r.resource_id = c.resource_id AND r.node_id = c.node_id)
                    RETURNING 1),
                next_end AS (SELECT min(a.e) AS at FROM a, w WHERE a.e < w.t1),
                next_start AS (
                    SELECT (SELECT t.start_time FROM tasks t
                            WHERE t.start_time >= w.t1 AND EXISTS (SELECT 1 FROM allocations al WHERE al.task_id = t.id)
                            ORDER BY t.start_time LIMIT 1) - make_interval(hours => \(hours)) AS at
                    FROM w)
                SELECT 0, 0, 0, '', NULL::text, 0::float8, false, 0,
                       (SELECT count(*) FROM written)::int + (SELECT count(*) FROM gone)::int,
                       (extract(epoch FROM LEAST((SELECT at FROM next_end), (SELECT at FROM next_start))) * 1000000)::int8
                UNION ALL
                SELECT 1, d.resource_id, d.node_id, r.name, n.name, d.ratio, d.firing, d.transitions + 1, 0, NULL::int8
                FROM decided d JOIN resources r ON r.id = d.resource_id LEFT JOIN nodes n ON n.id = d.node_id
                WHERE d.firing <> d.was
                """, logger: logger)
            for row in rows {
                let (kind, resourceID, nodeID, resource, node, ratio, firing, count, written, next) =
                    try row.decode((Int, Int, Int, String, String?, Double, Bool, Int, Int, Int64?).self)
                if kind == 0 {
                    pass.written = written
                    pass.nextChange = next.map(LocalDateTime.init(microseconds:))
                } else {
                    pass.transitions.append(
                        Transition(resource: resource, node: node, ratio: ratio, firing: firing, count: count, resourceID: resourceID, nodeID: nodeID))
                }
            }
            pass.transitions.sort { ($0.resource, $0.node ?? "", $0.nodeID) < ($1.resource, $1.node ?? "", $1.nodeID) }
            pass.notices = try await self.tellAdmins(pass.transitions, settings: settings, in: tx, logger: logger)
            return pass
        }
    }

    /// One notice per admin per pass that changed any alert, listing every change.
    private func tellAdmins(_ transitions: [Transition], settings: OperationsSettings, in tx: LeasedConnection, logger: Logger) async throws -> Int {
        guard let first = transitions.first else { return 0 }
        let firing = transitions.filter(\.firing)
        let resolved = transitions.filter { !$0.firing }
        // A share may be far above 1 (a capacity lowered under existing reservations): formatted, never converted to Int.
        func percent(_ ratio: Double) -> String { ratio.isFinite ? String(format: "%.0f %%", ratio * 100) : "? %" }
        func place(_ t: Transition) -> String { t.node.map { "\(t.resource) on node \($0)" } ?? "\(t.resource) cluster-wide" }
        let threshold = settings.capacityThreshold
        var subject = "Capacity: "
        if !firing.isEmpty { subject += "\(firing.count) alert(s) at \(percent(threshold)) or more booked" }
        if !firing.isEmpty && !resolved.isEmpty { subject += ", " }
        if !resolved.isEmpty { subject += "\(resolved.count) resolved" }
        var body = "Peak booked share over the next \(settings.capacityHorizonHours) hours:\n"
        if !firing.isEmpty {
            body += "\nAt or above the threshold of \(percent(threshold)):\n"
            for t in firing { body += "- \(place(t)): \(percent(t.ratio))\n" }
        }
        if !resolved.isEmpty {
            body += "\nBack below \(percent(threshold - OperationsSettings.capacityHysteresis)) (resolved):\n"
            for t in resolved { body += "- \(place(t)): \(percent(t.ratio))\n" }
        }
        let admins = try await UserRepository(db: self.db).adminIDs(on: tx, logger: logger)
        let key = "capacity:\(first.resourceID).\(first.nodeID).\(first.count):\(transitions.count)"
        try await EventRepository(db: self.db).queueNotices(
            admins.map { .init(recipient: $0, subject: subject, body: body, key: "\(key):\($0)") }, in: tx, logger: logger)
        return admins.count
    }

    /// The stored alerts by resource and node name (node "" for the cluster), for `remas capacity`.
    public func report(logger: Logger) async throws -> [(resource: String, node: String, ratio: Double, firing: Bool)] {
        try await self.db.query(
            """
            SELECT r.name, COALESCE(n.name, ''), c.ratio, c.firing
            FROM capacity_alerts c JOIN resources r ON r.id = c.resource_id LEFT JOIN nodes n ON n.id = c.node_id
            ORDER BY r.name, c.node_id <> 0, n.name
            """, logger: logger
        ).map { try $0.decode((String, String, Double, Bool).self) }.map { (resource: $0.0, node: $0.1, ratio: $0.2, firing: $0.3) }
    }

    /// The stored alerts, for tests and the admin's eye: (resource id, node id (0: cluster), share, firing).
    func states(logger: Logger) async throws -> [(resource: Int, node: Int, ratio: Double, firing: Bool)] {
        try await self.db.query("SELECT resource_id, node_id, ratio, firing FROM capacity_alerts ORDER BY resource_id, node_id", logger: logger)
            .map { try $0.decode((Int, Int, Double, Bool).self) }.map { (resource: $0.0, node: $0.1, ratio: $0.2, firing: $0.3) }
    }
}
