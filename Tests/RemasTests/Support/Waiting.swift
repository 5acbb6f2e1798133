import Foundation
import Logging
import PostgresNIO
import Testing

@testable import Remas

/// Polls `condition` every 50 ms until it holds or `timeout` seconds passed; the last answer is the result. Tests wait
/// for a state they can observe with it, never for a fixed time.
func waitUntil(timeout: Double, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// Whether a backend that `filter` picks (a condition on `pg_stat_activity`) is seen waiting for a lock within `timeout`
/// seconds: how a test knows that a transaction it started now queues behind another.
func seenWaitingForLock(_ db: Database, _ filter: String, timeout: Double = 10, logger: Logger) async throws -> Bool {
    try await waitUntil(timeout: timeout) {
        try await db.exists(
            PostgresQuery(unsafeSQL: "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND (\(filter))"), logger: logger)
    }
}

/// A one-way signal between tasks of a test.
actor Flag {
    private(set) var isRaised = false
    func raise() { self.isRaised = true }
}

/// The `remas` binary (`REMAS_BINARY`, built by scripts/test) serving `t`'s schema as a separate process, its output
/// in `log`.
func launchServer(_ t: TestContext, log: String, port: Int = 0, extra: [String: String] = [:]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try SMTPTestServer.require("REMAS_BINARY"))
    process.arguments = ["serve"]
    process.environment = try remasEnvironment(t, port: port, extra: extra)
    FileManager.default.createFile(atPath: log, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    return process
}

/// Runs a `remas` command (`REMAS_BINARY`) on `t`'s schema to its end: its exit status and standard output.
func runRemas(_ t: TestContext, _ arguments: [String], extra: [String: String] = [:]) async throws -> (status: Int32, output: String) {
    let out = NSTemporaryDirectory() + "remas-cli-\(UUID().uuidString).txt"
    FileManager.default.createFile(atPath: out, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: out) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try SMTPTestServer.require("REMAS_BINARY"))
    process.arguments = arguments
    process.environment = try remasEnvironment(t, port: 0, extra: extra)
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
    process.standardError = FileHandle.nullDevice
    try process.run()
    _ = try await waitUntil(timeout: 60) { !process.isRunning }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    return (process.terminationStatus, try String(contentsOfFile: out, encoding: .utf8))
}

/// The environment of a `remas` process on `t`'s schema, mailing through the SMTP test server.
private func remasEnvironment(_ t: TestContext, port: Int, extra: [String: String]) throws -> [String: String] {
    var env: [String: String] = [
        "DATABASE_URL": TestDatabase.url, "DB_SEARCH_PATH": t.configuration.searchPath ?? "", "DB_PREWARM": "false",
        "DB_MAX_CONNECTIONS": "4", "SECRET_KEY": "test-secret-key-test-secret-key-0123456789", "HOST": "127.0.0.1", "PORT": String(port),
        "TZ": "Europe/Prague", "TASK_SCHEDULER_PRECISION_SECONDS": "0", "SMTP_ENABLED": "true", "SMTP_HOST": "localhost",
        "SMTP_PORT": try SMTPTestServer.require("SMTP_TEST_STARTTLS_PORT"), "SMTP_STARTTLS_ENABLED": "true",
        "SMTP_USER": try SMTPTestServer.require("SMTP_TEST_USER"), "SMTP_PASSWORD": try SMTPTestServer.require("SMTP_TEST_PASSWORD"),
        "SMTP_FROM_ADDRESS": "remas@cluster.example", "SMTP_CA_FILE": try SMTPTestServer.require("SMTP_TEST_CA"),
    ]
    env["PATH"] = ProcessInfo.processInfo.environment["PATH"]
    env.merge(extra) { $1 }
    return env
}
