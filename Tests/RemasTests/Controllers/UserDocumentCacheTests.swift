import Foundation
import Hummingbird
import PostgresNIO
import Testing

@testable import Remas

/// A user's document served from a replica's copy (`UserDocumentCache`, migration 0015): after any change of what it
/// shows, made through the API or straight in the database (as another replica would), the next answer is what a
/// build gives; without a change the copy is sent after one statement.
@Suite struct UserDocumentCacheTests {
    /// The document as a fresh build gives it, parsed.
    static func built(_ t: TestContext, _ id: Int) async throws -> NSDictionary? {
        guard let text = try await t.db.json(UserJSONStatement(id: id), logger: t.logger) else { return nil }
        return try JSONSerialization.jsonObject(with: Data(text.utf8)) as? NSDictionary
    }

    /// The document through `cache`, with the number of statements it took and whether a kept copy was sent (a copy was
    /// kept, and only its validator was read: a copy that fails it costs the build as well).
    static func served(_ t: TestContext, _ id: Int, _ cache: UserDocumentCache) async throws -> (NSDictionary?, statements: Int, hit: Bool) {
        let kept = cache.entry(id) != nil
        let counter = StatementCounter()
        let body = try await StatementCounter.$current.withValue(counter) {
            try await UserRepository(db: t.db).document(id: id, cache: cache, logger: t.logger)
        }
        let document = try body.map { try JSONSerialization.jsonObject(with: Data($0.readableBytesView)) as? NSDictionary } ?? nil
        return (document, counter.count, kept && counter.count == 1)
    }

    @Test func everyChangeOfTheDocumentIsSeen() async throws {
        try await withApp { t in
            let cache = UserDocumentCache(budget: 1 << 20)
            let admin = try await t.adminToken()
            let (user, token) = try await t.userWithToken("cached")
            let other = try await t.makeUser("other")
            let (nodes, resources) = try await t.cluster(nodes: 1, capacity: 8)

            var previous: NSDictionary?
            /// After a change: the first answer is a new build equal to the database's document and different from
            /// the one before; the second is the kept copy, after one statement.
            func expectChanged(_ what: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let first = try await Self.served(t, user, cache)
                let expected = try await Self.built(t, user)
                #expect(first.0 == expected, "\(what): not the database's document", sourceLocation: sourceLocation)
                #expect(!first.hit && first.0 != previous, "\(what): the old copy was sent", sourceLocation: sourceLocation)
                let second = try await Self.served(t, user, cache)
                #expect(second.hit && second.statements == 1 && second.0 == expected, "\(what): the copy was not kept", sourceLocation: sourceLocation)
                previous = expected
            }

            try await expectChanged("first read")
            let booked = try await t.book(token, name: "run", start: "2031-05-01 10:00", end: "2031-05-01 12:00", [(nodes[0], resources[0], 2)])
            let task = try #require(booked.object["id"] as? Int)
            try await expectChanged("a booking")
            var r = try await t.book(token, id: task, name: "run 2", start: "2031-05-01 10:00", end: "2031-05-01 13:00", [(nodes[0], resources[0], 2)])
            #expect(r.status == .ok, "\(r.body)")
            try await expectChanged("a task edited")
            r = try await t.request(
                .put, "/user", token: admin,
                json: #"{"id":\#(user),"name":"Renamed","surname":"S","username":"cached","email":"cached@example.org","uid":4242}"#)
            #expect(r.status == .ok, "\(r.body)")
            try await expectChanged("the user edited")
            try await t.db.execute("UPDATE groups SET description = 'the users' WHERE id = 3", logger: t.logger)
            try await expectChanged("the user's group edited")
            let limit = try await t.makeLimit("mine", amount: 4, user: user, resource: resources[0], nodes: nodes)
            try await expectChanged("a limit of the user")
            try await t.db.execute("UPDATE limits SET amount = 5 WHERE id = \(limit)", logger: t.logger)
            try await expectChanged("the limit edited")
            try await t.db.execute("UPDATE limits SET user_id = \(other) WHERE id = \(limit)", logger: t.logger)
            try await expectChanged("the limit given to another user")
            let tag = try await t.makeTag("tagged", user: user)
            try await expectChanged("a tag")
            try await t.db.execute("UPDATE task_tags SET name = 'retagged' WHERE id = \(tag)", logger: t.logger)
            try await expectChanged("the tag renamed")
            let created = try #require(try await t.db.int(
                "INSERT INTO notifications (name, owner_id) VALUES ('mine', \(user)) RETURNING id", logger: t.logger))
            try await expectChanged("a notification created by the user")
            let assigned = try #require(try await t.db.int(
                "INSERT INTO notifications (name, owner_id) VALUES ('theirs', \(other)) RETURNING id", logger: t.logger))
            try await t.db.execute("INSERT INTO notification_users (user_id, notification_id) VALUES (\(user), \(assigned))", logger: t.logger)
            try await expectChanged("a notification assigned to the user")
            try await t.db.execute("UPDATE notifications SET description = 'new words' WHERE id = \(assigned)", logger: t.logger)
            try await expectChanged("the assigned notification edited by its owner")
            try await t.db.execute("DELETE FROM notifications WHERE id IN (\(created), \(assigned))", logger: t.logger)
            try await expectChanged("both notifications deleted")
            r = try await t.request(.delete, "/task/\(task)", token: token)
            #expect(r.status == .ok)
            try await expectChanged("the task deleted")

            // Statuses follow the clock: a task that starts and ends within seconds changes the document with no write.
            try await t.db.execute(
                "INSERT INTO tasks (name, owner_id, start_time, end_time) VALUES ('soon', \(user), localtimestamp + interval '1 second', localtimestamp + interval '5 seconds')",
                logger: t.logger)
            try await expectChanged("a task inserted")
            func status() -> String? {
                ((previous?["tasks"] as? [NSDictionary])?.first { $0["name"] as? String == "soon" })?["status"] as? String
            }
            /// Waits until the database's clock is past the task's start or end.
            func waitPast(_ column: String) async throws {
                let passed = try await waitUntil(timeout: 10) {
                    try await t.count("SELECT count(*)::int FROM tasks WHERE name = 'soon' AND \(column) <= localtimestamp") == 1
                }
                try #require(passed)
            }
            #expect(status() == "scheduled")
            try await waitPast("start_time")
            try await expectChanged("the task started")
            #expect(status() == "running")
            try await waitPast("end_time")
            try await expectChanged("the task ended")
            #expect(status() == "finished")

            // The route answers the same document; a deleted user's copy is never sent again.
            let route = try await t.request(.get, "/user/\(user)", token: token)
            #expect(route.status == .ok)
            #expect(try JSONSerialization.jsonObject(with: Data(route.body.utf8)) as? NSDictionary == previous)
            try await t.db.execute("DELETE FROM users WHERE id = \(user)", logger: t.logger)
            let gone = try await Self.served(t, user, cache)
            #expect(gone.0 == nil && !gone.hit)
            r = try await t.request(.get, "/user/\(user)", token: admin)
            #expect(r.status == .notFound && r.detail == "User with id \(user) not found!")
        }
    }

    /// A group's change reaches every member's copy; another user's copy is untouched.
    @Test func groupChangesReachTheirMembers() async throws {
        try await withApp { t in
            let cache = UserDocumentCache(budget: 1 << 20)
            let group = try await t.makeGroup("lab")
            let members = [try await t.makeUser("m1", groupID: group), try await t.makeUser("m2", groupID: group)]
            let outsider = try await t.makeUser("outside")
            for id in members + [outsider] { _ = try await Self.served(t, id, cache) }
            try await t.db.execute("UPDATE groups SET name = 'lab renamed' WHERE id = \(group)", logger: t.logger)
            for id in members {
                let read = try await Self.served(t, id, cache)
                #expect(!read.hit && (read.0?["group"] as? NSDictionary)?["name"] as? String == "lab renamed")
            }
            #expect(try await Self.served(t, outsider, cache).hit)
        }
    }

    /// Confirmations of several users at once share statements (`UserDocumentCache.confirm`), and each user still gets
    /// their own document: after a change of one user made straight in the database, every concurrent read of that user
    /// sends the new document and every read of the others their kept copy.
    @Test func concurrentReadsOfSeveralUsersEachGetTheirOwn() async throws {
        try await withApp { t in
            let cache = UserDocumentCache(budget: 1 << 20)
            var users: [Int] = []
            for i in 0..<4 { users.append(try await t.makeUser("concurrent\(i)")) }
            for id in users { _ = try await Self.served(t, id, cache) }
            try await t.db.execute("UPDATE users SET name = 'Changed' WHERE id = \(users[2])", logger: t.logger)
            var expected: [Int: NSDictionary] = [:]
            for id in users { expected[id] = try await Self.built(t, id) }
            #expect(expected[users[2]]?["name"] as? String == "Changed")
            let reads = try await withThrowingTaskGroup(of: (Int, Data?).self) { group in
                for i in 0..<64 {
                    let id = users[i % users.count]
                    group.addTask {
                        let body = try await UserRepository(db: t.db).document(id: id, cache: cache, logger: t.logger)
                        return (id, body.map { Data($0.readableBytesView) })
                    }
                }
                return try await group.reduce(into: [(Int, Data?)]()) { $0.append($1) }
            }
            #expect(reads.count == 64)
            for (id, body) in reads {
                let document = try body.map { try JSONSerialization.jsonObject(with: $0) as? NSDictionary } ?? nil
                #expect(document == expected[id], "user \(id)")
            }
            // Afterwards every user's copy is current again: the next read is the kept copy, after one statement.
            for id in users {
                let read = try await Self.served(t, id, cache)
                #expect(read.hit && read.statements == 1 && read.0 == expected[id])
            }
        }
    }

    /// The copies never hold more than the budget; a document larger than it is not kept (and still served).
    @Test func copiesAreBoundedByBytes() async throws {
        try await withApp { t in
            var ids: [Int] = []
            for i in 0..<12 { ids.append(try await t.makeUser("bounded\(i)")) }
            let one = try #require(try await t.db.json(UserJSONStatement(id: ids[0]), logger: t.logger)).utf8.count + 64
            let cache = UserDocumentCache(budget: one * 4)
            for id in ids { #expect(try await Self.served(t, id, cache).0 != nil) }
            let usage = cache.usage
            #expect(usage.bytes <= cache.budget && usage.count >= 3 && usage.count <= 4)
            #expect(try await Self.served(t, ids[11], cache).hit)

            let tiny = UserDocumentCache(budget: one / 2)
            #expect(try await Self.served(t, ids[0], tiny).0 != nil)
            let again = try await Self.served(t, ids[0], tiny)
            #expect(tiny.usage.count == 0 && !again.hit)
            let none = UserDocumentCache(budget: 0)
            #expect(try await Self.served(t, ids[0], none).0 != nil && none.usage.count == 0)
        }
    }
}
