import Logging
import PostgresNIO

/// Recurring reservations (`task_series`, `task_series_members`): reads and removals. A series is booked by
/// `BookingService.bookSeries` (its statements in `TaskRepository+Booking.swift`); each occurrence is an ordinary task.
struct TaskSeriesRepository: Sendable {
    let db: Database

    /// The series' owner; nil when there is no such series.
    func owner(ofSeries id: Int, logger: Logger) async throws -> Int? {
        try await self.db.int("SELECT owner_id FROM task_series WHERE id = \(id)", logger: logger)
    }

    /// `{series_id, rule, owner_id, task_ids}` with the occurrences that are left, by start; nil when there is no such series.
    func json(id: Int, logger: Logger) async throws -> String? {
        try await self.db.text(
            """
            SELECT json_build_object('series_id', s.id, 'rule', s.rule, 'owner_id', s.owner_id,
                       'task_ids', COALESCE((SELECT json_agg(m.task_id ORDER BY t.start_time, t.id)
                                             FROM task_series_members m JOIN tasks t ON t.id = m.task_id WHERE m.series_id = s.id), '[]'))::text
            FROM task_series s WHERE s.id = \(id)
            """, logger: logger)
    }

    /// Deletes the series' occurrences that start at or after `from` (all of them, and the series, when nil); returns
    /// the deleted tasks' windows (microseconds) and ids. nil when there is no such series.
    func delete(id: Int, from: LocalDateTime?, logger: Logger) async throws -> (ids: [Int], windows: [ClosedRange<Int64>])? {
        try await self.db.transaction(logger: logger) { tx -> (ids: [Int], windows: [ClosedRange<Int64>])? in
            guard try await tx.exists("SELECT 1 FROM task_series WHERE id = \(id) FOR UPDATE", logger: logger) else { return nil }
            let rows = try await tx.query(
                """
                DELETE FROM tasks t USING task_series_members m
                WHERE m.task_id = t.id AND m.series_id = \(id) AND (\(from?.sqlText)::timestamp IS NULL OR t.start_time >= \(from?.sqlText)::timestamp)
                RETURNING t.id, (extract(epoch FROM t.start_time) * 1000000)::int8, (extract(epoch FROM t.end_time) * 1000000)::int8
                """, logger: logger)
            if from == nil { try await tx.query("DELETE FROM task_series WHERE id = \(id)", logger: logger) }
            var ids: [Int] = []
            var windows: [ClosedRange<Int64>] = []
            for row in rows {
                let (task, start, end) = try row.decode((Int, Int64, Int64).self)
                ids.append(task)
                if start <= end { windows.append(start...end) }
            }
            return (ids.sorted(), windows)
        }
    }
}
