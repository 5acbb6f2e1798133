import Logging
import PostgresNIO

/// Node status (`node_status`): reports from collectors, Alertmanager and admins, what `GET /node/status` answers, and
/// the outage notices a transition queues.
///
/// A report locks the node's row the way a booking does (`FOR NO KEY UPDATE`), so reports of one node are applied one
/// at a time (three concurrent deliveries of one alert make one transition and one set of mails), and a booking that
/// holds the node's lock sees the status as it was before or after a report, never half of it. The notices go into
/// the events queue in the report's own transaction: they go out once, and only if the transition is committed.
struct NodeStatusRepository: Sendable {
    let db: Database

    enum Status: String, Sendable, CaseIterable {
        case up, down, degraded
    }

    /// One report of a node's state.
    struct Report: Sendable {
        var status: Status
        var message: String?
        /// "alertmanager", "api key <name>" or "user <username>".
        var source: String
        /// From Alertmanager: the alert's `startsAt` and whether this delivery resolves it.
        var alert: (startsAt: String, resolved: Bool)? = nil
    }

    /// What a report did.
    struct Outcome: Sendable {
        let nodeID: Int
        let nodeName: String
        /// The status before (nil: never reported) and after.
        let previous: Status?
        let current: Status?
        /// The report changed the node's status (a repeated report changes nothing but the report time).
        let changed: Bool
        /// Mails queued by this report.
        let notices: Int
    }

    /// Applies a report; nil when there is no such node.
    func report(node id: Int, _ report: Report, settings: OperationsSettings, logger: Logger) async throws -> Outcome? {
        try await self.db.transaction(logger: logger) { tx -> Outcome? in
            // The node's lock first, then its status in a statement of its own: a report that waited for the lock reads
            // what the report before it committed (one statement would read the status as of before the wait).
            guard try await NodeRepository(db: self.db).lock([Int32(truncatingIfNeeded: id)], in: tx, logger: logger) == [id],
                let name = try await tx.text("SELECT name FROM nodes WHERE id = \(id)", logger: logger)
            else { return nil }
            let row = try await tx.query(
                """
                SELECT status, outage, notified, resolved_alert, (extract(epoch FROM since) * 1000000)::int8
                FROM node_status WHERE node_id = \(id)
                """, logger: logger
            ).first
            let (storedText, storedOutage, storedNotified, resolvedAlert, sinceMicros) =
                try row?.decode((String?, Int?, [Int32]?, String?, Int64?).self) ?? (nil, nil, nil, nil, nil)
            let stored = storedText.flatMap(Status.init(rawValue:))
            var outage = storedOutage ?? 0
            var notified = storedNotified ?? []
            var next = report.status
            var resolved = resolvedAlert
            if let alert = report.alert {
                if alert.resolved {
                    resolved = alert.startsAt
                    // A resolution ends an outage; it says nothing about a node that is not down.
                    next = stored == .down ? .up : (stored ?? .up)
                    if stored != .down {
                        try await self.touch(id, resolvedAlert: resolved, in: tx, logger: logger)
                        return Outcome(nodeID: id, nodeName: name, previous: stored, current: stored, changed: false, notices: 0)
                    }
                } else if alert.startsAt == resolvedAlert {
                    // A late copy of an alert that has already resolved.
                    return Outcome(nodeID: id, nodeName: name, previous: stored, current: stored, changed: false, notices: 0)
                }
            }
            guard next != stored else {
                try await tx.query(
                    """
                    UPDATE node_status SET reported_at = localtimestamp, message = \(report.message), source = \(report.source),
                        resolved_alert = \(resolved)
                    WHERE node_id = \(id)
                    """, logger: logger)
                return Outcome(nodeID: id, nodeName: name, previous: stored, current: stored, changed: false, notices: 0)
            }
            let now = try await tx.query("SELECT (extract(epoch FROM localtimestamp) * 1000000)::int8", logger: logger)
                .first!.decode(Int64.self)
            var notices: [EventRepository.Notice] = []
            if next == .down {
                outage += 1
                notices = try await self.outageNotices(
                    node: id, name: name, report: report, outage: outage, since: LocalDateTime(microseconds: now), settings: settings,
                    in: tx, logger: logger)
                notified = Array(Set(notices.map { Int32(truncatingIfNeeded: $0.recipient) })).sorted()
            } else if stored == .down {
                let downSince = sinceMicros.map(LocalDateTime.init(microseconds:))
                notices = notified.map { user in
                    var body = "Node \(name) is \(next.rawValue) again since \(LocalDateTime(microseconds: now).spaced) (reported by \(report.source))"
                    if let downSince { body += "; it was down since \(downSince.spaced)" }
                    body += ".\n"
                    if let message = report.message, !message.isEmpty { body += "\n\(message)\n" }
                    return EventRepository.Notice(
                        recipient: Int(user), subject: "Node \(name) is \(next.rawValue) again", body: body,
                        key: "node:\(id):outage:\(outage):end:\(user)")
                }
                notified = []
            }
            try await EventRepository(db: self.db).queueNotices(notices, in: tx, logger: logger)
            try await tx.query(
                """
                INSERT INTO node_status AS s (node_id, status, since, reported_at, message, source, outage, notified, resolved_alert)
                VALUES (\(id), \(next.rawValue), localtimestamp, localtimestamp, \(report.message), \(report.source), \(outage),
                        \(notified)::int4[], \(resolved))
                ON CONFLICT (node_id) DO UPDATE SET status = EXCLUDED.status, since = EXCLUDED.since, reported_at = EXCLUDED.reported_at,
                    message = EXCLUDED.message, source = EXCLUDED.source, outage = EXCLUDED.outage, notified = EXCLUDED.notified,
                    resolved_alert = EXCLUDED.resolved_alert
                """, logger: logger)
            return Outcome(nodeID: id, nodeName: name, previous: stored, current: next, changed: true, notices: notices.count)
        }
    }

    private func touch(_ id: Int, resolvedAlert: String?, in tx: LeasedConnection, logger: Logger) async throws {
        try await tx.query("UPDATE node_status SET resolved_alert = \(resolvedAlert) WHERE node_id = \(id)", logger: logger)
    }

    /// A node went down: one notice to each owner of a reservation on it that is running or starts within
    /// `NODE_DOWN_NOTICE_HOURS` (listing theirs), and one to each admin (listing all of them); a person who is both
    /// gets the admin's notice only.
    private func outageNotices(
        node id: Int, name: String, report: Report, outage: Int, since: LocalDateTime, settings: OperationsSettings,
        in tx: LeasedConnection, logger: Logger
    ) async throws -> [EventRepository.Notice] {
        let hours = Int32(settings.downNoticeHours)
        let rows = try await tx.query(
            """
            SELECT t.id, t.owner_id, u.username, t.name,
                   (extract(epoch FROM t.start_time) * 1000000)::int8, (extract(epoch FROM t.end_time) * 1000000)::int8
            FROM tasks t JOIN users u ON u.id = t.owner_id
            WHERE t.id IN (
                SELECT a.task_id FROM allocations a
                WHERE a.node_id = \(id) AND a.end_time > localtimestamp AND a.start_time < localtimestamp + make_interval(hours => \(hours)))
            ORDER BY t.start_time, t.id
            """, logger: logger)
        struct Reservation {
            let id: Int, owner: Int, username: String, name: String, start: LocalDateTime, end: LocalDateTime
            var line: String { "- \(self.name) (task \(self.id), \(self.start.spaced) to \(self.end.spaced))" }
        }
        let reservations = try rows.map { row in
            let (task, owner, username, name, start, end) = try row.decode((Int, Int, String, String, Int64, Int64).self)
            return Reservation(
                id: task, owner: owner, username: username, name: name, start: LocalDateTime(microseconds: start),
                end: LocalDateTime(microseconds: end))
        }
        let admins = try await UserRepository(db: self.db).adminIDs(on: tx, logger: logger)
        var head = "Node \(name) is down since \(since.spaced) (reported by \(report.source))"
        if let message = report.message, !message.isEmpty { head += ": \(message)" }
        head += ".\n"
        let subject = "Node \(name) is down"
        func key(_ user: Int) -> String { "node:\(id):outage:\(outage):start:\(user)" }
        var notices: [EventRepository.Notice] = []
        let adminSet = Set(admins)
        for admin in admins {
            var body = head + "\n"
            if reservations.isEmpty {
                body += "No reservation on it is running or starts within \(settings.downNoticeHours) hours.\n"
            } else {
                body += "\(reservations.count) reservation(s) on it are running or start within \(settings.downNoticeHours) hours"
                body += "; their owners are told:\n"
                let shown = 200
                for r in reservations.prefix(shown) { body += r.line + " of \(r.username)\n" }
                if reservations.count > shown { body += "… and \(reservations.count - shown) more\n" }
            }
            notices.append(.init(recipient: admin, subject: subject, body: body, key: key(admin)))
        }
        for (owner, theirs) in Dictionary(grouping: reservations, by: \.owner).sorted(by: { $0.key < $1.key }) where !adminSet.contains(owner) {
            var body = head + "\nYour reservations on it that are running or start within \(settings.downNoticeHours) hours:\n"
            for r in theirs { body += r.line + "\n" }
            body += "\nYou will get a mail when the node is back.\n"
            notices.append(.init(recipient: owner, subject: subject, body: body, key: key(owner)))
        }
        return notices
    }

    /// Every node's status as `GET /node/status` answers it, by node id.
    func list(settings: OperationsSettings, logger: Logger) async throws -> String {
        try await self.db.text(
            """
            SELECT COALESCE(json_agg(json_build_object(
                       'node_id', n.id,
                       'status', CASE WHEN s.node_id IS NULL OR x.stale THEN 'unknown' ELSE s.status END,
                       'since', remas_ts(CASE WHEN x.stale THEN s.reported_at + x.limit_ ELSE s.since END),
                       'message', s.message, 'source', s.source) ORDER BY n.id), '[]')::text
            FROM nodes n LEFT JOIN node_status s ON s.node_id = n.id
            CROSS JOIN LATERAL (
                SELECT make_interval(secs => \(Int32(settings.statusStaleSeconds))) AS limit_,
                       COALESCE(s.source LIKE 'api key %'
                                AND s.reported_at < localtimestamp - make_interval(secs => \(Int32(settings.statusStaleSeconds))), false) AS stale) x
            """, logger: logger) ?? "[]"
    }

    /// One status's document, as `PUT /node/{id}/status` answers it.
    func json(node id: Int, settings: OperationsSettings, logger: Logger) async throws -> String? {
        try await self.db.text(
            """
            SELECT json_build_object('node_id', n.id, 'status', COALESCE(s.status, 'unknown'), 'since', remas_ts(s.since),
                                     'message', s.message, 'source', s.source)::text
            FROM nodes n LEFT JOIN node_status s ON s.node_id = n.id WHERE n.id = \(id)
            """, logger: logger)
    }

    /// Node ids by name, for alerts that name nodes.
    func nodeIDs(named names: [String], logger: Logger) async throws -> [String: Int] {
        guard !names.isEmpty else { return [:] }
        var ids: [String: Int] = [:]
        for row in try await self.db.query("SELECT name, id FROM nodes WHERE name = ANY(\(names)::text[])", logger: logger) {
            let (name, id) = try row.decode((String, Int).self)
            ids[name] = id
        }
        return ids
    }
}
