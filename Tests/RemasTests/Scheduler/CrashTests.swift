import Foundation
import Testing

@testable import Remas

/// The `remas` binary as a separate process, stopped with SIGKILL or SIGTERM while it holds a claimed reminder (the
/// SMTP test server keeps `hang-*` recipients waiting at RCPT, so the claim is held for as long as the test likes).
@Suite struct CrashTests {
    /// A user with a `hang-*` address and a reminder that is due now.
    static func dueReminder(_ t: TestContext) async throws -> (address: String, task: Int, notification: Int) {
        let cluster = try await t.cluster(nodes: 1, capacity: 10)
        let address = SMTPTestServer.address("hang")
        let (user, token) = try await t.userWithEmail(address)
        let n = try await t.makeNotification("crash test", offset: "3600")
        #expect(try await t.assign(n, user: user).status == .ok)
        let start = try await t.db.text("SELECT to_char(localtimestamp + interval '1 hour', 'YYYY-MM-DD\"T\"HH24:MI:SS')", logger: t.logger)!
        let r = try await t.book(token, start: start, end: "2099-01-01 00:00", [(cluster.0[0], cluster.1[0], 1)])
        return (address, try #require(r.object["id"] as? Int), n)
    }

    func run(signal: Int32) async throws {
        try await withApp { t in
            let (address, task, n) = try await Self.dueReminder(t)
            let log = NSTemporaryDirectory() + "remas-crash-\(UUID().uuidString).log"
            let first = try launchServer(t, log: log)
            let claimed = try await waitUntil(timeout: 30) { SMTPTestServer.isHanging(address) }
            #expect(claimed, "the server never reached the SMTP server: \(String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self))")
            kill(first.processIdentifier, signal)
            let exited = try await waitUntil(timeout: 20) { !first.isRunning }
            #expect(exited)
            if signal == SIGTERM { #expect(first.terminationStatus == 0) }
            // Released, not dropped and not counted as an attempt.
            #expect(try await waitUntil(timeout: 10) { try await t.reminder(task: task, notification: n)! == ("pending", 0) })
            #expect(SMTPTestServer.messages(to: address).isEmpty)
            // After a restart the reminder goes out, once.
            SMTPTestServer.release(address)
            let second = try launchServer(t, log: log)
            let messages = try await SMTPTestServer.waitForMessages(to: address, count: 1, timeout: 30)
            #expect(messages.count == 1)
            #expect(try await waitUntil(timeout: 10) { try await t.reminder(task: task, notification: n)! == ("sent", 1) })
            try await Task.sleep(for: .milliseconds(500))
            #expect(SMTPTestServer.messages(to: address).count == 1)
            second.terminate()
            #expect(try await waitUntil(timeout: 20) { !second.isRunning })
            #expect(second.terminationStatus == 0)
            try? FileManager.default.removeItem(atPath: log)
        }
    }

    /// When another service fails (here: the port is taken), the group cancels the scheduler, and the process must
    /// end instead of the scheduler looping on (it did, before cancellation stopped it).
    @Test func aFailingServiceEndsTheProcess() async throws {
        try await withApp { t in
            let socket = try ServerSocket()
            let log = NSTemporaryDirectory() + "remas-port-\(UUID().uuidString).log"
            let process = try launchServer(t, log: log, port: socket.port)
            // Generous: at the start of a full parallel run the machine is saturated (a CI run once took over 20 s).
            let exited = try await waitUntil(timeout: 90) { !process.isRunning }
            let serverLog = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            // If our listening socket was closed under us (a stray close of a reused descriptor number), the server
            // could bind the port and run on: say so instead of blaming the server.
            let socketOpen = fcntl(socket.descriptor, F_GETFD) != -1
            #expect(exited, "still running (test's listening socket still open: \(socketOpen)); its log ends: \(serverLog.suffix(2000))")
            if exited { #expect(process.terminationStatus != 0) } else { process.interrupt(); kill(process.processIdentifier, SIGKILL) }
            // Every service ended by itself; the watchdog (StopWatchdog) is only a net.
            #expect(!serverLog.contains("did not stop"), "a service ignored the cancellation; the log ends: \(serverLog.suffix(2000))")
            socket.close()
            try? FileManager.default.removeItem(atPath: log)
        }
    }

    /// Two server processes (replicas) on one database: 60 reminders due at once are mailed exactly once in total.
    @Test func twoServerProcessesMailEachReminderOnce() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 1000)
            let address = SMTPTestServer.address()
            let (user, token) = try await t.userWithEmail(address)
            let n = try await t.makeNotification("replicas", offset: "3600")
            #expect(try await t.assign(n, user: user).status == .ok)
            let start = try await t.db.text("SELECT to_char(localtimestamp + interval '1 hour', 'YYYY-MM-DD\"T\"HH24:MI:SS')", logger: t.logger)!
            // Booked while no server runs; both start and find them due at once.
            for i in 0..<60 {
                let r = try await t.book(token, name: "r\(i)", start: start, end: "2099-01-01 00:00", [(cluster.0[0], cluster.1[0], 1)])
                #expect(r.status == .ok)
            }
            let logs = (0..<2).map { _ in NSTemporaryDirectory() + "remas-replica-\(UUID().uuidString).log" }
            let servers = try logs.map { try launchServer(t, log: $0) }
            let messages = try await SMTPTestServer.waitForMessages(to: address, count: 60, timeout: 60)
            #expect(try await waitUntil(timeout: 20) {
                try await t.count("SELECT count(*)::int FROM events WHERE notification_id = \(n) AND state = 'sent'") == 60
            })
            try await Task.sleep(for: .milliseconds(500))
            #expect(SMTPTestServer.messages(to: address).count == 60)
            #expect(Set(messages.compactMap { $0["message_id"] as? String }).count == 60)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE notification_id = \(n) AND attempts <> 1") == 0)
            for server in servers { server.terminate() }
            for server in servers {
                #expect(try await waitUntil(timeout: 20) { !server.isRunning })
            }
            for log in logs { try? FileManager.default.removeItem(atPath: log) }
        }
    }

    @Test func killMinusNineLeavesTheClaimedEventForTheRestart() async throws {
        try await self.run(signal: SIGKILL)
    }

    @Test func sigtermReleasesTheEventInHand() async throws {
        try await self.run(signal: SIGTERM)
    }
}

/// A listening TCP socket on 127.0.0.1 that keeps its port taken.
final class ServerSocket: @unchecked Sendable {
    let descriptor: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 1) == 0 else { throw TestFailure("could not bind a socket") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        // Moved to a high descriptor number, close-on-exec: a stray second close elsewhere in this process hits
        // recently freed low numbers, and children must not inherit the port.
        let high = fcntl(fd, F_DUPFD_CLOEXEC, 1000)
        guard high >= 0 else { throw TestFailure("could not move the socket descriptor") }
        _ = Glibc.close(fd)
        self.descriptor = high
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(self.descriptor) }
}
