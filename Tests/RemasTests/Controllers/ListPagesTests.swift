import Foundation
import Hummingbird
import Testing

@testable import Remas

/// Lists the wire returns whole are read in keyset pages (`ListPages`) and take `offset`/`limit`.
@Suite struct ListPagesTests {
    /// 1,203 nodes: more than two pages of `NodeList` (500 rows). The streamed answer is the document one `json_agg`
    /// over the whole table builds (the same JSON; `json_agg` separates elements with a line break), and it took one
    /// statement per page.
    @Test func longListsAreStreamedWhole() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let resource = try await t.makeResource("cores")
            try await t.db.execute(
                "INSERT INTO nodes (name, description) SELECT 'bulk' || g, 'node ' || g FROM generate_series(1, 1203) g", logger: t.logger)
            try await t.db.execute(
                "INSERT INTO node_resources (node_id, resource_id, amount) SELECT id, \(resource), id % 7 + 1 FROM nodes", logger: t.logger)
            let expected = try await t.db.text(
                "SELECT json_agg(x ORDER BY x.id)::text FROM (\(unescaped: NodeSQL.rows)) x", logger: t.logger)
            let reply = try await t.request(.get, "/node", token: admin)
            #expect(reply.status == .ok)
            #expect(sameJSON(reply.body, expected))
            #expect(reply.array.count == 1203)
            #expect(reply.headers[.contentLength] == nil)
            // Three pages (500 + 500 + 203) and at most the caller's token check.
            let statements = try await t.statements { _ = try await t.request(.get, "/node", token: admin) }
            #expect(statements == 3 || statements == 4)

            // A short list keeps its length and one statement.
            let one = try await t.request(.get, "/resource", token: admin)
            #expect(one.headers[.contentLength] == String(one.body.utf8.count))
            #expect(ids(one.array) == [resource])
        }
    }

    @Test func offsetAndLimitSelectAWindow() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            try await t.db.execute("INSERT INTO nodes (name) SELECT 'bulk' || g FROM generate_series(1, 1203) g", logger: t.logger)
            let all = try await t.db.query("SELECT id FROM nodes ORDER BY id", logger: t.logger).map { try $0.decode(Int.self) }
            #expect(all.count == 1203)
            func window(_ query: String) async throws -> [Int] {
                let reply = try await t.request(.get, "/node?\(query)", token: admin)
                #expect(reply.status == .ok, "\(query): \(reply.body)")
                return ids(reply.array)
            }
            #expect(try await window("limit=10") == Array(all[0..<10]))
            #expect(try await window("offset=5&limit=10") == Array(all[5..<15]))
            #expect(try await window("offset=100&limit=700") == Array(all[100..<800]))  // across two pages
            #expect(try await window("offset=499&limit=2") == Array(all[499..<501]))
            #expect(try await window("offset=1200") == Array(all[1200...]))
            #expect(try await window("offset=1") == Array(all[1...]))
            #expect(try await window("limit=500") == Array(all[0..<500]))  // exactly one page
            #expect(try await window("limit=1000") == Array(all[0..<1000]))  // exactly two pages
            #expect(try await window("limit=0") == [])
            #expect(try await window("offset=5000") == [])
            #expect(try await window("limit=0&offset=5000") == [])

            // A list of one owner: the key and the window together.
            let (ada, adaToken) = try await t.userWithToken("ada")
            let bob = try await t.makeUser("bob")
            for owner in [ada, bob, ada, ada, bob, ada] {
                try await t.db.execute(
                    "INSERT INTO tasks (name, start_time, end_time, owner_id) VALUES ('t', '2031-01-01 10:00', '2031-01-01 11:00', \(owner))",
                    logger: t.logger)
            }
            let adas = try await t.db.query("SELECT id FROM tasks WHERE owner_id = \(ada) ORDER BY id", logger: t.logger)
                .map { try $0.decode(Int.self) }
            let page = try await t.request(.get, "/task/user/\(ada)?offset=1&limit=2", token: adaToken)
            #expect(ids(page.array) == Array(adas[1..<3]))
            #expect(page.array.allSatisfy { ($0["owner"] as? [String: Any])?["id"] as? Int == ada })
        }
    }

    /// Heavy documents take small pages (`UserList`: 50): users that embed their tasks, read across pages, equal the
    /// single document.
    @Test func heavyDocumentsAcrossPages() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            try await t.db.execute(
                """
                INSERT INTO users (name, surname, uid, username, email, password, group_id)
                SELECT 'n' || g, 's' || g, 50000 + g, 'user' || g, 'user' || g || '@example.org', 'x', 3 FROM generate_series(1, 130) g
                """, logger: t.logger)
            try await t.db.execute(
                """
                INSERT INTO tasks (name, start_time, end_time, owner_id)
                SELECT 'task', timestamp '2031-01-01' + g * interval '1 hour', timestamp '2031-01-01' + (g + 1) * interval '1 hour', u.id
                FROM users u CROSS JOIN generate_series(1, 3) g
                """, logger: t.logger)
            let expected = try await t.db.text(
                "SELECT json_agg(\(unescaped: JSONSQL.userFull("u")) ORDER BY u.id)::text FROM users u", logger: t.logger)
            let reply = try await t.request(.get, "/user", token: admin)
            #expect(reply.status == .ok)
            #expect(sameJSON(reply.body, expected))
            #expect(reply.array.count == 131)
            let window = try await t.request(.get, "/user?offset=48&limit=5", token: admin)
            #expect(ids(window.array) == Array(ids(reply.array)[48..<53]))
        }
    }

    @Test func badWindowsAre422() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            for (path, field) in [
                ("/node?limit=-1", "query.limit"), ("/user?offset=x", "query.offset"), ("/task?limit=1.5", "query.limit"),
                ("/limit?offset=-3", "query.offset"), ("/group?limit=99999999999999999999", "query.limit"),
            ] {
                let reply = try await t.request(.get, path, token: admin)
                #expect(reply.status == .unprocessableContent, "\(path)")
                #expect(reply.detail?.hasSuffix(field) == true, "\(path): \(reply.body)")
            }
        }
    }
}

/// Equal as JSON values (a mismatch is reported without printing the documents, which are large).
private func sameJSON(_ a: String, _ b: String?) -> Bool {
    guard let b, let x = try? JSONSerialization.jsonObject(with: Data(a.utf8)), let y = try? JSONSerialization.jsonObject(with: Data(b.utf8))
    else { return false }
    return (x as? NSArray)?.isEqual(y) ?? false
}
