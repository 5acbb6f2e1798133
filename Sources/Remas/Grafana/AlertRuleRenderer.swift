import Foundation

/// A REMAS user as Grafana sees it.
struct GrafanaUser: Sendable, Equatable {
    let id: Int
    let username: String
    let name: String?
    let surname: String?
    let uid: Int
    let email: String
    let isAdmin: Bool

    /// `"<name> <surname>"`, a missing part printed `None` as the original does.
    var displayName: String { "\(self.name ?? "None") \(self.surname ?? "None")" }
    var contactPointName: String { "\(self.username) contact point" }
}

/// One alert rule a user should have: notification × node providing its resource.
struct RuleSpec: Sendable {
    let userID: Int
    let notificationID: Int
    let notificationName: String
    let type: String
    let template: String
    let defaultAmount: Int64?
    let ownerUsername: String?
    let nodeID: Int
    let nodeName: String
    let nodeDescription: String?
    let resourceID: Int
    let resourceName: String
    let resourceDescription: String?
    let capacity: Int64
    /// The user's summed current allocation on (resource, node), if any.
    let allocation: Int64?

    var isTaskType: Bool { self.type == "grafana_resource_exceedance_task" }
    /// A task rule follows the current allocation; otherwise (and for general rules) the default amount.
    var usesAllocation: Bool { self.isTaskType && (self.allocation ?? 0) > 0 }
    var threshold: Int64? { self.usesAllocation ? self.allocation : self.defaultAmount }
    var key: RuleKey { RuleKey(notificationID: self.notificationID, nodeID: self.nodeID, resourceID: self.resourceID) }
}

/// What identifies a user's rule among all rules: its three id labels (the fourth, `username`, is the user).
struct RuleKey: Hashable, Sendable {
    let notificationID: Int
    let nodeID: Int
    let resourceID: Int
}

/// Folder names per user (the original's `${user_name}` there means the username).
enum GrafanaFolders {
    static func task(_ username: String) -> String { "\(username)_task_alerts" }
    static func general(_ username: String) -> String { "\(username)_general_alerts" }
    static func dashboards(_ username: String) -> String { "\(username)_tasks" }
    static func user(_ username: String) -> String { "\(username)_user_folder" }
    static func all(_ username: String) -> [String] { [task(username), general(username), dashboards(username), user(username)] }
}

/// Renders a notification's rule template into the JSON Grafana's provisioning API takes.
///
/// Deliberate change from the original: string values are inserted JSON-escaped, so a quote or backslash
/// in a node, resource or user name cannot break the rule or change its meaning; numbers stay bare, so
/// `"params": [${allocation_amount}]` keeps working. A missing value prints `None`, as in the original.
enum AlertRuleRenderer {
    struct TemplateError: Error {}

    static func variables(_ spec: RuleSpec, user: GrafanaUser) -> [String: String] {
        func text(_ s: String?) -> String { s.map(JSONText.escape) ?? "None" }
        return [
            "user_id": String(user.id), "user_name": text(user.name), "user_surname": text(user.surname),
            "user_username": text(user.username), "user_uid": String(user.uid), "user_email": text(user.email),
            "node_id": String(spec.nodeID), "node_name": text(spec.nodeName), "node_description": text(spec.nodeDescription),
            "resource_id": String(spec.resourceID), "resource_name": text(spec.resourceName),
            "resource_description": text(spec.resourceDescription), "resource_amount": String(spec.capacity),
            "allocation_amount": spec.threshold.map { String($0) } ?? "None",
        ]
    }

    /// The rule for `spec`, placed in `folderUID`, updating the rule `uid` when one exists.
    static func render(_ spec: RuleSpec, user: GrafanaUser, folderUID: String, uid: String?) throws(TemplateError) -> JSONValue {
        let text = DollarTemplate.substitute(spec.template, variables(spec, user: user))
        guard let parsed = try? JSONValue.parse(text: Array(text.utf8)), case .object(var rule) = parsed else { throw TemplateError() }
        var labels: [String: JSONValue] = [:]
        if case .object(let given)? = rule["labels"] { labels = given }
        labels["default"] = .string(spec.usesAllocation ? "false" : "true")
        labels["username"] = .string(user.username)
        labels["notification_owner"] = .string(spec.ownerUsername ?? "admin")
        labels["node_id"] = .string(String(spec.nodeID))
        labels["resource_id"] = .string(String(spec.resourceID))
        labels["notification_id"] = .string(String(spec.notificationID))
        rule["labels"] = .object(labels)
        var settings: [String: JSONValue] = [:]
        if case .object(let given)? = rule["notification_settings"] { settings = given }
        settings["receiver"] = .string(user.contactPointName)
        rule["notification_settings"] = .object(settings)
        rule["folderUID"] = .string(folderUID)
        rule["id"] = .null
        rule["uid"] = uid.map(JSONValue.string) ?? .null
        return .object(rule)
    }

    /// The 400 of a template that does not render, checked before anything is written: the template must be a JSON object once its
    /// variables are substituted. Escaped strings make the outcome independent of the actual names, so one trial
    /// rendering with sample values stands for every user and node.
    static func validate(template: String, notificationName: String, username: String) throws {
        let sample = RuleSpec(
            userID: 1, notificationID: 1, notificationName: notificationName, type: "grafana_resource_exceedance_task",
            template: template, defaultAmount: 1, ownerUsername: nil, nodeID: 1, nodeName: "node", nodeDescription: nil,
            resourceID: 1, resourceName: "resource", resourceDescription: nil, capacity: 1, allocation: nil)
        let user = GrafanaUser(id: 1, username: username, name: nil, surname: nil, uid: 1000, email: "user@example.org", isAdmin: false)
        do {
            _ = try render(sample, user: user, folderUID: "folder", uid: nil)
        } catch {
            throw AppError.badRequest(
                "Failed to create alert \(notificationName) for user \(username) in Grafana! Wrong notification template syntax!")
        }
    }

    /// The ids a rule carries in its labels, when it is one of ours for `username`.
    static func key(of rule: JSONValue, username: String) -> RuleKey? {
        guard let labels = rule["labels"], labels["username"]?.stringValue == username else { return nil }
        guard let n = labels["notification_id"]?.stringValue.flatMap({ Int($0) }),
            let node = labels["node_id"]?.stringValue.flatMap({ Int($0) }),
            let r = labels["resource_id"]?.stringValue.flatMap({ Int($0) })
        else { return nil }
        return RuleKey(notificationID: n, nodeID: node, resourceID: r)
    }

    /// True when Grafana's copy already says everything the rendered rule says (so no PUT is needed).
    static func matches(existing: JSONValue, desired: JSONValue) -> Bool {
        guard case .object(let want) = desired else { return false }
        for (key, value) in want where key != "id" && key != "uid" {
            if key == "record", value == .null, existing[key] == nil { continue }
            guard existing[key] == value else { return false }
        }
        return true
    }
}
