import Foundation
import Testing

@testable import Remas

/// `SOCKET_PATH`: the real binary serving on a Unix domain socket, as replicas beside their nginx do.
@Suite struct UnixSocketTests {
    /// `curl --unix-socket PATH http://localhost/PATH`: the status code, or nil when nothing answered.
    static func curl(socket: String, _ path: String) async throws -> Int? {
        let out = Pipe()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", "--unix-socket", socket, "http://localhost\(path)"]
        process.standardOutput = out
        try process.run()
        _ = try await waitUntil(timeout: 10) { !process.isRunning }
        let code = Int(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)) ?? 0
        return code == 0 ? nil : code
    }

    static func log(_ path: String) -> String { String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self) }

    @Test func servesOnASocketReplacesAStaleOneAndRefusesABusyOne() async throws {
        try await withApp { t in
            let dir = NSTemporaryDirectory() + "remas-sock-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let socket = dir + "/remas.sock"
            let env = ["SOCKET_PATH": socket, "TASK_SCHEDULER_ENABLED": "false"]

            let first = try launchServer(t, log: dir + "/1.log", extra: env)
            let up = try await waitUntil(timeout: 30) { try await Self.curl(socket: socket, "/ready") == 200 }
            #expect(up, "no answer on the socket: \(Self.log(dir + "/1.log"))")
            #expect(try await Self.curl(socket: socket, "/user/me") == 401)
            let mode = try FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int
            #expect(mode == 0o666)

            // A second server on the same path while the first still accepts: refused, the first keeps serving.
            let second = try launchServer(t, log: dir + "/2.log", extra: env)
            _ = try await waitUntil(timeout: 30) { !second.isRunning }
            #expect(!second.isRunning && second.terminationStatus != 0)
            #expect(Self.log(dir + "/2.log").contains("another server is listening there"))
            #expect(try await Self.curl(socket: socket, "/ready") == 200)

            // kill -9 leaves the socket file behind; the restarted server removes it and serves again.
            kill(first.processIdentifier, SIGKILL)
            first.waitUntilExit()
            #expect(FileManager.default.fileExists(atPath: socket))
            #expect(try await Self.curl(socket: socket, "/ready") == nil)
            let third = try launchServer(t, log: dir + "/3.log", extra: env)
            defer { kill(third.processIdentifier, SIGKILL); third.waitUntilExit() }
            let again = try await waitUntil(timeout: 30) { try await Self.curl(socket: socket, "/ready") == 200 }
            #expect(again, "the restart did not serve: \(Self.log(dir + "/3.log"))")
        }
    }

    @Test func refusesWhatIsNotASocketAndOverlongPaths() throws {
        let file = NSTemporaryDirectory() + "remas-notsock-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(throws: ConfigurationError.self) { try UnixSocket.prepare(path: file) }
        #expect(FileManager.default.fileExists(atPath: file))
        try UnixSocket.prepare(path: file + ".absent")  // nothing there: nothing to do
        #expect(throws: ConfigurationError.self) {
            try AppConfiguration(environment: ["SECRET_KEY": String(repeating: "k", count: 40), "SOCKET_PATH": "/" + String(repeating: "s", count: 120)])
        }
    }
}
