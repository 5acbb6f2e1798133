/// SQL expressions that build the wire objects in PostgreSQL (`json_build_object` / `json_agg`).
///
/// Read endpoints return one JSON document from one statement: no N+1 queries, and no per-element encoding work in
/// Swift. Each function takes the alias of the row it renders. Only code constants are spliced into SQL.
enum JSONSQL {
    static func userSimple(_ u: String) -> String {
        "json_build_object('id',\(u).id,'name',\(u).name,'surname',\(u).surname,'username',\(u).username,'email',\(u).email,'uid',\(u).uid)"
    }

    static func groupFlat(_ g: String) -> String {
        """
        json_build_object('id',\(g).id,'name',\(g).name,'description',\(g).description,\
        'users_share_statistics',\(g).users_share_statistics,'parent_id',\(g).parent_id)
        """
    }

    static func limitFlat(_ l: String) -> String {
        """
        json_build_object('id',\(l).id,'name',\(l).name,'description',\(l).description,'amount',\(l).amount,\
        'user_id',\(l).user_id,'group_id',\(l).group_id,'resource_id',\(l).resource_id)
        """
    }

    static func limitResponse(_ l: String) -> String {
        """
        json_build_object('id',\(l).id,'name',\(l).name,'description',\(l).description,'amount',\(l).amount,\
        'user_id',\(l).user_id,'group_id',\(l).group_id,'resource_id',\(l).resource_id,\
        'node_ids',COALESCE((SELECT json_agg(ln.node_id ORDER BY ln.node_id) FROM limit_nodes ln WHERE ln.limit_id = \(l).id),'[]'::json))
        """
    }

    static func taskFlat(_ t: String) -> String {
        """
        json_build_object('id',\(t).id,'name',\(t).name,'description',\(t).description,'start_time',remas_ts(\(t).start_time),\
        'end_time',remas_ts(\(t).end_time),'status',remas_status(\(t).start_time, \(t).end_time),'owner_id',\(t).owner_id)
        """
    }

    static func taskSimple(_ t: String) -> String {
        """
        json_build_object('id',\(t).id,'name',\(t).name,'description',\(t).description,'start_time',remas_ts(\(t).start_time),\
        'end_time',remas_ts(\(t).end_time),'status',remas_status(\(t).start_time, \(t).end_time),\
        'owner',(SELECT \(userSimple("ow")) FROM users ow WHERE ow.id = \(t).owner_id))
        """
    }

    static func tagFlat(_ g: String) -> String {
        "json_build_object('id',\(g).id,'name',\(g).name,'description',\(g).description,'user_id',\(g).user_id)"
    }

    static func notificationFlat(_ n: String) -> String {
        """
        json_build_object('id',\(n).id,'name',\(n).name,'description',\(n).description,'time_offset',\(n).time_offset,\
        'notification_template',\(n).notification_template,'type',\(n).type,'default_amount',\(n).default_amount,\
        'owner_id',\(n).owner_id,'resource_id',\(n).resource_id)
        """
    }

    static func resourceFlat(_ r: String) -> String {
        "json_build_object('id',\(r).id,'name',\(r).name,'description',\(r).description,'unit',\(r).unit)"
    }

    static func nodeFlat(_ n: String) -> String {
        "json_build_object('id',\(n).id,'name',\(n).name,'description',\(n).description)"
    }

    /// `COALESCE((SELECT json_agg(<element> ORDER BY <order>) FROM <from>), '[]')`
    static func list(_ element: String, from: String, orderBy: String) -> String {
        "COALESCE((SELECT json_agg(\(element) ORDER BY \(orderBy)) FROM \(from)),'[]'::json)"
    }

    static func userFull(_ u: String) -> String {
        """
        json_build_object('id',\(u).id,'name',\(u).name,'surname',\(u).surname,'username',\(u).username,'email',\(u).email,\
        'uid',\(u).uid,'group_id',\(u).group_id,\
        'group',(SELECT \(groupFlat("ug")) FROM groups ug WHERE ug.id = \(u).group_id),\
        'limits',\(list(limitFlat("ul"), from: "limits ul WHERE ul.user_id = \(u).id", orderBy: "ul.id")),\
        'tasks',\(list(taskFlat("ut"), from: "tasks ut WHERE ut.owner_id = \(u).id", orderBy: "ut.id")),\
        'tags',\(list(tagFlat("utg"), from: "task_tags utg WHERE utg.user_id = \(u).id", orderBy: "utg.id")),\
        'created_notifications',\(list(notificationFlat("ucn"), from: "notifications ucn WHERE ucn.owner_id = \(u).id", orderBy: "ucn.id")),\
        'notifications',\(list(notificationFlat("un"), from: "notification_users unu JOIN notifications un ON un.id = unu.notification_id WHERE unu.user_id = \(u).id", orderBy: "un.id")))
        """
    }

    static func groupResponse(_ g: String) -> String {
        """
        json_build_object('id',\(g).id,'name',\(g).name,'description',\(g).description,\
        'users_share_statistics',\(g).users_share_statistics,\
        'parent',(SELECT \(groupFlat("gp")) FROM groups gp WHERE gp.id = \(g).parent_id),\
        'children',\(list(groupFlat("gc"), from: "groups gc WHERE gc.parent_id = \(g).id", orderBy: "gc.id")),\
        'members',\(list(userSimple("gm"), from: "users gm WHERE gm.group_id = \(g).id", orderBy: "gm.id")),\
        'limits',\(list(limitFlat("gl"), from: "limits gl WHERE gl.group_id = \(g).id", orderBy: "gl.id")),\
        'notifications',\(list(notificationFlat("gn"), from: "notification_groups gng JOIN notifications gn ON gn.id = gng.notification_id WHERE gng.group_id = \(g).id", orderBy: "gn.id")))
        """
    }

    static func aliasFlat(_ a: String) -> String {
        "json_build_object('id',\(a).id,'name',\(a).name,'description',\(a).description)"
    }

    static func resourceResponse(_ r: String) -> String {
        """
        json_build_object('id',\(r).id,'name',\(r).name,'description',\(r).description,'unit',\(r).unit,\
        'providing_nodes',\(list(nodeFlat("rpn"), from: "node_resources rpnr JOIN nodes rpn ON rpn.id = rpnr.node_id WHERE rpnr.resource_id = \(r).id", orderBy: "rpn.id")),\
        'aliases',\(list(aliasFlat("ra"), from: "resource_alias_links ral JOIN resource_aliases ra ON ra.id = ral.alias_id WHERE ral.resource_id = \(r).id", orderBy: "ra.id")))
        """
    }

    static func aliasResponse(_ a: String) -> String {
        """
        json_build_object('id',\(a).id,'name',\(a).name,'description',\(a).description,\
        'resources',\(list(resourceFlat("ar"), from: "resource_alias_links arl JOIN resources ar ON ar.id = arl.resource_id WHERE arl.alias_id = \(a).id", orderBy: "ar.id")))
        """
    }

    static func tagResponse(_ g: String) -> String {
        """
        json_build_object('id',\(g).id,'name',\(g).name,'description',\(g).description,\
        'user',(SELECT \(userSimple("tu")) FROM users tu WHERE tu.id = \(g).user_id),\
        'tasks',\(list(taskSimple("tt"), from: "task_tag_links ttl JOIN tasks tt ON tt.id = ttl.task_id WHERE ttl.tag_id = \(g).id", orderBy: "tt.id")))
        """
    }

    /// One page of a list (`ListDefinition`): rows `(id, element)` after the id `$2`, `$3` of them, `$4` skipped;
    /// `condition` may use the list's key `$1`.
    static func listPage(_ element: String, table: String, alias: String, where condition: String? = nil) -> String {
        let filter = condition.map { " AND (\($0))" } ?? ""
        return "SELECT \(alias).id, (\(element))::text FROM \(table) \(alias) WHERE \(alias).id > $2\(filter) ORDER BY \(alias).id LIMIT $3 OFFSET $4"
    }
}
