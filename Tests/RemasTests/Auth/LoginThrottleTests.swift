import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import Remas

/// Password guessing is counted per client address and username, and per address, by every replica together, before
/// bcrypt runs; the client address is the peer's unless the peer is a trusted proxy.
@Suite struct LoginThrottleTests {
    struct Attempt: Sendable {
        let status: Int
        let retryAfter: String?
        let detail: String?
    }

    static func login(
        _ client: any TestClientProtocol, _ username: String, _ password: String, forwardedFor: String? = nil
    ) async throws -> Attempt {
        var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
        if let forwardedFor { headers[HTTPField.Name("X-Forwarded-For")!] = forwardedFor }
        return try await client.execute(
            uri: "/authentication/token", method: .post, headers: headers, body: ByteBuffer(string: "username=\(username)&password=\(password)")
        ) { response in
            let object = try? JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
            return Attempt(status: Int(response.status.code), retryAfter: response.headers[.retryAfter], detail: object?["detail"] as? String)
        }
    }

    /// `remas_password_checks_total` of a server: how many bcrypt checks it ran.
    static func bcryptRuns(_ client: any TestClientProtocol) async throws -> Int {
        try await client.execute(uri: "/metrics", method: .get) { response in
            let line = String(buffer: response.body).split(separator: "\n").first { $0.hasPrefix("remas_password_checks_total ") }
            return Int(line?.split(separator: " ").last ?? "") ?? -1
        }
    }

    @Test func guessesFromTwoServersAreCountedTogetherBeforeBcrypt() async throws {
        // The test client sends a server's requests one after another, so held-back refusals (the default 1 s each)
        // would spread the 20 guesses past the 6-s lockout; this test is about counting, not holding back.
        try await withTwoLiveServers(extra: ["LOGIN_LOCKOUT_SECONDS": "6", "TRUSTED_PROXIES": "127.0.0.1", "LOGIN_REFUSAL_DELAY_MS": "0"]) { t, two in
            _ = try await t.makeUser("victim")
            _ = try await t.makeUser("bystander")
            let before = try await Self.bcryptRuns(t.client) + Self.bcryptRuns(two)
            // 20 wrong passwords for one user at once, half through each server, while another user logs in.
            let (guesses, others) = try await withThrowingTaskGroup(of: (Attempt, Bool).self) { group in
                for i in 0..<20 {
                    group.addTask { (try await Self.login(i % 2 == 0 ? t.client : two, "victim", "guess\(i)"), true) }
                }
                for i in 0..<3 {
                    group.addTask { (try await Self.login(i % 2 == 0 ? two : t.client, "bystander", "password"), false) }
                }
                var guesses: [Attempt] = []
                var others: [Attempt] = []
                for try await (attempt, isGuess) in group {
                    if isGuess { guesses.append(attempt) } else { others.append(attempt) }
                }
                return (guesses, others)
            }
            #expect(others.map(\.status) == [200, 200, 200])
            #expect(guesses.filter { $0.status == 401 }.count == 5)
            let refused = guesses.filter { $0.status == 429 }
            #expect(refused.count == 15)
            for attempt in refused {
                #expect(attempt.detail?.hasPrefix("Too many failed login attempts") == true)
                #expect((1...6).contains(Int(attempt.retryAfter ?? "") ?? 0), "Retry-After: \(attempt.retryAfter ?? "none")")
            }
            // Only the 5 counted guesses and the bystander's 3 logins ran bcrypt.
            #expect(try await Self.bcryptRuns(t.client) + Self.bcryptRuns(two) - before == 8)
            // Locked out: even the right password is refused, without bcrypt, from this address; another address is not.
            #expect(try await Self.login(two, "victim", "password").status == 429)
            #expect(try await Self.bcryptRuns(t.client) + Self.bcryptRuns(two) - before == 8)
            #expect(try await Self.login(two, "victim", "password", forwardedFor: "198.51.100.20").status == 200)
            // After the wait the right password works (and the count starts afresh).
            var lastStatus = 0
            let admitted = try await waitUntil(timeout: 20) {
                lastStatus = try await Self.login(t.client, "victim", "password").status
                return lastStatus != 429
            }
            #expect(admitted && lastStatus == 200)
            #expect(try await t.count("SELECT count(*)::int FROM login_throttle WHERE scope = 'user' AND username = 'victim' AND address = '127.0.0.1'") == 0)
        }
    }

    /// A wrong old password in change_password counts like a failed login (a stolen access token cannot be used to
    /// guess the password behind it at full speed).
    @Test func changePasswordIsThrottledToo() async throws {
        try await withTwoLiveServers { t, _ in
            let (id, token) = try await t.userWithToken("guessed")
            for i in 0..<5 {
                let r = try await t.request(.post, "/authentication/change_password", token: token,
                                            json: #"{"old_password":"wrong\#(i)","new_password":"something-new"}"#)
                #expect(r.status == .unauthorized)
            }
            let r = try await t.request(.post, "/authentication/change_password", token: token,
                                        json: #"{"old_password":"password","new_password":"something-new"}"#)
            #expect(r.status == .tooManyRequests)
            #expect(r.headers[.retryAfter] == "60")
            #expect(try await t.count("SELECT count(*)::int FROM users WHERE id = \(id) AND token_epoch = 0") == 1)
        }
    }

    /// Without TRUSTED_PROXIES a forged X-Forwarded-For changes nothing: every guess counts for the peer's address.
    @Test func forgedForwardedForFromAnUntrustedPeerIsIgnored() async throws {
        try await withTwoLiveServers { t, two in
            _ = try await t.makeUser("target")
            for i in 1...5 {
                #expect(try await Self.login(i % 2 == 0 ? two : t.client, "target", "nope", forwardedFor: "203.0.113.\(i)").status == 401)
            }
            #expect(try await Self.login(t.client, "target", "password", forwardedFor: "203.0.113.99").status == 429)
            let addresses = try await t.db.query("SELECT DISTINCT address FROM login_throttle", logger: t.logger).map { try $0.decode(String.self) }
            #expect(addresses == ["127.0.0.1"])
        }
    }

    /// Behind a trusted proxy the client is the rightmost X-Forwarded-For entry that is not a trusted proxy; entries
    /// further left were written by the client. One address is also limited across usernames.
    @Test func forwardedForFromATrustedProxyNamesTheClient() async throws {
        try await withTwoLiveServers(extra: ["TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8", "LOGIN_MAX_FAILURES_PER_ADDRESS": "8"]) { t, two in
            _ = try await t.makeUser("target")
            for _ in 1...5 { #expect(try await Self.login(two, "target", "nope", forwardedFor: "203.0.113.7").status == 401) }
            #expect(try await Self.login(t.client, "target", "password", forwardedFor: "203.0.113.7").status == 429)
            #expect(try await Self.login(t.client, "target", "password", forwardedFor: "198.51.100.9, 203.0.113.7").status == 429)
            #expect(try await Self.login(t.client, "target", "password", forwardedFor: "203.0.113.7, 10.1.2.3").status == 429)
            #expect(try await Self.login(t.client, "target", "password", forwardedFor: "203.0.113.7, 203.0.113.8").status == 200)
            #expect(try await Self.login(t.client, "target", "password").status == 200)  // the peer itself
            // 8 failures from one address over as many usernames lock the address out, for every username.
            for i in 1...8 { #expect(try await Self.login(two, "nobody\(i)", "x", forwardedFor: "192.0.2.1").status == 401) }
            #expect(try await Self.login(t.client, "target", "password", forwardedFor: "192.0.2.1").status == 429)
            #expect(try await Self.login(t.client, "target", "password", forwardedFor: "192.0.2.2").status == 200)
        }
    }

    /// A refusal is held back (default 1 s), so a guesser's connection waits instead of asking again at once; the
    /// answer is the same 429.
    @Test func refusalsAreHeldBack() async throws {
        try await withTwoLiveServers { t, _ in
            _ = try await t.makeUser("patient")
            for _ in 1...5 { #expect(try await Self.login(t.client, "patient", "nope").status == 401) }
            for _ in 1...2 {  // decided by the database, then from the server's memory
                let sent = ContinuousClock.now
                let attempt = try await Self.login(t.client, "patient", "nope")
                #expect(attempt.status == 429 && attempt.retryAfter != nil)
                #expect(ContinuousClock.now - sent >= .seconds(1), "a refusal came back at once")
            }
        }
    }

    /// A lockout a server answered is answered again from memory until it runs out.
    @Test func lockoutsAreRememberedUntilTheyRunOut() throws {
        let cache = LockoutCache()
        let key = LockoutCache.key(address: "192.0.2.1", username: "someone")
        #expect(cache.remaining(key) == nil)
        cache.lock(key, seconds: 3)
        #expect((1...3).contains(cache.remaining(key) ?? 0))
        #expect(cache.remaining(LockoutCache.key(address: "192.0.2.1", username: "other")) == nil)
        cache.lock(key, seconds: 0)
        #expect(cache.remaining(key) == nil)
    }

    @Test func trustedProxiesParseAndMatch() throws {
        let proxies = try TrustedProxies(parsing: "127.0.0.1, 10.0.0.0/8, fd00::/8, unix")
        let peer = try SocketAddress(ipAddress: "10.9.8.7", port: 1)
        #expect(proxies.clientAddress(peer: peer, forwardedFor: []) == "10.9.8.7")
        #expect(proxies.clientAddress(peer: peer, forwardedFor: ["1.2.3.4, 10.0.0.1", "127.0.0.1"]) == "1.2.3.4")
        #expect(proxies.clientAddress(peer: peer, forwardedFor: ["[2001:db8::1]:443"]) == "2001:db8::1")
        #expect(proxies.clientAddress(peer: peer, forwardedFor: ["::ffff:192.0.2.5"]) == "192.0.2.5")
        #expect(proxies.clientAddress(peer: peer, forwardedFor: ["garbage, 192.0.2.5"]) == "192.0.2.5")
        #expect(proxies.clientAddress(peer: try SocketAddress(ipAddress: "192.0.2.1", port: 1), forwardedFor: ["1.2.3.4"]) == "192.0.2.1")
        #expect(proxies.clientAddress(peer: try SocketAddress(ipAddress: "fd12::1", port: 1), forwardedFor: ["1.2.3.4"]) == "1.2.3.4")
        #expect(proxies.clientAddress(peer: try SocketAddress(unixDomainSocketPath: "/tmp/x.sock"), forwardedFor: ["1.2.3.4"]) == "1.2.3.4")
        #expect(try TrustedProxies(parsing: "").clientAddress(peer: try SocketAddress(unixDomainSocketPath: "/tmp/x.sock"), forwardedFor: ["1.2.3.4"]) == "unix")
        #expect(throws: ConfigurationError.self) { try TrustedProxies(parsing: "10.0.0.0/33") }
        #expect(throws: ConfigurationError.self) { try TrustedProxies(parsing: "proxy.example") }
        let settings = LoginThrottleSettings()
        #expect((0...9).map { settings.lockout(failures: $0, limit: 5) } == [0, 0, 0, 0, 0, 60, 120, 240, 480, 900])
    }
}
