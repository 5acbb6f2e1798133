import Logging
import PostgresNIO

/// Notifications and their receivers (`notifications`, `notification_users`, `notification_groups`): every statement.
struct NotificationRepository: Sendable {
    let db: Database


    /// The stored, editable fields of a notification.
    struct Fields: Sendable {
        var name: String
        var description: String?
        var timeOffset: Int?
        var template: String?
        var type: String
        var defaultAmount: Int64?
        var resourceID: Int?
    }

    struct Stored: Sendable {
        var id: Int
        var ownerID: Int?
        var fields: Fields
    }

    func json(id: Int, on executor: (any SQLExecutor)? = nil, logger: Logger) async throws -> String? {
        try await (executor ?? self.db).text(
            "SELECT \(unescaped: JSONSQL.notificationFlat("n"))::text FROM notifications n WHERE n.id = \(id)", logger: logger)
    }

    func all(_ window: ListWindow) -> ListPages<NotificationList> {
        ListPages(db: self.db, window: window)
    }

    func owned(by ownerID: Int, _ window: ListWindow) -> ListPages<OwnedNotificationList> {
        ListPages(db: self.db, key: ownerID, window: window)
    }

    func load(id: Int, forUpdate: Bool, in tx: LeasedConnection, logger: Logger) async throws -> Stored? {
        let lock = forUpdate ? " FOR UPDATE" : ""
        let rows = try await tx.query(
            """
            SELECT id, owner_id, name, description, time_offset, notification_template, type, default_amount, resource_id
            FROM notifications WHERE id = \(id)\(unescaped: lock)
            """, logger: logger)
        guard let row = rows.first else { return nil }
        let (id, owner, name, description, offset, template, type, amount, resource) =
            try row.decode((Int, Int?, String, String?, Int?, String?, String, Int64?, Int?).self)
        return Stored(
            id: id, ownerID: owner,
            fields: Fields(
                name: name, description: description, timeOffset: offset, template: template, type: type, defaultAmount: amount,
                resourceID: resource))
    }

    /// Who owns a notification: a user, or nobody (`ownerID` nil) when an admin created it.
    struct Ownership: Sendable {
        let ownerID: Int?
    }

    /// The notification's ownership; nil when there is no such notification.
    func ownership(of id: Int, logger: Logger) async throws -> Ownership? {
        let rows = try await self.db.query("SELECT owner_id FROM notifications WHERE id = \(id)", logger: logger)
        return try rows.first.map { Ownership(ownerID: try $0.decode(Int?.self)) }
    }

    func create(_ f: Fields, ownerID: Int?, logger: Logger) async throws -> String {
        try await withConflictMapping("create", "notification") {
            try await self.db.text(
                """
                WITH n AS (
                    INSERT INTO notifications (name, description, time_offset, notification_template, type, default_amount, owner_id, resource_id)
                    VALUES (\(f.name), \(f.description), \(f.timeOffset), \(f.template), \(f.type), \(f.defaultAmount), \(ownerID), \(f.resourceID))
                    RETURNING *)
                SELECT \(unescaped: JSONSQL.notificationFlat("n"))::text FROM n
                """, logger: logger)!
        }
    }

    func update(id: Int, _ f: Fields, in tx: LeasedConnection, logger: Logger) async throws {
        _ = try await withConflictMapping("update", "notification") {
            try await tx.query(
                """
                UPDATE notifications SET name = \(f.name), description = \(f.description), time_offset = \(f.timeOffset),
                    notification_template = \(f.template), type = \(f.type), default_amount = \(f.defaultAmount), resource_id = \(f.resourceID)
                WHERE id = \(id)
                """, logger: logger)
        }
    }

    func delete(id: Int, logger: Logger) async throws -> Bool {
        try await self.db.execute("DELETE FROM notifications WHERE id = \(id) RETURNING id", logger: logger) > 0
    }

    // MARK: receivers

    /// Links or unlinks the notification and a user or group; returns whether a link changed.
    func link(_ notificationID: Int, userID: Int? = nil, groupID: Int? = nil, assign: Bool, in tx: LeasedConnection, logger: Logger) async throws
        -> Bool
    {
        switch (userID, groupID, assign) {
        case (let user?, _, true):
            return try await tx.execute(
                """
                INSERT INTO notification_users (user_id, notification_id) VALUES (\(user), \(notificationID))
                ON CONFLICT DO NOTHING RETURNING user_id
                """, logger: logger) > 0
        case (let user?, _, false):
            return try await tx.execute(
                "DELETE FROM notification_users WHERE user_id = \(user) AND notification_id = \(notificationID) RETURNING user_id",
                logger: logger) > 0
        case (nil, let group?, true):
            return try await tx.execute(
                """
                INSERT INTO notification_groups (group_id, notification_id) VALUES (\(group), \(notificationID))
                ON CONFLICT DO NOTHING RETURNING group_id
                """, logger: logger) > 0
        case (nil, let group?, false):
            return try await tx.execute(
                "DELETE FROM notification_groups WHERE group_id = \(group) AND notification_id = \(notificationID) RETURNING group_id",
                logger: logger) > 0
        case (nil, nil, _):
            return false
        }
    }

    /// CTEs `chain` and `receives(user_id, notification_id)`: every notification each user of `users` (an `int4[]`
    /// expression, a parameter) receives, directly or through their group or any group above it. Reminder scheduling
    /// (of a user's tasks, and of new tasks as they are inserted) and the Grafana rule set share it.
    ///
    /// `fewUsers`: the caller passes a handful of users (a batch of bookings' owners), so each group of the chain is
    /// looked up by the primary key of `notification_groups` (a lateral probe, as the chain itself does). Otherwise the
    /// generic plan, which expects some hundred chain rows, hashes the whole table: on the national data set (500 rows)
    /// that was 0.12 ms of every booking batch's insert, for the three groups of one owner. Many users (a group's,
    /// a notification's receivers) keep the hash join, which is then the cheaper one.
    static func receives(of users: String, fewUsers: Bool = false) -> String {
        let groups =
            fewUsers
            ? "chain c CROSS JOIN LATERAL (SELECT ng.notification_id FROM notification_groups ng WHERE ng.group_id = c.group_id OFFSET 0) ng"
            : "chain c JOIN notification_groups ng ON ng.group_id = c.group_id"
        return """
            \(GroupRepository.ancestorChain(seed: "SELECT u.id, u.group_id, 0 FROM users u WHERE u.id = ANY(\(users))", carrying: "user_id")),
            receives AS (
                SELECT nu.user_id, nu.notification_id FROM notification_users nu WHERE nu.user_id = ANY(\(users))
                UNION
                SELECT c.user_id, ng.notification_id FROM \(groups))
            """
    }

    /// Every user the notification reaches (directly, or through a receiving group or any group below it), plus the
    /// owners of tasks that still have pending reminders of it.
    func receivers(of notificationID: Int, on executor: any SQLExecutor, logger: Logger) async throws -> [Int] {
        try await executor.query(
            """
            WITH RECURSIVE sub(id, depth) AS (
                SELECT group_id, 0 FROM notification_groups WHERE notification_id = \(notificationID)
                UNION ALL SELECT g.id, s.depth + 1 FROM groups g JOIN sub s ON g.parent_id = s.id WHERE s.depth < 256)
            SELECT u.id FROM users u WHERE u.group_id IN (SELECT id FROM sub)
            UNION SELECT user_id FROM notification_users WHERE notification_id = \(notificationID)
            UNION SELECT t.owner_id FROM events e JOIN tasks t ON t.id = e.task_id
                  WHERE e.notification_id = \(notificationID) AND e.state = 'pending'
            ORDER BY 1
            """, logger: logger
        ).map { try $0.decode(Int.self) }
    }

    // MARK: lists by receiver (/notification/group, /notification/user)

    static func groupEntry(_ g: String) -> String {
        """
        json_build_object('group_id',\(g).id,'group_name',\(g).name,'notifications',\
        \(JSONSQL.list(JSONSQL.notificationFlat("gn"), from: "notification_groups gng JOIN notifications gn ON gn.id = gng.notification_id WHERE gng.group_id = \(g).id", orderBy: "gn.id")))
        """
    }

    /// `[direct assignments, the user's group, its ancestors…]`, or nil when the user does not exist.
    func forUser(_ userID: Int, logger: Logger) async throws -> String? {
        let direct = JSONSQL.list(
            JSONSQL.notificationFlat("un"),
            from: "notification_users unu JOIN notifications un ON un.id = unu.notification_id WHERE unu.user_id = u.id", orderBy: "un.id")
        return try await self.byID(
            userID,
            """
            WITH RECURSIVE \(GroupRepository.ancestorChain(seed: "SELECT group_id, 1 FROM users WHERE id = $1"))
            SELECT json_agg(x.entry ORDER BY x.ord)::text FROM (
                SELECT 0 AS ord, json_build_object('group_id',NULL,'group_name',NULL,'notifications',\(direct)) AS entry
                FROM users u WHERE u.id = $1
                UNION ALL
                SELECT c.depth, \(Self.groupEntry("g")) FROM chain c JOIN groups g ON g.id = c.group_id
            ) x HAVING bool_or(x.ord = 0)
            """, logger: logger)
    }

    /// `[the group, its ancestors…]`, or nil when the group does not exist.
    func forGroup(_ groupID: Int, logger: Logger) async throws -> String? {
        try await self.byID(
            groupID,
            """
            WITH RECURSIVE \(GroupRepository.ancestorChain(seed: "SELECT id, 0 FROM groups WHERE id = $1"))
            SELECT json_agg(\(Self.groupEntry("g")) ORDER BY c.depth)::text FROM chain c JOIN groups g ON g.id = c.group_id
            """, logger: logger)
    }

    /// A JSON document from code-constant SQL whose one parameter `$1` is `id`.
    private func byID(_ id: Int, _ sql: String, logger: Logger) async throws -> String? {
        var bindings = PostgresBindings()
        bindings.append(id)
        return try await self.db.text(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
    }
}

enum NotificationList: ListDefinition {
    static let pageSQL = JSONSQL.listPage(JSONSQL.notificationFlat("n"), table: "notifications", alias: "n")
}

enum OwnedNotificationList: ListDefinition {
    static let pageSQL = JSONSQL.listPage(JSONSQL.notificationFlat("n"), table: "notifications", alias: "n", where: "n.owner_id = $1")
}
