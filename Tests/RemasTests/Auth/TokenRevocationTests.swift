import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import Remas

/// A token stops working on every server as soon as its session ends (logout, a password change in another session, a
/// password set by an admin), its user is deleted, or stops being an admin: two servers on one schema, the change
/// made through one, the token tried on both (whose caches had the user) once they heard the change.
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

    /// Runs `change`, then waits until every server has heard (and acted on) a revocation notification for `user` that
    /// the change caused: from then on each server must answer from the new state. No fixed wait: NOTIFY is delivered at
    /// commit, and a server acts on it before its observer records it.
    static func afterHeard(_ t: TestContext, user: Int, _ change: () async throws -> Void) async throws {
        let about = { (payload: String) in payload == String(user) || payload == "*" }
        let before = t.authListeners.map { $0.received.filter(about).count }
        try await change()
        let heard = try await waitUntil(timeout: 10) {
            zip(t.authListeners, before).allSatisfy { listener, count in listener.received.filter(about).count > count }
        }
        #expect(heard, "a server did not hear the revocation of user \(user)")
    }

    static func refresh(_ client: any TestClientProtocol, _ refresh: String) async throws -> (Int, String?) {
        try await client.execute(uri: "/authentication/refresh", method: .post, headers: [.authorization: "Bearer \(refresh)"]) { response in
            let object = try? JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
            return (Int(response.status.code), object?["access_token"] as? String)
        }
    }

    @Test func deletedUsersTokensStopWorkingEverywhere() async throws {
        try await withTwoLiveServers { t, two in
            let id = try await t.makeUser("leaver")
            let (access, refresh) = try await Self.login(t.client, "leaver")
            // Both servers have seen the token and the user.
            #expect(try await Self.status(t.client, "/user", token: access) == 200)
            #expect(try await Self.status(two, "/user", token: access) == 200)
            try await Self.afterHeard(t, user: id) { () async throws in
                #expect(try await t.request(.delete, "/user/\(id)", token: try await t.adminToken()).status == .ok)
            }
            #expect(try await Self.status(two, "/user", token: access) == 401, "a deleted user's token still lists everyone")
            #expect(try await Self.status(t.client, "/node", token: access) == 401)
            #expect(try await Self.status(two, .post, "/authentication/refresh", token: refresh) == 401)
        }
    }

    /// Two sessions of one user (two logins). A change of password in session A keeps A — its access and its refresh
    /// token — and ends B on both servers; the refreshed pair of A stays in A's session.
    @Test func changingOwnPasswordEndsOnlyTheOtherSessions() async throws {
        try await withTwoLiveServers { t, two in
            let id = try await t.makeUser("changer")
            let (a, aRefresh) = try await Self.login(t.client, "changer")
            let (b, bRefresh) = try await Self.login(two, "changer")
            #expect(AuthTests.claims(a)["sid"] as? Int != nil)
            #expect(AuthTests.claims(a)["sid"] as? Int != AuthTests.claims(b)["sid"] as? Int)
            for client in [t.client, two] {
                #expect(try await Self.status(client, "/user/\(id)", token: a) == 200)
                #expect(try await Self.status(client, "/user/\(id)", token: b) == 200)
            }
            try await Self.afterHeard(t, user: id) { () async throws in
                #expect(try await t.request(.post, "/authentication/change_password", token: a,
                                            json: #"{"old_password":"password","new_password":"another-one"}"#).status == .ok)
            }
            for client in [t.client, two] {
                #expect(try await Self.status(client, "/user/\(id)", token: b) == 401)
                #expect(try await Self.refresh(client, bRefresh).0 == 401)
                #expect(try await Self.status(client, "/user/\(id)", token: a) == 200)
                #expect(try await Self.status(client, .post, "/notification", token: a) == 422)  // authenticated, then validated
            }
            let (status, refreshed) = try await Self.refresh(two, aRefresh)
            #expect(status == 200)
            let next = try #require(refreshed)
            #expect(AuthTests.claims(next)["sid"] as? Int == AuthTests.claims(a)["sid"] as? Int)
            #expect(try await Self.status(t.client, "/user/\(id)", token: next) == 200)
            // The old password is gone, the new one logs in (a third session).
            #expect(try await Self.login(two, "changer", "password").0.isEmpty)
            let (c, _) = try await Self.login(two, "changer", "another-one")
            #expect(try await Self.status(t.client, "/user/\(id)", token: c) == 200)
        }
    }

    /// An admin's set_password ends every session of the user on every server, and so does a password written by hand.
    @Test func newPasswordSetByAnAdminEndsEverySession() async throws {
        try await withTwoLiveServers { t, two in
            let id = try await t.makeUser("forgetful")
            let sessions = [try await Self.login(t.client, "forgetful"), try await Self.login(two, "forgetful")]
            for (access, _) in sessions { #expect(try await Self.status(two, "/user/\(id)", token: access) == 200) }
            try await Self.afterHeard(t, user: id) { () async throws in
                #expect(try await t.request(.post, "/authentication/set_password", token: try await t.adminToken(),
                                            json: #"{"user_id":\#(id),"new_password":"another-one"}"#).status == .ok)
            }
            for client in [t.client, two] {
                for (access, refresh) in sessions {
                    #expect(try await Self.status(client, "/user/\(id)", token: access) == 401)
                    #expect(try await Self.refresh(client, refresh).0 == 401)
                }
            }
            #expect(try await t.count("SELECT count(*)::int FROM sessions WHERE user_id = \(id)") == 0)
            let (fresh, _) = try await Self.login(two, "forgetful", "another-one")
            #expect(try await Self.status(t.client, "/user/\(id)", token: fresh) == 200)
            try await Self.afterHeard(t, user: id) { () async throws in
                try await t.db.execute("UPDATE users SET password = 'x' WHERE id = \(id)", logger: t.logger)
            }
            #expect(try await Self.status(two, "/user/\(id)", token: fresh) == 401)
        }
    }

    /// Logout ends the calling session only.
    @Test func logoutEndsOnlyItsOwnSession() async throws {
        try await withTwoLiveServers { t, two in
            let id = try await t.makeUser("leaving")
            let (a, aRefresh) = try await Self.login(t.client, "leaving")
            let (b, bRefresh) = try await Self.login(t.client, "leaving")
            #expect(try await Self.status(two, "/user/\(id)", token: a) == 200)
            try await Self.afterHeard(t, user: id) { () async throws in
                #expect(try await Self.status(t.client, .post, "/authentication/logout", token: a) == 200)
            }
            for client in [t.client, two] {
                #expect(try await Self.status(client, "/user/\(id)", token: a) == 401)
                #expect(try await Self.refresh(client, aRefresh).0 == 401)
                #expect(try await Self.status(client, "/user/\(id)", token: b) == 200)
            }
            #expect(try await Self.refresh(two, bRefresh).0 == 200)
            // A refresh token does not log out; a token from before sessions (no `sid`) has no session to end.
            #expect(try await Self.status(two, .post, "/authentication/logout", token: bRefresh) == 401)
            #expect(try await Self.status(two, .post, "/authentication/logout", token: try await t.token(id, "leaving", admin: false)) == 200)
            #expect(try await Self.status(two, "/user/\(id)", token: b) == 200)
        }
    }

    /// A token issued before sessions existed keeps working, and its refresh starts a session.
    @Test func tokensWithoutASessionStillCount() async throws {
        try await withTwoLiveServers { t, two in
            let id = try await t.makeUser("veteran")
            let pair = try await t.tokens.issue(userID: id, username: "veteran", isAdmin: false)
            #expect(AuthTests.claims(pair.refresh)["sid"] == nil)
            #expect(try await Self.status(two, "/user/\(id)", token: pair.access) == 200)
            let (status, access) = try await Self.refresh(two, pair.refresh)
            #expect(status == 200)
            let token = try #require(access)
            let sid = try #require(AuthTests.claims(token)["sid"] as? Int)
            #expect(try await t.count("SELECT count(*)::int FROM sessions WHERE id = \(sid) AND user_id = \(id)") == 1)
            #expect(try await Self.status(t.client, "/user/\(id)", token: token) == 200)
        }
    }

    @Test func demotedAdminLosesAdminRightsEverywhere() async throws {
        try await withTwoLiveServers { t, two in
            let id = try await t.makeUser("boss", groupID: 2)
            let (access, refresh) = try await Self.login(t.client, "boss")
            #expect(try await Self.status(two, "/task", token: access) == 200)  // admin only
            try await Self.afterHeard(t, user: id) { () async throws in
                #expect(try await t.request(.post, "/group/add_user", token: try await t.adminToken(),
                                            json: #"{"user_id":\#(id),"group_id":3}"#).status == .ok)
            }
            #expect(try await Self.status(two, "/task", token: access) == 401, "a demoted admin kept admin rights")
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
            let id = try await t.makeUser("operator", groupID: ops)
            let (access, _) = try await Self.login(t.client, "operator")
            #expect(try await Self.status(two, "/task", token: access) == 200)
            try await Self.afterHeard(t, user: id) { () async throws in
                #expect(try await t.request(.post, "/group/change_parent", token: try await t.adminToken(),
                                            json: #"{"group_id":\#(ops),"parent_id":1}"#).status == .ok)
            }
            #expect(try await Self.status(two, "/task", token: access) == 401)
        }
    }

    /// With the LISTEN connections cut, a server caches nothing until it listens again, so a change it cannot hear
    /// about still takes effect at once.
    @Test func lostNotificationsNeverKeepATokenAlive() async throws {
        try await withTwoLiveServers { t, two in
            let id = try await t.makeUser("quiet")
            let (access, _) = try await Self.login(t.client, "quiet")
            #expect(try await Self.status(two, "/user/\(id)", token: access) == 200)
            #expect(try await Self.status(t.client, "/user/\(id)", token: access) == 200)
            // Cut every LISTEN connection of this schema's auth channel and wait until both servers noticed (they
            // reconnect after ~1 s, and then start with an empty cache).
            let losses = t.authListeners.map(\.losses)
            let cut = try await t.db.int(
                """
                SELECT count(pg_terminate_backend(pid))::int FROM pg_stat_activity
                WHERE query LIKE 'LISTEN %' || 'remas_auth_' || left(md5(current_schema()), 16) || '%' AND datname = current_database()
                """, logger: t.logger)
            #expect((cut ?? 0) >= 2)
            #expect(try await waitUntil(timeout: 10) { zip(t.authListeners, losses).allSatisfy { $0.losses > $1 } })
            // Written behind the servers' back, while they cannot hear: the trigger's NOTIFY reaches nobody.
            try await t.db.execute("UPDATE users SET password = 'x' WHERE id = \(id)", logger: t.logger)
            #expect(try await Self.status(two, "/user/\(id)", token: access) == 401)
            #expect(try await Self.status(t.client, "/user/\(id)", token: access) == 401)
        }
    }

    /// Changes to other users, and edits that touch no credential, leave a token alone. Whatever they notified has
    /// arrived before the check: a notification sent after them (NOTIFY is delivered in commit order) was heard.
    @Test func unaffectedTokensKeepWorking() async throws {
        try await withTwoLiveServers { t, two in
            let id = try await t.makeUser("steady", uid: 4242)
            let other = try await t.makeUser("other")
            let (access, _) = try await Self.login(t.client, "steady")
            #expect(try await Self.status(two, "/user/\(id)", token: access) == 200)
            #expect(try await t.request(.post, "/authentication/set_password", token: try await t.adminToken(),
                                        json: #"{"user_id":\#(other),"new_password":"whatever1"}"#).status == .ok)
            #expect(try await t.request(.put, "/user", token: access,
                                        json: #"{"id":\#(id),"name":"S","surname":null,"username":"steady","email":"s@example.org","uid":4242}"#).status == .ok)
            let barrier = 2_000_000_000
            try await Self.afterHeard(t, user: barrier) { () async throws in
                try await t.db.execute(
                    "SELECT pg_notify('remas_auth_' || left(md5(current_schema()), 16), \(String(barrier)))", logger: t.logger)
            }
            #expect(try await Self.status(two, "/user/\(id)", token: access) == 200)
            #expect(try await Self.status(t.client, "/user/\(id)", token: access) == 200)
        }
    }
}
