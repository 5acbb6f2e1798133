import Foundation
import NIOCore
import Hummingbird
import Testing

@testable import Remas

@Suite struct SchedulingTests {
    /// The original's documented timeline example (two users, overlapping tasks on one node), verbatim (user ids 2 and 3 are `u2` and `u3` here).
    @Test func workedExample() async throws {
        try await withApp { t in
            let n1 = try await t.makeNode("n1")
            let n2 = try await t.makeNode("n2")
            let cpu = try await t.makeResource("cpu")
            let mem = try await t.makeResource("mem")
            try await t.provide(node: n1, resource: cpu, amount: 4)
            try await t.provide(node: n1, resource: mem, amount: 1000)
            try await t.provide(node: n2, resource: cpu, amount: 2)
            let (u2, t2) = try await t.userWithToken("two")
            let (u3, t3) = try await t.userWithToken("three")
            #expect(try await t.book(t3, name: "D", start: "2030-01-01 08:00", end: "2030-01-01 09:00", [(n1, cpu, 1)]).status == .ok)
            #expect(try await t.book(t2, name: "A", start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n1, cpu, 2), (n1, mem, 100)]).status == .ok)
            #expect(try await t.book(t3, name: "B", start: "2030-01-01 11:00", end: "2030-01-01 13:00", [(n1, cpu, 1)]).status == .ok)
            #expect(try await t.book(t2, name: "C", start: "2030-01-01 12:00", end: "2030-01-01 14:00", [(n2, cpu, 2)]).status == .ok)
            let r = try await t.request(
                .post, "/task/get_scheduling", token: t2,
                json: #"{"start_time":"2030-01-01 09:00","end_time":"2030-01-01 13:30","exclude_task_id":0}"#)
            #expect(r.status == .ok)
            func e(_ node: Int, _ resource: Int, _ amount: Int, _ users: [Int]) -> String {
                #"{"node_id":\#(node),"resource_id":\#(resource),"amount":\#(amount),"user_ids":[\#(users.map(String.init).joined(separator: ","))]}"#
            }
            func p(_ s: String, _ e: String, _ entries: [String]) -> String {
                #"{"start_time":"2030-01-01T\#(s):00","end_time":"2030-01-01T\#(e):00","available_resources":[\#(entries.joined(separator: ","))]}"#
            }
            let expected = "[" + [
                p("08:00", "09:00", [e(n1, cpu, 3, [u3])]),
                p("10:00", "11:00", [e(n1, cpu, 2, [u2]), e(n1, mem, 900, [u2])]),
                p("11:00", "12:00", [e(n1, cpu, 1, [u2, u3].sorted()), e(n1, mem, 900, [u2])]),
                p("12:00", "13:00", [e(n1, cpu, 3, [u3]), e(n2, cpu, 0, [u2])]),
                p("13:00", "14:00", [e(n2, cpu, 0, [u2])]),
            ].joined(separator: ",") + "]"
            #expect(r.body == expected)
        }
    }

    @Test func excludeMergeAndSelection() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 10)
            let n1 = cluster.0[0], cpu = cluster.1[0]
            let (u, token) = try await t.userWithToken("u")
            let a = try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 2)]).object["id"] as! Int
            _ = try await t.book(token, start: "2030-01-01 11:00", end: "2030-01-01 12:00", [(n1, cpu, 2)])
            func timeline(_ body: String) async throws -> [[String: Any]] {
                try await t.request(.post, "/task/get_scheduling", token: token, json: body).array
            }
            // Equal neighbours merge into one period.
            var periods = try await timeline(#"{"start_time":"2030-01-01 00:00","end_time":"2030-01-02 00:00"}"#)
            #expect(periods.count == 1)
            #expect(periods.first?["start_time"] as? String == "2030-01-01T10:00:00")
            #expect(periods.first?["end_time"] as? String == "2030-01-01T12:00:00")
            #expect(((periods.first?["available_resources"] as? [[String: Any]])?.first?["user_ids"] as? [Int]) == [u])
            // exclude_task_id hides the task being edited.
            periods = try await timeline(#"{"start_time":"2030-01-01 00:00","end_time":"2030-01-02 00:00","exclude_task_id":\#(a)}"#)
            #expect(periods.first?["start_time"] as? String == "2030-01-01T11:00:00")
            // A window touching a task's end selects it (closed interval), unclipped.
            periods = try await timeline(#"{"start_time":"2030-01-01 12:00","end_time":"2030-01-01 13:00","exclude_task_id":null}"#)
            #expect(periods.count == 1)
            #expect(periods.first?["start_time"] as? String == "2030-01-01T11:00:00")
            #expect(periods.first?["end_time"] as? String == "2030-01-01T12:00:00")
            // Nothing in the window, an inverted window, finished tasks: empty.
            #expect(try await timeline(#"{"start_time":"2031-01-01 00:00","end_time":"2031-01-02 00:00"}"#).isEmpty)
            #expect(try await timeline(#"{"start_time":"2030-01-02 00:00","end_time":"2030-01-01 00:00"}"#).isEmpty)
            for task in try await t.db.query("SELECT id FROM tasks", logger: t.logger) {
                try await t.move(task: try task.decode(Int.self), start: "2020-01-01 00:00", end: "2020-01-01 01:00")
            }
            #expect(try await timeline(#"{"start_time":"2020-01-01 00:00","end_time":"2020-01-02 00:00"}"#).isEmpty)
            let bad = try await t.request(.post, "/task/get_scheduling", token: token, json: #"{"start_time":"soon","end_time":"2030-01-01 00:00"}"#)
            #expect(bad.status == .unprocessableContent)
            #expect(try await t.request(.post, "/task/get_scheduling", json: #"{"start_time":"2030-01-01 00:00","end_time":"2030-01-02 00:00"}"#).status == .unauthorized)
        }
    }

    @Test func oneStatementRegardlessOfTaskCount() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 3, capacity: 1000)
            let (_, token) = try await t.userWithToken("u")
            let body = #"{"start_time":"2030-01-01 00:00","end_time":"2030-01-31 00:00","exclude_task_id":0}"#
            let before = try await t.statements { _ = try await t.request(.post, "/task/get_scheduling", token: token, json: body) }
            for day in 1...9 {
                for node in cluster.0 {
                    _ = try await t.book(token, start: "2030-01-0\(day) 10:00", end: "2030-01-0\(day) 18:00", [(node, cluster.1[0], 1)])
                }
            }
            let after = try await t.statements { _ = try await t.request(.post, "/task/get_scheduling", token: token, json: body) }
            #expect(before == 1)
            #expect(after == 1)
        }
    }

    /// The sweep against a brute-force reference on random data.
    @Test func sweepMatchesBruteForce() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var allocations: [Timeline.Allocation] = []
            for task in 0..<Int.random(in: 1...12, using: &rng) {
                let start = Int64.random(in: 0...20, using: &rng)
                let end = start + Int64.random(in: 1...6, using: &rng)
                let owner = Int.random(in: 1...3, using: &rng)
                for node in Set((0..<Int.random(in: 1...2, using: &rng)).map { _ in Int.random(in: 1...2, using: &rng) }) {
                    allocations.append(.init(taskID: task, ownerID: owner, start: start, end: end, nodeID: node, resourceID: 1,
                                             amount: Int64.random(in: 1...3, using: &rng), capacity: 5))
                }
            }
            allocations.sort { ($0.start, $0.taskID, $0.nodeID) < ($1.start, $1.taskID, $1.nodeID) }
            let periods = Timeline.periods(allocations)
            // Every instant inside a period shows exactly the usage brute force computes; outside periods nothing is used.
            for time in Int64(0)...30 {
                let active = allocations.filter { $0.start <= time && time < $0.end }
                let period = periods.first { $0.start <= time && time < $0.end }
                if active.isEmpty {
                    #expect(period == nil)
                    continue
                }
                guard let period else { Issue.record("no period at \(time)"); continue }
                for node in Set(active.map(\.nodeID)) {
                    let used = active.filter { $0.nodeID == node }.reduce(Int64(0)) { $0 + $1.amount }
                    let entry = period.entries.first { $0.nodeID == node }
                    #expect(entry?.amount == 5 - used)
                    #expect(entry?.userIDs == Set(active.filter { $0.nodeID == node }.map(\.ownerID)).sorted())
                }
            }
            for (a, b) in zip(periods, periods.dropFirst()) {
                #expect(a.end <= b.start)
                #expect(!(a.end == b.start && a.entries == b.entries))
            }
        }
    }

    /// The window's reservations are exactly those with `end >= start` and `start <= end` (both bounds inclusive, as
    /// before the period index served the query), also for a window given backwards.
    @Test func windowBoundsAreInclusive() async throws {
        try await withApp { t in
            let owner = try await t.makeUser("bounds")
            let node = try await t.makeNode("bn")
            let cpu = try await t.makeResource("bcpu")
            try await t.provide(node: node, resource: cpu, amount: 4)
            var ids: [String: Int] = [:]
            for (name, start, end) in [
                ("endsAtStart", "2031-05-01 08:00", "2031-05-01 10:00"), ("startsAtEnd", "2031-05-01 12:00", "2031-05-01 13:00"),
                ("inside", "2031-05-01 10:30", "2031-05-01 11:00"), ("spans", "2031-05-01 09:00", "2031-05-01 14:00"),
                ("before", "2031-05-01 07:00", "2031-05-01 09:59"), ("after", "2031-05-01 12:01", "2031-05-01 15:00"),
            ] {
                ids[name] = try await t.db.int(
                    "INSERT INTO tasks (name, start_time, end_time, owner_id) VALUES (\(name), \(start)::timestamp, \(end)::timestamp, \(owner)) RETURNING id",
                    logger: t.logger)
                try await t.db.execute(
                    """
                    INSERT INTO allocations (task_id, node_id, resource_id, amount, start_time, end_time)
                    SELECT id, \(node), \(cpu), 1, start_time, end_time FROM tasks WHERE id = \(ids[name]!)
                    """, logger: t.logger)
            }
            let zone = TimeZone(identifier: "Europe/Prague")!
            func found(_ from: String, _ to: String) async throws -> Set<String> {
                let rows = try await TaskRepository(db: t.db).schedulingAllocations(
                    from: LocalDateTime.parse(from, zone: zone)!, to: LocalDateTime.parse(to, zone: zone)!, excluding: nil, logger: t.logger)
                return Set(rows.compactMap { row in ids.first { $0.value == row.taskID }?.key })
            }
            #expect(try await found("2031-05-01T10:00", "2031-05-01T12:00") == ["endsAtStart", "startsAtEnd", "inside", "spans"])
            // Backwards: only what covers both instants.
            #expect(try await found("2031-05-01T12:00", "2031-05-01T10:00") == ["spans"])
        }
    }
}
