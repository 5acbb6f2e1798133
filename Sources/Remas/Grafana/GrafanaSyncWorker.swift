import Foundation
import Logging
import Synchronization

/// Counters of the Grafana sync, for `/metrics`.
public final class GrafanaSyncStats: Sendable {
    private let synced = Atomic<Int>(0)
    private let failed = Atomic<Int>(0)
    private let passes = Atomic<Int>(0)
    public init() {}
    public var usersSynced: Int { self.synced.load(ordering: .relaxed) }
    public var syncFailures: Int { self.failed.load(ordering: .relaxed) }
    public var passCount: Int { self.passes.load(ordering: .relaxed) }
    func record(synced: Int, failed: Int) {
        self.synced.add(synced, ordering: .relaxed)
        self.failed.add(failed, ordering: .relaxed)
        self.passes.add(1, ordering: .relaxed)
    }
}

/// Works off the Grafana outbox: claims due users (a lease, so replicas share the work and a crashed replica's users
/// come back), lists Grafana's rules, folders and contact points once, reconciles every claimed user, and removes the
/// rows Grafana accepted. A failing user is retried with backoff (10 s doubling, at most
/// `GRAFANA_SYNC_RETRY_LIMIT_SECONDS`) until it succeeds; Grafana being down costs one failed listing per pass.
/// Every `GRAFANA_RESYNC_INTERVAL_SECONDS` (and at startup) one replica queues every user again, which repairs
/// anything changed in Grafana by hand and any change whose queueing was lost.
public final class GrafanaSyncWorker: Sendable {
    let reconciler: GrafanaReconciler
    let client: GrafanaClient
    let db: Database
    /// The sync queue and the rule inputs (`grafana_sync`, users, notifications).
    var queue: GrafanaRepository { GrafanaRepository(db: self.db) }
    let settings: GrafanaSettings
    public let stats: GrafanaSyncStats
    let logger: Logger
    let wake = WakeSignal()
    let stopping = Atomic<Bool>(false)
    /// Users claimed per pass (the rule listing is shared by all of them).
    static let batch = 500
    static let leaseSeconds = 600
    /// The longest sleep between two looks at the outbox (a wake from NOTIFY usually comes first).
    static let idleRecheckSeconds = 30.0

    public init(
        settings: GrafanaSettings, db: Database, secretKey: String, clock: any SchedulerClock,
        stats: GrafanaSyncStats = GrafanaSyncStats(), logger: Logger
    ) {
        var logger = logger
        logger[metadataKey: "service"] = "grafana-sync"
        self.client = GrafanaClient(settings: settings)
        self.reconciler = GrafanaReconciler(
            client: self.client, db: db, clock: clock, sealer: PasswordSealer(secret: secretKey), logger: logger)
        self.db = db
        self.settings = settings
        self.stats = stats
        self.logger = logger
    }

    public struct PassResult: Sendable {
        public var synced: [String] = []
        public var failed: [String: String] = [:]
    }

    /// One pass over every due user.
    @discardableResult
    public func runPass() async throws -> PassResult {
        let claims = try await self.queue.claim(limit: Self.batch, leaseSeconds: Self.leaseSeconds, logger: self.logger)
        guard !claims.isEmpty else { return PassResult() }
        var result = PassResult()
        var outcomes: [String: GrafanaError?]
        let started = ContinuousClock.now
        var listed = started
        do {
            let snapshot = try await self.reconciler.snapshot()
            listed = ContinuousClock.now
            outcomes = try await self.reconciler.sync(claims, snapshot: snapshot)
            let orphans = Set(snapshot.rulesByUser.keys).subtracting(claims.map(\.username))
            if !orphans.isEmpty {
                // Rules of a username REMAS does not know (deleted while its queueing was lost): queue it for removal.
                let unknown = try await self.queue.unknownUsernames(Array(orphans), logger: self.logger)
                if !unknown.isEmpty { try await self.queue.enqueue(unknown, logger: self.logger) }
            }
        } catch let error as GrafanaError {
            outcomes = Dictionary(uniqueKeysWithValues: claims.map { ($0.username, .some(error)) })
        }
        for claim in claims {
            if let error = outcomes[claim.username] ?? nil {
                let delay = self.settings.retryDelay(afterAttempts: claim.attempts)
                try await self.queue.fail(claim, error: error.description, delaySeconds: delay, logger: self.logger)
                result.failed[claim.username] = error.description
            } else {
                try await self.queue.complete(claim, logger: self.logger)
                result.synced.append(claim.username)
            }
        }
        if !result.failed.isEmpty {
            self.logger.warning(
                "grafana sync failed for some users; retrying with backoff",
                metadata: ["failed": "\(result.failed.count)", "synced": "\(result.synced.count)", "first_error": "\(result.failed.values.first ?? "")"])
        }
        let millis = { (d: Duration) in String(format: "%.0f", d.timeInterval * 1000) }
        self.logger.info(
            "grafana sync pass",
            metadata: [
                "users": "\(claims.count)", "failed": "\(result.failed.count)", "list_ms": "\(millis(listed - started))",
                "sync_ms": "\(millis(ContinuousClock.now - listed))",
            ])
        self.stats.record(synced: result.synced.count, failed: result.failed.count)
        return result
    }

    /// Queues every user when the interval has passed since the last full resync (on any replica).
    @discardableResult
    public func startFullResyncIfDue(force: Bool = false) async throws -> Bool {
        let interval = force ? 0 : (self.settings.resyncIntervalSeconds == 0 ? Int(Int32.max) : self.settings.resyncIntervalSeconds)
        return try await self.queue.startFullResyncIfDue(interval: interval, logger: self.logger)
    }

    /// Syncs every user now (for `remas grafana-init`): queues them all, then runs passes until none is due; a user
    /// whose sync failed stays queued for the scheduler's retries. `passwords` go to those Grafana users.
    public func syncEveryone(passwords: [String: String] = [:]) async throws -> PassResult {
        for (username, password) in passwords {
            try await self.queue.enqueue([username], password: self.reconciler.sealer.seal(password), logger: self.logger)
        }
        try await self.startFullResyncIfDue(force: true)
        var total = PassResult()
        while true {
            let pass = try await self.runPass()
            if pass.synced.isEmpty && pass.failed.isEmpty { break }
            total.synced += pass.synced
            total.failed.merge(pass.failed) { $1 }
        }
        return total
    }

    /// Runs passes until `stop`: after each one it sleeps until the next queued user is due, a NOTIFY says one was
    /// queued, or `idleRecheckSeconds` passed.
    func loop() async {
        var failures = 0
        var firstPass = true
        while !self.stopping.load(ordering: .relaxed) {
            var delay = Self.idleRecheckSeconds
            do {
                if firstPass {
                    // At startup: a full resync unless one ran within the interval (another replica, or before a restart).
                    try await self.startFullResyncIfDue()
                    firstPass = false
                } else if self.settings.resyncIntervalSeconds > 0 {
                    try await self.startFullResyncIfDue()
                }
                var pass = try await self.runPass()
                // A full batch means more are waiting.
                while pass.synced.count + pass.failed.count >= Self.batch, !self.stopping.load(ordering: .relaxed) {
                    pass = try await self.runPass()
                }
                failures = 0
                if let next = try await self.queue.secondsUntilNextDue(logger: self.logger) {
                    delay = min(delay, max(0.05, next))
                }
            } catch {
                failures += 1
                delay = backoffSeconds(failures: failures, doublings: 6, limit: self.settings.retryLimitSeconds)
                self.logger.error("grafana sync pass failed", metadata: ["error": "\(String(reflecting: error))", "retry_in_s": "\(delay)"])
            }
            if self.stopping.load(ordering: .relaxed) { break }
            await self.wake.wait(seconds: delay)
        }
    }

    public func stop() {
        self.stopping.store(true, ordering: .relaxed)
        self.wake.signal()
    }

    public func shutdown() async {
        await self.client.shutdown()
    }
}
