import Foundation
import Hummingbird
import Testing

@testable import Remas

/// The Grafana sync end to end: the API queues, the worker reconciles against the fake Grafana (which validates
/// every request like Grafana's provisioning API), through the scheduler where tasks start and end.
@Suite struct GrafanaSyncTests {
    /// A user created through the API, a notification assigned: the Grafana user (with the REMAS password), the
    /// contact point, the four folders with the Editor permission, and one rule per node at the default threshold.
    @Test func assignmentCreatesUserFoldersContactPointAndRules() async throws {
        let fake = try FakeGrafana()
        try await withApp(extra: fake.environment) { t in
            let admin = try await t.adminToken()
            let cluster = try await t.cluster(nodes: 2, capacity: 16)
            let (nodes, cpu) = (cluster.0, cluster.1[0])
            let created = try await t.request(
                .post, "/user", token: admin,
                json: #"{"uid":1500,"username":"ann","email":"ann@example.org","password":"ann-secret-1","name":"Ann","surname":null,"group_id":3}"#)
            #expect(created.status == .created)
            let ann = try #require(created.object["id"] as? Int)
            let notification = try await t.makeGrafanaNotification("CPU", resource: cpu, defaultAmount: 1)
            #expect(try await t.assign(notification, user: ann).status == .ok)
            #expect(try await t.outboxCount() == 1)
            let worker = t.grafanaWorker(fake)
            let pass = try await worker.runPass()
            #expect(pass.synced == ["ann"] && pass.failed.isEmpty)
            #expect(try await t.outboxCount() == 0)

            let state = try await fake.state()
            #expect(state.refused.isEmpty, "\(state.refused)")
            #expect(state.unknown.isEmpty, "\(state.unknown)")
            let user = try #require(state.user("ann"))
            #expect(user["email"] as? String == "ann@example.org" && user["name"] as? String == "Ann None")
            #expect(user["isGrafanaAdmin"] as? Bool == false)
            #expect(state.passwords["ann"] == "ann-secret-1")
            #expect(state.contactPoints.contains { $0["name"] as? String == "ann contact point" })
            #expect(state.folderTitles().isSuperset(of: ["ann_task_alerts", "ann_general_alerts", "ann_tasks", "ann_user_folder"]))
            let userFolder = try #require(state.folderUID("ann_user_folder"))
            #expect(state.permissions(userFolder).contains { $0["userId"] as? Int == user["id"] as? Int && $0["permission"] as? Int == 2 })
            for node in nodes {
                let rule = try #require(state.rule("ann", notification: notification, node: node))
                #expect(GrafanaState.threshold(rule) == 1)
                #expect(GrafanaState.isDefault(rule) == "true")
                #expect(rule["folderUID"] as? String == state.folderUID("ann_task_alerts"))
            }
            #expect(state.rules(of: "ann").count == 2)
            // One listing of each kind for the pass.
            #expect(state.calls["GET alert-rules"] == 1 && state.calls["GET folders"] == 1 && state.calls["GET contact-points"] == 1)

            // A second sync with nothing changed writes nothing.
            try await GrafanaRepository(db: t.db).enqueue(["ann"], logger: t.logger)
            #expect(try await worker.runPass().synced == ["ann"])
            let again = try await fake.state()
            #expect(again.calls["POST alert-rules"] == 2 && again.calls["PUT alert-rules/{uid}"] == nil)
            #expect(again.calls["POST folders"] == 4 && again.calls["POST admin/users"] == 1)
            await worker.shutdown()
        }
    }

    /// Through the scheduler: the threshold becomes the allocation when the task starts and the default when it ends;
    /// with Grafana down the task still starts, and the rule catches up once Grafana is back.
    @Test func thresholdFollowsTasksThroughTheScheduler() async throws {
        let fake = try FakeGrafana()
        try await withApp(extra: fake.environment) { t in
            let cluster = try await t.cluster(nodes: 2, capacity: 16)
            let ((n1, n2), cpu) = ((cluster.0[0], cluster.0[1]), cluster.1[0])
            let (user, token) = try await t.userWithToken("bob")
            let notification = try await t.makeGrafanaNotification("CPU", resource: cpu, defaultAmount: 1)
            #expect(try await t.assign(notification, user: user).status == .ok)
            #expect(try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n1, cpu, 3)]).status == .ok)
            #expect(try await t.book(token, start: "2030-01-01 11:00", end: "2030-01-01 12:00", [(n1, cpu, 2)]).status == .ok)
            let downTask = try #require(try await t.book(token, start: "2030-01-02 10:00", end: "2030-01-02 11:00", [(n2, cpu, 5)]).object["id"] as? Int)
            let clock = FixedClock("2030-01-01 09:00")
            let worker = t.grafanaWorker(fake, clock: clock)
            let outbox = GrafanaOutbox(db: t.db, secretKey: t.configuration.secretKey)
            /// (threshold, default label) of bob's rule on `node`.
            @Sendable func rule(_ node: Int) async throws -> (Double?, String?) {
                let rule = try await fake.state().rule("bob", notification: notification, node: node)
                return (GrafanaState.threshold(rule), GrafanaState.isDefault(rule))
            }

            try await t.withScheduler(clock: clock, precision: 60, grafana: outbox) { scheduler in
                try await worker.runPass()
                var seen = try await rule(n1)
                #expect(seen.0 == 1)
                // Within the precision of its start, a task has not started: nothing is queued (reminders may go early,
                // thresholds never move before the instant).
                clock.set("2030-01-01 09:59:30")
                #expect(try await scheduler.runPass().usersWithChangedAllocations == [])
                #expect(try await t.outboxCount() == 0)
                // 10:00: the first task starts (the scheduler queues bob), the threshold on n1 becomes 3.
                clock.set("2030-01-01 10:00")
                #expect(try await scheduler.runPass().usersWithChangedAllocations == [user])
                #expect(try await t.outboxCount() == 1)
                #expect(try await worker.runPass().synced == ["bob"])
                seen = try await rule(n1)
                #expect(seen.0 == 3 && seen.1 == "false")
                seen = try await rule(n2)
                #expect(seen.0 == 1)
                // 11:00: both run, the allocations add up.
                clock.set("2030-01-01 11:00")
                try await scheduler.runPass()
                try await worker.runPass()
                seen = try await rule(n1)
                #expect(seen.0 == 5)
                // 12:00: both end, back to the default.
                clock.set("2030-01-01 12:00")
                try await scheduler.runPass()
                try await worker.runPass()
                seen = try await rule(n1)
                #expect(seen.0 == 1 && seen.1 == "true")

                // Grafana down when the next task starts: the task still starts, the sync waits in the outbox.
                try await fake.mode(fail: 503)
                clock.set("2030-01-02 10:00")
                #expect(try await scheduler.runPass().usersWithChangedAllocations == [user])
                #expect(try await t.count("SELECT count(*)::int FROM events WHERE task_id = \(downTask) AND type = 'task_start' AND state = 'done'") == 1)
                let failed = try await worker.runPass()
                #expect(failed.failed.keys.sorted() == ["bob"])
                #expect(failed.failed["bob"]?.contains("Failed to get alerts from Grafana!") == true)
                let row = try #require(try await t.db.query("SELECT attempts, last_error FROM grafana_outbox WHERE username = 'bob'", logger: t.logger).first)
                let (attempts, lastError) = try row.decode((Int, String?).self)
                #expect(attempts == 1 && lastError != nil)
                // Not due again before the backoff.
                #expect(try await worker.runPass().synced.isEmpty)
                try await fake.mode(fail: nil)
                seen = try await rule(n2)
                #expect(seen.0 == 1)
                try await t.outboxDueNow()
                #expect(try await worker.runPass().synced == ["bob"])
                seen = try await rule(n2)
                #expect(seen.0 == 5)
                #expect(try await t.outboxCount() == 0)
            }
            let state = try await fake.state()
            #expect(state.refused.isEmpty && state.unknown.isEmpty, "\(state.refused) \(state.unknown)")
            await worker.shutdown()
        }
    }

    /// A running task created, edited or deleted moves the threshold at once (the original waited for the next start
    /// or end, Q-NOUPDATE-THR); a task far ahead queues nothing.
    @Test func runningTaskChangesSyncAtOnce() async throws {
        let fake = try FakeGrafana()
        try await withApp(extra: fake.environment) { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 16)
            let (n1, cpu) = (cluster.0[0], cluster.1[0])
            let (user, token) = try await t.userWithToken("cyd")
            let notification = try await t.makeGrafanaNotification("CPU", resource: cpu, defaultAmount: 1)
            #expect(try await t.assign(notification, user: user).status == .ok)
            let worker = t.grafanaWorker(fake)
            try await worker.runPass()
            #expect(try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n1, cpu, 3)]).status == .ok)
            #expect(try await t.outboxCount() == 0)

            let start = try await t.wallClock(minutes: -5)
            let end = try await t.wallClock(minutes: 120)
            let running = try #require(try await t.book(token, start: start, end: end, [(n1, cpu, 4)]).object["id"] as? Int)
            #expect(try await t.outboxCount() == 1)
            try await worker.runPass()
            #expect(GrafanaState.threshold(try await fake.state().rule("cyd", notification: notification, node: n1)) == 4)
            #expect(try await t.book(token, id: running, start: start, end: end, [(n1, cpu, 6)]).status == .ok)
            try await worker.runPass()
            #expect(GrafanaState.threshold(try await fake.state().rule("cyd", notification: notification, node: n1)) == 6)
            #expect(try await t.request(.delete, "/task/\(running)", token: token).status == .ok)
            try await worker.runPass()
            #expect(GrafanaState.threshold(try await fake.state().rule("cyd", notification: notification, node: n1)) == 1)
            await worker.shutdown()
        }
    }

    /// General rules survive every sync (Q-GENDEL); unassigning spares users who still receive the notification
    /// through a group (Q-UNASSIGN); withdrawn resources, admin rights both ways, passwords and user deletion follow.
    @Test func lifecycle() async throws {
        let fake = try FakeGrafana()
        try await withApp(extra: fake.environment) { t in
            let admin = try await t.adminToken()
            let cluster = try await t.cluster(nodes: 2, capacity: 16, resources: ["cpu", "mem"])
            let ((n1, n2), (cpu, mem)) = ((cluster.0[0], cluster.0[1]), (cluster.1[0], cluster.1[1]))
            let team = try await t.makeGroup("team", parent: 3)
            let dee = try await t.makeUser("dee", groupID: team)
            let task = try await t.makeGrafanaNotification("CPU", resource: cpu, defaultAmount: 1)
            let general = try await t.makeGrafanaNotification(
                "Memory", type: "grafana_resource_exceedance_general", resource: mem, defaultAmount: 400 << 20,
                template: try TestContext.ruleTemplate("Memory_Notification_template.json"))
            #expect(try await t.assign(task, user: dee).status == .ok)
            #expect(try await t.assign(task, group: team).status == .ok)
            #expect(try await t.assign(general, user: dee).status == .ok)
            let worker = t.grafanaWorker(fake)
            try await worker.runPass()
            var state = try await fake.state()
            #expect(state.rules(of: "dee").count == 4)
            let generalRule = try #require(state.rule("dee", notification: general, node: n1))
            #expect(generalRule["folderUID"] as? String == state.folderUID("dee_general_alerts"))
            #expect(GrafanaState.threshold(generalRule) == Double(400 << 20))

            // An allocation sync keeps the general rules.
            try await GrafanaOutbox(db: t.db, secretKey: t.configuration.secretKey).changed(.users([dee]), logger: t.logger)
            try await worker.runPass()
            #expect(try await fake.state().rules(of: "dee").count == 4)

            // Unassigned directly, still received through the group: the rules stay. Unassigned from the group: gone.
            #expect(try await t.assign(task, user: dee, unassign: true).status == .ok)
            try await worker.runPass()
            #expect(try await fake.state().rule("dee", notification: task, node: n1) != nil)
            #expect(try await t.assign(task, group: team, unassign: true).status == .ok)
            try await worker.runPass()
            state = try await fake.state()
            #expect(state.rule("dee", notification: task, node: n1) == nil && state.rules(of: "dee").count == 2)

            // A node stops providing memory: its general rule goes.
            #expect(try await t.request(.post, "/node/remove_resource", token: admin, json: #"{"node_id":\#(n2),"resource_id":\#(mem),"amount":0}"#).status == .ok)
            try await worker.runPass()
            state = try await fake.state()
            #expect(state.rule("dee", notification: general, node: n2) == nil && state.rule("dee", notification: general, node: n1) != nil)

            // Admin rights are granted and revoked with the admin group.
            #expect(try await t.request(.post, "/group/add_user", token: admin, json: #"{"user_id":\#(dee),"group_id":2}"#).status == .ok)
            try await worker.runPass()
            #expect(try await fake.state().user("dee")?["isGrafanaAdmin"] as? Bool == true)
            #expect(try await t.request(.post, "/group/add_user", token: admin, json: #"{"user_id":\#(dee),"group_id":\#(team)}"#).status == .ok)
            try await worker.runPass()
            #expect(try await fake.state().user("dee")?["isGrafanaAdmin"] as? Bool == false)

            // A password set by the admin reaches Grafana.
            #expect(try await t.request(.post, "/authentication/set_password", token: admin, json: #"{"user_id":\#(dee),"new_password":"brand-new-pw"}"#).status == .ok)
            try await worker.runPass()
            #expect(try await fake.state().passwords["dee"] == "brand-new-pw")

            // Deleting the notification removes its rules; deleting the user removes everything of theirs.
            #expect(try await t.assign(task, user: dee).status == .ok)
            try await worker.runPass()
            #expect(try await fake.state().rules(of: "dee").count == 3)
            #expect(try await t.request(.delete, "/notification/\(task)", token: admin).status == .ok)
            try await worker.runPass()
            #expect(try await fake.state().rules(of: "dee").count == 1)
            #expect(try await t.request(.delete, "/user/\(dee)", token: admin).status == .ok)
            #expect(try await worker.runPass().synced == ["dee"])
            state = try await fake.state()
            #expect(state.rules(of: "dee").isEmpty && state.user("dee") == nil)
            #expect(state.folderTitles().allSatisfy { !$0.hasPrefix("dee_") })
            #expect(!state.contactPoints.contains { $0["name"] as? String == "dee contact point" })
            #expect(state.refused.isEmpty && state.unknown.isEmpty, "\(state.refused) \(state.unknown)")
            #expect(try await t.outboxCount() == 0)
            await worker.shutdown()
        }
    }

    /// A Grafana that accepts the connection and never answers costs the worker one timeout (2 s here) per pass and
    /// never holds up a request; the user stays queued until Grafana answers again.
    @Test func hangingGrafanaTimesOutAndRetries() async throws {
        let fake = try FakeGrafana()
        try await withApp(extra: fake.environment) { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 4)
            let fay = try await t.makeUser("fay")
            let notification = try await t.makeGrafanaNotification("CPU", resource: cluster.1[0], defaultAmount: 1)
            try await fake.mode(hang: true)
            // The request never calls Grafana: it answers while Grafana hangs, and Grafana has seen no call.
            #expect(try await t.assign(notification, user: fay).status == .ok)
            #expect(try await fake.state().calls.isEmpty)
            let worker = t.grafanaWorker(fake)
            let pass = try await worker.runPass()
            #expect(pass.failed.keys.sorted() == ["fay"])
            #expect(try await t.outboxCount() == 1)
            try await fake.mode(hang: false)
            try await t.outboxDueNow()
            #expect(try await worker.runPass().synced == ["fay"])
            #expect(try await fake.state().rule("fay", notification: notification, node: cluster.0[0]) != nil)
            await worker.shutdown()
        }
    }

    /// A rule someone else labelled with a username (without remas's id labels) is never touched, not even when
    /// that user is deleted.
    @Test func foreignRulesAreLeftAlone() async throws {
        let fake = try FakeGrafana()
        try await withApp(extra: fake.environment) { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 4)
            let gus = try await t.makeUser("gus")
            let notification = try await t.makeGrafanaNotification("CPU", resource: cluster.1[0], defaultAmount: 1)
            #expect(try await t.assign(notification, user: gus).status == .ok)
            let worker = t.grafanaWorker(fake)
            try await worker.runPass()
            // Someone adds their own folder and a rule labelled username=gus (and a user nobody in remas has).
            let client = GrafanaClient(settings: fake.settings)
            let folder = try await client.createFolder(title: "shared", failure: "folder")
            var rule = try AlertRuleRenderer.render(
                AlertRuleRendererTests.spec(template: try TestContext.ruleTemplate("CPU_Notificaion_template.json")),
                user: AlertRuleRendererTests.user, folderUID: folder.uid, uid: nil)
            if case .object(var o) = rule {
                o["labels"] = .object(["username": .string("gus"), "team": .string("ops")])
                o["notification_settings"] = nil
                o["title"] = .string("hand-made")
                rule = .object(o)
            }
            try await client.createRule(rule, failure: "rule")
            var foreign = rule
            if case .object(var o) = foreign {
                o["labels"] = .object(["username": .string("nobody-in-remas")])
                o["title"] = .string("hand-made 2")
                foreign = .object(o)
            }
            try await client.createRule(foreign, failure: "rule")
            try await GrafanaRepository(db: t.db).enqueue(["gus"], logger: t.logger)
            try await worker.runPass()
            #expect(try await fake.state().rules.count == 3)
            #expect(try await t.request(.delete, "/user/\(gus)", token: try await t.adminToken()).status == .ok)
            try await worker.runPass()
            let state = try await fake.state()
            #expect(Set(state.rules.compactMap { $0["title"] as? String }) == ["hand-made", "hand-made 2"])
            #expect(try await t.outboxCount() == 0)
            #expect(state.refused.isEmpty && state.unknown.isEmpty, "\(state.refused) \(state.unknown)")
            await worker.shutdown()
        }
    }

    /// Grafana folders deleted by hand are created again by the next sync (the original failed with 500).
    @Test func missingFoldersAreHealed() async throws {
        let fake = try FakeGrafana()
        try await withApp(extra: fake.environment) { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 4)
            let eve = try await t.makeUser("eve")
            let notification = try await t.makeGrafanaNotification("CPU", resource: cluster.1[0], defaultAmount: 1)
            #expect(try await t.assign(notification, user: eve).status == .ok)
            let worker = t.grafanaWorker(fake)
            try await worker.runPass()
            try await fake.control(.POST, "reset")
            #expect(try await worker.startFullResyncIfDue(force: true))
            #expect(try await worker.runPass().synced.contains("eve"))
            let state = try await fake.state()
            #expect(state.rule("eve", notification: notification, node: cluster.0[0]) != nil)
            #expect(state.folderTitles().contains("eve_task_alerts"))
            #expect(state.refused.isEmpty && state.unknown.isEmpty)
            await worker.shutdown()
        }
    }

    /// A template that is not JSON after substitution is refused before anything is written.
    @Test func badTemplateIsRefusedBeforeWriting() async throws {
        try await withApp { t in
            let cpu = try await t.makeResource("cpu")
            let before = try await t.count("SELECT count(*)::int FROM notifications")
            let r = try await t.request(
                .post, "/notification", token: try await t.adminToken(),
                json: #"{"name":"Broken","type":"grafana_resource_exceedance_task","resource_id":\#(cpu),"default_amount":1,"notification_template":"{\"title\": "}"#)
            #expect(r.status == .badRequest)
            #expect(r.detail == "Failed to create alert Broken for user administrator in Grafana! Wrong notification template syntax!")
            #expect(try await t.count("SELECT count(*)::int FROM notifications") == before)
        }
    }
}
