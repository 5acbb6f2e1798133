import Foundation
import Testing

@testable import Remas

/// Mail through a real SMTP server (aiosmtpd), read back as delivered.
@Suite struct MailDeliveryTests {
    @Test(arguments: [true, false])
    func reminderArrivesWithHeadersAndBody(startTLS: Bool) async throws {
        try await withApp { t in
            let cluster = try await t.cluster(nodes: 1, capacity: 10)
            let (n1, cpu) = (cluster.0[0], cluster.1[0])
            let address = SMTPTestServer.address()
            let (user, token) = try await t.userWithEmail(address)
            try await t.db.execute("UPDATE users SET name = 'Ada', surname = NULL WHERE id = \(user)", logger: t.logger)
            let template = "Dobrý den ${user_name} ${user_surname}: $task_name starts at ${task_start}, ends $task_end. Cost $$5. ${nope} {{ now }}"
            let n = try await t.makeNotification("Úloha začíná ✓", offset: "3600", template: template)
            #expect(try await t.assign(n, user: user).status == .ok)
            let task = try #require(try await t.book(token, name: "sim", start: "2030-01-01 10:00", end: "2030-01-01 12:30", [(n1, cpu, 1)]).object["id"] as? Int)
            let clock = FixedClock("2030-01-01 09:00")
            let smtp = try SMTPTestServer.settings(startTLS: startTLS)
            let pass = try await t.withScheduler(clock: clock, smtp: smtp) { try await $0.runPass() }
            #expect(pass.sent == 1)
            let messages = try await SMTPTestServer.waitForMessages(to: address, count: 1)
            #expect(messages.count == 1)
            let m = try #require(messages.first)
            #expect(m["subject"] as? String == "Úloha začíná ✓")
            #expect(m["from"] as? String == "REMAS <remas@cluster.example>")
            #expect(m["mail_from"] as? String == "remas@cluster.example")
            #expect(m["rcpt_tos"] as? [String] == [address])
            #expect(m["content_type"] as? String == "text/plain")
            #expect(m["charset"] as? String == "utf-8")
            #expect((m["message_id"] as? String)?.hasPrefix("<remas.event-") == true)
            #expect((m["date"] as? String)?.hasSuffix("+0000") == true)
            #expect(m["tls"] as? Bool == true)
            #expect(m["authenticated"] as? Bool == true)
            let body = try #require(m["body"] as? String)
            #expect(body.hasPrefix(
                "Dobrý den Ada None: sim starts at 2030-01-01 10:00:00, ends 2030-01-01 12:30:00. Cost $5. ${nope} {{ now }}"))
            #expect(try await t.reminder(task: task, notification: n)! == ("sent", 1))
        }
    }

    @Test func wrongCredentialsOrUntrustedCertificateAreFailures() async throws {
        var wrong = try SMTPTestServer.settings()
        wrong.password = "wrong"
        let message = Array("Subject: x\r\n\r\nx\r\n".utf8)
        #expect(throws: SMTPSession.Failure.self) {
            try SMTPSession(settings: wrong, abort: AbortFlag()).send(from: "remas@cluster.example", to: "a@b.example", message: message)
        }
        var untrusted = try SMTPTestServer.settings(startTLS: false)
        untrusted.caFile = nil  // the system store does not know the test CA: verification must fail
        #expect(throws: SMTPSession.Failure.self) {
            try SMTPSession(settings: untrusted, abort: AbortFlag()).send(from: "remas@cluster.example", to: "a@b.example", message: message)
        }
        untrusted.verifyCertificate = false  // the setting for self-signed servers
        let address = SMTPTestServer.address()
        try SMTPSession(settings: untrusted, abort: AbortFlag()).send(from: "remas@cluster.example", to: address, message: message)
        #expect(try await SMTPTestServer.waitForMessages(to: address, count: 1).count == 1)
    }
}
