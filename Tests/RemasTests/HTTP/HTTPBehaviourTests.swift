import Foundation
import Hummingbird
import Testing

@testable import Remas

@Suite struct HTTPBehaviourTests {
    @Test func rootAndGrafanaLink() async throws {
        try await withApp { t in
            let root = try await t.request(.get, "/")
            #expect(root.status == .ok)
            #expect(root.body == #"{"detail":"Hello World"}"#)
            #expect(root.headers[.contentType] == "application/json")
            let link = try await t.request(.get, "/grafana-link")
            #expect(link.detail == "http://localhost:3000/")
            let health = try await t.request(.get, "/health")
            #expect(health.status == .ok && health.object["status"] as? String == "ok")
            let ready = try await t.request(.get, "/ready")
            #expect(ready.status == .ok && ready.object["status"] as? String == "ready")
        }
    }

    @Test func unknownPathMethodAndParameter() async throws {
        try await withApp { t in
            var r = try await t.request(.get, "/nope")
            #expect(r.status == .notFound)
            #expect(r.detail == "Not Found")
            r = try await t.request(.patch, "/user")
            #expect(r.status == .methodNotAllowed)
            #expect(r.detail == "Method Not Allowed")
            r = try await t.request(.get, "/user/abc", token: try await t.adminToken())
            #expect(r.status == .unprocessableContent)
            #expect(r.detail?.contains("path.user_id") == true)
            r = try await t.request(.get, "/user/99999999999", token: try await t.adminToken())
            #expect(r.status == .unprocessableContent)
            // A trailing slash reaches the same route (the original redirected with 307; either is fine for clients).
            r = try await t.request(.get, "/user/", token: try await t.adminToken())
            #expect(r.status == .ok)
        }
    }

    @Test func malformedJSONComesBeforeAuthentication() async throws {
        try await withApp { t in
            var r = try await t.request(.post, "/group", json: "{not json")
            #expect(r.status == .unprocessableContent)
            #expect(r.detail != nil)
            r = try await t.request(.post, "/group", json: #"{"name":"x"}"#)
            #expect(r.status == .unauthorized)
            // An invalid body from a non-admin is a 422, not a 403.
            let (_, user) = try await t.userWithToken("plain")
            r = try await t.request(.post, "/group", token: user, json: #"{"name":7}"#)
            #expect(r.status == .unprocessableContent)
        }
    }

    @Test func oversizedBodyIsRefused() async throws {
        try await withApp { t in
            let big = "{\"name\":\"" + String(repeating: "a", count: 1_100_000) + "\"}"
            let r = try await t.request(.post, "/group", token: try await t.adminToken(), json: big)
            #expect(r.status == .contentTooLarge)
            #expect(r.detail != nil)
            #expect(try await t.count("SELECT count(*)::int FROM groups") == 3)
        }
    }

    @Test func corsPreflightAndSimpleRequests() async throws {
        try await withApp { t in
            let pre = try await t.request(
                .options, "/user",
                headers: [.origin: "http://ui.local", .accessControlRequestMethod: "GET", .accessControlRequestHeaders: "authorization,content-type"])
            #expect(pre.status == .ok)
            #expect(pre.headers[.accessControlAllowOrigin] == "http://ui.local")
            #expect(pre.headers[.accessControlAllowHeaders]?.lowercased().contains("authorization") == true)
            #expect(pre.headers[.accessControlAllowCredentials] == "true")
            let simple = try await t.request(.get, "/", headers: [.origin: "http://ui.local"])
            #expect(simple.headers[.accessControlAllowOrigin] == "*")
            #expect(simple.headers[.accessControlAllowCredentials] == "true")
            // Error responses carry CORS headers too, so the UI can read their detail.
            let error = try await t.request(.get, "/user", headers: [.origin: "http://ui.local"])
            #expect(error.status == .unauthorized)
            #expect(error.headers[.accessControlAllowOrigin] == "*")
        }
    }

    @Test func nulCharactersAreRefusedNotCrashed() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            var r = try await t.request(.post, "/group", token: admin, json: #"{"name":"a\u0000b"}"#)
            #expect(r.status == .unprocessableContent)
            #expect(r.detail?.contains("NUL") == true)
            r = try await t.request(
                .post, "/authentication/token", headers: [.contentType: "application/x-www-form-urlencoded"],
                body: "username=admin%00istrator&password=admin")
            #expect(r.status == .unauthorized)
            #expect(try await t.count("SELECT count(*)::int FROM groups") == 3)
        }
    }
}
