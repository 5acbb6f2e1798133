import Logging

/// The seam where user, group, node and resource changes reach Grafana (spec api-core §12).
///
/// The Grafana client comes in a later issue; until then `GrafanaSyncDisabled` records nothing and succeeds, and the
/// call sites already sit where the original makes its calls (before or after the database write).
public protocol GrafanaSync: Sendable {
    func userCreated(userID: Int, password: String, logger: Logger) async throws
    func userUpdated(userID: Int, logger: Logger) async throws
    func userWillBeDeleted(userID: Int, logger: Logger) async throws
    func passwordWillChange(userID: Int, password: String, logger: Logger) async throws
    func usersMoved(userIDs: [Int], logger: Logger) async throws
    func nodeChanged(nodeID: Int, logger: Logger) async throws
    func nodeWillBeDeleted(nodeID: Int, logger: Logger) async throws
    func resourceProvided(nodeID: Int, resourceID: Int, logger: Logger) async throws
    func resourceWithdrawn(nodeID: Int, resourceID: Int, logger: Logger) async throws
    func resourceChanged(resourceID: Int, logger: Logger) async throws
    func resourceWillBeDeleted(resourceID: Int, logger: Logger) async throws
    /// Notification seams (spec §5.3, §5.4): after an update or (un)assignment commits, before a delete.
    func notificationChanged(notificationID: Int, logger: Logger) async throws
    func notificationWillBeDeleted(notificationID: Int, logger: Logger) async throws
    func notificationReceiversChanged(notificationID: Int, userIDs: [Int], logger: Logger) async throws
    /// The scheduler's seam: these users' tasks started or ended, so their current allocations changed (spec §8.4).
    func allocationsChanged(userIDs: [Int], logger: Logger) async throws
}

/// No Grafana configured for this build yet: every hook is a successful no-op (logged at debug level).
public struct GrafanaSyncDisabled: GrafanaSync {
    public init() {}
    func note(_ what: String, _ logger: Logger) { logger.debug("grafana sync skipped (not enabled)", metadata: ["hook": "\(what)"]) }
    public func userCreated(userID: Int, password: String, logger: Logger) async throws { self.note("userCreated", logger) }
    public func userUpdated(userID: Int, logger: Logger) async throws { self.note("userUpdated", logger) }
    public func userWillBeDeleted(userID: Int, logger: Logger) async throws { self.note("userWillBeDeleted", logger) }
    public func passwordWillChange(userID: Int, password: String, logger: Logger) async throws { self.note("passwordWillChange", logger) }
    public func usersMoved(userIDs: [Int], logger: Logger) async throws { self.note("usersMoved", logger) }
    public func nodeChanged(nodeID: Int, logger: Logger) async throws { self.note("nodeChanged", logger) }
    public func nodeWillBeDeleted(nodeID: Int, logger: Logger) async throws { self.note("nodeWillBeDeleted", logger) }
    public func resourceProvided(nodeID: Int, resourceID: Int, logger: Logger) async throws { self.note("resourceProvided", logger) }
    public func resourceWithdrawn(nodeID: Int, resourceID: Int, logger: Logger) async throws { self.note("resourceWithdrawn", logger) }
    public func resourceChanged(resourceID: Int, logger: Logger) async throws { self.note("resourceChanged", logger) }
    public func resourceWillBeDeleted(resourceID: Int, logger: Logger) async throws { self.note("resourceWillBeDeleted", logger) }
    public func notificationChanged(notificationID: Int, logger: Logger) async throws { self.note("notificationChanged", logger) }
    public func notificationWillBeDeleted(notificationID: Int, logger: Logger) async throws { self.note("notificationWillBeDeleted", logger) }
    public func notificationReceiversChanged(notificationID: Int, userIDs: [Int], logger: Logger) async throws {
        self.note("notificationReceiversChanged", logger)
    }
    public func allocationsChanged(userIDs: [Int], logger: Logger) async throws { self.note("allocationsChanged", logger) }
}
