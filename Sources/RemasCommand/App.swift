import ArgumentParser
import Foundation
import Synchronization
import Hummingbird
import Logging
import Remas
import ServiceLifecycle

/// `remas`: the REMAS-compatible reservation server.
@main
struct RemasCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remas",
        abstract: "Book node resources of a shared cluster on a calendar (REMAS-compatible API server).",
        subcommands: [Serve.self, Migrate.self, Seed.self, SetPassword.self, Events.self, GrafanaInit.self, OpenAPI.self, Import.self, Purge.self, Capacity.self, Report.self],
        defaultSubcommand: Serve.self)
}

/// Reads the configuration or exits with a one-line message naming the bad variable.
func loadConfiguration(requireSecret: Bool) -> AppConfiguration {
    do {
        return try AppConfiguration(environment: ProcessInfo.processInfo.environment, requireSecret: requireSecret)
    } catch {
        FileHandle.standardError.write(Data("remas: configuration error: \(error)\n".utf8))
        exit(2)
    }
}

func makeLogger(_ configuration: AppConfiguration) -> Logger {
    var logger = Logger(label: "remas")
    logger.logLevel = configuration.logLevel
    return logger
}

func runMigrations(_ configuration: AppConfiguration, upTo last: String? = nil, logger: Logger) async throws {
    var stepping = try Migrator(directory: configuration.migrationsPath)
    stepping.lastVersion = last
    let migrator = stepping
    let applied = try await withDatabase(configuration, logger: logger) { db in
        try await migrator.migrate(db: db, logger: logger)
    }
    logger.info("migrations up to date", metadata: ["applied_now": "\(applied.count)"])
}

func runSeed(_ configuration: AppConfiguration, logger: Logger) async throws {
    let adminPassword = ProcessInfo.processInfo.environment["REMAS_ADMIN_PASSWORD"]
    let result = try await withDatabase(configuration, logger: logger) { db in
        try await Seeder.seed(db: db, adminPassword: adminPassword, bcryptCost: configuration.bcryptCost, logger: logger)
    }
    if let password = result.createdAdminPassword {
        let note = adminPassword?.isEmpty == false ? "(from REMAS_ADMIN_PASSWORD)" : "(generated; shown only this once)"
        print("remas: created the administrator: username 'administrator', password '\(password)' \(note)")
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the HTTP API (migrates first when REMAS_AUTO_MIGRATE=true).")

    func run() async throws {
        let configuration = loadConfiguration(requireSecret: true)
        configureEventLoops(configuration)
        let logger = makeLogger(configuration)
        do {
            if configuration.autoMigrate { try await runMigrations(configuration, logger: logger) }
            let app = try await buildApplication(
                configuration: configuration, extraServices: [StopWatchdog(seconds: 10, logger: logger)], logger: logger)
            try await app.runService()
        } catch {
            FileHandle.standardError.write(Data("remas: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending migrations from REMAS_MIGRATIONS_PATH (default Migrations/).")

    @Option(name: .customLong("to"), help: "Stop after this version (e.g. 0011): upgrade in steps, or build an older schema.")
    var last: String?

    func validate() throws {
        if let last, last.count != 4 || !last.allSatisfy(\.isNumber) { throw ValidationError("--to takes a four-digit version, e.g. 0011") }
    }

    func run() async throws {
        let configuration = loadConfiguration(requireSecret: false)
        do {
            try await runMigrations(configuration, upTo: self.last, logger: makeLogger(configuration))
        } catch {
            FileHandle.standardError.write(Data("remas: migration failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create the default groups and the administrator if missing.")

    func run() async throws {
        let configuration = loadConfiguration(requireSecret: false)
        do {
            try await runSeed(configuration, logger: makeLogger(configuration))
        } catch {
            FileHandle.standardError.write(Data("remas: seed failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct SetPassword: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-password", abstract: "Set a user's password (reads the new password from standard input).")

    @Argument(help: "The username.") var username: String

    func run() async throws {
        let configuration = loadConfiguration(requireSecret: false)
        let logger = makeLogger(configuration)
        guard let password = readLine(strippingNewline: true), !password.isEmpty else {
            FileHandle.standardError.write(Data("remas: no password on standard input\n".utf8))
            throw ExitCode(2)
        }
        let username = self.username
        let updated = try await withDatabase(configuration, logger: logger) { db in
            try await PasswordAdmin.setPassword(db: db, username: username, password: password, cost: configuration.bcryptCost, logger: logger)
        }
        guard updated else {
            FileHandle.standardError.write(Data("remas: no user named '\(username)'\n".utf8))
            throw ExitCode(1)
        }
        print("remas: password of '\(username)' changed")
    }
}

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the scheduler's pending and failed events (oldest due first), with attempts and last error.")

    @Option(help: "Print at most this many events.") var limit = 100

    func run() async throws {
        let configuration = loadConfiguration(requireSecret: false)
        let logger = makeLogger(configuration)
        let limit = self.limit
        let rows = try await withDatabase(configuration, logger: logger) { db in
            try await EventRepository(db: db).unfinished(limit: limit, logger: logger)
        }
        guard !rows.isEmpty else {
            print("no pending or failed events")
            return
        }
        print(["id", "state", "type", "due", "task", "notification", "attempts", "name", "last error"].joined(separator: "\t"))
        for row in rows {
            let fields = [
                String(row.id), row.state, row.type, row.due.spaced, row.taskID.map(String.init) ?? "-", row.notificationID.map(String.init) ?? "-",
                String(row.attempts), row.name, row.lastError ?? "",
            ]
            print(fields.map { $0.replacingOccurrences(of: "\t", with: " ").replacingOccurrences(of: "\n", with: " ") }.joined(separator: "\t"))
        }
    }
}

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Reports.", subcommands: [Usage.self, Rollup.self])

    struct Usage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "What was reserved (amount x hours, tasks, peak per resource) over a period, as GET /report/usage answers an admin.")

        @Option(help: "The period's start (YYYY-MM-DD[ HH:MM], local time of TZ).") var start: String
        @Option(help: "The period's end (exclusive).") var end: String
        @Option(help: "user, group, node or resource.") var by = "user"
        @Flag(help: "CSV (RFC 4180) instead of JSON.") var csv = false

        func run() async throws {
            let configuration = loadConfiguration(requireSecret: false)
            let logger = makeLogger(configuration)
            let zone = configuration.timeZone
            guard let from = LocalDateTime.parse(self.start, zone: zone), let to = LocalDateTime.parse(self.end, zone: zone) else {
                throw ValidationError("--start and --end must be datetimes (YYYY-MM-DD[ HH:MM])")
            }
            guard let grouping = ReportRepository.Grouping(rawValue: self.by) else {
                throw ValidationError("--by must be user, group, node or resource")
            }
            let text = try await withDatabase(configuration, logger: logger) { db in
                do {
                    return try await UsageReport.make(
                        db: db, from: from, to: to, by: grouping, onlyOwner: nil, csv: self.csv, settings: configuration.usage, zone: zone,
                        logger: logger)
                } catch let error as AppError {
                    throw ValidationError(error.detail)
                }
            }
            print(text, terminator: self.csv ? "" : "\n")
        }
    }

    struct Rollup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compute the day figures of usage reports for every closed day without them now (the scheduler does it every USAGE_ROLLUP_INTERVAL_SECONDS).")

        @Option(help: "A day is closed this many hours after its end.") var graceHours = 1

        func run() async throws {
            let configuration = loadConfiguration(requireSecret: false)
            let logger = makeLogger(configuration)
            let grace = self.graceHours
            guard grace >= 0 else { throw ValidationError("--grace-hours must be 0 or more") }
            try await withDatabase(configuration, logger: logger) { db in
                let began = ContinuousClock.now
                let rolled = try await ReportRepository(db: db).rollUpPending(graceHours: grace, logger: logger)
                print(String(format: "rolled up %d day(s) in %.1f s", rolled, (ContinuousClock.now - began).timeInterval))
            }
        }
    }
}

struct Capacity: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a capacity pass now (as the server's monitor does: alert changes are mailed) and print every resource's peak booked share.")

    @Option(help: "Run this many passes and print how long each took (benchmarks).") var passes = 1
    @Flag(help: "Print only the pass times.") var quiet = false

    func run() async throws {
        let configuration = loadConfiguration(requireSecret: false)
        let logger = makeLogger(configuration)
        let (passes, quiet) = (max(1, self.passes), self.quiet)
        try await withDatabase(configuration, logger: logger) { db in
            let capacity = CapacityRepository(db: db)
            for _ in 0..<passes {
                let began = ContinuousClock.now
                let pass = try await capacity.evaluate(settings: configuration.operations, logger: logger)
                let ms = (ContinuousClock.now - began).timeInterval * 1000
                print(String(format: "pass: %.1f ms, %d alert change(s), %d share(s) written", ms, pass.transitions.count, pass.written))
            }
            guard !quiet else { return }
            print(["resource", "node", "peak share", "alert"].joined(separator: "\t"))
            for row in try await capacity.report(logger: logger) {
                print([row.resource, row.node.isEmpty ? "(cluster)" : row.node, String(format: "%.3f", row.ratio), row.firing ? "FIRING" : "ok"]
                    .joined(separator: "\t"))
            }
        }
    }
}

struct GrafanaInit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grafana-init",
        abstract: "Sync every user to Grafana now: user, contact point, folders and alert rules (replaces init_grafana.py).")

    @Option(help: "Give the Grafana user of the REMAS user 'administrator' this password (the original used 'admin').")
    var adminPassword: String?

    func run() async throws {
        var loaded = loadConfiguration(requireSecret: true)
        // The command is the operator asking for a sync: it runs even where the server's GRAFANA_ENABLED is off.
        loaded.grafana.enabled = true
        let configuration = loaded
        let logger = makeLogger(configuration)
        let settings = configuration.grafana
        let passwords = self.adminPassword.map { ["administrator": $0] } ?? [:]
        let started = ContinuousClock.now
        let result = try await withDatabase(configuration, logger: logger) { db in
            let worker = GrafanaSyncWorker(
                settings: settings, db: db, secretKey: configuration.secretKey,
                clock: WallClock(zone: configuration.timeZone), logger: logger)
            do {
                let result = try await worker.syncEveryone(passwords: passwords)
                await worker.shutdown()
                return result
            } catch {
                await worker.shutdown()
                throw error
            }
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        print("remas: \(result.synced.count) user(s) synced to \(settings.url) in \(String(format: "%.2f", seconds)) s")
        for (username, error) in result.failed.sorted(by: { $0.key < $1.key }) {
            print("remas: \(username): \(error)")
        }
        if !result.failed.isEmpty {
            print("remas: \(result.failed.count) user(s) failed; the scheduler retries them")
            throw ExitCode(1)
        }
    }
}

struct OpenAPI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openapi", abstract: "Print the OpenAPI document that GET /openapi.json serves (for client generators).")

    func run() async throws {
        let configuration = loadConfiguration(requireSecret: false)
        FileHandle.standardOutput.write(APIDocument.document(metricsEnabled: configuration.metricsEnabled).jsonData)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }
}

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy an existing REMAS database into this one (ids kept; idempotent; one transaction).",
        discussion: """
            --from takes the REMAS database's URL, e.g. postgresql://remas:secret@old-host:5432/remas_main_db; add \
            ?search_path=SCHEMA when its tables are not in the user's default schema. The target is DATABASE_URL, \
            migrated first. Rows REMAS accepted that remas refuses are listed with the reason and left out.
            """)

    @Option(help: "URL of the REMAS database to copy from.") var from: String
    @Flag(help: "Show what would be copied and refused, then roll back.") var dryRun = false

    func run() async throws {
        let configuration = loadConfiguration(requireSecret: false)
        let logger = makeLogger(configuration)
        do {
            let url = try DatabaseURL(parsing: self.from)
            try await runMigrations(configuration, logger: logger)
            let output = ProgressOutput(unit: "rows")
            let writing = Atomic<Bool>(false)
            let began = ContinuousClock.now
            output.stage("reading the REMAS database")
            let report = try await withDatabase(configuration, logger: logger) { db in
                try await RemasImporter(
                    source: url.target(searchPath: url.parameters["search_path"], timeZone: configuration.timeZone), target: db, logger: logger
                ) { step in
                    switch step {
                    case .read(let table, let rows): output.transient("  read \(table): \(rows) rows")
                    case .wrote(_, let rows, let total):
                        if !writing.exchange(true, ordering: .relaxed) { output.stage("writing \(total) rows in one transaction") }
                        output.progress(done: rows, total: total)
                    case .committing: output.stage("committing")
                    }
                }.run(dryRun: self.dryRun)
            }
            output.finish("\(self.dryRun ? "dry run" : "import") done in \(String(format: "%.1f", (ContinuousClock.now - began).timeInterval)) s")
            print(report.text)
        } catch {
            FileHandle.standardError.write(Data("remas: import failed: \(String(reflecting: error))\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct Purge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move finished tasks that ended before a day out of the database, in batches (usage reports keep covering them).",
        discussion: """
            First the day figures of usage reports are computed for every day before --finished-before and made final; \
            then the tasks that ended before that day (local midnight, TZ) go with their allocations, events, tags and \
            series links, --batch-size at a time, each batch one short transaction. With --archive, one CSV row per \
            allocation is written (and flushed) before each batch commits; an existing archive is appended to. \
            Progress goes to standard error (rewritten in place on a terminal).
            """)

    @Option(help: "Purge tasks that ended before this day (YYYY-MM-DD, local time of TZ).") var finishedBefore: String
    @Option(help: "Write the purged tasks to this CSV file (RFC 4180) first.") var archive: String?
    @Option(help: "Tasks per transaction.") var batchSize = 1_000

    func run() async throws {
        let configuration = loadConfiguration(requireSecret: false)
        let logger = makeLogger(configuration)
        guard self.finishedBefore.count == 10, LocalDateTime.parse(self.finishedBefore, zone: configuration.timeZone) != nil else {
            throw ValidationError("--finished-before must be a day, YYYY-MM-DD")
        }
        guard (1...100_000).contains(self.batchSize) else { throw ValidationError("--batch-size must be 1 to 100000") }
        let output = ProgressOutput(unit: "tasks")
        let began = ContinuousClock.now
        do {
            let summary = try await withDatabase(configuration, logger: logger) { db in
                try await HistoryPurge(db: db, batchSize: self.batchSize).run(
                    finishedBefore: self.finishedBefore, archive: self.archive, logger: logger
                ) { step in
                    switch step {
                    case .stage(let text): output.stage(text)
                    case .progress(let done, let total): output.progress(done: done, total: total)
                    }
                }
            }
            let seconds = String(format: "%.1f", (ContinuousClock.now - began).timeInterval)
            output.finish(
                "purged \(summary.tasks) task(s) with \(summary.allocations) allocation(s) in \(seconds) s; usage before \(summary.horizon) is kept as day figures")
        } catch let error as HistoryPurge.Failure {
            output.finish("remas: purge refused: \(error.description)")
            throw ExitCode(1)
        } catch {
            output.finish("remas: purge failed: \(String(reflecting: error))")
            throw ExitCode(1)
        }
    }
}
