import Hummingbird
import Logging

/// Node status: collectors' reports (`PUT /node/{id}/status`, key scope `status`), Alertmanager's webhook
/// (`POST /alerts/alertmanager`, key scope `alerts`) and the list every logged-in user reads (`GET /node/status`).
/// An admin's token is accepted where a key's scope is needed.
struct NodeStatusController {
    let env: AppEnvironment
    var statuses: NodeStatusRepository { NodeStatusRepository(db: self.env.db) }
    var settings: OperationsSettings { self.env.configuration.operations }

    func register(_ routes: RouteBuilder) {
        routes.get("/node/status") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            return .json(try await self.statuses.list(settings: self.settings, logger: context.logger))
        }
        routes.put("/node/:node_id/status") { request, context in
            let raw = try await self.env.body(request)
            let caller = try await self.env.machineCaller(request, scope: .status, logger: context.logger)
            let id = try context.pathID("node_id")
            guard let value = raw else { throw AppError.unprocessable("Field required: body") }
            let body = try BodyFields(value)
            let status: NodeStatusRepository.Status = try body.requiredChoice("status")
            let message = try body.optionalString("message")
            let report = NodeStatusRepository.Report(status: status, message: message, source: caller.source)
            guard let outcome = try await self.statuses.report(node: id, report, settings: self.settings, logger: context.logger) else {
                throw AppError.notFound("Node with id \(id) not found!")
            }
            self.log(outcome, context.logger)
            return .json(try await self.statuses.json(node: id, settings: self.settings, logger: context.logger).orNotFound("Node", id))
        }
        routes.post("/alerts/alertmanager") { request, context in
            let raw = try await self.env.body(request)
            _ = try await self.env.machineCaller(request, scope: .alerts, logger: context.logger)
            guard let value = raw else { throw AppError.unprocessable("Field required: body") }
            let alerts = try Self.alerts(try BodyFields(value))
            return .json(try await self.apply(alerts, logger: context.logger))
        }
    }

    /// One alert of an Alertmanager webhook payload.
    struct Alert: Sendable {
        let name: String
        let firing: Bool
        /// The node the alert names: its `node` label, else the host of its `instance` label.
        let node: String?
        let startsAt: String
        let message: String
    }

    /// Reads Alertmanager's webhook payload (version 4); any malformed part is a 422 naming it, before anything is applied.
    static func alerts(_ body: BodyFields) throws -> [Alert] {
        guard try body.string("version") == "4" else {
            throw AppError.unprocessable("Only version 4 of Alertmanager's webhook payload is understood: body.version")
        }
        return try body.objectList("alerts").map { alert in
            let status = try alert.string("status")
            guard status == "firing" || status == "resolved" else {
                throw AppError.unprocessable("Input should be 'firing' or 'resolved': \(alert.path("status"))")
            }
            let labels = try alert.object("labels")
            let annotations = try alert.optionalObject("annotations")
            guard let name = try labels.optionalString("alertname") else { throw labels.missing("alertname") }
            let node = try labels.optionalString("node").flatMap { $0.isEmpty ? nil : $0 } ?? (try labels.optionalString("instance")).map(Self.host)
            let startsAt = try alert.string("startsAt")
            let summary = try annotations?.optionalString("summary") ?? annotations?.optionalString("description")
            return Alert(
                name: name, firing: status == "firing", node: node, startsAt: startsAt,
                message: summary ?? "alert \(name) \(status)")
        }
    }

    /// The host of an `instance` label: `host:port`, `[v6]:port`, or a bare host.
    static func host(_ instance: String) -> String {
        if instance.hasPrefix("["), let close = instance.firstIndex(of: "]") {
            return String(instance[instance.index(after: instance.startIndex)..<close])
        }
        if instance.filter({ $0 == ":" }).count == 1, let colon = instance.firstIndex(of: ":") { return String(instance[..<colon]) }
        return instance
    }

    /// Applies the node-down alerts in the order sent; answers what each alert did.
    func apply(_ alerts: [Alert], logger: Logger) async throws -> String {
        let names = Array(Set(alerts.compactMap(\.node)))
        let ids = try await self.statuses.nodeIDs(named: names, logger: logger)
        var w = JSONWriter()
        var ignored: [(Alert, String)] = []
        w.beginObject()
        w.key("applied")
        w.beginArray()
        for alert in alerts {
            guard self.settings.nodeDownAlerts.contains(alert.name) else {
                ignored.append((alert, "not a node-down alert (NODE_DOWN_ALERTS)"))
                continue
            }
            guard let node = alert.node else {
                ignored.append((alert, "the alert has neither a node nor an instance label"))
                continue
            }
            guard let id = ids[node] else {
                ignored.append((alert, "no node is named \(node)"))
                continue
            }
            let report = NodeStatusRepository.Report(
                status: alert.firing ? .down : .up, message: alert.message, source: "alertmanager",
                alert: (alert.startsAt, !alert.firing))
            guard let outcome = try await self.statuses.report(node: id, report, settings: self.settings, logger: logger) else {
                ignored.append((alert, "no node is named \(node)"))
                continue
            }
            self.log(outcome, logger)
            w.beginObject()
            w.field("alertname", alert.name)
            w.field("node_id", id)
            w.field("node", node)
            w.field("status", outcome.current?.rawValue)
            w.key("changed")
            w.bool(outcome.changed)
            w.endObject()
        }
        w.endArray()
        w.key("ignored")
        w.beginArray()
        for (alert, reason) in ignored {
            w.beginObject()
            w.field("alertname", alert.name)
            w.field("node", alert.node)
            w.field("reason", reason)
            w.endObject()
        }
        w.endArray()
        w.endObject()
        return w.text
    }

    func log(_ outcome: NodeStatusRepository.Outcome, _ logger: Logger) {
        guard outcome.changed else { return }
        logger.notice(
            "node status changed",
            metadata: [
                "node": "\(outcome.nodeName)", "from": "\(outcome.previous?.rawValue ?? "unknown")",
                "to": "\(outcome.current?.rawValue ?? "unknown")", "notices": "\(outcome.notices)",
            ])
    }
}
