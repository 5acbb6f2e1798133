import AsyncHTTPClient
import Foundation
import Hummingbird
import Testing

@testable import Remas

/// `GET /report/usage` and `remas report usage`: reserved figures against sums computed here, visibility, CSV, and
/// measured use from a real Prometheus scraping an exporter this test controls.
@Suite struct UsageReportTests {
    /// Rows of a JSON report by name: resource name -> (hours, peak), and the task count.
    static func rows(_ reply: TestReply) -> [String: (tasks: Int, resources: [String: (hours: Double, peak: Int)])] {
        var out: [String: (tasks: Int, resources: [String: (hours: Double, peak: Int)])] = [:]
        for row in (reply.object["rows"] as? [[String: Any]]) ?? [] {
            var resources: [String: (hours: Double, peak: Int)] = [:]
            for r in (row["resources"] as? [[String: Any]]) ?? [] {
                resources[r["resource"] as? String ?? "?"] = ((r["reserved_hours"] as? Double) ?? Double(r["reserved_hours"] as? Int ?? -1), r["peak"] as? Int ?? -1)
            }
            out[row["name"] as? String ?? "?"] = (row["tasks"] as? Int ?? -1, resources)
        }
        return out
    }

    @Test func reservedFigures() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let group = try #require(try await t.request(
                .post, "/group", token: admin, json: #"{"name":"lab \"A\", west","description":null,"users_share_statistics":false,"parent_id":1}"#
            ).object["id"] as? Int)
            let (_, ada) = try await t.userWithToken("ada", groupID: group)
            let (_, bob) = try await t.userWithToken("bob")
            let (nodes, resources) = try await t.cluster(nodes: 2, capacity: 16, resources: ["cpu", "mem"])
            let (cpu, mem) = (resources[0], resources[1])
            // The period is March 2031. Independent expectations, in amount x hours within the period:
            // ada: 4 cpu 2031-02-28 22:00 - 03-01 02:00 (2 h inside) = 8; 2 cpu + 8 mem 03-10 10:00-13:00 = 6 and 24;
            //      3 cpu 03-10 12:00-14:00 on node1 = 6 (peak cpu at once: 2 + 3 = 5 at 12:00-13:00).
            // bob: 1 cpu 03-31 23:00 - 04-01 01:00 (1 h inside) = 1; a task in April is outside.
            #expect(try await t.book(ada, start: "2031-02-28 22:00", end: "2031-03-01 02:00", [(nodes[0], cpu, 4)]).status == .ok)
            #expect(try await t.book(ada, start: "2031-03-10 10:00", end: "2031-03-10 13:00", [(nodes[0], cpu, 2), (nodes[0], mem, 8)]).status == .ok)
            #expect(try await t.book(ada, start: "2031-03-10 12:00", end: "2031-03-10 14:00", [(nodes[1], cpu, 3)]).status == .ok)
            #expect(try await t.book(bob, start: "2031-03-31 23:00", end: "2031-04-01 01:00", [(nodes[1], cpu, 1)]).status == .ok)
            #expect(try await t.book(bob, start: "2031-04-05 10:00", end: "2031-04-05 11:00", [(nodes[1], cpu, 9)]).status == .ok)
            let period = "start=2031-03-01T00:00&end=2031-04-01T00:00"

            var r = try await t.request(.get, "/report/usage?\(period)&by=user", token: admin)
            #expect(r.status == .ok)
            var rows = Self.rows(r)
            #expect(rows["ada"]?.tasks == 3 && rows["ada"]?.resources["cpu"]?.hours == 20 && rows["ada"]?.resources["cpu"]?.peak == 5)
            #expect(rows["ada"]?.resources["mem"]?.hours == 24 && rows["ada"]?.resources["mem"]?.peak == 8)
            #expect(rows["bob"]?.tasks == 1 && rows["bob"]?.resources["cpu"]?.hours == 1 && rows["bob"]?.resources["cpu"]?.peak == 1)
            #expect(r.object["used_unavailable"] == nil)  // no PROMETHEUS_URL: no measured columns at all
            rows = Self.rows(try await t.request(.get, "/report/usage?\(period)&by=node", token: admin))
            #expect(rows["node0"]?.resources["cpu"]?.hours == 14 && rows["node0"]?.tasks == 2)
            #expect(rows["node1"]?.resources["cpu"]?.hours == 7 && rows["node1"]?.resources["cpu"]?.peak == 3)
            rows = Self.rows(try await t.request(.get, "/report/usage?\(period)&by=resource", token: admin))
            #expect(rows["cpu"]?.resources["cpu"]?.hours == 21 && rows["cpu"]?.tasks == 4 && rows["cpu"]?.resources["cpu"]?.peak == 5)
            rows = Self.rows(try await t.request(.get, "/report/usage?\(period)&by=group", token: admin))
            #expect(rows["lab \"A\", west"]?.resources["cpu"]?.hours == 20 && rows["Users"]?.resources["cpu"]?.hours == 1)

            // A user sees only their own reservations.
            rows = Self.rows(try await t.request(.get, "/report/usage?\(period)&by=node", token: bob))
            #expect(rows.count == 1 && rows["node1"]?.resources["cpu"]?.hours == 1)
            #expect(Self.rows(try await t.request(.get, "/report/usage?\(period)", token: bob)).keys.sorted() == ["bob"])

            // CSV: a header row, RFC 4180 quoting, CRLF.
            r = try await t.request(.get, "/report/usage?\(period)&by=group&format=csv", token: admin)
            #expect(r.status == .ok && r.headers[.contentType] == "text/csv; charset=utf-8")
            let lines = r.body.components(separatedBy: "\r\n")
            #expect(lines.first == "group_id,group,resource,unit,reserved_hours,peak,tasks")
            #expect(lines.contains("\(group),\"lab \"\"A\"\", west\",cpu,,20,5,3"))
            #expect(lines.last == "")

            // `remas report usage` prints what the route answers an admin.
            let cli = try await runRemas(t, ["report", "usage", "--start", "2031-03-01", "--end", "2031-04-01", "--by", "group", "--csv"])
            #expect(cli.status == 0 && cli.output == r.body, "\(cli)")
            let cliJSON = try await runRemas(t, ["report", "usage", "--start", "2031-03-01", "--end", "2031-04-01", "--by", "node"])
            let http = try await t.request(.get, "/report/usage?start=2031-03-01&end=2031-04-01&by=node", token: admin)
            #expect(cliJSON.status == 0 && cliJSON.output == http.body + "\n", "\(cliJSON)")
            #expect(try await runRemas(t, ["report", "usage", "--start", "2031-04-01", "--end", "2031-03-01"]).status != 0)

            // Bad input.
            let bad: [(String, HTTPResponse.Status)] = [
                ("/report/usage?start=2031-03-01", .unprocessableContent),
                ("/report/usage?end=2031-03-01", .unprocessableContent),
                ("/report/usage?start=soon&end=2031-03-01", .unprocessableContent),
                ("/report/usage?start=2031-04-01&end=2031-03-01", .badRequest),
                ("/report/usage?\(period)&by=team", .unprocessableContent),
                ("/report/usage?\(period)&format=xml", .unprocessableContent),
                ("/report/usage?start=2001-01-01&end=2031-01-01", .badRequest),
            ]
            for (path, status) in bad {
                let reply = try await t.request(.get, path, token: admin)
                #expect(reply.status == status && reply.detail != nil, "\(path): \(reply.status) \(reply.body)")
            }
            #expect(try await t.request(.get, "/report/usage?\(period)").status == .unauthorized)
        }
    }

    /// Measured use from a real Prometheus (scripts/test's, scraping an exporter served here every second): CPU
    /// core-hours, peak memory and efficiency per user; an unreachable Prometheus leaves the reserved figures and says why.
    @Test func measuredUseFromPrometheus() async throws {
        let environment = ProcessInfo.processInfo.environment
        let prometheus = try #require(environment["PROMETHEUS_URL"], "scripts/test starts Prometheus and sets PROMETHEUS_URL")
        // scripts/usage-exporter.py, scraped every second: uid 7001 uses 2 cores and 1 GiB, uid 7002 half a core and 256 MiB.
        let extra = ["PROMETHEUS_URL": prometheus, "USAGE_MEMORY_QUERY": "max_over_time((sum by (groupname) (namedprocess_namegroup_memory_bytes{memtype=\"resident\"}))[${range}:1s])"]
        try await withApp(extra: extra) { t in
            let admin = try await t.adminToken()
            let (nodes, resources) = try await t.cluster(nodes: 1, capacity: 16, resources: ["cpu", "mem"])
            let (_, ada) = try await t.userWithToken("ada7001")
            let (_, bob) = try await t.userWithToken("bob7002")
            try await t.db.execute("UPDATE users SET uid = 7001 WHERE username = 'ada7001'", logger: t.logger)
            try await t.db.execute("UPDATE users SET uid = 7002 WHERE username = 'bob7002'", logger: t.logger)
            let from = try await t.wallClock(minutes: -60)
            let to = try await t.wallClock(minutes: 60)
            #expect(try await t.book(ada, start: from, end: to, [(nodes[0], resources[0], 4)]).status == .ok)
            #expect(try await t.book(bob, start: from, end: to, [(nodes[0], resources[0], 1)]).status == .ok)
            // Enough scrapes for increase() over the period.
            var query = HTTPClientRequest(url: "\(prometheus)/api/v1/query?query=" + "count_over_time(namedprocess_namegroup_cpu_seconds_total{groupname=\"7001\"}[30s])".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)
            query.method = .GET
            let scraped = try await waitUntil(timeout: 40) {
                let response = try await HTTPClient.shared.execute(query, timeout: .seconds(5))
                let body = try await response.body.collect(upTo: 1 << 20)
                let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
                let value = (((json?["data"] as? [String: Any])?["result"] as? [[String: Any]])?.first?["value"] as? [Any])?.last as? String
                return Int(value ?? "0") ?? 0 >= 9
            }
            #expect(scraped)
            let period = try #require(try await t.db.text(
                "SELECT 'start=' || to_char(localtimestamp - interval '8 seconds', 'YYYY-MM-DD\"T\"HH24:MI:SS') || '&end=' || to_char(localtimestamp, 'YYYY-MM-DD\"T\"HH24:MI:SS')",
                logger: t.logger))
            let r = try await t.request(.get, "/report/usage?\(period)&by=user", token: admin)
            #expect(r.status == .ok, "\(r.body)")
            #expect(r.object["used_unavailable"] is NSNull)
            let rows = (r.object["rows"] as? [[String: Any]]) ?? []
            let adaRow = try #require(rows.first { $0["name"] as? String == "ada7001" })
            let used = try #require(adaRow["used"] as? [String: Any])
            // 2 cores for 8 s = 0.00444 core-hours; reserved 4 cores: efficiency 0.5 (Prometheus extrapolates: a margin).
            let cpuHours = (used["cpu_core_hours"] as? Double) ?? Double(used["cpu_core_hours"] as? Int ?? 0)
            #expect(cpuHours > 0.0030 && cpuHours < 0.0060, "\(used)")
            let efficiency = (used["efficiency"] as? Double) ?? 0
            #expect(efficiency > 0.35 && efficiency < 0.65, "\(used)")
            #expect((used["peak_memory_bytes"] as? Int) == 1_073_741_824 || (used["peak_memory_bytes"] as? Double) == 1_073_741_824, "\(used)")
            let bobUsed = try #require(rows.first { $0["name"] as? String == "bob7002" }?["used"] as? [String: Any])
            #expect(((bobUsed["efficiency"] as? Double) ?? 0) > 0.3 && ((bobUsed["efficiency"] as? Double) ?? 1) < 0.7, "\(bobUsed)")
            let csv = try await t.request(.get, "/report/usage?\(period)&by=user&format=csv", token: admin)
            #expect(csv.body.hasPrefix("user_id,user,resource,unit,reserved_hours,peak,tasks,used_cpu_core_hours,used_peak_memory_bytes,efficiency,used_unavailable\r\n"))
        }
        // Prometheus unreachable: the reserved figures, empty measured columns, and why.
        try await withApp(extra: ["PROMETHEUS_URL": "http://127.0.0.1:1", "PROMETHEUS_TIMEOUT_SECONDS": "2"]) { t in
            let (nodes, resources) = try await t.cluster(nodes: 1, capacity: 16)
            let (_, ada) = try await t.userWithToken("ada")
            #expect(try await t.book(ada, start: "2031-03-10 10:00", end: "2031-03-10 12:00", [(nodes[0], resources[0], 3)]).status == .ok)
            let r = try await t.request(.get, "/report/usage?start=2031-03-01&end=2031-04-01", token: try await t.adminToken())
            #expect(r.status == .ok)
            #expect((r.object["used_unavailable"] as? String)?.hasPrefix("Prometheus at http://127.0.0.1:1: ") == true, "\(r.body)")
            let row = try #require((r.object["rows"] as? [[String: Any]])?.first)
            #expect(Self.rows(r)["ada"]?.resources["cpu"]?.hours == 6)
            #expect((row["used"] as? [String: Any])?["cpu_core_hours"] is NSNull)
        }
    }
}
