import Foundation
import Hummingbird
import Testing

@testable import Remas

/// New bookings booked together (`BookingService.bookNew`, `BookingBatcher`): each is checked as if booked alone after
/// the ones before it, and answered on its own.
@Suite struct BookingBatchTests {
    static func request(_ name: String, _ start: String, _ end: String, _ allocations: [(Int, Int, Int64)]) -> BookingService.Request {
        let zone = TimeZone(identifier: "Europe/Prague")!
        return BookingService.Request(
            id: nil, name: name, description: name == "described" ? "a description" : nil,
            allocations: allocations.map { (node: $0.0, resource: $0.1, amount: $0.2) },
            start: LocalDateTime.parse(start, zone: zone)!, end: LocalDateTime.parse(end, zone: zone)!)
    }

    static func caller(_ id: Int, _ name: String) -> CurrentUser { CurrentUser(id: id, username: name, isAdmin: false) }

    @Test func aBatchChecksEachBookingAfterTheOnesBeforeIt() async throws {
        try await withApp { t in
            let (nodes, resources) = try await t.cluster(nodes: 2, capacity: 4)
            let (n0, n1, cpu) = (nodes[0], nodes[1], resources[0])
            let (alice, aliceToken) = try await t.userWithToken("alice")
            let bob = try await t.makeUser("bob")
            let limited = try await t.makeUser("limited")
            try await t.makeLimit("cpu-2", amount: 2, user: limited, resource: cpu, nodes: [n1])
            let a = Self.caller(alice, "alice"), b = Self.caller(bob, "bob"), l = Self.caller(limited, "limited")
            let bookings: [(BookingService.Request, CurrentUser)] = [
                (Self.request("first", "2030-01-01 10:00", "2030-01-01 11:00", [(n0, cpu, 3)]), a),
                // 3 + 2 > 4 only because of the booking before it in the batch.
                (Self.request("too-big", "2030-01-01 10:30", "2030-01-01 11:30", [(n0, cpu, 2)]), b),
                (Self.request("fits", "2030-01-01 10:30", "2030-01-01 11:30", [(n0, cpu, 1)]), b),
                (Self.request("no-node", "2030-01-01 10:00", "2030-01-01 11:00", [(n1, cpu, 1), (999_999, cpu, 1)]), a),
                (Self.request("described", "2030-01-01 10:00", "2030-01-01 11:00", [(n1, cpu, 1)]), b),
                // Touches "first" (ends at 11:00) and overlaps "fits": 1 + 1 of 4.
                (Self.request("touching", "2030-01-01 11:00", "2030-01-01 12:00", [(n0, cpu, 1)]), a),
                (Self.request("no-resource", "2030-01-01 10:00", "2030-01-01 11:00", [(n1, 999_999, 1)]), a),
                (Self.request("ghost", "2030-01-01 10:00", "2030-01-01 11:00", [(n1, cpu, 1)]), Self.caller(987_654, "ghost")),
                // The limit of 2 on n1 counts the caller's earlier booking of the batch (1 + 2 > 2), then one of 1 fits.
                (Self.request("limited-1", "2030-01-01 10:00", "2030-01-01 11:00", [(n1, cpu, 1)]), l),
                (Self.request("limited-2", "2030-01-01 10:30", "2030-01-01 11:30", [(n1, cpu, 2)]), l),
                (Self.request("limited-3", "2030-01-01 10:30", "2030-01-01 11:30", [(n1, cpu, 1)]), l),
                (Self.request("over-limit", "2030-01-01 13:00", "2030-01-01 14:00", [(n1, cpu, 3)]), l),
            ]
            let service = BookingService(db: t.db, limitScope: .concurrent, operations: t.configuration.operations)
            let outcomes = try await service.bookNew(bookings.map { BookingService.NewBooking(request: $0.0, caller: $0.1) }, logger: t.logger)
            #expect(outcomes.count == bookings.count)

            func refusal(_ index: Int) -> AppError? {
                if case .failure(let error) = outcomes[index] { return error as? AppError }
                return nil
            }
            #expect(refusal(1)?.detail == "Not enough resources for the task!" && refusal(1)?.status == .conflict)
            #expect(refusal(3)?.detail == "Node with id 999999 not found!" && refusal(3)?.status == .notFound)
            #expect(refusal(6)?.detail == "Node with id \(n1) doesn't have resource with id 999999!")
            #expect(refusal(7)?.detail == "User with id 987654 not found!" && refusal(7)?.status == .notFound)
            let over = "Task resource allocation exeeds user limits! Exceeded resource: cpu-2, Limit: 2"
            #expect(refusal(9)?.detail == over && refusal(9)?.status == .conflict)
            #expect(refusal(11)?.detail == over)

            let acceptedIndices = [0, 2, 4, 5, 8, 10]
            var ids: [Int] = []
            for index in acceptedIndices {
                let booked = try outcomes[index].get()
                ids.append(booked.id)
                let (request, caller) = bookings[index]
                // The answer is the task as stored: the same document as GET /task/{id}.
                let answer = try #require(try JSONSerialization.jsonObject(with: Data(booked.json.utf8)) as? [String: Any])
                #expect(answer["id"] as? Int == booked.id && answer["name"] as? String == request.name)
                #expect(answer["description"] as? String == request.description)
                let stored = try await t.request(.get, "/task/\(booked.id)", token: aliceToken)
                #expect(stored.status == .ok)
                #expect(stored.object["name"] as? String == request.name)
                #expect(stored.object["start_time"] as? String == answer["start_time"] as? String)
                #expect(try await t.count("SELECT owner_id FROM tasks WHERE id = \(booked.id)") == caller.id)
                let startEnd = try await t.count(
                    "SELECT count(*)::int FROM events WHERE task_id = \(booked.id) AND type IN ('task_start', 'task_end')")
                #expect(startEnd == 2)
                #expect(
                    try await t.db.text("SELECT name FROM events WHERE task_id = \(booked.id) AND type = 'task_start'", logger: t.logger)
                        == "\(request.name) start")
                let allocations = try await t.db.text(
                    """
                    SELECT string_agg(node_id || '/' || resource_id || '/' || amount, ',' ORDER BY node_id) FROM allocations
                    WHERE task_id = \(booked.id)
                    """,
                    logger: t.logger)
                #expect(allocations == request.allocations.map { "\($0.node)/\($0.resource)/\($0.amount)" }.joined(separator: ","))
                #expect(booked.changedWindows == [request.start.microseconds...request.end.microseconds])
            }
            #expect(Set(ids).count == acceptedIndices.count)
            // Nothing of the refused ones was written.
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == acceptedIndices.count)
            #expect(try await t.count("SELECT count(*)::int FROM events") == acceptedIndices.count * 2)
        }
    }

    /// A batch in which every booking is refused writes nothing and answers each refusal.
    @Test func aBatchOfRefusalsWritesNothing() async throws {
        try await withApp { t in
            let (nodes, resources) = try await t.cluster(nodes: 1, capacity: 4)
            let alice = try await t.makeUser("alice")
            let a = Self.caller(alice, "alice")
            let service = BookingService(db: t.db, limitScope: .concurrent, operations: t.configuration.operations)
            let outcomes = try await service.bookNew(
                [
                    BookingService.NewBooking(
                        request: Self.request("big", "2030-01-01 10:00", "2030-01-01 11:00", [(nodes[0], resources[0], 5)]), caller: a),
                    BookingService.NewBooking(
                        request: Self.request("nowhere", "2030-01-01 10:00", "2030-01-01 11:00", [(999_999, resources[0], 1)]), caller: a),
                ], logger: t.logger)
            #expect(outcomes.allSatisfy { if case .failure = $0 { true } else { false } })
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == 0)
        }
    }

    /// Many bookings through one batcher with one transaction at a time (so that they queue and share transactions):
    /// exactly the bookings that fit are accepted, each caller gets its own outcome, and no instant is over capacity.
    @Test func theBatcherAnswersEveryBookingOnItsOwn() async throws {
        try await withApp { t in
            let (nodes, resources) = try await t.cluster(nodes: 3, capacity: 4)
            let alice = try await t.makeUser("alice")
            let service = BookingService(db: t.db, limitScope: .concurrent, operations: t.configuration.operations)
            let batcher = BookingBatcher(transactions: 1, largest: 8)
            // 30 one-unit bookings of the same hour: 10 per node, of which 4 fit on each.
            let outcomes = try await withThrowingTaskGroup(of: (Int, Int?).self) { group in
                for i in 0..<30 {
                    group.addTask {
                        let request = Self.request("b\(i)", "2030-01-01 10:00", "2030-01-01 11:00", [(nodes[i % 3], resources[0], 1)])
                        do {
                            let booked = try await batcher.book(
                                BookingService.NewBooking(request: request, caller: Self.caller(alice, "alice")), with: service, logger: t.logger)
                            return (i, booked.id)
                        } catch let error as AppError {
                            #expect(error.detail == "Not enough resources for the task!")
                            return (i, nil)
                        }
                    }
                }
                return try await group.reduce(into: [Int: Int?]()) { $0[$1.0] = $1.1 }
            }
            #expect(outcomes.count == 30)
            for node in 0..<3 {
                let accepted = outcomes.filter { $0.key % 3 == node }.compactMap(\.value)
                #expect(accepted.count == 4)
                for id in accepted {
                    #expect(try await t.count("SELECT node_id FROM allocations WHERE task_id = \(id)") == nodes[node])
                }
            }
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == 12)
        }
    }
}
