import Foundation
import Synchronization
import Testing

@testable import Remas

/// The server as shipped (default settings, the scheduler on the wall clock, a real SMTP server and the fake Grafana):
/// reminders go out at their instant, never before, and a task's Grafana threshold holds from its start to its end.
@Suite struct SchedulerDefaultsTests {
    static func environment(_ fake: FakeGrafana) throws -> [String: String] {
        let smtp = try SMTPTestServer.settings()
        return fake.environment.merging([
            "TASK_SCHEDULER_ENABLED": "true", "SMTP_ENABLED": "true", "SMTP_HOST": smtp.host, "SMTP_PORT": String(smtp.port),
            "SMTP_USER": smtp.user, "SMTP_PASSWORD": smtp.password, "SMTP_FROM_ADDRESS": smtp.fromAddress,
            "SMTP_STARTTLS_ENABLED": "true", "SMTP_CA_FILE": smtp.caFile ?? "",
        ]) { $1 }
    }

    /// Local wall-clock time `seconds` from now, to the second, in the wire's form.
    static func inSeconds(_ t: TestContext, _ seconds: Double) async throws -> String {
        try await t.db.text(
            "SELECT to_char(localtimestamp + make_interval(secs => \(seconds)), 'YYYY-MM-DD\"T\"HH24:MI:SS')", logger: t.logger)!
    }

    @Test func remindersAreNeverEarly() async throws {
        let fake = try FakeGrafana()
        try await withApp(extra: try Self.environment(fake)) { t in
            #expect(t.configuration.scheduler.precisionSeconds == 0)
            let cluster = try await t.cluster(nodes: 1, capacity: 100)
            let (n1, cpu) = (cluster.0[0], cluster.1[0])
            let address = SMTPTestServer.address()
            let (user, token) = try await t.userWithEmail(address)
            let atStart = try await t.makeNotification("at start", offset: "0")
            #expect(try await t.assign(atStart, user: user).status == .ok)
            // 50 reminders due over the next seconds, a few at each whole second. Each task starts at least 6 s after it
            // is asked for (5 s after truncation to the second): a task that has started by the time its booking is
            // written gets no reminder at its start (by design). With 3 s (2 s after truncation) one CI run under the
            // whole suite's load mailed 49 of 50; which side lost it is now told apart below.
            for i in 0..<50 {
                let r = try await t.book(
                    token, name: "t\(i)", start: try await Self.inSeconds(t, Double(6 + i % 8)), end: try await Self.inSeconds(t, 60),
                    [(n1, cpu, 1)])
                #expect(r.status == .ok)
            }
            // Every booking created its reminder (none had started when it was written).
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE notification_id = \(atStart)") == 50)
            let messages = try await SMTPTestServer.waitForMessages(to: address, count: 50, timeout: 60)
            #expect(messages.count == 50)
            #expect(try await waitUntil(timeout: 10) {
                try await t.count("SELECT count(*)::int FROM events WHERE notification_id = \(atStart) AND state = 'sent'") == 50
            })
            // Recorded at the scheduler's own clock when it claimed them: none before its due instant.
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE notification_id = \(atStart) AND processed_at < time") == 0)
        }
    }

    @Test func shortTaskHoldsItsThresholdFromStartToEnd() async throws {
        let fake = try FakeGrafana()
        try await withApp(extra: try Self.environment(fake)) { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 16)
            let (n1, cpu) = (cluster.0[0], cluster.1[0])
            let (user, token) = try await t.userWithToken("eve")
            let notification = try await t.makeGrafanaNotification("CPU", resource: cpu, defaultAmount: 1)
            #expect(try await t.assign(notification, user: user).status == .ok)
            @Sendable func threshold() async throws -> Double? {
                GrafanaState.threshold(try await fake.state().rule("eve", notification: notification, node: n1))
            }
            #expect(try await waitUntil(timeout: 20) { try await threshold() == 1 })
            // A 20-second task, starting in 3 s (to the second, as the wire carries it).
            let start = try await Self.inSeconds(t, 3)
            let end = try await Self.inSeconds(t, 23)
            let r = try await t.book(token, start: start, end: end, [(n1, cpu, 4)])
            let id = try #require(r.object["id"] as? Int)
            let (startInstant, endInstant) = try await Self.instants(t, id)
            // Sampled until it ends: (when the read began, when it ended, what Grafana held).
            // The assertions below hold however slow the machine is: none asks how soon Grafana followed, only that it
            // never moved before the instant that moves it, and that it got there.
            var samples: [(Double, Double, Double?)] = []
            var edited: (sent: Double, returned: Double)?
            while Date().timeIntervalSince1970 < endInstant + 1 {
                let began = Date().timeIntervalSince1970
                let value = try await threshold()
                samples.append((began, Date().timeIntervalSince1970, value))
                if edited == nil, value == 4 {
                    // An edit while it runs: the threshold follows.
                    let sent = Date().timeIntervalSince1970
                    #expect(try await t.book(token, id: id, start: start, end: end, [(n1, cpu, 6)]).status == .ok)
                    edited = (sent, Date().timeIntervalSince1970)
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            // Never raised before the start, nor lowered before the end.
            #expect(!samples.contains { $0.1 < startInstant && $0.2 != 1 }, "raised before the start: \(samples)")
            let raised = try #require(samples.first { $0.2 == 4 }, "never raised: \(samples)")
            #expect(!samples.contains { $0.0 > raised.1 && $0.1 < endInstant && $0.2 == 1 }, "lowered before the end: \(samples)")
            let edit = try #require(edited, "never saw the task's threshold: \(samples)")
            #expect(!samples.contains { $0.1 < edit.sent && $0.2 == 6 }, "followed an edit not yet made: \(samples)")
            // Whether Grafana can show the edit depends on its answer coming back well before the end (a sync after the
            // end rightly shows 1); on a machine loaded enough to answer the edit late (9 s was seen), there is nothing
            // to ask.
            if edit.returned + 3 < endInstant {
                #expect(samples.contains { $0.0 > edit.returned && $0.2 == 6 }, "the edit was not followed: \(samples)")
            }
            // And lowered once it ended.
            #expect(try await waitUntil(timeout: 20) { try await threshold() == 1 }, "not lowered after the end")
            let state = try await fake.state()
            #expect(state.refused.isEmpty && state.unknown.isEmpty, "\(state.refused) \(state.unknown)")
        }
    }

    /// The task's start and end as Unix time (the wire's local times read in the server's zone).
    static func instants(_ t: TestContext, _ id: Int) async throws -> (Double, Double) {
        let row = try #require(try await t.db.query(
            """
            SELECT extract(epoch FROM start_time AT TIME ZONE current_setting('TimeZone'))::float8,
                   extract(epoch FROM end_time AT TIME ZONE current_setting('TimeZone'))::float8
            FROM tasks WHERE id = \(id)
            """, logger: t.logger).first)
        return try row.decode((Double, Double).self)
    }
}
