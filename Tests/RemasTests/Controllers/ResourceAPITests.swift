import Foundation
import Hummingbird
import Testing

@testable import Remas

@Suite struct ResourceAPITests {
    @Test func crudUnitsAndShape() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            var r = try await t.request(.post, "/resource", token: admin, json: #"{"name":"MEM","unit":"Bytes (IEC)"}"#)
            #expect(r.status == .ok)
            #expect(Set(r.object.keys) == ["id", "name", "description", "unit", "providing_nodes", "aliases"])
            #expect(r.object["unit"] as? String == "Bytes (IEC)")
            let mem = try #require(r.object["id"] as? Int)
            r = try await t.request(.post, "/resource", token: admin, json: #"{"name":"CPU"}"#)
            #expect(r.object["unit"] as? String == "")
            r = try await t.request(.post, "/resource", token: admin, json: #"{"name":"X","unit":"kg"}"#)
            #expect(r.status == .badRequest)
            #expect(r.detail == "Unit kg is not supported!")
            r = try await t.request(.post, "/resource", token: admin, json: #"{"name":"X","unit":null}"#)
            #expect(r.detail == "Unit None is not supported!")
            r = try await t.request(.post, "/resource", token: admin, json: #"{"name":"X","unit":"BYTES_SI"}"#)
            #expect(r.status == .badRequest)
            r = try await t.request(.post, "/resource", token: admin, json: #"{"name":"CPU"}"#)
            #expect(r.status == .conflict)
            #expect(r.detail?.hasPrefix("Failed to create resource in database due to conflict:\n") == true)
            r = try await t.request(.put, "/resource", token: admin, json: #"{"id":\#(mem),"name":"RAM"}"#)
            #expect(r.object["unit"] as? String == "")  // full replacement
            r = try await t.request(.put, "/resource", token: admin, json: #"{"id":999,"name":"RAM","unit":"kg"}"#)
            #expect(r.detail == "Resource with id 999 not found!")  // 404 before the unit check
            r = try await t.request(.put, "/resource", token: admin, json: #"{"id":\#(mem),"name":"RAM","unit":"kg"}"#)
            #expect(r.status == .badRequest)
            r = try await t.request(.get, "/resource/999", token: admin)
            #expect(r.detail == "Resource with id 999 not found!")
            // providing_nodes is filled.
            let node = try await t.makeNode("n1")
            try await t.provide(node: node, resource: mem, amount: 8)
            r = try await t.request(.get, "/resource/\(mem)", token: admin)
            #expect((r.object["providing_nodes"] as? [[String: Any]])?.first?["name"] as? String == "n1")
            #expect(Set((r.object["providing_nodes"] as? [[String: Any]])?.first?.keys ?? [:].keys) == ["id", "name", "description"])
        }
    }

    @Test func aliasesLinkAndUnlink() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let cpu = try await t.makeResource("CPU")
            let gpu = try await t.makeResource("GPU")
            var r = try await t.request(.post, "/resource_alias", token: admin, json: #"{"name":"cores","description":"d"}"#)
            #expect(r.status == .ok)
            #expect(Set(r.object.keys) == ["id", "name", "description", "resources"])
            let alias = try #require(r.object["id"] as? Int)
            r = try await t.request(.post, "/resource/add_alias", token: admin, json: #"{"resource_id":\#(cpu),"alias_id":\#(alias)}"#)
            #expect((r.object["aliases"] as? [[String: Any]])?.first?["name"] as? String == "cores")
            r = try await t.request(.post, "/resource/add_alias", token: admin, json: #"{"resource_id":\#(cpu),"alias_id":\#(alias)}"#)
            #expect(r.status == .ok)  // idempotent
            r = try await t.request(.post, "/resource/add_alias", token: admin, json: #"{"resource_id":\#(gpu),"resource_alias_id":\#(alias)}"#)
            #expect(r.status == .ok)
            r = try await t.request(.get, "/resource_alias/\(alias)", token: admin)
            #expect(ids(r.object["resources"] as? [[String: Any]] ?? []) == [cpu, gpu])
            r = try await t.request(.post, "/resource/add_alias", token: admin, json: #"{"resource_id":\#(cpu),"alias_id":999}"#)
            #expect(r.detail == "Alias with id 999 not found!")
            r = try await t.request(.post, "/resource/add_alias", token: admin, json: #"{"resource_id":999,"alias_id":\#(alias)}"#)
            #expect(r.detail == "Resource with id 999 not found!")
            r = try await t.request(.post, "/resource/remove_alias", token: admin, json: #"{"resource_id":\#(cpu),"alias_id":\#(alias)}"#)
            #expect((r.object["aliases"] as? [Any])?.isEmpty == true)
            r = try await t.request(.post, "/resource/remove_alias", token: admin, json: #"{"resource_id":\#(cpu),"alias_id":\#(alias)}"#)
            #expect(r.detail == "Resource with id \(cpu) doesn't have alias with id \(alias)!")
            // Removing the last link deletes the alias.
            r = try await t.request(.post, "/resource/remove_alias", token: admin, json: #"{"resource_id":\#(gpu),"alias_id":\#(alias)}"#)
            #expect(r.status == .ok)
            #expect(try await t.request(.get, "/resource_alias/\(alias)", token: admin).status == .notFound)
        }
    }

    @Test func aliasCrud() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let (_, user) = try await t.userWithToken("plain")
            var r = try await t.request(.post, "/resource_alias", token: admin, json: #"{"name":"a1"}"#)
            let id = try #require(r.object["id"] as? Int)
            #expect(try await t.request(.post, "/resource_alias", token: user, json: #"{"name":"a2"}"#).status == .forbidden)
            r = try await t.request(.post, "/resource_alias", token: admin, json: #"{"name":"a1"}"#)
            #expect(r.detail?.hasPrefix("Failed to create resource alias in database due to conflict:\n") == true)
            r = try await t.request(.put, "/resource_alias", token: admin, json: #"{"id":\#(id),"name":"a1b","description":"x"}"#)
            #expect(r.object["description"] as? String == "x")
            r = try await t.request(.put, "/resource_alias", token: admin, json: #"{"id":\#(id),"name":"a1b"}"#)
            #expect(r.object["description"] is NSNull)
            r = try await t.request(.put, "/resource_alias", token: admin, json: #"{"id":999,"name":"q"}"#)
            #expect(r.detail == "Resource alias with id 999 not found!")
            r = try await t.request(.get, "/resource_alias", token: user)
            #expect(r.array.count == 1)
            r = try await t.request(.delete, "/resource_alias/\(id)", token: admin)
            #expect(r.detail == "Resource alias deleted")
            r = try await t.request(.delete, "/resource_alias/\(id)", token: admin)
            #expect(r.detail == "Resource alias with id \(id) not found!")
        }
    }

    @Test func deleteCascades() async throws {
        try await withApp { t in
            let admin = try await t.adminToken()
            let cpu = try await t.makeResource("CPU")
            let gpu = try await t.makeResource("GPU")
            let node = try await t.makeNode("n1")
            try await t.provide(node: node, resource: cpu, amount: 4)
            try await t.makeLimit("l", amount: 2, group: 1, resource: cpu, nodes: [node])
            let only = try await t.db.int("INSERT INTO resource_aliases (name) VALUES ('only-cpu') RETURNING id", logger: t.logger)!
            let shared = try await t.db.int("INSERT INTO resource_aliases (name) VALUES ('shared') RETURNING id", logger: t.logger)!
            try await t.db.execute(
                "INSERT INTO resource_alias_links VALUES (\(cpu), \(only)), (\(cpu), \(shared)), (\(gpu), \(shared))", logger: t.logger)
            try await t.db.execute(
                "INSERT INTO notifications (name, type, resource_id) VALUES ('n', 'grafana_resource_exceedance_general', \(cpu))", logger: t.logger)
            let r = try await t.request(.delete, "/resource/\(cpu)", token: admin)
            #expect(r.status == .ok)
            #expect(r.detail == "Resource deleted")
            #expect(try await t.count("SELECT count(*)::int FROM limits") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM node_resources") == 0)
            #expect(try await t.count("SELECT count(*)::int FROM notifications") == 0)
            #expect(try await t.db.exists("SELECT 1 FROM resource_aliases WHERE id = \(shared)", logger: t.logger))
            #expect(!(try await t.db.exists("SELECT 1 FROM resource_aliases WHERE id = \(only)", logger: t.logger)))
            #expect(try await t.request(.delete, "/resource/\(cpu)", token: admin).status == .notFound)
        }
    }
}
