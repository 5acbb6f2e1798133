import Foundation
import Logging
import PostgresNIO

/// Typed configuration, read once at startup from the environment.
///
/// Variable names and defaults follow the original REMAS so existing deployments keep their settings
/// (README, "Configuration"). We read the environment directly rather
/// than through swift-configuration: the original's names (`SECRET_KEY`, `DATABASE_URL`, …) are not dotted keys,
/// and a plain dictionary keeps tests free to pass any set of values.
///
/// Every variable, its default and meaning: README, "Configuration" (the one table; `ConfigurationTests` reads
/// each variable named there).
public struct AppConfiguration: Sendable {
    public var database: DatabaseURL
    public var searchPath: String?
    public var maxConnections: Int
    public var prewarmConnections: Bool
    public var host: String
    public var port: Int
    public var secretKey: String
    public var algorithm: JWTAlgorithmName
    public var accessTokenMinutes: Int
    public var refreshTokenMinutes: Int
    public var corsOrigins: [String]
    public var debug: Bool
    public var grafanaURL: String
    public var grafanaRedirectURL: String
    public var grafana: GrafanaSettings
    public var metricsEnabled: Bool
    public var timeZone: TimeZone
    public var bcryptCost: UInt8
    public var autoMigrate: Bool
    public var migrationsPath: String
    public var maxBodyBytes: Int
    /// Bytes of users' documents each replica keeps (`UserDocumentCache`); 0 keeps none.
    public var userDocumentCacheBytes: Int
    /// What a limit bounds: the caller's overlapping reservations together (`concurrent`) or each task alone (`task`).
    public var limitScope: LimitScope
    /// A connection with no request in progress is closed after this long.
    public var idleTimeoutSeconds: Int
    /// When set, `serve` listens on this Unix domain socket instead of `host`:`port`.
    public var socketPath: String?
    /// Event-loop threads of the process (`serve` applies it before anything uses SwiftNIO's shared group).
    public var serverThreads: Int
    public var scheduler: SchedulerSettings
    public var smtp: SMTPSettings
    public var loginThrottle: LoginThrottleSettings
    /// Peers whose `X-Forwarded-For` is believed when the client's address is needed (login throttling).
    public var trustedProxies: TrustedProxies
    /// Node status, outages and capacity alerts (README "Node status and outages", "Capacity alerts").
    public var operations: OperationsSettings
    /// Measured use for usage reports (README "Usage reports").
    public var usage: UsageMeasurementSettings
    /// The address users reach remas at, for the URLs remas hands out (calendar feeds); nil: the request's host.
    public var publicURL: String?

    public enum JWTAlgorithmName: String, Sendable { case hs256 = "HS256", hs384 = "HS384", hs512 = "HS512" }

    /// Reads and validates every setting; throws `ConfigurationError` naming the first bad variable.
    public init(environment env: [String: String], requireSecret: Bool = true) throws {
        func string(_ key: String, _ fallback: String) -> String {
            guard let value = env[key], !value.isEmpty else { return fallback }
            return value
        }
        func int(_ key: String, _ fallback: Int, range: ClosedRange<Int>) throws -> Int {
            guard let raw = env[key], !raw.isEmpty else { return fallback }
            guard let value = Int(raw.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
                throw ConfigurationError("\(key) must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(raw)'")
            }
            return value
        }
        func bool(_ key: String, _ fallback: Bool) throws -> Bool {
            guard let raw = env[key], !raw.isEmpty else { return fallback }
            switch raw.lowercased().trimmingCharacters(in: .whitespaces) {
            case "1", "true", "yes", "on": return true
            case "0", "false", "no", "off": return false
            default: throw ConfigurationError("\(key) must be true or false, got '\(raw)'")
            }
        }

        let url = string("DATABASE_URL", "postgresql://remas_main:test123@localhost:15432/remas_main_db")
        self.database = try DatabaseURL(parsing: url)
        self.searchPath = env["DB_SEARCH_PATH"].flatMap { $0.isEmpty ? nil : $0 }
        // Few connections serve a small machine best: with more active backends than cores, PostgreSQL's tail latency
        // explodes (measured: GET /node p99 7 ms with 4 connections, 370 ms with 8, on 2 cores).
        self.maxConnections = try int("DB_MAX_CONNECTIONS", max(4, 2 * ProcessInfo.processInfo.activeProcessorCount), range: 1...1000)
        self.prewarmConnections = try bool("DB_PREWARM", true)
        self.host = string("HOST", "0.0.0.0")
        self.port = try int("PORT", 8000, range: 0...65535)
        guard let secret = env["SECRET_KEY"].flatMap({ $0.isEmpty ? nil : $0 }) ?? (requireSecret ? nil : String(repeating: "x", count: 32)) else {
            throw ConfigurationError("SECRET_KEY is not set: set it to a long random string (e.g. `openssl rand -hex 32`)")
        }
        // RFC 7518 §3.2: an HMAC key must be at least as long as the hash output (JWTKit enforces it too).
        guard secret.utf8.count >= 32 else {
            throw ConfigurationError("SECRET_KEY must be at least 32 bytes long (RFC 7518 §3.2), got \(secret.utf8.count)")
        }
        // The shipped docker/remas.env holds placeholders; a site must not run with a key everyone can read.
        guard !secret.uppercased().hasPrefix("CHANGE-ME") else {
            throw ConfigurationError("SECRET_KEY is still the placeholder of docker/remas.env: set it to `openssl rand -hex 32`")
        }
        self.secretKey = secret
        guard let algorithm = JWTAlgorithmName(rawValue: string("ALGORITHM", "HS256").uppercased()) else {
            throw ConfigurationError("ALGORITHM must be HS256, HS384 or HS512, got '\(env["ALGORITHM"] ?? "")'")
        }
        self.algorithm = algorithm
        self.accessTokenMinutes = try int("TOKEN_ACCESS_EXPIRE_MINUTES", 30, range: 1...525_600)
        self.refreshTokenMinutes = try int("TOKEN_REFRESH_EXPIRE_MINUTES", 120, range: 1...5_256_000)
        self.corsOrigins = string("CORS_ORIGINS", "*").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        self.debug = try bool("DEBUG", false)
        self.grafanaURL = string("GRAFANA_URL", "http://localhost:3000/")
        guard URL(string: self.grafanaURL)?.host != nil else {
            throw ConfigurationError("GRAFANA_URL must be an absolute URL, got '\(self.grafanaURL)'")
        }
        self.grafanaRedirectURL = string("GRAFANA_REDIRECT_URL", self.grafanaURL)
        self.metricsEnabled = try bool("METRICS_ENABLED", true)
        // Off unless a Grafana is named: a site that only books resources gets no retry noise for a Grafana it lacks.
        let grafanaNamed = !(env["GRAFANA_URL"] ?? "").isEmpty
        self.grafana = GrafanaSettings(
            enabled: try bool("GRAFANA_ENABLED", grafanaNamed),
            url: self.grafanaURL,
            username: string("GRAFANA_USERNAME", "admin"),
            password: env["GRAFANA_PASSWORD"] ?? "admin",
            timeoutSeconds: try int("GRAFANA_TIMEOUT_SECONDS", 10, range: 1...600),
            retryLimitSeconds: try int("GRAFANA_SYNC_RETRY_LIMIT_SECONDS", 300, range: 1...86_400),
            resyncIntervalSeconds: try int("GRAFANA_RESYNC_INTERVAL_SECONDS", 3600, range: 0...604_800))
        if let tz = env["TZ"], !tz.isEmpty {
            let name = tz.hasPrefix(":") ? String(tz.dropFirst()) : tz
            guard let zone = TimeZone(identifier: name) else {
                throw ConfigurationError("TZ names an unknown time zone: '\(tz)'")
            }
            self.timeZone = zone
        } else {
            self.timeZone = TimeZone.current
        }
        self.bcryptCost = UInt8(try int("BCRYPT_COST", 12, range: 4...31))
        self.autoMigrate = try bool("REMAS_AUTO_MIGRATE", false)
        self.migrationsPath = string("REMAS_MIGRATIONS_PATH", "Migrations")
        self.maxBodyBytes = try int("MAX_BODY_BYTES", 1_048_576, range: 1024...1_073_741_824)
        self.userDocumentCacheBytes = try int("USER_DOCUMENT_CACHE_BYTES", 33_554_432, range: 0...17_179_869_184)
        self.idleTimeoutSeconds = try int("HTTP_IDLE_TIMEOUT_SECONDS", 75, range: 1...86_400)
        self.socketPath = env["SOCKET_PATH"].flatMap { $0.isEmpty ? nil : $0 }
        if let path = self.socketPath, path.utf8.count > 107 {  // sun_path holds 108 bytes with the terminating NUL
            throw ConfigurationError("SOCKET_PATH must be at most 107 bytes long, got \(path.utf8.count)")
        }
        self.serverThreads = try int("SERVER_THREADS", ProcessInfo.processInfo.activeProcessorCount, range: 1...256)
        guard let scope = LimitScope(rawValue: string("LIMIT_SCOPE", "concurrent").lowercased()) else {
            throw ConfigurationError("LIMIT_SCOPE must be concurrent or task, got '\(env["LIMIT_SCOPE"] ?? "")'")
        }
        self.limitScope = scope
        self.scheduler = SchedulerSettings(
            enabled: try bool("TASK_SCHEDULER_ENABLED", true),
            precisionSeconds: try int("TASK_SCHEDULER_PRECISION_SECONDS", 0, range: 0...86_400),
            retryLimitSeconds: try int("TASK_SCHEDULER_RETRY_LIMIT_SECONDS", 120, range: 1...86_400),
            maxAttempts: try int("TASK_SCHEDULER_MAX_ATTEMPTS", 5, range: 1...1000),
            workers: try int("TASK_SCHEDULER_WORKERS", 4, range: 1...64))
        var throttle = LoginThrottleSettings()
        throttle.maxFailuresPerUser = try int("LOGIN_MAX_FAILURES_PER_USER", throttle.maxFailuresPerUser, range: 1...1000)
        throttle.maxFailuresPerAddress = try int("LOGIN_MAX_FAILURES_PER_ADDRESS", throttle.maxFailuresPerAddress, range: 1...100_000)
        throttle.windowSeconds = try int("LOGIN_FAILURE_WINDOW_SECONDS", throttle.windowSeconds, range: 1...86_400)
        throttle.lockoutSeconds = try int("LOGIN_LOCKOUT_SECONDS", throttle.lockoutSeconds, range: 1...LoginThrottleSettings.maxLockoutSeconds)
        throttle.refusalDelayMilliseconds = try int("LOGIN_REFUSAL_DELAY_MS", throttle.refusalDelayMilliseconds, range: 0...10_000)
        self.loginThrottle = throttle
        self.trustedProxies = try TrustedProxies(parsing: env["TRUSTED_PROXIES"] ?? "")
        var operations = OperationsSettings()
        operations.statusStaleSeconds = try int("NODE_STATUS_STALE_SECONDS", operations.statusStaleSeconds, range: 1...31_536_000)
        if let raw = env["NODE_DOWN_ALERTS"] {
            operations.nodeDownAlerts = Set(raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        }
        operations.downNoticeHours = try int("NODE_DOWN_NOTICE_HOURS", operations.downNoticeHours, range: 0...8_760)
        operations.bookingGuardMinutes = try int("NODE_DOWN_BOOKING_GUARD_MINUTES", operations.bookingGuardMinutes, range: 0...525_600)
        operations.capacityHorizonHours = try int("CAPACITY_HORIZON_HOURS", operations.capacityHorizonHours, range: 0...8_760)
        if let raw = env["CAPACITY_ALERT_THRESHOLD"], !raw.isEmpty {
            guard let value = Double(raw.trimmingCharacters(in: .whitespaces)), value > 0.05, value <= 10 else {
                throw ConfigurationError("CAPACITY_ALERT_THRESHOLD must be a number above 0.05 (a share: 0.9 = 90 %), got '\(raw)'")
            }
            operations.capacityThreshold = value
        }
        operations.capacityMinIntervalSeconds = try int(
            "CAPACITY_CHECK_MIN_INTERVAL_SECONDS", operations.capacityMinIntervalSeconds, range: 0...86_400)
        self.operations = operations
        var usage = UsageMeasurementSettings()
        if let raw = env["PROMETHEUS_URL"], !raw.isEmpty {
            guard let url = URL(string: raw), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
                throw ConfigurationError("PROMETHEUS_URL must be an absolute http(s) URL, got '\(raw)'")
            }
            usage.prometheusURL = raw
        }
        usage.cpuQuery = string("USAGE_CPU_QUERY", usage.cpuQuery)
        usage.memoryQuery = string("USAGE_MEMORY_QUERY", usage.memoryQuery)
        usage.cpuResource = string("USAGE_CPU_RESOURCE", usage.cpuResource)
        usage.timeoutSeconds = try int("PROMETHEUS_TIMEOUT_SECONDS", usage.timeoutSeconds, range: 1...300)
        usage.rollupIntervalSeconds = try int("USAGE_ROLLUP_INTERVAL_SECONDS", usage.rollupIntervalSeconds, range: 0...86_400)
        self.usage = usage
        if let raw = env["PUBLIC_URL"], !raw.isEmpty {
            guard let url = URL(string: raw), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
                throw ConfigurationError("PUBLIC_URL must be an absolute http(s) URL, got '\(raw)'")
            }
            self.publicURL = raw.hasSuffix("/") ? String(raw.dropLast()) : raw
        } else {
            self.publicURL = nil
        }
        let smtpUser = env["SMTP_USER"] ?? ""
        self.smtp = SMTPSettings(
            enabled: try bool("SMTP_ENABLED", false),
            host: string("SMTP_HOST", "localhost"),
            port: try int("SMTP_PORT", 465, range: 1...65535),
            user: smtpUser,
            password: env["SMTP_PASSWORD"] ?? "",
            fromAddress: string("SMTP_FROM_ADDRESS", smtpUser),
            fromName: string("SMTP_FROM_NAME", "REMAS"),
            startTLS: try bool("SMTP_STARTTLS_ENABLED", false),
            verifyCertificate: try bool("SMTP_VERIFY_CERTIFICATE", true),
            caFile: env["SMTP_CA_FILE"].flatMap { $0.isEmpty ? nil : $0 },
            timeoutSeconds: try int("SMTP_TIMEOUT_SECONDS", 30, range: 1...3600))
        if self.smtp.enabled {
            guard MailMessage.isDeliverable(self.smtp.fromAddress) else {
                throw ConfigurationError(
                    "SMTP_ENABLED is true but SMTP_FROM_ADDRESS (default: SMTP_USER) is not a usable address: '\(self.smtp.fromAddress)'")
            }
            if let ca = self.smtp.caFile, !FileManager.default.isReadableFile(atPath: ca) {
                throw ConfigurationError("SMTP_CA_FILE names a file that cannot be read: '\(ca)'")
            }
        }
    }

    public var logLevel: Logger.Level { self.debug ? .debug : .info }

    /// Where every pool and listener of this server connects.
    public var databaseTarget: DatabaseTarget {
        self.database.target(searchPath: self.searchPath, timeZone: self.timeZone)
    }
}

/// A configuration value that stops the process before it binds a port.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// How this server reaches Grafana and how its sync outbox retries.
public struct GrafanaSettings: Sendable {
    public var enabled: Bool
    public var url: String
    public var username: String
    public var password: String
    public var timeoutSeconds: Int
    public var retryLimitSeconds: Int
    public var resyncIntervalSeconds: Int

    public init(
        enabled: Bool, url: String, username: String, password: String, timeoutSeconds: Int = 10,
        retryLimitSeconds: Int = 300, resyncIntervalSeconds: Int = 3600
    ) {
        self.enabled = enabled
        self.url = url
        self.username = username
        self.password = password
        self.timeoutSeconds = timeoutSeconds
        self.retryLimitSeconds = retryLimitSeconds
        self.resyncIntervalSeconds = resyncIntervalSeconds
    }

    /// Delay before the next attempt after `attempts` failed ones: 10 s, doubling, at most `retryLimitSeconds`.
    public func retryDelay(afterAttempts attempts: Int) -> Int {
        min(self.retryLimitSeconds, 10 << min(max(attempts - 1, 0), 20))
    }
}

/// The event scheduler's settings (plus bounds on retries and parallel sends).
public struct SchedulerSettings: Sendable {
    public var enabled: Bool
    public var precisionSeconds: Int
    public var retryLimitSeconds: Int
    public var maxAttempts: Int
    public var workers: Int

    /// Delay before attempt `n + 1` after `n` failed ones: 10 s, doubling, at most `retryLimitSeconds`.
    public func retryDelay(afterAttempts attempts: Int) -> Int64 {
        let doubled = 10 << min(max(attempts - 1, 0), 20)
        return Int64(min(self.retryLimitSeconds, doubled))
    }
}

/// What a limit bounds (README "Limits"): everything the user holds at once, or each task alone (the original's behaviour).
public enum LimitScope: String, Sendable {
    case concurrent, task
}

/// Node status, outages and capacity alerts.
public struct OperationsSettings: Sendable {
    /// A collector's report older than this reads as `unknown`.
    public var statusStaleSeconds = 900
    /// Alertmanager alert names that mean "this node is down".
    public var nodeDownAlerts: Set<String> = ["NodeDown"]
    /// Owners of reservations starting within this many hours of an outage are told of it (running ones always).
    public var downNoticeHours = 24
    /// Bookings on a down node that start within this many minutes are refused.
    public var bookingGuardMinutes = 60
    /// How far ahead capacity alerts look; 0 turns them off.
    public var capacityHorizonHours = 24
    /// The booked share at which a capacity alert fires; it resolves below this minus `capacityHysteresis`.
    public var capacityThreshold = 0.9
    public static let capacityHysteresis = 0.05
    /// Changes closer together than this are evaluated in one capacity pass.
    public var capacityMinIntervalSeconds = 10

    public init() {}
}
