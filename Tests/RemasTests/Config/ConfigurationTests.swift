import Foundation
import PostgresNIO
import Testing

@testable import Remas

@Suite struct ConfigurationTests {
    let base = ["SECRET_KEY": String(repeating: "k", count: 32)]

    /// The README's table is the one list of settings: every variable the configuration reads is in it.
    @Test func everyVariableReadIsDocumentedInTheReadme() throws {
        let root = RepositoryFiles.root
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let source = try String(contentsOf: root.appendingPathComponent("Sources/Remas/Config/AppConfiguration.swift"), encoding: .utf8)
        let section = readme.components(separatedBy: "## Configuration").dropFirst().first?.components(separatedBy: "\n## ").first ?? ""
        let documented = Set(section.split(separator: "\n").filter { $0.hasPrefix("| `") }.flatMap { line in
            line.split(separator: "|").first.map { cell in cell.split(separator: "`").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) } } ?? []
        })
        let read = Set(source.matches(of: /(?:env\[|int\(|bool\(|string\()"([A-Z][A-Z0-9_]+)"/).map { String($0.output.1) })
        #expect(read.count > 40)
        #expect(read.subtracting(documented).isEmpty, "read but not in the README's table: \(read.subtracting(documented).sorted())")
    }

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

    /// libpq's multi-host form: every host in order, `target_session_attrs` (several hosts without it: read-write).
    @Test func multiHostDatabaseURLs() throws {
        var url = try DatabaseURL(parsing: "postgresql://u:p@h1:5432,h2:5433,[::1]:6000,h4/remas?target_session_attrs=read-write&x=1")
        #expect(url.hosts.map { "\($0.host)/\($0.port)" } == ["h1/5432", "h2/5433", "::1/6000", "h4/5432"])
        #expect(url.sessionAttributes == .readWrite && url.database == "remas" && url.username == "u" && url.password == "p")
        #expect(url.target(searchPath: nil, timeZone: .gmt).servers.map(\.label) == ["h1:5432", "h2:5433", "[::1]:6000", "h4:5432"])
        url = try DatabaseURL(parsing: "postgresql://u@h1,h2/remas")
        #expect(url.sessionAttributes == .readWrite, "several hosts: a writable one")
        url = try DatabaseURL(parsing: "postgresql://u@h1,h2/remas?target_session_attrs=any")
        #expect(url.sessionAttributes == .any)
        url = try DatabaseURL(parsing: "postgresql://u@h1/remas?search_path=src%20schema")
        #expect(url.sessionAttributes == .any && url.parameters["search_path"] == "src schema" && url.host == "h1" && url.port == 5432)
        url = try DatabaseURL(parsing: "postgresql://u@/remas")
        #expect(url.host == "localhost")
        for bad in [
            "postgresql://u@h1,h2/remas?target_session_attrs=standby", "postgresql://u@h1:99999/remas", "postgresql://u@h1:x/remas",
            "postgresql://u@[::1/remas", "postgresql://u@h1,h2", "mysql://u@h1/remas", "h1:5432/remas",
        ] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try DatabaseURL(parsing: bad) }
        }
    }
}
