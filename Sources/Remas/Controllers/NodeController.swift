import Hummingbird
import Logging

/// `/node`: parse, authorize, `NodeRepository`, respond.
struct NodeController {
    let env: AppEnvironment
    var nodes: NodeRepository { NodeRepository(db: self.env.db) }
    var resources: ResourceRepository { ResourceRepository(db: self.env.db) }

    func register(_ routes: RouteBuilder) {
        routes.get("/node") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            return try await self.nodes.list(try request.listWindow()).response(logger: context.logger)
        }
        routes.get("/node/:node_id") { request, context in
            _ = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("node_id")
            return .json(try await self.nodes.json(id: id, logger: context.logger).orNotFound("Node", id))
        }
        routes.post("/node") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let name = try body.string("name")
            let description = try body.optionalString("description")
            try caller.requireAdmin()
            let id = try await self.nodes.create(name: name, description: description, logger: context.logger)
            return .json(try await self.nodes.json(id: id, logger: context.logger).orNotFound("Node", id))
        }
        routes.put("/node") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let id = try body.optionalID("id")
            let name = try body.string("name")
            let description = try body.optionalString("description")
            try caller.requireAdmin()
            let updated = try await self.nodes.update(id: id, name: name, description: description, logger: context.logger)
            guard let id, updated else { throw AppError.notFound("Node with id \(idText(id)) not found!") }
            await self.env.grafana.changed(.node(id), logger: context.logger)
            return .json(try await self.nodes.json(id: id, logger: context.logger).orNotFound("Node", id))
        }
        routes.delete("/node/:node_id") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let id = try context.pathID("node_id")
            try caller.requireAdmin()
            try await self.nodes.delete(id: id, grafana: self.env.grafana, logger: context.logger)
            self.env.capacityChanged()
            return .message("Node deleted")
        }
        routes.post("/node/add_resource") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let nodeID = try body.id("node_id")
            let resourceID = try body.id("resource_id")
            let amount = try body.int64("amount")
            try caller.requireAdmin()
            try await self.requireNodeAndResource(nodeID, resourceID, context.logger)
            guard amount > 0 else {
                throw AppError.unprocessable("Input should be greater than 0: body.amount (a node provides a positive amount)")
            }
            try await self.nodes.provide(node: nodeID, resource: resourceID, amount: amount, logger: context.logger)
            self.env.capacityChanged()
            await self.env.grafana.changed(.resource(resourceID), logger: context.logger)
            return .json(try await self.nodes.json(id: nodeID, logger: context.logger).orNotFound("Node", nodeID))
        }
        routes.post("/node/remove_resource") { request, context in
            let (body, caller) = try await self.env.bodyAndCaller(request)
            let nodeID = try body.id("node_id")
            let resourceID = try body.id("resource_id")
            _ = try body.optionalInt64("amount")  // required by the original, ignored; we accept it or its absence
            try caller.requireAdmin()
            try await self.requireNodeAndResource(nodeID, resourceID, context.logger)
            guard try await self.nodes.withdraw(node: nodeID, resource: resourceID, logger: context.logger) else {
                throw AppError.notFound("Node with id \(nodeID) doesn't have resource with id \(resourceID)!")
            }
            self.env.capacityChanged()
            await self.env.grafana.changed(.resource(resourceID), logger: context.logger)
            return .json(try await self.nodes.json(id: nodeID, logger: context.logger).orNotFound("Node", nodeID))
        }
    }

    func requireNodeAndResource(_ nodeID: Int, _ resourceID: Int, _ logger: Logger) async throws {
        guard try await self.nodes.exists(id: nodeID, logger: logger) else { throw AppError.notFound("Node with id \(nodeID) not found!") }
        guard try await self.resources.exists(id: resourceID, logger: logger) else {
            throw AppError.notFound("Resource with id \(resourceID) not found!")
        }
    }
}
