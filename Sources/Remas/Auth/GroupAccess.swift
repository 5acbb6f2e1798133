import Logging

extension CurrentUser {
    /// The one rule for routes about a group (`GET /group/{id}`, `/limit/group_all`, `/notification/group`,
    /// `/task_tag/group`): an admin passes; anyone else only for their direct group (its ancestors do not count), and
    /// where the answer shows other members' data (`sharingStatistics`) only while that group shares statistics;
    /// otherwise 403. Routes call it where the original checks: before the existence check (except
    /// `/notification/group`, which answers 404 first). A caller whose user row is gone gets 401, like any revoked token.
    func requireMember(ofGroup id: Int, sharingStatistics: Bool = false, users: UserRepository, logger: Logger) async throws {
        guard !self.isAdmin else { return }
        guard let membership = try await users.membership(ofUser: self.id, logger: logger) else {
            throw AppError.unauthorized("Could not validate credentials!", bearerChallenge: true)
        }
        guard membership.groupID == id, !sharingStatistics || membership.sharesStatistics else { throw AppError.forbidden() }
    }
}
