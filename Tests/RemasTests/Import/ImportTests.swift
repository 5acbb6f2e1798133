import Foundation
import Hummingbird
import HummingbirdBcrypt
import HummingbirdTesting
import PostgresNIO
import Testing

@testable import Remas

/// `remas import`: a database in the original REMAS schema (Fixtures/remas-original.sql) copied into a fresh remas
/// schema, ids kept, bcrypt hashes still logging in, refusals reported, a second run changing nothing.
@Suite struct ImportTests {
    /// Creates the original's schema with the fixture's rows in a schema of its own; returns its connection settings.
    static func withSource(_ body: @Sendable (DatabaseTarget) async throws -> Void) async throws {
        let schema = "remas_src_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let source = try TestDatabase.configuration(schema: schema).databaseTarget
        let sql = try String(
            contentsOf: RepositoryFiles.url("Tests/RemasTests/Fixtures/remas-original.sql"),
            encoding: .utf8)
        let connection = try await source.connect(id: 1, logger: TestDatabase.logger)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"), logger: TestDatabase.logger)
            for statement in SQLSplitter.split(sql) {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: TestDatabase.logger)
            }
            let hash = Bcrypt.hash("password", cost: 4)
            try await connection.query(#"UPDATE "user" SET password = \#(hash)"#, logger: TestDatabase.logger)
            try await body(source)
        } catch {
            try? await connection.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"), logger: TestDatabase.logger)
            try? await connection.close()
            throw error
        }
        try await connection.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"), logger: TestDatabase.logger)
        try await connection.close()
    }

    @Test func importsKeepsIdsReportsRefusalsAndIsIdempotent() async throws {
        try await Self.withSource { source in
            try await withApp { t in
                let importer = RemasImporter(source: source, target: t.db, logger: t.logger)

                // Dry run: the full report, nothing written.
                let dry = try await importer.run(dryRun: true)
                #expect(dry.dryRun)
                #expect(dry.changed > 0)
                #expect(try await t.count("SELECT count(*)::int FROM users") == 1)
                #expect(try await t.count("SELECT count(*)::int FROM tasks") == 0)

                let report = try await importer.run(dryRun: false)
                let table = Dictionary(uniqueKeysWithValues: report.tables.map { ($0.table, $0) })
                #expect(table["users"]?.inserted == 2 && table["users"]?.updated == 1)  // administrator updated from REMAS
                #expect(table["tasks"]?.inserted == 3)
                let refusedTasks = table["tasks"]?.refused.joined(separator: "\n") ?? ""
                #expect(refusedTasks.contains("task 0 'zero': id 0 is not positive"), "\(refusedTasks)")
                #expect(refusedTasks.contains("task 4 'nothing': reserves nothing"), "\(refusedTasks)")
                #expect(refusedTasks.contains("task 5 'backwards': starts"), "\(refusedTasks)")
                #expect(table["limits"]?.refused.count == 2)
                #expect(table["limits"]?.refused.contains { $0.contains("'orphan'") && $0.contains("no user and no group") } == true)
                #expect(table["node_resources"]?.refused.count == 1)
                #expect(table["allocations"]?.refused.count == 2)  // task 4's and task 6's zero amounts
                #expect(report.notes.contains { $0.contains("1 task(s) had a stored status behind the clock") }, "\(report.notes)")
                #expect(report.text.contains("refused from tasks:"))

                // Ids, relations and values as in REMAS.
                #expect(try await t.db.text("SELECT username FROM users WHERE id = 7", logger: t.logger) == "bob")
                #expect(try await t.count("SELECT parent_id FROM groups WHERE id = 5") == 4)
                #expect(try await t.db.text("SELECT unit FROM resources WHERE id = 2", logger: t.logger) == "Bytes (IEC)")
                #expect(try await t.count("SELECT count(*)::int FROM allocations WHERE task_id = 1") == 2)
                #expect(try await t.count("SELECT count(*)::int FROM allocations WHERE task_id = 6") == 1)
                #expect(try await t.count("SELECT count(*)::int FROM task_tag_links") == 2)
                #expect(try await t.count("SELECT count(*)::int FROM limit_nodes") == 3)
                #expect(try await t.count("SELECT count(*)::int FROM notification_groups WHERE group_id = 4") == 1)
                // Events as bookings make them: task 2 is over (done), task 1's start, end and the reminder of its
                // owner's group (Physics → Theory inherits) are pending; bob's direct reminder for task 6 too.
                #expect(try await t.count("SELECT count(*)::int FROM events WHERE task_id = 2 AND state = 'done'") == 2)
                #expect(try await t.count("SELECT count(*)::int FROM events WHERE task_id = 1 AND state = 'pending'") == 3)
                #expect(try await t.count("SELECT count(*)::int FROM events WHERE task_id = 6 AND notification_id = 1") == 1)

                // The REMAS password hash logs in; the API sees the imported data; new ids come after the copied ones.
                let login = try await t.request(
                    .post, "/authentication/token", headers: [.contentType: "application/x-www-form-urlencoded"], body: "username=alice&password=password")
                #expect(login.status == .ok)
                let token = try #require(login.object["access_token"] as? String)
                let task = try await t.request(.get, "/task/1", token: token)
                #expect(task.status == .ok && task.object["name"] as? String == "training run")
                #expect(task.object["status"] as? String == "scheduled")
                #expect(try await t.request(.get, "/task/2", token: token).object["status"] as? String == "finished")
                let booked = try await t.book(token, start: "2099-04-01 10:00", end: "2099-04-01 11:00", [(2, 1, 1)])
                #expect(booked.status == .ok)
                #expect((booked.object["id"] as? Int ?? 0) > 6)
                // The administrator's password came from REMAS too (which revoked the test's earlier admin token).
                let admin = try await t.request(
                    .post, "/authentication/token", headers: [.contentType: "application/x-www-form-urlencoded"],
                    body: "username=administrator&password=password")
                let user = try await t.request(.post, "/user", token: try #require(admin.object["access_token"] as? String),
                                               json: #"{"uid":5555,"username":"carol","email":"carol@lab.example","password":"password"}"#)
                #expect(user.status == .created && (user.object["id"] as? Int ?? 0) > 7)

                // A second run changes nothing.
                let again = try await importer.run(dryRun: false)
                #expect(again.changed == 0, "\(again.text)")
            }
        }
    }
}
