import Foundation
import Hummingbird
import Testing

@testable import Remas

@Suite struct NodeAPITests {
    @Test func crudAndShape() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (_, user) = try await t.userWithToken("plain")
            var r = try await t.request(.post, "/node", token: admin, json: #"{"name":"n1","resources":[{"id":5}],"id":77}"#)
            #expect(r.status == .ok)
            #expect(Set(r.object.keys) == ["id", "name", "description", "resources"])
            let id = try #require(r.object["id"] as? Int)
            #expect(id != 77)
            #expect(r.object["description"] is NSNull)
            #expect(try await t.request(.post, "/node", token: user, json: #"{"name":"n2"}"#).status == .forbidden)
            r = try await t.request(.post, "/node", token: admin, json: #"{"name":"n1"}"#)
            #expect(r.status == .conflict)
            #expect(r.detail?.hasPrefix("Failed to create node in database due to conflict:\n") == true)
            r = try await t.request(.post, "/node", token: admin, json: #"{"description":"x"}"#)
            #expect(r.status == .unprocessableContent)
            r = try await t.request(.get, "/node/\(id)", token: user)
            #expect(r.object["name"] as? String == "n1")
            r = try await t.request(.get, "/node/999", token: user)
            #expect(r.status == .notFound)
            #expect(r.detail == "Node with id 999 not found!")
            r = try await t.request(.put, "/node", token: admin, json: #"{"id":\#(id),"name":"n1b"}"#)
            #expect(r.object["name"] as? String == "n1b")
            r = try await t.request(.put, "/node", token: admin, json: #"{"id":999,"name":"zz"}"#)
            #expect(r.detail == "Node with id 999 not found!")
            r = try await t.request(.put, "/node", token: admin, json: #"{"name":"zz"}"#)
            #expect(r.detail == "Node with id None not found!")
            try await t.makeNode("other")
            r = try await t.request(.put, "/node", token: admin, json: #"{"id":\#(id),"name":"other"}"#)
            #expect(r.status == .conflict)
            #expect(r.detail?.hasPrefix("Failed to update node in database due to conflict:\n") == true)
            r = try await t.request(.get, "/node", token: user)
            #expect(r.array.map { $0["name"] as? String } == ["n1b", "other"])
        }
    }

    @Test func addAndRemoveResource() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let node = try await t.makeNode("n1")
            let cpu = try await t.makeResource("CPU")
            let mem = try await t.makeResource("MEM", unit: "Bytes (IEC)")
            var r = try await t.request(.post, "/node/add_resource", token: admin, json: #"{"node_id":\#(node),"resource_id":\#(cpu),"amount":32}"#)
            #expect(r.status == .ok)
            r = try await t.request(.post, "/node/add_resource", token: admin, json: #"{"node_id":\#(node),"resource_id":\#(mem),"amount":1073741824}"#)
            let resources = r.object["resources"] as? [[String: Any]] ?? []
            #expect(resources.count == 2)
            #expect(Set(resources[1].keys) == ["id", "name", "description", "unit", "amount"])
            #expect(resources[1]["unit"] as? String == "Bytes (IEC)")
            #expect(resources[1]["amount"] as? Int == 1_073_741_824)
            // Upsert replaces the amount.
            r = try await t.request(.post, "/node/add_resource", token: admin, json: #"{"node_id":\#(node),"resource_id":\#(cpu),"amount":64}"#)
            #expect((r.object["resources"] as? [[String: Any]])?.first?["amount"] as? Int == 64)
            for amount in ["0", "-5"] {
                r = try await t.request(.post, "/node/add_resource", token: admin, json: #"{"node_id":\#(node),"resource_id":\#(cpu),"amount":\#(amount)}"#)
                #expect(r.status == .unprocessableContent)
            }
            r = try await t.request(.post, "/node/add_resource", token: admin, json: #"{"node_id":\#(node),"resource_id":\#(cpu),"amount":99999999999999999999}"#)
            #expect(r.status == .unprocessableContent)
            r = try await t.request(.post, "/node/add_resource", token: admin, json: #"{"node_id":999,"resource_id":\#(cpu),"amount":1}"#)
            #expect(r.detail == "Node with id 999 not found!")
            r = try await t.request(.post, "/node/add_resource", token: admin, json: #"{"node_id":\#(node),"resource_id":999,"amount":1}"#)
            #expect(r.detail == "Resource with id 999 not found!")
            #expect(try await t.db.int("SELECT amount::int FROM node_resources WHERE resource_id = \(cpu)", logger: t.logger) == 64)
            r = try await t.request(.post, "/node/remove_resource", token: admin, json: #"{"node_id":\#(node),"resource_id":\#(mem),"amount":0}"#)
            #expect((r.object["resources"] as? [[String: Any]])?.count == 1)
            r = try await t.request(.post, "/node/remove_resource", token: admin, json: #"{"node_id":\#(node),"resource_id":\#(mem)}"#)
            #expect(r.status == .notFound)
            #expect(r.detail == "Node with id \(node) doesn't have resource with id \(mem)!")
        }
    }

    @Test func concurrentAddResourceIsAtomic() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let node = try await t.makeNode("n1")
            let cpu = try await t.makeResource("CPU")
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for amount in 1...8 {
                    group.addTask {
                        try await t.request(.post, "/node/add_resource", token: admin, json: #"{"node_id":\#(node),"resource_id":\#(cpu),"amount":\#(amount)}"#).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == .ok })
            #expect(try await t.count("SELECT count(*)::int FROM node_resources") == 1)
        }
    }

    @Test func deleteCascadesOrRefuses() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let node = try await t.makeNode("n1")
            let cpu = try await t.makeResource("CPU")
            try await t.provide(node: node, resource: cpu, amount: 4)
            let limit = try await t.makeLimit("l", amount: 2, group: 1, resource: cpu, nodes: [node])
            let owner = try await t.makeUser("owner")
            let task = try await t.db.int(
                """
                INSERT INTO tasks (name, start_time, end_time, owner_id) VALUES ('t', '2030-01-01 10:00', '2030-01-01 11:00', \(owner))
                RETURNING id
                """, logger: t.logger)!
            try await t.db.execute(
                """
                INSERT INTO allocations (task_id, node_id, resource_id, amount, start_time, end_time)
                VALUES (\(task), \(node), \(cpu), 1, '2030-01-01 10:00', '2030-01-01 11:00')
                """, logger: t.logger)
            var r = try await t.request(.delete, "/node/\(node)", token: admin)
            #expect(r.status == .conflict)
            #expect(r.detail?.contains("scheduled or running") == true)
            try await t.move(task: task, start: "2020-01-01 10:00", end: "2020-01-01 11:00")
            r = try await t.request(.delete, "/node/\(node)", token: admin)
            #expect(r.status == .ok)
            #expect(r.detail == "Node deleted")
            #expect(try await t.count("SELECT count(*)::int FROM allocations") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM node_resources") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM limit_nodes") == 0)
            #expect(try await t.db.exists("SELECT 1 FROM limits WHERE id = \(limit)", logger: t.logger))
            r = try await t.request(.delete, "/node/\(node)", token: admin)
            #expect(r.status == .notFound)
        }
    }
}
