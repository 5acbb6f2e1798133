import Foundation
import Hummingbird
import Testing

@testable import Remas

/// iCalendar feeds, read back by real calendar software: Debian's python3-icalendar and khal (scripts/ical-check.py).
@Suite struct CalendarFeedTests {
    /// Runs scripts/ical-check.py and decodes its JSON answer.
    static func check(_ arguments: [String]) throws -> Any {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [RepositoryFiles.root.appendingPathComponent("scripts/ical-check.py").path] + arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let failure = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("ical-check.py \(arguments): \(failure)") }
        return try JSONSerialization.jsonObject(with: data)
    }

    static func save(_ text: String, _ name: String, in directory: URL) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The path part of a feed URL.
    static func path(_ url: String) -> String { URL(string: url)!.path }

    @Test func feedEditsAndTokens() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (_, token) = try await t.userWithToken("cal")
            let (_, other) = try await t.userWithToken("stranger")
            let (nodes, resources) = try await t.cluster(nodes: 3, capacity: 8, resources: ["cpu", "mem"])
            let long = String(repeating: "Größenordnung ", count: 12) + "ünd Ende"
            var r = try await t.book(token, name: "lab", start: "2031-03-31 10:00", end: "2031-03-31 12:00", [(nodes[0], resources[0], 2), (nodes[1], resources[1], 4)])
            let lab = try #require(r.object["id"] as? Int)
            r = try await t.book(token, name: long, start: "2031-03-24 10:00", end: "2031-03-24 11:00", [(nodes[0], resources[0], 1)])
            #expect(r.status == .ok)
            #expect(try await t.book(other, name: "not mine", start: "2031-03-31 10:00", end: "2031-03-31 12:00", [(nodes[0], resources[0], 1)]).status == .ok)
            #expect(try await t.request(.post, "/maintenance", token: admin, json: MaintenanceAPITests.window("fans", start: "2031-04-01 08:00", end: "2031-04-01 12:00", nodes: [nodes[1]])).status == .created)
            #expect(try await t.request(.post, "/maintenance", token: admin, json: MaintenanceAPITests.window("elsewhere", start: "2031-04-02 08:00", end: "2031-04-02 12:00", nodes: [nodes[2]])).status == .created)

            r = try await t.request(.post, "/calendar/token", token: token)
            #expect(r.status == .ok && Set(r.object.keys) == ["url"])
            let url = try #require(r.object["url"] as? String)
            #expect(url.hasSuffix(".ics") && url.contains("/calendar/") && !url.contains(token))
            r = try await t.request(.get, Self.path(url))
            #expect(r.status == .ok)
            #expect(r.headers[.contentType] == "text/calendar; charset=utf-8")
            let etag = try #require(r.headers[.eTag])
            #expect(r.body.hasPrefix("BEGIN:VCALENDAR\r\n"))

            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("remas-ical-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            var parsed = try #require(try Self.check(["parse", try Self.save(r.body, "one.ics", in: directory)]) as? [String: Any])
            #expect(parsed["problems"] as? [String] == [])
            #expect(parsed["timezones"] as? [String] == ["Europe/Prague"])
            var events = try #require(parsed["events"] as? [[String: Any]])
            #expect(events.map { $0["summary"] as? String } == [long, "lab", "Maintenance: fans"])
            let labEvent = try #require(events.first { $0["summary"] as? String == "lab" })
            #expect(labEvent["uid"] as? String == "task-\(lab)@remas")
            // 10:00 in Prague after the DST change is 08:00 UTC (+02:00); the week before, +01:00.
            #expect(labEvent["start"] as? String == "2031-03-31T10:00:00+02:00" && labEvent["end"] as? String == "2031-03-31T12:00:00+02:00")
            #expect(events[0]["start"] as? String == "2031-03-24T10:00:00+01:00")
            #expect(labEvent["tzid"] as? String == "Europe/Prague" && labEvent["sequence"] as? Int == 0 && labEvent["status"] as? String == "CONFIRMED")
            #expect((labEvent["description"] as? String)?.contains("node0: cpu 2") == true)
            #expect((labEvent["description"] as? String)?.contains("node1: mem 4") == true)
            #expect(labEvent["last_modified"] is NSNull)

            // 304 while nothing changed.
            r = try await t.request(.get, Self.path(url), headers: [.ifNoneMatch: etag])
            #expect(r.status == .notModified && r.body.isEmpty && r.headers[.eTag] == etag)

            // khal, in New York: the same instants on its clock.
            let khalDir = directory.appendingPathComponent("khal").path
            var listed = try #require(try Self.check(["khal", khalDir, try Self.save(try await t.request(.get, Self.path(url)).body, "one.ics", in: directory), "America/New_York", "2031-03-20", "20"]) as? [[String: String]])
            #expect(listed.first { $0["uid"] == "task-\(lab)@remas" }.map { [$0["title"]!, $0["start"]!, $0["end"]!] } == ["lab", "2031-03-31 04:00", "2031-03-31 06:00"])
            #expect(listed.count == 3)

            // An edit: the same UID, a higher SEQUENCE, LAST-MODIFIED, a new ETag; khal replaces the event.
            r = try await t.book(token, id: lab, name: "lab (moved)", start: "2031-03-31 11:00", end: "2031-03-31 13:00", [(nodes[0], resources[0], 2)])
            #expect(r.status == .ok)
            r = try await t.request(.get, Self.path(url), headers: [.ifNoneMatch: etag])
            #expect(r.status == .ok && r.headers[.eTag] != etag)
            parsed = try #require(try Self.check(["parse", try Self.save(r.body, "two.ics", in: directory)]) as? [String: Any])
            events = try #require(parsed["events"] as? [[String: Any]])
            let moved = try #require(events.first { $0["uid"] as? String == "task-\(lab)@remas" })
            #expect(moved["summary"] as? String == "lab (moved)" && (moved["sequence"] as? Int ?? 0) >= 1 && moved["last_modified"] is String)
            // The window on node1 is no longer among the nodes the user's tasks use.
            #expect(!events.contains { $0["summary"] as? String == "Maintenance: fans" })
            listed = try #require(try Self.check(["khal", khalDir, try Self.save(r.body, "two.ics", in: directory), "America/New_York", "2031-03-20", "20"]) as? [[String: String]])
            let labs = listed.filter { $0["uid"] == "task-\(lab)@remas" }
            #expect(labs.count == 1 && labs.first?["title"] == "lab (moved)" && labs.first?["start"] == "2031-03-31 05:00")

            // Rotation: the old URL stops working; deletion: the new one too. Bad paths are 404.
            r = try await t.request(.post, "/calendar/token", token: token)
            let rotated = try #require(r.object["url"] as? String)
            #expect(rotated != url)
            #expect(try await t.request(.get, Self.path(url)).status == .notFound)
            #expect(try await t.request(.get, Self.path(rotated)).status == .ok)
            #expect(try await t.request(.delete, "/calendar/token", token: token).detail == "Calendar feed deleted")
            #expect(try await t.request(.get, Self.path(rotated)).status == .notFound)
            #expect(try await t.request(.delete, "/calendar/token", token: token).status == .notFound)
            #expect(try await t.request(.post, "/calendar/token").status == .unauthorized)
            for path in ["/calendar/nothing.ics", "/calendar/\(String(Self.path(rotated).dropFirst(10).dropLast(4)))", "/calendar/.ics"] {
                let reply = try await t.request(.get, path)
                #expect(reply.status == .notFound && reply.detail != nil, "\(path)")
            }
        }
    }

    /// `?node=` on an admin's feed: everyone's reservations on the node; not on a user's feed.
    @Test func nodeFeed() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (_, ada) = try await t.userWithToken("ada")
            let (_, bob) = try await t.userWithToken("bob")
            let (nodes, resources) = try await t.cluster(nodes: 2, capacity: 8)
            #expect(try await t.book(ada, name: "a", start: "2031-05-01 10:00", end: "2031-05-01 11:00", [(nodes[0], resources[0], 1)]).status == .ok)
            #expect(try await t.book(bob, name: "b", start: "2031-05-01 10:00", end: "2031-05-01 11:00", [(nodes[0], resources[0], 1)]).status == .ok)
            #expect(try await t.book(bob, name: "c", start: "2031-05-01 10:00", end: "2031-05-01 11:00", [(nodes[1], resources[0], 1)]).status == .ok)
            let adminURL = Self.path(try #require(try await t.request(.post, "/calendar/token", token: admin).object["url"] as? String))
            let adaURL = Self.path(try #require(try await t.request(.post, "/calendar/token", token: ada).object["url"] as? String))
            var r = try await t.request(.get, adminURL + "?node=\(nodes[0])")
            #expect(r.status == .ok)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("remas-ical-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let parsed = try #require(try Self.check(["parse", try Self.save(r.body, "node.ics", in: directory)]) as? [String: Any])
            #expect(Set((parsed["events"] as? [[String: Any]] ?? []).compactMap { $0["summary"] as? String }) == ["a", "b"])
            #expect(try await t.request(.get, adminURL).status == .ok)
            r = try await t.request(.get, adaURL + "?node=\(nodes[0])")
            #expect(r.status == .forbidden && r.detail != nil)
            #expect(try await t.request(.get, adminURL + "?node=999").status == .notFound)
            #expect(try await t.request(.get, adminURL + "?node=x").status == .unprocessableContent)
        }
    }

    /// A feed's validator follows the changes of what the feed shows: a user's own feed its bookings and edits and
    /// what every feed shares (maintenance windows, names: counted for all feeds at once); a node feed exactly what it
    /// shows (a digest of its events: a shared change that does not reach its events leaves it alone, here node 0's,
    /// empty once ada's task moved away). Someone else's booking elsewhere leaves a feed alone, and a no-op write too.
    @Test func validatorsFollowChanges() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (_, adaToken) = try await t.userWithToken("ada")
            let (bob, bobToken) = try await t.userWithToken("bob")
            let (nodes, resources) = try await t.cluster(nodes: 2, capacity: 8)
            var r = try await t.book(adaToken, name: "a", start: "2031-05-01 10:00", end: "2031-05-01 11:00", [(nodes[0], resources[0], 1)])
            let adaTask = try #require(r.object["id"] as? Int)
            let feeds = [
                Self.path(try #require(try await t.request(.post, "/calendar/token", token: adaToken).object["url"] as? String)),
                Self.path(try #require(try await t.request(.post, "/calendar/token", token: bobToken).object["url"] as? String)),
            ]
            let adminURL = Self.path(try #require(try await t.request(.post, "/calendar/token", token: admin).object["url"] as? String))
            let urls = feeds + [adminURL + "?node=\(nodes[0])", adminURL + "?node=\(nodes[1])"]
            @Sendable func tags() async throws -> [String] {
                var tags: [String] = []
                for url in urls {
                    let reply = try await t.request(.get, url)
                    #expect(reply.status == .ok)
                    tags.append(try #require(reply.headers[.eTag]))
                }
                return tags
            }
            /// Which of ada's feed, bob's feed, node 0's and node 1's changed.
            var last = try await tags()
            func changed(_ expected: [Bool], _ what: Comment) async throws -> [String] {
                let before = last
                let now = try await tags()
                #expect(zip(before, now).map { $0 != $1 } == expected, what)
                return now
            }
            // A 304 needs the same validator again.
            #expect(try await t.request(.get, urls[0], headers: [.ifNoneMatch: last[0]]).status == .notModified)
            #expect(try await t.request(.get, urls[2], headers: [.ifNoneMatch: last[2]]).status == .notModified)

            #expect(try await t.book(bobToken, name: "b", start: "2031-05-01 10:00", end: "2031-05-01 11:00", [(nodes[1], resources[0], 1)]).status == .ok)
            last = try await changed([false, true, false, true], "bob books on node 1")
            r = try await t.book(adaToken, id: adaTask, name: "a renamed", start: "2031-05-01 10:00", end: "2031-05-01 11:00", [(nodes[0], resources[0], 1)])
            #expect(r.status == .ok)
            last = try await changed([true, false, true, false], "ada renames her task on node 0")
            r = try await t.book(adaToken, id: adaTask, name: "a renamed", start: "2031-05-01 10:00", end: "2031-05-01 11:00", [(nodes[1], resources[0], 1)])
            last = try await changed([true, false, true, true], "ada moves her task to node 1")
            try await t.db.execute("UPDATE users SET username = username WHERE id = \(bob)", logger: t.logger)
            try await t.db.execute("UPDATE nodes SET name = name", logger: t.logger)
            last = try await changed([false, false, false, false], "writes that change nothing shown")
            try await t.db.execute("UPDATE users SET username = 'robert' WHERE id = \(bob)", logger: t.logger)
            last = try await changed([true, true, false, true], "a user renamed")
            try await t.db.execute("UPDATE nodes SET name = 'gpu1' WHERE id = \(nodes[1])", logger: t.logger)
            last = try await changed([true, true, false, true], "a node renamed")
            try await t.db.execute("UPDATE resources SET unit = 'Bytes (IEC)' WHERE id = \(resources[0])", logger: t.logger)
            last = try await changed([true, true, false, true], "a resource's unit")
            #expect(try await t.request(.post, "/maintenance", token: admin, json: MaintenanceAPITests.window("fans", start: "2031-06-01 08:00", end: "2031-06-01 12:00", nodes: [nodes[1]])).status == .created)
            last = try await changed([true, true, false, true], "a maintenance window")
            #expect(try await t.request(.delete, "/task/\(adaTask)", token: adaToken).status == .ok)
            last = try await changed([true, false, false, true], "ada deletes her task")
            // Bookings count their owners, not the nodes they reserve on (migration 0018).
            #expect(try await t.count("SELECT count(*)::int FROM calendar_changes WHERE scope = 'n'") == 0)
        }
    }

    /// The change counters never make writers wait: two transactions count the same key at once (the second with a lock
    /// timeout, so a wait would fail it), both are counted, a rolled-back count is not; a key keeps the rows that
    /// counting at once needed, no more.
    @Test func changeCountersNeverWait() async throws {
        try await withApp { t in
            let logger = t.logger
            @Sendable func sum() async throws -> Int {
                try await t.db.int("SELECT COALESCE(sum(changes), 0)::int FROM calendar_changes WHERE scope = 'o' AND key = 4242", logger: logger) ?? -1
            }
            /// The sum and the number of rows.
            @Sendable func state() async throws -> [Int] {
                [try await sum(), try await t.count("SELECT count(*)::int FROM calendar_changes WHERE scope = 'o' AND key = 4242")]
            }
            for _ in 0..<3 { try await t.db.execute("SELECT remas_calendar_count('o', ARRAY[4242, 4242, NULL])", logger: logger) }
            #expect(try await state() == [3, 1])
            try await t.db.transaction(logger: logger) { first in
                try await first.query("SELECT remas_calendar_count('o', ARRAY[4242])", logger: logger)
                try await t.db.transaction(logger: logger) { second in
                    try await second.query("SET LOCAL lock_timeout = '2s'", logger: logger)
                    try await second.query("SELECT remas_calendar_count('o', ARRAY[4242, 4243])", logger: logger)
                }
                // The second counted in a row of its own, as the first holds the key's row.
                #expect(try await sum() == 4)
            }
            #expect(try await state() == [5, 2])
            struct Rollback: Error {}
            await #expect(throws: Rollback.self) {
                try await t.db.transaction(logger: logger) { tx in
                    try await tx.query("SELECT remas_calendar_count('o', ARRAY[4242])", logger: logger)
                    throw Rollback()
                }
            }
            #expect(try await state() == [5, 2])
            for _ in 0..<3 { try await t.db.execute("SELECT remas_calendar_count('o', ARRAY[4242])", logger: logger) }
            #expect(try await state() == [8, 2])
            #expect(try await t.count("SELECT COALESCE(sum(changes), 0)::int FROM calendar_changes WHERE scope = 'o' AND key = 4243") == 1)
        }
    }
}
