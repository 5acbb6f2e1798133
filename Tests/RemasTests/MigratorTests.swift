import Foundation
import PostgresNIO
import Testing

@testable import Remas

@Suite struct SQLSplitterTests {
    @Test func splitsOnSemicolons() {
        #expect(SQLSplitter.split("SELECT 1; SELECT 2;\n\n") == ["SELECT 1", "SELECT 2"])
    }

    @Test func ignoresSemicolonsInStringsIdentifiersAndComments() {
        let sql = """
            -- a comment; with a semicolon
            INSERT INTO t VALUES ('a;b', 'it''s; fine', E'x\\';y');
            /* block; /* nested; */ still comment; */
            SELECT "weird;name" FROM t;
            """
        let parts = SQLSplitter.split(sql)
        #expect(parts.count == 2)
        #expect(parts[0].hasPrefix("INSERT INTO t VALUES ('a;b', 'it''s; fine', E'x\\';y')"))
        #expect(parts[1] == "SELECT \"weird;name\" FROM t")
    }

    @Test func keepsDollarQuotedBodies() {
        let sql = """
            CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;
            CREATE FUNCTION g() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 2; END; $body$;
            SELECT $1;
            """
        let parts = SQLSplitter.split(sql)
        #expect(parts.count == 3)
        #expect(parts[0].hasSuffix("$$ SELECT 1; $$"))
        #expect(parts[1].hasSuffix("$body$ BEGIN RETURN 2; END; $body$"))
        #expect(parts[2] == "SELECT $1")
    }

    @Test func dropsCommentOnlyPieces() {
        #expect(SQLSplitter.split("-- only a comment\n;\n/* x */;").isEmpty)
    }

    @Test func realMigrationsSplitCleanly() throws {
        let migrator = try Migrator(directory: TestDatabase.migrationsPath)
        #expect(!migrator.files.isEmpty)
        for file in migrator.files {
            #expect(!SQLSplitter.split(file.sql).isEmpty)
        }
    }
}

@Suite struct MigratorTests {
    let logger = TestDatabase.logger

    @Test func secondRunIsANoOp() async throws {
        try await TestDatabase.withSchema(seed: false) { _, configuration in
            try await withDatabase(configuration, logger: self.logger) { db in
                let migrator = try Migrator(directory: TestDatabase.migrationsPath)
                let again = try await migrator.migrate(db: db, logger: self.logger)
                #expect(again.isEmpty)
                let count = try await db.int("SELECT count(*)::int FROM schema_migrations", logger: self.logger)
                #expect(count == migrator.files.count)
            }
        }
    }

    @Test func changedChecksumIsRefused() async throws {
        try await TestDatabase.withSchema(seed: false) { _, configuration in
            try await withDatabase(configuration, logger: self.logger) { db in
                let real = try Migrator(directory: TestDatabase.migrationsPath)
                var files = real.files
                let first = files[0]
                files[0] = .init(version: first.version, name: first.name, sql: first.sql + "\n-- edited\n")
                await #expect(throws: Migrator.MigrationError.self) {
                    try await Migrator(files: files).migrate(db: db, logger: self.logger)
                }
            }
        }
    }

    @Test func unknownAppliedVersionIsRefused() async throws {
        try await TestDatabase.withSchema(seed: false) { _, configuration in
            try await withDatabase(configuration, logger: self.logger) { db in
                let real = try Migrator(directory: TestDatabase.migrationsPath)
                await #expect(throws: Migrator.MigrationError.self) {
                    try await Migrator(files: Array(real.files.dropLast())).migrate(db: db, logger: self.logger)
                }
            }
        }
    }

    @Test func failingFileIsRolledBackWhole() async throws {
        try await TestDatabase.withSchema(seed: false) { _, configuration in
            try await withDatabase(configuration, logger: self.logger) { db in
                let real = try Migrator(directory: TestDatabase.migrationsPath)
                let bad = Migrator.File(version: "9999", name: "9999_broken.sql", sql: "CREATE TABLE half_done (id int); SELECT nonsense_fn();")
                await #expect(throws: Migrator.MigrationError.self) {
                    try await Migrator(files: real.files + [bad]).migrate(db: db, logger: self.logger)
                }
                let exists = try await db.exists("SELECT 1 FROM pg_tables WHERE tablename = 'half_done' AND schemaname = current_schema()", logger: self.logger)
                #expect(!exists)
                let recorded = try await db.exists("SELECT 1 FROM schema_migrations WHERE version = '9999'", logger: self.logger)
                #expect(!recorded)
            }
        }
    }

    @Test func concurrentMigratorsApplyOnce() async throws {
        try await TestDatabase.withSchema(seed: false) { schema, configuration in
            // A second, empty schema migrated by two clients at once.
            let other = schema + "_b"
            let config = try TestDatabase.configuration(schema: other)
            try await withDatabase(config, logger: self.logger) { db in
                try await db.execute(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(other)"), logger: self.logger)
            }
            let migrator = try Migrator(directory: TestDatabase.migrationsPath)
            let results = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        try await withDatabase(config, logger: self.logger) { db in try await migrator.migrate(db: db, logger: self.logger) }
                    }
                }
                return try await group.reduce(into: [[String]]()) { $0.append($1) }
            }
            #expect(results.map(\.count).sorted() == [0, migrator.files.count])
            try await TestDatabase.drop(other, configuration)
        }
    }
}

@Suite struct ConfigurationTests {
    let base = ["SECRET_KEY": String(repeating: "k", count: 32)]

    @Test func defaultsFollowTheOriginal() throws {
        let c = try AppConfiguration(environment: base)
        #expect(c.port == 8000)
        #expect(c.host == "0.0.0.0")
        #expect(c.accessTokenMinutes == 30)
        #expect(c.refreshTokenMinutes == 120)
        #expect(c.corsOrigins == ["*"])
        #expect(c.grafanaRedirectURL == "http://localhost:3000/")
        #expect(c.database.port == 15432)
        #expect(c.database.database == "remas_main_db")
    }

    @Test func missingSecretIsRefused() {
        #expect(throws: ConfigurationError.self) { try AppConfiguration(environment: [:]) }
        #expect(throws: ConfigurationError.self) { try AppConfiguration(environment: ["SECRET_KEY": "short"]) }
        // The placeholder of docker/remas.env is refused however long it is.
        #expect(throws: ConfigurationError.self) {
            try AppConfiguration(environment: ["SECRET_KEY": "CHANGE-ME-run-openssl-rand-hex-32-and-paste-it-here"])
        }
    }

    @Test func malformedValuesNameTheVariable() {
        for (key, value) in [("PORT", "eighty"), ("TOKEN_ACCESS_EXPIRE_MINUTES", "-1"), ("DEBUG", "maybe"), ("ALGORITHM", "RS256"),
            ("TZ", "Mars/Olympus"), ("DATABASE_URL", "mysql://x/y"), ("GRAFANA_URL", "not a url")]
        {
            var env = base
            env[key] = value
            do {
                _ = try AppConfiguration(environment: env)
                Issue.record("\(key)=\(value) was accepted")
            } catch {
                #expect("\(error)".contains(key))
            }
        }
    }

    @Test func databaseURLIsParsed() throws {
        var env = base
        env["DATABASE_URL"] = "postgresql://u%40x:p%2Fw@db.local:6543/remas"
        let c = try AppConfiguration(environment: env)
        #expect(c.database.username == "u@x")
        #expect(c.database.password == "p/w")
        #expect(c.database.host == "db.local")
        #expect(c.database.port == 6543)
        #expect(c.database.database == "remas")
    }
}
