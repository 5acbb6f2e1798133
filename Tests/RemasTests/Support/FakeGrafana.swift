import AsyncHTTPClient
import Foundation
import Synchronization
import NIOCore
import NIOHTTP1

@testable import Remas

/// `scripts/fake-grafana.py` as a child process on a free loopback port: one per test, so tests never share state.
final class FakeGrafana: Sendable {
    let process: Process
    let port: Int
    let password: String
    let input: Pipe

    static var scriptPath: String {
        if let path = ProcessInfo.processInfo.environment["FAKE_GRAFANA_SCRIPT"] { return path }
        return RepositoryFiles.url("scripts/fake-grafana.py").path
    }

    init() throws {
        self.password = "pw-" + UUID().uuidString.prefix(8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [Self.scriptPath, "--port", "0", "--user", "remas-admin", "--password", self.password, "--exit-with-stdin"]
        let out = Pipe()
        process.standardOutput = out
        // Held open by this process only: when the test process ends, however, the fake sees EOF and exits.
        let input = Pipe()
        process.standardInput = input
        self.input = input
        try process.run()
        // First line: "listening on <port>".
        var line = Data()
        while let byte = try out.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) { line.append(byte) }
        guard let port = String(decoding: line, as: UTF8.self).split(separator: " ").last.flatMap({ Int($0) }) else {
            process.terminate()
            throw TestFailure("fake Grafana did not start: \(String(decoding: line, as: UTF8.self))")
        }
        self.process = process
        self.port = port
        // Kept for the life of the test process: on deallocation Foundation closes the parent's copies of the pipe
        // ends again, and a descriptor number closed twice can belong to another test's socket by then (seen: the
        // port-taken crash test's listening socket vanished, and the server it launched ran on).
        Self.keptPipes.withLock { $0 += [out, input] }
    }

    static let keptPipes = Mutex<[Pipe]>([])

    deinit { self.stop() }

    /// SIGTERM ends the fake at once (not waited for: `waitUntilExit` spins off the main thread on Linux).
    func stop() {
        if self.process.isRunning { self.process.terminate() }
    }

    var url: String { "http://127.0.0.1:\(self.port)/" }

    /// Server settings pointing at this fake.
    var environment: [String: String] {
        ["GRAFANA_URL": self.url, "GRAFANA_USERNAME": "remas-admin", "GRAFANA_PASSWORD": self.password, "GRAFANA_TIMEOUT_SECONDS": "2"]
    }

    var settings: GrafanaSettings {
        GrafanaSettings(enabled: true, url: self.url, username: "remas-admin", password: self.password, timeoutSeconds: 2, retryLimitSeconds: 60)
    }

    func control(_ method: HTTPMethod, _ path: String, _ body: String? = nil) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(self.port)/_fake/\(path)")
        request.method = method
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 256 << 20)
        return (try JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any]) ?? [:]
    }

    func state() async throws -> GrafanaState { GrafanaState(raw: try await self.control(.GET, "state")) }

    /// `fail`: answer every API call with this status; `hang`: hold every call.
    func mode(fail: Int? = nil, hang: Bool = false) async throws {
        _ = try await self.control(.POST, "mode", #"{"fail":\#(fail.map(String.init) ?? "null"),"hang":\#(hang)}"#)
    }
}

/// What the fake holds, with helpers for the checks tests make.
struct GrafanaState {
    let raw: [String: Any]
    var rules: [[String: Any]] { self.raw["rules"] as? [[String: Any]] ?? [] }
    var folders: [[String: Any]] { self.raw["folders"] as? [[String: Any]] ?? [] }
    var users: [[String: Any]] { self.raw["users"] as? [[String: Any]] ?? [] }
    var contactPoints: [[String: Any]] { self.raw["contactPoints"] as? [[String: Any]] ?? [] }
    var refused: [[String: Any]] { self.raw["refused"] as? [[String: Any]] ?? [] }
    var unknown: [[String: Any]] { self.raw["unknown"] as? [[String: Any]] ?? [] }
    var calls: [String: Int] { self.raw["calls"] as? [String: Int] ?? [:] }
    var passwords: [String: String] { self.raw["passwords"] as? [String: String] ?? [:] }

    func rules(of username: String) -> [[String: Any]] {
        self.rules.filter { ($0["labels"] as? [String: String])?["username"] == username }
    }

    /// The rule of (user, notification, node), if any.
    func rule(_ username: String, notification: Int, node: Int) -> [String: Any]? {
        self.rules(of: username).first {
            let labels = $0["labels"] as? [String: String] ?? [:]
            return labels["notification_id"] == String(notification) && labels["node_id"] == String(node)
        }
    }

    func user(_ login: String) -> [String: Any]? { self.users.first { $0["login"] as? String == login } }
    func folderTitles() -> Set<String> { Set(self.folders.compactMap { $0["title"] as? String }) }
    func folderUID(_ title: String) -> String? { self.folders.first { $0["title"] as? String == title }?["uid"] as? String }
    func permissions(_ folderUID: String) -> [[String: Any]] {
        (self.raw["permissions"] as? [String: [[String: Any]]])?[folderUID] ?? []
    }

    /// The threshold of a rendered rule: the first param of the threshold expression's evaluator.
    static func threshold(_ rule: [String: Any]?) -> Double? {
        guard let data = rule?["data"] as? [[String: Any]] else { return nil }
        for query in data {
            if let model = query["model"] as? [String: Any], let conditions = model["conditions"] as? [[String: Any]],
                let evaluator = conditions.first?["evaluator"] as? [String: Any], let params = evaluator["params"] as? [Any]
            {
                return (params.first as? NSNumber)?.doubleValue
            }
        }
        return nil
    }

    static func isDefault(_ rule: [String: Any]?) -> String? { (rule?["labels"] as? [String: String])?["default"] }
}

extension TestContext {
    /// A Grafana sync worker on this test's schema (driven pass by pass), against `fake`.
    func grafanaWorker(_ fake: FakeGrafana, clock: any SchedulerClock = WallClock(zone: TimeZone(identifier: "Europe/Prague")!))
        -> GrafanaSyncWorker
    {
        GrafanaSyncWorker(
            settings: fake.settings, db: self.db, secretKey: self.configuration.secretKey, clock: clock,
            logger: self.logger)
    }

    /// The shipped rule template `name` (from `grafana_templates/`).
    static func ruleTemplate(_ name: String) throws -> String {
        let url = RepositoryFiles.url("grafana_templates/\(name)")
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// A Grafana notification created through the API by the admin.
    func makeGrafanaNotification(
        _ name: String, type: String = "grafana_resource_exceedance_task", resource: Int, defaultAmount: Int64,
        template: String? = nil
    ) async throws -> Int {
        let text = try template ?? Self.ruleTemplate("CPU_Notificaion_template.json")
        let r = try await self.request(
            .post, "/notification", token: try await self.adminToken(),
            json: JSONValue.object([
                "name": .string(name), "type": .string(type), "resource_id": .int(Int64(resource)), "default_amount": .int(defaultAmount),
                "notification_template": .string(text),
            ]).jsonText)
        guard r.status == .ok, let id = r.object["id"] as? Int else { throw TestFailure("notification not created: \(r.status) \(r.body)") }
        return id
    }

    func outboxCount() async throws -> Int { try await self.count("SELECT count(*)::int FROM grafana_outbox") }

    /// Makes every queued user due now (skips the backoff wait).
    func outboxDueNow() async throws {
        try await self.db.execute("UPDATE grafana_outbox SET retry_at = localtimestamp - interval '1 second'", logger: self.logger)
    }
}
