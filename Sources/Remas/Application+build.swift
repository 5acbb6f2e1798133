import Foundation
import Hummingbird
import Logging
import PostgresNIO
import ServiceLifecycle

/// The composition root: builds every long-lived object once and wires the router.
///
/// Migrations are not run here; `remas serve` runs them first with its own short-lived client (STYLE.md §5), so no
/// service ever sees an old schema.
/// Sizes SwiftNIO's shared event-loop group (`SERVER_THREADS`). Call once, first thing in `serve`: the group is
/// created on first use and keeps its size.
public func configureEventLoops(_ configuration: AppConfiguration) {
    NIOSingletons.groupLoopCountSuggestion = configuration.serverThreads
}

public func buildApplication(
    configuration: AppConfiguration,
    grafana: (any GrafanaSync)? = nil,
    logger: Logger
) async throws -> some ApplicationProtocol {
    let pool = ConnectionPool(
        configuration: configuration.connectionConfiguration,
        maximumConnections: configuration.maxConnections, prewarm: configuration.prewarmConnections, logger: logger)
    let hasher = PasswordHasher(cost: configuration.bcryptCost)
    let db = Database(pool: pool)
    let stats = SchedulerStats()
    // Grafana is reached only through the outbox (GrafanaSync.swift); tests may pass their own seam.
    let grafana = grafana ?? (configuration.grafana.enabled
        ? GrafanaOutbox(db: db, secretKey: configuration.secretKey) : GrafanaSyncDisabled())
    let grafanaStats = GrafanaSyncStats()
    let revocation = TokenRevocation(db: db, logger: logger)
    let environment = AppEnvironment(
        configuration: configuration,
        db: db,
        tokens: await TokenService(configuration: configuration, revocation: revocation),
        hasher: hasher,
        grafana: grafana,
        schedulerStats: stats,
        grafanaStats: grafanaStats)
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
            if let path = configuration.socketPath { UnixSocket.openToLocalUsers(path: path) }
        },
        logger: logger)
    // Started in this order, shut down in reverse: the server stops first, then the scheduler, the pool closes last.
    app.addServices(pool, hasher, TokenRevocation.Listener(revocation: revocation, connection: configuration.connectionConfiguration, logger: logger))
    if configuration.scheduler.enabled {
        let worker = configuration.grafana.enabled
            ? GrafanaSyncWorker(
                settings: configuration.grafana, db: db, secretKey: configuration.secretKey,
                lookAheadSeconds: configuration.scheduler.precisionSeconds, clock: WallClock(zone: configuration.timeZone),
                stats: grafanaStats, logger: logger)
            : nil
        app.addServices(
            Scheduler(
                connection: configuration.connectionConfiguration, settings: configuration.scheduler, smtp: configuration.smtp,
                clock: WallClock(zone: configuration.timeZone), grafana: grafana, grafanaWorker: worker, stats: stats, logger: logger))
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
    return router
}

/// Runs `body` with a short-lived client (for `migrate`, `seed` and the pre-serve migration).
public func withDatabase<T: Sendable>(
    _ configuration: AppConfiguration, logger: Logger, _ body: @escaping @Sendable (Database) async throws -> T
) async throws -> T {
    let pool = ConnectionPool(
        configuration: configuration.connectionConfiguration,
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
