import Foundation
import Logging
import Synchronization
import Testing

@testable import Remas

/// Capacity alerts: the peak booked share over the horizon per node and cluster-wide, hysteresis, one mail per
/// transition across monitors, `/metrics`, and passes only when something changed.
@Suite struct CapacityAlertTests {
    static func monitor(_ t: TestContext, changes: CapacityChanges = CapacityChanges(), minInterval: Int = 0, horizonHours: Int = 24)
        -> CapacityMonitor
    {
        var settings = OperationsSettings()
        settings.capacityMinIntervalSeconds = minInterval
        settings.capacityHorizonHours = horizonHours
        return CapacityMonitor(db: t.db, settings: settings, changes: changes, clock: WallClock(zone: t.configuration.timeZone), logger: t.logger)
    }

    @Test func peaksHysteresisAndMailsOnce() async throws {
        try await withApp { t in
            let (nodes, resources) = try await t.cluster(nodes: 2, capacity: 20, resources: ["gpu", "cpu"])
            let gpu = resources[0]
            let boss = SMTPTestServer.address("boss")
            _ = try await t.userWithEmail(boss, groupID: SeededGroup.administrators.rawValue)
            let (_, token) = try await t.userWithToken("booker")
            func book(_ amount: Int64, _ start: Int, _ end: Int, node: Int = 0) async throws -> Int {
                let r = try await t.book(
                    token, start: try await t.wallClock(minutes: start), end: try await t.wallClock(minutes: end), [(nodes[node], gpu, amount)])
                return try #require(r.object["id"] as? Int, "\(r.body)")
            }
            let monitor = Self.monitor(t)
            var pass = try await monitor.runPass()
            #expect(pass.transitions.isEmpty && pass.written == 6)  // 2 nodes x 2 resources + 2 cluster rows, all 0
            #expect(pass.nextChange == nil)

            // Far beyond the horizon: not counted, but the pass is due when it enters the horizon (24 hours before it).
            let far = try await book(20, 48 * 60, 49 * 60)
            pass = try await monitor.runPass()
            #expect(pass.transitions.isEmpty && pass.written == 0)
            let enters = try await t.db.int(
                "SELECT (extract(epoch FROM start_time - interval '24 hours') * 1000000)::int8 FROM tasks WHERE id = \(far)", logger: t.logger)
            #expect(enters != nil && pass.nextChange?.microseconds == enters.map(Int64.init))

            // Two reservations that do not overlap: the peak is the larger one, not their sum (12 and 6 of 20).
            let big = try await book(12, 60, 120)
            _ = try await book(6, 180, 240)
            pass = try await monitor.runPass()
            #expect(pass.transitions.isEmpty)
            var states = try await CapacityRepository(db: t.db).states(logger: t.logger)
            #expect(states.first { $0.resource == gpu && $0.node == nodes[0] }?.ratio == 0.6)
            #expect(states.first { $0.resource == gpu && $0.node == 0 }?.ratio == 0.3)
            // Now the first end inside the horizon comes first.
            let ends = try await t.db.int("SELECT (extract(epoch FROM end_time) * 1000000)::int8 FROM tasks WHERE id = \(big)", logger: t.logger)
            #expect(ends != nil && pass.nextChange?.microseconds == ends.map(Int64.init))

            // 18 of 20 at once on node0: fires (0.9); the cluster (18 of 40) does not.
            let extra = try await book(6, 90, 100)
            pass = try await monitor.runPass()
            #expect(pass.transitions.map { "\($0.resource)/\($0.node ?? "")/\($0.firing)" } == ["gpu/node0/true"])
            #expect(pass.transitions.first?.ratio == 0.9)
            // Nothing changed: no transition, no mail.
            #expect(try await monitor.runPass().transitions.isEmpty)
            let clock = FixedClock("2031-01-01 00:00")
            _ = try await t.withScheduler(clock: clock) { try await $0.runPass() }
            let mail = try #require(try await SMTPTestServer.waitForMessages(to: boss, count: 1).first)
            #expect(mail["subject"] as? String == "Capacity: 1 alert(s) at 90 % or more booked")
            #expect((mail["body"] as? String)?.contains("- gpu on node node0: 90 %") == true)

            // 17 of 20 (0.85) is inside the hysteresis band: still firing. 12 of 20 (0.6): resolved, one mail.
            #expect(try await t.book(token, id: extra, start: try await t.wallClock(minutes: 90), end: try await t.wallClock(minutes: 100), [(nodes[0], gpu, 5)]).status == .ok)
            pass = try await monitor.runPass()
            #expect(pass.transitions.isEmpty)
            states = try await CapacityRepository(db: t.db).states(logger: t.logger)
            #expect(states.first { $0.resource == gpu && $0.node == nodes[0] }.map { ($0.ratio, $0.firing) } ?? (0, false) == (0.85, true))
            #expect(try await t.request(.delete, "/task/\(extra)", token: token).status == .ok)
            pass = try await monitor.runPass()
            #expect(pass.transitions.map { "\($0.resource)/\($0.node ?? "")/\($0.firing)" } == ["gpu/node0/false"])
            _ = try await t.withScheduler(clock: clock) { try await $0.runPass() }
            let mails = try await SMTPTestServer.waitForMessages(to: boss, count: 2)
            #expect(mails.count == 2 && mails.contains { $0["subject"] as? String == "Capacity: 1 resolved" })

            // Cluster-wide: 40 of 40 gpus at once fires both nodes and the cluster in one mail.
            #expect(try await t.request(.delete, "/task/\(big)", token: token).status == .ok)
            _ = try await book(20, 300, 360, node: 0)
            _ = try await book(20, 300, 360, node: 1)
            pass = try await monitor.runPass()
            #expect(Set(pass.transitions.map { "\($0.node ?? "cluster")/\($0.firing)" }) == ["node0/true", "node1/true", "cluster/true"])
            #expect(pass.notices == 2)  // boss and the seeded administrator: one mail each for the three

            // /metrics reads the last pass.
            let text = try await t.request(.get, "/metrics").body
            #expect(text.contains("\nremas_resource_booked_ratio{resource=\"gpu\",node=\"node0\"} 1"))
            #expect(text.contains("\nremas_resource_booked_ratio{resource=\"gpu\",node=\"\"} 1"))
            #expect(text.contains("\nremas_resource_booked_ratio{resource=\"cpu\",node=\"node1\"} 0"))
        }
    }

    /// A capacity lowered under existing reservations gives shares far above 1: told as they are, never a crash
    /// (the first version converted the percentage to an Int and trapped past Int.max; schema fuzzing found it).
    @Test func hugeShares() async throws {
        try await withApp { t in
            let (nodes, resources) = try await t.cluster(nodes: 1, capacity: 4_000_000_000_000_000_000)
            let (_, token) = try await t.userWithToken("big")
            #expect(try await t.book(
                token, start: try await t.wallClock(minutes: 30), end: try await t.wallClock(minutes: 90), [(nodes[0], resources[0], 4_000_000_000_000_000_000)]
            ).status == .ok)
            try await t.db.execute("UPDATE node_resources SET amount = 1", logger: t.logger)
            let pass = try await Self.monitor(t).runPass()
            #expect(pass.transitions.count == 2 && pass.transitions.allSatisfy { $0.ratio > 1e18 })
            let body = try await t.db.text("SELECT body FROM events WHERE type = 'notice' LIMIT 1", logger: t.logger)
            #expect(body?.contains("- cpu on node node0: 400000000000000000000 %") == true, "\(body ?? "")")
        }
    }

    /// Two monitors (two replicas) passing at once: each transition is found and told once.
    @Test func concurrentPassesTellOnce() async throws {
        try await withApp { t in
            let (nodes, resources) = try await t.cluster(nodes: 1, capacity: 10)
            let (_, token) = try await t.userWithToken("booker")
            #expect(try await t.book(token, start: try await t.wallClock(minutes: 30), end: try await t.wallClock(minutes: 90), [(nodes[0], resources[0], 10)]).status == .ok)
            let monitors = (0..<4).map { _ in Self.monitor(t) }
            let passes = try await withThrowingTaskGroup(of: CapacityRepository.Pass.self) { group in
                for m in monitors { group.addTask { try await m.runPass() } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(passes.map(\.transitions.count).reduce(0, +) == 2)  // node0 and the cluster, once
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE type = 'notice'") == 1)  // the seeded administrator
        }
    }

    /// The monitor's loop passes at start, after a signaled change and when an allocation in the horizon ends; never
    /// while nothing changes.
    @Test func passesOnlyOnChange() async throws {
        try await withApp { t in
            let (nodes, resources) = try await t.cluster(nodes: 1, capacity: 10)
            let (_, token) = try await t.userWithToken("booker")
            let changes = CapacityChanges()
            let monitor = Self.monitor(t, changes: changes)
            let stop = Atomic<Bool>(false)
            let loop = Task { await monitor.loop(isStopping: { stop.load(ordering: .relaxed) }) }
            func passes(_ n: Int) async throws {
                let deadline = Date().addingTimeInterval(10)
                while monitor.passes.load(ordering: .relaxed) < n, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
                #expect(monitor.passes.load(ordering: .relaxed) == n)
            }
            try await passes(1)
            try await Task.sleep(for: .milliseconds(500))
            #expect(monitor.passes.load(ordering: .relaxed) == 1)
            // A booking (the route signals on the server; here the test signals as the route would).
            let r = try await t.book(token, start: try await t.wallClock(minutes: 30), end: try await t.wallClock(minutes: 90), [(nodes[0], resources[0], 10)])
            let id = try #require(r.object["id"] as? Int)
            changes.changed()
            try await passes(2)
            #expect(try await CapacityRepository(db: t.db).states(logger: t.logger).allSatisfy(\.firing))
            // The clock alone: the reservation ends 2 s from now, so the monitor passes again then, and it resolves.
            let now = try await t.db.text("SELECT to_char(localtimestamp - interval '1 minute', 'YYYY-MM-DD HH24:MI:SS')", logger: t.logger)!
            let end = try await t.db.text("SELECT to_char(localtimestamp + interval '2 seconds', 'YYYY-MM-DD HH24:MI:SS.US')", logger: t.logger)!
            try await t.move(task: id, start: now, end: end)
            changes.changed()
            try await passes(3)
            let deadline = Date().addingTimeInterval(15)
            while monitor.passes.load(ordering: .relaxed) < 4, Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(monitor.passes.load(ordering: .relaxed) == 4)
            #expect(try await CapacityRepository(db: t.db).states(logger: t.logger).allSatisfy { !$0.firing })
            try await Task.sleep(for: .milliseconds(500))
            #expect(monitor.passes.load(ordering: .relaxed) == 4)
            stop.store(true, ordering: .relaxed)
            changes.signal.signal()
            await loop.value
        }
    }

    /// A change beyond the horizon (a booking a year ahead) costs no pass until it enters the horizon; one inside it,
    /// or one without a time, is evaluated at once.
    @Test func changesBeyondTheHorizonWaitUntilTheyEnterIt() async throws {
        try await withApp { t in
            let changes = CapacityChanges()
            let monitor = Self.monitor(t, changes: changes, horizonHours: 1)
            let clock = WallClock(zone: t.configuration.timeZone)
            let stop = Atomic<Bool>(false)
            let loop = Task { await monitor.loop(isStopping: { stop.load(ordering: .relaxed) }) }
            func passes(_ n: Int, within seconds: Double) async throws {
                let deadline = Date().addingTimeInterval(seconds)
                while monitor.passes.load(ordering: .relaxed) < n, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
                #expect(monitor.passes.load(ordering: .relaxed) == n)
            }
            try await passes(1, within: 10)
            let hour: Int64 = 3_600_000_000
            // A year ahead, then 3 s beyond the horizon's end: neither is evaluated now.
            changes.changed(from: clock.now().microseconds + 365 * 24 * hour)
            changes.changed(from: clock.now().microseconds + hour + 3_000_000)
            try await Task.sleep(for: .milliseconds(1_500))
            #expect(monitor.passes.load(ordering: .relaxed) == 1)
            // The second enters the horizon 3 s after it was recorded: one pass then, and none for the first.
            try await passes(2, within: 10)
            try await Task.sleep(for: .milliseconds(500))
            #expect(monitor.passes.load(ordering: .relaxed) == 2)
            // Inside the horizon, and without a time: at once.
            changes.changed(from: clock.now().microseconds + hour / 2)
            try await passes(3, within: 5)
            changes.changed()
            try await passes(4, within: 5)
            try await Task.sleep(for: .milliseconds(500))
            #expect(monitor.passes.load(ordering: .relaxed) == 4)
            stop.store(true, ordering: .relaxed)
            changes.signal.signal()
            await loop.value
        }
    }
}
