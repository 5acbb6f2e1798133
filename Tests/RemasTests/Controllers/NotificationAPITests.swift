import Foundation
import Hummingbird
import Testing

@testable import Remas

@Suite struct NotificationAPITests {
    static func body(_ fields: String) -> String { "{\(fields)}" }

    @Test func createValidatesLenientBody() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (alice, aliceToken) = try await t.userWithToken("alice")
            // Admin-created: no owner. time_offset as a number, a numeric string or "" (= 0 for task types).
            var r = try await t.request(.post, "/notification", token: admin, json: #"{"name":"n1","type":"task_start","time_offset":300,"notification_template":"hi"}"#)
            #expect(r.status == .ok)
            #expect(Set(r.object.keys) == ["id", "name", "description", "time_offset", "notification_template", "type", "default_amount", "owner_id", "resource_id"])
            #expect(r.object["owner_id"] is NSNull)
            #expect(r.object["time_offset"] as? Int == 300)
            r = try await t.request(.post, "/notification", token: aliceToken, json: #"{"name":"n2","type":"task_end","time_offset":"-600","notification_template":"bye","owner_id":1,"id":77}"#)
            #expect(r.object["owner_id"] as? Int == alice)
            #expect(r.object["time_offset"] as? Int == -600)
            #expect(r.object["id"] as? Int != 77)
            r = try await t.request(.post, "/notification", token: aliceToken, json: #"{"name":"n3","type":"task_start","time_offset":"","notification_template":"x"}"#)
            #expect(r.object["time_offset"] as? Int == 0)
            // A missing type means "other"; "" elsewhere is null.
            r = try await t.request(.post, "/notification", token: aliceToken, json: #"{"name":"n4","time_offset":"","default_amount":""}"#)
            #expect(r.object["type"] as? String == "other")
            #expect(r.object["time_offset"] is NSNull)
            // Anything else for an integer is a 422 with a string detail, and writes nothing.
            let before = try await t.count("SELECT count(*)::int FROM notifications")
            for bad in [#""abc""#, "true", "1.5", "[1]", #"{"a":1}"#, "99999999999"] {
                r = try await t.request(.post, "/notification", token: aliceToken, json: #"{"name":"bad","type":"task_start","time_offset":\#(bad),"notification_template":"x"}"#)
                #expect(r.status == .unprocessableContent, "time_offset \(bad)")
                #expect(r.detail?.contains("body.time_offset") == true)
            }
            r = try await t.request(.post, "/notification", token: aliceToken, json: #"{"type":"other"}"#)
            #expect(r.status == .unprocessableContent)
            #expect(r.detail == "Field required: body.name")
            r = try await t.request(.post, "/notification", token: aliceToken, json: "[1]")
            #expect(r.status == .unprocessableContent)
            #expect(try await t.count("SELECT count(*)::int FROM notifications") == before)
            // Type and per-type checks.
            r = try await t.request(.post, "/notification", token: aliceToken, json: #"{"name":"x","type":"sms"}"#)
            #expect(r.status == .badRequest)
            #expect(r.detail == "Invalid notification type sms!")
            r = try await t.request(.post, "/notification", token: aliceToken, json: #"{"name":"x","type":"task_start","time_offset":0}"#)
            #expect(r.detail == "Notification template must be set for task notifications!")
            r = try await t.request(.post, "/notification", token: aliceToken, json: #"{"name":"x","type":"task_end","time_offset":null,"notification_template":"t"}"#)
            #expect(r.status == .badRequest)
            #expect(r.detail == "Time offset must be set for task notifications!")
            let cpu = try await t.makeResource("cpu")
            let g = "grafana_resource_exceedance_task"
            r = try await t.request(.post, "/notification", token: admin, json: #"{"name":"x","type":"\#(g)","default_amount":0,"resource_id":\#(cpu),"notification_template":"{}"}"#)
            #expect(r.detail == "Default amount is required for grafana alerts!")
            r = try await t.request(.post, "/notification", token: admin, json: #"{"name":"x","type":"\#(g)","default_amount":"4","notification_template":"{}"}"#)
            #expect(r.detail == "Resource must be set for grafana alerts!")
            r = try await t.request(.post, "/notification", token: admin, json: #"{"name":"x","type":"\#(g)","default_amount":4,"resource_id":\#(cpu),"notification_template":""}"#)
            #expect(r.detail == "Notification template must be set for grafana alerts!")
            r = try await t.request(.post, "/notification", token: admin, json: #"{"name":"x","type":"\#(g)","default_amount":4,"resource_id":\#(cpu),"notification_template":"{}"}"#)
            #expect(r.status == .ok)
            #expect(r.object["default_amount"] as? Int == 4)
            // Integrity errors are the original's 409 text.
            r = try await t.request(.post, "/notification", token: admin, json: #"{"name":"n1","type":"other"}"#)
            #expect(r.status == .conflict)
            #expect(r.detail?.hasPrefix("Failed to create notification in database due to conflict:\n") == true)
            r = try await t.request(.post, "/notification", token: admin, json: #"{"name":"y","type":"\#(g)","default_amount":4,"resource_id":9999,"notification_template":"{}"}"#)
            #expect(r.status == .conflict)
        }
    }

    @Test func readUpdateDeletePermissions() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (alice, aliceToken) = try await t.userWithToken("alice")
            let (bob, bobToken) = try await t.userWithToken("bob")
            let own = try #require(try await t.request(.post, "/notification", token: aliceToken, json: #"{"name":"mine","type":"other"}"#).object["id"] as? Int)
            let adminOwned = try await t.makeNotification("global")
            // GET /notification (all) and /notification/{id}: admins only.
            #expect(try await t.request(.get, "/notification", token: aliceToken).status == .forbidden)
            var r = try await t.request(.get, "/notification", token: admin)
            #expect(ids(r.array) == [own, adminOwned])
            #expect(try await t.request(.get, "/notification/\(own)", token: aliceToken).status == .forbidden)
            #expect(try await t.request(.get, "/notification/\(own)", token: admin).object["name"] as? String == "mine")
            r = try await t.request(.get, "/notification/999", token: admin)
            #expect(r.status == .notFound)
            #expect(r.detail == "Notification with id 999 not found!")
            #expect(try await t.request(.get, "/notification/abc", token: admin).status == .unprocessableContent)
            // /notification/owner: self or admin; 403 before 404; admin-owned never listed.
            r = try await t.request(.get, "/notification/owner/\(alice)", token: aliceToken)
            #expect(ids(r.array) == [own])
            #expect(try await t.request(.get, "/notification/owner/\(alice)", token: bobToken).status == .forbidden)
            #expect(try await t.request(.get, "/notification/owner/9999", token: bobToken).status == .forbidden)
            r = try await t.request(.get, "/notification/owner/9999", token: admin)
            #expect(r.detail == "User with id 9999 not found!")
            #expect(try await t.request(.get, "/notification/owner/1", token: admin).array.isEmpty)
            // PUT /notification: 404 (a missing id prints None), then 403, then the type.
            r = try await t.request(.put, "/notification", token: aliceToken, json: #"{"name":"z","type":"other"}"#)
            #expect(r.detail == "Notification with id None not found!")
            r = try await t.request(.put, "/notification", token: aliceToken, json: #"{"id":999,"name":"z","type":"other"}"#)
            #expect(r.detail == "Notification with id 999 not found!")
            r = try await t.request(.put, "/notification", token: bobToken, json: #"{"id":\#(own),"name":"z","type":"other"}"#)
            #expect(r.status == .forbidden)
            #expect(r.detail == "Can't update notification owned by another user!")
            r = try await t.request(.put, "/notification", token: aliceToken, json: #"{"id":\#(own),"name":"z","type":"carrier pigeon"}"#)
            #expect(r.status == .badRequest)
            #expect(r.detail == "Invalid notification type carrier pigeon!")
            r = try await t.request(.put, "/notification", token: aliceToken, json: #"{"id":\#(own),"name":"z","type":"task_start","time_offset":"12"}"#)
            #expect(r.detail == "Notification template must be set for task notifications!")
            #expect(try await t.db.text("SELECT name FROM notifications WHERE id = \(own)", logger: t.logger) == "mine")
            r = try await t.request(.put, "/notification", token: aliceToken, json: #"{"id":\#(own),"name":"z","type":"task_start","time_offset":"12","notification_template":"t"}"#)
            #expect(r.status == .ok)
            #expect(r.object["time_offset"] as? Int == 12)
            #expect(r.object["owner_id"] as? Int == alice)
            r = try await t.request(.put, "/notification", token: admin, json: #"{"id":\#(own),"name":"global","type":"other"}"#)
            #expect(r.status == .conflict)
            #expect(r.detail?.hasPrefix("Failed to update notification in database due to conflict:\n") == true)
            // DELETE /notification.
            r = try await t.request(.delete, "/notification/\(own)", token: bobToken)
            #expect(r.detail == "Can't remove notification owned by another user!")
            #expect(try await t.request(.delete, "/notification/999", token: bobToken).detail == "Notification with id 999 not found!")
            r = try await t.request(.delete, "/notification/\(own)", token: aliceToken)
            #expect(r.status == .ok)
            #expect(r.detail == "Notification deleted")
            #expect(try await t.request(.delete, "/notification/\(adminOwned)", token: admin).status == .ok)
            _ = bob
        }
    }

    @Test func assignmentChecksAndLists() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (alice, aliceToken) = try await t.userWithToken("alice")
            let (bob, _) = try await t.userWithToken("bob")
            let own = try #require(try await t.request(.post, "/notification", token: aliceToken, json: #"{"name":"mine","type":"other"}"#).object["id"] as? Int)
            let global = try await t.makeNotification("global")
            func call(_ token: String, _ body: String, unassign: Bool = false) async throws -> TestReply {
                try await t.request(.post, unassign ? "/notification/unassign" : "/notification/assign", token: token, json: body)
            }
            var r = try await call(aliceToken, #"{"notification_id":\#(own)}"#)
            #expect(r.status == .badRequest)
            #expect(r.detail == "Either user_id or group_id must be specified!")
            r = try await call(aliceToken, #"{"notification_id":999,"user_id":\#(alice)}"#)
            #expect(r.detail == "Notification with id 999 not found!")
            r = try await call(aliceToken, #"{"notification_id":\#(own),"group_id":3}"#)
            #expect(r.detail == "Can't assign/unassign notification to/from group! Insufficient permissions!")
            r = try await call(aliceToken, #"{"notification_id":\#(own),"user_id":\#(bob)}"#)
            #expect(r.detail == "Can't assign/unassign notification to/from another user!")
            r = try await call(aliceToken, #"{"notification_id":\#(global),"user_id":\#(alice)}"#)
            #expect(r.detail == "Can't assign/unassign notification owned by another user!")
            r = try await call(admin, #"{"notification_id":\#(global),"user_id":9999}"#)
            #expect(r.detail == "User with id 9999 not found!")
            r = try await call(admin, #"{"notification_id":\#(global),"group_id":9999}"#)
            #expect(r.detail == "Group with id 9999 not found!")
            r = try await call(admin, #"{"notification_id":"x","user_id":1}"#)
            #expect(r.status == .unprocessableContent)
            // The owner assigns to self; repeating it is a 200 no-op; the response is the notification.
            for _ in 0..<2 {
                r = try await call(aliceToken, #"{"notification_id":\#(own),"user_id":\#(alice)}"#)
                #expect(r.status == .ok)
                #expect(r.object["id"] as? Int == own)
            }
            #expect(try await t.count("SELECT count(*)::int FROM notification_users") == 1)
            // An admin may send both ids.
            r = try await call(admin, #"{"notification_id":\#(global),"user_id":\#(alice),"group_id":3}"#)
            #expect(r.status == .ok)
            // /notification/user: direct first (explicit nulls), then the group chain up to the root.
            r = try await t.request(.get, "/notification/user/\(alice)", token: aliceToken)
            #expect(r.array.count == 3)
            #expect(r.array[0]["group_id"] is NSNull && r.array[0]["group_name"] is NSNull)
            #expect(ids(r.array[0]["notifications"] as? [[String: Any]] ?? []) == [own, global])
            #expect(r.array[1]["group_id"] as? Int == 3 && r.array[1]["group_name"] as? String == "Users")
            #expect(ids(r.array[1]["notifications"] as? [[String: Any]] ?? []) == [global])
            #expect(r.array[2]["group_id"] as? Int == 1)
            #expect(try await t.request(.get, "/notification/user/\(alice)", token: try await t.token(bob, "bob", admin: false)).status == .forbidden)
            #expect(try await t.request(.get, "/notification/user/9999", token: aliceToken).detail == "User with id 9999 not found!")
            // /notification/group: members of exactly that group or admins; 404 first.
            r = try await t.request(.get, "/notification/group/3", token: aliceToken)
            #expect(r.array.map { $0["group_id"] as? Int } == [3, 1])
            #expect(try await t.request(.get, "/notification/group/1", token: aliceToken).status == .forbidden)
            #expect(try await t.request(.get, "/notification/group/999", token: aliceToken).detail == "Group with id 999 not found!")
            // The lists inside /user/{id} and /group/{id}.
            r = try await t.request(.get, "/user/\(alice)", token: aliceToken)
            #expect(ids(r.object["notifications"] as? [[String: Any]] ?? []) == [own, global])
            #expect(ids(r.object["created_notifications"] as? [[String: Any]] ?? []) == [own])
            r = try await t.request(.get, "/group/3", token: admin)
            #expect(ids(r.object["notifications"] as? [[String: Any]] ?? []) == [global])
            // Unassigning something not assigned is a no-op.
            r = try await call(admin, #"{"notification_id":\#(global),"user_id":\#(bob)}"#, unassign: true)
            #expect(r.status == .ok)
            r = try await call(admin, #"{"notification_id":\#(global),"group_id":3}"#, unassign: true)
            #expect(try await t.count("SELECT count(*)::int FROM notification_groups") == 0)
        }
    }

    /// Everyone → L1 → L2 → L3: a notification assigned high up reaches users below; unassigning removes reminders
    /// only of users who no longer receive it any other way.
    @Test func inheritanceThroughThreeLevels() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 100)
            let (n1, cpu) = (cluster.0[0], cluster.1[0])
            let l1 = try await t.makeGroup("L1", parent: 1)
            let l2 = try await t.makeGroup("L2", parent: l1)
            let l3 = try await t.makeGroup("L3", parent: l2)
            let (deep, deepToken) = try await t.userWithToken("deep", groupID: l3)
            let (mid, midToken) = try await t.userWithToken("mid", groupID: l2)
            let (_, outsideToken) = try await t.userWithToken("outside")
            let n = try await t.makeNotification("reminder", offset: "600")
            let deepTask = try #require(try await t.book(deepToken, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 1)]).object["id"] as? Int)
            let midTask = try #require(try await t.book(midToken, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 1)]).object["id"] as? Int)
            let outsideTask = try #require(try await t.book(outsideToken, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 1)]).object["id"] as? Int)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE notification_id IS NOT NULL") == 0)
            // Assigned to L1: both members below get a reminder 10 minutes before start; the outsider does not.
            #expect(try await t.assign(n, group: l1).status == .ok)
            #expect(try await t.db.text("SELECT remas_ts(time) FROM events WHERE task_id = \(deepTask) AND notification_id = \(n)", logger: t.logger) == "2030-01-01T09:50:00")
            #expect(try await t.reminder(task: midTask, notification: n)?.0 == "pending")
            #expect(try await t.reminder(task: outsideTask, notification: n) == nil)
            #expect(try await t.db.text("SELECT name FROM events WHERE task_id = \(deepTask) AND notification_id = \(n)", logger: t.logger) == "Task: task, notification: reminder")
            let r = try await t.request(.get, "/notification/user/\(deep)", token: deepToken)
            #expect(r.array.map { $0["group_id"] as? Int } == [nil, l3, l2, l1, 1])
            #expect(ids(r.array[3]["notifications"] as? [[String: Any]] ?? []) == [n])
            // Also assigned directly to deep; unassigning from L1 keeps deep's reminder and removes mid's.
            #expect(try await t.assign(n, user: deep).status == .ok)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE notification_id = \(n)") == 2)
            #expect(try await t.assign(n, group: l1, unassign: true).status == .ok)
            #expect(try await t.reminder(task: deepTask, notification: n)?.0 == "pending")
            #expect(try await t.reminder(task: midTask, notification: n) == nil)
            // Through L2 as well: deep still receives it after the direct link goes.
            #expect(try await t.assign(n, group: l2).status == .ok)
            #expect(try await t.assign(n, user: deep, unassign: true).status == .ok)
            #expect(try await t.reminder(task: deepTask, notification: n)?.0 == "pending")
            #expect(try await t.reminder(task: midTask, notification: n)?.0 == "pending")
            // Moving a user out of the subtree removes their reminder (the original left it).
            #expect(try await t.request(.post, "/group/add_user", token: try await t.adminToken(), json: #"{"user_id":\#(mid),"group_id":3}"#).status == .ok)
            #expect(try await t.reminder(task: midTask, notification: n) == nil)
            #expect(try await t.assign(n, group: l2, unassign: true).status == .ok)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE notification_id = \(n)") == 0)
        }
    }

    @Test func remindersFollowTasksAndNotifications() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 100)
            let (n1, cpu) = (cluster.0[0], cluster.1[0])
            let (user, token) = try await t.userWithToken("alice")
            let start = try await t.makeNotification("start", type: "task_start", offset: "\"300\"")
            let end = try await t.makeNotification("end", type: "task_end", offset: "-60")
            #expect(try await t.assign(start, user: user).status == .ok)
            #expect(try await t.assign(end, user: user).status == .ok)
            func due(_ task: Int, _ n: Int) async throws -> String? {
                try await t.db.text("SELECT remas_ts(time) FROM events WHERE task_id = \(task) AND notification_id = \(n)", logger: t.logger)
            }
            // Created with the task.
            let task = try #require(try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n1, cpu, 1)]).object["id"] as? Int)
            #expect(try await due(task, start) == "2030-01-01T09:55:00")
            #expect(try await due(task, end) == "2030-01-01T12:01:00")
            // Moved with the task.
            #expect(try await t.book(token, id: task, start: "2030-01-01 11:00", end: "2030-01-01 13:00", [(n1, cpu, 1)]).status == .ok)
            #expect(try await due(task, start) == "2030-01-01T10:55:00")
            #expect(try await due(task, end) == "2030-01-01T13:01:00")
            // A sent reminder is not sent again when the task moves earlier; it is when its due time moves later.
            try await t.db.execute("UPDATE events SET state = 'sent', attempts = 1 WHERE task_id = \(task) AND notification_id = \(start)", logger: t.logger)
            #expect(try await t.book(token, id: task, start: "2030-01-01 10:30", end: "2030-01-01 13:00", [(n1, cpu, 1)]).status == .ok)
            #expect(try await t.reminder(task: task, notification: start)! == ("sent", 1))
            #expect(try await t.book(token, id: task, start: "2030-01-01 12:00", end: "2030-01-01 13:00", [(n1, cpu, 1)]).status == .ok)
            #expect(try await t.reminder(task: task, notification: start)! == ("pending", 0))
            #expect(try await due(task, start) == "2030-01-01T11:55:00")
            // A name-only edit touches no event.
            #expect(try await t.book(token, id: task, name: "renamed", start: "2030-01-01 12:00", end: "2030-01-01 13:00", [(n1, cpu, 1)]).status == .ok)
            #expect(try await due(task, start) == "2030-01-01T11:55:00")
            // Changing the offset moves every receiver's reminders.
            let admin = try await t.adminToken()
            var r = try await t.request(.put, "/notification", token: admin, json: #"{"id":\#(start),"name":"start","type":"task_start","time_offset":3600,"notification_template":"t"}"#)
            #expect(r.status == .ok)
            #expect(try await due(task, start) == "2030-01-01T11:00:00")
            // Changing the type to a non-task type removes its pending reminders.
            r = try await t.request(.put, "/notification", token: admin, json: #"{"id":\#(start),"name":"start","type":"other"}"#)
            #expect(r.status == .ok)
            #expect(try await due(task, start) == nil)
            #expect(try await due(task, end) != nil)
            // No task_start reminder for a task that already started; a task_end one while it runs.
            let running = try #require(try await t.book(
                token, start: try await t.wallClock(minutes: -30), end: try await t.wallClock(minutes: 30), [(n1, cpu, 1)]).object["id"] as? Int)
            r = try await t.request(.put, "/notification", token: admin, json: #"{"id":\#(start),"name":"start","type":"task_start","time_offset":0,"notification_template":"t"}"#)
            #expect(try await due(running, start) == nil)
            #expect(try await due(running, end) != nil)
            #expect(try await due(task, start) == "2030-01-01T12:00:00")
            // Deleting the task removes its events.
            #expect(try await t.request(.delete, "/task/\(task)", token: token).status == .ok)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE task_id = \(task)") == 0)
            // Deleting the notification removes its reminders.
            #expect(try await t.request(.delete, "/notification/\(end)", token: admin).status == .ok)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE notification_id = \(end)") == 0)
        }
    }

    /// Status comes from the clock on every read: a task booked in the past is finished at once, one around now runs.
    @Test func statusIsNeverStale() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 10)
            let (n1, cpu) = (cluster.0[0], cluster.1[0])
            let (user, token) = try await t.userWithToken("alice")
            var r = try await t.book(token, start: "2021-03-01 10:00", end: "2021-03-01 11:00", [(n1, cpu, 1)])
            #expect(r.object["status"] as? String == "finished")
            let past = try #require(r.object["id"] as? Int)
            r = try await t.book(token, start: try await t.wallClock(minutes: -5), end: try await t.wallClock(minutes: 60), [(n1, cpu, 1)])
            #expect(r.object["status"] as? String == "running")
            let now = try #require(r.object["id"] as? Int)
            // Starting later: scheduled. Once its start has passed it runs, with no scheduler and no event processed: the
            // start is moved into the past in the table (rather than waited for, which a loaded machine makes flaky).
            r = try await t.book(token, start: try await t.wallClock(minutes: 30), end: try await t.wallClock(minutes: 90), [(n1, cpu, 1)])
            #expect(r.object["status"] as? String == "scheduled")
            let later = try #require(r.object["id"] as? Int)
            try await t.db.execute(
                """
                WITH moved AS (UPDATE tasks SET start_time = localtimestamp - interval '1 second' WHERE id = \(later))
                UPDATE allocations SET start_time = localtimestamp - interval '1 second' WHERE task_id = \(later)
                """, logger: t.logger)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE task_id = \(later) AND state <> 'pending'") == 0)
            #expect(try await t.request(.get, "/task/\(later)", token: token).object["status"] as? String == "running")
            r = try await t.request(.post, "/task/user/\(user)/finished", token: token, json: #"{"page_number":0,"page_size":10}"#)
            #expect(ids(r.array) == [past])
            r = try await t.request(.post, "/task/user/\(user)/active", token: token, json: #"{"page_number":0,"page_size":10}"#)
            #expect(Set(ids(r.array)) == [now, later])
            r = try await t.request(.get, "/user/\(user)", token: token)
            let statuses = (r.object["tasks"] as? [[String: Any]] ?? []).map { $0["status"] as? String }
            #expect(statuses == ["finished", "running", "running"])
        }
    }
}
