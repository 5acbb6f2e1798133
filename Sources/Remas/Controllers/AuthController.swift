import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MultipartKit

/// `/authentication/*`.
struct AuthController {
    let env: AppEnvironment
    var users: UserRepository { UserRepository(db: self.env.db) }

    struct LoginForm: Decodable {
        var username: String?
        var password: String?
        var grant_type: String?
    }

    var sessions: SessionRepository { SessionRepository(db: self.env.db) }
    var throttle: LoginThrottle {
        LoginThrottle(db: self.env.db, settings: self.env.configuration.loginThrottle, lockouts: self.env.lockouts)
    }

    func register(_ routes: RouteBuilder) {
        routes.post("/authentication/token", self.login)
        routes.post("/authentication/refresh", self.refresh)
        routes.post("/authentication/change_password", self.changePassword)
        routes.post("/authentication/set_password") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let userID = try body.id("user_id")
            let new = try body.string("new_password")
            try caller.requireAdmin()
            guard try await self.users.exists(id: userID, logger: context.logger) else {
                throw AppError.notFound("User with id \(userID) not found!")
            }
            let hash = try await self.env.hasher.hash(new)
            // Every session of the user ends, the admin's own included when they set their own password.
            guard try await self.users.setPassword(id: userID, hash: hash, logger: context.logger) else {
                throw AppError.notFound("User with id \(userID) not found!")
            }
            await self.env.grafana.changed(.passwordChanged(userID: userID, password: new), logger: context.logger)
            return .message("Password set successfully!")
        }
        routes.post("/authentication/logout") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            if let session = caller.sessionID {
                try await self.sessions.end(session, userID: caller.id, logger: context.logger)
            }
            return .message("Logged out successfully!")
        }
    }

    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!

    /// The client's address as the login throttle counts it.
    func clientAddress(_ request: Request, _ context: AppRequestContext) -> String {
        self.env.configuration.trustedProxies.clientAddress(
            peer: context.remoteAddress, forwardedFor: request.headers[values: Self.forwardedFor])
    }

    /// Checks a password under the login throttle: let in before bcrypt runs (a locked-out client gets 429 and costs
    /// no bcrypt), then counted as a failure or a success.
    func verifyThrottled(
        _ password: String, of username: String, request: Request, context: AppRequestContext
    ) async throws -> UserRepository.Credentials? {
        let address = self.clientAddress(request, context)
        try await self.throttle.admit(address: address, username: username, logger: context.logger)
        let user: UserRepository.Credentials?
        let correct: Bool
        do {
            user = try await self.users.credentials(username: username, logger: context.logger)
            correct = try await self.env.hasher.verify(password, hash: user?.passwordHash)
        } catch {
            try? await self.throttle.abandoned(address: address, username: username, logger: context.logger)
            throw error
        }
        guard correct, let user else {
            try await self.throttle.failed(address: address, username: username, logger: context.logger)
            return nil
        }
        try await self.throttle.succeeded(address: address, username: username, logger: context.logger)
        return user
    }

    @Sendable func login(_ request: Request, context: AppRequestContext) async throws -> Response {
        let form = try await self.readForm(request)
        guard let username = form.username else { throw AppError.unprocessable("Field required: body.username") }
        guard let password = form.password else { throw AppError.unprocessable("Field required: body.password") }
        if username.utf8.contains(0) || password.utf8.contains(0) {
            throw AppError.unauthorized("Wrong username or password!", bearerChallenge: false)
        }
        if let grant = form.grant_type, grant != "password" {
            throw AppError.unprocessable("String should match pattern '^password$': body.grant_type")
        }
        guard let user = try await self.verifyThrottled(password, of: username, request: request, context: context),
            let session = try await self.sessions.start(
                userID: user.id, lifetimeSeconds: self.env.configuration.refreshTokenMinutes * 60, logger: context.logger)
        else {
            throw AppError.unauthorized("Wrong username or password!", bearerChallenge: false)
        }
        let pair = try await self.env.tokens.issue(
            userID: user.id, username: user.username, isAdmin: user.isAdmin, epoch: user.tokenEpoch, session: session)
        return .json(pair.json)
    }

    /// A new pair for the refresh token's session (a token from before sessions existed gets a session of its own).
    @Sendable func refresh(_ request: Request, context: AppRequestContext) async throws -> Response {
        let caller = try await self.env.tokens.authenticate(request, refresh: true)
        guard let user = try await self.users.credentials(id: caller.id, logger: context.logger) else {
            throw AppError.unauthorized("Could not validate credentials!", bearerChallenge: true)
        }
        let lifetime = self.env.configuration.refreshTokenMinutes * 60
        let session: Int64?
        if let current = caller.sessionID {
            try await self.sessions.extend(current, userID: user.id, lifetimeSeconds: lifetime, logger: context.logger)
            session = current
        } else {
            session = try await self.sessions.start(userID: user.id, lifetimeSeconds: lifetime, logger: context.logger)
        }
        let pair = try await self.env.tokens.issue(
            userID: user.id, username: user.username, isAdmin: user.isAdmin, epoch: user.tokenEpoch, session: session)
        return .json(pair.json)
    }

    /// The caller's own new password: their other sessions end, the calling one (its access and refresh tokens) goes on.
    @Sendable func changePassword(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (body, caller) = try await self.env.bodyAndCaller(request)
        let old = try body.string("old_password")
        let new = try body.string("new_password")
        guard let user = try await self.verifyThrottled(old, of: caller.username, request: request, context: context) else {
            throw AppError.unauthorized("Wrong username or password!", bearerChallenge: false)
        }
        guard new.unicodeScalars.count >= 8 else { throw AppError.badRequest("Password must be at least 8 characters long!") }
        let hash = try await self.env.hasher.hash(new)
        guard try await self.users.setPassword(id: user.id, hash: hash, keeping: caller.sessionID, logger: context.logger) else {
            throw AppError.unauthorized("Wrong username or password!", bearerChallenge: false)
        }
        await self.env.grafana.changed(.passwordChanged(userID: user.id, password: new), logger: context.logger)
        return .message("Password changed successfully!")
    }

    /// Login accepts `application/x-www-form-urlencoded` and `multipart/form-data` (what the UI sends).
    func readForm(_ request: Request) async throws -> LoginForm {
        let buffer = try await request.collectBody(limit: 65_536)
        let contentType = request.headers.value(.contentType) ?? ""
        let lower = contentType.lowercased()
        if lower.hasPrefix("multipart/form-data") {
            guard let boundary = Self.parameter("boundary", in: contentType) else {
                throw AppError.unprocessable("multipart/form-data without a boundary: body")
            }
            do {
                return try FormDataDecoder().decode(LoginForm.self, from: buffer, boundary: boundary)
            } catch {
                throw AppError.unprocessable("Malformed multipart/form-data body: body")
            }
        }
        if lower.hasPrefix("application/x-www-form-urlencoded") || (contentType.isEmpty && buffer.readableBytes > 0) {
            return Self.decodeURLEncoded(String(buffer: buffer))
        }
        throw AppError.unprocessable("Field required: body.username")
    }

    static func parameter(_ name: String, in header: String) -> String? {
        for part in header.split(separator: ";").dropFirst() {
            let pieces = part.split(separator: "=", maxSplits: 1)
            guard pieces.count == 2, pieces[0].trimmingCharacters(in: .whitespaces).lowercased() == name else { continue }
            var value = pieces[1].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return value
        }
        return nil
    }

    static func decodeURLEncoded(_ text: String) -> LoginForm {
        var form = LoginForm()
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s)
            }
            let key = decode(kv[0])
            let value = kv.count > 1 ? decode(kv[1]) : ""
            switch key {
            case "username": form.username = value
            case "password": form.password = value
            case "grant_type": form.grant_type = value
            default: break
            }
        }
        return form
    }
}
