import Foundation
import Hummingbird
import Testing

@testable import Remas

@Suite struct TaskBookingTests {
    @Test func createReturnsTaskFull() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 4)
            let n1 = cluster.0[0]
            let cpu = cluster.1[0]
            let (_, token) = try await t.userWithToken("alice")
            let r = try await t.book(token, name: "job", start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n1, cpu, 2)])
            #expect(r.status == .ok)
            #expect(Set(r.object.keys) == ["id", "name", "description", "start_time", "end_time", "status", "tags", "resources"])
            #expect(r.object["start_time"] as? String == "2030-01-01T10:00:00")
            #expect(r.object["end_time"] as? String == "2030-01-01T12:00:00")
            #expect(r.object["status"] as? String == "scheduled")
            let resource = (r.object["resources"] as? [[String: Any]])?.first
            #expect((resource?["node"] as? [String: Any])?["name"] as? String == "node0")
            #expect(Set((resource?["resource"] as? [String: Any])?.keys ?? [:].keys) == ["id", "name", "description", "unit"])
            #expect(resource?["amount"] as? Int == 2)
            let id = try #require(r.object["id"] as? Int)
            #expect(id > 0)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE task_id = \(id)") == 2)
            #expect(try await t.db.text("SELECT name FROM events WHERE task_id = \(id) AND type = 'task_start'", logger: t.logger) == "job start")
            #expect(try await t.db.text("SELECT description FROM events WHERE task_id = \(id) AND type = 'task_end'", logger: t.logger) == "End of job")
        }
    }

    @Test func idZeroCreatesAndOffsetTimesConvert() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 4)
            let n1 = cluster.0[0]
            let cpu = cluster.1[0]
            let (_, token) = try await t.userWithToken("alice")
            let a = try await t.book(token, id: 0, start: "2030-01-01T09:00:00Z", end: "2030-01-01T10:30:00.250+01:00", [(n1, cpu, 1)])
            #expect(a.status == .ok)
            #expect((a.object["id"] as? Int ?? 0) > 0)
            #expect(a.object["start_time"] as? String == "2030-01-01T10:00:00")  // TZ=Europe/Prague in tests
            #expect(a.object["end_time"] as? String == "2030-01-01T10:30:00.250000")
            let b = try await t.book(token, id: 0, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 1)])
            #expect(b.status == .ok)
            #expect(try await t.count("SELECT count(*)::int FROM tasks WHERE id = 0") == 0)
        }
    }

    @Test func validationErrorsWriteNothing() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 4)
            let n1 = cluster.0[0]
            let cpu = cluster.1[0]
            let (_, token) = try await t.userWithToken("alice")
            var r = try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [])
            #expect(r.status == .badRequest)
            #expect(r.detail == "Task must have at least one resource allocation!")
            r = try await t.book(token, start: "2030-01-01 12:00", end: "2030-01-01 12:00", [(n1, cpu, 1)])
            #expect(r.detail == "Task start time must be before its end time!")
            r = try await t.book(token, start: "2030-01-01 13:00", end: "2030-01-01 12:00", [(n1, cpu, 1)])
            #expect(r.status == .badRequest)
            for amount: Int64 in [0, -3] {
                r = try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n1, cpu, amount)])
                #expect(r.status == .unprocessableContent)
            }
            r = try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n1, cpu, 1), (n1, cpu, 2)])
            #expect(r.status == .unprocessableContent)
            #expect(r.detail?.contains("more than once") == true)
            r = try await t.book(token, start: "2030-01-01 10", end: "2030-01-01 12:00", [(n1, cpu, 1)])
            #expect(r.status == .unprocessableContent)
            #expect(r.detail?.contains("body.start_time") == true)
            r = try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(999, cpu, 1)])
            #expect(r.status == .notFound)
            #expect(r.detail == "Node with id 999 not found!")
            let gpu = try await t.makeResource("gpu")
            r = try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n1, gpu, 1)])
            #expect(r.status == .notFound)
            #expect(r.detail == "Node with id \(n1) doesn't have resource with id \(gpu)!")
            // Missing keys: all seven are required.
            r = try await t.request(.post, "/task", token: token, json: #"{"name":"x","resource_allocations":[],"start_time":"2030-01-01 10:00","end_time":"2030-01-01 11:00","tag_ids":[],"description":null}"#)
            #expect(r.status == .unprocessableContent)
            #expect(r.detail == "Field required: body.id")
            r = try await t.request(.post, "/task", token: token, json: #"{"id":null,"name":"x","description":null,"tag_ids":[],"resource_allocations":[{"node_id":"a","resource_id":1,"amount":1}],"start_time":"2030-01-01 10:00","end_time":"2030-01-01 11:00"}"#)
            #expect(r.status == .unprocessableContent)
            #expect(r.detail?.contains("body.resource_allocations.0.node_id") == true)
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM allocations") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM events") == 0)
        }
    }

    @Test func capacitySweep() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 2, capacity: 4, resources: ["cpu", "mem"])
            let n1 = cluster.0[0], n2 = cluster.0[1]
            let cpu = cluster.1[0], mem = cluster.1[1]
            let (_, token) = try await t.userWithToken("alice")
            // 10-12 uses 3 of 4.
            let first = try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n1, cpu, 3)])
            #expect(first.status == .ok)
            // Overlapping by one minute: 3 + 2 > 4.
            var r = try await t.book(token, start: "2030-01-01 11:59", end: "2030-01-01 13:00", [(n1, cpu, 2)])
            #expect(r.status == .conflict)
            #expect(r.detail == "Not enough resources for the task!")
            // Touching intervals do not conflict.
            #expect(try await t.book(token, start: "2030-01-01 12:00", end: "2030-01-01 13:00", [(n1, cpu, 4)]).status == .ok)
            #expect(try await t.book(token, start: "2030-01-01 08:00", end: "2030-01-01 10:00", [(n1, cpu, 4)]).status == .ok)
            // Other pairs and nodes are independent.
            #expect(try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n1, mem, 4), (n2, cpu, 4)]).status == .ok)
            // Nested: two short tasks inside a long window never overlap each other, so 1 + max(3,3)... fits exactly.
            #expect(try await t.book(token, start: "2030-01-02 10:00", end: "2030-01-02 11:00", [(n2, cpu, 3)]).status == .ok)
            #expect(try await t.book(token, start: "2030-01-02 12:00", end: "2030-01-02 13:00", [(n2, cpu, 3)]).status == .ok)
            #expect(try await t.book(token, start: "2030-01-02 09:00", end: "2030-01-02 14:00", [(n2, cpu, 1)]).status == .ok)
            r = try await t.book(token, start: "2030-01-02 09:00", end: "2030-01-02 14:00", [(n2, cpu, 1)])
            #expect(r.status == .conflict)
            // The whole request fails if one pair does not fit; nothing is written.
            let before = try await t.count("SELECT count(*)::int FROM tasks")
            r = try await t.book(token, start: "2030-01-03 10:00", end: "2030-01-03 11:00", [(n1, cpu, 1), (n2, mem, 5)])
            #expect(r.status == .conflict)
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == before)
            // Finished tasks do not count: a booking in the past next to a finished task fits (and is finished itself).
            try await t.move(task: first.object["id"] as! Int, start: "2020-01-01 10:00", end: "2020-01-01 12:00")
            r = try await t.book(token, start: "2020-01-01 11:00", end: "2020-01-01 11:30", [(n1, cpu, 4)])
            #expect(r.status == .ok)
            #expect(r.object["status"] as? String == "finished")
        }
    }

    @Test func limitsInterplay() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 2, capacity: 16)
            let n1 = cluster.0[0], n2 = cluster.0[1]
            let cpu = cluster.1[0]
            let team = try await t.makeGroup("team", parent: 3)
            let (alice, token) = try await t.userWithToken("alice", groupID: team)
            try await t.makeLimit("everyone-cpu", amount: 8, group: 1, resource: cpu, nodes: [n1, n2])
            try await t.makeLimit("team-cpu", amount: 4, group: team, resource: cpu, nodes: [n1])
            var r = try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 5)])
            #expect(r.status == .conflict)
            #expect(r.detail == "Task resource allocation exeeds user limits! Exceeded resource: team-cpu, Limit: 4")
            #expect(try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 4)]).status == .ok)
            r = try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n2, cpu, 9)])
            #expect(r.detail == "Task resource allocation exeeds user limits! Exceeded resource: everyone-cpu, Limit: 8")
            // A user-level limit overrides the group's even when larger.
            try await t.makeLimit("alice-cpu", amount: 12, user: alice, resource: cpu, nodes: [n1])
            #expect(try await t.book(token, start: "2030-01-01 12:00", end: "2030-01-01 13:00", [(n1, cpu, 12)]).status == .ok)
            // Limits are checked before capacity: a request over both reports the limit.
            r = try await t.book(token, start: "2030-01-01 12:00", end: "2030-01-01 13:00", [(n1, cpu, 13)])
            #expect(r.detail?.hasPrefix("Task resource allocation exeeds user limits!") == true)
        }
    }

    @Test func updateRules() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 4)
            let n1 = cluster.0[0]
            let cpu = cluster.1[0]
            let (_, alice) = try await t.userWithToken("alice")
            let (_, bob) = try await t.userWithToken("bob")
            let created = try await t.book(alice, name: "a", start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n1, cpu, 4)])
            let id = try #require(created.object["id"] as? Int)
            // The update excludes the task itself from the capacity check.
            var r = try await t.book(alice, id: id, name: "a2", start: "2030-01-01 11:00", end: "2030-01-01 13:00", [(n1, cpu, 4)])
            #expect(r.status == .ok)
            #expect(r.object["start_time"] as? String == "2030-01-01T11:00:00")
            #expect(try await t.db.text("SELECT remas_ts(time) FROM events WHERE task_id = \(id) AND type = 'task_start'", logger: t.logger) == "2030-01-01T11:00:00")
            #expect(try await t.db.text("SELECT name FROM events WHERE task_id = \(id) AND type = 'task_start'", logger: t.logger) == "a start")
            r = try await t.book(bob, id: id, start: "2030-01-01 11:00", end: "2030-01-01 13:00", [(n1, cpu, 4)])
            #expect(r.status == .forbidden)
            #expect(r.detail == "Task is not owned by current user!")
            r = try await t.book(alice, id: 9999, start: "2030-01-01 11:00", end: "2030-01-01 13:00", [(n1, cpu, 4)])
            #expect(r.detail == "Task with id 9999 not found!")
            // Running (started an hour ago): the end may move, the start may not.
            let started = try await t.wallClock(minutes: -60)
            try await t.move(task: id, start: started, end: try await t.wallClock(minutes: 60))
            let later = try await t.wallClock(minutes: 120)
            r = try await t.book(alice, id: id, name: "a3", start: started, end: later, [(n1, cpu, 2)])
            #expect(r.status == .ok)
            #expect(r.object["status"] as? String == "running")
            r = try await t.book(alice, id: id, start: try await t.wallClock(minutes: -30), end: later, [(n1, cpu, 2)])
            #expect(r.status == .conflict)
            #expect(r.detail == "Task start time cannot be changed if task has already started!")
            // Finished: only name and description, with identical times and allocations.
            try await t.move(task: id, start: "2020-01-01 11:00", end: "2020-01-01 14:00")
            r = try await t.book(alice, id: id, name: "renamed", start: "2020-01-01 11:00", end: "2020-01-01 14:00", [(n1, cpu, 2)])
            #expect(r.status == .ok)
            #expect(r.object["name"] as? String == "renamed")
            #expect(r.object["status"] as? String == "finished")
            r = try await t.book(alice, id: id, start: "2020-01-01 11:00", end: "2020-01-01 15:00", [(n1, cpu, 2)])
            #expect(r.status == .conflict)
            #expect(r.detail == "Task scheduling time cannot be updated after task has finished!")
            #expect(try await t.db.text("SELECT remas_ts(end_time) FROM tasks WHERE id = \(id)", logger: t.logger) == "2020-01-01T14:00:00")
        }
    }

    @Test func listsPaginationAndPermissions() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 100)
            let n1 = cluster.0[0]
            let cpu = cluster.1[0]
            let (alice, aliceToken) = try await t.userWithToken("alice")
            let (bob, bobToken) = try await t.userWithToken("bob")
            var aliceIDs: [Int] = []
            // Equal start times: the id breaks the tie.
            for i in 0..<5 {
                let r = try await t.book(aliceToken, name: "a\(i)", start: "2030-01-0\(1 + i / 2) 10:00", end: "2030-01-09 10:00", [(n1, cpu, 1)])
                aliceIDs.append(r.object["id"] as! Int)
            }
            let bobTask = try await t.book(bobToken, name: "b", start: "2030-02-01 10:00", end: "2030-02-02 10:00", [(n1, cpu, 1)]).object["id"] as! Int
            try await t.move(task: aliceIDs[4], start: "2020-01-03 10:00", end: "2020-01-09 10:00")
            func page(_ path: String, _ token: String, _ number: Int, _ size: Int) async throws -> TestReply {
                try await t.request(.post, path, token: token, json: #"{"page_number":\#(number),"page_size":\#(size)}"#)
            }
            var r = try await page("/task/user/\(alice)/active", aliceToken, 0, 3)
            #expect(ids(r.array) == Array(aliceIDs[0..<3]))
            #expect(r.array.first?["owner"] == nil)
            r = try await page("/task/user/\(alice)/active", aliceToken, 1, 3)
            #expect(ids(r.array) == [aliceIDs[3]])
            r = try await page("/task/user/\(alice)/finished", aliceToken, 0, 10)
            #expect(ids(r.array) == [aliceIDs[4]])
            r = try await page("/task/user/\(alice)/active", bobToken, 0, 3)
            #expect(r.status == .forbidden)
            r = try await page("/task/active", bobToken, 0, 10)
            #expect(ids(r.array) == Array(aliceIDs[0..<4]) + [bobTask])
            #expect((r.array.first?["owner"] as? [String: Any])?["username"] as? String == "alice")
            r = try await page("/task/active", bobToken, 0, 0)
            #expect(r.array.isEmpty && r.status == .ok)
            r = try await page("/task/finished", bobToken, 0, 10)
            #expect(ids(r.array) == [aliceIDs[4]])
            for (n, s) in [(-1, 10), (0, -1)] {
                r = try await page("/task/active", bobToken, n, s)
                #expect(r.status == .unprocessableContent)
            }
            r = try await t.request(.post, "/task/active", token: bobToken, json: #"{"page_number":0}"#)
            #expect(r.detail == "Field required: body.page_size")
            // GET /task admin only; GET /task/user/{id} self or admin.
            #expect(try await t.request(.get, "/task", token: bobToken).status == .forbidden)
            r = try await t.request(.get, "/task", token: try await t.adminToken())
            #expect(r.array.count == 6)
            #expect(Set(r.array[0].keys) == ["id", "name", "description", "start_time", "end_time", "status", "owner"])
            r = try await t.request(.get, "/task/user/\(bob)", token: bobToken)
            #expect(ids(r.array) == [bobTask])
            #expect(try await t.request(.get, "/task/user/\(alice)", token: bobToken).status == .forbidden)
            r = try await t.request(.get, "/task/user/9999", token: try await t.adminToken())
            #expect(r.array.isEmpty)
            r = try await t.request(.get, "/task/finished", token: bobToken)
            #expect(r.status == .unprocessableContent)
        }
    }

    @Test func getWithGroupSharing() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 100)
            let n1 = cluster.0[0]
            let cpu = cluster.1[0]
            let shy = try await t.makeGroup("shy", parent: 3, share: false)
            let (_, alice) = try await t.userWithToken("alice")
            let (_, bob) = try await t.userWithToken("bob")  // same group (Users shares)
            let (_, carol) = try await t.userWithToken("carol", groupID: shy)
            let (_, dave) = try await t.userWithToken("dave", groupID: shy)
            let aTask = try await t.book(alice, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 1)]).object["id"] as! Int
            let cTask = try await t.book(carol, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 1)]).object["id"] as! Int
            #expect(try await t.request(.get, "/task/\(aTask)", token: alice).status == .ok)
            #expect(try await t.request(.get, "/task/\(aTask)", token: bob).status == .ok)
            #expect(try await t.request(.get, "/task/\(aTask)", token: carol).status == .forbidden)
            #expect(try await t.request(.get, "/task/\(cTask)", token: dave).status == .forbidden)
            #expect(try await t.request(.get, "/task/\(cTask)", token: try await t.adminToken()).status == .ok)
            let r = try await t.request(.get, "/task/9999", token: alice)
            #expect(r.detail == "Task with id 9999 not found!")
        }
    }

    @Test func deleteAndTags() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 100)
            let n1 = cluster.0[0]
            let cpu = cluster.1[0]
            let (alice, aliceToken) = try await t.userWithToken("alice")
            let (bob, bobToken) = try await t.userWithToken("bob")
            let task = try await t.book(aliceToken, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 1)]).object["id"] as! Int
            let tag = try await t.makeTag("mine", user: alice)
            let bobTag = try await t.makeTag("bobs", user: bob)
            func tagCall(_ path: String, _ token: String, _ task: Int?, _ tag: Int?) async throws -> TestReply {
                try await t.request(.post, path, token: token, json: #"{"task_id":\#(task.map(String.init) ?? "null"),"tag_id":\#(tag.map(String.init) ?? "null")}"#)
            }
            var r = try await tagCall("/task/add_tag", aliceToken, task, nil)
            #expect(r.detail == "Tag with id None not found!")
            r = try await tagCall("/task/add_tag", aliceToken, task, bobTag)
            #expect(r.detail == "Can't add tag owned by another user!")
            r = try await tagCall("/task/add_tag", aliceToken, 999, tag)
            #expect(r.detail == "Task with id 999 not found!")
            r = try await tagCall("/task/add_tag", bobToken, task, bobTag)
            #expect(r.detail == "Can't add tag to task owned by another user!")
            r = try await tagCall("/task/add_tag", aliceToken, task, tag)
            #expect(r.status == .ok)
            #expect((r.object["tags"] as? [[String: Any]])?.first?["name"] as? String == "mine")
            #expect(Set((r.object["tags"] as? [[String: Any]])?.first?.keys ?? [:].keys) == ["id", "name", "description", "user_id"])
            r = try await tagCall("/task/add_tag", aliceToken, task, tag)
            #expect(r.status == .conflict)
            #expect(r.detail == "Tag is already assigned to the task!")
            r = try await tagCall("/task/remove_tag", aliceToken, task, tag)
            #expect((r.object["tags"] as? [Any])?.isEmpty == true)
            r = try await tagCall("/task/remove_tag", aliceToken, task, tag)
            #expect(r.status == .notFound)
            #expect(r.detail == "Tag is not assigned to the task!")
            r = try await tagCall("/task/remove_tag", bobToken, task, bobTag)
            #expect(r.detail == "Can't remove tag from task owned by another user!")
            _ = try await tagCall("/task/add_tag", aliceToken, task, tag)
            // Delete: owner only, admins refused too.
            r = try await t.request(.delete, "/task/\(task)", token: bobToken)
            #expect(r.detail == "Can't remove task owned by another user!")
            r = try await t.request(.delete, "/task/\(task)", token: try await t.adminToken())
            #expect(r.status == .forbidden)
            r = try await t.request(.delete, "/task/\(task)", token: aliceToken)
            #expect(r.detail == "Task deleted")
            #expect(try await t.count("SELECT count(*)::int FROM allocations") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM events") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM task_tag_links") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM task_tags") == 2)
            r = try await t.request(.delete, "/task/\(task)", token: aliceToken)
            #expect(r.detail == "Task with id \(task) not found!")
        }
    }
}
