import Foundation
import Logging

/// `remas purge --finished-before DAY [--archive FILE.csv]` (README "Old history"): finished tasks that ended before a
/// day leave the database, in batches that each hold their locks for one short transaction (bookings go on), after
/// their days' usage figures are made final (the purge horizon, migration 0013), so usage reports still cover the
/// period. With an archive, every batch's rows (one per allocation, RFC 4180) are written and flushed to the file
/// before the batch commits: an interrupted purge loses nothing, and its rerun appends the rest (a batch whose commit
/// failed after its rows were written appears twice; its `task_id`s tell).
public struct HistoryPurge: Sendable {
    public let db: Database
    public var batchSize = 1_000

    public init(db: Database, batchSize: Int = 1_000) {
        self.db = db
        self.batchSize = batchSize
    }

    /// What a purge reports while it runs.
    public enum Step: Sendable {
        /// A stage begins (one line).
        case stage(String)
        /// Tasks done of `total` in the current stage.
        case progress(done: Int, total: Int)
    }

    public struct Summary: Sendable {
        public let tasks: Int
        public let allocations: Int
        public let horizon: String
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public func run(
        finishedBefore day: String, archive path: String?, logger: Logger, report: @Sendable (Step) -> Void = { _ in }
    ) async throws -> Summary {
        let purge = PurgeRepository(db: self.db)
        guard let closed = try await self.db.text(
            "SELECT CASE WHEN \(day)::date <= (localtimestamp - interval '1 hour')::date THEN 'yes' ELSE 'no' END", logger: logger)
        else { throw Failure(description: "no answer from the database") }
        guard closed == "yes" else {
            throw Failure(description: "--finished-before must be a day whose previous day has closed (today at the latest, from 01:00): \(day)")
        }
        // Final day figures first: every day before the cutoff rolled up, then the horizon moved in one transaction.
        report(.stage("computing the day figures of usage reports before \(day)"))
        let reports = ReportRepository(db: self.db)
        var missing = 0
        for _ in 0..<3 {
            _ = try await reports.rollUpPending(graceHours: 1, logger: logger)
            missing = try await purge.raiseHorizon(to: day, logger: logger)
            if missing == 0 { break }
        }
        guard missing == 0 else {
            throw Failure(description: "\(missing) day(s) before \(day) still have no usage figures (changed while this ran?); run again")
        }
        let total = try await purge.count(before: day, logger: logger)
        report(.stage("purging \(total) finished task(s) that ended before \(day)" + (path.map { ", archived to \($0)" } ?? "")))
        let archive = try path.map { try ArchiveFile(path: $0) }
        defer { try? archive?.handle.close() }
        var after = 0
        var tasks = 0
        var allocations = 0
        report(.progress(done: 0, total: total))
        while let batch = try await purge.purgeBatch(
            before: day, after: after, limit: self.batchSize,
            archive: { rows in try archive?.append(rows) }, logger: logger)
        {
            after = batch.last
            tasks += batch.tasks
            allocations += batch.allocations
            report(.progress(done: tasks, total: max(total, tasks)))
        }
        return Summary(tasks: tasks, allocations: allocations, horizon: try await purge.horizon(logger: logger) ?? day)
    }

    /// The archive: created with a header row, or appended to when it already holds one (a rerun).
    final class ArchiveFile: Sendable {
        let handle: FileHandle

        init(path: String) throws {
            let header = CSV.record(PurgeRepository.ArchiveRow.header)
            if FileManager.default.fileExists(atPath: path) {
                let existing = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
                let start = try existing.read(upToCount: header.utf8.count) ?? Data()
                try existing.close()
                guard start.isEmpty || start == Data(header.utf8) else {
                    throw Failure(description: "\(path) exists and is not a remas archive; name another file")
                }
                self.handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
                try self.handle.seekToEnd()
                if start.isEmpty { try self.handle.write(contentsOf: Data(header.utf8)) }
            } else {
                guard FileManager.default.createFile(atPath: path, contents: Data(header.utf8)) else {
                    throw Failure(description: "cannot create \(path)")
                }
                self.handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
                try self.handle.seekToEnd()
            }
        }

        /// The rows, on disk (fsync) before the batch's transaction commits.
        func append(_ rows: [PurgeRepository.ArchiveRow]) throws {
            var text = ""
            for row in rows { text += CSV.record(row.fields) }
            try self.handle.write(contentsOf: Data(text.utf8))
            try self.handle.synchronize()
        }
    }
}
