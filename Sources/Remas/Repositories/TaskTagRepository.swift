import Logging
import PostgresNIO

/// Task tags (`task_tags`): every statement on them, and their wire documents.
struct TaskTagRepository: Sendable {
    let db: Database

    func list(_ window: ListWindow) -> ListPages<TagList> {
        ListPages(db: self.db, window: window)
    }

    /// The tags of one user.
    func list(ofUser id: Int, _ window: ListWindow) -> ListPages<UserTagList> {
        ListPages(db: self.db, key: id, window: window)
    }

    /// The tags of a group's members.
    func list(ofGroup id: Int, _ window: ListWindow) -> ListPages<GroupTagList> {
        ListPages(db: self.db, key: id, window: window)
    }

    /// One tag's document; nil when there is no such tag.
    func json(id: Int, logger: Logger) async throws -> String? {
        try await self.db.json(TagStatement(id: id), logger: logger)
    }

    /// The tag's owner; nil when there is no such tag.
    func owner(ofTag id: Int, logger: Logger) async throws -> Int? {
        try await self.db.int("SELECT user_id FROM task_tags WHERE id = \(id)", logger: logger)
    }

    /// A tag of `owner`; nil when the owner no longer exists.
    func create(name: String, description: String?, owner: Int, logger: Logger) async throws -> Int? {
        try await self.db.int(
            """
            INSERT INTO task_tags (name, description, user_id)
            SELECT \(name), \(description), u.id FROM users u WHERE u.id = \(owner) RETURNING id
            """, logger: logger)
    }

    /// False when there is no such tag.
    func update(id: Int, name: String, description: String?, logger: Logger) async throws -> Bool {
        try await self.db.exists(
            "UPDATE task_tags SET name = \(name), description = \(description) WHERE id = \(id) RETURNING id", logger: logger)
    }

    /// False when there is no such tag.
    func delete(id: Int, logger: Logger) async throws -> Bool {
        try await self.db.exists("DELETE FROM task_tags WHERE id = \(id) RETURNING id", logger: logger)
    }
}

/// A tag embeds its tasks.
enum TagList: ListDefinition {
    static let pageSQL = JSONSQL.listPage(JSONSQL.tagResponse("g"), table: "task_tags", alias: "g")
    static let pageRows: Int64 = 50
}

struct TagStatement: JSONByIDStatement {
    static let sql = "SELECT \(JSONSQL.tagResponse("g"))::text FROM task_tags g WHERE g.id = $1"
    let id: Int
}

enum UserTagList: ListDefinition {
    static let pageSQL = JSONSQL.listPage(JSONSQL.tagResponse("g"), table: "task_tags", alias: "g", where: "g.user_id = $1")
    static let pageRows: Int64 = 50
}

enum GroupTagList: ListDefinition {
    static let pageSQL = JSONSQL.listPage(
        JSONSQL.tagResponse("g"), table: "task_tags", alias: "g", where: "g.user_id IN (SELECT id FROM users WHERE group_id = $1)")
    static let pageRows: Int64 = 50
}
