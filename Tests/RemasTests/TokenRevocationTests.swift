import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Remas

/// A token stops working on every server as soon as its user is deleted, gets a new password, or stops being an
/// admin: two servers on one schema, the change made through one, the token tried on the other (whose cache had the
/// user), within the issue's 1 s.
@Suite struct TokenRevocationTests {
    static func login(_ client: any TestClientProtocol, _ username: String, _ password: String = "password") async throws -> (String, String) {
        try await client.execute(
            uri: "/authentication/token", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
            body: ByteBuffer(string: "username=\(username)&password=\(password)")
        ) { response in
            let object = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
            return (object?["access_token"] as? String ?? "", object?["refresh_token"] as? String ?? "")
        }
    }

    static func status(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String, token: String) async throws -> Int {
        try await client.execute(uri: uri, method: method, headers: [.authorization: "Bearer \(token)"]) { $0.status.code }
    }

    static func status(_ client: any TestClientProtocol, _ uri: String, token: String) async throws -> Int {
        try await Self.status(client, .get, uri, token: token)
    }

    /// Polls the second server until the token is refused; returns how long that took.
    static func refusedWithin(_ client: any TestClientProtocol, _ uri: String, token: String, method: HTTPRequest.Method = .get) async throws -> Duration? {
        let started = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(1) {
            if try await Self.status(client, method, uri, token: token) == 401 { return ContinuousClock.now - started }
            try await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    @Test func deletedUsersTokensStopWorkingEverywhere() async throws {
        try await withTwoLiveServers { t, two in
            let id = try await t.makeUser("leaver")
            let (access, refresh) = try await Self.login(t.client, "leaver")
            // Both servers have seen the token and the user.
            #expect(try await Self.status(t.client, "/user", token: access) == 200)
            #expect(try await Self.status(two, "/user", token: access) == 200)
            #expect(try await t.request(.delete, "/user/\(id)", token: try await t.adminToken()).status == .ok)
            #expect(try await Self.refusedWithin(two, "/user", token: access) != nil, "a deleted user's token still lists everyone")
            #expect(try await Self.status(t.client, "/node", token: access) == 401)
            #expect(try await Self.status(two, .post, "/authentication/refresh", token: refresh) == 401)
        }
    }

    @Test func newPasswordRevokesEarlierTokens() async throws {
        try await withTwoLiveServers { t, two in
            let id = try await t.makeUser("changer")
            let (old, oldRefresh) = try await Self.login(t.client, "changer")
            #expect(try await Self.status(two, "/user/\(id)", token: old) == 200)
            // Set by an admin on the first server.
            #expect(try await t.request(.post, "/authentication/set_password", token: try await t.adminToken(),
                                        json: #"{"user_id":\#(id),"new_password":"another-one"}"#).status == .ok)
            #expect(try await Self.refusedWithin(two, "/user/\(id)", token: old) != nil)
            #expect(try await Self.status(two, .post, "/authentication/refresh", token: oldRefresh) == 401)
            // A token issued after the change works on both.
            let (fresh, _) = try await Self.login(two, "changer", "another-one")
            #expect(try await Self.status(t.client, "/user/\(id)", token: fresh) == 200)
            #expect(try await Self.status(two, "/user/\(id)", token: fresh) == 200)
            // Changed by the user: every earlier token of theirs stops, the next login works.
            #expect(try await t.request(.post, "/authentication/change_password", token: fresh,
                                        json: #"{"old_password":"another-one","new_password":"third-password"}"#).status == .ok)
            #expect(try await Self.refusedWithin(two, "/user/\(id)", token: fresh) != nil)
            let (third, _) = try await Self.login(two, "changer", "third-password")
            #expect(try await Self.status(t.client, "/user/\(id)", token: third) == 200)
        }
    }

    @Test func demotedAdminLosesAdminRightsEverywhere() async throws {
        try await withTwoLiveServers { t, two in
            let id = try await t.makeUser("boss", groupID: 2)
            let (access, refresh) = try await Self.login(t.client, "boss")
            #expect(try await Self.status(two, "/task", token: access) == 200)  // admin only
            #expect(try await t.request(.post, "/group/add_user", token: try await t.adminToken(),
                                        json: #"{"user_id":\#(id),"group_id":3}"#).status == .ok)
            #expect(try await Self.refusedWithin(two, "/task", token: access) != nil, "a demoted admin kept admin rights")
            #expect(try await Self.status(two, "/user/\(id)", token: access) == 401)
            // Refreshing gives a non-admin pair that works (the refresh token claimed admin too, so it is refused).
            #expect(try await Self.status(two, .post, "/authentication/refresh", token: refresh) == 401)
            let (plain, _) = try await Self.login(two, "boss")
            #expect(try await Self.status(t.client, "/user/\(id)", token: plain) == 200)
            #expect(try await Self.status(t.client, "/task", token: plain) == 403)
        }
    }

    @Test func groupMovedOutOfAdministratorsDemotesItsMembers() async throws {
        try await withTwoLiveServers { t, two in
            let ops = try await t.makeGroup("ops", parent: 2)
            _ = try await t.makeUser("operator", groupID: ops)
            let (access, _) = try await Self.login(t.client, "operator")
            #expect(try await Self.status(two, "/task", token: access) == 200)
            #expect(try await t.request(.post, "/group/change_parent", token: try await t.adminToken(),
                                        json: #"{"group_id":\#(ops),"parent_id":1}"#).status == .ok)
            #expect(try await Self.refusedWithin(two, "/task", token: access) != nil)
        }
    }

    /// With the LISTEN connections cut, a server caches nothing until it listens again, so a change it cannot hear
    /// about still takes effect at once.
    @Test func lostNotificationsNeverKeepATokenAlive() async throws {
        try await withTwoLiveServers { t, two in
            let id = try await t.makeUser("quiet")
            let (access, _) = try await Self.login(t.client, "quiet")
            #expect(try await Self.status(two, "/user/\(id)", token: access) == 200)
            // Cut every LISTEN connection of this schema's auth channel (both servers reconnect after ~1 s).
            let cut = try await t.db.int(
                """
                SELECT count(pg_terminate_backend(pid))::int FROM pg_stat_activity
                WHERE query LIKE 'LISTEN %' || 'remas_auth_' || left(md5(current_schema()), 16) || '%' AND datname = current_database()
                """, logger: t.logger)
            #expect((cut ?? 0) >= 2)
            try await Task.sleep(for: .milliseconds(100))
            // Written behind the servers' back, while they cannot hear: the trigger's NOTIFY reaches nobody.
            try await t.db.execute("UPDATE users SET password = 'x' WHERE id = \(id)", logger: t.logger)
            #expect(try await Self.status(two, "/user/\(id)", token: access) == 401)
            #expect(try await Self.status(t.client, "/user/\(id)", token: access) == 401)
        }
    }

    @Test func unaffectedTokensKeepWorking() async throws {
        try await withTwoLiveServers { t, two in
            let id = try await t.makeUser("steady", uid: 4242)
            let other = try await t.makeUser("other")
            let (access, _) = try await Self.login(t.client, "steady")
            #expect(try await t.request(.post, "/authentication/set_password", token: try await t.adminToken(),
                                        json: #"{"user_id":\#(other),"new_password":"whatever1"}"#).status == .ok)
            #expect(try await t.request(.put, "/user", token: access,
                                        json: #"{"id":\#(id),"name":"S","surname":null,"username":"steady","email":"s@example.org","uid":4242}"#).status == .ok)
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await Self.status(two, "/user/\(id)", token: access) == 200)
            #expect(try await Self.status(t.client, "/user/\(id)", token: access) == 200)
        }
    }
}
