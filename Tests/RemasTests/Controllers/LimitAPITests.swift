import Foundation
import Hummingbird
import Testing

@testable import Remas

@Suite struct LimitAPITests {
    /// The original's documented example of effective limits (user, group and ancestor limits on the same pairs), verbatim.
    @Test func effectiveLimitsWorkedExample() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let n1 = try await t.makeNode("n1")
            let n2 = try await t.makeNode("n2")
            let cpu = try await t.makeResource("cpu")
            let mem = try await t.makeResource("mem")
            let g5 = try await t.makeGroup("G5", parent: 1)
            let g4 = try await t.makeGroup("G4", parent: g5)
            let (u, userToken) = try await t.userWithToken("U", groupID: g4)
            let l1 = try await t.makeLimit("L1", amount: 4, group: 1, resource: cpu, nodes: [n1, n2])
            let l2 = try await t.makeLimit("L2", amount: 10, group: 1, resource: cpu, nodes: [n1])
            let l3 = try await t.makeLimit("L3", amount: 100, group: 1, resource: mem, nodes: [n1])
            let l4 = try await t.makeLimit("L4", amount: 6, group: g5, resource: cpu, nodes: [n2])
            let l5 = try await t.makeLimit("L5", amount: 2, group: g4, resource: cpu, nodes: [n1])
            let l6 = try await t.makeLimit("L6", amount: 50, user: u, resource: mem, nodes: [n1])
            // A limit without nodes never applies.
            try await t.makeLimit("L7", amount: 1, group: 1, resource: cpu, nodes: [])

            func effective(_ path: String, _ token: String) async throws -> Set<Int> {
                let r = try await t.request(.get, path, token: token)
                #expect(r.status == .ok, "\(path)")
                return Set(ids(r.array))
            }
            #expect(try await effective("/limit/group_all/1", admin) == [l1, l2, l3])
            #expect(try await effective("/limit/group_all/\(g5)", admin) == [l4, l2, l3])
            #expect(try await effective("/limit/group_all/\(g4)", admin) == [l4, l5, l3])
            #expect(try await effective("/limit/user_all/\(u)", admin) == [l4, l5, l6])
            // Self access, full node_ids in each entry.
            let mine = try await t.request(.get, "/limit/user_all/\(u)", token: userToken)
            let entry = mine.array.first { $0["id"] as? Int == l4 }
            #expect(entry?["node_ids"] as? [Int] == [n2])
            #expect(Set(entry?.keys ?? [:].keys) == ["id", "name", "description", "amount", "user_id", "group_id", "resource_id", "node_ids"])
            // Each entry is the limit's own document, as GET /limit/{id} answers it (the same keys and values).
            for item in mine.array {
                let id = try #require(item["id"] as? Int)
                let single = try await t.request(.get, "/limit/\(id)", token: admin).object
                #expect(NSDictionary(dictionary: item).isEqual(to: single), "limit \(id): \(item) vs \(single)")
            }
            // Non-admin: own direct group only.
            #expect(try await effective("/limit/group_all/\(g4)", userToken) == [l4, l5, l3])
            #expect(try await t.request(.get, "/limit/group_all/\(g5)", token: userToken).status == .forbidden)
            #expect(try await t.request(.get, "/limit/user_all/1", token: userToken).status == .forbidden)
            var r = try await t.request(.get, "/limit/user_all/999", token: admin)
            #expect(r.detail == "User with id 999 not found!")
            r = try await t.request(.get, "/limit/group_all/999", token: admin)
            #expect(r.detail == "Group with id 999 not found!")
        }
    }

    @Test func sameLevelLargestAmountWins() async throws {
        try await withApp { t in
            let n1 = try await t.makeNode("n1")
            let cpu = try await t.makeResource("cpu")
            let (u, _) = try await t.userWithToken("U")
            try await t.makeLimit("small", amount: 2, user: u, resource: cpu, nodes: [n1])
            let big = try await t.makeLimit("big", amount: 8, user: u, resource: cpu, nodes: [n1])
            let r = try await t.request(.get, "/limit/user_all/\(u)", token: try await t.adminToken())
            #expect(ids(r.array) == [big])
        }
    }

    @Test func createUpdateDelete() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let n1 = try await t.makeNode("n1")
            let n2 = try await t.makeNode("n2")
            let cpu = try await t.makeResource("cpu")
            let u = try await t.makeUser("u")
            var r = try await t.request(
                .post, "/limit", token: admin, json: #"{"name":"every-cpu","amount":4,"group_id":1,"resource_id":\#(cpu),"node_ids":[\#(n1),\#(n2),99,\#(n1)]}"#)
            #expect(r.status == .ok)
            #expect(Set(r.object["node_ids"] as? [Int] ?? []) == [n1, n2])
            #expect(r.object["user_id"] is NSNull)
            let id = try #require(r.object["id"] as? Int)
            r = try await t.request(.post, "/limit", token: admin, json: #"{"name":"x","amount":4,"user_id":\#(u),"group_id":1,"resource_id":\#(cpu),"node_ids":[]}"#)
            #expect(r.status == .badRequest)
            #expect(r.detail == "Limit can't have both user_id and group_id specified at the same time!")
            r = try await t.request(.post, "/limit", token: admin, json: #"{"name":"x","amount":4,"user_id":0,"resource_id":\#(cpu),"node_ids":[]}"#)
            #expect(r.detail == "Limit must have either user_id or group_id specified!")
            r = try await t.request(.post, "/limit", token: admin, json: #"{"name":"x","amount":4,"user_id":999,"resource_id":\#(cpu),"node_ids":[]}"#)
            #expect(r.detail == "User with id 999 not found!")
            r = try await t.request(.post, "/limit", token: admin, json: #"{"name":"x","amount":4,"group_id":999,"resource_id":\#(cpu),"node_ids":[]}"#)
            #expect(r.detail == "Group with id 999 not found!")
            r = try await t.request(.post, "/limit", token: admin, json: #"{"name":"x","amount":4,"group_id":1,"resource_id":999,"node_ids":[]}"#)
            #expect(r.detail == "Resource with id 999 not found!")
            r = try await t.request(.post, "/limit", token: admin, json: #"{"name":"x","amount":4,"group_id":1,"resource_id":\#(cpu)}"#)
            #expect(r.status == .unprocessableContent)
            #expect(r.detail == "Field required: body.node_ids")
            #expect(try await t.count("SELECT count(*)::int FROM limits") == 1)

            r = try await t.request(.put, "/limit", token: admin, json: #"{"id":\#(id),"name":"mine","amount":2,"user_id":\#(u),"resource_id":\#(cpu),"node_ids":[\#(n2)]}"#)
            #expect(r.status == .ok)
            #expect(r.object["user_id"] as? Int == u)
            #expect(r.object["group_id"] is NSNull)
            #expect(r.object["node_ids"] as? [Int] == [n2])
            r = try await t.request(.put, "/limit", token: admin, json: #"{"id":\#(id),"name":"m","amount":2,"user_id":\#(u),"group_id":1,"resource_id":\#(cpu),"node_ids":[]}"#)
            #expect(r.status == .badRequest)
            #expect(r.detail == "Limit can't have both user_id and group_id specified at the same time!")
            r = try await t.request(.put, "/limit", token: admin, json: #"{"id":\#(id),"name":"m","amount":2,"resource_id":\#(cpu),"node_ids":[]}"#)
            #expect(r.detail == "Limit must have either user or group specified!")
            r = try await t.request(.put, "/limit", token: admin, json: #"{"name":"m","amount":2,"group_id":1,"resource_id":\#(cpu),"node_ids":[]}"#)
            #expect(r.detail == "Limit with id None not found!")
            r = try await t.request(.put, "/limit", token: admin, json: #"{"id":\#(id),"name":"m","amount":2,"group_id":1,"resource_id":0,"node_ids":[]}"#)
            #expect(r.detail == "Resource with id 0 not found!")
            #expect(try await t.db.text("SELECT name FROM limits WHERE id = \(id)", logger: t.logger) == "mine")

            r = try await t.request(.get, "/limit/\(id)", token: admin)
            #expect(r.object["name"] as? String == "mine")
            r = try await t.request(.get, "/limit/user/\(u)", token: admin)
            #expect(ids(r.array) == [id])
            r = try await t.request(.get, "/limit/user/999", token: admin)
            #expect(r.array.isEmpty && r.status == .ok)
            r = try await t.request(.get, "/limit/group/1", token: admin)
            #expect(r.array.isEmpty)
            r = try await t.request(.get, "/limit/user", token: admin)
            #expect(r.status == .unprocessableContent)
            let (_, user) = try await t.userWithToken("plain")
            #expect(try await t.request(.get, "/limit", token: user).status == .forbidden)
            #expect(try await t.request(.get, "/limit/\(id)", token: user).status == .forbidden)
            r = try await t.request(.delete, "/limit/\(id)", token: admin)
            #expect(r.detail == "Limit deleted")
            r = try await t.request(.delete, "/limit/\(id)", token: admin)
            #expect(r.detail == "Limit with id \(id) not found!")
            #expect(try await t.count("SELECT count(*)::int FROM limit_nodes") == 0)
        }
    }
}
