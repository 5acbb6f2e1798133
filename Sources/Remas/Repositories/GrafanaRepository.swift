import Foundation
import Logging
import PostgresNIO

/// The SQL of the Grafana sync: who a change touches, what each user's Grafana should hold, and the outbox of users
/// waiting for a sync (migration 0003).
struct GrafanaRepository: Sendable {
    let db: Database


    // MARK: who a change touches

    /// Usernames of every user receiving a notification that `filter` (a condition on `notifications n`) selects,
    /// directly or through a group or any group above theirs.
    func receivers(where filter: PostgresQuery, logger: Logger) async throws -> [String] {
        var sql = PostgresQuery(unsafeSQL: "WITH RECURSIVE picked AS (SELECT n.id FROM notifications n WHERE ")
        sql.sql += filter.sql
        sql.binds = filter.binds
        sql.sql += """
            ),
            sub(id, depth) AS (
                SELECT ng.group_id, 0 FROM notification_groups ng WHERE ng.notification_id IN (SELECT id FROM picked)
                UNION ALL SELECT g.id, s.depth + 1 FROM groups g JOIN sub s ON g.parent_id = s.id WHERE s.depth < 256)
            SELECT u.username FROM users u
            WHERE u.group_id IN (SELECT id FROM sub)
               OR u.id IN (SELECT nu.user_id FROM notification_users nu WHERE nu.notification_id IN (SELECT id FROM picked))
            ORDER BY 1
            """
        return try await self.db.query(sql, logger: logger).map { try $0.decode(String.self) }
    }

    func usernames(ofUsers ids: [Int], logger: Logger) async throws -> [String] {
        let binds = ids.map { Int32(truncatingIfNeeded: $0) }
        return try await self.db.query("SELECT username FROM users WHERE id = ANY(\(binds)) ORDER BY 1", logger: logger)
            .map { try $0.decode(String.self) }
    }

    // MARK: desired state

    func users(named names: [String], logger: Logger) async throws -> [String: GrafanaUser] {
        let rows = try await self.db.query(
            """
            SELECT u.id, u.username, u.name, u.surname, u.uid, u.email, \(unescaped: UserRepository.isAdminSQL)
            FROM users u WHERE u.username = ANY(\(names))
            """, logger: logger)
        var users: [String: GrafanaUser] = [:]
        for row in rows {
            let (id, username, name, surname, uid, email, admin) = try row.decode((Int, String, String?, String?, Int, String, Bool).self)
            users[username] = GrafanaUser(id: id, username: username, name: name, surname: surname, uid: uid, email: email, isAdmin: admin)
        }
        return users
    }

    /// Every rule the users should have: per received Grafana notification and node providing its
    /// resource, with the user's summed allocation there at `instant` (the sync passes its own instant: start and end
    /// events are processed at theirs, so a sync after a start counts the task and one after its end does not).
    func ruleSpecs(forUsers ids: [Int], at instant: LocalDateTime, logger: Logger) async throws -> [RuleSpec] {
        let binds = ids.map { Int32(truncatingIfNeeded: $0) }
        let rows = try await self.db.query(
            """
            WITH RECURSIVE \(NotificationRepository.receives(of: "$1::int4[]")),
            held AS (
                SELECT t.owner_id, a.node_id, a.resource_id, sum(a.amount)::int8 AS amount
                FROM tasks t JOIN allocations a ON a.task_id = t.id
                WHERE t.owner_id = ANY($1::int4[])
                  AND t.start_time <= $2::timestamp AND t.end_time > $2::timestamp
                GROUP BY 1, 2, 3)
            SELECT r.user_id, n.id, n.name, n.type, n.notification_template, n.default_amount, o.username,
                   nd.id, nd.name, nd.description, res.id, res.name, res.description, nr.amount, h.amount
            FROM receives r
            JOIN notifications n ON n.id = r.notification_id AND n.type IN \(NotificationType.grafanaSQLList)
            JOIN resources res ON res.id = n.resource_id
            JOIN node_resources nr ON nr.resource_id = res.id
            JOIN nodes nd ON nd.id = nr.node_id
            LEFT JOIN users o ON o.id = n.owner_id
            LEFT JOIN held h ON h.owner_id = r.user_id AND h.node_id = nd.id AND h.resource_id = res.id
            WHERE n.notification_template IS NOT NULL
            ORDER BY r.user_id, n.id, nd.id
            """.replacingBinds(binds, instant.sqlText), logger: logger)
        return try rows.map { row in
            let (userID, nid, nname, type, template, defaultAmount, owner, nodeID, nodeName, nodeDescription, resourceID,
                resourceName, resourceDescription, capacity, held) =
                try row.decode((Int, Int, String, String, String, Int64?, String?, Int, String, String?, Int, String, String?, Int64, Int64?).self)
            return RuleSpec(
                userID: userID, notificationID: nid, notificationName: nname, type: type, template: template,
                defaultAmount: defaultAmount, ownerUsername: owner, nodeID: nodeID, nodeName: nodeName,
                nodeDescription: nodeDescription, resourceID: resourceID, resourceName: resourceName,
                resourceDescription: resourceDescription, capacity: capacity, allocation: held)
        }
    }

    // MARK: the outbox

    /// Queues these users for a sync now; `password` (sealed) goes with the first name.
    func enqueue(_ names: [String], password: Data? = nil, logger: Logger) async throws {
        guard !names.isEmpty else { return }
        try await self.db.query(
            """
            INSERT INTO grafana_outbox (username, password)
            SELECT name, CASE WHEN ord = 1 THEN \(password)::bytea END FROM unnest(\(names)::text[]) WITH ORDINALITY AS q(name, ord)
            ON CONFLICT (username) DO UPDATE SET
                generation = grafana_outbox.generation + 1,
                retry_at = least(grafana_outbox.retry_at, localtimestamp),
                password = COALESCE(EXCLUDED.password, grafana_outbox.password)
            """, logger: logger)
    }

    struct Claimed: Sendable {
        let username: String
        let generation: Int64
        let password: Data?
        let attempts: Int
    }

    /// Takes up to `limit` due users for this replica for `leaseSeconds`.
    func claim(limit: Int, leaseSeconds: Int, logger: Logger) async throws -> [Claimed] {
        try await self.db.query(
            """
            UPDATE grafana_outbox o SET lease_until = localtimestamp + make_interval(secs => \(leaseSeconds)), attempts = o.attempts + 1
            WHERE o.username IN (
                SELECT username FROM grafana_outbox
                WHERE retry_at <= localtimestamp AND (lease_until IS NULL OR lease_until < localtimestamp)
                ORDER BY retry_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING o.username, o.generation, o.password, o.attempts
            """, logger: logger
        ).map { row in
            let (name, generation, password, attempts) = try row.decode((String, Int64, ByteBuffer?, Int).self)
            return Claimed(username: name, generation: generation, password: password.map { Data($0.readableBytesView) }, attempts: attempts)
        }
    }

    /// Done: the row goes, unless a newer change queued the user again meanwhile (then it is released for the next pass).
    func complete(_ claimed: Claimed, logger: Logger) async throws {
        try await self.db.query(
            """
            WITH gone AS (DELETE FROM grafana_outbox WHERE username = \(claimed.username) AND generation = \(claimed.generation) RETURNING 1)
            UPDATE grafana_outbox SET lease_until = NULL, attempts = 0, last_error = NULL,
                password = CASE WHEN password = \(claimed.password)::bytea THEN NULL ELSE password END
            WHERE username = \(claimed.username) AND NOT EXISTS (SELECT 1 FROM gone)
            """, logger: logger)
    }

    /// Failed: retried after `delaySeconds`, or at once when a newer change came in meanwhile.
    func fail(_ claimed: Claimed, error: String, delaySeconds: Int, logger: Logger) async throws {
        try await self.db.query(
            """
            UPDATE grafana_outbox SET lease_until = NULL, last_error = \(error),
                retry_at = CASE WHEN generation = \(claimed.generation)
                                THEN localtimestamp + make_interval(secs => \(delaySeconds)) ELSE localtimestamp END
            WHERE username = \(claimed.username)
            """, logger: logger)
    }

    /// The outbox as `/metrics` reports it (read by `MetricsSnapshotStatement`).
    struct Backlog: Sendable {
        var pending = 0
        var failing = 0
        var oldestSeconds = 0.0
    }

    /// Seconds until the next queued user is due (nil: none queued).
    func secondsUntilNextDue(logger: Logger) async throws -> Double? {
        try await self.db.query(
            """
            SELECT extract(epoch FROM min(GREATEST(retry_at, COALESCE(lease_until, retry_at))) - localtimestamp)::float8
            FROM grafana_outbox
            """, logger: logger
        ).first.flatMap { try $0.decode(Double?.self) }
    }

    /// Queues every user (and names Grafana holds rules for that no longer exist are queued by the pass that sees
    /// them) when the last full resync is older than `interval` seconds; one replica wins the row.
    func startFullResyncIfDue(interval: Int, logger: Logger) async throws -> Bool {
        try await self.db.transaction(logger: logger) { tx in
            let won = try await tx.query(
                """
                UPDATE grafana_resync SET last_at = localtimestamp
                WHERE id = 1 AND (last_at IS NULL OR last_at <= localtimestamp - make_interval(secs => \(interval)))
                RETURNING 1
                """, logger: logger)
            guard !won.isEmpty else { return false }
            try await tx.query(
                """
                INSERT INTO grafana_outbox (username) SELECT username FROM users
                ON CONFLICT (username) DO UPDATE SET generation = grafana_outbox.generation + 1
                """, logger: logger)
            return true
        }
    }

    /// Which of these names belong to no user (Grafana still holds rules for them).
    func unknownUsernames(_ names: [String], logger: Logger) async throws -> [String] {
        try await self.db.query(
            "SELECT n FROM unnest(\(names)::text[]) AS q(n) WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.username = q.n)",
            logger: logger
        ).map { try $0.decode(String.self) }
    }
}

extension String {
    /// `$1`/`$2` as binds of a literal SQL text (used where the text is shared with a `WITH RECURSIVE` prefix).
    fileprivate func replacingBinds(_ ids: [Int32], _ instant: String) -> PostgresQuery {
        var bindings = PostgresBindings()
        bindings.append(ids)
        bindings.append(instant)
        return PostgresQuery(unsafeSQL: self, binds: bindings)
    }
}
