import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import Remas

/// No overbooking under concurrency, against real servers on real sockets.
@Suite struct ConcurrencyTests {
    struct Booking: Sendable {
        let node: Int
        let resource: Int
        let amount: Int64
        let start: String
        let end: String
    }

    struct Outcome: Sendable {
        let booking: Booking
        let status: Int
        let taskID: Int?
        let detail: String?
    }

    static func fire(_ bookings: [Booking], ports: [Int], token: String) async throws -> [Outcome] {
        try await withThrowingTaskGroup(of: Outcome.self) { group in
            for (index, booking) in bookings.enumerated() {
                let port = ports[index % ports.count]
                group.addTask {
                    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/task")
                    request.method = .POST
                    request.headers.add(name: "Authorization", value: "Bearer \(token)")
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: TestContext.taskBody(
                        name: "race\(index)", start: booking.start, end: booking.end,
                        allocations: [(booking.node, booking.resource, booking.amount)])))
                    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
                    let body = try await response.body.collect(upTo: 1 << 20)
                    let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
                    return Outcome(booking: booking, status: Int(response.status.code), taskID: object["id"] as? Int, detail: object["detail"] as? String)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    /// Minutes since midnight of a `2030-01-01 HH:MM` of the workload.
    static func minutes(_ time: String) -> Int {
        let clock = time.split(separator: " ")[1].split(separator: ":")
        return Int(clock[0])! * 60 + Int(clock[1])!
    }

    /// Checks, from the database alone, that no instant exceeds any capacity, and that exactly the accepted bookings
    /// are stored with their allocations while the refused ones left nothing behind; and that every refusal was
    /// forced: the bookings accepted in the end leave no room for it at some minute of its window (what was accepted
    /// before it was refused is a part of them), so the race never turned away a booking that fit.
    static func verify(_ outcomes: [Outcome], _ t: TestContext, capacity: Int64 = 4) async throws {
        let accepted = outcomes.filter { $0.status == 200 }
        let refused = outcomes.filter { $0.status != 200 }
        for outcome in refused {
            #expect(outcome.status == 409, "unexpected status \(outcome.status): \(outcome.detail ?? "")")
            #expect(outcome.detail == "Not enough resources for the task!")
            let booking = outcome.booking
            let tightest = (Self.minutes(booking.start)..<Self.minutes(booking.end)).map { minute in
                accepted.filter {
                    $0.booking.node == booking.node && $0.booking.resource == booking.resource
                        && Self.minutes($0.booking.start) <= minute && minute < Self.minutes($0.booking.end)
                }.reduce(Int64(0)) { $0 + $1.booking.amount }
            }.max() ?? 0
            #expect(tightest + booking.amount > capacity, "refused although it fit: \(booking)")
        }
        #expect(try await t.count("SELECT count(*)::int FROM tasks") == accepted.count)
        #expect(try await t.count("SELECT count(*)::int FROM allocations") == accepted.count)
        #expect(try await t.count("SELECT count(*)::int FROM events") == accepted.count * 2)
        for outcome in accepted {
            let id = try #require(outcome.taskID)
            let stored = try await t.db.text(
                "SELECT node_id || '/' || resource_id || '/' || amount FROM allocations WHERE task_id = \(id)", logger: t.logger)
            #expect(stored == "\(outcome.booking.node)/\(outcome.booking.resource)/\(outcome.booking.amount)")
        }
        // A sweep in SQL: running load per (node, resource), ends before starts at equal instants.
        let overbooked = try await t.count(
            """
            WITH points AS (
                SELECT a.node_id, a.resource_id, a.start_time AS at, a.amount AS delta FROM allocations a
                UNION ALL SELECT a.node_id, a.resource_id, a.end_time, -a.amount FROM allocations a),
            load AS (
                SELECT node_id, resource_id, at,
                       sum(delta) OVER (PARTITION BY node_id, resource_id ORDER BY at, delta ROWS UNBOUNDED PRECEDING) AS used
                FROM points)
            SELECT count(*)::int FROM load l JOIN node_resources nr USING (node_id, resource_id) WHERE l.used > nr.amount
            """)
        #expect(overbooked == 0)
    }

    /// 60 bookings: 20 identical one-unit requests for a 4-unit node (exactly 4 can win), plus overlapping and
    /// partially overlapping windows on three more nodes.
    static func workload(nodes: [Int], resource: Int) -> [Booking] {
        var bookings: [Booking] = []
        for _ in 0..<20 {
            bookings.append(Booking(node: nodes[0], resource: resource, amount: 1, start: "2030-01-01 10:00", end: "2030-01-01 11:00"))
        }
        for i in 0..<40 {
            let node = nodes[1 + i % 3]
            let startMinute = (i * 7) % 50
            let length = 20 + (i * 13) % 40
            let start = "2030-01-01 10:\(String(format: "%02d", startMinute))"
            let endMinutes = 10 * 60 + startMinute + length
            let end = "2030-01-01 \(String(format: "%02d", endMinutes / 60)):\(String(format: "%02d", endMinutes % 60))"
            bookings.append(Booking(node: node, resource: resource, amount: Int64(1 + i % 3), start: start, end: end))
        }
        return bookings.shuffled()
    }

    @Test func concurrentBookingsNeverOverbook() async throws {
        try await TestDatabase.withSchema { _, configuration in
            let app = try await buildApplication(configuration: configuration, logger: TestDatabase.logger)
            try await app.test(.live) { client in
                try await withDatabase(configuration, logger: TestDatabase.logger) { db in
                    let t = TestContext(
                        client: client, db: db, tokens: await TokenService(configuration: configuration), configuration: configuration,
                        livePort: client.port)
                    let cluster = try await t.cluster(nodes: 4, capacity: 4)
                    let (_, token) = try await t.userWithToken("racer")
                    let outcomes = try await Self.fire(Self.workload(nodes: cluster.0, resource: cluster.1[0]), ports: [client.port!], token: token)
                    #expect(outcomes.count == 60)
                    #expect(outcomes.filter { $0.booking.node == cluster.0[0] && $0.status == 200 }.count == 4)
                    try await Self.verify(outcomes, t)
                }
            }
        }
    }

    @Test func twoServersOnOneDatabaseNeverOverbook() async throws {
        try await withTwoLiveServers { t, two in
            let cluster = try await t.cluster(nodes: 4, capacity: 4)
            let (_, token) = try await t.userWithToken("racer")
            let outcomes = try await Self.fire(
                Self.workload(nodes: cluster.0, resource: cluster.1[0]), ports: [t.client.port!, two.port!], token: token)
            #expect(outcomes.filter { $0.booking.node == cluster.0[0] && $0.status == 200 }.count == 4)
            try await Self.verify(outcomes, t)
        }
    }
}
