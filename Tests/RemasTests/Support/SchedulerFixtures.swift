import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

@testable import Remas

/// The real SMTP server `scripts/test` starts (aiosmtpd: STARTTLS and implicit TLS, AUTH), and what it delivered.
enum SMTPTestServer {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    static func require(_ key: String) throws -> String {
        guard let value = environment[key], !value.isEmpty else {
            throw TestFailure("\(key) is not set: run the tests through scripts/test, which starts the SMTP test server")
        }
        return value
    }

    static var directory: String { environment["SMTP_TEST_DIR"] ?? "/nonexistent" }

    /// Settings that reach the test server (STARTTLS on its STARTTLS port, implicit TLS on the other), verifying its
    /// certificate against the CA made for this run.
    static func settings(startTLS: Bool = true) throws -> SMTPSettings {
        SMTPSettings(
            enabled: true, host: "localhost",
            port: Int(try require(startTLS ? "SMTP_TEST_STARTTLS_PORT" : "SMTP_TEST_TLS_PORT"))!,
            user: try require("SMTP_TEST_USER"), password: try require("SMTP_TEST_PASSWORD"),
            fromAddress: "remas@cluster.example", fromName: "REMAS", startTLS: startTLS, verifyCertificate: true,
            caFile: try require("SMTP_TEST_CA"), timeoutSeconds: 20)
    }

    /// The parsed messages delivered to `address`, oldest first.
    static func messages(to address: String) -> [[String: Any]] {
        let folder = URL(fileURLWithPath: directory).appendingPathComponent(address)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().compactMap { name in
            guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) else { return nil }
            return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        }
    }

    /// Waits until `address` has at least `count` messages (or the timeout passes) and returns them.
    static func waitForMessages(to address: String, count: Int, timeout: Double = 15) async throws -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let found = messages(to: address)
            if found.count >= count { return found }
            try await Task.sleep(for: .milliseconds(50))
        }
        return messages(to: address)
    }

    static func isHanging(_ address: String) -> Bool {
        FileManager.default.fileExists(atPath: "\(directory)/hanging-\(address)")
    }

    static func release(_ address: String) {
        FileManager.default.createFile(atPath: "\(directory)/release-\(address)", contents: Data())
    }

    /// A fresh address nobody else uses; `prefix` steers the server (`reject-`, `hang-`).
    static func address(_ prefix: String = "user") -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())@cluster.example"
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A clock the test sets.
final class FixedClock: SchedulerClock {
    private let value: Mutex<LocalDateTime>
    init(_ text: String) { self.value = Mutex(LocalDateTime.parse(text, zone: TimeZone(identifier: "Europe/Prague")!)!) }
    func now() -> LocalDateTime { self.value.withLock { $0 } }
    func set(_ text: String) { self.value.withLock { $0 = LocalDateTime.parse(text, zone: TimeZone(identifier: "Europe/Prague")!)! } }
}

/// Records what reaches the Grafana seam.
final class RecordingGrafana: GrafanaSync {
    private let calls = Mutex<[[Int]]>([])
    /// The user ids of every `.users` change, in order.
    var allocationChanges: [[Int]] { self.calls.withLock { $0 } }

    func touched(by change: GrafanaChange, logger: Logger) async throws -> GrafanaTouched {
        if case .users(let ids) = change { self.calls.withLock { $0.append(ids) } }
        return .nobody
    }
    func enqueue(_ touched: GrafanaTouched, logger: Logger) async throws {}
}

extension TestContext {
    /// A scheduler on this test's schema; `body` runs with it, its connections close afterwards.
    func withScheduler<T: Sendable>(
        clock: any SchedulerClock, smtp: SMTPSettings? = nil, precision: Int = 0, retryLimit: Int = 1, maxAttempts: Int = 3,
        workers: Int = 2, grafana: any GrafanaSync = RecordingGrafana(),
        _ body: @Sendable (Scheduler) async throws -> T
    ) async throws -> T {
        let scheduler = Scheduler(
            target: self.configuration.databaseTarget,
            settings: SchedulerSettings(
                enabled: true, precisionSeconds: precision, retryLimitSeconds: retryLimit, maxAttempts: maxAttempts, workers: workers),
            smtp: try smtp ?? SMTPTestServer.settings(), clock: clock, grafana: grafana, logger: self.logger)
        do {
            let value = try await body(scheduler)
            scheduler.stop()
            await scheduler.shutdown()
            return value
        } catch {
            scheduler.stop()
            await scheduler.shutdown()
            throw error
        }
    }

    /// A notification created through the API by the admin (so it has no owner).
    func makeNotification(
        _ name: String, type: String = "task_start", offset: String = "0", template: String = "Hello ${user_username}, $task_name"
    ) async throws -> Int {
        let r = try await self.request(
            .post, "/notification", token: try await self.adminToken(),
            json: JSONValue.object([
                "name": .string(name), "type": .string(type), "time_offset": try JSONValue.parse(text: Array(offset.utf8)),
                "notification_template": .string(template),
            ]).jsonText)
        guard r.status == .ok, let id = r.object["id"] as? Int else { throw TestFailure("notification not created: \(r.status) \(r.body)") }
        return id
    }

    func assign(_ notification: Int, user: Int? = nil, group: Int? = nil, unassign: Bool = false) async throws -> TestReply {
        let body = #"{"notification_id":\#(notification),"user_id":\#(user.map(String.init) ?? "null"),"group_id":\#(group.map(String.init) ?? "null")}"#
        return try await self.request(.post, unassign ? "/notification/unassign" : "/notification/assign", token: try await self.adminToken(), json: body)
    }

    /// A user whose e-mail address is `email`, with a token.
    func userWithEmail(_ email: String, groupID: Int = 3) async throws -> (Int, String) {
        let username = "u" + UUID().uuidString.prefix(10).lowercased()
        let id = try await self.makeUser(username, groupID: groupID)
        try await self.db.execute("UPDATE users SET email = \(email) WHERE id = \(id)", logger: self.logger)
        return (id, try await self.token(id, username, admin: false))
    }

    /// (state, attempts) of the reminder of `task` for `notification`.
    func reminder(task: Int, notification: Int) async throws -> (String, Int)? {
        let rows = try await self.db.query(
            "SELECT state, attempts FROM events WHERE task_id = \(task) AND notification_id = \(notification)", logger: self.logger)
        return try rows.first.map { try $0.decode((String, Int).self) }
    }
}
