import Foundation
import Hummingbird
import Testing

@testable import Remas

/// RFC 9112 §9.6: a response after which the server closes says `Connection: close`, checked with a real client
/// library (Python's `http.client`, which decides reuse from the response headers alone) and with raw sockets.
@Suite struct ConnectionCloseTests {
    /// Runs `script` with /usr/bin/python3 (argument: the port) and returns what it printed.
    static func python(_ script: String, port: Int) async throws -> String {
        let out = NSTemporaryDirectory() + "remas-conn-\(UUID().uuidString).txt"
        FileManager.default.createFile(atPath: out, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: out) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, String(port)]
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let ended = try await waitUntil(timeout: 30) { !process.isRunning }
        if !ended { process.terminate() }
        return String(decoding: FileManager.default.contents(atPath: out) ?? Data(), as: UTF8.self)
    }

    static func withLiveServer(_ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        try await TestDatabase.withSchema { _, configuration in
            let app = try await buildApplication(configuration: configuration, logger: TestDatabase.logger)
            try await app.test(.live) { client in try await body(try #require(client.port)) }
        }
    }

    @Test func pythonHTTPClientReusesOnlyWhatStaysOpen() async throws {
        try await Self.withLiveServer { port in
            // One HTTPConnection object, as requests/urllib3 keep one per host: the first request asks to close.
            let output = try await Self.python(
                """
                import http.client, sys
                conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
                conn.request("GET", "/health", headers={"Connection": "close"})
                r = conn.getresponse(); r.read()
                print("first", r.status, r.getheader("Connection"))
                conn.request("GET", "/")
                r = conn.getresponse(); body = r.read()
                print("second", r.status, r.getheader("Connection"), body.decode())
                conn.request("GET", "/health")
                r = conn.getresponse(); r.read()
                print("third", r.status, r.getheader("Connection"))
                """, port: port)
            #expect(output.contains("first 200 close"), "\(output)")
            #expect(output.contains(#"second 200 None {"detail":"Hello World"}"#), "\(output)")
            #expect(output.contains("third 200 None"), "\(output)")
        }
    }

    @Test func rawSocketsSeeTheHeaderAndTheClose() async throws {
        try await Self.withLiveServer { port in
            let output = try await Self.python(
                """
                import socket, sys
                def exchange(request, keep_reading=True):
                    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
                    s.sendall(request)
                    data = b""
                    try:
                        while True:
                            chunk = s.recv(65536)
                            if not chunk:
                                return data, "closed"
                            data += chunk
                            if not keep_reading and b"\\r\\n\\r\\n" in data:
                                break
                    except socket.timeout:
                        return data, "open"
                    s.settimeout(1)
                    try:
                        return data, "closed" if s.recv(1) == b"" else "open"
                    except socket.timeout:
                        return data, "open"
                for name, request in [
                    ("http10", b"GET /health HTTP/1.0\\r\\n\\r\\n"),
                    ("upper", b"GET /health HTTP/1.1\\r\\nHost: x\\r\\nConnection: Close\\r\\n\\r\\n"),
                    ("tokens", b"GET /health HTTP/1.1\\r\\nHost: x\\r\\nConnection: TE, close\\r\\nTE: trailers\\r\\n\\r\\n"),
                    ("error", b"GET /nope HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n"),
                ]:
                    data, state = exchange(request)
                    head = data.split(b"\\r\\n\\r\\n")[0].decode().lower()
                    print(name, "connection: close" in head, state)
                data, state = exchange(b"GET /health HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n", keep_reading=False)
                print("keepalive", "connection: close" in data.decode().lower(), state)
                data, state = exchange(b"GET /health HTTP/1.0\\r\\nConnection: keep-alive\\r\\n\\r\\n", keep_reading=False)
                print("http10keepalive", "connection: close" in data.decode().lower(), state)
                """, port: port)
            for line in ["http10 True closed", "upper True closed", "tokens True closed", "error True closed",
                         "keepalive False open", "http10keepalive False open"] {
                #expect(output.contains(line), "\(line) in \(output)")
            }
        }
    }
}
