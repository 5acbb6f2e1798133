import Foundation
import Hummingbird
import Testing

@testable import Remas

@Suite struct APIDocumentTests {
    /// Every route the router registers is documented, and every documented operation is a route.
    @Test(arguments: [true, false]) func documentListsExactlyTheRoutes(metrics: Bool) async throws {
        try await withApp(extra: ["METRICS_ENABLED": metrics ? "true" : "false"]) { t in
            let table = RouteTable()
            let environment = AppEnvironment(
                configuration: t.configuration, db: t.db, tokens: t.tokens, hasher: PasswordHasher(cost: 4),
                grafana: GrafanaSyncDisabled(), schedulerStats: SchedulerStats())
            _ = buildRouter(environment, table: table)
            let registered = table.registered
            #expect(registered.count == Set(registered).count, "a route is registered twice")

            let reply = try await t.request(.get, "/openapi.json")
            #expect(reply.status == .ok)
            #expect(reply.headers[.contentType] == "application/json")
            let document = try JSONValue.parse(text: Array(reply.body.utf8))
            #expect(document["openapi"]?.stringValue == "3.1.0")
            guard case .object(let paths)? = document["paths"] else { Issue.record("no paths"); return }
            var documented: Set<String> = []
            for (path, item) in paths {
                guard case .object(let operations) = item else { continue }
                for method in operations.keys { documented.insert("\(method.uppercased()) \(path)") }
            }
            #expect(documented.subtracting(registered).sorted() == [], "documented but not served")
            #expect(Set(registered).subtracting(documented).sorted() == [], "served but not documented")
            #expect(documented.contains("GET /metrics") == metrics)
        }
    }

    /// The routes documented with `offset`/`limit` are the ones that read them: each answers a bad `limit` with the
    /// 422 naming it, and a good window with that many elements.
    @Test func windowedRoutesReadTheWindow() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let paths = APIDocument.Operation.windowed.map { $0.replacing(/\{[a-z_]+\}/, with: "1") }
            #expect(paths.count == 15)
            for path in paths {
                let bad = try await t.request(.get, "\(path)?limit=x", token: admin)
                #expect(bad.status == .unprocessableContent, "\(path)")
                #expect(bad.detail?.hasSuffix("query.limit") == true, "\(path): \(bad.body)")
                let none = try await t.request(.get, "\(path)?limit=0", token: admin)
                #expect(none.status == .ok && none.body == "[]", "\(path): \(none.body)")
            }
        }
    }

    /// The document's own structure: every `$ref` resolves, bearer operations name the scheme and answer 401 with the
    /// error envelope, every error answer is `{"detail": string}`, path parameters match the path.
    @Test func documentIsConsistent() throws {
        let document = APIDocument.document()
        let validator = SchemaValidator(document: document)
        let text = String(decoding: document.jsonData, as: UTF8.self)
        for match in text.matches(of: /"\$ref":"#\/components\/schemas\/([A-Za-z]+)"/) {
            #expect(validator.schemas[String(match.1)] != nil, "unresolved \(match.1)")
        }
        #expect(document["components"]?["securitySchemes"]?["bearer"]?["scheme"]?.stringValue == "bearer")
        guard case .object(let paths)? = document["paths"] else { Issue.record("no paths"); return }
        for (path, item) in paths {
            guard case .object(let operations) = item else { continue }
            for (method, operation) in operations {
                let name = "\(method) \(path)"
                let secured = operation["security"]?.arrayValue?.isEmpty == false
                guard case .object(let responses)? = operation["responses"] else { Issue.record("\(name): no responses"); continue }
                #expect(responses.keys.filter { $0.hasPrefix("2") }.count == 1, "\(name)")
                if secured { #expect(responses["401"]?["headers"]?["WWW-Authenticate"] != nil, "\(name)") }
                for (code, response) in responses where !code.hasPrefix("2") {
                    #expect(response["content"]?["application/json"]?["schema"]?["$ref"]?.stringValue == "#/components/schemas/Error",
                            "\(name) \(code)")
                }
                let declared = Set(operation["parameters"]?.arrayValue?.filter { $0["in"]?.stringValue == "path" }.compactMap { $0["name"]?.stringValue } ?? [])
                #expect(declared == Set(APIDocument.pathParameters(path)), "\(name)")
                if !declared.isEmpty || operation["requestBody"] != nil { #expect(responses["422"] != nil, "\(name)") }
            }
        }
        // The validator itself: it refuses what does not conform.
        #expect(!validator.problems(["detail": 5], ["$ref": "#/components/schemas/Error"]).isEmpty)
        #expect(!validator.problems(["detail": "x", "extra": 1], ["$ref": "#/components/schemas/Error"]).isEmpty)
        #expect(!validator.problems([:], ["$ref": "#/components/schemas/Error"]).isEmpty)
        #expect(validator.problems(["detail": "x"], ["$ref": "#/components/schemas/Error"]).isEmpty)
        #expect(!validator.problems(["start_time": "2030-01-01 10:00"], ["type": "object", "properties": ["start_time": APIDocument.localTime]]).isEmpty)
    }

    @Test func docsPageRendersTheDocument() async throws {
        try await withApp { t in
            let page = try await t.request(.get, "/docs")
            #expect(page.status == .ok)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(page.body.contains(#"fetch("openapi.json")"#))
            #expect(!page.body.contains("http://") && !page.body.contains("https://"), "the page loads nothing from elsewhere")
        }
    }

    /// Real answers of every read operation, and of the writes that build the data they read, conform to the documented
    /// schemas (strictly: no undocumented keys), and the request bodies sent conform to the documented request schemas.
    @Test func answersConformToTheDocument() async throws {
        try await withApp { t in
            let document = APIDocument.document()
            let check = Conformance(t: t, document: document, token: try await t.adminToken())

            let resource = try await check.call("post", "/resource", body: ["name": "cpu", "description": nil, "unit": ""])
            let memory = try await check.call("post", "/resource", body: ["name": "mem", "unit": "Bytes (IEC)"])
            let node = try await check.call("post", "/node", body: ["name": "n1", "description": "first"])
            let nodeID = try #require(node["id"]?.intValue)
            let cpuID = try #require(resource["id"]?.intValue)
            let memID = try #require(memory["id"]?.intValue)
            try await check.call("put", "/node", body: ["id": .int(Int64(nodeID)), "name": "n1", "description": nil])
            try await check.call("post", "/node/add_resource", body: ["node_id": .int(Int64(nodeID)), "resource_id": .int(Int64(cpuID)), "amount": 8])
            try await check.call("post", "/node/add_resource", body: ["node_id": .int(Int64(nodeID)), "resource_id": .int(Int64(memID)), "amount": .int(1 << 34)])
            let alias = try await check.call("post", "/resource_alias", body: ["name": "cores", "description": nil])
            let aliasID = try #require(alias["id"]?.intValue)
            try await check.call("post", "/resource/add_alias", body: ["resource_id": .int(Int64(cpuID)), "alias_id": .int(Int64(aliasID))])
            let group = try await check.call(
                "post", "/group", body: ["name": "lab", "description": nil, "users_share_statistics": true, "parent_id": 1], status: .created)
            let groupID = try #require(group["id"]?.intValue)
            let user = try await check.call(
                "post", "/user",
                body: ["uid": 5001, "username": "alice", "email": "alice@example.org", "password": "password", "name": "Alice",
                       "surname": nil, "group_id": .int(Int64(groupID))], status: .created)
            let userID = try #require(user["id"]?.intValue)
            try await check.call("put", "/user", body: ["id": .int(Int64(userID)), "name": "Alice", "surname": "A", "username": "alice",
                                                        "email": "alice@example.org", "uid": 5001])
            let limit = try await check.call(
                "post", "/limit",
                body: ["name": "cpu-4", "description": nil, "amount": 4, "user_id": nil, "group_id": .int(Int64(groupID)),
                       "resource_id": .int(Int64(cpuID)), "node_ids": [.int(Int64(nodeID))]])
            let limitID = try #require(limit["id"]?.intValue)
            let tag = try await check.call("post", "/task_tag", body: ["name": "thesis", "description": nil])
            let tagID = try #require(tag["id"]?.intValue)
            let task = try await check.call(
                "post", "/task",
                body: ["id": nil, "name": "train", "description": nil, "tag_ids": [],
                       "resource_allocations": [["node_id": .int(Int64(nodeID)), "resource_id": .int(Int64(cpuID)), "amount": 2]],
                       "start_time": "2031-03-01T10:00:00", "end_time": "2031-03-01T12:30:00"])
            let taskID = try #require(task["id"]?.intValue)
            try await check.call("post", "/task/add_tag", body: ["task_id": .int(Int64(taskID)), "tag_id": .int(Int64(tagID))])
            let notification = try await check.call(
                "post", "/notification",
                body: ["name": "start", "description": nil, "time_offset": 600, "notification_template": "Hi ${username}",
                       "type": "task_start", "default_amount": nil, "resource_id": nil])
            let notificationID = try #require(notification["id"]?.intValue)
            try await check.call("post", "/notification/assign", body: ["notification_id": .int(Int64(notificationID)), "group_id": .int(Int64(groupID))])
            // A finished task with a fraction of a second in its times, for the finished lists.
            try await t.db.query(
                """
                WITH t AS (INSERT INTO tasks (name, start_time, end_time, owner_id)
                           VALUES ('old', '2020-01-01 10:00', '2020-01-01 11:00:00.5', 1) RETURNING id)
                INSERT INTO allocations (task_id, node_id, resource_id, amount, start_time, end_time)
                SELECT id, \(nodeID), \(memID), 1024, '2020-01-01 10:00', '2020-01-01 11:00:00.5' FROM t
                """, logger: t.logger)

            let window = try await check.call(
                "post", "/maintenance",
                body: ["name": "kernel", "description": nil, "start_time": "2031-03-01T08:00:00", "end_time": "2031-03-01T12:00:00",
                       "node_ids": [.int(Int64(nodeID))], "conflicts": "keep"], status: .created)
            let windowID = try #require(window["id"]?.intValue)
            try await check.call(
                "put", "/maintenance/{maintenance_id}", ["maintenance_id": windowID],
                body: ["name": "kernel", "start_time": "2031-03-01T08:00:00", "end_time": "2031-03-01T11:00:00", "node_ids": nil, "conflicts": "keep"])
            let key = try await check.call("post", "/apikey", body: ["name": "collector", "scopes": ["status", "alerts"]], status: .created)
            let keyID = try #require(key["id"]?.intValue)
            try await check.call("put", "/node/{node_id}/status", ["node_id": nodeID], body: ["status": "degraded", "message": "one fan"])
            try await check.call(
                "post", "/alerts/alertmanager",
                body: ["version": "4", "status": "firing", "receiver": "remas", "groupLabels": [:], "commonLabels": [:],
                       "alerts": [["status": "firing", "labels": ["alertname": "NodeDown", "node": "n1"], "annotations": ["summary": "gone"],
                                   "startsAt": "2026-12-05T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z"],
                                  ["status": "firing", "labels": ["alertname": "NodeDown", "instance": "ghost:9100"], "startsAt": "2026-12-05T10:00:00Z"]]])
            let series = try await check.call(
                "post", "/task/recurring",
                body: ["task": ["id": nil, "name": "seminar", "description": nil, "tag_ids": [],
                                "resource_allocations": [["node_id": .int(Int64(nodeID)), "resource_id": .int(Int64(cpuID)), "amount": 1]],
                                "start_time": "2031-05-05T10:00:00", "end_time": "2031-05-05T11:00:00"],
                       "rule": "FREQ=WEEKLY;COUNT=3"], status: .created)
            let seriesID = try #require(series["series_id"]?.intValue)
            let page: JSONValue = ["page_number": 0, "page_size": 10]
            let reads: [(String, String, [String: Int], JSONValue?)] = [
                ("get", "/", [:], nil), ("get", "/grafana-link", [:], nil), ("get", "/health", [:], nil), ("get", "/ready", [:], nil),
                ("get", "/user", [:], nil), ("get", "/user/{user_id}", ["user_id": userID], nil),
                ("get", "/group", [:], nil), ("get", "/group/{group_id}", ["group_id": groupID], nil),
                ("get", "/node", [:], nil), ("get", "/node/{node_id}", ["node_id": nodeID], nil),
                ("get", "/resource", [:], nil), ("get", "/resource/{resource_id}", ["resource_id": cpuID], nil),
                ("get", "/resource_alias", [:], nil), ("get", "/resource_alias/{alias_id}", ["alias_id": aliasID], nil),
                ("get", "/limit", [:], nil), ("get", "/limit/{limit_id}", ["limit_id": limitID], nil),
                ("get", "/limit/user/{user_id}", ["user_id": userID], nil), ("get", "/limit/group/{group_id}", ["group_id": groupID], nil),
                ("get", "/limit/user_all/{user_id}", ["user_id": userID], nil),
                ("get", "/limit/group_all/{group_id}", ["group_id": groupID], nil),
                ("get", "/limit/usage/{user_id}?start=2031-03-01T00:00:00&end=2031-03-02T00:00:00", ["user_id": userID], nil),
                ("get", "/task_tag", [:], nil), ("get", "/task_tag/{task_tag_id}", ["task_tag_id": tagID], nil),
                ("get", "/task_tag/user/{user_id}", ["user_id": 1], nil), ("get", "/task_tag/group/{group_id}", ["group_id": 3], nil),
                ("get", "/task", [:], nil), ("get", "/task/{task_id}", ["task_id": taskID], nil),
                ("get", "/task/user/{user_id}", ["user_id": 1], nil),
                ("post", "/task/user/{user_id}/active", ["user_id": 1], page), ("post", "/task/user/{user_id}/finished", ["user_id": 1], page),
                ("post", "/task/active", [:], page), ("post", "/task/finished", [:], page),
                ("post", "/task/get_scheduling", [:], ["start_time": "2031-03-01T00:00:00", "end_time": "2031-03-02T00:00:00", "exclude_task_id": 0]),
                ("get", "/notification", [:], nil), ("get", "/notification/{notification_id}", ["notification_id": notificationID], nil),
                ("get", "/notification/group/{group_id}", ["group_id": groupID], nil),
                ("get", "/notification/user/{user_id}", ["user_id": userID], nil),
                ("get", "/notification/owner/{owner_id}", ["owner_id": 1], nil),
                ("get", "/maintenance", [:], nil), ("get", "/maintenance?start=2031-01-01T00:00:00", [:], nil),
                ("get", "/maintenance/{maintenance_id}", ["maintenance_id": windowID], nil),
                ("get", "/apikey", [:], nil), ("get", "/node/status", [:], nil),
                ("get", "/task/series/{series_id}", ["series_id": seriesID], nil),
                ("get", "/report/usage?start=2031-03-01T00:00:00&end=2031-04-01T00:00:00&by=user", [:], nil),
                ("get", "/report/usage?start=2031-03-01T00:00:00&end=2031-04-01T00:00:00&by=resource", [:], nil),
            ]
            for (method, path, parameters, body) in reads {
                let answer = try await check.call(method, path, parameters, body: body)
                if case .array(let items) = answer, ["/user", "/task", "/task/active", "/task/finished", "/notification"].contains(path) {
                    #expect(!items.isEmpty, "\(path) gave an empty list: the fixture does not exercise its schema")
                }
            }
            // Writes that remove things, and the error envelope of a refusal.
            try await check.call("post", "/task/remove_tag", body: ["task_id": .int(Int64(taskID)), "tag_id": .int(Int64(tagID))])
            try await check.call("post", "/notification/unassign", body: ["notification_id": .int(Int64(notificationID)), "group_id": .int(Int64(groupID))])
            try await check.call("delete", "/task/{task_id}", ["task_id": taskID])
            try await check.call("delete", "/limit/{limit_id}", ["limit_id": limitID])
            try await check.call("delete", "/maintenance/{maintenance_id}", ["maintenance_id": windowID])
            try await check.call("delete", "/apikey/{apikey_id}", ["apikey_id": keyID])
            try await check.call("post", "/calendar/token")
            try await check.call("delete", "/calendar/token")
            try await check.call("delete", "/task/series/{series_id}?from=2031-05-10T00:00:00", ["series_id": seriesID])
            try await check.call("delete", "/task/series/{series_id}", ["series_id": seriesID])
            try await check.call("post", "/node", body: ["name": "n1"], status: .conflict)
            try await check.call("delete", "/node/{node_id}", ["node_id": nodeID])
            try await check.call("get", "/node/{node_id}", ["node_id": 999_999], status: .notFound)
            try await check.call("get", "/user/{user_id}", ["user_id": 1], anonymous: true, status: .unauthorized)
        }
    }
}

/// Sends requests described by the document and records an issue for every mismatch between traffic and document.
final class Conformance: Sendable {
    let t: TestContext
    let document: JSONValue
    let validator: SchemaValidator
    let token: String

    init(t: TestContext, document: JSONValue, token: String) {
        self.t = t
        self.document = document
        self.validator = SchemaValidator(document: document)
        self.token = token
    }

    @discardableResult
    func call(
        _ method: String, _ path: String, _ parameters: [String: Int] = [:], body: JSONValue? = nil,
        anonymous: Bool = false, status: HTTPResponse.Status = .ok
    ) async throws -> JSONValue {
        let name = "\(method.uppercased()) \(path)"
        let template = String(path.split(separator: "?", maxSplits: 1)[0])
        guard let operation = self.document["paths"]?[template]?[method] else {
            Issue.record(Comment(rawValue: "\(name): not documented"))
            return .null
        }
        if let body {
            let schema = operation["requestBody"]?["content"]?["application/json"]?["schema"] ?? .null
            for problem in self.validator.problems(body, schema) { Issue.record(Comment(rawValue: "\(name) request: \(problem)")) }
        }
        var uri = path
        for (key, value) in parameters { uri = uri.replacingOccurrences(of: "{\(key)}", with: String(value)) }
        let reply = try await self.t.request(
            HTTPRequest.Method(rawValue: method.uppercased())!, uri, token: anonymous ? nil : self.token,
            json: body.map { String(decoding: $0.jsonData, as: UTF8.self) })
        guard reply.status == status else {
            Issue.record(Comment(rawValue: "\(name): status \(reply.status.code), wanted \(status.code): \(reply.body.prefix(200))"))
            return .null
        }
        guard let response = operation["responses"]?[String(status.code)] ?? operation["responses"]?["5XX"] else {
            Issue.record(Comment(rawValue: "\(name): status \(status.code) is not documented"))
            return .null
        }
        let value = try JSONValue.parse(text: Array(reply.body.utf8))
        let schema = response["content"]?["application/json"]?["schema"] ?? .null
        for problem in self.validator.problems(value, schema) { Issue.record(Comment(rawValue: "\(name) answer: \(problem)")) }
        return value
    }
}
