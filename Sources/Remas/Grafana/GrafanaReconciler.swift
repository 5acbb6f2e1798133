import Crypto
import Foundation
import Logging

/// Grafana's state as listed once per pass: remas's alert rules (those carrying the `username`, `notification_id`,
/// `node_id` and `resource_id` labels, grouped by username), every folder and every contact point. Rules without
/// all four labels are someone else's and are never touched. A pass over 500 users makes these three list calls once, not per user and rule.
struct GrafanaSnapshot: Sendable {
    var rulesByUser: [String: [JSONValue]] = [:]
    var folders: [String: String] = [:]
    var contactPoints: [String: JSONValue] = [:]
}

/// Seals a password for the outbox row that carries it to Grafana (AES-GCM, key derived from `SECRET_KEY`).
struct PasswordSealer: Sendable {
    let key: SymmetricKey

    init(secret: String) {
        self.key = SymmetricKey(data: SHA256.hash(data: Data("remas grafana password\u{0}\(secret)".utf8)))
    }

    func seal(_ password: String) -> Data? { try? AES.GCM.seal(Data(password.utf8), using: self.key).combined }

    func open(_ sealed: Data) -> String? {
        guard let box = try? AES.GCM.SealedBox(combined: sealed), let plain = try? AES.GCM.open(box, using: self.key) else { return nil }
        return String(decoding: plain, as: UTF8.self)
    }
}

/// Makes Grafana hold exactly what REMAS says for a set of users (with the original's defects fixed):
/// the Grafana user (admin flag granted and revoked), the contact point, the four folders with the Editor permission
/// on the user folder, and one alert rule per received Grafana notification × node providing its resource. A user
/// REMAS no longer has is removed from Grafana. Every step is idempotent; a pass that fails half-way is simply
/// repeated, and calls that would change nothing are not made.
struct GrafanaReconciler: Sendable {
    let client: GrafanaClient
    let db: Database
    /// The sync queue and the rule inputs (`grafana_sync`, users, notifications).
    var queue: GrafanaRepository { GrafanaRepository(db: self.db) }
    /// Allocations are read as of the sync's own instant, by this clock.
    let clock: any SchedulerClock
    let sealer: PasswordSealer
    let logger: Logger
    /// Users synced at once; each makes its calls in order.
    static let parallelUsers = 16

    /// The three list calls of a pass, made together.
    func snapshot() async throws -> GrafanaSnapshot {
        async let rules = self.client.listRules(failure: "Failed to get alerts from Grafana!")
        async let folders = self.client.listFolders()
        async let points = self.client.listContactPoints()
        var snapshot = GrafanaSnapshot()
        for rule in try await rules {
            if let name = rule["labels"]?["username"]?.stringValue, AlertRuleRenderer.key(of: rule, username: name) != nil {
                snapshot.rulesByUser[name, default: []].append(rule)
            }
        }
        for folder in try await folders where snapshot.folders[folder.title] == nil { snapshot.folders[folder.title] = folder.uid }
        for point in try await points {
            if let name = point["name"]?.stringValue, snapshot.contactPoints[name] == nil { snapshot.contactPoints[name] = point }
        }
        return snapshot
    }

    /// Syncs (or removes) each named user; the result maps every name to its error, nil when Grafana took it all.
    func sync(_ claims: [GrafanaRepository.Claimed], snapshot: GrafanaSnapshot) async throws -> [String: GrafanaError?] {
        let names = claims.map(\.username)
        let users = try await self.queue.users(named: names, logger: self.logger)
        let specs = try await self.queue.ruleSpecs(
            forUsers: users.values.map(\.id), at: self.clock.now(), logger: self.logger)
        let specsByUser = Dictionary(grouping: specs, by: \.userID)
        return await withTaskGroup(of: (String, GrafanaError?).self) { group in
            var results: [String: GrafanaError?] = [:]
            var next = 0
            func start() {
                guard next < claims.count else { return }
                let claim = claims[next]
                next += 1
                group.addTask {
                    do {
                        if let user = users[claim.username] {
                            let password = claim.password.flatMap(self.sealer.open)
                            try await self.syncUser(user, specs: specsByUser[user.id] ?? [], password: password, snapshot: snapshot)
                        } else {
                            try await self.removeUser(claim.username, snapshot: snapshot)
                        }
                        return (claim.username, nil)
                    } catch let error as GrafanaError {
                        return (claim.username, error)
                    } catch {
                        return (claim.username, GrafanaError(message: "Grafana sync of \(claim.username) failed", grafanaStatus: nil, cause: "\(error)"))
                    }
                }
            }
            for _ in 0..<Self.parallelUsers { start() }
            while let (name, error) = await group.next() {
                results[name] = .some(error)
                start()
            }
            return results
        }
    }

    // MARK: one user

    func syncUser(_ user: GrafanaUser, specs: [RuleSpec], password: String?, snapshot: GrafanaSnapshot) async throws {
        let login = user.username
        // 1. The Grafana user: created, or updated where it differs; the admin flag follows REMAS both ways.
        var body: [String: JSONValue] = [
            "id": .null, "name": .string(user.displayName), "login": .string(login), "email": .string(user.email), "isDisabled": .bool(false),
        ]
        let grafanaID: Int
        var isGrafanaAdmin = false
        if let found = try await self.client.lookupUser(login: login), let id = found["id"]?.intValue {
            grafanaID = id
            isGrafanaAdmin = found["isGrafanaAdmin"] == .bool(true)
            if found["name"]?.stringValue != user.displayName || found["email"]?.stringValue != user.email
                || found["isDisabled"] == .bool(true)
            {
                try await self.client.updateUser(id: id, .object(body), login: login)
            }
            if let password { try await self.client.setPassword(id: id, password, login: login) }
        } else {
            // A user queued without a password (created before Grafana was enabled, or whose creation was lost) gets a
            // random one: their alerts work at once, and their next password change or set reaches Grafana.
            body["password"] = .string(password ?? PasswordHasher.randomPassword(length: 32))
            if password == nil { self.logger.notice("grafana user created with a random password", metadata: ["username": "\(login)"]) }
            grafanaID = try await self.client.createUser(.object(body), login: login)
        }
        if isGrafanaAdmin != user.isAdmin { try await self.client.setServerAdmin(id: grafanaID, user.isAdmin, login: login) }

        // 2. The contact point the user's rules route to.
        let point: JSONValue = .object([
            "uid": .null, "name": .string(user.contactPointName), "type": .string("email"),
            "settings": .object(["addresses": .string(user.email), "singleEmail": .bool(false)]), "disableResolveMessage": .bool(false),
        ])
        let existingPoint = snapshot.contactPoints[user.contactPointName]
        if existingPoint?["type"]?.stringValue != "email" || existingPoint?["settings"]?["addresses"]?.stringValue != user.email
            || existingPoint?["disableResolveMessage"] == .bool(true)
        {
            var sent = point
            if case .object(var o) = point, let uid = existingPoint?["uid"]?.stringValue {
                o["uid"] = .string(uid)
                sent = .object(o)
            }
            try await self.client.upsertContactPoint(
                uid: existingPoint?["uid"]?.stringValue, sent, failure: "Failed to add or update contact point for user \(login) in Grafana!")
        }

        // 3. The four folders, created when missing (the original failed with 500 instead).
        var folderUIDs: [String: String] = [:]
        for title in GrafanaFolders.all(login) {
            if let uid = snapshot.folders[title] {
                folderUIDs[title] = uid
            } else {
                folderUIDs[title] = try await self.client.createFolder(title: title, failure: "Failed to create folder for user \(login) in Grafana!").uid
            }
        }
        // The user may edit their own folder.
        let userFolder = GrafanaFolders.user(login)
        if let uid = folderUIDs[userFolder] {
            let items = try await self.client.folderPermissions(uid: uid, failure: "Failed to get permissions for folder \(userFolder) in Grafana!")
            if !items.contains(where: { $0["userId"]?.intValue == grafanaID && $0["permission"]?.intValue == 2 }) {
                try await self.client.setFolderPermissions(
                    uid: uid, items: items.map(Self.permissionItem) + [.object(["userId": .int(Int64(grafanaID)), "permission": .int(2)])],
                    failure: "Failed to add user \(login) permissions to folder \(userFolder) in Grafana!")
            }
        }

        // 4. The rules: one per (notification, node, resource); a duplicate or a rule nobody wants any more goes.
        var existing: [RuleKey: JSONValue] = [:]
        var unwanted: [JSONValue] = []
        for rule in snapshot.rulesByUser[login] ?? [] {
            guard let key = AlertRuleRenderer.key(of: rule, username: login) else { continue }
            if existing[key] == nil { existing[key] = rule } else { unwanted.append(rule) }
        }
        var failures: [GrafanaError] = []
        var kept = Set<RuleKey>()
        for spec in specs where spec.threshold != nil {
            let folder = spec.isTaskType ? GrafanaFolders.task(login) : GrafanaFolders.general(login)
            guard let folderUID = folderUIDs[folder] else { continue }
            let current = existing[spec.key]
            kept.insert(spec.key)
            let rule: JSONValue
            do {
                rule = try AlertRuleRenderer.render(spec, user: user, folderUID: folderUID, uid: current?["uid"]?.stringValue)
            } catch {
                // Templates are checked when saved; one that still fails (a string variable outside quotes meeting a
                // name that is not a number) cannot be fixed by retrying, so it is logged and the rest goes on.
                self.logger.error(
                    "alert rule template does not render to JSON",
                    metadata: ["notification_id": "\(spec.notificationID)", "username": "\(login)", "node_id": "\(spec.nodeID)"])
                continue
            }
            do {
                if let current, let uid = current["uid"]?.stringValue {
                    if AlertRuleRenderer.matches(existing: current, desired: rule) { continue }
                    // The spec's messages for create and update are swapped in the original; ours say what failed.
                    try await self.client.updateRule(uid: uid, rule, failure: "Failed to update alert \(spec.notificationName) for user \(login) in Grafana!")
                } else {
                    try await self.client.createRule(rule, failure: "Failed to create alert \(spec.notificationName) for user \(login) in Grafana!")
                }
            } catch let error as GrafanaError {
                failures.append(error)
            }
        }
        unwanted += existing.filter { !kept.contains($0.key) }.map(\.value)
        for rule in unwanted {
            guard let uid = rule["uid"]?.stringValue else { continue }
            do {
                try await self.client.deleteRule(uid: uid, failure: "Failed to remove alert for user \(login) in Grafana!")
            } catch let error as GrafanaError {
                failures.append(error)
            }
        }
        if let first = failures.first {
            throw GrafanaError(
                message: failures.map(\.message).joined(separator: "\n"), grafanaStatus: first.grafanaStatus,
                cause: failures.map(\.cause).joined(separator: "; "))
        }
    }

    /// Removes what Grafana holds for a username REMAS no longer has: rules, folders, contact point and the user.
    func removeUser(_ login: String, snapshot: GrafanaSnapshot) async throws {
        for rule in snapshot.rulesByUser[login] ?? [] {
            guard let uid = rule["uid"]?.stringValue else { continue }
            try await self.client.deleteRule(uid: uid, failure: "Failed to remove alert for user \(login) in Grafana!")
        }
        for title in GrafanaFolders.all(login) {
            if let uid = snapshot.folders[title] {
                try await self.client.deleteFolder(uid: uid, failure: "Failed to remove folder for user \(login) in Grafana!")
            }
        }
        if let uid = snapshot.contactPoints["\(login) contact point"]?["uid"]?.stringValue {
            try await self.client.deleteContactPoint(uid: uid, failure: "Failed to remove contact point for user \(login) in Grafana!")
        }
        // Never the account remas itself signs in with.
        guard login != self.client.adminLogin else { return }
        if let found = try await self.client.lookupUser(login: login), let id = found["id"]?.intValue {
            try await self.client.deleteUser(id: id, login: login)
        }
    }

    /// A permission item as Grafana's update takes it (the read adds display fields it does not want back).
    static func permissionItem(_ item: JSONValue) -> JSONValue {
        var out: [String: JSONValue] = [:]
        for key in ["userId", "teamId", "role", "permission"] {
            if let value = item[key], value != .null, value != .int(0), value != .string("") { out[key] = value }
        }
        return .object(out)
    }
}
