import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

@testable import Remas

/// `remas purge` (HistoryPurge): finished tasks before a day archived and deleted in batches; usage reports of the
/// purged period unchanged, from final day figures.
@Suite struct PurgeTests {
    /// Every line of the four reports over a period, as comparable text (hours to 1e-6: figures and live sweeps add in
    /// another order).
    static func reports(_ db: Database, from: LocalDateTime, to: LocalDateTime, logger: Logger) async throws -> [String] {
        var out: [String] = []
        for by in [ReportRepository.Grouping.user, .group, .node, .resource] {
            for line in try await ReportRepository(db: db).usage(from: from, to: to, by: by, onlyOwner: nil, logger: logger) {
                out.append("\(by) \(line.keyID) \(line.resourceID) \(String(format: "%.6f", line.reservedHours)) \(line.peak) \(line.tasks)")
            }
        }
        return out.sorted()
    }

    @Test func purgedHistoryIsArchivedAndStillReported() async throws {
        try await withApp { t in
            let logger = t.logger
            let zone = t.configuration.timeZone
            let (nodes, resources) = try await t.cluster(nodes: 2, capacity: 100, resources: ["cpu", "mem"])
            let lab = try await t.makeGroup("lab")
            let ada = try await t.makeUser("ada", groupID: lab)
            let bob = try await t.makeUser("bob")
            let baseText = try #require(try await t.db.text("SELECT to_char(current_date - 10, 'YYYY-MM-DD')", logger: logger))
            let cutoff = try #require(try await t.db.text("SELECT to_char(current_date - 4, 'YYYY-MM-DD')", logger: logger))
            let todayText = try #require(try await t.db.text("SELECT to_char(current_date, 'YYYY-MM-DD')", logger: logger))
            let base = try #require(LocalDateTime.parse("\(baseText) 00:00", zone: zone))
            let today = try #require(LocalDateTime.parse("\(todayText) 00:00", zone: zone))
            // 41 tasks every 7 hours from 10 days ago (5 h each, some over midnight) into the day after tomorrow.
            try await t.db.execute(
                """
                INSERT INTO tasks (name, description, start_time, end_time, owner_id)
                SELECT 'p' || i, CASE WHEN i = 1 THEN E'a "quoted", two-line\\ndescription' END,
                       \(base.sqlText)::timestamp + i * interval '7 hours', \(base.sqlText)::timestamp + i * interval '7 hours' + interval '5 hours',
                       CASE WHEN i % 3 = 0 THEN \(bob) ELSE \(ada) END
                FROM generate_series(0, 40) i
                """, logger: logger)
            try await t.db.execute(
                """
                INSERT INTO allocations (task_id, node_id, resource_id, amount, start_time, end_time)
                SELECT t.id, CASE WHEN substr(t.name, 2)::int % 2 = 0 THEN \(nodes[0]) ELSE \(nodes[1]) END, r.id,
                       substr(t.name, 2)::int % 4 + 1, t.start_time, t.end_time
                FROM tasks t JOIN resources r ON r.id = \(resources[0]) OR (r.id = \(resources[1]) AND substr(t.name, 2)::int % 2 = 0)
                """, logger: logger)
            let first = try #require(try await t.db.int("SELECT id FROM tasks WHERE name = 'p1'", logger: logger))
            try await t.db.execute(
                "INSERT INTO events (name, description, time, type, task_id) SELECT 'p1 start', 'Start of p1', start_time, 'task_start', id FROM tasks WHERE id = \(first)",
                logger: logger)
            let tag = try await t.makeTag("nightly", user: ada)
            try await t.db.execute("INSERT INTO task_tag_links (task_id, tag_id) VALUES (\(first), \(tag))", logger: logger)
            let before = try await Self.reports(t.db, from: base, to: today, logger: logger)
            #expect(before.count > 8)
            let goners = try await t.count("SELECT count(*)::int FROM tasks WHERE end_time <= '\(cutoff)'::date")
            let goneAllocations = try await t.count(
                "SELECT count(*)::int FROM allocations a JOIN tasks t ON t.id = a.task_id WHERE t.end_time <= '\(cutoff)'::date")
            let kept = try await t.count("SELECT count(*)::int FROM tasks") - goners
            #expect(goners > 15 && kept > 15)

            // Bad input changes nothing: a cutoff whose previous day has not closed.
            let tomorrow = try #require(try await t.db.text("SELECT to_char(current_date + 1, 'YYYY-MM-DD')", logger: logger))
            await #expect(throws: HistoryPurge.Failure.self) {
                _ = try await HistoryPurge(db: t.db).run(finishedBefore: tomorrow, archive: nil, logger: logger)
            }
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == goners + kept)
            #expect(try await PurgeRepository(db: t.db).horizon(logger: logger) == nil)

            // The purge, in batches of 7, with an archive; progress reported.
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("remas-purge-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let archive = directory.appendingPathComponent("archive.csv").path
            let steps = Mutex<[String]>([])
            let summary = try await HistoryPurge(db: t.db, batchSize: 7).run(finishedBefore: cutoff, archive: archive, logger: logger) { step in
                switch step {
                case .stage(let text): steps.withLock { $0.append(text) }
                case .progress(let done, let total): steps.withLock { $0.append("\(done)/\(total)") }
                }
            }
            #expect(summary.tasks == goners && summary.allocations == goneAllocations && summary.horizon == cutoff)
            let reported = steps.withLock { $0 }
            #expect(reported.first?.hasPrefix("computing the day figures") == true && reported.last == "\(goners)/\(goners)")
            #expect(reported.filter { $0.contains("/") && !$0.contains(" ") }.count == 1 + (goners + 6) / 7)
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == kept)
            #expect(try await t.count("SELECT count(*)::int FROM tasks WHERE end_time <= '\(cutoff)'::date") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE task_id = \(first)") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM task_tag_links WHERE task_id = \(first)") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM allocations a WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = a.task_id)") == 0)

            // The archive: a header and one record per allocation, RFC 4180 (the quoted, two-line description intact).
            let text = try String(contentsOfFile: archive, encoding: .utf8)
            let records = Self.parseCSV(text)
            #expect(records.first == PurgeRepository.ArchiveRow.header)
            #expect(records.count == 1 + goneAllocations)
            let p1 = try #require(records.first { $0.first == "\(first)" })
            #expect(p1[1] == "p1" && p1[2] == "a \"quoted\", two-line\ndescription" && p1[4] == "ada" && p1[12] == "nightly")

            // The reports of the whole period are what they were; a period starting inside a purged day is refused.
            #expect(try await Self.reports(t.db, from: base, to: today, logger: logger) == before)
            do {
                _ = try await UsageReport.make(
                    db: t.db, from: base.adding(seconds: 3_600), to: today, by: .user, onlyOwner: nil, csv: false,
                    settings: t.configuration.usage, zone: zone, logger: logger)
                Issue.record("a part day before the horizon was reported")
            } catch let error as AppError {
                #expect(error.status == .badRequest && error.detail.contains(cutoff))
            }
            // Purged days stay final: a group change later moves the remaining tasks' days only.
            try await t.db.execute("UPDATE users SET group_id = 3 WHERE id = \(ada)", logger: logger)
            _ = try await ReportRepository(db: t.db).rollUpPending(logger: logger)
            let cut = try #require(LocalDateTime.parse("\(cutoff) 00:00", zone: zone))
            let purgedPeriod = try await Self.reports(t.db, from: base, to: cut, logger: logger)
            #expect(purgedPeriod.contains { $0.hasPrefix("group \(lab) ") }, "the lab keeps its purged usage")

            // A rerun: nothing left to purge, the archive keeps one header.
            let again = try await HistoryPurge(db: t.db).run(finishedBefore: cutoff, archive: archive, logger: logger)
            #expect(again.tasks == 0)
            #expect(Self.parseCSV(try String(contentsOfFile: archive, encoding: .utf8)).count == 1 + goneAllocations)
        }
    }

    /// RFC 4180 records (quoted fields may hold commas, quotes and line breaks).
    static func parseCSV(_ text: String) -> [[String]] {
        var records: [[String]] = []
        var record: [String] = []
        var field = ""
        var quoted = false
        var chars = Array(text)
        chars.append("\r\n")
        var i = 0
        while i < chars.count - 1 {
            let c = chars[i]
            if quoted {
                if c == "\"" {
                    if chars[i + 1] == "\"" { field.append("\""); i += 1 } else { quoted = false }
                } else {
                    field.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                record.append(field)
                field = ""
            } else if c == "\r\n" || c == "\n" {
                record.append(field)
                records.append(record)
                record = []
                field = ""
            } else {
                field.append(c)
            }
            i += 1
        }
        return records
    }
}
