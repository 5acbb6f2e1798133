import Foundation
import Testing

@testable import Remas

/// The day figures behind usage reports (migration 0010, `ReportRepository.rollUp`): a report reads whole rolled-up
/// days and sweeps the rest live, and must answer exactly what a sweep of every allocation answers — checked against
/// figures computed here from the same random reservations, before and after the roll-up, after changes of past
/// reservations (which drop the days they touch), after a user changes group, after a change of many days, and with a change racing a roll-up.
@Suite struct UsageDayFiguresTests {
    /// One allocation as this test keeps it: minutes from the base day's midnight.
    struct Allocation {
        var task: Int
        var owner: Int
        var node: Int
        var resource: Int
        var amount: Int64
        var start: Int
        var end: Int
    }

    struct Expected: Equatable {
        var hours: [String: Double] = [:]  // "key/resource"
        var peaks: [String: Int64] = [:]
        var tasks: [Int: Int] = [:]  // key -> tasks
    }

    /// Sums, peaks and task counts over [p0, p1) (minutes from the base), computed here without SQL.
    static func expected(
        _ allocations: [Allocation], from p0: Int, to p1: Int, by grouping: ReportRepository.Grouping, groupOf: [Int: Int], owner: Int? = nil
    ) -> Expected {
        var out = Expected()
        var events: [String: [(Int, Int64)]] = [:]
        var tasks: [Int: Set<Int>] = [:]
        for a in allocations where a.start < p1 && a.end > p0 && (owner == nil || a.owner == owner) {
            let key: Int
            switch grouping {
            case .user: key = a.owner
            case .group: key = groupOf[a.owner]!
            case .node: key = a.node
            case .resource: key = a.resource
            }
            let (s, e) = (max(a.start, p0), min(a.end, p1))
            let name = "\(key)/\(a.resource)"
            out.hours[name, default: 0] += Double(a.amount) * Double(e - s) / 60
            events[name, default: []] += [(s, a.amount), (e, -a.amount)]
            tasks[key, default: []].insert(a.task)
        }
        for (name, list) in events {
            var held: Int64 = 0
            var peak: Int64 = 0
            for (_, d) in list.sorted(by: { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }) {
                held += d
                peak = max(peak, held)
            }
            out.peaks[name] = peak
        }
        out.tasks = tasks.mapValues(\.count)
        return out
    }

    static func actual(_ lines: [ReportRepository.Line]) -> Expected {
        var out = Expected()
        for line in lines {
            out.hours["\(line.keyID)/\(line.resourceID)"] = line.reservedHours
            out.peaks["\(line.keyID)/\(line.resourceID)"] = line.peak
            out.tasks[line.keyID] = line.tasks
        }
        return out
    }

    static func same(_ a: Expected, _ b: Expected) -> Bool {
        a.peaks == b.peaks && a.tasks == b.tasks && Set(a.hours.keys) == Set(b.hours.keys)
            && a.hours.allSatisfy { abs($0.value - b.hours[$0.key]!) < 1e-6 }
    }

    @Test func reportsFromDayFiguresEqualLiveSweeps() async throws {
        try await withApp { t in
            let logger = t.logger
            let reports = ReportRepository(db: t.db)
            let zone = t.configuration.timeZone
            let (nodes, resources) = try await t.cluster(nodes: 3, capacity: 1_000, resources: ["cpu", "mem"])
            let labA = try await t.makeGroup("lab A")
            let labB = try await t.makeGroup("lab B")
            var groupOf: [Int: Int] = [:]
            var users: [Int] = []
            for (i, group) in [labA, labA, labB, 3].enumerated() {
                let id = try await t.makeUser("u\(i)", groupID: group)
                users.append(id)
                groupOf[id] = group
            }
            // The base day is 12 days ago; reservations from a day before it to tomorrow, some over several days.
            let baseText = try #require(try await t.db.text("SELECT to_char(current_date - 12, 'YYYY-MM-DD')", logger: logger))
            let base = try #require(LocalDateTime.parse("\(baseText) 00:00", zone: zone))
            func at(_ minutes: Int) -> LocalDateTime { base.adding(seconds: Int64(minutes) * 60) }
            var rng = SystemRandomNumberGenerator()
            var starts: [Int] = [], ends: [Int] = [], owners: [Int] = []
            for _ in 0..<240 {
                let start = Int.random(in: -1_440...(13 * 1_440 - 60), using: &rng) / 15 * 15
                starts.append(start)
                ends.append(start + [30, 90, 240, 600, 1_500, 2_900].randomElement(using: &rng)!)
                owners.append(users.randomElement(using: &rng)!)
            }
            // Besides the random ones, the shapes the changes below need whatever the draw: one over midnight between
            // days 4 and 5, one inside day 2, one over day 5's 01:00.
            for (start, minutes) in [(4 * 1_440 + 1_200, 600), (2 * 1_440 + 60, 90), (5 * 1_440 - 60, 600)] {
                starts.append(start)
                ends.append(start + minutes)
                owners.append(users[0])
            }
            let rows = try await t.db.query(
                """
                INSERT INTO tasks (name, start_time, end_time, owner_id)
                SELECT 'r' || x.i, b.t + make_interval(mins => x.s::int), b.t + make_interval(mins => x.e::int), x.o
                FROM unnest(\(Array(0..<starts.count)), \(starts), \(ends), \(owners)) WITH ORDINALITY AS x(i, s, e, o, n),
                     (SELECT \(base.sqlText)::timestamp AS t) b
                RETURNING id, substr(name, 2)::int
                """, logger: logger)
            var taskOf: [Int: Int] = [:]
            for row in rows {
                let (id, index) = try row.decode((Int, Int).self)
                taskOf[index] = id
            }
            var allocations: [Allocation] = []
            for i in 0..<starts.count {
                for (j, node) in nodes.shuffled(using: &rng).prefix(Int.random(in: 1...2, using: &rng)).enumerated() {
                    allocations.append(Allocation(
                        task: taskOf[i]!, owner: owners[i], node: node, resource: resources[j % 2], amount: Int64.random(in: 1...8, using: &rng),
                        start: starts[i], end: ends[i]))
                }
            }
            func insert(_ list: [Allocation]) async throws {
                try await t.db.execute(
                    """
                    INSERT INTO allocations (task_id, node_id, resource_id, amount, start_time, end_time)
                    SELECT x.t, x.n, x.r, x.a, b.t + make_interval(mins => x.s::int), b.t + make_interval(mins => x.e::int)
                    FROM unnest(\(list.map(\.task)), \(list.map(\.node)), \(list.map(\.resource)), \(list.map(\.amount)), \(list.map(\.start)), \(list.map(\.end)))
                         AS x(t, n, r, a, s, e), (SELECT \(base.sqlText)::timestamp AS t) b
                    """, logger: logger)
            }
            try await insert(allocations)

            // Whole days, part days at both ends, one part day, and a period running into tomorrow.
            let periods = [(0, 10 * 1_440), (450, 9 * 1_440 + 780), (2 * 1_440 + 300, 2 * 1_440 + 1_020), (3 * 1_440, 14 * 1_440)]
            func check(_ context: String, owner: Int? = nil) async throws {
                for (p0, p1) in periods {
                    for grouping in ReportRepository.Grouping.allCases {
                        let lines = try await reports.usage(from: at(p0), to: at(p1), by: grouping, onlyOwner: owner, logger: logger)
                        let want = Self.expected(allocations, from: p0, to: p1, by: grouping, groupOf: groupOf, owner: owner)
                        let got = Self.actual(lines)
                        #expect(Self.same(want, got), "\(context): \(grouping) over \(p0)..\(p1): want \(want), got \(got)")
                    }
                }
            }
            func done() async throws -> Set<String> {
                Set(try await t.db.query("SELECT day::text FROM usage_days_done", logger: logger).map { try $0.decode(String.self) })
            }
            func day(_ offset: Int) -> String {
                let c = base.adding(seconds: Int64(offset) * 86_400).components
                return String(format: "%04d-%02d-%02d", c.year, c.month, c.day)
            }

            try await check("all live")
            #expect(try await done().isEmpty)
            // Every closed day from the first reservation's on: from the day before the base to yesterday at least.
            let rolled = try await reports.rollUpPending(logger: logger)
            #expect(rolled >= 12)
            #expect(try await reports.pendingDays(logger: logger).isEmpty)
            #expect(try await done().isSuperset(of: (-1...10).map(day)))
            #expect(try await reports.rollUp(day: Int32(try await t.db.int("SELECT current_date - 3 - date '2000-01-01'", logger: logger)!), logger: logger) == false)
            try await check("day figures")
            try await check("day figures, one owner", owner: users[1])

            // A change of a past reservation drops exactly the days it touches (before and after the change): one
            // allocation's amount, and the task with all its allocations a day later (allocations carry their task's times).
            let moved = try #require(allocations.indices.first { allocations[$0].start >= 4 * 1_440 && allocations[$0].end <= 6 * 1_440 && allocations[$0].start / 1_440 != (allocations[$0].end - 1) / 1_440 })
            let task = allocations[moved].task
            let before = Set((allocations[moved].start / 1_440...(allocations[moved].end - 1) / 1_440).map(day))
            allocations[moved].amount += 5
            for i in allocations.indices where allocations[i].task == task {
                allocations[i].start += 1_440
                allocations[i].end += 1_440
            }
            try await t.db.execute(
                "UPDATE allocations SET amount = amount + 5 WHERE task_id = \(task) AND node_id = \(allocations[moved].node)", logger: logger)
            try await t.db.execute(
                "UPDATE tasks SET start_time = start_time + interval '1 day', end_time = end_time + interval '1 day' WHERE id = \(task)",
                logger: logger)
            try await t.db.execute(
                "UPDATE allocations SET start_time = start_time + interval '1 day', end_time = end_time + interval '1 day' WHERE task_id = \(task)",
                logger: logger)
            let after = Set((allocations[moved].start / 1_440...(allocations[moved].end - 1) / 1_440).map(day))
            var remaining = try await done()
            #expect(remaining.isDisjoint(with: before.union(after)) && remaining.isSuperset(of: Set((-1...10).map(day)).subtracting(before.union(after))))
            try await check("after an update")
            // Deleting a task (its allocations go by cascade) drops its days too.
            let gone = try #require(allocations.first { $0.start > 1_440 && $0.end < 3 * 1_440 })
            allocations.removeAll { $0.task == gone.task }
            try await t.db.execute("DELETE FROM tasks WHERE id = \(gone.task)", logger: logger)
            remaining = try await done()
            #expect(!remaining.contains(day(gone.start / 1_440)))
            try await check("after a delete")
            try await reports.rollUpPending(logger: logger)
            #expect(try await reports.pendingDays(logger: logger).isEmpty)
            try await check("rolled up again")

            // A user moving to another group takes their past reservations along.
            try await t.db.execute("UPDATE users SET group_id = \(labB) WHERE id = \(users[0])", logger: logger)
            groupOf[users[0]] = labB
            #expect(try await reports.pendingDays(logger: logger).count >= 5)
            try await check("after a group change")
            try await reports.rollUpPending(logger: logger)
            try await check("group change rolled up")

            // A change of more than 31 days (here a reservation over 40 past days) takes the table lock instead of one
            // lock per day, and drops every day it touches.
            let long = try #require(try await t.db.int(
                """
                INSERT INTO tasks (name, start_time, end_time, owner_id)
                VALUES ('long', \(at(-30 * 1_440).sqlText)::timestamp, \(at(10 * 1_440).sqlText)::timestamp, \(users[3])) RETURNING id
                """, logger: logger))
            let longAllocation = Allocation(
                task: long, owner: users[3], node: nodes[2], resource: resources[1], amount: 3, start: -30 * 1_440, end: 10 * 1_440)
            try await insert([longAllocation])
            allocations.append(longAllocation)
            #expect(try await done().isDisjoint(with: (-1...9).map(day)))
            try await check("after a change of 40 days")
            #expect(try await reports.rollUpPending(logger: logger) >= 40)
            try await check("40 days rolled up")

            // A booking ahead of time touches no day figures.
            let token = try await t.token(users[2], "u2", admin: false)
            let next = try await t.wallClock(minutes: 4 * 1_440)
            let nextEnd = try await t.wallClock(minutes: 4 * 1_440 + 60)
            let doneBefore = try await done()
            #expect(try await t.book(token, start: next, end: nextEnd, [(nodes[0], resources[0], 1)]).status == .ok)
            #expect(try await done() == doneBefore)

            // A change racing the roll-up of its day: the roll-up skips the day while the change holds its lock, and
            // the change drops the day; the next roll-up counts the change.
            let host = try #require(allocations.first { a in
                a.start < 5 * 1_440 + 60 && a.end > 5 * 1_440 + 60 && a.task != long && allocations.filter { $0.task == a.task }.count < nodes.count * 2 })
            let used = Set(allocations.filter { $0.task == host.task }.map { "\($0.node)/\($0.resource)" })
            let (freeNode, freeResource) = try #require(
                nodes.flatMap { n in resources.map { (n, $0) } }.first { !used.contains("\($0.0)/\($0.1)") })
            let extra = Allocation(
                task: host.task, owner: host.owner, node: freeNode, resource: freeResource, amount: 7, start: host.start, end: host.end)
            let dayNumber = Int32(try await t.db.int("SELECT \(day(5))::date - date '2000-01-01'", logger: logger)!)
            try await t.db.transaction(logger: logger) { tx in
                try await tx.query(
                    """
                    INSERT INTO allocations (task_id, node_id, resource_id, amount, start_time, end_time)
                    VALUES (\(extra.task), \(extra.node), \(extra.resource), 7, \(at(extra.start).sqlText)::timestamp, \(at(extra.end).sqlText)::timestamp)
                    """, logger: logger)
                #expect(try await reports.rollUp(day: dayNumber, logger: logger) == false)
            }
            allocations.append(extra)
            #expect(try await !done().contains(day(5)))
            #expect(try await reports.rollUp(day: dayNumber, logger: logger))
            try await check("after a racing change")
        }
    }
}
