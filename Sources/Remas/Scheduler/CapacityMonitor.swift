import Foundation
import Logging
import Synchronization

/// Runs capacity passes (`CapacityRepository.evaluate`) beside the scheduler, only when the answer can have changed:
/// - at start (the state of the database is unknown),
/// - when this replica changed reservations or capacities (`CapacityChanges`; every replica watches its own writes, so
///   no NOTIFY is needed and bookings pay nothing but a signal): at once when the change lies inside the horizon or
///   has no time (a capacity), and when it enters the horizon otherwise,
/// - when the clock alone changes the answer: an allocation inside the horizon ends, or one enters it (the pass
///   returns that instant).
/// Changes closer together than `CAPACITY_CHECK_MIN_INTERVAL_SECONDS` are evaluated in one pass. A failed pass is
/// retried with backoff. Nothing else wakes it: an idle cluster costs no passes.
///
/// Why a change beyond the horizon waits: a pass reads every (node, resource) pair (50,000 at the national-centre
/// size: 171 ms of PostgreSQL's time per pass on the kept data set, 160–460 ms under booking load), and before, every
/// booking signaled, so a flood of bookings a year ahead cost a pass every 10 s whose answer could not have changed.
final class CapacityMonitor: Sendable {
    let db: Database
    let settings: OperationsSettings
    /// The writes of this replica.
    let changes: CapacityChanges
    let clock: any SchedulerClock
    let logger: Logger
    /// Passes run by this monitor (for tests); `stats` counts them for `/metrics`.
    let passes = Atomic<Int>(0)
    let stats: SchedulerStats?

    init(
        db: Database, settings: OperationsSettings, changes: CapacityChanges, clock: any SchedulerClock, stats: SchedulerStats? = nil,
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

    /// Passes until `isStopping`; `changes` wakes it (stop signals it too).
    func loop(isStopping: @Sendable () -> Bool) async {
        var failures = 0
        let horizon = Int64(self.settings.capacityHorizonHours) * 3_600_000_000
        while !isStopping() {
            let began = ContinuousClock.now
            // Every change recorded by now was committed before it was recorded, so this pass sees it; later ones wait
            // for the next pass.
            self.changes.take()
            // When the clock alone changes the answer (at the latest a day from now), or the retry after a failure.
            var due = self.clock.now().microseconds + 86_400_000_000
            do {
                let pass = try await self.runPass()
                failures = 0
                // A little after the instant, so the allocation has ended when the pass looks.
                if let next = pass.nextChange { due = min(due, next.microseconds + 50_000) }
            } catch {
                failures += 1
                let delay = backoffSeconds(failures: failures, doublings: 8, limit: 300)
                due = self.clock.now().microseconds + Int64(delay * 1_000_000)
                self.logger.error("capacity pass failed", metadata: ["error": "\(String(reflecting: error))", "retry_in_s": "\(delay)"])
            }
            if isStopping() { break }
            // Coalesce: no pass sooner than the minimum interval after this one began, whatever arrives meanwhile.
            let elapsed = ContinuousClock.now - began
            let minimum = Duration.seconds(self.settings.capacityMinIntervalSeconds)
            if elapsed < minimum {
                try? await Task.sleep(for: minimum - elapsed)
                if isStopping() { break }
            }
            // Sleeps until the pass is due: `due`, or a change's instant (now for one inside the horizon, when it enters
            // the horizon for one beyond it), looked at again whenever a change arrives.
            while !isStopping() {
                let now = self.clock.now().microseconds
                let next = min(due, self.changes.due(horizon: horizon, now: now))
                if next <= now { break }
                await self.changes.signal.wait(seconds: min(86_400, Double(next - now) / 1_000_000))
            }
        }
    }
}

/// What this replica changed since its capacity monitor's last pass began: the earliest start among the reservations
/// it wrote or removed, or "now" for a change without a time (a node's capacity, a deleted user's reservations). The
/// routes record it after their commit (`AppEnvironment.capacityChanged`); the monitor takes it when a pass begins.
public final class CapacityChanges: Sendable {
    /// Wakes the monitor when the earliest instant moved earlier (and on stop).
    let signal = WakeSignal()
    /// Local wall-clock microseconds; `Int64.max`: nothing recorded, `Int64.min`: a change without a time.
    private let earliest = Atomic<Int64>(Int64.max)

    public init() {}

    /// Records a change of the reservations starting at `start` (microseconds of local wall-clock time; nil: a change
    /// without a time, evaluated at once).
    func changed(from start: Int64? = nil) {
        let start = start ?? Int64.min
        if start < self.earliest.min(start, ordering: .relaxed).oldValue { self.signal.signal() }
    }

    /// Forgets what was recorded (a pass is beginning).
    func take() { self.earliest.store(Int64.max, ordering: .relaxed) }

    /// When what was recorded must be evaluated: when its earliest start comes within `horizon` of the clock, at once
    /// for a change without a time; `Int64.max` with nothing recorded.
    func due(horizon: Int64, now: Int64) -> Int64 {
        let start = self.earliest.load(ordering: .relaxed)
        if start == Int64.max { return Int64.max }
        if start == Int64.min { return now }
        let (entering, overflow) = start.subtractingReportingOverflow(horizon)
        return overflow ? now : entering
    }
}
