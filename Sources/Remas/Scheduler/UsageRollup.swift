import Foundation
import Logging

/// Keeps the day figures of usage reports current beside the scheduler (`ReportRepository.rollUpPending`): at start
/// (the first run fills in all history), then every `USAGE_ROLLUP_INTERVAL_SECONDS`, which also picks up days whose
/// figures a change of past reservations dropped. Every replica runs it; a day's advisory lock makes each day one
/// replica's work. Reports stay exact meanwhile: days without figures are swept live.
final class UsageRollup: Sendable {
    let db: Database
    let intervalSeconds: Int
    let stop = WakeSignal()
    let logger: Logger

    init(db: Database, intervalSeconds: Int, logger: Logger) {
        self.db = db
        self.intervalSeconds = intervalSeconds
        var logger = logger
        logger[metadataKey: "service"] = "usage-rollup"
        self.logger = logger
    }

    func loop(isStopping: @escaping @Sendable () -> Bool) async {
        var failures = 0
        while !isStopping() {
            var delay = Double(self.intervalSeconds)
            do {
                let began = ContinuousClock.now
                let rolled = try await ReportRepository(db: self.db).rollUpPending(isStopping: isStopping, logger: self.logger)
                failures = 0
                if rolled > 0 {
                    self.logger.info(
                        "usage day figures computed",
                        metadata: ["days": "\(rolled)", "seconds": "\(String(format: "%.1f", (ContinuousClock.now - began).timeInterval))"])
                }
            } catch {
                failures += 1
                delay = min(delay, backoffSeconds(failures: failures, doublings: 8, limit: 300))
                self.logger.error("usage roll-up failed", metadata: ["error": "\(String(reflecting: error))", "retry_in_s": "\(delay)"])
            }
            if isStopping() { break }
            await self.stop.wait(seconds: delay)
        }
    }
}
