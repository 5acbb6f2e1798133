import Logging
import PostgresNIO

/// Resource aliases (`resource_aliases`): every statement on them, and their wire documents.
struct AliasRepository: Sendable {
    let db: Database

    func list(_ window: ListWindow) -> ListPages<AliasList> {
        ListPages(db: self.db, window: window)
    }

    /// One alias's document; nil when there is no such alias.
    func json(id: Int, logger: Logger) async throws -> String? {
        try await self.db.json(AliasStatement(id: id), logger: logger)
    }

    func exists(id: Int, logger: Logger) async throws -> Bool {
        try await self.db.exists("SELECT 1 FROM resource_aliases WHERE id = \(id)", logger: logger)
    }

    func create(name: String, description: String?, logger: Logger) async throws -> Int {
        try await withConflictMapping("create", "resource alias") {
            try await self.db.int(
                "INSERT INTO resource_aliases (name, description) VALUES (\(name), \(description)) RETURNING id", logger: logger)!
        }
    }

    /// False when there is no such alias.
    func update(id: Int?, name: String, description: String?, logger: Logger) async throws -> Bool {
        try await withConflictMapping("update", "resource alias") {
            try await self.db.execute(
                "UPDATE resource_aliases SET name = \(name), description = \(description) WHERE id = \(id) RETURNING id", logger: logger) > 0
        }
    }

    /// False when there is no such alias.
    func delete(id: Int, logger: Logger) async throws -> Bool {
        try await self.db.exists("DELETE FROM resource_aliases WHERE id = \(id) RETURNING id", logger: logger)
    }
}

enum AliasList: ListDefinition {
    static let pageSQL = JSONSQL.listPage(JSONSQL.aliasResponse("a"), table: "resource_aliases", alias: "a")
}

struct AliasStatement: JSONByIDStatement {
    static let sql = "SELECT \(JSONSQL.aliasResponse("a"))::text FROM resource_aliases a WHERE a.id = $1"
    let id: Int
}
