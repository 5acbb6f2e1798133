import PostgresNIO

/// Prepared read statements of limits, tags, users and groups (one statement per request, planned once per
/// connection). Nodes, resources and aliases keep theirs in their repositories.
struct LimitListStatement: JSONListStatement {
    static let sql = JSONSQL.listDocument(JSONSQL.limitResponse("l"), table: "limits", alias: "l")
}

struct LimitStatement: JSONByIDStatement {
    static let sql = "SELECT \(JSONSQL.limitResponse("l"))::text FROM limits l WHERE l.id = $1"
    let id: Int
}

struct UserLimitsStatement: JSONByIDStatement {
    static let sql = JSONSQL.listDocument(JSONSQL.limitResponse("l"), table: "limits", alias: "l", where: "WHERE l.user_id = $1")
    let id: Int
}

struct GroupLimitsStatement: JSONByIDStatement {
    static let sql = JSONSQL.listDocument(JSONSQL.limitResponse("l"), table: "limits", alias: "l", where: "WHERE l.group_id = $1")
    let id: Int
}

struct TagListStatement: JSONListStatement {
    static let sql = JSONSQL.listDocument(JSONSQL.tagResponse("g"), table: "task_tags", alias: "g")
}

struct TagStatement: JSONByIDStatement {
    static let sql = "SELECT \(JSONSQL.tagResponse("g"))::text FROM task_tags g WHERE g.id = $1"
    let id: Int
}

struct UserTagsStatement: JSONByIDStatement {
    static let sql = JSONSQL.listDocument(JSONSQL.tagResponse("g"), table: "task_tags", alias: "g", where: "WHERE g.user_id = $1")
    let id: Int
}

struct GroupTagsStatement: JSONByIDStatement {
    static let sql = JSONSQL.listDocument(
        JSONSQL.tagResponse("g"), table: "task_tags", alias: "g", where: "WHERE g.user_id IN (SELECT id FROM users WHERE group_id = $1)")
    let id: Int
}

struct UserListStatement: JSONListStatement {
    static let sql = JSONSQL.listDocument(JSONSQL.userFull("u"), table: "users", alias: "u")
}

struct GroupListStatement: JSONListStatement {
    static let sql = JSONSQL.listDocument(JSONSQL.groupResponse("g"), table: "groups", alias: "g")
}
