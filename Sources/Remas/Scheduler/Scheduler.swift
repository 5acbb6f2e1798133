import Foundation
import Logging
import NIOPosix
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The event scheduler (with the original's defects fixed): a `Service` in the server's group.
///
/// - It sleeps until the next pending event is due (or its retry time), not on a fixed poll, and at most 5 minutes.
///   A trigger on `events` sends NOTIFY with the earliest due time a statement created or moved (when due within 10
///   minutes); a scheduler on any replica that planned to wake later wakes at once. At start it catches up.
/// - It has its own small connection pool (workers + 1): a slow or hanging mail server never takes connections from
///   the HTTP requests.
/// - Reminders due within `TASK_SCHEDULER_PRECISION_SECONDS` (default 0) are sent in the same pass:
///   a site may trade punctuality for fewer passes. Task start/end events never are: they are processed at their
///   instant, so Grafana thresholds hold from a task's start to its end, however short the task.
/// - Task start/end events are completed in one statement and their owners queued for a Grafana sync, which reads
///   allocations as of its own instant.
///   Task status itself is derived from the clock on every read, so it is never late, scheduler or not.
/// - Reminders are sent by `workers` parallel workers. Each claims one due row with `FOR UPDATE SKIP LOCKED`, sends it
///   over its own reused SMTP connection while holding the row lock, and commits the outcome with the lock. So two
///   schedulers never send one reminder twice; a crash (even `kill -9`) before the commit releases the lock and
///   leaves the row pending for the next pass. The outcome `sent` is written before the send, so the one window left
///   is between the SMTP server's "250 accepted" and the COMMIT's reply (one round trip): a crash exactly there sends
///   the mail again after restart rather than lose it (no mail protocol can tell the two apart, RFC 1047), and the
///   Message-ID, derived from the event, lets a mail system recognise the copy.
/// - A failed send is retried with backoff (10 s doubling, at most `TASK_SCHEDULER_RETRY_LIMIT_SECONDS`) and recorded
///   as failed after `TASK_SCHEDULER_MAX_ATTEMPTS`; every event commits on its own, so one failure blocks nothing.
/// - On graceful shutdown the send in hand is aborted and its transaction rolled back: the event stays pending.
public final class Scheduler: Service, Sendable {
    let pool: ConnectionPool
    let db: Database
    /// The work queue (`events`).
    var events: EventRepository { EventRepository(db: self.db) }
    let target: DatabaseTarget
    let settings: SchedulerSettings
    let smtp: SMTPSettings
    let clock: any SchedulerClock
    let grafana: any GrafanaSync
    /// Works off the Grafana outbox beside the event loop (nil when Grafana is not enabled).
    let grafanaWorker: GrafanaSyncWorker?
    public let stats: SchedulerStats
    let logger: Logger
    let wake = WakeSignal()
    let abort = AbortFlag()
    let stopping = Atomic<Bool>(false)
    /// When the loop plans to wake (wall-clock microseconds); a NOTIFY for an earlier due time wakes it. `Int64.max`
    /// while a pass runs, so nothing that arrives meanwhile is missed.
    let plannedWake = Atomic<Int64>(Int64.max)
    /// libcurl blocks: sends run here, never on an event loop.
    let threads: NIOThreadPool
    /// Capacity alerts, beside the event loop (nil when `CAPACITY_HORIZON_HOURS` is 0 or no change signal is given).
    let capacity: CapacityMonitor?
    /// Day figures of usage reports, beside the event loop (nil when `USAGE_ROLLUP_INTERVAL_SECONDS` is 0).
    let rollup: UsageRollup?

    /// The longest sleep: events due later than this are found by the next pass rather than announced. The NOTIFY
    /// trigger (migration 0002) only announces events due within 10 minutes, so this must stay well below that.
    static let idleRecheckSeconds = 300.0

    public init(
        target: DatabaseTarget, settings: SchedulerSettings, smtp: SMTPSettings,
        clock: any SchedulerClock, grafana: any GrafanaSync, grafanaWorker: GrafanaSyncWorker? = nil,
        stats: SchedulerStats = SchedulerStats(), operations: OperationsSettings = OperationsSettings(),
        capacityChanges: CapacityChanges? = nil, usage: UsageMeasurementSettings = UsageMeasurementSettings(), logger: Logger
    ) {
        self.grafanaWorker = grafanaWorker
        // Generic plans for the prepared claim statement (otherwise re-planned on every reminder).
        self.pool = ConnectionPool(
            target: target.adding(parameter: "plan_cache_mode", "force_generic_plan"), maximumConnections: settings.workers + 2, logger: logger)
        self.db = Database(pool: self.pool)
        self.target = target
        self.settings = settings
        self.smtp = smtp
        self.clock = clock
        self.grafana = grafana
        self.stats = stats
        var logger = logger
        logger[metadataKey: "service"] = "scheduler"
        self.logger = logger
        self.threads = NIOThreadPool(numberOfThreads: settings.workers)
        self.threads.start()
        if let capacityChanges, operations.capacityHorizonHours > 0 {
            self.capacity = CapacityMonitor(
                db: self.db, settings: operations, changes: capacityChanges, clock: clock, stats: stats, logger: logger)
        } else {
            self.capacity = nil
        }
        self.rollup = usage.rollupIntervalSeconds > 0
            ? UsageRollup(db: self.db, intervalSeconds: usage.rollupIntervalSeconds, logger: logger) : nil
    }

    public func run() async throws {
        // Graceful shutdown and cancellation (the service group cancels when another service fails) both end the loop.
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await self.listen() }
                    if let worker = self.grafanaWorker { group.addTask { await worker.loop() } }
                    if let capacity = self.capacity { group.addTask { await capacity.loop(isStopping: { self.isStopping }) } }
                    if let rollup = self.rollup { group.addTask { await rollup.loop(isStopping: { self.isStopping }) } }
                    await self.loop()
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                self.stop()
            }
        } onCancel: {
            self.stop()
        }
        await self.shutdown()
    }

    /// Closes the scheduler's connections and send threads (after `run`, or after passes driven by a test).
    public func shutdown() async {
        await self.pool.shutdown()
        try? await self.threads.shutdownGracefully()
        await self.grafanaWorker?.shutdown()
    }

    /// Stops claiming, aborts the send in progress (its event is released) and ends `run`.
    public func stop() {
        self.stopping.store(true, ordering: .relaxed)
        self.abort.set()
        self.wake.signal()
        self.grafanaWorker?.stop()
        self.capacity?.changes.signal.signal()
        self.rollup?.stop.signal()
    }

    var isStopping: Bool { self.stopping.load(ordering: .relaxed) }

    func loop() async {
        var failures = 0
        while !self.isStopping {
            var delay = Self.idleRecheckSeconds
            self.plannedWake.store(Int64.max, ordering: .relaxed)
            do {
                let pass = try await self.runPass()
                failures = 0
                if let next = pass.nextDue {
                    let micros = next.microseconds - self.clock.now().microseconds
                    delay = min(delay, max(0, Double(micros) / 1_000_000))
                }
            } catch {
                // The database is unreachable or refused: try again soon, with backoff, and never end the service.
                failures += 1
                delay = backoffSeconds(failures: failures, doublings: 6, limit: self.settings.retryLimitSeconds)
                self.logger.error("scheduler pass failed", metadata: ["error": "\(String(reflecting: error))", "retry_in_s": "\(delay)"])
            }
            if self.isStopping { break }
            self.plannedWake.store(self.clock.now().microseconds + Int64(delay * 1_000_000), ordering: .relaxed)
            await self.wake.wait(seconds: delay)
        }
    }

    /// LISTEN on this schema's `remas_events_…` channel (`NotificationListener`). Every reconnect (which may have
    /// missed notifications) and every notification due earlier than planned wakes the loop.
    func listen() async {
        await NotificationListener(target: self.target, prefix: "remas_events", table: "events", logger: self.logger).run(
            isStopping: { self.isStopping },
            listening: {
                self.wake.signal()
                self.grafanaWorker?.wake.signal()
            },
            lost: {},
            received: { payload in
                // The Grafana outbox's trigger (migration 0003) shares the channel.
                if payload == "grafana" {
                    self.grafanaWorker?.wake.signal()
                    return
                }
                // The payload is the earliest due time the change created; a malformed one wakes anyway.
                let due = LocalDateTime.parse(payload, zone: .gmt)?.microseconds ?? Int64.min
                if due < self.plannedWake.load(ordering: .relaxed) { self.wake.signal() }
            })
    }

    /// What one pass did (for tests and logs).
    public struct PassResult: Sendable {
        public var usersWithChangedAllocations: [Int] = []
        public var sent = 0
        public var retried = 0
        public var failed = 0
        public var skipped = 0
        public var released = 0
        /// When the next pending event falls due, after this pass.
        public var nextDue: LocalDateTime?
    }

    /// Processes the task events due by now and the reminders due by now + precision; returns what happened.
    @discardableResult
    public func runPass() async throws -> PassResult {
        let now = self.clock.now()
        let horizon = now.adding(seconds: Int64(self.settings.precisionSeconds))
        let owners = try await self.events.completeTaskEvents(dueBy: now, logger: self.logger)
        if !owners.isEmpty {
            // Queued, not called: Grafana's trouble never holds back the event queue.
            await self.grafana.changed(.users(owners), logger: self.logger)
        }
        // As many workers as there are due reminders (at most `workers`): an idle pass costs one query.
        let due = try await self.events.countDueReminders(dueBy: horizon, upTo: self.settings.workers, logger: self.logger)
        var result = await withTaskGroup(of: PassResult.self) { group in
            for _ in 0..<due {
                group.addTask { await self.work(horizon: horizon) }
            }
            return await group.reduce(into: PassResult()) { total, part in
                total.sent += part.sent
                total.retried += part.retried
                total.failed += part.failed
                total.skipped += part.skipped
                total.released += part.released
            }
        }
        result.usersWithChangedAllocations = owners
        result.nextDue = try await self.events.nextDue(logger: self.logger)
        return result
    }
}
