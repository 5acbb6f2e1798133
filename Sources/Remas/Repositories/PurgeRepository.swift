import Logging
import PostgresNIO

/// Old history (`remas purge`, migration 0013): the purge horizon, and finished tasks archived and deleted in batches.
struct PurgeRepository: Sendable {
    let db: Database

    /// The day before which history is purged (day figures only), if any, as `YYYY-MM-DD`.
    func horizon(logger: Logger) async throws -> String? {
        try await self.db.text("SELECT before::text FROM usage_history_purged", logger: logger)
    }

    /// Days before `cutoff` (from the first task's) without day figures, under the lock that changes of many days take
    /// (no roll-up or drop can run meanwhile); when there are none, the horizon moves to `cutoff` in the same
    /// transaction, so from then on no change drops a day before it. Returns the days still missing (0: moved).
    func raiseHorizon(to cutoff: String, logger: Logger) async throws -> Int {
        try await self.db.transaction(logger: logger) { tx in
            try await tx.query("LOCK TABLE usage_days_done IN SHARE ROW EXCLUSIVE MODE", logger: logger)
            let missing = try await tx.int(
                """
                SELECT count(*)::int FROM generate_series(
                    GREATEST((SELECT min(start_time)::date FROM tasks), (SELECT before FROM usage_history_purged)),
                    \(cutoff)::date - 1, interval '1 day') g
                WHERE NOT EXISTS (SELECT 1 FROM usage_days_done d WHERE d.day = g::date)
                """, logger: logger) ?? 0
            guard missing == 0 else { return missing }
            try await tx.query(
                """
                INSERT INTO usage_history_purged (before) VALUES (\(cutoff)::date)
                ON CONFLICT (singleton) DO UPDATE SET before = GREATEST(usage_history_purged.before, EXCLUDED.before), purged_at = now()
                """, logger: logger)
            return 0
        }
    }

    /// How many finished tasks end before `cutoff` (local midnight).
    func count(before cutoff: String, logger: Logger) async throws -> Int {
        try await self.db.int(
            "SELECT count(*)::int FROM tasks WHERE end_time <= \(cutoff)::date AND end_time <= localtimestamp", logger: logger) ?? 0
    }

    /// One archived allocation (a task without allocations gives one row without node and resource).
    struct ArchiveRow: Sendable {
        let fields: [String]
        static let header = [
            "task_id", "name", "description", "owner_id", "owner", "start_time", "end_time", "node_id", "node", "resource_id",
            "resource", "amount", "tags",
        ]
    }

    /// One batch: up to `limit` finished tasks ending before `cutoff` with ids above `after`, locked (tasks another
    /// transaction holds are skipped, not waited for); `archive` gets their rows before they are deleted (with their
    /// allocations, events, tag links and series links: ON DELETE CASCADE), all in one short transaction. Returns the
    /// highest id and the numbers of tasks and allocations deleted; nil when none is left.
    func purgeBatch(
        before cutoff: String, after: Int, limit: Int, archive: @Sendable ([ArchiveRow]) throws -> Void, logger: Logger
    ) async throws -> (last: Int, tasks: Int, allocations: Int)? {
        try await self.db.transaction(logger: logger) { tx in
            let ids = try await tx.query(
                """
                SELECT id FROM tasks WHERE id > \(after) AND end_time <= \(cutoff)::date AND end_time <= localtimestamp
                ORDER BY id LIMIT \(Int32(limit)) FOR UPDATE SKIP LOCKED
                """, logger: logger
            ).map { try Int32($0.decode(Int.self)) }
            guard let last = ids.last else { return nil }
            let rows = try await tx.query(
                """
                SELECT t.id::text, t.name, COALESCE(t.description, ''), t.owner_id::text, COALESCE(u.username, ''),
                       to_char(t.start_time, 'YYYY-MM-DD"T"HH24:MI:SS'), to_char(t.end_time, 'YYYY-MM-DD"T"HH24:MI:SS'),
                       COALESCE(a.node_id::text, ''), COALESCE(n.name, ''), COALESCE(a.resource_id::text, ''), COALESCE(r.name, ''),
                       COALESCE(a.amount::text, ''),
                       COALESCE((SELECT string_agg(g.name, ';' ORDER BY g.name) FROM task_tag_links l JOIN task_tags g ON g.id = l.tag_id
                                 WHERE l.task_id = t.id), '')
                FROM tasks t LEFT JOIN users u ON u.id = t.owner_id LEFT JOIN allocations a ON a.task_id = t.id
                LEFT JOIN nodes n ON n.id = a.node_id LEFT JOIN resources r ON r.id = a.resource_id
                WHERE t.id = ANY(\(ids)) ORDER BY t.id, a.node_id, a.resource_id
                """, logger: logger
            ).map { row in
                let f = try row.decode((String, String, String, String, String, String, String, String, String, String, String, String, String).self)
                return ArchiveRow(fields: [f.0, f.1, f.2, f.3, f.4, f.5, f.6, f.7, f.8, f.9, f.10, f.11, f.12])
            }
            try archive(rows)
            let allocations = rows.filter { !$0.fields[7].isEmpty }.count
            try await tx.query("DELETE FROM tasks WHERE id = ANY(\(ids))", logger: logger)
            return (Int(last), ids.count, allocations)
        }
    }
}
