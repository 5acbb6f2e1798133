import Foundation
import Hummingbird
import Testing

@testable import Remas

/// The rule renderer, on the two shipped templates.
@Suite struct AlertRuleRendererTests {
    static let user = GrafanaUser(id: 7, username: "ann", name: "Ann \"A\"", surname: nil, uid: 1007, email: "ann@example.org", isAdmin: false)

    static func spec(template: String, type: String = "grafana_resource_exceedance_task", allocation: Int64? = nil) -> RuleSpec {
        RuleSpec(
            userID: 7, notificationID: 3, notificationName: "CPU", type: type, template: template, defaultAmount: 2, ownerUsername: nil,
            nodeID: 5, nodeName: #"gpu "7"\x"#, nodeDescription: nil, resourceID: 9, resourceName: "cpu", resourceDescription: "cores",
            capacity: 64, allocation: allocation)
    }

    @Test(arguments: ["CPU_Notificaion_template.json", "Memory_Notification_template.json"])
    func rendersTheShippedTemplates(_ file: String) throws {
        let template = try TestContext.ruleTemplate(file)
        let rule = try AlertRuleRenderer.render(Self.spec(template: template, allocation: 12), user: Self.user, folderUID: "f1", uid: nil)
        // A quote and a backslash in the node name are escaped, so the rule is still JSON and says the name exactly.
        let title = try #require(rule["title"]?.stringValue)
        #expect(title.hasSuffix(#"threshold on node gpu "7"\x"#))
        #expect(title.hasPrefix("User ann "))
        #expect(rule["folderUID"] == .string("f1"))
        #expect(rule["id"] == .null && rule["uid"] == .null)
        #expect(rule["notification_settings"]?["receiver"] == .string("ann contact point"))
        #expect(rule["labels"] == .object([
            "default": .string("false"), "username": .string("ann"), "notification_owner": .string("admin"),
            "node_id": .string("5"), "resource_id": .string("9"), "notification_id": .string("3"),
        ]))
        // The threshold is the allocation, a bare number.
        let data = try #require(rule["data"]?.arrayValue)
        let threshold = try #require(data.first { $0["datasourceUid"] == .string("__expr__") })
        let params = threshold["model"]?["conditions"]?.arrayValue?.first?["evaluator"]?["params"]
        #expect(params == .array([.int(12)]))
        // The query filters on the node name and the numeric uid.
        let expr = try #require(data.first { $0["datasourceUid"] == .string("remas-prometheus") }?["model"]?["expr"]?.stringValue)
        #expect(expr.contains(#"node="gpu "7"\x""#))
        #expect(expr.contains(#"groupname="1007""#))
        // Template keys pass through.
        #expect(rule["ruleGroup"] == .string("Task limit alerts") && rule["for"] == .string("5m") && rule["orgID"] == .int(1))
    }

    @Test func defaultThresholdAndUpdates() throws {
        let template = try TestContext.ruleTemplate("CPU_Notificaion_template.json")
        // No allocation (or a general rule): the default amount, labelled default.
        for spec in [Self.spec(template: template), Self.spec(template: template, type: "grafana_resource_exceedance_general", allocation: 5)] {
            let rule = try AlertRuleRenderer.render(spec, user: Self.user, folderUID: "f", uid: "existing")
            #expect(rule["labels"]?["default"] == .string("true"))
            #expect(rule["uid"] == .string("existing"))
            let data = try #require(rule["data"]?.arrayValue)
            #expect(data[1]["model"]?["conditions"]?.arrayValue?.first?["evaluator"]?["params"] == .array([.int(2)]))
        }
        // Template labels are kept; ours win on conflict.
        let labelled = #"{"title": "t", "labels": {"team": "hpc", "username": "mallory"}}"#
        let rule = try AlertRuleRenderer.render(Self.spec(template: labelled), user: Self.user, folderUID: "f", uid: nil)
        #expect(rule["labels"]?["team"] == .string("hpc") && rule["labels"]?["username"] == .string("ann"))
    }

    @Test func templatesThatAreNotJSONAreRefused() throws {
        for bad in [#"{"title": "x""#, #"[1, 2]"#, #"{"params": [${user_username}]}"#, "plain text"] {
            #expect(throws: AlertRuleRenderer.TemplateError.self) {
                try AlertRuleRenderer.render(Self.spec(template: bad), user: Self.user, folderUID: "f", uid: nil)
            }
            do {
                try AlertRuleRenderer.validate(template: bad, notificationName: "CPU", username: "ann")
                Issue.record("accepted \(bad)")
            } catch let error as AppError {
                #expect(error.status == .badRequest)
                #expect(error.detail == "Failed to create alert CPU for user ann in Grafana! Wrong notification template syntax!")
            }
        }
        try AlertRuleRenderer.validate(template: try TestContext.ruleTemplate("Memory_Notification_template.json"), notificationName: "m", username: "ann")
    }
}
