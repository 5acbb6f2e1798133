import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import Testing

@testable import Remas

/// `GET /metrics`: request series by route template, and the database state read at scrape time; then the same
/// series read back through a real Prometheus (started by scripts/test) that scrapes a real server process.
@Suite struct MetricsTests {
    static func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    /// The shipped Grafana dashboard and provisioning fit what the server exposes: every remas series a panel queries
    /// is in `/metrics`, every panel reads the provisioned datasource, whose uid the rule templates name too.
    @Test func shippedDashboardQueriesExposedSeries() async throws {
        let root = URL(fileURLWithPath: TestDatabase.migrationsPath).deletingLastPathComponent()
        let dashboard = try JSONValue.parse(text: Array(try Data(contentsOf: root.appendingPathComponent("docker/grafana/dashboards/remas-cluster.json"))))
        let datasources = try String(contentsOf: root.appendingPathComponent("docker/grafana/provisioning/datasources/remas.yaml"), encoding: .utf8)
        #expect(datasources.contains("uid: remas-prometheus"))
        for template in ["CPU_Notificaion_template.json", "Memory_Notification_template.json"] {
            let text = try String(contentsOf: root.appendingPathComponent("grafana_templates/\(template)"), encoding: .utf8)
            #expect(text.contains(#""datasourceUid": "remas-prometheus""#), "\(template)")
        }
        let panels = dashboard["panels"]?.arrayValue ?? []
        #expect(panels.count == 2)
        var expressions: [String] = []
        for panel in panels {
            #expect(panel["datasource"]?["uid"]?.stringValue == "remas-prometheus")
            #expect(panel["repeat"]?.stringValue == "node")
            expressions += (panel["targets"]?.arrayValue ?? []).compactMap { $0["expr"]?.stringValue }
        }
        let series = Set(expressions.flatMap { $0.matches(of: /remas_[a-z_]+/).map { String($0.output) } })
        #expect(series == ["remas_node_resource_reserved", "remas_node_resource_capacity"])
        try await withApp { t in
            _ = try await t.cluster(nodes: 1, capacity: 4, resources: ["cpu", "mem"])
            let text = try await t.request(.get, "/metrics").body
            for name in series { #expect(text.contains("\n\(name){node=\"node0\",resource=\"cpu\"}"), "\(name)") }
        }
    }

    @Test func exposition() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let cluster = try await t.cluster(nodes: 2, capacity: 16, resources: ["cpu", "mem"])
            let (n1, cpu) = (cluster.0[0], cluster.1[0])
            let (_, token) = try await t.userWithToken("mia")
            #expect(try await t.book(token, start: try await t.wallClock(minutes: -10), end: try await t.wallClock(minutes: 50), [(n1, cpu, 5)]).status == .ok)
            #expect(try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 7)]).status == .ok)
            #expect(try await t.book(token, start: "2020-01-01 10:00", end: "2020-01-01 11:00", [(n1, cpu, 7)]).status == .ok)
            #expect(try await t.request(.get, "/node/\(n1)", token: admin).status == .ok)
            #expect(try await t.request(.get, "/node/999999", token: admin).status == .notFound)
            #expect(try await t.request(.get, "/no/such/path").status == .notFound)

            let reply = try await t.request(.get, "/metrics")
            #expect(reply.status == .ok)
            #expect(reply.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = reply.body
            // Route templates, not paths; statuses as answered (errors included); unmatched paths in one series.
            #expect(text.contains(#"remas_http_requests_total{route="/node/{node_id}",method="GET",status="200"} 1"#))
            #expect(text.contains(#"remas_http_requests_total{route="/node/{node_id}",method="GET",status="404"} 1"#))
            #expect(text.contains(#"remas_http_requests_total{route="unmatched",method="GET",status="404"} 1"#))
            #expect(!text.contains("999999"))
            #expect(text.contains(#"remas_http_request_duration_seconds_bucket{route="/node/{node_id}",method="GET",le="#))
            #expect(Self.value(text, #"remas_node_resource_capacity{node="node0",resource="cpu"}"#) == 16)
            #expect(Self.value(text, #"remas_node_resource_reserved{node="node0",resource="cpu"}"#) == 5)
            #expect(Self.value(text, #"remas_node_resource_reserved{node="node1",resource="mem"}"#) == 0)
            #expect(Self.value(text, #"remas_tasks{status="running"}"#) == 1)
            #expect(Self.value(text, #"remas_tasks{status="scheduled"}"#) == 1)
            #expect(Self.value(text, #"remas_tasks{status="finished"}"#) == 1)
            #expect(Self.value(text, "remas_grafana_sync_pending") == 0)
            #expect(Self.value(text, "remas_grafana_users_synced_total") == 0)
            // No scheduler runs in these tests: the 2020 task's start and end events wait, and the lag says so.
            #expect((Self.value(text, "remas_scheduler_lag_seconds") ?? 0) > 86_400)
            #expect(Self.value(text, "remas_events_pending") == 6)
            #expect(Self.value(text, #"remas_db_connections{state="in_use"}"#) != nil)
            #expect(Self.value(text, "remas_db_connections_max") == 4)
            #expect(text.contains("# TYPE remas_node_resource_capacity gauge"))
        }
    }

    @Test func metricsCanBeTurnedOff() async throws {
        try await withApp(extra: ["METRICS_ENABLED": "false"]) { t in
            let metrics = try await t.request(.get, "/metrics")
            let health = try await t.request(.get, "/health")
            #expect(metrics.status == .notFound && health.status == .ok)
        }
    }

    /// A node name with a quote and a backslash stays one valid label value.
    @Test func labelValuesAreEscaped() {
        var out = Exposition()
        out.sample("x", [("node", "a\"b\\c\nd")], 1)
        #expect(out.text == "x{node=\"a\\\"b\\\\c\\nd\"} 1\n")
    }

    @Test func prometheusScrapesARealServer() async throws {
        let environment = ProcessInfo.processInfo.environment
        let prometheus = try #require(environment["PROMETHEUS_URL"], "scripts/test starts Prometheus and sets PROMETHEUS_URL")
        let port = try #require(environment["PROMETHEUS_TARGET_PORT"].flatMap { Int($0) })
        try await withApp { t in
            let node = try await t.makeNode("scraped-\(UInt32.random(in: 0...UInt32.max))")
            let cpu = try await t.makeResource("cpu")
            try await t.provide(node: node, resource: cpu, amount: 48)
            let name = try #require(try await t.db.text("SELECT name FROM nodes WHERE id = \(node)", logger: t.logger))
            let server = try launchServer(t, log: NSTemporaryDirectory() + "remas-metrics-\(port).log", port: port)
            defer { server.terminate() }
            let query = #"remas_node_resource_capacity{node="\#(name)",resource="cpu"}"#
            var request = HTTPClientRequest(
                url: "\(prometheus)/api/v1/query?query=" + query.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)
            request.method = .GET
            var seen: String?
            let found = try await waitUntil(timeout: 30) {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
                let body = try await response.body.collect(upTo: 1 << 20)
                let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
                let results = (json?["data"] as? [String: Any])?["result"] as? [[String: Any]] ?? []
                seen = (results.first?["value"] as? [Any])?.last as? String
                return seen == "48"
            }
            #expect(found, "Prometheus returned \(seen ?? "nothing") for \(query)")
        }
    }
}
