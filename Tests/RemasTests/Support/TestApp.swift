import Foundation
import Hummingbird
import HummingbirdBcrypt
import AsyncHTTPClient
import HTTPTypes
import HummingbirdTesting
import Logging
import PostgresNIO
import Testing

@testable import Remas

/// Connection settings of the throwaway PostgreSQL that `scripts/test` starts (POSTGRES_* variables).
enum TestDatabase {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }
    static var host: String { environment["POSTGRES_HOST"] ?? "127.0.0.1" }
    static var url: String {
        let port = environment["POSTGRES_PORT"] ?? "5432"
        let user = environment["POSTGRES_USER"] ?? "remas"
        let db = environment["POSTGRES_DB"] ?? "remas"
        let password = environment["POSTGRES_PASSWORD"].map { ":\($0)" } ?? ""
        return "postgresql://\(user)\(password)@\(host):\(port)/\(db)"
    }
    static var migrationsPath: String {
        if let path = environment["REMAS_MIGRATIONS_PATH"] { return path }
        return RepositoryFiles.url("Migrations").path
    }

    static let logger: Logger = {
        var logger = Logger(label: "remas-test")
        logger.logLevel = .error
        return logger
    }()

    /// The configuration of a test app living in `schema`.
    static func configuration(schema: String, extra: [String: String] = [:]) throws -> AppConfiguration {
        // Tests reset only local databases.
        precondition(["localhost", "127.0.0.1", "::1"].contains(host), "tests run only against a local PostgreSQL")
        var env: [String: String] = [
            "DATABASE_URL": url,
            "DB_SEARCH_PATH": "\(schema)",
            "DB_MAX_CONNECTIONS": "4",
            "DB_PREWARM": "false",
            "SECRET_KEY": "test-secret-key-test-secret-key-0123456789",
            "BCRYPT_COST": "4",
            "TZ": "Europe/Prague",
            "PORT": "0",
            "HOST": "127.0.0.1",
            "REMAS_MIGRATIONS_PATH": migrationsPath,
            // Router tests must not have a scheduler firing behind them; scheduler tests build their own.
            "TASK_SCHEDULER_ENABLED": "false",
        ]
        env.merge(extra) { $1 }
        return try AppConfiguration(environment: env)
    }

    /// Creates a fresh schema, migrates and seeds it, runs `body`, and drops the schema afterwards (on failure too).
    static func withSchema<T: Sendable>(
        seed: Bool = true, extra: [String: String] = [:], _ body: @Sendable (String, AppConfiguration) async throws -> T
    ) async throws -> T {
        let schema = "test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let configuration = try self.configuration(schema: schema, extra: extra)
        try await withDatabase(configuration, logger: logger) { db in
            try await db.execute(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"), logger: logger)
            try await Migrator(directory: migrationsPath).migrate(db: db, logger: logger)
            if seed {
                _ = try await Seeder.seed(db: db, adminPassword: "admin", bcryptCost: 4, logger: logger)
            }
        }
        do {
            let value = try await body(schema, configuration)
            try await self.drop(schema, configuration)
            return value
        } catch {
            try? await self.drop(schema, configuration)
            throw error
        }
    }

    static func drop(_ schema: String, _ configuration: AppConfiguration) async throws {
        try await withDatabase(configuration, logger: logger) { db in
            try await db.execute(PostgresQuery(unsafeSQL: "DROP SCHEMA IF EXISTS \(schema) CASCADE"), logger: logger)
        }
    }
}

/// What a test gets: the client for the app, and direct access to its database and token service.
struct TestContext: Sendable {
    let client: any TestClientProtocol
    let db: Database
    let tokens: TokenService
    let configuration: AppConfiguration
    /// The token-revocation listeners of the live servers (`withTwoLiveServers`): tests wait on them, never a fixed time.
    var authListeners: [ListenerObserver] = []
    /// Set for a live server: requests then go over its socket through AsyncHTTPClient with a 60 s deadline, as the
    /// racing clients do. The live test client's fixed 20 s read timeout ended a CI run whose two cores were busy with
    /// every suite at once while a request waited its turn behind 50 racing bookings.
    var livePort: Int? = nil

    var logger: Logger { TestDatabase.logger }

    func token(_ userID: Int, _ username: String, admin: Bool) async throws -> String {
        try await self.tokens.issue(userID: userID, username: username, isAdmin: admin).access
    }

    func adminToken() async throws -> String { try await self.token(1, "administrator", admin: true) }

    /// Inserts a user directly (password hash of "password" at cost 4) and returns its id.
    @discardableResult
    func makeUser(_ username: String, groupID: Int = 3, uid: Int? = nil, name: String? = nil) async throws -> Int {
        let uidValue = uid ?? Int.random(in: 10_000...2_000_000_000)
        return try await self.db.int(
            """
            INSERT INTO users (name, surname, uid, username, password, email, group_id)
            VALUES (\(name), NULL, \(uidValue), \(username), \(TestContext.passwordHash), \(username + "@example.org"), \(groupID))
            RETURNING id
            """, logger: self.logger)!
    }

    /// A user and an access token for them.
    func userWithToken(_ username: String, groupID: Int = 3) async throws -> (Int, String) {
        let id = try await self.makeUser(username, groupID: groupID)
        return (id, try await self.token(id, username, admin: false))
    }

    func makeGroup(_ name: String, parent: Int? = 1, share: Bool = true) async throws -> Int {
        try await self.db.int(
            "INSERT INTO groups (name, users_share_statistics, parent_id) VALUES (\(name), \(share), \(parent)) RETURNING id",
            logger: self.logger)!
    }

    func count(_ sql: String) async throws -> Int {
        try await self.db.int(PostgresQuery(unsafeSQL: sql), logger: self.logger) ?? 0
    }

    static let passwordHash = Bcrypt.hash("password", cost: 4)

    // MARK: requests

    @discardableResult
    func request(
        _ method: HTTPRequest.Method, _ uri: String, token: String? = nil, json: String? = nil, headers: HTTPFields = [:]
    ) async throws -> TestReply {
        var fields = headers
        if let token { fields[.authorization] = "Bearer \(token)" }
        if json != nil { fields[.contentType] = "application/json" }
        return try await self.send(method, uri, headers: fields, body: json.map { ByteBuffer(string: $0) })
    }

    private func send(_ method: HTTPRequest.Method, _ uri: String, headers: HTTPFields, body: ByteBuffer?) async throws -> TestReply {
        guard let port = self.livePort else {
            return try await self.client.execute(uri: uri, method: method, headers: headers, body: body) {
                TestReply(status: $0.status, headers: $0.headers, body: String(buffer: $0.body))
            }
        }
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(uri)")
        request.method = .init(method)
        for field in headers { request.headers.add(name: field.name.rawName, value: field.value) }
        request.body = body.map { .bytes($0) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        var fields = HTTPFields()
        for (name, value) in response.headers { if let key = HTTPField.Name(name) { fields.append(HTTPField(name: key, value: value)) } }
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return TestReply(status: .init(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase), headers: fields, body: String(buffer: bytes))
    }
}

extension TestContext {
    /// A request with a raw body (forms, malformed JSON).
    @discardableResult
    func request(_ method: HTTPRequest.Method, _ uri: String, token: String? = nil, headers: HTTPFields = [:], body: String) async throws -> TestReply {
        var fields = headers
        if let token { fields[.authorization] = "Bearer \(token)" }
        return try await self.send(method, uri, headers: fields, body: ByteBuffer(string: body))
    }
}

struct TestReply: Sendable {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let body: String

    var json: Any? { try? JSONSerialization.jsonObject(with: Data(self.body.utf8), options: [.fragmentsAllowed]) }
    var object: [String: Any] { self.json as? [String: Any] ?? [:] }
    var array: [[String: Any]] { self.json as? [[String: Any]] ?? [] }
    var detail: String? { self.object["detail"] as? String }
}

/// Builds the real application on a fresh schema and runs `body` against it through the router test client.
func withApp(
    extra: [String: String] = [:],
    _ body: @escaping @Sendable (TestContext) async throws -> Void
) async throws {
    try await TestDatabase.withSchema(extra: extra) { _, configuration in
        let app = try await buildApplication(configuration: configuration, logger: TestDatabase.logger)
        let tokens = await TokenService(configuration: configuration)
        try await app.test(.router) { client in
            try await withDatabase(configuration, logger: TestDatabase.logger) { db in
                try await body(TestContext(client: client, db: db, tokens: tokens, configuration: configuration))
            }
        }
    }
}

/// Two real servers on real sockets sharing one fresh schema (replicas); `body` gets a context on the first and the
/// second's client. It starts once both servers listen for token revocations.
func withTwoLiveServers(
    extra: [String: String] = [:], _ body: @escaping @Sendable (TestContext, any TestClientProtocol) async throws -> Void
) async throws {
    try await TestDatabase.withSchema(extra: extra) { _, configuration in
        let listeners = [ListenerObserver(), ListenerObserver()]
        let first = try await buildApplication(configuration: configuration, authListener: listeners[0], logger: TestDatabase.logger)
        let second = try await buildApplication(configuration: configuration, authListener: listeners[1], logger: TestDatabase.logger)
        try await first.test(.live) { one in
            try await second.test(.live) { two in
                try await withDatabase(configuration, logger: TestDatabase.logger) { db in
                    let t = TestContext(
                        client: one, db: db, tokens: await TokenService(configuration: configuration), configuration: configuration,
                        authListeners: listeners, livePort: one.port)
                    try #require(try await waitUntil(timeout: 10) { listeners.allSatisfy(\.isListening) })
                    try await body(t, two)
                }
            }
        }
    }
}
