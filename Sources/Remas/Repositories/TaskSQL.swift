import PostgresNIO

/// Wire shapes of tasks (spec api-tasks §2.1), built by PostgreSQL.
enum TaskSQL {
    static func tags(_ t: String) -> String {
        JSONSQL.list(JSONSQL.tagFlat("ttg"), from: "task_tag_links ttl JOIN task_tags ttg ON ttg.id = ttl.tag_id WHERE ttl.task_id = \(t).id", orderBy: "ttg.id")
    }

    static func resources(_ t: String) -> String {
        JSONSQL.list(
            """
            json_build_object('node',json_build_object('id',tn.id,'name',tn.name,'description',tn.description),\
            'resource',json_build_object('id',tr.id,'name',tr.name,'description',tr.description,'unit',tr.unit),'amount',ta.amount)
            """,
            from: "allocations ta JOIN nodes tn ON tn.id = ta.node_id JOIN resources tr ON tr.id = ta.resource_id WHERE ta.task_id = \(t).id",
            orderBy: "ta.node_id, ta.resource_id")
    }

    /// TaskFull: `{id, name, description, start_time, end_time, status, tags, resources}`.
    static func full(_ t: String) -> String {
        """
        json_build_object('id',\(t).id,'name',\(t).name,'description',\(t).description,'start_time',remas_ts(\(t).start_time),\
        'end_time',remas_ts(\(t).end_time),'status',remas_status(\(t).start_time, \(t).end_time),'tags',\(tags(t)),'resources',\(resources(t)))
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

struct TaskListStatement: JSONListStatement {
    static let sql = JSONSQL.listDocument(JSONSQL.taskSimple("t"), table: "tasks", alias: "t")
}

struct UserTaskListStatement: JSONByIDStatement {
    static let sql = JSONSQL.listDocument(JSONSQL.taskSimple("t"), table: "tasks", alias: "t", where: "WHERE t.owner_id = $1")
    let id: Int
}

/// One page of T3–T6. Orders carry the id as a tie-breaker, so pages never overlap or skip rows.
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
