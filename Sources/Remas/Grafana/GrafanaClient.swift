import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// A Grafana call that did not succeed: the original's fixed text (README "Grafana") and what went wrong underneath.
///
/// Grafana answering with an error is a 502 for whoever asked, Grafana not answering at all a 503, never a bare 500.
public struct GrafanaError: Error, CustomStringConvertible, Sendable {
    /// The original's fixed text, e.g. `Failed to get folder list from Grafana!`.
    public let message: String
    /// Grafana's status, or nil when it could not be reached (refused, timed out, unreadable reply).
    public let grafanaStatus: Int?
    /// Grafana's own message or the network error, for logs and the outbox.
    public let cause: String

    public var description: String { "\(self.message) (\(self.grafanaStatus.map { "Grafana answered \($0)" } ?? "Grafana unreachable"): \(self.cause))" }

    public var appError: AppError {
        AppError(self.grafanaStatus == nil ? .serviceUnavailable : .badGateway, self.message)
    }
}

/// Every Grafana call remas makes, over one shared AsyncHTTPClient: Basic auth, JSON bodies, a timeout per call and a
/// cap on the reply size. Replies are parsed into `JSONValue`; callers pick the fields they need.
public final class GrafanaClient: Sendable {
    let http: HTTPClient
    let base: String
    let authorization: String
    let timeout: TimeAmount
    let adminLogin: String
    /// Rule lists grow with users × notifications × nodes; 64 MiB is ~30,000 rules.
    static let maxReplyBytes = 64 << 20

    public init(settings: GrafanaSettings) {
        // The process-wide client: it needs no shutdown (an own client that is not shut down before it goes away
        // traps), and the timeout is set per call.
        self.http = HTTPClient.shared
        var base = settings.url
        while base.hasSuffix("/") { base.removeLast() }
        self.base = base
        self.authorization = "Basic " + Data("\(settings.username):\(settings.password)".utf8).base64EncodedString()
        self.timeout = .seconds(Int64(settings.timeoutSeconds))
        self.adminLogin = settings.username
    }

    /// Nothing to close: the shared client lives as long as the process.
    public func shutdown() async {}

    /// One call. A 404 gives nil when `absentIsNil`; any other non-2xx, a network failure or an unreadable reply
    /// throws `GrafanaError` with `failure` as its message.
    @discardableResult
    func call(_ method: NIOHTTP1.HTTPMethod, _ path: String, body: JSONValue? = nil, failure: String, absentIsNil: Bool = false) async throws -> JSONValue? {
        var request = HTTPClientRequest(url: self.base + path)
        request.method = method
        request.headers.add(name: "Authorization", value: self.authorization)
        request.headers.add(name: "Accept", value: "application/json")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body.jsonData))
        }
        let status: Int
        let reply: ByteBuffer
        do {
            let response = try await self.http.execute(request, timeout: self.timeout)
            status = Int(response.status.code)
            reply = try await response.body.collect(upTo: Self.maxReplyBytes)
        } catch {
            throw GrafanaError(message: failure, grafanaStatus: nil, cause: "\(error)")
        }
        if status == 404 && absentIsNil { return nil }
        guard (200..<300).contains(status) else {
            let text = String(buffer: reply)
            let cause = (try? JSONValue.parse(text: text.utf8))?["message"]?.stringValue ?? String(text.prefix(300))
            throw GrafanaError(message: failure, grafanaStatus: status, cause: cause)
        }
        guard reply.readableBytes > 0 else { return .null }
        do {
            return try JSONValue.parse(text: reply.readableBytesView)
        } catch {
            throw GrafanaError(message: failure, grafanaStatus: nil, cause: "the reply is not JSON")
        }
    }

    static func component(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    // MARK: alert rules

    func listRules(failure: String) async throws -> [JSONValue] {
        try await self.call(.GET, "/api/v1/provisioning/alert-rules", failure: failure)?.arrayValue ?? []
    }

    func createRule(_ rule: JSONValue, failure: String) async throws {
        try await self.call(.POST, "/api/v1/provisioning/alert-rules", body: rule, failure: failure)
    }

    func updateRule(uid: String, _ rule: JSONValue, failure: String) async throws {
        try await self.call(.PUT, "/api/v1/provisioning/alert-rules/\(Self.component(uid))", body: rule, failure: failure)
    }

    /// Deleting a rule that is already gone counts as done.
    func deleteRule(uid: String, failure: String) async throws {
        try await self.call(.DELETE, "/api/v1/provisioning/alert-rules/\(Self.component(uid))", failure: failure, absentIsNil: true)
    }

    // MARK: folders

    struct Folder: Sendable {
        let uid: String
        let title: String
    }

    func listFolders() async throws -> [Folder] {
        let list = try await self.call(.GET, "/api/folders?limit=1000000", failure: "Failed to get folder list from Grafana!")
        return (list?.arrayValue ?? []).compactMap { item in
            guard let uid = item["uid"]?.stringValue, let title = item["title"]?.stringValue else { return nil }
            return Folder(uid: uid, title: title)
        }
    }

    func createFolder(title: String, failure: String) async throws -> Folder {
        let reply = try await self.call(.POST, "/api/folders", body: .object(["uid": .null, "title": .string(title)]), failure: failure)
        guard let uid = reply?["uid"]?.stringValue else {
            throw GrafanaError(message: failure, grafanaStatus: nil, cause: "the reply names no folder uid")
        }
        return Folder(uid: uid, title: title)
    }

    func deleteFolder(uid: String, failure: String) async throws {
        try await self.call(.DELETE, "/api/folders/\(Self.component(uid))", failure: failure, absentIsNil: true)
    }

    func folderPermissions(uid: String, failure: String) async throws -> [JSONValue] {
        try await self.call(.GET, "/api/folders/\(Self.component(uid))/permissions", failure: failure)?.arrayValue ?? []
    }

    func setFolderPermissions(uid: String, items: [JSONValue], failure: String) async throws {
        try await self.call(.POST, "/api/folders/\(Self.component(uid))/permissions", body: .object(["items": .array(items)]), failure: failure)
    }

    // MARK: contact points

    func listContactPoints() async throws -> [JSONValue] {
        try await self.call(.GET, "/api/v1/provisioning/contact-points", failure: "Failed to get contact points from Grafana!")?.arrayValue ?? []
    }

    func upsertContactPoint(uid: String?, _ body: JSONValue, failure: String) async throws {
        if let uid {
            try await self.call(.PUT, "/api/v1/provisioning/contact-points/\(Self.component(uid))", body: body, failure: failure)
        } else {
            try await self.call(.POST, "/api/v1/provisioning/contact-points", body: body, failure: failure)
        }
    }

    func deleteContactPoint(uid: String, failure: String) async throws {
        try await self.call(.DELETE, "/api/v1/provisioning/contact-points/\(Self.component(uid))", failure: failure, absentIsNil: true)
    }

    // MARK: users

    /// The Grafana user with this login, or nil.
    func lookupUser(login: String) async throws -> JSONValue? {
        try await self.call(
            .GET, "/api/users/lookup?loginOrEmail=\(Self.component(login))", failure: "Failed to get user \(login) in Grafana!",
            absentIsNil: true)
    }

    func createUser(_ body: JSONValue, login: String) async throws -> Int {
        let reply = try await self.call(.POST, "/api/admin/users", body: body, failure: "Failed to create user \(login) in Grafana!")
        guard let id = reply?["id"]?.intValue else {
            throw GrafanaError(message: "Failed to create user \(login) in Grafana!", grafanaStatus: nil, cause: "the reply names no user id")
        }
        return id
    }

    func updateUser(id: Int, _ body: JSONValue, login: String) async throws {
        try await self.call(.PUT, "/api/users/\(id)", body: body, failure: "Failed to create user \(login) in Grafana!")
    }

    func setServerAdmin(id: Int, _ isAdmin: Bool, login: String) async throws {
        try await self.call(
            .PUT, "/api/admin/users/\(id)/permissions", body: .object(["isGrafanaAdmin": .bool(isAdmin)]),
            failure: "Failed to set user \(login) as admin in Grafana!")
    }

    func setPassword(id: Int, _ password: String, login: String) async throws {
        try await self.call(
            .PUT, "/api/admin/users/\(id)/password", body: .object(["password": .string(password)]),
            failure: "Failed to change password for user \(login) in Grafana!")
    }

    func deleteUser(id: Int, login: String) async throws {
        try await self.call(.DELETE, "/api/admin/users/\(id)", failure: "Failed to remove user \(login) in Grafana!", absentIsNil: true)
    }
}
