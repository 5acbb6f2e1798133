import Foundation
import Hummingbird
import Testing

@testable import Remas

@Suite struct QueryCountTests {
    /// List endpoints issue a constant number of statements, whatever the number of rows.
    @Test func listEndpointsAreNotNPlusOne() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let paths = ["/node", "/resource", "/limit", "/user", "/group", "/resource_alias", "/task_tag"]
            func counts() async throws -> [Int] {
                var result: [Int] = []
                for path in paths {
                    result.append(try await t.statements { _ = try await t.request(.get, path, token: admin) })
                }
                return result
            }
            let small = try await counts()
            for i in 0..<12 {
                let node = try await t.makeNode("n\(i)")
                let resource = try await t.makeResource("r\(i)")
                try await t.provide(node: node, resource: resource, amount: 4)
                let group = try await t.makeGroup("g\(i)", parent: 3)
                let user = try await t.makeUser("u\(i)", groupID: group)
                try await t.makeLimit("l\(i)", amount: 1, group: group, resource: resource, nodes: [node])
                try await t.makeTag("t\(i)", user: user)
                try await t.db.execute("INSERT INTO resource_aliases (name) VALUES (\("a\(i)"))", logger: t.logger)
            }
            let large = try await counts()
            #expect(small == large)
            #expect(large.allSatisfy { $0 == 1 })
        }
    }
}
