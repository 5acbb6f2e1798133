import Foundation
import Hummingbird
import Logging
import PostgresNIO
import ServiceLifecycle

/// Sizes SwiftNIO's shared event-loop group (`SERVER_THREADS`). Call once, first thing in `serve`: the group is
/// created on first use and keeps its size.
public func configureEventLoops(_ configuration: AppConfiguration) {
    NIOSingletons.groupLoopCountSuggestion = configuration.serverThreads
}

/// The composition root: builds every long-lived object once and wires the router.
///
/// Migrations are not run here; `remas serve` runs them first with its own short-lived client, so no
/// service ever sees an old schema.
public func buildApplication(
    configuration: AppConfiguration,
    grafana: (any GrafanaSync)? = nil,
    extraServices: [any Service] = [],
    authListener: ListenerObserver? = nil,
    logger: Logger
) async throws -> some ApplicationProtocol {
    let pool = ConnectionPool(
        target: configuration.databaseTarget,
        maximumConnections: configuration.maxConnections, prewarm: configuration.prewarmConnections, logger: logger)
    let hasher = PasswordHasher(cost: configuration.bcryptCost)
    let db = Database(pool: pool)
    let stats = SchedulerStats()
    // Grafana is reached only through the outbox (GrafanaSync.swift); tests may pass their own seam.
    let grafana = grafana ?? (configuration.grafana.enabled
        ? GrafanaOutbox(db: db, secretKey: configuration.secretKey) : GrafanaSyncDisabled())
    let grafanaStats = GrafanaSyncStats()
    let revocation = TokenRevocation(db: db, logger: logger)
    var environment = AppEnvironment(
        configuration: configuration,
        db: db,
        tokens: await TokenService(configuration: configuration, revocation: revocation),
        hasher: hasher,
        grafana: grafana,
        schedulerStats: stats,
        grafanaStats: grafanaStats,
        userDocuments: UserDocumentCache(budget: configuration.userDocumentCacheBytes))
    // New bookings' batches run one at a time on a connection of their own that plans every prepared statement
    // generically (`BookingBatcher.db`).
    let batchPool = ConnectionPool(
        target: configuration.databaseTarget.adding(parameter: "plan_cache_mode", "force_generic_plan"),
        maximumConnections: BookingBatcher.transactionsPerServer, prewarm: configuration.prewarmConnections, logger: logger)
    environment.bookings = BookingBatcher(db: Database(pool: batchPool))
    let router = buildRouter(environment)
    let address: BindAddress
    if let path = configuration.socketPath {
        try UnixSocket.prepare(path: path)
        address = .unixDomainSocket(path: path)
    } else {
        address = .hostname(configuration.host, port: configuration.port)
    }
    var app = Application(
        router: router,
        server: .announcingHTTP1(idleTimeout: .seconds(Int64(configuration.idleTimeoutSeconds))),
        configuration: .init(address: address, serverName: nil),
        onServerRunning: { _ in
            if let path = configuration.socketPath { UnixSocket.openToLocalUsers(path: path, logger: logger) }
        },
        logger: logger)
    // Started in this order, shut down in reverse: the server stops first, then the scheduler, the pool closes last.
    app.addServices(extraServices)
    app.addServices(pool, batchPool, hasher, TokenRevocation.Listener(
        revocation: revocation, target: configuration.databaseTarget, observer: authListener, logger: logger))
    if configuration.scheduler.enabled {
        let worker = configuration.grafana.enabled
            ? GrafanaSyncWorker(
                settings: configuration.grafana, db: db, secretKey: configuration.secretKey,
                clock: WallClock(zone: configuration.timeZone),
                stats: grafanaStats, logger: logger)
            : nil
        app.addServices(
            Scheduler(
                target: configuration.databaseTarget, settings: configuration.scheduler, smtp: configuration.smtp,
                clock: WallClock(zone: configuration.timeZone), grafana: grafana, grafanaWorker: worker, stats: stats,
                operations: configuration.operations, capacityChanges: environment.capacityChanges, usage: configuration.usage,
                logger: logger))
    }
    return app
}

/// Middleware and every controller's routes.
public func buildRouter(_ environment: AppEnvironment, table: RouteTable = RouteTable()) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    // Outermost: it sees the status the client gets, error responses included.
    if environment.configuration.metricsEnabled {
        router.add(middleware: RequestMetricsMiddleware(metrics: environment.metrics))
    }
    router.add(middleware: CORSMiddleware(origins: environment.configuration.corsOrigins))
    router.add(middleware: ErrorMiddleware(routes: table))
    let routes = RouteBuilder(router: router, table: table)
    MiscController(env: environment).register(routes)
    AuthController(env: environment).register(routes)
    UserController(env: environment).register(routes)
    GroupController(env: environment).register(routes)
    NodeController(env: environment).register(routes)
    ResourceController(env: environment).register(routes)
    AliasController(env: environment).register(routes)
    LimitController(env: environment).register(routes)
    TaskTagController(env: environment).register(routes)
    TaskController(env: environment).register(routes)
    NotificationController(env: environment).register(routes)
    MaintenanceController(env: environment).register(routes)
    ApiKeyController(env: environment).register(routes)
    NodeStatusController(env: environment).register(routes)
    CalendarController(env: environment).register(routes)
    ReportController(env: environment).register(routes)
    return router
}

/// Runs `body` with a short-lived client (for `migrate`, `seed` and the pre-serve migration).
public func withDatabase<T: Sendable>(
    _ configuration: AppConfiguration, logger: Logger, _ body: @escaping @Sendable (Database) async throws -> T
) async throws -> T {
    let pool = ConnectionPool(
        target: configuration.databaseTarget,
        maximumConnections: 2, logger: logger)
    do {
        let value = try await body(Database(pool: pool))
        await pool.shutdown()
        return value
    } catch {
        await pool.shutdown()
        throw error
    }
}

/// `serve`'s safety net: when the service group is cancelled because a service failed (the port is taken, say), the
/// process must end even if some service does not honour the cancellation. It once did not, in about 1 of 6 runs under
/// load: a LISTEN connection cancelled while connecting came back closed, its first query was dropped by PostgresNIO
/// and never answered, and the listener's service never finished (fixed: `ConnectionPool.withConnection`,
/// `NotificationListener`; 0 of 70 since). Kept for what no test has found yet: after `seconds` the process exits
/// with status 1 and says so at `critical` level (CrashTests fail if it ever has to). Graceful shutdown (SIGTERM) does
/// not arm it: draining requests may take longer.
public struct StopWatchdog: Service {
    public let seconds: Int
    public let logger: Logger

    public init(seconds: Int, logger: Logger) {
        self.seconds = seconds
        self.logger = logger
    }

    public func run() async throws {
        do {
            try await gracefulShutdown()  // returns on graceful shutdown, throws when the group cancels
        } catch {
            let (seconds, logger) = (self.seconds, self.logger)
            Task.detached {
                try? await Task.sleep(for: .seconds(seconds))
                logger.critical("services did not stop within \(seconds) s after a failure; exiting")
                exit(1)
            }
        }
    }
}
