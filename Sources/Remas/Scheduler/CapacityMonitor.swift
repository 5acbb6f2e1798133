import Foundation
import Logging
import Synchronization

/// Runs capacity passes (`CapacityRepository.evaluate`) beside the scheduler, only when the answer can have changed:
/// - at start (the state of the database is unknown),
/// - when this replica changed reservations or capacities (`AppEnvironment.capacityChanged`; every replica watches its
///   own writes, so no NOTIFY is needed and bookings pay nothing but a signal),
/// - when the clock alone changes the answer: an allocation inside the horizon ends, or one enters it (the pass
///   returns that instant).
/// Changes closer together than `CAPACITY_CHECK_MIN_INTERVAL_SECONDS` are evaluated in one pass. A failed pass is
/// retried with backoff. Nothing else wakes it: an idle cluster costs no passes.
final class CapacityMonitor: Sendable {
    let db: Database
    let settings: OperationsSettings
    /// Signaled by the writes of this replica.
    let changes: WakeSignal
    let clock: any SchedulerClock
    let logger: Logger
    /// Passes run by this monitor (for tests); `stats` counts them for `/metrics`.
    let passes = Atomic<Int>(0)
    let stats: SchedulerStats?

    init(
        db: Database, settings: OperationsSettings, changes: WakeSignal, clock: any SchedulerClock, stats: SchedulerStats? = nil,
        logger: Logger
    ) {
        self.db = db
        self.stats = stats
        self.settings = settings
        self.changes = changes
        self.clock = clock
        var logger = logger
        logger[metadataKey: "service"] = "capacity"
        self.logger = logger
    }

    @discardableResult
    func runPass() async throws -> CapacityRepository.Pass {
        let pass = try await CapacityRepository(db: self.db).evaluate(settings: self.settings, logger: self.logger)
        self.passes.add(1, ordering: .relaxed)
        self.stats?.countCapacityPass()
        if !pass.transitions.isEmpty {
            self.logger.notice(
                "capacity alerts changed",
                metadata: ["firing": "\(pass.transitions.filter(\.firing).count)", "resolved": "\(pass.transitions.filter { !$0.firing }.count)"])
        }
        return pass
    }

    /// Passes until `isStopping`; `wake` is the loop's own signal (stop wakes it too).
    func loop(isStopping: @Sendable () -> Bool) async {
        var failures = 0
        while !isStopping() {
            var delay = 86_400.0
            let began = ContinuousClock.now
            do {
                let pass = try await self.runPass()
                failures = 0
                if let next = pass.nextChange {
                    let micros = next.microseconds - self.clock.now().microseconds
                    // A little after the instant, so the allocation has ended when the pass looks.
                    delay = min(delay, max(0, Double(micros) / 1_000_000) + 0.05)
                }
            } catch {
                failures += 1
                delay = backoffSeconds(failures: failures, doublings: 8, limit: 300)
                self.logger.error("capacity pass failed", metadata: ["error": "\(String(reflecting: error))", "retry_in_s": "\(delay)"])
            }
            if isStopping() { break }
            let wakeAt = ContinuousClock.now + .seconds(delay)
            // Coalesce: no pass sooner than the minimum interval after this one began, whatever arrives meanwhile.
            let elapsed = ContinuousClock.now - began
            let minimum = Duration.seconds(self.settings.capacityMinIntervalSeconds)
            if elapsed < minimum {
                try? await Task.sleep(for: minimum - elapsed)
                if isStopping() { break }
            }
            let left = (wakeAt - ContinuousClock.now).timeInterval
            if left > 0 { await self.changes.wait(seconds: left) }
        }
    }
}
