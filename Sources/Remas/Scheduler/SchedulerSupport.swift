import Foundation
import Synchronization

/// Where the scheduler reads the time. Production uses the wall clock of the server's zone; tests pass a fixed one
/// and drive passes themselves.
public protocol SchedulerClock: Sendable {
    func now() -> LocalDateTime
}

public struct WallClock: SchedulerClock {
    let zone: TimeZone
    public init(zone: TimeZone) { self.zone = zone }
    public func now() -> LocalDateTime { LocalDateTime.now(in: self.zone) }
}

/// Counters of the scheduler, read by `/metrics` and by tests. (The scheduler lag comes from the database at scrape
/// time: it is the same on every replica.)
public final class SchedulerStats: Sendable {
    private let sent = Atomic<Int>(0)
    private let failed = Atomic<Int>(0)
    private let retried = Atomic<Int>(0)
    private let skipped = Atomic<Int>(0)
    private let capacity = Atomic<Int>(0)

    public init() {}

    /// Capacity passes this process ran (`CapacityMonitor`).
    public var capacityPasses: Int { self.capacity.load(ordering: .relaxed) }
    func countCapacityPass() { self.capacity.add(1, ordering: .relaxed) }

    /// Reminders accepted by the SMTP server.
    public var mailsSent: Int { self.sent.load(ordering: .relaxed) }
    /// Reminders recorded as failed after their last attempt.
    public var mailsFailed: Int { self.failed.load(ordering: .relaxed) }
    /// Failed attempts that will be retried.
    public var mailsRetried: Int { self.retried.load(ordering: .relaxed) }
    /// Reminders consumed without sending (SMTP disabled).
    public var mailsSkipped: Int { self.skipped.load(ordering: .relaxed) }

    func count(_ outcome: EventRepository.Outcome) {
        switch outcome {
        case .sent: self.sent.add(1, ordering: .relaxed)
        case .failed: self.failed.add(1, ordering: .relaxed)
        case .retry: self.retried.add(1, ordering: .relaxed)
        case .skipped: self.skipped.add(1, ordering: .relaxed)
        }
    }
}

/// Wakes the scheduler's sleep early: a NOTIFY from any replica, or shutdown.
///
/// A signal that arrives while the scheduler is busy is remembered, so the next wait returns at once and the new
/// event is never missed.
public final class WakeSignal: Sendable {
    public init() {}
    private struct State {
        var signaled = false
        var sleeper: Task<Void, Never>?
    }
    private let state = Mutex(State())

    func signal() {
        let sleeper = self.state.withLock { s -> Task<Void, Never>? in
            s.signaled = true
            return s.sleeper
        }
        sleeper?.cancel()
    }

    /// Sleeps up to `seconds`, or less when signaled.
    func wait(seconds: Double) async {
        guard seconds > 0 else { return }
        let sleeper = Task<Void, Never> { _ = try? await Task.sleep(for: .seconds(seconds)) }
        let skip = self.state.withLock { s -> Bool in
            if s.signaled {
                s.signaled = false
                return true
            }
            s.sleeper = sleeper
            return false
        }
        if skip { sleeper.cancel() }
        await sleeper.value
        self.state.withLock { s in
            s.sleeper = nil
            s.signaled = false
        }
    }
}
