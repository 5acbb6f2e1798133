import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Remas

/// Limits bound what a user holds at once (README "Limits"): the caller's overlapping scheduled and running reservations of a
/// (node, resource) count together with the new amount; `LIMIT_SCOPE=task` keeps the original's per-task check.
@Suite struct LimitScopeTests {
    static let over = "Task resource allocation exeeds user limits! Exceeded resource: cpu-8, Limit: 8"

    /// A node with 100 CPUs, a user with a limit of `limit` on it.
    static func setUp(_ t: TestContext, limit: Int64 = 8, name: String = "alice") async throws -> (node: Int, cpu: Int, user: Int, token: String) {
        let cluster = try await t.cluster(nodes: 1, capacity: 100)
        let (user, token) = try await t.userWithToken(name)
        try await t.makeLimit("cpu-\(limit)", amount: limit, user: user, resource: cluster.1[0], nodes: [cluster.0[0]])
        return (cluster.0[0], cluster.1[0], user, token)
    }

    @Test func theIssuesExampleIsRefusedAtOnceAndAcceptedPerTask() async throws {
        try await withApp { t in
            let (n, cpu, _, token) = try await Self.setUp(t)
            #expect(try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n, cpu, 4)]).status == .ok)
            let r = try await t.book(token, start: "2030-01-01 11:00", end: "2030-01-01 13:00", [(n, cpu, 8)])
            #expect(r.status == .conflict)
            #expect(r.detail == Self.over)
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == 1)
        }
        try await withApp(extra: ["LIMIT_SCOPE": "task"]) { t in
            let (n, cpu, _, token) = try await Self.setUp(t)
            #expect(try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n, cpu, 4)]).status == .ok)
            #expect(try await t.book(token, start: "2030-01-01 11:00", end: "2030-01-01 13:00", [(n, cpu, 8)]).status == .ok)
            // Per task, the limit still holds.
            #expect(try await t.book(token, start: "2030-01-02 11:00", end: "2030-01-02 13:00", [(n, cpu, 9)]).detail == Self.over)
        }
    }

    @Test func nestedTouchingAndPartialOverlaps() async throws {
        try await withApp { t in
            let (n, cpu, _, token) = try await Self.setUp(t)
            #expect(try await t.book(token, start: "2030-01-01 08:00", end: "2030-01-01 18:00", [(n, cpu, 3)]).status == .ok)
            // Nested inside: 3 + 5 = 8 fits, one more does not.
            #expect(try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n, cpu, 5)]).status == .ok)
            #expect(try await t.book(token, start: "2030-01-01 10:30", end: "2030-01-01 10:45", [(n, cpu, 1)]).detail == Self.over)
            // Touching the nested one (11:00 to 12:00): only the long one overlaps.
            #expect(try await t.book(token, start: "2030-01-01 11:00", end: "2030-01-01 12:00", [(n, cpu, 5)]).status == .ok)
            // Partly overlapping two reservations that do not overlap each other: the peak is 3 + 5, not 3 + 5 + 5.
            #expect(try await t.book(token, start: "2030-01-01 18:00", end: "2030-01-01 20:00", [(n, cpu, 8)]).status == .ok)
            #expect(try await t.book(token, start: "2030-01-01 17:00", end: "2030-01-01 19:00", [(n, cpu, 1)]).detail == Self.over)
        }
    }

    @Test func anUpdateMovesOutOfTheOverlapAndDoesNotCountItself() async throws {
        try await withApp { t in
            let (n, cpu, _, token) = try await Self.setUp(t)
            #expect(try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n, cpu, 6)]).status == .ok)
            let second = try await t.book(token, name: "b", start: "2030-01-01 13:00", end: "2030-01-01 14:00", [(n, cpu, 6)])
            let id = try #require(second.object["id"] as? Int)
            // Moving it into the first one's window would hold 12.
            #expect(try await t.book(token, id: id, name: "b", start: "2030-01-01 11:00", end: "2030-01-01 14:00", [(n, cpu, 6)]).detail == Self.over)
            // Growing it where it is: its own old amount does not count against the new one.
            #expect(try await t.book(token, id: id, name: "b", start: "2030-01-01 13:00", end: "2030-01-01 14:00", [(n, cpu, 8)]).status == .ok)
            // Moved out of the overlap (touching), it fits.
            #expect(try await t.book(token, id: id, name: "b", start: "2030-01-01 12:00", end: "2030-01-01 13:00", [(n, cpu, 8)]).status == .ok)
        }
    }

    @Test func runningCountsFinishedNever() async throws {
        try await withApp { t in
            let (n, cpu, _, token) = try await Self.setUp(t)
            let past = (try await t.wallClock(minutes: -120), try await t.wallClock(minutes: -60))
            let now = (try await t.wallClock(minutes: -30), try await t.wallClock(minutes: 60))
            #expect(try await t.book(token, start: past.0, end: past.1, [(n, cpu, 8)]).status == .ok)  // finished
            #expect(try await t.book(token, start: now.0, end: now.1, [(n, cpu, 5)]).status == .ok)  // running
            // A booking over the last two hours overlaps the finished one (ignored) and the running one (counted).
            #expect(try await t.book(token, start: past.0, end: try await t.wallClock(minutes: 30), [(n, cpu, 4)]).detail == Self.over)
            #expect(try await t.book(token, start: past.0, end: try await t.wallClock(minutes: 30), [(n, cpu, 3)]).status == .ok)
        }
    }

    @Test func groupLimitsTwoLevelsUpApplyPerMemberAndOthersNeverCount() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 100)
            let (n, cpu) = (cluster.0[0], cluster.1[0])
            let lab = try await t.makeGroup("lab", parent: 1)
            let team = try await t.makeGroup("team", parent: lab)
            let sub = try await t.makeGroup("sub", parent: team)
            try await t.makeLimit("lab-cpu", amount: 6, group: lab, resource: cpu, nodes: [n])
            let (_, alice) = try await t.userWithToken("alice", groupID: sub)
            let (_, bob) = try await t.userWithToken("bob", groupID: sub)
            #expect(try await t.book(alice, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n, cpu, 4)]).status == .ok)
            let r = try await t.book(alice, start: "2030-01-01 11:00", end: "2030-01-01 12:00", [(n, cpu, 3)])
            #expect(r.detail == "Task resource allocation exeeds user limits! Exceeded resource: lab-cpu, Limit: 6")
            // Bob has his own 6 beside Alice's reservations.
            #expect(try await t.book(bob, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n, cpu, 6)]).status == .ok)
        }
    }

    @Test func usageShowsThePeakNextToTheLimit() async throws {
        try await withApp { t in
            let (n, cpu, user, token) = try await Self.setUp(t)
            #expect(try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n, cpu, 4)]).status == .ok)
            #expect(try await t.book(token, start: "2030-01-01 11:00", end: "2030-01-01 13:00", [(n, cpu, 3)]).status == .ok)
            let r = try await t.request(.get, "/limit/usage/\(user)?start=2030-01-01T00:00:00&end=2030-01-02T00:00:00", token: token)
            #expect(r.status == .ok)
            let entry = try #require(r.array.first)
            #expect(entry["limit_name"] as? String == "cpu-8" && entry["node_id"] as? Int == n)
            #expect(entry["amount"] as? Int == 8 && entry["peak"] as? Int == 7 && entry["available"] as? Int == 1)
            // Outside the overlap the peak is lower.
            let later = try await t.request(.get, "/limit/usage/\(user)?start=2030-01-01T12:00:00&end=2030-01-01T13:00:00", token: token)
            #expect(later.array.first?["peak"] as? Int == 3)
            let (_, other) = try await t.userWithToken("mallory")
            #expect(try await t.request(.get, "/limit/usage/\(user)?start=2030-01-01T00:00:00&end=2030-01-02T00:00:00", token: other).status == .forbidden)
            #expect(try await t.request(.get, "/limit/usage/\(user)?start=2030-01-01T00:00:00", token: token).status == .unprocessableContent)
            #expect(try await t.request(.get, "/limit/usage/\(user)?start=2030-01-02T00:00:00&end=2030-01-01T00:00:00", token: token).status == .badRequest)
            #expect(try await t.request(.get, "/limit/usage/999999?start=2030-01-01T00:00:00&end=2030-01-02T00:00:00",
                                        token: try await t.adminToken()).status == .notFound)
        }
    }

    /// 20 concurrent one-unit bookings of one user over the same hour, capacity 100, limit 4: exactly 4 accepted, on
    /// one server and on two.
    @Test(arguments: [1, 2]) func concurrentBookingsCannotPassALimitTogether(servers: Int) async throws {
        try await withTwoLiveServers { t, two in
            let (n, cpu, user, token) = try await Self.setUp(t, limit: 4)
            let bookings = (0..<20).map { _ in
                ConcurrencyTests.Booking(node: n, resource: cpu, amount: 1, start: "2030-01-01 10:00", end: "2030-01-01 11:00")
            }
            let ports = servers == 1 ? [t.client.port!] : [t.client.port!, two.port!]
            let outcomes = try await ConcurrencyTests.fire(bookings, ports: ports, token: token)
            #expect(outcomes.filter { $0.status == 200 }.count == 4)
            #expect(outcomes.filter { $0.status == 409 }.allSatisfy { $0.detail == "Task resource allocation exeeds user limits! Exceeded resource: cpu-4, Limit: 4" })
            #expect(outcomes.filter { $0.status != 200 && $0.status != 409 }.isEmpty)
            #expect(try await t.count("SELECT count(*)::int FROM tasks WHERE owner_id = \(user)") == 4)
        }
    }
}
