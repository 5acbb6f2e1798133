import Crypto
import Foundation
import HummingbirdBcrypt
import HTTPTypes
import Hummingbird
import Testing

@testable import Remas

@Suite struct AuthTests {
    static func claims(_ token: String) -> [String: Any] {
        let part = token.split(separator: ".")[1]
        return (try? JSONSerialization.jsonObject(with: TokenService.base64URLDecode(part)!)) as? [String: Any] ?? [:]
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Builds a token by hand, for attacks the token service itself would never produce.
    static func forge(header: String, payload: String, key: String?, sha512: Bool = false) -> String {
        let signingInput = base64URL(Data(header.utf8)) + "." + base64URL(Data(payload.utf8))
        guard let key else { return signingInput + "." }
        let symmetric = SymmetricKey(data: Data(key.utf8))
        let mac: Data =
            sha512
            ? Data(HMAC<SHA512>.authenticationCode(for: Data(signingInput.utf8), using: symmetric))
            : Data(HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: symmetric))
        return signingInput + "." + base64URL(mac)
    }

    static let secret = "test-secret-key-test-secret-key-0123456789"
    static var future: Int { Int(Date().timeIntervalSince1970) + 600 }

    @Test func loginWithUrlencodedForm() async throws {
        try await withApp { t in
            let r = try await t.request(
                .post, "/authentication/token", headers: [.contentType: "application/x-www-form-urlencoded"],
                body: "grant_type=password&username=administrator&password=admin")
            #expect(r.status == .ok)
            #expect(Set(r.object.keys) == ["access_token", "refresh_token"])
            let access = Self.claims(r.object["access_token"] as! String)
            #expect(access["user_id"] as? Int == 1)
            #expect(access["sub"] as? String == "administrator")
            #expect(access["is_admin"] as? Bool == true)
            #expect(access["is_refresh_token"] as? Bool == false)
            let exp = try #require(access["exp"] as? Int)
            #expect(abs(exp - (Int(Date().timeIntervalSince1970) + 30 * 60)) <= 2)
            let refresh = Self.claims(r.object["refresh_token"] as! String)
            #expect(refresh["is_refresh_token"] as? Bool == true)
            #expect(abs((refresh["exp"] as? Int ?? 0) - (Int(Date().timeIntervalSince1970) + 120 * 60)) <= 2)
            // The original's five claims, and ours: the user's token epoch (migration 0004) and the session (0005).
            #expect(Set(refresh.keys) == ["user_id", "sub", "is_admin", "is_refresh_token", "exp", "epoch", "sid"])
            #expect(refresh["epoch"] as? Int == 0)
            #expect(refresh["sid"] as? Int != nil && refresh["sid"] as? Int == access["sid"] as? Int)
        }
    }

    @Test func loginWithMultipartForm() async throws {
        try await withApp { t in
            let body = "--XyZ\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nadministrator\r\n--XyZ\r\n"
                + "Content-Disposition: form-data; name=\"password\"\r\n\r\nadmin\r\n--XyZ--\r\n"
            let r = try await t.request(.post, "/authentication/token", headers: [.contentType: "multipart/form-data; boundary=XyZ"], body: body)
            #expect(r.status == .ok)
            #expect(r.object["access_token"] is String)
        }
    }

    @Test func loginFailures() async throws {
        try await withApp { t in
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            var r = try await t.request(.post, "/authentication/token", headers: form, body: "username=administrator&password=wrong")
            #expect(r.status == .unauthorized)
            #expect(r.detail == "Wrong username or password!")
            #expect(r.headers[.wwwAuthenticate] == nil)
            r = try await t.request(.post, "/authentication/token", headers: form, body: "username=nobody&password=admin")
            #expect(r.status == .unauthorized)
            #expect(r.detail == "Wrong username or password!")
            r = try await t.request(.post, "/authentication/token", headers: form, body: "username=Administrator&password=admin")
            #expect(r.status == .unauthorized)
            r = try await t.request(.post, "/authentication/token", headers: form, body: "username=administrator&password=")
            #expect(r.status == .unauthorized)
            r = try await t.request(.post, "/authentication/token", headers: form, body: "password=admin")
            #expect(r.status == .unprocessableContent)
            #expect(r.detail == "Field required: body.username")
            r = try await t.request(.post, "/authentication/token", headers: form, body: "username=administrator&password=admin&grant_type=client")
            #expect(r.status == .unprocessableContent)
            r = try await t.request(.post, "/authentication/token", json: #"{"username":"administrator","password":"admin"}"#)
            #expect(r.status == .unprocessableContent)
            #expect(r.detail != nil)
        }
    }

    @Test func existingHashVariantsVerify() async throws {
        try await withApp { t in
            let hash2b = Bcrypt.hash("secret-pw", cost: 4)
            for prefix in ["$2a$", "$2b$", "$2y$"] {
                let hash = prefix + hash2b.dropFirst(4)
                let id = try await t.makeUser("hash\(prefix.dropFirst().dropLast())")
                try await t.db.execute("UPDATE users SET password = \(hash) WHERE id = \(id)", logger: t.logger)
                let r = try await t.request(
                    .post, "/authentication/token", headers: [.contentType: "application/x-www-form-urlencoded"],
                    body: "username=hash\(prefix.dropFirst().dropLast())&password=secret-pw")
                #expect(r.status == .ok, "\(prefix)")
            }
        }
    }

    @Test func adminStatusIsInheritedFromGroupTwo() async throws {
        try await withApp { t in
            let sub = try await t.makeGroup("Ops", parent: 2)
            let subsub = try await t.makeGroup("Ops-night", parent: sub)
            try await t.makeUser("night", groupID: subsub)
            try await t.makeUser("plain", groupID: 3)
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            let a = try await t.request(.post, "/authentication/token", headers: form, body: "username=night&password=password")
            #expect(Self.claims(a.object["access_token"] as! String)["is_admin"] as? Bool == true)
            let b = try await t.request(.post, "/authentication/token", headers: form, body: "username=plain&password=password")
            #expect(Self.claims(b.object["access_token"] as! String)["is_admin"] as? Bool == false)
        }
    }

    @Test func refreshIssuesANewPair() async throws {
        try await withApp { t in
            let pair = try await t.tokens.issue(userID: 1, username: "administrator", isAdmin: false)
            let r = try await t.request(.post, "/authentication/refresh", token: pair.refresh)
            #expect(r.status == .ok)
            // is_admin is recomputed from the database.
            #expect(Self.claims(r.object["refresh_token"] as! String)["is_admin"] as? Bool == true)
            let wrongKind = try await t.request(.post, "/authentication/refresh", token: pair.access)
            #expect(wrongKind.status == .unauthorized)
            #expect(wrongKind.detail == "Access token was used instead of refresh token!")
            let refreshAsAccess = try await t.request(.get, "/user", token: pair.refresh)
            #expect(refreshAsAccess.status == .unauthorized)
            #expect(refreshAsAccess.detail == "Refresh token was used instead of access token!")
        }
    }

    @Test func refreshForDeletedUserIs401() async throws {
        try await withApp { t in
            let id = try await t.makeUser("ghost")
            let pair = try await t.tokens.issue(userID: id, username: "ghost", isAdmin: false)
            try await t.db.execute("DELETE FROM users WHERE id = \(id)", logger: t.logger)
            let r = try await t.request(.post, "/authentication/refresh", token: pair.refresh)
            #expect(r.status == .unauthorized)
            #expect(r.detail == "Could not validate credentials!")
            #expect(r.headers[.wwwAuthenticate] == "Bearer")
        }
    }

    @Test func tokenAttacksAreRefused() async throws {
        try await withApp { t in
            let header = #"{"alg":"HS256","typ":"JWT"}"#
            let good = #"{"user_id":1,"sub":"administrator","is_admin":true,"is_refresh_token":false,"exp":\#(Self.future)}"#
            // Sanity: a correctly forged token works, so the failures below are about the attack.
            #expect(try await t.request(.get, "/user", token: Self.forge(header: header, payload: good, key: Self.secret)).status == .ok)

            let attacks: [(String, String)] = [
                ("expired", Self.forge(header: header, payload: #"{"user_id":1,"sub":"administrator","is_admin":true,"is_refresh_token":false,"exp":1000}"#, key: Self.secret)),
                ("bad signature", Self.forge(header: header, payload: good, key: "another-key-another-key-another-key-000")),
                ("alg none", Self.forge(header: #"{"alg":"none","typ":"JWT"}"#, payload: good, key: nil)),
                ("alg none signed", Self.forge(header: #"{"alg":"none","typ":"JWT"}"#, payload: good, key: Self.secret)),
                ("other algorithm", Self.forge(header: #"{"alg":"HS512","typ":"JWT"}"#, payload: good, key: Self.secret, sha512: true)),
                ("missing is_admin", Self.forge(header: header, payload: #"{"user_id":1,"sub":"administrator","is_refresh_token":false,"exp":\#(Self.future)}"#, key: Self.secret)),
                ("missing exp", Self.forge(header: header, payload: #"{"user_id":1,"sub":"administrator","is_admin":true,"is_refresh_token":false}"#, key: Self.secret)),
                ("missing user_id", Self.forge(header: header, payload: #"{"sub":"administrator","is_admin":true,"is_refresh_token":false,"exp":\#(Self.future)}"#, key: Self.secret)),
                ("garbage", "not-a-token"),
                ("two parts", "abc.def"),
            ]
            for (name, token) in attacks {
                let r = try await t.request(.get, "/user", token: token)
                #expect(r.status == .unauthorized, "\(name)")
                #expect(r.detail == "Could not validate credentials!", "\(name)")
                #expect(r.headers[.wwwAuthenticate] == "Bearer", "\(name)")
            }
        }
    }

    @Test func malformedAuthorizationHeaders() async throws {
        try await withApp { t in
            let token = try await t.adminToken()
            for value in ["", "Bearer", "Basic \(token)", "Token \(token)", token, "Bearen \(token)", "Bearer\(token)", "Bear \(token)"] {
                let r = try await t.request(.get, "/user", headers: [.authorization: value])
                #expect(r.status == .unauthorized, "\(value)")
                #expect(r.detail == "Not authenticated")
                #expect(r.headers[.wwwAuthenticate] == "Bearer")
            }
            let none = try await t.request(.get, "/user")
            #expect(none.detail == "Not authenticated")
            // The scheme is case-insensitive.
            #expect(try await t.request(.get, "/user", headers: [.authorization: "bearer \(token)"]).status == .ok)
            #expect(try await t.request(.get, "/user", headers: [.authorization: "BEARER \(token)"]).status == .ok)
            // Two Authorization fields read as one joined value, which is no token.
            var twice = HTTPFields()
            twice.append(HTTPField(name: .authorization, value: "Bearer \(token)"))
            twice.append(HTTPField(name: .authorization, value: "Bearer \(token)"))
            let joined = try await t.request(.get, "/user", headers: twice)
            #expect(joined.status == .unauthorized)
            #expect(joined.detail == "Could not validate credentials!")
        }
    }

    @Test func changePassword() async throws {
        try await withApp { t in
            let (_, token) = try await t.userWithToken("alice")
            var r = try await t.request(.post, "/authentication/change_password", token: token, json: #"{"old_password":"nope","new_password":"longenough"}"#)
            #expect(r.status == .unauthorized)
            #expect(r.detail == "Wrong username or password!")
            r = try await t.request(.post, "/authentication/change_password", token: token, json: #"{"old_password":"password","new_password":"short"}"#)
            #expect(r.status == .badRequest)
            #expect(r.detail == "Password must be at least 8 characters long!")
            r = try await t.request(.post, "/authentication/change_password", token: token, json: #"{"old_password":"password"}"#)
            #expect(r.status == .unprocessableContent)
            #expect(r.detail == "Field required: body.new_password")
            r = try await t.request(.post, "/authentication/change_password", token: token, json: #"{"old_password":"password","new_password":"longenough"}"#)
            #expect(r.status == .ok)
            #expect(r.detail == "Password changed successfully!")
            let login = try await t.request(
                .post, "/authentication/token", headers: [.contentType: "application/x-www-form-urlencoded"], body: "username=alice&password=longenough")
            #expect(login.status == .ok)
        }
    }

    @Test func setPassword() async throws {
        try await withApp { t in
            let (bob, bobToken) = try await t.userWithToken("bob")
            let admin = try await t.adminToken()
            var r = try await t.request(.post, "/authentication/set_password", token: bobToken, json: #"{"user_id":1,"new_password":"x"}"#)
            #expect(r.status == .forbidden)
            #expect(r.detail == "Insufficient permissions!")
            // Validation comes before the admin check.
            r = try await t.request(.post, "/authentication/set_password", token: bobToken, json: #"{"user_id":1}"#)
            #expect(r.status == .unprocessableContent)
            r = try await t.request(.post, "/authentication/set_password", token: admin, json: #"{"user_id":9999,"new_password":"x"}"#)
            #expect(r.status == .notFound)
            #expect(r.detail == "User with id 9999 not found!")
            r = try await t.request(.post, "/authentication/set_password", token: admin, json: #"{"user_id":\#(bob),"new_password":"x"}"#)
            #expect(r.status == .ok)
            #expect(r.detail == "Password set successfully!")
            let login = try await t.request(
                .post, "/authentication/token", headers: [.contentType: "application/x-www-form-urlencoded"], body: "username=bob&password=x")
            #expect(login.status == .ok)
        }
    }
}
