import Foundation
import Hummingbird
import Testing

@testable import Remas

@Suite struct UserAPITests {
    static let newUser = #"{"name":"U1","surname":"S1","uid":1001,"username":"user1","email":"u1@x","group_id":3,"password":"pw"}"#

    @Test func createReturnsUserFull() async throws {
        try await withApp { t in
            let r = try await t.request(.post, "/user", token: try await t.adminToken(), json: Self.newUser)
            #expect(r.status == .created)
            let o = r.object
            #expect(Set(o.keys) == ["id", "name", "surname", "username", "email", "uid", "group_id", "group", "limits", "tasks", "tags",
                "created_notifications", "notifications"])
            #expect(o["id"] as? Int == 2)
            #expect(o["username"] as? String == "user1")
            #expect(o["uid"] as? Int == 1001)
            let group = o["group"] as? [String: Any]
            #expect(group?["name"] as? String == "Users")
            #expect(group?["parent_id"] as? Int == 1)
            #expect(Set(group?.keys ?? [:].keys) == ["id", "name", "description", "users_share_statistics", "parent_id"])
            #expect((o["limits"] as? [Any])?.isEmpty == true)
            #expect(o["password"] == nil)
            // The stored password is a bcrypt hash of what was sent.
            let login = try await t.request(
                .post, "/authentication/token", headers: [.contentType: "application/x-www-form-urlencoded"], body: "username=user1&password=pw")
            #expect(login.status == .ok)
        }
    }

    @Test func createDefaultsToGroupUsers() async throws {
        try await withApp { t in
            let r = try await t.request(
                .post, "/user", token: try await t.adminToken(), json: #"{"uid":7,"username":"n","email":"n@x","password":"p","group_id":null}"#)
            #expect(r.status == .created)
            #expect(r.object["group_id"] as? Int == 3)
            #expect(r.object["name"] is NSNull)
        }
    }

    @Test func createErrors() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (_, user) = try await t.userWithToken("plain")
            var r = try await t.request(.post, "/user", token: user, json: Self.newUser)
            #expect(r.status == .forbidden)
            #expect(r.detail == "Insufficient permissions!")
            r = try await t.request(.post, "/user", token: admin, json: #"{"uid":7,"username":"n","email":"n@x","password":"p","group_id":99}"#)
            #expect(r.status == .notFound)
            #expect(r.detail == "Group with id 99 not found!")
            r = try await t.request(.post, "/user", token: admin, json: #"{"username":"n","email":"n@x","password":"p"}"#)
            #expect(r.status == .unprocessableContent)
            #expect(r.detail == "Field required: body.uid")
            r = try await t.request(.post, "/user", token: admin, json: #"{"uid":"abc","username":"n","email":"n@x","password":"p"}"#)
            #expect(r.status == .unprocessableContent)
            #expect(r.detail == "Input should be a valid integer: body.uid")
            r = try await t.request(.post, "/user", token: admin, json: #"{"uid":1,"username":5,"email":"n@x","password":"p"}"#)
            #expect(r.status == .unprocessableContent)
            r = try await t.request(.post, "/user", token: admin, json: #"[1,2]"#)
            #expect(r.status == .unprocessableContent)
            // Numeric strings are accepted for ints (lax mode), and relationship-named keys are ignored.
            r = try await t.request(.post, "/user", token: admin, json: #"{"uid":"55","username":"n","email":"n@x","password":"p","group":{"id":1},"tasks":[1]}"#)
            #expect(r.status == .created)
            r = try await t.request(.post, "/user", token: admin, json: #"{"uid":56,"username":"n","email":"other@x","password":"p"}"#)
            #expect(r.status == .conflict)
            #expect(r.detail?.hasPrefix("Failed to create user in database due to conflict:\n") == true)
            #expect(r.detail?.contains("Key (username)=(n) already exists.") == true)
            #expect(try await t.count("SELECT count(*)::int FROM users") == 3)
        }
    }

    @Test func listIsOpenToEveryUser() async throws {
        try await withApp { t in
            let (id, token) = try await t.userWithToken("plain")
            let r = try await t.request(.get, "/user", token: token)
            #expect(r.status == .ok)
            #expect(r.array.map { $0["id"] as? Int } == [1, id])
        }
    }

    @Test func getPermissions() async throws {
        try await withApp { t in
            let (id, token) = try await t.userWithToken("plain")
            #expect(try await t.request(.get, "/user/\(id)", token: token).status == .ok)
            var r = try await t.request(.get, "/user/1", token: token)
            #expect(r.status == .forbidden)
            r = try await t.request(.get, "/user/424242", token: token)
            #expect(r.status == .forbidden)  // permission before existence
            r = try await t.request(.get, "/user/424242", token: try await t.adminToken())
            #expect(r.status == .notFound)
            #expect(r.detail == "User with id 424242 not found!")
            r = try await t.request(.get, "/user/\(id)", token: try await t.adminToken())
            #expect(r.object["username"] as? String == "plain")
            r = try await t.request(.get, "/user/x1", token: token)
            #expect(r.status == .unprocessableContent)
        }
    }

    @Test func updateRules() async throws {
        try await withApp { t in
            let (id, token) = try await t.userWithToken("plain")
            let uid = try await t.db.int("SELECT uid FROM users WHERE id = \(id)", logger: t.logger)!
            // Self-update; username is ignored.
            var r = try await t.request(
                .put, "/user", token: token,
                json: #"{"id":\#(id),"name":"P","surname":null,"username":"renamed","email":"p@new","uid":\#(uid),"group_id":2}"#)
            #expect(r.status == .ok)
            #expect(r.object["username"] as? String == "plain")
            #expect(r.object["email"] as? String == "p@new")
            #expect(r.object["group_id"] as? Int == 3)
            r = try await t.request(.put, "/user", token: token, json: #"{"id":\#(id),"name":"P","surname":null,"username":"x","email":"p@new","uid":5}"#)
            #expect(r.status == .forbidden)
            #expect(r.detail == "Only administrators can change uid!")
            r = try await t.request(.put, "/user", token: token, json: #"{"id":1,"name":"P","surname":null,"username":"x","email":"p@new","uid":0}"#)
            #expect(r.status == .forbidden)
            #expect(r.detail == "Insufficient permissions!")
            r = try await t.request(.put, "/user", token: token, json: #"{"id":\#(id),"name":"P","username":"x","email":"p@new","uid":5}"#)
            #expect(r.status == .unprocessableContent)
            #expect(r.detail == "Field required: body.surname")
            let admin = try await t.adminToken()
            r = try await t.request(.put, "/user", token: admin, json: #"{"id":\#(id),"name":"P","surname":"Q","username":"x","email":"p@new","uid":5}"#)
            #expect(r.status == .ok)
            #expect(r.object["uid"] as? Int == 5)
            r = try await t.request(.put, "/user", token: admin, json: #"{"id":999,"name":"P","surname":"Q","username":"x","email":"p@new","uid":5}"#)
            #expect(r.status == .notFound)
            #expect(r.detail == "User with id 999 not found!")
            r = try await t.request(.put, "/user", token: admin, json: #"{"id":\#(id),"name":"P","surname":"Q","username":"x","email":"administrator@localhost","uid":5}"#)
            #expect(r.status == .conflict)
            #expect(r.detail?.hasPrefix("Failed to update user in database due to conflict:\n") == true)
        }
    }

    @Test func deleteRulesAndCascade() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (id, token) = try await t.userWithToken("plain")
            try await t.db.execute("INSERT INTO resources (name) VALUES ('cpu')", logger: t.logger)
            try await t.db.execute("INSERT INTO limits (name, amount, user_id, resource_id) VALUES ('l', 1, \(id), 1)", logger: t.logger)
            try await t.db.execute("INSERT INTO task_tags (name, user_id) VALUES ('t', \(id))", logger: t.logger)
            #expect(try await t.request(.delete, "/user/\(id)", token: token).status == .forbidden)
            var r = try await t.request(.delete, "/user/1", token: admin)
            #expect(r.status == .forbidden)
            #expect(r.detail == "Cannot delete default user!")
            r = try await t.request(.delete, "/user/777", token: admin)
            #expect(r.status == .notFound)
            r = try await t.request(.delete, "/user/\(id)", token: admin)
            #expect(r.status == .ok)
            #expect(r.detail == "User deleted")
            #expect(try await t.count("SELECT count(*)::int FROM limits") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM task_tags") == 0)
        }
    }
}
