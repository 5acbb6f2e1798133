import Logging
import PostgresNIO

/// Tasks as documents and their tag links (`tasks`, `task_tag_links`): every read of the task endpoints and the
/// statements behind them. The statements of a booking (`tasks` and `allocations` written together under node locks)
/// are in `TaskRepository+Booking.swift`; `BookingService` runs them in one transaction.
struct TaskRepository: Sendable {
    let db: Database

    func list(_ window: ListWindow) -> ListPages<TaskList> {
        ListPages(db: self.db, window: window)
    }

    /// The tasks of one owner.
    func list(ofUser id: Int, _ window: ListWindow) -> ListPages<UserTaskList> {
        ListPages(db: self.db, key: id, window: window)
    }

    /// One page of a paginated list.
    func page<S: TaskPage>(_ statement: S, logger: Logger) async throws -> String {
        try await self.db.jsonList(statement, logger: logger)
    }

    /// One task's document; nil when there is no such task.
    func json(id: Int, on executor: (any SQLExecutor)? = nil, logger: Logger) async throws -> String? {
        try await (executor ?? self.db).json(TaskStatement(id: id), logger: logger)
    }

    /// The task's owner; nil when there is no such task.
    func owner(ofTask id: Int, logger: Logger) async throws -> Int? {
        try await self.db.int("SELECT owner_id FROM tasks WHERE id = \(id)", logger: logger)
    }

    /// Who may see a task: its owner and owner's group, the viewer's group (nil when the viewer no longer exists) and
    /// whether that group shares statistics. Nil when there is no such task.
    func visibility(ofTask id: Int, to viewer: Int, logger: Logger) async throws
        -> (owner: Int, ownerGroup: Int, viewerGroup: Int?, viewerGroupShares: Bool?)?
    {
        let rows = try await self.db.query(
            """
            SELECT t.owner_id, o.group_id, c.group_id, cg.users_share_statistics
            FROM tasks t JOIN users o ON o.id = t.owner_id
            LEFT JOIN users c ON c.id = \(viewer) LEFT JOIN groups cg ON cg.id = c.group_id
            WHERE t.id = \(id)
            """, logger: logger)
        return try rows.first.map { try $0.decode((Int, Int, Int?, Bool?).self) }
    }

    /// Deletes the owner's task; its start and end (microseconds of local time) when it was deleted, nil otherwise.
    func delete(id: Int, owner: Int, logger: Logger) async throws -> (start: Int64, end: Int64)? {
        let rows = try await self.db.query(
            """
            DELETE FROM tasks WHERE id = \(id) AND owner_id = \(owner)
            RETURNING (extract(epoch FROM start_time) * 1000000)::int8, (extract(epoch FROM end_time) * 1000000)::int8
            """, logger: logger)
        return try rows.first.map { try $0.decode((Int64, Int64).self) }
    }

    /// Links the tag to the task; false when it already was.
    func addTag(_ tag: Int, to task: Int, logger: Logger) async throws -> Bool {
        try await self.db.exists(
            "INSERT INTO task_tag_links (task_id, tag_id) VALUES (\(task), \(tag)) ON CONFLICT DO NOTHING RETURNING tag_id", logger: logger)
    }

    /// Unlinks the tag; false when it was not linked.
    func removeTag(_ tag: Int, from task: Int, logger: Logger) async throws -> Bool {
        try await self.db.exists("DELETE FROM task_tag_links WHERE task_id = \(task) AND tag_id = \(tag) RETURNING tag_id", logger: logger)
    }

    /// Allocations of every scheduled or running task touching the window, for the availability timeline.
    func schedulingAllocations(from start: LocalDateTime, to end: LocalDateTime, excluding task: Int?, logger: Logger) async throws
        -> [Timeline.Allocation]
    {
        try await self.db.run(
            SchedulingStatement(start: start.sqlText, end: end.sqlText, exclude: task.map { Int32(truncatingIfNeeded: $0) }), logger: logger)
    }
}

/// Wire shapes of tasks, built by PostgreSQL.
enum TaskSQL {
    static func tags(_ t: String) -> String {
        JSONSQL.list(JSONSQL.tagFlat("ttg"), from: "task_tag_links ttl JOIN task_tags ttg ON ttg.id = ttl.tag_id WHERE ttl.task_id = \(t).id", orderBy: "ttg.id")
    }

    /// The task's allocations as `[{node, resource, amount}]`, by default from `allocations`; `allocations` names
    /// another relation `ta` with the same columns and the condition that picks the task's rows (the answers of tasks
    /// being inserted: `NewTasksStatement`).
    static func resources(_ t: String, allocations: (relation: String, match: String)? = nil) -> String {
        let (relation, match) = allocations ?? ("allocations ta", "ta.task_id = \(t).id")
        return JSONSQL.list(
            """
            json_build_object('node',json_build_object('id',tn.id,'name',tn.name,'description',tn.description),\
            'resource',json_build_object('id',tr.id,'name',tr.name,'description',tr.description,'unit',tr.unit),'amount',ta.amount)
            """,
            from: "\(relation) JOIN nodes tn ON tn.id = ta.node_id JOIN resources tr ON tr.id = ta.resource_id WHERE \(match)",
            orderBy: "ta.node_id, ta.resource_id")
    }

    /// TaskFull: `{id, name, description, start_time, end_time, status, tags, resources}` (`allocations`: as in
    /// `resources`).
    static func full(_ t: String, allocations: (relation: String, match: String)? = nil) -> String {
        """
        json_build_object('id',\(t).id,'name',\(t).name,'description',\(t).description,'start_time',remas_ts(\(t).start_time),\
        'end_time',remas_ts(\(t).end_time),'status',remas_status(\(t).start_time, \(t).end_time),'tags',\(tags(t)),\
        'resources',\(resources(t, allocations: allocations)))
        """
    }

    /// TaskFullWithOwner: TaskFull plus `owner` (UserBrief).
    static func fullWithOwner(_ t: String) -> String {
        """
        json_build_object('id',\(t).id,'name',\(t).name,'description',\(t).description,'start_time',remas_ts(\(t).start_time),\
        'end_time',remas_ts(\(t).end_time),'status',remas_status(\(t).start_time, \(t).end_time),'tags',\(tags(t)),'resources',\(resources(t)),\
        'owner',(SELECT \(JSONSQL.userSimple("tow")) FROM users tow WHERE tow.id = \(t).owner_id))
        """
    }

    /// A page of tasks as a JSON array; `filter` and `order` are code constants, the page comes as binds.
    static func page(element: String, filter: String, order: String) -> String {
        """
        SELECT COALESCE(json_agg(\(element) ORDER BY \(order)), '[]'::json)::text
        FROM (SELECT * FROM tasks pt WHERE \(filter) ORDER BY \(order) LIMIT $1 OFFSET $2) pt
        """
    }
}

struct TaskStatement: JSONByIDStatement {
    static let sql = "SELECT \(TaskSQL.full("t"))::text FROM tasks t WHERE t.id = $1"
    let id: Int
}

enum TaskList: ListDefinition {
    static let pageSQL = JSONSQL.listPage(JSONSQL.taskSimple("t"), table: "tasks", alias: "t")
}

enum UserTaskList: ListDefinition {
    static let pageSQL = JSONSQL.listPage(JSONSQL.taskSimple("t"), table: "tasks", alias: "t", where: "t.owner_id = $1")
}

/// One page of `/task/user/{id}/active|finished` and `/task/active|finished`. Orders carry the id as a tie-breaker, so pages never overlap or skip rows.
protocol TaskPage: JSONStatement {
    var limit: Int64 { get }
    var offset: Int64 { get }
    var userID: Int { get }
}

extension TaskPage {
    static var bindingDataTypes: [PostgresDataType] { [.int8, .int8, .int4] }
    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(self.limit)
        bindings.append(self.offset)
        bindings.append(Int32(truncatingIfNeeded: self.userID))
        return bindings
    }
}

enum TaskPageSQL {
    static let activeOrder = "pt.start_time ASC, pt.id ASC"
    static let finishedOrder = "pt.start_time DESC, pt.id DESC"
}

struct UserActivePage: TaskPage {
    static let sql = TaskSQL.page(
        element: TaskSQL.full("pt"), filter: "pt.end_time > localtimestamp AND pt.owner_id = $3", order: TaskPageSQL.activeOrder)
    let limit: Int64, offset: Int64, userID: Int
}

struct UserFinishedPage: TaskPage {
    static let sql = TaskSQL.page(
        element: TaskSQL.full("pt"), filter: "pt.end_time <= localtimestamp AND pt.owner_id = $3", order: TaskPageSQL.finishedOrder)
    let limit: Int64, offset: Int64, userID: Int
}

struct AllActivePage: TaskPage {
    static let sql = TaskSQL.page(
        element: TaskSQL.fullWithOwner("pt"), filter: "pt.end_time > localtimestamp AND $3::int IS NOT NULL",
        order: TaskPageSQL.activeOrder)
    let limit: Int64, offset: Int64, userID: Int
}

struct AllFinishedPage: TaskPage {
    static let sql = TaskSQL.page(
        element: TaskSQL.fullWithOwner("pt"), filter: "pt.end_time <= localtimestamp AND $3::int IS NOT NULL", order: TaskPageSQL.finishedOrder)
    let limit: Int64, offset: Int64, userID: Int
}

/// Allocations of every scheduled or running task touching the window (closed interval), with current capacities;
/// then, for every maintenance window touching it that is not over, a block of each covered node's whole capacity
/// (at least 1) per resource, owned by `Timeline.Allocation.maintenance`: remas-ui shows the node as full. The tasks
/// are found by the `&&` on `tasks_period_idx` (a superset of the exact bounds after it, whatever the order of `$1` and
/// `$2`); bounded on the end time alone, a week read every future task (59,000 at the national-centre size: 70 ms
/// against 18 ms).
struct SchedulingStatement: NamedStatement {
    typealias Row = Timeline.Allocation
    static let sql = """
        SELECT t.id, t.owner_id, (extract(epoch FROM t.start_time) * 1000000)::int8, (extract(epoch FROM t.end_time) * 1000000)::int8,
               a.node_id, a.resource_id, a.amount, COALESCE(nr.amount, 0)
        FROM tasks t
        JOIN allocations a ON a.task_id = t.id
        LEFT JOIN node_resources nr ON nr.node_id = a.node_id AND nr.resource_id = a.resource_id
        WHERE tsrange(t.start_time, t.end_time)
                && tsrange(LEAST($1::timestamp - interval '1 microsecond', $2::timestamp), GREATEST($1::timestamp, $2::timestamp), '[]')
          AND t.end_time > localtimestamp AND t.end_time >= $1::timestamp AND t.start_time <= $2::timestamp
          AND t.id IS DISTINCT FROM $3
        UNION ALL
        SELECT 0, \(Timeline.Allocation.maintenance), (extract(epoch FROM w.start_time) * 1000000)::int8,
               (extract(epoch FROM w.end_time) * 1000000)::int8, nr.node_id, nr.resource_id, GREATEST(nr.amount, 1), nr.amount
        FROM maintenance_windows w
        JOIN node_resources nr ON w.all_nodes OR nr.node_id IN (SELECT m.node_id FROM maintenance_nodes m WHERE m.window_id = w.id)
        WHERE w.end_time > localtimestamp AND w.end_time >= $1::timestamp AND w.start_time <= $2::timestamp
        ORDER BY 3, 1, 5, 6
        """
    static var bindingDataTypes: [PostgresDataType] { [.text, .text, .int4] }

    let start: String
    let end: String
    let exclude: Int32?

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(self.start)
        bindings.append(self.end)
        bindings.append(self.exclude)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Timeline.Allocation {
        let (task, owner, start, end, node, resource, amount, capacity) = try row.decode((Int, Int, Int64, Int64, Int, Int, Int64, Int64).self)
        return Timeline.Allocation(
            taskID: task, ownerID: owner, start: start, end: end, nodeID: node, resourceID: resource, amount: amount, capacity: capacity)
    }
}
