import Foundation
import Hummingbird

@testable import Remas

extension TestContext {
    /// The JSON body of `POST /task`.
    static func taskBody(
        id: Int? = nil, name: String = "task", description: String? = nil, start: String, end: String,
        allocations: [(Int, Int, Int64)]
    ) -> String {
        let allocs = allocations.map { #"{"node_id":\#($0.0),"resource_id":\#($0.1),"amount":\#($0.2)}"# }.joined(separator: ",")
        let idText = id.map(String.init) ?? "null"
        let desc = description.map { "\"\($0)\"" } ?? "null"
        return #"{"id":\#(idText),"name":"\#(name)","description":\#(desc),"tag_ids":[],"resource_allocations":[\#(allocs)],"start_time":"\#(start)","end_time":"\#(end)"}"#
    }

    @discardableResult
    func book(
        _ token: String, id: Int? = nil, name: String = "task", start: String, end: String, _ allocations: [(Int, Int, Int64)]
    ) async throws -> TestReply {
        try await self.request(
            .post, "/task", token: token, json: Self.taskBody(id: id, name: name, start: start, end: end, allocations: allocations))
    }

    /// A node with the given resources, returned as (node id, [resource ids]).
    func cluster(nodes: Int, capacity: Int64, resources: [String] = ["cpu"]) async throws -> ([Int], [Int]) {
        var resourceIDs: [Int] = []
        for name in resources { resourceIDs.append(try await self.makeResource(name)) }
        var nodeIDs: [Int] = []
        for i in 0..<nodes {
            let node = try await self.makeNode("node\(i)")
            for r in resourceIDs { try await self.provide(node: node, resource: r, amount: capacity) }
            nodeIDs.append(node)
        }
        return (nodeIDs, resourceIDs)
    }
}

extension TestContext {
    /// `YYYY-MM-DD HH:MM` of the current minute plus `minutes`, on the database's wall clock (the test zone), which is
    /// the clock task status is derived from.
    func wallClock(minutes: Int) async throws -> String {
        try await self.db.text(
            "SELECT to_char(date_trunc('minute', localtimestamp) + make_interval(mins => \(minutes)::int), 'YYYY-MM-DD HH24:MI')",
            logger: self.logger)!
    }

    /// Moves a task and its allocations to other times directly in the database, as if the clock had moved instead:
    /// tests make a task running or finished this way.
    func move(task id: Int, start: String, end: String) async throws {
        try await self.db.execute(
            "UPDATE tasks SET start_time = \(start)::timestamp, end_time = \(end)::timestamp WHERE id = \(id)", logger: self.logger)
        try await self.db.execute(
            "UPDATE allocations SET start_time = \(start)::timestamp, end_time = \(end)::timestamp WHERE task_id = \(id)",
            logger: self.logger)
    }
}
