import Foundation
import Logging
import PostgresNIO

/// iCalendar feeds (`calendar_tokens`, and the tasks and maintenance windows a feed shows): every statement of them.
struct CalendarRepository: Sendable {
    let db: Database

    /// Stores the user's token (replacing any earlier one, which stops working at once).
    func setToken(user: Int, token: String, logger: Logger) async throws {
        try await self.db.query(
            """
            INSERT INTO calendar_tokens (user_id, token_hash) VALUES (\(user), sha256(convert_to(\(token), 'UTF8')))
            ON CONFLICT (user_id) DO UPDATE SET token_hash = EXCLUDED.token_hash, created_at = localtimestamp
            """, logger: logger)
    }

    /// False when the user had no token.
    func deleteToken(user: Int, logger: Logger) async throws -> Bool {
        try await self.db.exists("DELETE FROM calendar_tokens WHERE user_id = \(user) RETURNING user_id", logger: logger)
    }

    /// Who holds a feed token: the user, whether they are an admin, and the validator of their own feed (`etag`),
    /// all in one prepared statement (`FeedHolderStatement`), so that a poll answered `304` costs one round trip of
    /// index probes and no planning. Nil for a token that is not (or no longer) stored.
    func holder(ofToken token: String, logger: Logger) async throws -> FeedHolderStatement.Row? {
        try await self.db.run(FeedHolderStatement(token: token), logger: logger).first
    }

    /// Whose reservations a feed shows.
    enum Scope: Sendable {
        case owner(Int)
        case node(Int)

        /// The feed's tasks, from `tasks t`.
        var filter: String {
            switch self {
            case .owner(let id): "t.owner_id = \(id)"
            case .node(let id): "t.id IN (SELECT a.task_id FROM allocations a WHERE a.node_id = \(id) AND a.end_time > \(CalendarRepository.since))"
            }
        }
    }

    /// Where a feed begins: local midnight 30 days back (whole days, so that a feed's content changes with its tasks,
    /// maintenance windows and names, or at midnight, which are what its validators follow).
    static let since = "(current_date - 30)::timestamp"

    /// SQL of the validator of a user's own feed (`FeedHolderStatement`): the change counters of the user's tasks and
    /// of what all feeds share (`calendar_changes`, migration 0012: each only grows, with every committed change of
    /// what the feed shows), and the day (the feed's first day moves at midnight). A probe of one index, whatever the
    /// feed holds. (A node feed's validator is a digest of its events instead: `ICalendarWriter.validator`.)
    static func ownerValidatorSQL(user: String) -> String {
        """
        (SELECT COALESCE(sum(x.changes) FILTER (WHERE x.scope = 'o'), 0) || '.' || COALESCE(sum(x.changes) FILTER (WHERE x.scope = 's'), 0)
         FROM calendar_changes x WHERE (x.scope = 'o' AND x.key = \(user)) OR (x.scope = 's' AND x.key = 0))
        || '.' || to_char(current_date, 'YYYYMMDD')
        """
    }

    struct Event: Sendable {
        let uid: String
        let summary: String
        let description: String
        let start: LocalDateTime
        let end: LocalDateTime
        let sequence: Int
        /// Seconds since 1970 (UTC); nil when never edited.
        let modified: Double?
        let status: String
    }

    /// The feed's events: the tasks of the scope from 30 days back on (each with its allocations per node and
    /// resource), then the maintenance windows of the nodes those tasks use (of the node, for a node feed).
    func events(_ scope: Scope, logger: Logger) async throws -> [Event] {
        let nodeFilter: String
        switch scope {
        case .owner: nodeFilter = "a.task_id IN (SELECT task_id FROM held)"
        case .node(let id): nodeFilter = "a.node_id = \(id)"
        }
        let rows = try await self.db.query(
            """
            WITH mine AS MATERIALIZED (
                SELECT t.id, t.name, t.description, t.owner_id, t.start_time, t.end_time, t.revision, t.modified_at
                FROM tasks t WHERE \(unescaped: scope.filter) AND t.end_time > \(unescaped: Self.since)),
            held AS MATERIALIZED (
                SELECT a.task_id, a.node_id, n.name AS node, r.name AS resource,
                       n.name || ': ' || r.name || ' ' || a.amount || COALESCE(' ' || NULLIF(r.unit, ''), '') AS line
                FROM allocations a JOIN nodes n ON n.id = a.node_id JOIN resources r ON r.id = a.resource_id
                WHERE a.task_id IN (SELECT id FROM mine)),
            lines AS (SELECT task_id, string_agg(line, E'\\n' ORDER BY node, resource) AS text FROM held GROUP BY task_id),
            used AS (SELECT DISTINCT a.node_id FROM allocations a WHERE \(unescaped: nodeFilter))
            SELECT 'task-' || t.id, t.name,
                   COALESCE(t.description || E'\\n\\n', '') || 'Booked by ' || u.username || E'.\\n' || COALESCE(l.text, ''),
                   (extract(epoch FROM t.start_time) * 1000000)::int8, (extract(epoch FROM t.end_time) * 1000000)::int8,
                   COALESCE(t.revision, 0), extract(epoch FROM t.modified_at)::float8, 'CONFIRMED'
            FROM mine t JOIN users u ON u.id = t.owner_id LEFT JOIN lines l ON l.task_id = t.id
            UNION ALL
            SELECT 'maintenance-' || w.id, 'Maintenance: ' || w.name,
                   COALESCE(w.description || E'\\n\\n', '') || 'Nodes: ' ||
                   CASE WHEN w.all_nodes THEN 'all' ELSE COALESCE((SELECT string_agg(n.name, ', ' ORDER BY n.name) FROM maintenance_nodes m
                                                                   JOIN nodes n ON n.id = m.node_id WHERE m.window_id = w.id), '') END,
                   (extract(epoch FROM w.start_time) * 1000000)::int8, (extract(epoch FROM w.end_time) * 1000000)::int8,
                   0, NULL::float8, 'CONFIRMED'
            FROM maintenance_windows w
            WHERE w.end_time > \(unescaped: Self.since)
              AND (w.all_nodes OR EXISTS (SELECT 1 FROM maintenance_nodes m WHERE m.window_id = w.id AND m.node_id IN (SELECT node_id FROM used)))
              AND EXISTS (SELECT 1 FROM used)
            ORDER BY 4, 1
            """, logger: logger)
        return try rows.map { row in
            let (uid, summary, description, start, end, sequence, modified, status) =
                try row.decode((String, String, String, Int64, Int64, Int, Double?, String).self)
            return Event(
                uid: uid, summary: summary, description: description, start: LocalDateTime(microseconds: start),
                end: LocalDateTime(microseconds: end), sequence: sequence, modified: modified, status: status)
        }
    }
}

/// `CalendarRepository.holder`: prepared once per connection, as feed polls are the feed's hot path (planning the
/// statement cost three times its execution: pgbench 2.6k/s unprepared, 10.6k/s prepared, 16 clients, here).
struct FeedHolderStatement: NamedStatement {
    typealias Row = (user: Int, isAdmin: Bool, ownFeedETag: String)
    static let sql = """
        SELECT u.id, \(UserRepository.isAdminSQL), \(CalendarRepository.ownerValidatorSQL(user: "u.id"))
        FROM calendar_tokens c JOIN users u ON u.id = c.user_id WHERE c.token_hash = sha256(convert_to($1::text, 'UTF8'))
        """
    static var bindingDataTypes: [PostgresDataType] { [.text] }

    let token: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(self.token)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (user, isAdmin, etag) = try row.decode((Int, Bool, String).self)
        return (user: user, isAdmin: isAdmin, ownFeedETag: etag)
    }
}
