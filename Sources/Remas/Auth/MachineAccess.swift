import Hummingbird
import Logging

/// Who called a machine route (`PUT /node/{id}/status`, `POST /alerts/alertmanager`).
enum MachineCaller: Sendable {
    case key(ApiKeyRepository.Key)
    case admin(CurrentUser)

    /// How a node status written by this caller names its source.
    var source: String {
        switch self {
        case .key(let key): "api key \(key.name)"
        case .admin(let user): "user \(user.username)"
        }
    }
}

/// The two scopes a machine credential can hold.
enum ApiKeyScope: String, Sendable, CaseIterable {
    /// `PUT /node/{id}/status` (collectors).
    case status
    /// `POST /alerts/alertmanager`.
    case alerts
}

/// API keys: `remas_` and 40 hex digits (160 random bits). The prefix tells a key from a JWT before anything is
/// looked up, so a key never reaches the token checks and a token never reaches the key table.
enum ApiKeys {
    static let prefix = "remas_"

    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = Array("0123456789abcdef")
        return Self.prefix + String((0..<40).map { _ in hex[Int(generator.next() % 16)] })
    }
}

extension AppEnvironment {
    /// A machine route's caller: a key holding `scope`, or a logged-in admin. A key without the scope is 403; a
    /// user token of a non-admin is 403; no or an unknown credential is 401.
    func machineCaller(_ request: Request, scope: ApiKeyScope, logger: Logger) async throws -> MachineCaller {
        if let credential = TokenService.bearer(request)?.trimmingCharacters(in: .whitespaces) {
            if credential.hasPrefix(ApiKeys.prefix) {
                guard let key = try await ApiKeyRepository(db: self.db).use(credential, logger: logger) else {
                    throw AppError.unauthorized("Could not validate credentials!", bearerChallenge: true)
                }
                guard key.scopes.contains(scope.rawValue) else {
                    throw AppError.forbidden("The API key '\(key.name)' does not have the scope '\(scope.rawValue)'")
                }
                return .key(key)
            }
        }
        let user = try await self.tokens.authenticate(request)
        try user.requireAdmin()
        return .admin(user)
    }
}
