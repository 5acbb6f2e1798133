import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import Testing

@testable import Remas

/// Recurring reservations: the RRULE subset, all-or-none booking, races, reminders, and the series routes.
@Suite struct RecurringTests {
    static let prague = TimeZone(identifier: "Europe/Prague")!

    static func body(_ rule: String, start: String, end: String, allocations: [(Int, Int, Int64)], name: String = "lab") -> String {
        #"{"task":\#(TestContext.taskBody(name: name, start: start, end: end, allocations: allocations)),"rule":"\#(rule)"}"#
    }

    @Test func ruleSubset() throws {
        let start = LocalDateTime.parse("2031-03-17 10:00", zone: Self.prague)!  // a Monday
        let end = LocalDateTime.parse("2031-03-17 12:00", zone: Self.prague)!
        func days(_ text: String) throws -> [String] {
            try RecurrenceRule.parse(text, zone: Self.prague).occurrences(start: start, end: end).map { $0.start.spaced }
        }
        #expect(try days("FREQ=WEEKLY;COUNT=3") == ["2031-03-17 10:00:00", "2031-03-24 10:00:00", "2031-03-31 10:00:00"])
        #expect(try days("RRULE:FREQ=WEEKLY;BYDAY=WE,MO;COUNT=4")
            == ["2031-03-17 10:00:00", "2031-03-19 10:00:00", "2031-03-24 10:00:00", "2031-03-26 10:00:00"])
        // The first reservation counts only when it matches BYDAY.
        #expect(try days("FREQ=WEEKLY;BYDAY=TU;COUNT=2") == ["2031-03-18 10:00:00", "2031-03-25 10:00:00"])
        #expect(try days("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR;UNTIL=20310404") == ["2031-03-17 10:00:00", "2031-03-21 10:00:00", "2031-03-31 10:00:00", "2031-04-04 10:00:00"])
        #expect(try days("FREQ=DAILY;INTERVAL=3;COUNT=3") == ["2031-03-17 10:00:00", "2031-03-20 10:00:00", "2031-03-23 10:00:00"])
        // UNTIL in UTC: 09:00Z on the 19th is 10:00 in Prague (CET), so the 19th is in.
        #expect(try days("FREQ=DAILY;UNTIL=20310319T090000Z").count == 3)
        #expect(try days("FREQ=DAILY;UNTIL=20310319T085959Z").count == 2)
        // Wall-clock time kept across the DST change of 2031-03-30 (and the length too).
        let occ = try RecurrenceRule.parse("FREQ=WEEKLY;COUNT=3", zone: Self.prague).occurrences(start: start, end: end)
        #expect(occ.allSatisfy { $0.start.components.hour == 10 && $0.end.components.hour == 12 })
        #expect(try RecurrenceRule.parse("freq=weekly;byday=mo;count=2", zone: Self.prague).text == "FREQ=WEEKLY;BYDAY=MO;COUNT=2")

        let bad = [
            "", "FREQ=MONTHLY;COUNT=2", "FREQ=WEEKLY", "FREQ=WEEKLY;COUNT=0", "FREQ=WEEKLY;COUNT=367", "FREQ=WEEKLY;COUNT=2;UNTIL=20310401",
            "FREQ=DAILY;BYDAY=MO;COUNT=2", "FREQ=WEEKLY;BYDAY=1MO;COUNT=2", "FREQ=WEEKLY;BYDAY=XX;COUNT=2", "FREQ=WEEKLY;INTERVAL=0;COUNT=2",
            "FREQ=WEEKLY;BYMONTH=3;COUNT=2", "FREQ=WEEKLY;COUNT=2;COUNT=3", "FREQ", "COUNT=2", "FREQ=WEEKLY;UNTIL=2031-04-01",
            "FREQ=WEEKLY;WKST=SU;COUNT=2",
        ]
        for text in bad {
            #expect(throws: RuleError.self, "\(text)") { try RecurrenceRule.parse(text, zone: Self.prague) }
        }
        // More than 366 occurrences, or none.
        #expect(throws: RuleError.self) { try days("FREQ=DAILY;UNTIL=20320401") }
        #expect(throws: RuleError.self) { try days("FREQ=DAILY;UNTIL=20310316") }
        #expect(try days("FREQ=DAILY;COUNT=366").count == 366)
    }

    @Test func bookReadAndDelete() async throws {
        try await withApp { t in
            let (user, token) = try await t.userWithToken("weekly")
            let (_, other) = try await t.userWithToken("other")
            let (nodes, resources) = try await t.cluster(nodes: 2, capacity: 4)
            let allocations = [(nodes[0], resources[0], Int64(2)), (nodes[1], resources[0], Int64(1))]
            // Weekly on Mondays and Wednesdays across the DST change of 2031-03-30: always 10:00-12:00 local.
            var r = try await t.request(
                .post, "/task/recurring", token: token,
                json: Self.body("FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6", start: "2031-03-17 10:00", end: "2031-03-17 12:00", allocations: allocations))
            #expect(r.status == .created, "\(r.body)")
            #expect(Set(r.object.keys) == ["series_id", "rule", "task_ids"])
            #expect(r.object["rule"] as? String == "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6")
            let series = try #require(r.object["series_id"] as? Int)
            let ids = try #require(r.object["task_ids"] as? [Int])
            #expect(ids.count == 6)
            let starts = try await t.db.text(
                "SELECT string_agg(to_char(start_time, 'MM-DD HH24:MI') || '/' || to_char(end_time, 'HH24:MI'), ',' ORDER BY start_time) FROM tasks WHERE owner_id = \(user)",
                logger: t.logger)
            #expect(starts == "03-17 10:00/12:00,03-19 10:00/12:00,03-24 10:00/12:00,03-26 10:00/12:00,03-31 10:00/12:00,04-02 10:00/12:00")
            #expect(try await t.count("SELECT count(*)::int FROM allocations WHERE task_id IN (\(ids.map(String.init).joined(separator: ",")))") == 12)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE type IN ('task_start', 'task_end') AND task_id = ANY('{\(ids.map(String.init).joined(separator: ","))}')") == 12)
            // Every occurrence is an ordinary task: GET /task/{id} unchanged.
            r = try await t.request(.get, "/task/\(ids[2])", token: token)
            #expect(r.status == .ok && r.object["series_id"] == nil && r.object["start_time"] as? String == "2031-03-24T10:00:00")

            r = try await t.request(.get, "/task/series/\(series)", token: token)
            #expect(r.object["task_ids"] as? [Int] == ids && r.object["owner_id"] as? Int == user)
            #expect(try await t.request(.get, "/task/series/\(series)", token: other).status == .forbidden)
            #expect(try await t.request(.get, "/task/series/\(series)", token: try await t.adminToken()).status == .ok)
            #expect(try await t.request(.get, "/task/series/999", token: token).detail == "Series with id 999 not found!")
            // One occurrence deleted alone; then the rest from an instant on; then all.
            #expect(try await t.request(.delete, "/task/\(ids[0])", token: token).status == .ok)
            #expect(try await t.request(.get, "/task/series/\(series)", token: token).object["task_ids"] as? [Int] == Array(ids.dropFirst()))
            #expect(try await t.request(.delete, "/task/series/\(series)?from=2031-03-30T00:00", token: other).status == .forbidden)
            r = try await t.request(.delete, "/task/series/\(series)?from=2031-03-30T00:00", token: token)
            #expect(r.detail == "2 occurrences deleted")
            #expect(try await t.request(.get, "/task/series/\(series)", token: token).object["task_ids"] as? [Int] == [ids[1], ids[2], ids[3]])
            #expect(try await t.request(.delete, "/task/series/\(series)?from=soon", token: token).status == .unprocessableContent)
            #expect(try await t.request(.delete, "/task/series/\(series)", token: token).detail == "3 occurrences deleted")
            #expect(try await t.request(.get, "/task/series/\(series)", token: token).status == .notFound)
            #expect(try await t.count("SELECT count(*)::int FROM tasks WHERE owner_id = \(user)") == 0)
        }
    }

    /// One occurrence in the middle cannot be booked: 409 naming it and why, nothing written. Also a window and a limit.
    @Test func allOrNone() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (user, token) = try await t.userWithToken("series")
            let (_, blocker) = try await t.userWithToken("blocker")
            let (nodes, resources) = try await t.cluster(nodes: 1, capacity: 4)
            let cpu = resources[0]
            #expect(try await t.book(blocker, start: "2031-03-31 11:00", end: "2031-03-31 13:00", [(nodes[0], cpu, 3)]).status == .ok)
            #expect(try await t.request(
                .post, "/maintenance", token: admin,
                json: MaintenanceAPITests.window(start: "2031-04-14 00:00", end: "2031-04-15 00:00", nodes: [nodes[0]])).status == .created)
            let before = try await t.count("SELECT count(*)::int FROM tasks")
            let events = try await t.count("SELECT count(*)::int FROM events")
            var r = try await t.request(
                .post, "/task/recurring", token: token,
                json: Self.body("FREQ=WEEKLY;COUNT=6", start: "2031-03-17 10:00", end: "2031-03-17 12:00", allocations: [(nodes[0], cpu, 2)]))
            #expect(r.status == .conflict)
            let detail = r.detail ?? ""
            #expect(detail.hasPrefix("2 of 6 occurrences cannot be booked, so none is: "), "\(detail)")
            #expect(detail.contains("2031-03-31 10:00:00: not enough cpu on node node0"))
            #expect(detail.contains("2031-04-14 10:00:00: Node node0 is under maintenance from 2031-04-14T00:00:00 to 2031-04-15T00:00:00 (kernel)"))
            #expect(!detail.contains("2031-03-24"))
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == before)
            #expect(try await t.count("SELECT count(*)::int FROM events") == events)
            #expect(try await t.count("SELECT count(*)::int FROM task_series") == 0)

            // LIMIT_SCOPE=concurrent counts the series' own overlapping occurrences: daily, 30 h each, 2 of a limit of 3.
            r = try await t.request(
                .post, "/limit", token: admin,
                json: #"{"name":"cpu-3","description":null,"amount":3,"user_id":\#(user),"group_id":null,"resource_id":\#(cpu),"node_ids":[\#(nodes[0])]}"#)
            #expect(r.status == .ok, "\(r.body)")
            r = try await t.request(
                .post, "/task/recurring", token: token,
                json: Self.body("FREQ=DAILY;COUNT=3", start: "2031-06-01 00:00", end: "2031-06-02 06:00", allocations: [(nodes[0], cpu, 2)]))
            #expect(r.status == .conflict)
            #expect(r.detail?.contains("2031-06-02 00:00:00: exceeds the limit cpu-3 (3)") == true, "\(r.detail ?? "")")
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == before)
        }
    }

    @Test func badInput() async throws {
        try await withApp { t in
            let (_, token) = try await t.userWithToken("bad")
            let (nodes, resources) = try await t.cluster(nodes: 1, capacity: 4)
            let ok = TestContext.taskBody(start: "2031-03-17 10:00", end: "2031-03-17 12:00", allocations: [(nodes[0], resources[0], 1)])
            let cases: [(String, HTTPResponse.Status)] = [
                (#"{"task":\#(ok)}"#, .unprocessableContent),
                (#"{"rule":"FREQ=WEEKLY;COUNT=2"}"#, .unprocessableContent),
                (#"{"task":\#(ok),"rule":7}"#, .unprocessableContent),
                (#"{"task":\#(ok),"rule":"FREQ=HOURLY;COUNT=2"}"#, .unprocessableContent),
                (#"{"task":\#(ok),"rule":"FREQ=WEEKLY"}"#, .unprocessableContent),
                (#"{"task":\#(ok),"rule":"FREQ=DAILY;COUNT=400"}"#, .unprocessableContent),
                (#"{"task":\#(ok),"rule":"FREQ=DAILY;UNTIL=20330101"}"#, .unprocessableContent),
                (#"{"task":[],"rule":"FREQ=DAILY;COUNT=2"}"#, .unprocessableContent),
                (#"{"task":\#(TestContext.taskBody(id: 5, start: "2031-03-17 10:00", end: "2031-03-17 12:00", allocations: [(nodes[0], resources[0], 1)])),"rule":"FREQ=DAILY;COUNT=2"}"#, .badRequest),
                (#"{"task":\#(TestContext.taskBody(start: "2031-03-17 12:00", end: "2031-03-17 10:00", allocations: [(nodes[0], resources[0], 1)])),"rule":"FREQ=DAILY;COUNT=2"}"#, .badRequest),
                (#"{"task":\#(TestContext.taskBody(start: "2031-03-17 10:00", end: "2031-03-17 12:00", allocations: [(999, resources[0], 1)])),"rule":"FREQ=DAILY;COUNT=2"}"#, .notFound),
                ("[]", .unprocessableContent),
            ]
            for (body, status) in cases {
                let r = try await t.request(.post, "/task/recurring", token: token, json: body)
                #expect(r.status == status, "\(body): \(r.status) \(r.body)")
                #expect(r.detail != nil)
            }
            #expect(try await t.request(.post, "/task/recurring", json: #"{"task":\#(ok),"rule":"FREQ=DAILY;COUNT=2"}"#).status == .unauthorized)
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM task_series") == 0)
        }
    }

    /// Reminders for every occurrence, like any task.
    @Test func remindersForEveryOccurrence() async throws {
        try await withApp { t in
            let (user, token) = try await t.userWithToken("reminded")
            let (nodes, resources) = try await t.cluster(nodes: 1, capacity: 4)
            let notification = try await t.makeNotification("heads-up", type: "task_start", offset: "3600")
            #expect(try await t.assign(notification, user: user).status == .ok)
            let r = try await t.request(
                .post, "/task/recurring", token: token,
                json: Self.body("FREQ=DAILY;COUNT=4", start: "2031-03-28 09:00", end: "2031-03-28 10:00", allocations: [(nodes[0], resources[0], 1)]))
            #expect(r.status == .created)
            let due = try await t.db.text(
                "SELECT string_agg(to_char(time, 'MM-DD HH24:MI'), ',' ORDER BY time) FROM events WHERE type = 'other' AND notification_id = \(notification)",
                logger: t.logger)
            #expect(due == "03-28 08:00,03-29 08:00,03-30 08:00,03-31 08:00")
        }
    }

    /// 20 series racing on two servers for a node that holds one of them: exactly one is booked, whole.
    @Test func seriesRaceOnTwoServers() async throws {
        try await withTwoLiveServers { t, two in
            let (nodes, resources) = try await t.cluster(nodes: 1, capacity: 1)
            let (_, token) = try await t.userWithToken("racer")
            let ports = [t.client.port!, two.port!]
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<20 {
                    group.addTask {
                        var request = HTTPClientRequest(url: "http://127.0.0.1:\(ports[i % 2])/task/recurring")
                        request.method = .POST
                        request.headers.add(name: "Authorization", value: "Bearer \(token)")
                        request.headers.add(name: "Content-Type", value: "application/json")
                        // Each series starts a week later than the one before and runs 8 weeks: they all overlap.
                        let day = String(format: "%02d", 3 + (i % 4))
                        request.body = .bytes(ByteBuffer(string: Self.body(
                            "FREQ=WEEKLY;COUNT=8", start: "2031-03-\(day) 10:00", end: "2031-03-\(day) 12:00",
                            allocations: [(nodes[0], resources[0], 1)], name: "race\(i)")))
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        return Int(response.status.code)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == 201 || $0 == 409 })
            let booked = statuses.filter { $0 == 201 }.count
            #expect(booked >= 1 && booked <= 4)  // series on different weekdays do not overlap each other
            #expect(try await t.count("SELECT count(*)::int FROM tasks") == booked * 8)
            let over = try await t.count(
                """
                SELECT count(*)::int FROM allocations a JOIN allocations b
                  ON a.node_id = b.node_id AND a.resource_id = b.resource_id AND a.task_id < b.task_id
                 AND a.start_time < b.end_time AND b.start_time < a.end_time
                """)
            #expect(over == 0)
        }
    }
}
