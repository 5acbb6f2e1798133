import Foundation
import Hummingbird
import Testing

@testable import Remas

/// `/maintenance`: windows, what they do to reservations they meet, and to bookings, the timeline and `/metrics`.
@Suite struct MaintenanceAPITests {
    static func window(
        _ name: String = "kernel", start: String = "2031-03-01 08:00", end: String = "2031-03-01 12:00", nodes: [Int]?,
        conflicts: String? = nil, description: String? = nil
    ) -> String {
        let nodeText = nodes.map { "[" + $0.map(String.init).joined(separator: ",") + "]" } ?? "null"
        let conflictText = conflicts.map { #","conflicts":"\#($0)""# } ?? ""
        let descriptionText = description.map { #""\#($0)""# } ?? "null"
        return #"{"name":"\#(name)","description":\#(descriptionText),"start_time":"\#(start)","end_time":"\#(end)","node_ids":\#(nodeText)\#(conflictText)}"#
    }

    @Test func crudShapeAndBadInput() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (_, user) = try await t.userWithToken("plain")
            let (nodes, _) = try await t.cluster(nodes: 2, capacity: 4)
            var r = try await t.request(.post, "/maintenance", token: admin, json: Self.window(nodes: [nodes[1], nodes[0], nodes[1]], description: "patch"))
            #expect(r.status == .created)
            #expect(Set(r.object.keys) == ["id", "name", "description", "start_time", "end_time", "node_ids", "created_by", "affected_task_ids"])
            #expect(r.object["node_ids"] as? [Int] == nodes.sorted())
            #expect(r.object["start_time"] as? String == "2031-03-01T08:00:00" && r.object["end_time"] as? String == "2031-03-01T12:00:00")
            #expect(r.object["created_by"] as? Int == 1 && r.object["description"] as? String == "patch")
            #expect(r.object["affected_task_ids"] as? [Int] == [])
            let id = try #require(r.object["id"] as? Int)
            r = try await t.request(.post, "/maintenance", token: admin, json: Self.window("all", start: "2031-04-01 00:00", end: "2031-04-02 00:00", nodes: nil))
            #expect(r.status == .created && r.object["node_ids"] is NSNull)
            let all = try #require(r.object["id"] as? Int)

            // Reads: any logged-in user; the list overlaps [start, end).
            #expect(try await t.request(.get, "/maintenance", token: user).array.map { $0["id"] as? Int } == [id, all])
            #expect(try await t.request(.get, "/maintenance?start=2031-03-01T12:00&end=2031-05-01T00:00", token: user).array.map { $0["id"] as? Int } == [all])
            #expect(try await t.request(.get, "/maintenance?end=2031-03-01T08:00", token: user).array.isEmpty)
            #expect(try await t.request(.get, "/maintenance/\(id)", token: user).object["name"] as? String == "kernel")
            #expect(try await t.request(.get, "/maintenance/999", token: user).detail == "Maintenance window with id 999 not found!")
            #expect(try await t.request(.get, "/maintenance").status == .unauthorized)
            r = try await t.request(.get, "/maintenance?start=2031-03-02&end=2031-03-01", token: user)
            #expect(r.status == .badRequest && r.detail == "The window's start must be before its end!")
            #expect(try await t.request(.get, "/maintenance?start=soon", token: user).status == .unprocessableContent)

            // Writes: admins only; bad input changes nothing.
            #expect(try await t.request(.post, "/maintenance", token: user, json: Self.window(nodes: nil)).status == .forbidden)
            let bad: [(String, HTTPResponse.Status)] = [
                (#"{"start_time":"2031-03-01 08:00","end_time":"2031-03-01 09:00"}"#, .unprocessableContent),
                (#"{"name":1,"start_time":"2031-03-01 08:00","end_time":"2031-03-01 09:00"}"#, .unprocessableContent),
                (#"{"name":"x","start_time":"later","end_time":"2031-03-01 09:00"}"#, .unprocessableContent),
                (#"{"name":"x","start_time":"2031-03-01 08:00","end_time":"2031-03-01 09:00","node_ids":"all"}"#, .unprocessableContent),
                (#"{"name":"x","start_time":"2031-03-01 08:00","end_time":"2031-03-01 09:00","conflicts":"ignore"}"#, .unprocessableContent),
                (#"{"name":"x","start_time":"2031-03-01 09:00","end_time":"2031-03-01 08:00"}"#, .badRequest),
                (#"{"name":"x","start_time":"2020-03-01 08:00","end_time":"2020-03-01 09:00"}"#, .badRequest),
                (#"{"name":"x","start_time":"2031-03-01 08:00","end_time":"2031-03-01 09:00","node_ids":[]}"#, .badRequest),
                (#"{"name":" ","start_time":"2031-03-01 08:00","end_time":"2031-03-01 09:00"}"#, .badRequest),
                (#"{"name":"x","start_time":"2031-03-01 08:00","end_time":"2031-03-01 09:00","node_ids":[\#(nodes[0]),999]}"#, .notFound),
                ("[1]", .unprocessableContent),
            ]
            for (body, status) in bad {
                let reply = try await t.request(.post, "/maintenance", token: admin, json: body)
                #expect(reply.status == status, "\(body): \(reply.status) \(reply.body)")
                #expect(reply.detail != nil)
            }
            #expect(try await t.request(.post, "/maintenance", token: admin, json: #"{"name":"x","start_time":"2031-03-01 08:00","end_time":"2031-03-01 09:00","node_ids":[999]}"#).detail == "Node with id 999 not found!")
            #expect(try await t.count("SELECT count(*)::int FROM maintenance_windows") == 2)
            #expect(try await t.count("SELECT count(*)::int FROM maintenance_nodes") == 2)

            // PUT replaces the whole window.
            r = try await t.request(.put, "/maintenance/\(id)", token: admin, json: Self.window("moved", start: "2031-03-02 08:00", end: "2031-03-02 09:00", nodes: [nodes[0]]))
            #expect(r.status == .ok && r.object["name"] as? String == "moved" && r.object["node_ids"] as? [Int] == [nodes[0]])
            #expect(r.object["description"] is NSNull)
            #expect(try await t.request(.put, "/maintenance/999", token: admin, json: Self.window(nodes: nil)).status == .notFound)
            #expect(try await t.request(.put, "/maintenance/\(id)", token: user, json: Self.window(nodes: nil)).status == .forbidden)
            #expect(try await t.request(.delete, "/maintenance/\(id)", token: user).status == .forbidden)
            #expect(try await t.request(.delete, "/maintenance/\(id)", token: admin).detail == "Maintenance window deleted")
            #expect(try await t.request(.delete, "/maintenance/\(id)", token: admin).detail == "Maintenance window with id \(id) not found!")
            #expect(try await t.count("SELECT count(*)::int FROM maintenance_nodes") == 0)
        }
    }

    @Test func refuseKeepAndCancel() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (owner, token) = try await t.userWithToken("owner")
            let (nodes, resources) = try await t.cluster(nodes: 2, capacity: 4)
            let cpu = resources[0]
            func book(_ name: String, _ start: String, _ end: String, node: Int) async throws -> Int {
                let r = try await t.book(token, name: name, start: start, end: end, [(node, cpu, 1)])
                #expect(r.status == .ok, "\(r.body)")
                return try #require(r.object["id"] as? Int)
            }
            let inside = try await book("inside", "2031-03-01 09:00", "2031-03-01 10:00", node: nodes[0])
            let across = try await book("across", "2031-03-01 07:00", "2031-03-01 09:00", node: nodes[0])
            _ = try await book("elsewhere", "2031-03-01 09:00", "2031-03-01 10:00", node: nodes[1])
            _ = try await book("before", "2031-03-01 06:00", "2031-03-01 08:00", node: nodes[0])

            // refuse (the default): 409 naming the overlapping tasks, nothing written.
            var r = try await t.request(.post, "/maintenance", token: admin, json: Self.window(nodes: [nodes[0]]))
            #expect(r.status == .conflict)
            #expect(r.detail?.contains("overlaps 2 scheduled or running reservation(s) (task ids \(across), \(inside))") == true, "\(r.detail ?? "")")
            #expect(try await t.count("SELECT count(*)::int FROM maintenance_windows") == 0)

            // keep: created, the reservations stay and are named.
            r = try await t.request(.post, "/maintenance", token: admin, json: Self.window(nodes: [nodes[0]], conflicts: "keep"))
            #expect(r.status == .created)
            #expect(r.object["affected_task_ids"] as? [Int] == [inside, across].sorted())
            let kept = try #require(r.object["id"] as? Int)
            #expect(try await t.request(.get, "/maintenance/\(kept)", token: token).object["affected_task_ids"] as? [Int] == [inside, across].sorted())
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == 4)
            #expect(try await t.request(.delete, "/maintenance/\(kept)", token: admin).status == .ok)

            // cancel: a scheduled task is deleted; a running one ends where the window starts (or now, when it began).
            let running = try await book("running", "2031-03-01 11:00", "2031-03-01 13:00", node: nodes[1])
            let later = try await t.wallClock(minutes: 120)
            try await t.move(task: running, start: try await t.wallClock(minutes: -30), end: later)
            // The window's own start is the cut (read once: the minute may turn during the test).
            let cut = try await t.wallClock(minutes: 60)
            r = try await t.request(.post, "/maintenance", token: admin, json: Self.window(start: cut, end: try await t.wallClock(minutes: 180), nodes: [nodes[1]], conflicts: "cancel"))
            #expect(r.status == .created, "\(r.body)")
            #expect(r.object["affected_task_ids"] as? [Int] == [running])
            #expect(try await t.db.text("SELECT to_char(end_time, 'YYYY-MM-DD HH24:MI') FROM tasks WHERE id = \(running)", logger: t.logger) == cut)
            #expect(try await t.db.text("SELECT to_char(max(end_time), 'YYYY-MM-DD HH24:MI') FROM allocations WHERE task_id = \(running)", logger: t.logger) == cut)
            #expect(try await t.db.text("SELECT to_char(time, 'YYYY-MM-DD HH24:MI') FROM events WHERE task_id = \(running) AND type = 'task_end'", logger: t.logger) == cut)
            r = try await t.request(.post, "/maintenance", token: admin, json: Self.window(nodes: [nodes[0]], conflicts: "cancel"))
            #expect(r.object["affected_task_ids"] as? [Int] == [inside, across].sorted())
            #expect(try await t.count("SELECT count(*)::int FROM tasks WHERE id IN (\(inside), \(across))") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM tasks WHERE owner_id = \(owner)") == 3)
        }
    }

    @Test func bookingsTimelineAndMetrics() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (user, token) = try await t.userWithToken("booker")
            let (nodes, resources) = try await t.cluster(nodes: 2, capacity: 4, resources: ["cpu", "mem"])
            let (cpu, mem) = (resources[0], resources[1])
            var r = try await t.request(.post, "/maintenance", token: admin, json: Self.window("disk swap", nodes: [nodes[0]]))
            #expect(r.status == .created)

            r = try await t.book(token, start: "2031-03-01 11:00", end: "2031-03-01 13:00", [(nodes[1], cpu, 1), (nodes[0], cpu, 1)])
            #expect(r.status == .conflict)
            #expect(r.detail == "Node node0 is under maintenance from 2031-03-01T08:00:00 to 2031-03-01T12:00:00 (disk swap)")
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == 0)
            #expect(try await t.book(token, start: "2031-03-01 12:00", end: "2031-03-01 13:00", [(nodes[0], cpu, 1)]).status == .ok)
            r = try await t.book(token, start: "2031-03-01 09:00", end: "2031-03-01 10:00", [(nodes[1], cpu, 1)])
            let task = try #require(r.object["id"] as? Int)
            // Moving a task onto the node under maintenance is refused too.
            r = try await t.book(token, id: task, start: "2031-03-01 09:00", end: "2031-03-01 10:00", [(nodes[0], cpu, 1)])
            #expect(r.status == .conflict && r.detail?.hasPrefix("Node node0 is under maintenance") == true)
            // A window on every node blocks every node.
            r = try await t.request(.post, "/maintenance", token: admin, json: Self.window("all", start: "2031-05-01 00:00", end: "2031-05-02 00:00", nodes: nil))
            #expect(r.status == .created)
            #expect(try await t.book(token, start: "2031-05-01 10:00", end: "2031-05-01 11:00", [(nodes[1], cpu, 1)]).detail?.hasPrefix("Node node1 is under maintenance") == true)

            // The timeline shows every resource of the node as full (amount <= 0), listing no user for the window.
            r = try await t.request(
                .post, "/task/get_scheduling", token: token, json: #"{"start_time":"2031-03-01 07:00","end_time":"2031-03-01 13:00","exclude_task_id":0}"#)
            #expect(r.status == .ok)
            let periods = r.array
            let during = try #require(periods.first { $0["start_time"] as? String == "2031-03-01T09:00:00" })
            let entries = during["available_resources"] as? [[String: Any]] ?? []
            for resource in [cpu, mem] {
                let entry = try #require(entries.first { $0["node_id"] as? Int == nodes[0] && $0["resource_id"] as? Int == resource })
                #expect((entry["amount"] as? Int ?? 1) <= 0)
                #expect(entry["user_ids"] as? [Int] == [])
            }
            let other = try #require(entries.first { $0["node_id"] as? Int == nodes[1] })
            #expect(other["amount"] as? Int == 3 && other["user_ids"] as? [Int] == [user])

            // /metrics: 1 while a window holds the node.
            let start = try await t.wallClock(minutes: -1)
            let end = try await t.wallClock(minutes: 30)
            #expect(try await t.request(.post, "/maintenance", token: admin, json: Self.window("now", start: start, end: end, nodes: [nodes[1]], conflicts: "keep")).status == .created)
            let text = try await t.request(.get, "/metrics").body
            #expect(text.contains("\nremas_node_maintenance{node=\"node1\"} 1"))
            #expect(text.contains("\nremas_node_maintenance{node=\"node0\"} 0"))
        }
    }

    /// The owners of the reservations a window meets get one mail each, through the scheduler's queue, listing their
    /// reservations and what became of them; nothing is sent twice, and a refused window sends nothing.
    @Test func ownersAreToldOnce() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (nodes, resources) = try await t.cluster(nodes: 1, capacity: 4)
            let (ada, bob) = (SMTPTestServer.address(), SMTPTestServer.address())
            let (_, adaToken) = try await t.userWithEmail(ada)
            let (_, bobToken) = try await t.userWithEmail(bob)
            func book(_ token: String, _ name: String, _ start: String, _ end: String) async throws -> Int {
                try #require(try await t.book(token, name: name, start: start, end: end, [(nodes[0], resources[0], 1)]).object["id"] as? Int)
            }
            let first = try await book(adaToken, "first", "2031-03-01 09:00", "2031-03-01 10:00")
            let second = try await book(adaToken, "second", "2031-03-01 10:00", "2031-03-01 11:00")
            let other = try await book(bobToken, "other", "2031-03-01 11:00", "2031-03-01 13:00")
            #expect(try await t.request(.post, "/maintenance", token: admin, json: Self.window(nodes: [nodes[0]])).status == .conflict)
            var r = try await t.request(.post, "/maintenance", token: admin, json: Self.window(nodes: [nodes[0]], conflicts: "keep", description: "New kernel"))
            #expect(r.status == .created)
            let clock = FixedClock("2031-01-01 00:00")
            var pass = try await t.withScheduler(clock: clock) { try await $0.runPass() }
            #expect(pass.sent == 2)
            let adaMail = try #require(try await SMTPTestServer.waitForMessages(to: ada, count: 1).first)
            #expect(adaMail["subject"] as? String == "Maintenance: kernel")
            let body = try #require(adaMail["body"] as? String)
            #expect(body.contains("Maintenance \"kernel\" takes node(s) node0 out of service from 2031-03-01 08:00:00 to 2031-03-01 12:00:00."))
            #expect(body.contains("New kernel"))
            #expect(body.contains("- first (task \(first), 2031-03-01 09:00:00 to 2031-03-01 10:00:00): kept"))
            #expect(body.contains("- second (task \(second), 2031-03-01 10:00:00 to 2031-03-01 11:00:00): kept"))
            let bobMail = try #require(try await SMTPTestServer.waitForMessages(to: bob, count: 1).first)
            #expect((bobMail["body"] as? String)?.contains("- other (task \(other),") == true)
            #expect((bobMail["body"] as? String)?.contains("first") == false)

            // Cancelling tells each owner once more, with what happened; a later pass sends nothing.
            r = try await t.request(
                .put, "/maintenance/\(try #require(r.object["id"] as? Int))", token: admin,
                json: Self.window(start: "2031-03-01 09:30", end: "2031-03-01 12:00", nodes: nil, conflicts: "cancel"))
            #expect(r.status == .ok)
            pass = try await t.withScheduler(clock: clock) { try await $0.runPass() }
            #expect(pass.sent == 2)
            let adaMails = try await SMTPTestServer.waitForMessages(to: ada, count: 2)
            #expect(adaMails.count == 2)
            let cancelled = try #require(adaMails.compactMap { $0["body"] as? String }.first { $0.contains("cancelled") })
            #expect(cancelled.contains("takes every node out of service from 2031-03-01 09:30:00"))
            #expect(cancelled.contains("- first (task \(first), 2031-03-01 09:00:00 to 2031-03-01 10:00:00): cancelled"))
            #expect(cancelled.contains("- second (task \(second), 2031-03-01 10:00:00 to 2031-03-01 11:00:00): cancelled"))
            pass = try await t.withScheduler(clock: clock) { try await $0.runPass() }
            #expect(pass.sent == 0)
            try await Task.sleep(for: .milliseconds(300))
            #expect(SMTPTestServer.messages(to: ada).count == 2 && SMTPTestServer.messages(to: bob).count == 2)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE type = 'notice' AND state = 'sent'") == 4)
        }
    }

    /// Bookings racing a window's creation on two servers: whatever order the commits take, no reservation ends up
    /// inside the window (`cancel` removes what came first, the window refuses what comes after).
    @Test func windowsAndBookingsRaceOnTwoServers() async throws {
        try await withTwoLiveServers { t, two in
            let admin = try await t.adminToken()
            let (nodes, resources) = try await t.cluster(nodes: 2, capacity: 64)
            let (_, token) = try await t.userWithToken("racer")
            let bookings = (0..<50).map { i in
                ConcurrencyTests.Booking(node: nodes[i % 2], resource: resources[0], amount: 1, start: "2030-01-01 10:\(String(format: "%02d", i))", end: "2030-01-01 12:00")
            }
            async let outcomes = ConcurrencyTests.fire(bookings, ports: [t.client.port!, two.port!], token: token)
            try await Task.sleep(for: .milliseconds(20))
            let window = try await t.request(
                .post, "/maintenance", token: admin, json: Self.window(start: "2030-01-01 11:00", end: "2030-01-01 11:30", nodes: [nodes[0]], conflicts: "cancel"))
            let results = try await outcomes
            #expect(window.status == .created, "\(window.body)")
            for outcome in results where outcome.status != 200 {
                #expect(outcome.status == 409 && outcome.detail?.hasPrefix("Node node0 is under maintenance") == true, "\(outcome.status) \(outcome.detail ?? "")")
                #expect(outcome.booking.node == nodes[0])
            }
            #expect(results.filter { $0.booking.node == nodes[1] }.allSatisfy { $0.status == 200 })
            let inside = try await t.count(
                """
                SELECT count(*)::int FROM allocations
                WHERE node_id = \(nodes[0]) AND end_time > '2030-01-01 11:00' AND start_time < '2030-01-01 11:30'
                """)
            #expect(inside == 0)
            let cancelled = (window.object["affected_task_ids"] as? [Int]) ?? []
            let accepted = results.filter { $0.booking.node == nodes[0] && $0.status == 200 }.compactMap(\.taskID)
            #expect(Set(cancelled).isSubset(of: Set(accepted)))
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == results.filter { $0.status == 200 }.count - cancelled.count)
        }
    }
}
