import Foundation
import Logging

/// A change in the database that Grafana must follow.
public enum GrafanaChange: Sendable, Equatable {
    case userCreated(username: String, password: String)
    case userUpdated(userID: Int)
    /// Read before the delete: afterwards the username is gone.
    case userDeleted(userID: Int)
    case passwordChanged(userID: Int, password: String)
    /// Group moves, receiver changes, and allocation changes (task start/end, a current task created, edited or deleted).
    case users([Int])
    /// A node changed, is about to be deleted: receivers of the notifications of every resource it provides.
    case node(Int)
    /// A resource changed, is about to be deleted, was provided or withdrawn on a node: receivers of its notifications.
    case resource(Int)
    /// A notification changed or is about to be deleted: its receivers.
    case notification(Int)
}

/// Who a change touches: the usernames to sync, and a sealed password for the first when it carries one.
public struct GrafanaTouched: Sendable {
    public var usernames: [String]
    var password: Data?

    public static let nobody = GrafanaTouched(usernames: [], password: nil)
}

/// The seam between the API and Grafana. Changes never call Grafana in the request: they are read (`touched`, before
/// a delete loses the links that say who it touches), committed, then queued (`enqueue`) in the outbox that the
/// scheduler works off. Grafana being slow or down thus never rolls back, fails or delays a request.
public protocol GrafanaSync: Sendable {
    func touched(by change: GrafanaChange, logger: Logger) async throws -> GrafanaTouched
    func enqueue(_ touched: GrafanaTouched, logger: Logger) async throws
}

extension GrafanaSync {
    /// Reads who a change touches; a failure is logged (the periodic full resync repairs what it misses).
    public func touchedLogged(by change: GrafanaChange, logger: Logger) async -> GrafanaTouched {
        do {
            return try await self.touched(by: change, logger: logger)
        } catch {
            logger.error("grafana: could not read who a change touches", metadata: ["change": "\(change)", "error": "\(String(reflecting: error))"])
            return .nobody
        }
    }

    /// Queues what `touchedLogged` read, after the change committed.
    public func enqueueLogged(_ touched: GrafanaTouched, logger: Logger) async {
        guard !touched.usernames.isEmpty else { return }
        do {
            try await self.enqueue(touched, logger: logger)
        } catch {
            logger.error("grafana: could not queue a sync", metadata: ["users": "\(touched.usernames)", "error": "\(String(reflecting: error))"])
        }
    }

    /// For a change that has committed: read who it touches and queue them.
    public func changed(_ change: GrafanaChange, logger: Logger) async {
        await self.enqueueLogged(await self.touchedLogged(by: change, logger: logger), logger: logger)
    }
}

/// No Grafana configured (`GRAFANA_ENABLED` false): nothing is read or queued.
public struct GrafanaSyncDisabled: GrafanaSync {
    public init() {}
    public func touched(by change: GrafanaChange, logger: Logger) async throws -> GrafanaTouched { .nobody }
    public func enqueue(_ touched: GrafanaTouched, logger: Logger) async throws {}
}

/// The outbox (migration 0003): touched users go into `grafana_outbox`, whose trigger wakes the scheduler of every
/// replica; `GrafanaSyncWorker` syncs them.
public struct GrafanaOutbox: GrafanaSync {
    let db: Database
    /// The sync queue and the rule inputs (`grafana_sync`, users, notifications).
    var queue: GrafanaRepository { GrafanaRepository(db: self.db) }
    let sealer: PasswordSealer

    public init(db: Database, secretKey: String) {
        self.db = db
        self.sealer = PasswordSealer(secret: secretKey)
    }

    public func touched(by change: GrafanaChange, logger: Logger) async throws -> GrafanaTouched {
        let grafanaTypes = NotificationType.grafanaSQLList
        switch change {
        case .userCreated(let username, let password):
            return GrafanaTouched(usernames: [username], password: self.sealer.seal(password))
        case .passwordChanged(let id, let password):
            let names = try await self.queue.usernames(ofUsers: [id], logger: logger)
            return GrafanaTouched(usernames: names, password: self.sealer.seal(password))
        case .userUpdated(let id), .userDeleted(let id):
            return GrafanaTouched(usernames: try await self.queue.usernames(ofUsers: [id], logger: logger))
        case .users(let ids):
            return GrafanaTouched(usernames: try await self.queue.usernames(ofUsers: ids, logger: logger))
        case .notification(let id):
            return GrafanaTouched(
                // Any type: a notification that stops being a Grafana one must take its rules with it.
                usernames: try await self.queue.receivers(where: "n.id = \(id)", logger: logger))
        case .resource(let id):
            return GrafanaTouched(
                usernames: try await self.queue.receivers(
                    where: "n.resource_id = \(id) AND n.type IN \(unescaped: grafanaTypes)", logger: logger))
        case .node(let id):
            return GrafanaTouched(
                usernames: try await self.queue.receivers(
                    where: "n.resource_id IN (SELECT resource_id FROM node_resources WHERE node_id = \(id)) AND n.type IN \(unescaped: grafanaTypes)",
                    logger: logger))
        }
    }

    public func enqueue(_ touched: GrafanaTouched, logger: Logger) async throws {
        try await self.queue.enqueue(touched.usernames, password: touched.password, logger: logger)
    }
}
