import Foundation
import Hummingbird
import Testing

@testable import Remas

@Suite struct GroupAPITests {
    @Test func listAndShape() async throws {
        try await withApp { t in
            let r = try await t.request(.get, "/group", token: try await t.adminToken())
            #expect(r.status == .ok)
            #expect(r.array.map { $0["name"] as? String } == ["Everyone", "Administrators", "Users"])
            let admins = r.array[1]
            #expect(Set(admins.keys) == ["id", "name", "description", "users_share_statistics", "parent", "children", "members", "limits", "notifications"])
            #expect((admins["parent"] as? [String: Any])?["id"] as? Int == 1)
            #expect(((admins["members"] as? [[String: Any]])?.first)?["username"] as? String == "administrator")
            #expect((r.array[0]["children"] as? [[String: Any]])?.map { $0["id"] as? Int } == [2, 3])
            let (_, user) = try await t.userWithToken("plain")
            #expect(try await t.request(.get, "/group", token: user).status == .forbidden)
        }
    }

    @Test func getOne() async throws {
        try await withApp { t in
            let (_, user) = try await t.userWithToken("plain")
            #expect(try await t.request(.get, "/group/3", token: user).status == .ok)
            #expect(try await t.request(.get, "/group/2", token: user).status == .forbidden)
            #expect(try await t.request(.get, "/group/1", token: user).status == .forbidden)
            let r = try await t.request(.get, "/group/99", token: try await t.adminToken())
            #expect(r.status == .notFound)
            #expect(r.detail == "Group with id 99 not found!")
        }
    }

    @Test func create() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            var r = try await t.request(.post, "/group", token: admin, json: #"{"name":"G4","description":"d","users_share_statistics":false,"parent_id":3}"#)
            #expect(r.status == .created)
            #expect((r.object["parent"] as? [String: Any])?["name"] as? String == "Users")
            #expect(r.object["users_share_statistics"] as? Bool == false)
            #expect(r.object["parent_id"] == nil)
            r = try await t.request(.post, "/group", token: admin, json: #"{"name":"G5","users_share_statistics":null}"#)
            #expect(r.object["users_share_statistics"] as? Bool == true)
            #expect(r.object["parent"] is NSNull)
            r = try await t.request(.post, "/group", token: admin, json: #"{"name":"None"}"#)
            #expect(r.status == .badRequest)
            #expect(r.detail == "'None' is reserved keyword that cannot be used as group name!")
            r = try await t.request(.post, "/group", token: admin, json: #"{"name":"G4"}"#)
            #expect(r.status == .conflict)
            #expect(r.detail?.hasPrefix("Failed to create group in database due to conflict:\n") == true)
            r = try await t.request(.post, "/group", token: admin, json: #"{"name":"G6","parent_id":999}"#)
            #expect(r.status == .conflict)
            #expect(r.detail?.contains("is not present in table \"groups\"") == true)
            r = try await t.request(.post, "/group", token: admin, json: #"{"description":"x"}"#)
            #expect(r.status == .unprocessableContent)
            #expect(r.detail == "Field required: body.name")
            let (_, user) = try await t.userWithToken("plain")
            #expect(try await t.request(.post, "/group", token: user, json: #"{"name":"G7"}"#).status == .forbidden)
            #expect(try await t.count("SELECT count(*)::int FROM groups") == 5)
        }
    }

    @Test func updateIsFullReplacement() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let g = try await t.makeGroup("G", parent: 3, share: false)
            var r = try await t.request(.put, "/group", token: admin, json: #"{"id":\#(g),"name":"G2","parent_id":1}"#)
            #expect(r.status == .ok)
            #expect(r.object["name"] as? String == "G2")
            #expect(r.object["users_share_statistics"] as? Bool == true)
            #expect((r.object["parent"] as? [String: Any])?["id"] as? Int == 3)  // parent_id ignored
            r = try await t.request(.put, "/group", token: admin, json: #"{"id":555,"name":"x"}"#)
            #expect(r.status == .notFound)
            #expect(r.detail == "Group with id 555 not found!")
            r = try await t.request(.put, "/group", token: admin, json: #"{"name":"x"}"#)
            #expect(r.detail == "Group with id None not found!")
            r = try await t.request(.put, "/group", token: admin, json: #"{"id":\#(g),"name":"None"}"#)
            #expect(r.status == .badRequest)
            r = try await t.request(.put, "/group", token: admin, json: #"{"id":\#(g),"name":"Users"}"#)
            #expect(r.status == .conflict)
            #expect(r.detail?.hasPrefix("Failed to update group in database due to conflict:\n") == true)
            r = try await t.request(.put, "/group", token: admin, json: #"{"id":2,"name":"Admins"}"#)
            #expect(r.status == .ok)
        }
    }

    @Test func deleteMovesMembersAndChildren() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let mid = try await t.makeGroup("Mid", parent: 3)
            let leaf = try await t.makeGroup("Leaf", parent: mid)
            let member = try await t.makeUser("m", groupID: mid)
            try await t.db.execute("INSERT INTO resources (name) VALUES ('cpu')", logger: t.logger)
            try await t.db.execute("INSERT INTO limits (name, amount, group_id, resource_id) VALUES ('gl', 1, \(mid), 1)", logger: t.logger)
            var r = try await t.request(.delete, "/group/3", token: admin)
            #expect(r.status == .forbidden)
            #expect(r.detail == "Cannot delete default groups!")
            r = try await t.request(.delete, "/group/-4", token: admin)
            #expect(r.status == .forbidden)
            r = try await t.request(.delete, "/group/999", token: admin)
            #expect(r.status == .notFound)
            r = try await t.request(.delete, "/group/\(mid)", token: admin)
            #expect(r.status == .ok)
            #expect(r.detail == "Group deleted")
            #expect(try await t.db.int("SELECT group_id FROM users WHERE id = \(member)", logger: t.logger) == 3)
            #expect(try await t.db.int("SELECT parent_id FROM groups WHERE id = \(leaf)", logger: t.logger) == 3)
            #expect(try await t.count("SELECT count(*)::int FROM limits") == 0)
            // A parentless group's members fall back to Users.
            let root = try await t.makeGroup("Root", parent: nil)
            let orphan = try await t.makeUser("o", groupID: root)
            #expect(try await t.request(.delete, "/group/\(root)", token: admin).status == .ok)
            #expect(try await t.db.int("SELECT group_id FROM users WHERE id = \(orphan)", logger: t.logger) == 3)
        }
    }

    @Test func addUser() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let user = try await t.makeUser("plain")
            var r = try await t.request(.post, "/group/add_user", token: admin, json: #"{"user_id":\#(user),"group_id":99}"#)
            #expect(r.detail == "Group with id 99 not found!")
            r = try await t.request(.post, "/group/add_user", token: admin, json: #"{"user_id":999,"group_id":2}"#)
            #expect(r.detail == "User with id 999 not found!")
            r = try await t.request(.post, "/group/add_user", token: admin, json: #"{"user_id":\#(user),"group_id":2}"#)
            #expect(r.status == .ok)
            #expect((r.object["members"] as? [[String: Any]])?.map { $0["id"] as? Int } == [1, user])
        }
    }

    @Test func changeParent() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let a = try await t.makeGroup("A", parent: 3)
            let b = try await t.makeGroup("B", parent: a)
            let c = try await t.makeGroup("C", parent: b)
            var r = try await t.request(.post, "/group/change_parent", token: admin, json: #"{"group_id":\#(a),"parent_id":\#(a)}"#)
            #expect(r.status == .badRequest)
            #expect(r.detail == "Cannot change group parent to itself!")
            r = try await t.request(.post, "/group/change_parent", token: admin, json: #"{"group_id":999,"parent_id":1}"#)
            #expect(r.detail == "Group with id 999 not found!")
            r = try await t.request(.post, "/group/change_parent", token: admin, json: #"{"group_id":\#(a),"parent_id":998}"#)
            #expect(r.detail == "Group with id 998 not found!")
            r = try await t.request(.post, "/group/change_parent", token: admin, json: #"{"group_id":3,"parent_id":2}"#)
            #expect(r.status == .forbidden)
            #expect(r.detail == "Cannot change default groups!")
            r = try await t.request(.post, "/group/change_parent", token: admin, json: #"{"group_id":\#(a),"parent_id":\#(c)}"#)
            #expect(r.status == .badRequest)
            #expect(r.detail == "Cannot change group parent to its own subgroup!")
            #expect(try await t.db.int("SELECT parent_id FROM groups WHERE id = \(a)", logger: t.logger) == 3)
            r = try await t.request(.post, "/group/change_parent", token: admin, json: #"{"group_id":\#(a),"parent_id":null}"#)
            #expect(r.status == .unprocessableContent)
            r = try await t.request(.post, "/group/change_parent", token: admin, json: #"{"group_id":\#(c),"parent_id":2}"#)
            #expect(r.status == .ok)
            #expect((r.object["parent"] as? [String: Any])?["id"] as? Int == 2)
        }
    }

    @Test func concurrentReparentingNeverBuildsACycle() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let a = try await t.makeGroup("A", parent: 3)
            let b = try await t.makeGroup("B", parent: 3)
            // A under B and B under A at the same time: at most one may win.
            async let first = t.request(.post, "/group/change_parent", token: admin, json: #"{"group_id":\#(a),"parent_id":\#(b)}"#)
            async let second = t.request(.post, "/group/change_parent", token: admin, json: #"{"group_id":\#(b),"parent_id":\#(a)}"#)
            let statuses = [try await first.status, try await second.status]
            #expect(statuses.filter { $0 == .ok }.count == 1)
            #expect(statuses.contains(.badRequest))
        }
    }
}
