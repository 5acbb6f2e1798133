import Foundation
import Hummingbird
import PostgresNIO
import Synchronization
import Testing

@testable import Remas

/// The scheduler against the real database and the real SMTP server.
@Suite struct SchedulerTests {
    /// Every transition and reminder, driven by a fixed clock.
    @Test func transitionsAndRemindersOnAFixedClock() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 10)
            let (n1, cpu) = (cluster.0[0], cluster.1[0])
            let address = SMTPTestServer.address()
            let (user, token) = try await t.userWithEmail(address)
            let before = try await t.makeNotification("ten minutes before start", type: "task_start", offset: "600", template: "start $task_name")
            let after = try await t.makeNotification("five minutes after end", type: "task_end", offset: "-300", template: "end $task_name")
            #expect(try await t.assign(before, user: user).status == .ok)
            #expect(try await t.assign(after, user: user).status == .ok)
            let task = try #require(try await t.book(token, name: "job", start: "2030-01-01 10:00", end: "2030-01-01 12:00", [(n1, cpu, 2)]).object["id"] as? Int)
            let clock = FixedClock("2030-01-01 09:40")
            let grafana = RecordingGrafana()
            try await t.withScheduler(clock: clock, precision: 60, grafana: grafana) { scheduler in
                var pass = try await scheduler.runPass()
                #expect(pass.sent == 0 && pass.usersWithChangedAllocations.isEmpty)
                // Within the precision (60 s) of the reminder: sent early, as the original.
                clock.set("2030-01-01 09:49:30")
                pass = try await scheduler.runPass()
                #expect(pass.sent == 1)
                #expect(try await t.reminder(task: task, notification: before)! == ("sent", 1))
                #expect(scheduler.stats.mailsSent == 1)
                clock.set("2030-01-01 09:55")
                #expect(try await scheduler.runPass().sent == 0)
                // The start hands the owner to Grafana once.
                clock.set("2030-01-01 10:00")
                pass = try await scheduler.runPass()
                #expect(pass.usersWithChangedAllocations == [user])
                #expect(try await scheduler.runPass().usersWithChangedAllocations.isEmpty)
                clock.set("2030-01-01 12:00")
                pass = try await scheduler.runPass()
                #expect(pass.usersWithChangedAllocations == [user])
                #expect(pass.sent == 0)
                clock.set("2030-01-01 12:05")
                #expect(try await scheduler.runPass().sent == 1)
                clock.set("2030-01-01 13:00")
                pass = try await scheduler.runPass()
                #expect(pass.sent == 0 && pass.usersWithChangedAllocations.isEmpty)
            }
            #expect(grafana.allocationChanges == [[user], [user]])
            let messages = try await SMTPTestServer.waitForMessages(to: address, count: 2)
            #expect(messages.map { $0["subject"] as? String } == ["ten minutes before start", "five minutes after end"])
            #expect(messages.map { ($0["body"] as? String)?.trimmingCharacters(in: .newlines) } == ["start job", "end job"])
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE state = 'pending'") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE state = 'done'") == 2)
        }
    }

    /// Two schedulers (two server instances' worth) on one database: each reminder is mailed exactly once.
    @Test func twoSchedulersSendEachReminderOnce() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 1000)
            let (n1, cpu) = (cluster.0[0], cluster.1[0])
            let address = SMTPTestServer.address()
            let (user, token) = try await t.userWithEmail(address)
            let n = try await t.makeNotification("soon", offset: "0")
            #expect(try await t.assign(n, user: user).status == .ok)
            let count = 120
            for i in 0..<count {
                let r = try await t.book(token, name: "t\(i)", start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 1)])
                #expect(r.status == .ok)
            }
            let clock = FixedClock("2030-01-01 10:00")
            let results = try await t.withScheduler(clock: clock, workers: 3) { one in
                try await t.withScheduler(clock: clock, workers: 3) { two in
                    async let a = one.runPass()
                    async let b = two.runPass()
                    return try await [a, b]
                }
            }
            #expect(results.map(\.sent).reduce(0, +) == count)
            let messages = try await SMTPTestServer.waitForMessages(to: address, count: count)
            #expect(messages.count == count)
            #expect(Set(messages.compactMap { $0["message_id"] as? String }).count == count)
            // Each worker reuses one SMTP connection for its reminders (2 schedulers x 3 workers).
            #expect(Set(messages.compactMap { $0["peer_port"] as? Int }).count <= 6)
            #expect(try await t.count("SELECT count(*)::int FROM events WHERE notification_id IS NOT NULL AND state = 'sent' AND attempts = 1") == count)
        }
    }

    /// A failing event is retried with backoff and then recorded as failed; other events and task transitions go on.
    @Test func failuresAreRetriedThenRecordedWithoutBlockingOthers() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 10)
            let (n1, cpu) = (cluster.0[0], cluster.1[0])
            let good = SMTPTestServer.address()
            let bad = SMTPTestServer.address("reject")
            let (goodUser, goodToken) = try await t.userWithEmail(good)
            let (badUser, badToken) = try await t.userWithEmail(bad)
            let n = try await t.makeNotification("at start", offset: "0")
            #expect(try await t.assign(n, user: goodUser).status == .ok)
            #expect(try await t.assign(n, user: badUser).status == .ok)
            let goodTask = try #require(try await t.book(goodToken, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 1)]).object["id"] as? Int)
            let badTask = try #require(try await t.book(badToken, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 1)]).object["id"] as? Int)
            let clock = FixedClock("2030-01-01 10:00:00")
            // SMTP down (nothing listens there): both reminders wait for a retry, the task starts still go through.
            var down = try SMTPTestServer.settings()
            down.port = 1
            let grafana = RecordingGrafana()
            let first = try await t.withScheduler(clock: clock, smtp: down, retryLimit: 1, maxAttempts: 3, grafana: grafana) { try await $0.runPass() }
            #expect(first.retried == 2 && first.sent == 0)
            #expect(Set(first.usersWithChangedAllocations) == [goodUser, badUser])
            #expect(try await t.reminder(task: goodTask, notification: n)! == ("pending", 1))
            let error = try await t.db.text("SELECT last_error FROM events WHERE task_id = \(goodTask) AND notification_id = \(n)", logger: t.logger)
            #expect(error?.contains("connect") == true)
            try await t.withScheduler(clock: clock, retryLimit: 1, maxAttempts: 3) { scheduler in
                // Not before the retry time (1 s later: backoff capped by TASK_SCHEDULER_RETRY_LIMIT_SECONDS).
                #expect(try await scheduler.runPass().sent == 0)
                clock.set("2030-01-01 10:00:01")
                var pass = try await scheduler.runPass()
                #expect(pass.sent == 1 && pass.retried == 1)
                #expect(try await t.reminder(task: goodTask, notification: n)! == ("sent", 2))
                #expect(try await t.reminder(task: badTask, notification: n)! == ("pending", 2))
                clock.set("2030-01-01 10:00:05")
                pass = try await scheduler.runPass()
                #expect(pass.failed == 1)
                #expect(scheduler.stats.mailsFailed == 1)
                #expect(try await t.reminder(task: badTask, notification: n)! == ("failed", 3))
                clock.set("2030-01-01 10:10")
                pass = try await scheduler.runPass()
                #expect(pass.sent == 0 && pass.failed == 0 && pass.retried == 0)
            }
            let lastError = try await t.db.text("SELECT last_error FROM events WHERE task_id = \(badTask) AND notification_id = \(n)", logger: t.logger)
            #expect(lastError?.contains("550") == true)
            // The operator view (`remas events`) lists it with its attempts and error.
            let unfinished = try await EventRepository(db: t.db).unfinished(limit: 10, logger: t.logger)
            let failed = try #require(unfinished.first { $0.taskID == badTask && $0.notificationID == n })
            #expect(failed.state == "failed" && failed.attempts == 3 && failed.notificationID == n)
            #expect(failed.lastError?.contains("550") == true)
            #expect(!unfinished.contains { $0.taskID == goodTask && $0.notificationID == n })
            #expect(SMTPTestServer.messages(to: good).count == 1)
            #expect(SMTPTestServer.messages(to: bad).isEmpty)
        }
    }

    /// The NOTIFY that wakes schedulers comes only for pending events due within 10 minutes, with the due time as
    /// payload; bookings far ahead send none (NOTIFY serialises commits).
    @Test func notifyOnlyForEventsDueSoon() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 10)
            let (n1, cpu) = (cluster.0[0], cluster.1[0])
            let (user, token) = try await t.userWithEmail(SMTPTestServer.address())
            let n = try await t.makeNotification("an hour before", offset: "3600")
            #expect(try await t.assign(n, user: user).status == .ok)
            let connection = try await t.configuration.databaseTarget.connect(id: 99, logger: t.logger)
            let received = Mutex<[String]>([])
            let channel = try await NotificationListener(
                target: t.configuration.databaseTarget, prefix: "remas_events", table: "events", logger: t.logger
            ).channel(on: connection)
            let listener = Task {
                try await connection.listen(on: channel) { notifications in
                    for try await notification in notifications { received.withLock { $0.append(notification.payload) } }
                }
            }
            // No fixed waits: a probe NOTIFY proves the LISTEN is in place, and a barrier NOTIFY sent after the booking
            // committed arrives after anything the booking sent (notifications are delivered in commit order).
            #expect(try await waitUntil(timeout: 10) {
                try await t.db.execute("SELECT pg_notify(\(channel), 'probe')", logger: t.logger)
                return received.withLock { $0.contains("probe") }
            })
            received.withLock { $0.removeAll() }
            #expect(try await t.book(token, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 1)]).status == .ok)
            try await t.db.execute("SELECT pg_notify(\(channel), 'barrier')", logger: t.logger)
            #expect(try await waitUntil(timeout: 10) { received.withLock { $0.contains("barrier") } })
            // A late copy of a probe (the wait above may send more than one) is not the booking's.
            #expect(received.withLock { $0 }.filter { $0 != "probe" } == ["barrier"])
            received.withLock { $0.removeAll() }
            let start = try await t.db.text("SELECT to_char(localtimestamp + interval '1 hour', 'YYYY-MM-DD\"T\"HH24:MI:SS')", logger: t.logger)!
            #expect(try await t.book(token, start: start, end: "2030-01-01 11:00", [(n1, cpu, 1)]).status == .ok)
            let due = try await t.db.text(
                "SELECT to_char(time, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') FROM events WHERE notification_id = \(n) ORDER BY time LIMIT 1",
                logger: t.logger)!
            let arrived = try await waitUntil(timeout: 5) { !received.withLock { $0 }.filter { $0 != "probe" }.isEmpty }
            #expect(arrived)
            #expect(received.withLock { $0 }.filter { $0 != "probe" } == [due])
            listener.cancel()
            try? await connection.close()
        }
    }

    /// SMTP disabled: due reminders are logged and consumed (`skipped`), as the original; an owner address that cannot
    /// be used safely (a CR/LF would reach the SMTP envelope) fails at once without a connection attempt.
    @Test func disabledSMTPConsumesAndUnsafeAddressesFail() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 10)
            let (n1, cpu) = (cluster.0[0], cluster.1[0])
            let (plain, plainToken) = try await t.userWithEmail(SMTPTestServer.address())
            let (odd, oddToken) = try await t.userWithEmail("odd@cluster.example>\r\nRCPT TO:<victim@cluster.example")
            let n = try await t.makeNotification("at start", offset: "0")
            #expect(try await t.assign(n, group: 3).status == .ok)
            let a = try #require(try await t.book(plainToken, start: "2030-01-01 10:00", end: "2030-01-01 11:00", [(n1, cpu, 1)]).object["id"] as? Int)
            let b = try #require(try await t.book(oddToken, start: "2030-01-01 12:00", end: "2030-01-01 13:00", [(n1, cpu, 1)]).object["id"] as? Int)
            var disabled = try SMTPTestServer.settings()
            disabled.enabled = false
            let clock = FixedClock("2030-01-01 10:00")
            let pass = try await t.withScheduler(clock: clock, smtp: disabled) { try await $0.runPass() }
            #expect(pass.skipped == 1)
            #expect(try await t.reminder(task: a, notification: n)! == ("skipped", 0))
            clock.set("2030-01-01 12:00")
            let second = try await t.withScheduler(clock: clock) { try await $0.runPass() }
            #expect(second.failed == 1)
            #expect(try await t.reminder(task: b, notification: n)! == ("failed", 1))
            #expect(SMTPTestServer.messages(to: "victim@cluster.example").isEmpty)
            _ = (plain, odd)
        }
    }

    /// The loop on the wall clock: it catches up at start, sleeps until the next due event, and a NOTIFY from another
    /// server's request wakes it at once.
    @Test func catchesUpSleepsUntilDueAndWakesOnNotify() async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 10)
            let (n1, cpu) = (cluster.0[0], cluster.1[0])
            let address = SMTPTestServer.address()
            let (user, token) = try await t.userWithEmail(address)
            let hourBefore = try await t.makeNotification("an hour before", offset: "3600")
            #expect(try await t.assign(hourBefore, user: user).status == .ok)
            @Sendable func startIn(seconds: Int) async throws -> String {
                try await t.db.text(
                    "SELECT to_char(localtimestamp + make_interval(secs => \(seconds)::int), 'YYYY-MM-DD\"T\"HH24:MI:SS')", logger: t.logger)!
            }
            // Missed while no scheduler ran: due 10 s ago.
            let missed = try await t.book(token, name: "missed", start: try await startIn(seconds: 3590), end: try await startIn(seconds: 7200), [(n1, cpu, 1)])
            #expect(missed.status == .ok)
            try await t.withScheduler(clock: WallClock(zone: t.configuration.timeZone)) { scheduler in
                let running = Task { try await scheduler.run() }
                var messages = try await SMTPTestServer.waitForMessages(to: address, count: 1, timeout: 30)
                #expect(messages.map { $0["subject"] as? String } == ["an hour before"])
                // Idle now (it plans to wake minutes from now). A booking whose reminder is due at once wakes it through NOTIFY.
                #expect(try await waitUntil(timeout: 10) {
                    let planned = scheduler.plannedWake.load(ordering: .relaxed)
                    return planned != Int64.max && planned > scheduler.clock.now().microseconds + 60_000_000
                })
                let booked = Date()
                var r = try await t.book(token, name: "now", start: try await startIn(seconds: 3600), end: try await startIn(seconds: 7200), [(n1, cpu, 1)])
                #expect(r.status == .ok)
                // Idle, it would sleep 300 s: anything well below proves the NOTIFY woke it (generous for slow machines).
                messages = try await SMTPTestServer.waitForMessages(to: address, count: 2, timeout: 30)
                #expect(messages.count == 2)
                #expect(Date().timeIntervalSince(booked) < 30)
                // Due in 2-3 s (whole seconds): sent soon after, and not before its time. The scheduler records the
                // outcome at its own clock, so `processed_at >= time` says it did not act early (precision 0); a
                // wall-clock wait here would depend on how long the booking took on a loaded machine.
                r = try await t.book(token, name: "later", start: try await startIn(seconds: 3603), end: try await startIn(seconds: 7200), [(n1, cpu, 1)])
                let later = try #require(r.object["id"] as? Int)
                let scheduled = Date()
                messages = try await SMTPTestServer.waitForMessages(to: address, count: 3, timeout: 30)
                #expect(messages.count == 3)
                #expect(Date().timeIntervalSince(scheduled) < 30)
                // The mail arrives just before the claiming transaction commits: wait for the record first.
                #expect(try await waitUntil(timeout: 10) { try await t.reminder(task: later, notification: hourBefore)?.0 == "sent" })
                let early = try await t.count(
                    "SELECT count(*)::int FROM events WHERE task_id = \(later) AND notification_id = \(hourBefore) AND processed_at < time")
                #expect(early == 0)
                scheduler.stop()
                try await running.value
            }
        }
    }
}
