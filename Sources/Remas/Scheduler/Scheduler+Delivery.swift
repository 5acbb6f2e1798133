import Foundation
import Logging

/// Reminder delivery: the workers of a pass, each claiming, sending and recording one reminder per transaction.
extension Scheduler {
    struct Released: Error {}

    /// One worker: claims and sends reminders one by one until none is due, each in its own transaction.
    func work(horizon: LocalDateTime) async -> PassResult {
        var result = PassResult()
        let session = SessionBox()
        while !self.isStopping {
            do {
                let outcome = try await self.db.transaction(logger: self.logger) { tx -> EventRepository.Outcome? in
                    guard let reminder = try await self.events.claimReminder(dueBy: horizon, in: tx, logger: self.logger) else {
                        return nil
                    }
                    // Recorded as sent before the send, so that after the mail server's "accepted" only the COMMIT
                    // remains: the narrowest window a crash can fall into (see `Scheduler`). Any other outcome
                    // replaces the record; an aborted send rolls it back.
                    try await self.events.record(.sent, of: reminder, at: self.clock.now(), in: tx, logger: self.logger)
                    guard let outcome = await self.deliver(reminder, session: session) else { throw Released() }
                    if case .sent = outcome {} else {
                        try await self.events.record(outcome, of: reminder, at: self.clock.now(), in: tx, logger: self.logger)
                    }
                    return outcome
                }
                guard let outcome else { break }
                self.stats.count(outcome)
                switch outcome {
                case .sent: result.sent += 1
                case .retry: result.retried += 1
                case .failed: result.failed += 1
                case .skipped: result.skipped += 1
                }
            } catch is Released {
                result.released += 1
                break
            } catch {
                self.logger.error("reminder could not be processed", metadata: ["error": "\(String(reflecting: error))"])
                break
            }
        }
        return result
    }

    /// Sends one reminder; nil when the send was aborted for shutdown (the event is released, not counted).
    func deliver(_ reminder: EventRepository.Reminder, session: SessionBox) async -> EventRepository.Outcome? {
        let metadata: Logger.Metadata = ["event": "\(reminder.eventID)", "task": "\(reminder.taskID.map(String.init) ?? "-")"]
        self.logger.info("Notification: \(reminder.notificationName), Receiver: \(reminder.recipient)", metadata: metadata)
        guard self.smtp.enabled else {
            self.logger.warning("SMTP is disabled (SMTP_ENABLED=false): the reminder is not sent", metadata: metadata)
            return .skipped("SMTP is disabled")
        }
        guard MailMessage.isDeliverable(reminder.recipient) else {
            return .failed("the recipient address is not deliverable: \(reminder.recipient)")
        }
        let body = reminder.isNotice ? reminder.template ?? "" : DollarTemplate.substitute(reminder.template ?? "", reminder.variables)
        self.logger.debug("reminder body", metadata: metadata.merging(["body": "\(body)"]) { $1 })
        let domain = self.smtp.fromAddress.split(separator: "@").last.map(String.init) ?? "remas"
        let message = MailMessage(
            fromName: self.smtp.fromName, fromAddress: self.smtp.fromAddress, to: reminder.recipient, subject: reminder.notificationName,
            body: body, date: Date(), messageID: "<remas.event-\(reminder.eventID)@\(domain)>")
        let bytes = message.render()
        let settings = self.smtp
        let abort = self.abort
        let from = self.smtp.fromAddress
        do {
            try await self.threads.runIfActive {
                if session.value == nil { session.value = try SMTPSession(settings: settings, abort: abort) }
                try session.value!.send(from: from, to: reminder.recipient, message: bytes)
            }
            return .sent
        } catch {
            if self.abort.isSet { return nil }
            session.value = nil  // a fresh connection for the next reminder
            let attempts = reminder.attempts + 1
            let text = String(describing: error)
            if attempts >= self.settings.maxAttempts {
                self.logger.error("reminder failed for good", metadata: metadata.merging(["error": "\(text)", "attempts": "\(attempts)"]) { $1 })
                return .failed(text)
            }
            let retryAt = self.clock.now().adding(seconds: self.settings.retryDelay(afterAttempts: attempts))
            self.logger.warning("reminder failed, will retry", metadata: metadata.merging(["error": "\(text)", "retry_at": "\(retryAt)"]) { $1 })
            return .retry(at: retryAt, error: text)
        }
    }
}

/// A worker's SMTP session, created on first use on a pool thread and reused for its next reminders.
final class SessionBox: @unchecked Sendable {
    var value: SMTPSession?
}
