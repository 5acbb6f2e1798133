import Foundation
import Hummingbird
import Testing

@testable import Remas

/// `/apikey`, `PUT /node/{id}/status`, `GET /node/status`, `POST /alerts/alertmanager`: machine credentials, node
/// status, the outage mails and the down-node booking guard.
@Suite struct NodeStatusAPITests {
    static func key(_ t: TestContext, _ scopes: [String], name: String = "collector") async throws -> (id: Int, key: String) {
        let scopeText = scopes.map { "\"\($0)\"" }.joined(separator: ",")
        let r = try await t.request(.post, "/apikey", token: try await t.adminToken(), json: #"{"name":"\#(name)","scopes":[\#(scopeText)]}"#)
        guard r.status == .created, let id = r.object["id"] as? Int, let key = r.object["key"] as? String else {
            throw TestFailure("key not created: \(r.status) \(r.body)")
        }
        return (id, key)
    }

    static func status(_ t: TestContext, node: Int, key: String, _ status: String, message: String? = nil) async throws -> TestReply {
        let messageText = message.map { #","message":"\#($0)""# } ?? ""
        return try await t.request(.put, "/node/\(node)/status", token: key, json: #"{"status":"\#(status)"\#(messageText)}"#)
    }

    @Test func apiKeys() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (_, user) = try await t.userWithToken("plain")
            let (nodes, _) = try await t.cluster(nodes: 1, capacity: 4)
            var r = try await t.request(.post, "/apikey", token: admin, json: #"{"name":"rack 1","scopes":["status","status"]}"#)
            #expect(r.status == .created)
            #expect(Set(r.object.keys) == ["id", "name", "scopes", "key", "created_by", "created_at", "last_used_at"])
            #expect(r.object["scopes"] as? [String] == ["status"] && r.object["created_by"] as? Int == 1)
            let statusKey = try #require(r.object["key"] as? String)
            let statusID = try #require(r.object["id"] as? Int)
            #expect(statusKey.hasPrefix("remas_") && statusKey.count == 46)
            let alerts = try await Self.key(t, ["alerts"], name: "alertmanager")

            // Listed without the key; the key is stored only as a digest.
            r = try await t.request(.get, "/apikey", token: admin)
            #expect(r.array.count == 2 && r.array.allSatisfy { $0["key"] == nil })
            #expect(try await t.count("SELECT count(*)::int FROM api_keys WHERE position(convert_to('\(statusKey)', 'UTF8') in key_hash) > 0") == 0)
            #expect(try await t.request(.get, "/apikey", token: user).status == .forbidden)
            #expect(try await t.request(.get, "/apikey").status == .unauthorized)

            // A key opens its scope's route only, and never acts as a user token.
            #expect(try await Self.status(t, node: nodes[0], key: statusKey, "up").status == .ok)
            r = try await Self.status(t, node: nodes[0], key: alerts.key, "up")
            #expect(r.status == .forbidden && r.detail == "The API key 'alertmanager' does not have the scope 'status'")
            r = try await t.request(.post, "/alerts/alertmanager", token: statusKey, json: #"{"version":"4","alerts":[]}"#)
            #expect(r.status == .forbidden)
            #expect(try await t.request(.post, "/alerts/alertmanager", token: alerts.key, json: #"{"version":"4","alerts":[]}"#).status == .ok)
            #expect(try await t.request(.get, "/node", token: statusKey).status == .unauthorized)
            #expect(try await t.request(.get, "/node/status", token: statusKey).status == .unauthorized)
            #expect(try await Self.status(t, node: nodes[0], key: "remas_" + String(repeating: "0", count: 40), "up").status == .unauthorized)
            // A user token: only an admin's passes.
            #expect(try await Self.status(t, node: nodes[0], key: user, "up").status == .forbidden)
            #expect(try await Self.status(t, node: nodes[0], key: admin, "degraded").status == .ok)
            #expect(try await t.request(.get, "/apikey", token: admin).array.first { $0["id"] as? Int == statusID }?["last_used_at"] is String)

            // Bad input, nothing written.
            let bad: [(String, HTTPResponse.Status)] = [
                (#"{"scopes":["status"]}"#, .unprocessableContent),
                (#"{"name":"x","scopes":["root"]}"#, .unprocessableContent),
                (#"{"name":"x","scopes":"status"}"#, .unprocessableContent),
                (#"{"name":"x"}"#, .unprocessableContent),
                (#"{"name":"x","scopes":[]}"#, .badRequest),
                (#"{"name":" ","scopes":["alerts"]}"#, .badRequest),
                ("{", .unprocessableContent),
            ]
            for (body, status) in bad {
                let reply = try await t.request(.post, "/apikey", token: admin, json: body)
                #expect(reply.status == status, "\(body): \(reply.status) \(reply.body)")
                #expect(reply.detail != nil)
            }
            #expect(try await t.request(.post, "/apikey", token: user, json: #"{"name":"x","scopes":["status"]}"#).status == .forbidden)
            #expect(try await t.count("SELECT count(*)::int FROM api_keys") == 2)

            // Deleted: the key stops working at once.
            #expect(try await t.request(.delete, "/apikey/\(statusID)", token: user).status == .forbidden)
            #expect(try await t.request(.delete, "/apikey/\(statusID)", token: admin).detail == "API key deleted")
            #expect(try await t.request(.delete, "/apikey/\(statusID)", token: admin).detail == "API key with id \(statusID) not found!")
            #expect(try await Self.status(t, node: nodes[0], key: statusKey, "up").status == .unauthorized)
        }
    }

    @Test func reportsListAndBadInput() async throws {
        try await withApp { t in
            let (_, user) = try await t.userWithToken("reader")
            let (nodes, _) = try await t.cluster(nodes: 2, capacity: 4)
            let collector = try await Self.key(t, ["status"], name: "rack-a")
            var r = try await Self.status(t, node: nodes[0], key: collector.key, "degraded", message: "one PSU")
            #expect(r.status == .ok)
            #expect(Set(r.object.keys) == ["node_id", "status", "since", "message", "source"])
            #expect(r.object["status"] as? String == "degraded" && r.object["source"] as? String == "api key rack-a")
            r = try await t.request(.get, "/node/status", token: user)
            #expect(r.array.map { $0["node_id"] as? Int } == nodes)
            #expect(r.array.map { $0["status"] as? String } == ["degraded", "unknown"])
            #expect(r.array[0]["message"] as? String == "one PSU" && r.array[1]["since"] is NSNull)
            #expect(try await t.request(.get, "/node/status").status == .unauthorized)
            // GET /node is unchanged (no status in it).
            #expect(try await t.request(.get, "/node", token: user).array.allSatisfy { $0["status"] == nil })

            // A collector's report goes stale: unknown, since the staleness began.
            try await t.db.execute("UPDATE node_status SET reported_at = reported_at - interval '901 seconds'", logger: t.logger)
            r = try await t.request(.get, "/node/status", token: user)
            #expect(r.array[0]["status"] as? String == "unknown")

            let bad: [(String, String, HTTPResponse.Status)] = [
                ("/node/\(nodes[0])/status", #"{"status":"broken"}"#, .unprocessableContent),
                ("/node/\(nodes[0])/status", #"{"status":1}"#, .unprocessableContent),
                ("/node/\(nodes[0])/status", #"{"message":"x"}"#, .unprocessableContent),
                ("/node/\(nodes[0])/status", #"{"status":"up","message":5}"#, .unprocessableContent),
                ("/node/\(nodes[0])/status", "[]", .unprocessableContent),
                ("/node/999/status", #"{"status":"up"}"#, .notFound),
                ("/node/abc/status", #"{"status":"up"}"#, .unprocessableContent),
            ]
            for (path, body, status) in bad {
                let reply = try await t.request(.put, path, token: collector.key, json: body)
                #expect(reply.status == status, "\(path) \(body): \(reply.status) \(reply.body)")
                #expect(reply.detail != nil)
            }
            #expect(try await t.request(.put, "/node/\(nodes[0])/status", json: #"{"status":"up"}"#).status == .unauthorized)
            #expect(try await t.count("SELECT count(*)::int FROM node_status") == 1)
            #expect(try await t.count("SELECT count(*)::int FROM node_status WHERE status = 'degraded'") == 1)
        }
    }

    /// Down: the owners of running reservations and of those starting within 24 h get one mail each with theirs, the
    /// admins one with all; a repeated report mails no one; bookings starting soon are refused; back up: one mail to the
    /// same people.
    @Test func outageMailsAndBookingGuard() async throws {
        try await withApp { t in
            let (nodes, resources) = try await t.cluster(nodes: 2, capacity: 4)
            let cpu = resources[0]
            let (ada, bob, boss) = (SMTPTestServer.address("ada"), SMTPTestServer.address("bob"), SMTPTestServer.address("boss"))
            let (_, adaToken) = try await t.userWithEmail(ada)
            let (_, bobToken) = try await t.userWithEmail(bob)
            _ = try await t.userWithEmail(boss, groupID: SeededGroup.administrators.rawValue)
            func book(_ token: String, _ name: String, _ start: Int, _ end: Int, node: Int) async throws -> Int {
                let r = try await t.book(token, name: name, start: try await t.wallClock(minutes: start), end: try await t.wallClock(minutes: end), [(node, cpu, 1)])
                return try #require(r.object["id"] as? Int, "\(r.body)")
            }
            let running = try await book(adaToken, "running", 60, 180, node: nodes[0])
            try await t.move(task: running, start: try await t.wallClock(minutes: -60), end: try await t.wallClock(minutes: 180))
            let soon = try await book(adaToken, "soon", 120, 240, node: nodes[0])
            _ = try await book(adaToken, "next week", 7 * 24 * 60, 7 * 24 * 60 + 60, node: nodes[0])
            _ = try await book(bobToken, "elsewhere", 60, 120, node: nodes[1])
            let collector = try await Self.key(t, ["status"])

            var r = try await Self.status(t, node: nodes[0], key: collector.key, "down", message: "disk failure")
            #expect(r.status == .ok && r.object["status"] as? String == "down")
            let since = try #require(r.object["since"] as? String)
            // Repeated: nothing new.
            #expect(try await Self.status(t, node: nodes[0], key: collector.key, "down", message: "disk failure").status == .ok)
            let clock = FixedClock("2031-01-01 00:00")
            var pass = try await t.withScheduler(clock: clock) { try await $0.runPass() }
            #expect(pass.sent == 3)  // ada, boss and the seeded administrator
            let adaMail = try #require(try await SMTPTestServer.waitForMessages(to: ada, count: 1).first)
            #expect(adaMail["subject"] as? String == "Node node0 is down")
            let adaBody = try #require(adaMail["body"] as? String)
            #expect(adaBody.contains("Node node0 is down since \(since.replacingOccurrences(of: "T", with: " ")) (reported by api key collector): disk failure."))
            #expect(adaBody.contains("- running (task \(running), "))
            #expect(adaBody.contains("- soon (task \(soon), "))
            #expect(!adaBody.contains("next week"))
            let bossBody = try #require(try await SMTPTestServer.waitForMessages(to: boss, count: 1).first?["body"] as? String)
            #expect(bossBody.contains("2 reservation(s) on it are running or start within 24 hours"))
            #expect(bossBody.contains("- soon (task \(soon), ") && bossBody.contains(" of u"))
            #expect(SMTPTestServer.messages(to: bob).isEmpty)

            // The guard: a booking starting within the hour on the down node is refused; later or elsewhere, accepted;
            // the owner may still edit the reservation the node already holds.
            r = try await t.book(bobToken, start: try await t.wallClock(minutes: 30), end: try await t.wallClock(minutes: 90), [(nodes[0], cpu, 1)])
            #expect(r.status == .conflict)
            #expect(r.detail == "Node node0 is down since \(since): disk failure")
            #expect(try await t.book(bobToken, start: try await t.wallClock(minutes: 90), end: try await t.wallClock(minutes: 100), [(nodes[0], cpu, 1)]).status == .ok)
            #expect(try await t.book(bobToken, start: try await t.wallClock(minutes: 30), end: try await t.wallClock(minutes: 40), [(nodes[1], cpu, 1)]).status == .ok)
            r = try await t.book(adaToken, id: soon, name: "soon", start: try await t.wallClock(minutes: 20), end: try await t.wallClock(minutes: 60), [(nodes[0], cpu, 1)])
            #expect(r.status == .ok, "\(r.body)")
            // A stale report does not block.
            try await t.db.execute("UPDATE node_status SET reported_at = reported_at - interval '1000 seconds'", logger: t.logger)
            #expect(try await t.book(bobToken, start: try await t.wallClock(minutes: 30), end: try await t.wallClock(minutes: 35), [(nodes[0], cpu, 1)]).status == .ok)

            // Back up: one mail to the same three, none to the owners who booked meanwhile.
            r = try await Self.status(t, node: nodes[0], key: collector.key, "up")
            #expect(r.object["status"] as? String == "up")
            #expect(try await Self.status(t, node: nodes[0], key: collector.key, "degraded").status == .ok)
            pass = try await t.withScheduler(clock: clock) { try await $0.runPass() }
            #expect(pass.sent == 3)
            let back = try await SMTPTestServer.waitForMessages(to: ada, count: 2)
            #expect(back.count == 2 && back.contains { $0["subject"] as? String == "Node node0 is up again" })
            #expect(SMTPTestServer.messages(to: boss).count == 2 && SMTPTestServer.messages(to: bob).isEmpty)
            pass = try await t.withScheduler(clock: clock) { try await $0.runPass() }
            #expect(pass.sent == 0)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE type = 'notice'") == 6)
        }
    }

    static func alertPayload(_ alerts: [(name: String, status: String, labels: [String: String], startsAt: String)]) -> String {
        let items = alerts.map { a in
            let labels = (["alertname": a.name].merging(a.labels) { $1 }).sorted { $0.key < $1.key }
                .map { #""\#($0.key)":"\#($0.value)""# }.joined(separator: ",")
            return #"{"status":"\#(a.status)","labels":{\#(labels)},"annotations":{"summary":"exporter unreachable"},"startsAt":"\#(a.startsAt)","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus/graph","fingerprint":"abc"}"#
        }.joined(separator: ",")
        let status = alerts.contains { $0.status == "firing" } ? "firing" : "resolved"
        return #"{"version":"4","groupKey":"{}:{alertname=\"NodeDown\"}","truncatedAlerts":0,"status":"\#(status)","receiver":"remas","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://alertmanager","alerts":[\#(items)]}"#
    }

    /// Alertmanager's webhook: firing marks down, resolved marks up; three concurrent deliveries make one transition and
    /// one set of mails; a late copy of a resolved alert changes nothing; malformed payloads change nothing.
    @Test func alertmanagerWebhook() async throws {
        try await withApp { t in
            let (nodes, resources) = try await t.cluster(nodes: 3, capacity: 4)
            let owner = SMTPTestServer.address("owner")
            let (_, token) = try await t.userWithEmail(owner)
            let task = try #require(try await t.book(
                token, name: "job", start: try await t.wallClock(minutes: 60), end: try await t.wallClock(minutes: 120), [(nodes[1], resources[0], 1)]
            ).object["id"] as? Int)
            let key = try await Self.key(t, ["alerts"], name: "am")
            let firing = Self.alertPayload([
                ("NodeDown", "firing", ["node": "node0", "job": "node"], "2026-12-05T10:00:00Z"),
                ("NodeDown", "firing", ["instance": "node1:9100"], "2026-12-05T10:00:01Z"),
                ("NodeDown", "firing", ["instance": "ghost:9100"], "2026-12-05T10:00:02Z"),
                ("DiskFull", "firing", ["node": "node2"], "2026-12-05T10:00:03Z"),
            ])
            let replies = try await withThrowingTaskGroup(of: TestReply.self) { group in
                for _ in 0..<3 { group.addTask { try await t.request(.post, "/alerts/alertmanager", token: key.key, json: firing) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies.allSatisfy { $0.status == .ok })
            let changed = replies.flatMap { ($0.object["applied"] as? [[String: Any]]) ?? [] }.filter { $0["changed"] as? Bool == true }
            #expect(changed.count == 2)  // node0 and node1, once each across the three deliveries
            let ignored = try #require(replies.first?.object["ignored"] as? [[String: Any]])
            #expect(ignored.map { $0["reason"] as? String } == ["no node is named ghost", "not a node-down alert (NODE_DOWN_ALERTS)"])
            var r = try await t.request(.get, "/node/status", token: token)
            #expect(r.array.map { $0["status"] as? String } == ["down", "down", "unknown"])
            #expect(r.array[0]["source"] as? String == "alertmanager" && r.array[0]["message"] as? String == "exporter unreachable")
            let clock = FixedClock("2031-01-01 00:00")
            _ = try await t.withScheduler(clock: clock) { try await $0.runPass() }
            let mails = try await SMTPTestServer.waitForMessages(to: owner, count: 1)
            #expect(mails.count == 1 && (mails[0]["body"] as? String)?.contains("- job (task \(task), ") == true)
            #expect(mails[0]["subject"] as? String == "Node node1 is down")

            // Resolved (three times), then a late copy of the firing: up once, one mail, nothing else.
            let resolved = Self.alertPayload([("NodeDown", "resolved", ["instance": "node1:9100"], "2026-12-05T10:00:01Z")])
            for _ in 0..<3 { #expect(try await t.request(.post, "/alerts/alertmanager", token: key.key, json: resolved).status == .ok) }
            r = try await t.request(.post, "/alerts/alertmanager", token: key.key, json: Self.alertPayload([("NodeDown", "firing", ["instance": "node1:9100"], "2026-12-05T10:00:01Z")]))
            #expect((r.object["applied"] as? [[String: Any]])?.first?["changed"] as? Bool == false)
            #expect(try await t.request(.get, "/node/status", token: token).array[1]["status"] as? String == "up")
            _ = try await t.withScheduler(clock: clock) { try await $0.runPass() }
            let all = try await SMTPTestServer.waitForMessages(to: owner, count: 2)
            #expect(all.count == 2 && all.contains { $0["subject"] as? String == "Node node1 is up again" })
            // A new outage of the same node (a new alert) is a new transition.
            r = try await t.request(.post, "/alerts/alertmanager", token: key.key, json: Self.alertPayload([("NodeDown", "firing", ["instance": "node1:9100"], "2026-12-05T11:00:00Z")]))
            #expect((r.object["applied"] as? [[String: Any]])?.first?["changed"] as? Bool == true)

            let before = try await t.count("SELECT count(*)::int FROM events")
            let bad = [
                #"{"version":"3","alerts":[]}"#,
                #"{"alerts":[]}"#,
                #"{"version":"4","alerts":{}}"#,
                #"{"version":"4"}"#,
                #"{"version":"4","alerts":[{"status":"pending","labels":{"alertname":"NodeDown","node":"node2"},"startsAt":"x"}]}"#,
                #"{"version":"4","alerts":[{"status":"firing","startsAt":"x"}]}"#,
                #"{"version":"4","alerts":[{"status":"firing","labels":{"node":"node2"},"startsAt":"x"}]}"#,
                #"{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"NodeDown","node":"node2"}}]}"#,
                #"{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"NodeDown","node":"node2"},"startsAt":"x"},7]}"#,
                "[]",
            ]
            for body in bad {
                let reply = try await t.request(.post, "/alerts/alertmanager", token: key.key, json: body)
                #expect(reply.status == .unprocessableContent, "\(body): \(reply.status) \(reply.body)")
                #expect(reply.detail != nil)
            }
            #expect(try await t.request(.get, "/node/status", token: token).array[2]["status"] as? String == "unknown")
            #expect(try await t.count("SELECT count(*)::int FROM events") == before)
            #expect(try await t.request(.post, "/alerts/alertmanager", json: firing).status == .unauthorized)
        }
    }
}
