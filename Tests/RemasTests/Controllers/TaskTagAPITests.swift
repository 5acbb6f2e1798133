import Foundation
import Hummingbird
import Testing

@testable import Remas

@Suite struct TaskTagAPITests {
    @Test func ownershipRules() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (alice, aliceToken) = try await t.userWithToken("alice")
            let (_, bobToken) = try await t.userWithToken("bob")
            var r = try await t.request(.post, "/task_tag", token: aliceToken, json: #"{"name":"t1","description":"d","user_id":1}"#)
            #expect(r.status == .ok)
            #expect(Set(r.object.keys) == ["id", "name", "description", "user", "tasks"])
            #expect((r.object["user"] as? [String: Any])?["id"] as? Int == alice)
            let tag = try #require(r.object["id"] as? Int)
            // Duplicate names are allowed.
            #expect(try await t.request(.post, "/task_tag", token: aliceToken, json: #"{"name":"t1"}"#).status == .ok)
            r = try await t.request(.post, "/task_tag", token: aliceToken, json: #"{"description":"x"}"#)
            #expect(r.status == .unprocessableContent)
            // Bob cannot read, rename (even claiming alice's id) or delete alice's tag.
            #expect(try await t.request(.get, "/task_tag/\(tag)", token: bobToken).status == .forbidden)
            r = try await t.request(.put, "/task_tag", token: bobToken, json: #"{"id":\#(tag),"name":"hacked","user_id":\#(alice)}"#)
            #expect(r.status == .forbidden)
            #expect(try await t.request(.delete, "/task_tag/\(tag)", token: bobToken).status == .forbidden)
            // The owner may, without sending user_id.
            r = try await t.request(.put, "/task_tag", token: aliceToken, json: #"{"id":\#(tag),"name":"renamed"}"#)
            #expect(r.object["name"] as? String == "renamed")
            #expect(r.object["description"] is NSNull)
            r = try await t.request(.put, "/task_tag", token: admin, json: #"{"id":\#(tag),"name":"by-admin"}"#)
            #expect(r.status == .ok)
            r = try await t.request(.get, "/task_tag/999", token: bobToken)
            #expect(r.detail == "Tag with id 999 not found!")
            r = try await t.request(.put, "/task_tag", token: bobToken, json: #"{"id":999,"name":"x"}"#)
            #expect(r.detail == "Tag with id 999 not found!")
            r = try await t.request(.get, "/task_tag/user/\(alice)", token: aliceToken)
            #expect(r.array.count == 2)
            #expect(try await t.request(.get, "/task_tag/user/\(alice)", token: bobToken).status == .forbidden)
            #expect(try await t.request(.get, "/task_tag", token: bobToken).status == .forbidden)
            #expect(try await t.request(.get, "/task_tag", token: admin).array.count == 2)
            r = try await t.request(.delete, "/task_tag/\(tag)", token: aliceToken)
            #expect(r.detail == "Task tag deleted")
        }
    }

    @Test func groupVisibility() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let shy = try await t.makeGroup("Shy", parent: 3, share: false)
            let (a, aToken) = try await t.userWithToken("a")  // group 3 (shares)
            let (b, _) = try await t.userWithToken("b")
            let (_, shyToken) = try await t.userWithToken("s", groupID: shy)
            try await t.makeTag("ta", user: a)
            try await t.makeTag("tb", user: b)
            var r = try await t.request(.get, "/task_tag/group/3", token: aToken)
            #expect(r.array.count == 2)
            #expect(try await t.request(.get, "/task_tag/group/1", token: aToken).status == .forbidden)
            #expect(try await t.request(.get, "/task_tag/group/\(shy)", token: shyToken).status == .forbidden)
            r = try await t.request(.get, "/task_tag/group/999", token: admin)
            #expect(r.detail == "Group with id 999 not found!")
            r = try await t.request(.get, "/task_tag/group/1", token: admin)
            #expect(r.array.isEmpty)  // direct members only
        }
    }

    @Test func deletedCallerCannotCreate() async throws {
        try await withApp { t in
            let (id, token) = try await t.userWithToken("ghost")
            try await t.db.execute("DELETE FROM users WHERE id = \(id)", logger: t.logger)
            let r = try await t.request(.post, "/task_tag", token: token, json: #"{"name":"x"}"#)
            #expect(r.status == .unauthorized)
        }
    }
}
