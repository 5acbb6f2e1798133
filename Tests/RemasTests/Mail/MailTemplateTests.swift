import Foundation
import Testing

@testable import Remas

@Suite struct MailTemplateTests {
    @Test func safeSubstituteSemantics() {
        let values = ["user_name": "Ada", "task_name": "sim", "task_start": "2030-01-01 10:00:00"]
        #expect(DollarTemplate.substitute("Hi ${user_name}, $task_name at $task_start.", values) == "Hi Ada, sim at 2030-01-01 10:00:00.")
        #expect(DollarTemplate.substitute("$$5 and $$user_name", values) == "$5 and $user_name")
        #expect(DollarTemplate.substitute("${unknown} $unknown ${user_name", values) == "${unknown} $unknown ${user_name")
        #expect(DollarTemplate.substitute("a lone $ and $1 and $", values) == "a lone $ and $1 and $")
        #expect(DollarTemplate.substitute("$user_nameX ${user_name}X", values) == "$user_nameX AdaX")
        #expect(DollarTemplate.substitute("${ user_name }", values) == "${ user_name }")
        // No second pass: Jinja-like text stays literal, and substituted values are not expanded again.
        #expect(DollarTemplate.substitute("{{ now }} {% if x %}", values) == "{{ now }} {% if x %}")
        #expect(DollarTemplate.substitute("$a", ["a": "$b", "b": "no"]) == "$b")
        #expect(DollarTemplate.substitute("Příliš ${user_name} žluťoučký", values) == "Příliš Ada žluťoučký")
    }

    @Test func headersCannotBeInjected() throws {
        let message = MailMessage(
            fromName: "REMAS\r\nBcc: victim@example.org", fromAddress: "remas@cluster.example", to: "ada@example.org",
            subject: "Start\r\nX-Injected: yes\n\nbody", body: "line1\nline2\r\n.\nend", date: Date(timeIntervalSince1970: 0),
            messageID: "<remas.event-1@cluster.example>")
        let text = String(decoding: message.render(), as: UTF8.self)
        let head = text.components(separatedBy: "\r\n\r\n")[0]
        let names = head.components(separatedBy: "\r\n").compactMap { $0.split(separator: ":").first.map(String.init) }
        #expect(names == ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"])
        #expect(head.contains("Subject: Start  X-Injected: yes  body"))
        #expect(head.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000"))
        #expect(text.hasSuffix("line1\r\nline2\r\n.\r\nend\r\n"))
        #expect(!MailMessage.isDeliverable("ada@example.org>\r\nRCPT TO:<x@y"))
        #expect(!MailMessage.isDeliverable("ada example@x"))
        #expect(!MailMessage.isDeliverable("no-at-sign"))
        #expect(MailMessage.isDeliverable("ada.lovelace+remas@example.org"))
        // Non-ASCII subjects become RFC 2047 words of at most 75 characters.
        let long = MailMessage.headerText(String(repeating: "Žluťoučký kůň ", count: 8))
        for word in long.components(separatedBy: "\r\n ") {
            #expect(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?=") && word.count <= 75)
        }
    }
}
