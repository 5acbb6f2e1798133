import Foundation
import Hummingbird
import JWTKit
import Synchronization

/// The caller, as the access token describes them (the original never re-reads the database per request).
public struct CurrentUser: Sendable {
    public let id: Int
    public let username: String
    public let isAdmin: Bool
    /// The session the token belongs to (nil for a token issued before sessions existed).
    public var sessionID: Int64? = nil

    public func requireAdmin() throws {
        guard self.isAdmin else { throw AppError.forbidden() }
    }
}

/// The five claims of both REMAS tokens, and two of ours that remas-ui ignores.
struct TokenPayload: JWTPayload {
    var user_id: Int
    var sub: SubjectClaim
    var is_admin: Bool
    var is_refresh_token: Bool
    var exp: ExpirationClaim
    /// The user's `token_epoch` when the token was issued (ours; absent in tokens of the original, read as 0). Only
    /// tokens without a session are checked against it.
    var epoch: Int?
    /// The session (migration 0005) the token belongs to; kept by refreshes.
    var sid: Int64?

    func verify(using algorithm: some JWTAlgorithm) throws {
        try self.exp.verifyNotExpired()
    }
}

/// Issues and verifies the access/refresh JWT pair; with a `TokenRevocation`, also that the token still stands for its
/// user (not deleted, its session not ended, admin claim still true).
public struct TokenService: Sendable {
    let keys: JWTKeyCollection
    let algorithm: String
    let accessLifetime: Int
    let refreshLifetime: Int
    let cache = VerifiedTokenCache()
    /// Checks that a valid token still stands for its user (nil: signature and expiry only, for tests that only issue).
    let revocation: TokenRevocation?

    public init(configuration: AppConfiguration, revocation: TokenRevocation? = nil) async {
        self.revocation = revocation
        self.keys = JWTKeyCollection()
        let digest: DigestAlgorithm =
            switch configuration.algorithm {
            case .hs256: .sha256
            case .hs384: .sha384
            case .hs512: .sha512
            }
        await self.keys.add(hmac: HMACKey(from: configuration.secretKey), digestAlgorithm: digest)
        self.algorithm = configuration.algorithm.rawValue
        self.accessLifetime = configuration.accessTokenMinutes * 60
        self.refreshLifetime = configuration.refreshTokenMinutes * 60
    }

    public func issue(userID: Int, username: String, isAdmin: Bool, epoch: Int = 0, session: Int64? = nil) async throws -> TokenPair {
        let now = Date().timeIntervalSince1970.rounded(.down)
        func payload(refresh: Bool) -> TokenPayload {
            let lifetime = Double(refresh ? self.refreshLifetime : self.accessLifetime)
            return TokenPayload(
                user_id: userID, sub: SubjectClaim(value: username), is_admin: isAdmin, is_refresh_token: refresh,
                exp: ExpirationClaim(value: Date(timeIntervalSince1970: now + lifetime)), epoch: epoch, sid: session)
        }
        var header = JWTHeader()
        header.alg = self.algorithm
        header.typ = "JWT"
        let access = try await self.keys.sign(payload(refresh: false), header: header)
        let refresh = try await self.keys.sign(payload(refresh: true), header: header)
        return TokenPair(access: access, refresh: refresh)
    }

    /// Checks the `Authorization` header and the token kind, with the original's exact 401 texts.
    public func authenticate(_ request: Request, refresh: Bool = false) async throws -> CurrentUser {
        guard let token = Self.bearer(request) else { throw AppError.unauthorized("Not authenticated", bearerChallenge: true) }
        let payload: TokenPayload
        if let cached = self.cache.lookup(token) {
            payload = cached
        } else {
            do {
                try self.checkHeader(token)
                payload = try await self.keys.verify(Array(token.utf8), as: TokenPayload.self)
            } catch {
                throw AppError.unauthorized("Could not validate credentials!", bearerChallenge: true)
            }
            self.cache.store(token, payload)
        }
        if payload.is_refresh_token && !refresh {
            throw AppError.unauthorized("Refresh token was used instead of access token!", bearerChallenge: false)
        }
        if !payload.is_refresh_token && refresh {
            throw AppError.unauthorized("Access token was used instead of refresh token!", bearerChallenge: false)
        }
        try await self.revocation?.check(
            userID: payload.user_id, session: payload.sid, epoch: payload.epoch ?? 0, claimsAdmin: payload.is_admin)
        return CurrentUser(id: payload.user_id, username: payload.sub.value, isAdmin: payload.is_admin, sessionID: payload.sid)
    }

    /// The credential of an `Authorization: Bearer …` header (scheme case-insensitive); nil without one. The one
    /// parser of the header: user tokens here, API keys in `machineCaller`. The scheme is compared letter by letter,
    /// case folded, without a lowercased copy (every request).
    static func bearer(_ request: Request) -> Substring? {
        guard let header = request.headers.value(.authorization), let space = header.firstIndex(of: " "),
            header[..<space].utf8.elementsEqual("bearer".utf8, by: { $0 | 0x20 == $1 })
        else { return nil }
        return header[header.index(after: space)...]
    }

    struct Header: Decodable { let alg: String? }

    static func base64URLDecode(_ text: Substring) -> Data? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s)
    }

    /// Only the configured algorithm is accepted (`none` and every other `alg` are refused before any key is used).
    func checkHeader(_ token: Substring) throws {
        guard let dot = token.firstIndex(of: "."),
            let bytes = Self.base64URLDecode(token[..<dot]),
            let header = try? JSONDecoder().decode(Header.self, from: bytes), header.alg == self.algorithm
        else {
            throw AppError.unauthorized("Could not validate credentials!", bearerChallenge: true)
        }
    }
}

/// Tokens that already passed signature and claim checks, so a client's repeated requests skip the HMAC and JSON
/// work. Only verified tokens go in; `exp` is checked again on every hit; the cache is bounded (cleared when full).
final class VerifiedTokenCache: Sendable {
    private let entries = Mutex<[Substring: TokenPayload]>([:])
    let capacity = 10_000

    func lookup(_ token: Substring) -> TokenPayload? {
        guard let payload = self.entries.withLock({ $0[token] }) else { return nil }
        guard payload.exp.value > Date() else {
            _ = self.entries.withLock { $0.removeValue(forKey: token) }
            return nil
        }
        return payload
    }

    func store(_ token: Substring, _ payload: TokenPayload) {
        self.entries.withLock { entries in
            if entries.count >= self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[Substring(String(token))] = payload
        }
    }
}

/// The access and refresh token of one login or refresh, as `POST /authentication/token` answers them.
public struct TokenPair: Sendable {
    public let access: String
    public let refresh: String
    public var json: String {
        var w = JSONWriter()
        w.beginObject()
        w.field("access_token", self.access)
        w.field("refresh_token", self.refresh)
        w.endObject()
        return w.text
    }
}
