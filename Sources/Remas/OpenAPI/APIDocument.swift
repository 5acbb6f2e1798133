import Foundation

/// The OpenAPI 3.1 description of our API, served at `GET /openapi.json` and rendered by `GET /docs`.
///
/// Written by hand from our own controllers (STYLE: one place per concern): `operations` lists every route with its
/// body, its answer and the errors it can give, `schemas` the JSON objects. `APIDocumentTests` keeps the list equal to
/// the routes the router registers, and checks real answers against the documented schemas, so the document cannot
/// drift from the server silently.
public enum APIDocument {
    /// Who may call an operation; every bearer operation answers 401 without a valid access token.
    enum Access: Equatable {
        case open, user, admin
        /// The refresh endpoint takes the refresh token, not the access token.
        case refreshToken
        /// Machine routes: an API key holding the scope, or an admin's access token.
        case machine(String)
    }

    enum Body {
        case json(String)
        case login
    }

    enum Reply {
        case json(JSONValue)
        /// JSON, or CSV with `format=csv`.
        case jsonOrCSV(JSONValue)
        case text(String, example: String)
        case html
    }

    struct Operation {
        let method: String
        let path: String  // OpenAPI form, `{user_id}`
        let tag: String
        let summary: String
        let access: Access
        var body: Body? = nil
        /// Required query parameters (times).
        var query: [String] = []
        /// Optional query parameters (times).
        var optionalQuery: [String] = []
        /// Optional integer query parameters.
        var integerQuery: [String] = []
        /// Optional query parameters of a closed set of words.
        var choiceQuery: [(String, [String])] = []
        let reply: Reply
        /// A list the server reads in pages (`ListPages`): optional `offset` and `limit`.
        var window: Bool { self.method == "get" && Self.windowed.contains(self.path) }

        /// The routes answered by `ListPages` (their controllers call `Request.listWindow`; `APIDocumentTests` checks
        /// each one against the router).
        static let windowed: Set<String> = [
            "/user", "/group", "/node", "/resource", "/resource_alias", "/limit", "/limit/user/{user_id}", "/limit/group/{group_id}",
            "/task_tag", "/task_tag/user/{user_id}", "/task_tag/group/{group_id}", "/task", "/task/user/{user_id}", "/notification",
            "/notification/owner/{owner_id}",
        ]
        /// POST /user and POST /group answer 201, as the original does, and POST /maintenance; everything else 200.
        var success = 200
        /// Errors besides 401 (from `access`), 422 (every operation with a parameter or a body) and 5XX (every one).
        var errors: [Int] = []
        var description: String? = nil
    }

    // MARK: schema helpers

    static func ref(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }
    static func array(_ items: JSONValue) -> JSONValue { ["type": "array", "items": items] }
    static func nullable(_ schema: JSONValue) -> JSONValue {
        if case .string(let type)? = schema["type"], case .object(var o) = schema {
            o["type"] = [.string(type), "null"]
            return .object(o)
        }
        return ["anyOf": [schema, ["type": "null"]]]
    }
    static func object(_ properties: [String: JSONValue], required: [String], description: String? = nil) -> JSONValue {
        var o: [String: JSONValue] = [
            "type": "object", "properties": .object(properties), "required": .array(required.map(JSONValue.string)),
        ]
        if let description { o["description"] = .string(description) }
        return .object(o)
    }
    /// Every object whose properties are all required (answers: field sets are exact).
    static func exact(_ properties: [String: JSONValue], description: String? = nil) -> JSONValue {
        object(properties, required: properties.keys.sorted(), description: description)
    }

    static let id: JSONValue = ["type": "integer", "minimum": .int(Int64(Int32.min)), "maximum": .int(Int64(Int32.max))]
    static let amount: JSONValue = ["type": "integer", "format": "int64"]
    static let string: JSONValue = ["type": "string"]
    static let text: JSONValue = nullable(string)
    static let boolean: JSONValue = ["type": "boolean"]
    static let ids: JSONValue = array(id)
    static let labels: JSONValue = ["type": "object", "additionalProperties": ["type": "string"]]
    /// Answers carry naive local times (the server's `TIME_ZONE`), no offset, fractions only when non-zero.
    static let localTime: JSONValue = [
        "type": "string", "pattern": #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$"#,
        "examples": ["2030-01-01T10:00:00"],
    ]
    /// Requests may also carry an offset (converted to local time) or a space instead of `T`.
    static let timeInput: JSONValue = [
        "type": "string", "examples": ["2030-01-01T10:00:00"],
        "description": "ISO 8601 date and time; without an offset it is local time of the server's TIME_ZONE",
    ]
    static let status: JSONValue = ["type": "string", "enum": ["scheduled", "running", "finished"]]
    static let unit: JSONValue = ["type": "string", "enum": .array(ResourceUnit.allCases.map { .string($0.rawValue) })]
    static let notificationType: JSONValue = ["type": "string", "enum": .array(NotificationType.allCases.map { .string($0.rawValue) })]
    /// The Notification body's lenient integers: a number, a numeric string, or `""` for a cleared form field.
    static let looseInteger: JSONValue = ["anyOf": [["type": "integer"], ["type": "string", "pattern": #"^\s*[+-]?\d*\s*$"#], ["type": "null"]]]

    // MARK: schemas

    static let schemas: [String: JSONValue] = [
        "Error": exact(["detail": string], description: "Every error, whatever its status, and the fixed messages of deletes"),
        "Message": exact(["detail": string]),
        "Probe": exact(["status": string]),
        "TokenPair": exact(["access_token": string, "refresh_token": string]),

        // Flat rows.
        "UserSimple": exact(["id": id, "name": text, "surname": text, "username": string, "email": string, "uid": id]),
        "GroupFlat": exact(["id": id, "name": string, "description": text, "users_share_statistics": boolean, "parent_id": nullable(id)]),
        "LimitFlat": exact([
            "id": id, "name": string, "description": text, "amount": amount, "user_id": nullable(id), "group_id": nullable(id),
            "resource_id": id,
        ]),
        "TaskFlat": exact([
            "id": id, "name": string, "description": text, "start_time": localTime, "end_time": localTime, "status": status,
            "owner_id": id,
        ]),
        "TaskTagFlat": exact(["id": id, "name": string, "description": text, "user_id": id]),
        "Notification": exact([
            "id": id, "name": string, "description": text, "time_offset": nullable(id), "notification_template": text,
            "type": notificationType, "default_amount": nullable(amount), "owner_id": nullable(id), "resource_id": nullable(id),
        ]),
        "ResourceFlat": exact(["id": id, "name": string, "description": text, "unit": unit]),
        "NodeFlat": exact(["id": id, "name": string, "description": text]),
        "AliasFlat": exact(["id": id, "name": string, "description": text]),

        // Answers with relations.
        "UserFull": exact(
            [
                "id": id, "name": text, "surname": text, "username": string, "email": string, "uid": id, "group_id": id,
                "group": ref("GroupFlat"), "limits": array(ref("LimitFlat")), "tasks": array(ref("TaskFlat")),
                "tags": array(ref("TaskTagFlat")), "created_notifications": array(ref("Notification")),
                "notifications": array(ref("Notification")),
            ], description: "A user without the password hash; `notifications` are the ones assigned to the user directly"),
        "GroupResponse": exact([
            "id": id, "name": string, "description": text, "users_share_statistics": boolean,
            "parent": nullable(ref("GroupFlat")), "children": array(ref("GroupFlat")), "members": array(ref("UserSimple")),
            "limits": array(ref("LimitFlat")), "notifications": array(ref("Notification")),
        ]),
        "LimitResponse": exact([
            "id": id, "name": string, "description": text, "amount": amount, "user_id": nullable(id), "group_id": nullable(id),
            "resource_id": id, "node_ids": ids,
        ]),
        "NodeResource": exact(
            ["id": id, "name": string, "description": text, "unit": unit, "amount": amount],
            description: "A resource the node provides (`id` is the resource's) and how much of it"),
        "NodeResponse": exact(["id": id, "name": string, "description": text, "resources": array(ref("NodeResource"))]),
        "ResourceResponse": exact([
            "id": id, "name": string, "description": text, "unit": unit, "providing_nodes": array(ref("NodeFlat")),
            "aliases": array(ref("AliasFlat")),
        ]),
        "AliasResponse": exact(["id": id, "name": string, "description": text, "resources": array(ref("ResourceFlat"))]),
        "TaskSimple": exact([
            "id": id, "name": string, "description": text, "start_time": localTime, "end_time": localTime, "status": status,
            "owner": ref("UserSimple"),
        ]),
        "TaskTagResponse": exact([
            "id": id, "name": string, "description": text, "user": ref("UserSimple"), "tasks": array(ref("TaskSimple")),
        ]),
        "Allocation": exact(["node": ref("NodeFlat"), "resource": ref("ResourceFlat"), "amount": amount]),
        "TaskFull": exact([
            "id": id, "name": string, "description": text, "start_time": localTime, "end_time": localTime, "status": status,
            "tags": array(ref("TaskTagFlat")), "resources": array(ref("Allocation")),
        ]),
        "TaskFullWithOwner": exact([
            "id": id, "name": string, "description": text, "start_time": localTime, "end_time": localTime, "status": status,
            "tags": array(ref("TaskTagFlat")), "resources": array(ref("Allocation")), "owner": ref("UserSimple"),
        ]),
        "ResourceAvailability": exact(
            ["node_id": id, "resource_id": id, "amount": amount, "user_ids": ids],
            description: "`amount` is what is still free of the pair in the period; `user_ids` who holds some of it"),
        "UsagePeriod": exact(
            ["start_time": localTime, "end_time": localTime, "available_resources": array(ref("ResourceAvailability"))]),
        "LimitUsage": exact(
            ["limit_id": id, "limit_name": string, "resource_id": id, "node_id": id, "amount": amount, "peak": amount, "available": amount],
            description: "`amount` is the limit; `peak` the most the user holds at once in the window; `available` their difference"),
        "GroupNotifications": exact(["group_id": nullable(id), "group_name": text, "notifications": array(ref("Notification"))]),

        // Request bodies. Unknown keys are ignored; numeric strings are accepted where an integer is asked for.
        "LoginForm": object(
            [
                "username": string, "password": string, "grant_type": ["type": "string", "enum": ["password"]], "scope": string,
                "client_id": string, "client_secret": string,
            ], required: ["username", "password"]),
        "ChangePasswordRequest": object(["old_password": string, "new_password": ["type": "string", "minLength": 8]],
                                        required: ["old_password", "new_password"]),
        "SetPasswordRequest": object(["user_id": id, "new_password": string], required: ["user_id", "new_password"]),
        "UserCreateRequest": object(
            [
                "uid": id, "username": string, "email": string, "password": string, "name": text, "surname": text,
                "group_id": nullable(id),
            ], required: ["uid", "username", "email", "password"],
            description: "`group_id` left out or null puts the user in group 3"),
        "UserUpdateRequest": object(
            ["id": id, "name": text, "surname": text, "username": string, "email": string, "uid": id],
            required: ["id", "name", "surname", "username", "email", "uid"],
            description: "`username` is required but never changed; only admins may change `uid`"),
        "GroupCreateRequest": object(
            ["name": string, "description": text, "users_share_statistics": nullable(boolean), "parent_id": nullable(id)],
            required: ["name"]),
        "GroupUpdateRequest": object(
            ["id": id, "name": string, "description": text, "users_share_statistics": nullable(boolean)], required: ["id", "name"],
            description: "A full replacement: a left-out field becomes null or its default"),
        "UserGroupRequest": object(["user_id": id, "group_id": id], required: ["user_id", "group_id"]),
        "GroupParentRequest": object(["group_id": id, "parent_id": id], required: ["group_id", "parent_id"]),
        "NodeCreateRequest": object(["name": string, "description": text], required: ["name"]),
        "NodeUpdateRequest": object(["id": id, "name": string, "description": text], required: ["id", "name"]),
        "NodeAddResourceRequest": object(
            ["node_id": id, "resource_id": id, "amount": ["type": "integer", "format": "int64", "minimum": 1]],
            required: ["node_id", "resource_id", "amount"]),
        "NodeRemoveResourceRequest": object(
            ["node_id": id, "resource_id": id, "amount": nullable(amount)], required: ["node_id", "resource_id"],
            description: "`amount` is accepted and ignored"),
        "ResourceCreateRequest": object(["name": string, "description": text, "unit": unit], required: ["name"]),
        "ResourceUpdateRequest": object(["id": id, "name": string, "description": text, "unit": unit], required: ["id", "name"]),
        "ResourceAliasRequest": object(["resource_id": id, "alias_id": id], required: ["resource_id", "alias_id"]),
        "AliasCreateRequest": object(["name": string, "description": text], required: ["name"]),
        "AliasUpdateRequest": object(["id": id, "name": string, "description": text], required: ["id", "name"]),
        "MaintenanceWindow": exact(
            [
                "id": id, "name": string, "description": text, "start_time": localTime, "end_time": localTime, "node_ids": nullable(ids),
                "created_by": nullable(id), "affected_task_ids": ids,
            ],
            description: "node_ids null: every node. affected_task_ids: in the answer of a write, the tasks it met (kept, deleted or cut short); when read, the scheduled and running tasks overlapping the window on its nodes"),
        "ApiKeyRequest": object(
            ["name": string, "scopes": array(["type": "string", "enum": .array(ApiKeyScope.allCases.map { .string($0.rawValue) })])],
            required: ["name", "scopes"],
            description: "scopes: status opens PUT /node/{node_id}/status, alerts opens POST /alerts/alertmanager"),
        "ApiKey": exact(
            [
                "id": id, "name": string, "scopes": array(string), "created_by": nullable(id), "created_at": localTime,
                "last_used_at": nullable(localTime),
            ],
            description: "A machine credential, without its key (only the digest is stored)"),
        "ApiKeyCreated": exact(
            [
                "id": id, "name": string, "scopes": array(string), "created_by": nullable(id), "created_at": localTime,
                "last_used_at": nullable(localTime), "key": ["type": "string", "pattern": "^remas_[0-9a-f]{40}$"],
            ],
            description: "The new key, shown this once: send it as `Authorization: Bearer <key>`"),
        "NodeStatusRequest": object(
            ["status": ["type": "string", "enum": .array(NodeStatusRepository.Status.allCases.map { .string($0.rawValue) })], "message": text],
            required: ["status"]),
        "NodeStatus": exact(
            [
                "node_id": id, "status": ["type": "string", "enum": ["up", "down", "degraded", "unknown"]], "since": nullable(localTime),
                "message": text, "source": text,
            ],
            description: "unknown: never reported, or the last collector report is older than NODE_STATUS_STALE_SECONDS (since: when it went stale). source: alertmanager, api key <name> or user <username>"),
        "AlertmanagerWebhook": object(
            [
                "version": ["type": "string", "const": "4"], "groupKey": string, "truncatedAlerts": ["type": "integer"],
                "status": ["type": "string", "enum": ["firing", "resolved"]], "receiver": string, "groupLabels": labels,
                "commonLabels": labels, "commonAnnotations": labels, "externalURL": string,
                "alerts": array(object(
                    [
                        "status": ["type": "string", "enum": ["firing", "resolved"]], "labels": labels, "annotations": labels,
                        "startsAt": string, "endsAt": string, "generatorURL": string, "fingerprint": string,
                    ], required: ["status", "labels", "startsAt"])),
            ], required: ["version", "alerts"],
            description: "Alertmanager's webhook payload, version 4; only version, alerts and each alert's status, labels, annotations (summary or description: the message) and startsAt are read. An alert named in NODE_DOWN_ALERTS (label alertname) names its node by the label node, else by the host of the label instance (host:port, [v6]:port)"),
        "AlertmanagerResult": exact(
            [
                "applied": array(exact(["alertname": string, "node_id": id, "node": string, "status": text, "changed": boolean])),
                "ignored": array(exact(["alertname": string, "node": text, "reason": string])),
            ],
            description: "changed: the alert changed the node's status (a repeated delivery does not)"),
        "LimitRequest": object(
            [
                "id": nullable(id), "name": string, "description": text, "amount": amount, "user_id": nullable(id),
                "group_id": nullable(id), "resource_id": id, "node_ids": ids,
            ], required: ["name", "amount", "resource_id", "node_ids"],
            description: "Exactly one of `user_id` and `group_id` (0 counts as unset); `id` names the limit on PUT. Node ids that do not exist are dropped"),
        "MaintenanceRequest": object(
            [
                "name": string, "description": text, "start_time": timeInput, "end_time": timeInput, "node_ids": nullable(ids),
                "conflicts": ["type": ["string", "null"], "enum": .array(MaintenanceRepository.ConflictMode.allCases.map { .string($0.rawValue) } + [.null])],
            ], required: ["name", "start_time", "end_time"],
            description: "node_ids null or absent: every node, also nodes created later. conflicts (default refuse): what happens to the scheduled and running reservations the window overlaps: refuse (409 naming them), keep, or cancel (scheduled ones deleted, running ones end where the window starts); with keep and cancel each owner is mailed once"),
        "TaskTagCreateRequest": object(["name": string, "description": text], required: ["name"]),
        "TaskTagUpdateRequest": object(
            ["id": id, "name": string, "description": text, "user_id": id], required: ["id", "name"],
            description: "Only admins may hand a tag to another user"),
        "AllocationRequest": object(
            ["node_id": id, "resource_id": id, "amount": ["type": "integer", "format": "int64", "minimum": 1]],
            required: ["node_id", "resource_id", "amount"]),
        "RecurringTaskRequest": object(
            ["task": ref("TaskRequest"), "rule": ["type": "string", "examples": ["FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10"]]],
            required: ["task", "rule"],
            description: "rule: an RRULE (RFC 5545) with FREQ=DAILY or WEEKLY, INTERVAL, BYDAY (weekly; plain weekdays), and COUNT or UNTIL (YYYYMMDD, YYYYMMDDTHHMMSS local, or …Z); at most 366 occurrences. task is the body of POST /task (id null): its times are the first occurrence's; every occurrence keeps that local wall-clock time"),
        "UsageReport": object(
            [
                "start": localTime, "end": localTime, "by": ["type": "string", "enum": ["user", "group", "node", "resource"]],
                "rows": array(object(
                    [
                        "id": id, "name": string, "tasks": ["type": "integer"],
                        "resources": array(exact([
                            "resource_id": id, "resource": string, "unit": unit, "reserved_hours": ["type": "number"], "peak": amount,
                        ])),
                        "used": exact([
                            "cpu_core_hours": nullable(["type": "number"]), "peak_memory_bytes": nullable(["type": "number"]),
                            "efficiency": nullable(["type": "number"]),
                        ]),
                    ], required: ["id", "name", "tasks", "resources"])),
                "used_unavailable": text,
            ], required: ["start", "end", "by", "rows"],
            description: "Per row and resource: reserved_hours = amount x hours within the period, peak = the most held at once; tasks overlapping the period. With PROMETHEUS_URL and by=user, each row has used (measured CPU core-hours, peak memory, efficiency = used / reserved CPU core-hours) and used_unavailable says why when Prometheus did not answer"),
        "CalendarURL": exact(["url": string], description: "The secret feed URL; asking again rotates it"),
        "TaskSeriesCreated": exact(["series_id": id, "rule": string, "task_ids": ids]),
        "TaskSeries": exact(["series_id": id, "rule": string, "owner_id": id, "task_ids": ids], description: "task_ids: the occurrences left, by start"),
        "TaskRequest": object(
            [
                "id": nullable(id), "name": string, "description": text, "tag_ids": ids,
                "resource_allocations": array(ref("AllocationRequest")), "start_time": timeInput, "end_time": timeInput,
            ], required: ["id", "name", "description", "tag_ids", "resource_allocations", "start_time", "end_time"],
            description: "`id` null creates a task owned by the caller; an id updates the caller's own task. `tag_ids` is validated and ignored (tags are linked with /task/add_tag)"),
        "PageRequest": object(
            ["page_number": ["type": "integer", "minimum": 0], "page_size": ["type": "integer", "minimum": 0]],
            required: ["page_number", "page_size"]),
        "SchedulingRequest": object(
            ["start_time": timeInput, "end_time": timeInput, "exclude_task_id": nullable(id)], required: ["start_time", "end_time"]),
        "TaskTagLinkRequest": object(["task_id": nullable(id), "tag_id": nullable(id)], required: []),
        "NotificationRequest": object(
            [
                "id": nullable(id), "name": string, "description": text, "time_offset": looseInteger,
                "notification_template": text, "type": nullable(notificationType), "default_amount": looseInteger,
                "resource_id": looseInteger,
            ], required: ["name"],
            description: "`id` names the notification on PUT; `owner_id` and receivers in the body are ignored. Task reminders need `time_offset` (seconds before the start or end); Grafana types need `resource_id` and a template that renders to a JSON object"),
        "AssignRequest": object(
            ["notification_id": id, "user_id": nullable(id), "group_id": nullable(id)], required: ["notification_id"],
            description: "Exactly one of `user_id` and `group_id`"),
    ]

    // MARK: operations

    static let operations: [Operation] = [
        // Service
        .init(method: "get", path: "/", tag: "service", summary: "Greeting", access: .open, reply: .json(ref("Message"))),
        .init(method: "get", path: "/grafana-link", tag: "service", summary: "Where the UI sends users for Grafana",
              access: .open, reply: .json(ref("Message")), description: "`detail` holds GRAFANA_REDIRECT_URL"),
        .init(method: "get", path: "/health", tag: "service", summary: "The process answers", access: .open,
              reply: .json(ref("Probe"))),
        .init(method: "get", path: "/ready", tag: "service", summary: "The process reaches its database", access: .open,
              reply: .json(ref("Probe")), description: "503 while PostgreSQL is unreachable; load balancers route by it"),
        .init(method: "get", path: "/metrics", tag: "service", summary: "Prometheus metrics", access: .open,
              reply: .text("text/plain; version=0.0.4", example: "remas_tasks{status=\"running\"} 3"),
              description: "Present unless METRICS_ENABLED=false"),
        .init(method: "get", path: "/openapi.json", tag: "service", summary: "This document", access: .open,
              reply: .json(["type": "object"])),
        .init(method: "get", path: "/docs", tag: "service", summary: "This document as a page", access: .open, reply: .html),

        // Authentication
        .init(method: "post", path: "/authentication/token", tag: "authentication", summary: "Log in", access: .open,
              body: .login, reply: .json(ref("TokenPair")), errors: [401, 429],
              description: "401 `Wrong username or password!`. The access token goes into `Authorization: Bearer …`. "
                + "A login starts a session: both tokens carry its id (claim `sid`). After 5 failed logins for one "
                + "username from one client address within 15 minutes, or 50 from one address, that client gets 429 with "
                + "`Retry-After` (60 s, doubling with each further failure, at most 15 minutes; see the README)"),
        .init(method: "post", path: "/authentication/refresh", tag: "authentication", summary: "A new token pair",
              access: .refreshToken, reply: .json(ref("TokenPair")),
              description: "Send the refresh token as the bearer token; no body. The new pair stays in the session"),
        .init(method: "post", path: "/authentication/change_password", tag: "authentication", summary: "Change the own password",
              access: .user, body: .json("ChangePasswordRequest"), reply: .json(ref("Message")), errors: [400, 429],
              description: "Ends every other session of the user; the calling session (its access and refresh token) "
                + "goes on. A wrong old password counts as a failed login"),
        .init(method: "post", path: "/authentication/set_password", tag: "authentication", summary: "Set a user's password",
              access: .admin, body: .json("SetPasswordRequest"), reply: .json(ref("Message")), errors: [404],
              description: "Ends every session of the user"),
        .init(method: "post", path: "/authentication/logout", tag: "authentication", summary: "End the calling session",
              access: .user, reply: .json(ref("Message")),
              description: "The session's access and refresh tokens stop working on every replica; the user's other "
                + "sessions go on"),

        // Users
        .init(method: "get", path: "/user", tag: "users", summary: "All users", access: .user, reply: .json(array(ref("UserFull")))),
        .init(method: "get", path: "/user/{user_id}", tag: "users", summary: "One user (admin or the user)", access: .user,
              reply: .json(ref("UserFull")), errors: [403, 404]),
        .init(method: "post", path: "/user", tag: "users", summary: "Create a user", access: .admin,
              body: .json("UserCreateRequest"), reply: .json(ref("UserFull")), success: 201, errors: [404, 409]),
        .init(method: "put", path: "/user", tag: "users", summary: "Update a user (admin or the user)", access: .user,
              body: .json("UserUpdateRequest"), reply: .json(ref("UserFull")), errors: [403, 404, 409]),
        .init(method: "delete", path: "/user/{user_id}", tag: "users", summary: "Delete a user", access: .admin,
              reply: .json(ref("Message")), errors: [404, 409],
              description: "409 while the user owns scheduled or running tasks"),

        // Groups
        .init(method: "get", path: "/group", tag: "groups", summary: "All groups", access: .admin,
              reply: .json(array(ref("GroupResponse")))),
        .init(method: "get", path: "/group/{group_id}", tag: "groups", summary: "One group", access: .user,
              reply: .json(ref("GroupResponse")), errors: [403, 404]),
        .init(method: "post", path: "/group", tag: "groups", summary: "Create a group", access: .admin,
              body: .json("GroupCreateRequest"), reply: .json(ref("GroupResponse")), success: 201, errors: [404, 409]),
        .init(method: "put", path: "/group", tag: "groups", summary: "Update a group", access: .admin,
              body: .json("GroupUpdateRequest"), reply: .json(ref("GroupResponse")), errors: [404, 409]),
        .init(method: "delete", path: "/group/{group_id}", tag: "groups", summary: "Delete a group", access: .admin,
              reply: .json(ref("Message")), errors: [400, 404, 409]),
        .init(method: "post", path: "/group/add_user", tag: "groups", summary: "Move a user into a group", access: .admin,
              body: .json("UserGroupRequest"), reply: .json(ref("GroupResponse")), errors: [404]),
        .init(method: "post", path: "/group/change_parent", tag: "groups", summary: "Move a group under another",
              access: .admin, body: .json("GroupParentRequest"), reply: .json(ref("GroupResponse")), errors: [400, 404]),

        // Nodes
        .init(method: "get", path: "/node", tag: "nodes", summary: "All nodes", access: .user, reply: .json(array(ref("NodeResponse")))),
        .init(method: "get", path: "/node/{node_id}", tag: "nodes", summary: "One node", access: .user,
              reply: .json(ref("NodeResponse")), errors: [404]),
        .init(method: "post", path: "/node", tag: "nodes", summary: "Create a node", access: .admin,
              body: .json("NodeCreateRequest"), reply: .json(ref("NodeResponse")), errors: [409]),
        .init(method: "put", path: "/node", tag: "nodes", summary: "Update a node", access: .admin,
              body: .json("NodeUpdateRequest"), reply: .json(ref("NodeResponse")), errors: [404, 409]),
        .init(method: "delete", path: "/node/{node_id}", tag: "nodes", summary: "Delete a node", access: .admin,
              reply: .json(ref("Message")), errors: [404, 409], description: "409 while tasks that have not ended use the node"),
        .init(method: "post", path: "/node/add_resource", tag: "nodes", summary: "Set the amount a node provides",
              access: .admin, body: .json("NodeAddResourceRequest"), reply: .json(ref("NodeResponse")), errors: [404]),
        .init(method: "post", path: "/node/remove_resource", tag: "nodes", summary: "Stop providing a resource",
              access: .admin, body: .json("NodeRemoveResourceRequest"), reply: .json(ref("NodeResponse")), errors: [404]),

        // Resources
        .init(method: "get", path: "/resource", tag: "resources", summary: "All resources", access: .user,
              reply: .json(array(ref("ResourceResponse")))),
        .init(method: "get", path: "/resource/{resource_id}", tag: "resources", summary: "One resource", access: .user,
              reply: .json(ref("ResourceResponse")), errors: [404]),
        .init(method: "post", path: "/resource", tag: "resources", summary: "Create a resource", access: .admin,
              body: .json("ResourceCreateRequest"), reply: .json(ref("ResourceResponse")), errors: [400, 409]),
        .init(method: "put", path: "/resource", tag: "resources", summary: "Update a resource", access: .admin,
              body: .json("ResourceUpdateRequest"), reply: .json(ref("ResourceResponse")), errors: [400, 404, 409]),
        .init(method: "delete", path: "/resource/{resource_id}", tag: "resources", summary: "Delete a resource",
              access: .admin, reply: .json(ref("Message")), errors: [404, 409]),
        .init(method: "post", path: "/resource/add_alias", tag: "resources", summary: "Give a resource an alias",
              access: .admin, body: .json("ResourceAliasRequest"), reply: .json(ref("ResourceResponse")), errors: [404, 409]),
        .init(method: "post", path: "/resource/remove_alias", tag: "resources", summary: "Take an alias from a resource",
              access: .admin, body: .json("ResourceAliasRequest"), reply: .json(ref("ResourceResponse")), errors: [404]),

        // Aliases
        .init(method: "get", path: "/resource_alias", tag: "aliases", summary: "All aliases", access: .user,
              reply: .json(array(ref("AliasResponse")))),
        .init(method: "get", path: "/resource_alias/{alias_id}", tag: "aliases", summary: "One alias", access: .user,
              reply: .json(ref("AliasResponse")), errors: [404]),
        .init(method: "post", path: "/resource_alias", tag: "aliases", summary: "Create an alias", access: .admin,
              body: .json("AliasCreateRequest"), reply: .json(ref("AliasResponse")), errors: [409]),
        .init(method: "put", path: "/resource_alias", tag: "aliases", summary: "Update an alias", access: .admin,
              body: .json("AliasUpdateRequest"), reply: .json(ref("AliasResponse")), errors: [404, 409]),
        .init(method: "delete", path: "/resource_alias/{alias_id}", tag: "aliases", summary: "Delete an alias",
              access: .admin, reply: .json(ref("Message")), errors: [404]),

        // Limits
        .init(method: "get", path: "/limit", tag: "limits", summary: "All limits", access: .admin,
              reply: .json(array(ref("LimitResponse")))),
        .init(method: "get", path: "/limit/{limit_id}", tag: "limits", summary: "One limit", access: .admin,
              reply: .json(ref("LimitResponse")), errors: [404]),
        .init(method: "get", path: "/limit/user/{user_id}", tag: "limits", summary: "Limits set on a user", access: .admin,
              reply: .json(array(ref("LimitResponse")))),
        .init(method: "get", path: "/limit/group/{group_id}", tag: "limits", summary: "Limits set on a group", access: .admin,
              reply: .json(array(ref("LimitResponse")))),
        .init(method: "get", path: "/limit/user_all/{user_id}", tag: "limits", summary: "Limits in force for a user",
              access: .user, reply: .json(array(ref("LimitResponse"))), errors: [403, 404],
              description: "The user's own limits and those inherited from the group chain; admin or the user"),
        .init(method: "get", path: "/limit/usage/{user_id}", tag: "limits", summary: "How much of each limit a user holds in a window",
              access: .user, query: ["start", "end"], reply: .json(array(ref("LimitUsage"))), errors: [400, 403, 404],
              description: "Per limit in force for the user and node: the peak of the user's scheduled and running reservations in [start, end) and what is left. Admin or the user."),
        .init(method: "get", path: "/limit/group_all/{group_id}", tag: "limits", summary: "Limits in force for a group",
              access: .user, reply: .json(array(ref("LimitResponse"))), errors: [403, 404]),
        .init(method: "post", path: "/limit", tag: "limits", summary: "Create a limit", access: .admin,
              body: .json("LimitRequest"), reply: .json(ref("LimitResponse")), errors: [400, 404, 409]),
        .init(method: "put", path: "/limit", tag: "limits", summary: "Update a limit", access: .admin,
              body: .json("LimitRequest"), reply: .json(ref("LimitResponse")), errors: [400, 404, 409]),
        .init(method: "delete", path: "/limit/{limit_id}", tag: "limits", summary: "Delete a limit", access: .admin,
              reply: .json(ref("Message")), errors: [404]),

        // Maintenance windows
        .init(method: "get", path: "/maintenance", tag: "maintenance", summary: "Maintenance windows", access: .user,
              optionalQuery: ["start", "end"], reply: .json(array(ref("MaintenanceWindow"))), errors: [400],
              description: "The windows that overlap [start, end) (either bound may be left out), by start"),
        .init(method: "get", path: "/maintenance/{maintenance_id}", tag: "maintenance", summary: "One maintenance window", access: .user,
              reply: .json(ref("MaintenanceWindow")), errors: [404]),
        .init(method: "post", path: "/maintenance", tag: "maintenance", summary: "Create a maintenance window", access: .admin,
              body: .json("MaintenanceRequest"), reply: .json(ref("MaintenanceWindow")), success: 201, errors: [400, 404, 409],
              description: "While a window holds a node, bookings that overlap it are refused (409) and the timeline shows the node as full"),
        .init(method: "put", path: "/maintenance/{maintenance_id}", tag: "maintenance", summary: "Change a maintenance window",
              access: .admin, body: .json("MaintenanceRequest"), reply: .json(ref("MaintenanceWindow")), errors: [400, 404, 409],
              description: "The whole window is replaced; conflicts applies to the new interval and nodes"),
        .init(method: "delete", path: "/maintenance/{maintenance_id}", tag: "maintenance", summary: "Delete a maintenance window",
              access: .admin, reply: .json(ref("Message")), errors: [404]),

        // Machine credentials and node status
        .init(method: "post", path: "/apikey", tag: "node status", summary: "Create an API key", access: .admin,
              body: .json("ApiKeyRequest"), reply: .json(ref("ApiKeyCreated")), success: 201, errors: [400],
              description: "For collectors (scope status) and Alertmanager (scope alerts). Keys never act as a user token"),
        .init(method: "get", path: "/apikey", tag: "node status", summary: "API keys, without their keys", access: .admin,
              reply: .json(array(ref("ApiKey")))),
        .init(method: "delete", path: "/apikey/{apikey_id}", tag: "node status", summary: "Delete an API key (it stops working at once)",
              access: .admin, reply: .json(ref("Message")), errors: [404]),
        .init(method: "get", path: "/node/status", tag: "node status", summary: "Every node's status", access: .user,
              reply: .json(array(ref("NodeStatus")))),
        .init(method: "put", path: "/node/{node_id}/status", tag: "node status", summary: "Report a node's status",
              access: .machine("status"), body: .json("NodeStatusRequest"), reply: .json(ref("NodeStatus")), errors: [404],
              description: "A collector's report. Going down mails the owners of the node's running reservations and of those starting within NODE_DOWN_NOTICE_HOURS, and the admins, once per outage; leaving down mails them again. While down, bookings on the node that start within NODE_DOWN_BOOKING_GUARD_MINUTES are refused (409)"),
        .init(method: "post", path: "/alerts/alertmanager", tag: "node status", summary: "Alertmanager's webhook receiver",
              access: .machine("alerts"), body: .json("AlertmanagerWebhook"), reply: .json(ref("AlertmanagerResult")),
              description: "A firing node-down alert marks its node down, its resolution marks it up; repeated deliveries change nothing and mail no one twice"),

        // Reports
        .init(method: "get", path: "/report/usage", tag: "reports", summary: "Reserved (and measured) use over a period", access: .user,
              query: ["start", "end"], choiceQuery: [("by", ["user", "group", "node", "resource"]), ("format", ["json", "csv"])],
              reply: .jsonOrCSV(ref("UsageReport")), errors: [400],
              description: "Admins see everyone; a user sees their own reservations only. format=csv: a header row, RFC 4180 quoting"),

        // Calendar feeds
        .init(method: "post", path: "/calendar/token", tag: "calendar", summary: "Create or rotate the caller's feed URL", access: .user,
              reply: .json(ref("CalendarURL"))),
        .init(method: "delete", path: "/calendar/token", tag: "calendar", summary: "End the caller's feed", access: .user,
              reply: .json(ref("Message")), errors: [404]),
        .init(method: "get", path: "/calendar/{feed}", tag: "calendar", summary: "The iCalendar feed (feed = <token>.ics)",
              access: .open, integerQuery: ["node"], reply: .text("text/calendar; charset=utf-8", example: "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n…"),
              errors: [403, 404],
              description: "No login: the token in the path is the credential (64 hex digits, then .ics). ?node=<id> on an admin's token shows everyone's reservations on the node. ETag and If-None-Match (304)"),

        // Task tags
        .init(method: "get", path: "/task_tag", tag: "task tags", summary: "All tags", access: .admin,
              reply: .json(array(ref("TaskTagResponse")))),
        .init(method: "get", path: "/task_tag/user/{user_id}", tag: "task tags", summary: "Tags of a user", access: .user,
              reply: .json(array(ref("TaskTagResponse"))), errors: [403]),
        .init(method: "get", path: "/task_tag/group/{group_id}", tag: "task tags", summary: "Tags of a group's members",
              access: .user, reply: .json(array(ref("TaskTagResponse"))), errors: [403, 404]),
        .init(method: "get", path: "/task_tag/{task_tag_id}", tag: "task tags", summary: "One tag", access: .user,
              reply: .json(ref("TaskTagResponse")), errors: [403, 404]),
        .init(method: "post", path: "/task_tag", tag: "task tags", summary: "Create a tag of the caller", access: .user,
              body: .json("TaskTagCreateRequest"), reply: .json(ref("TaskTagResponse")), errors: [409]),
        .init(method: "put", path: "/task_tag", tag: "task tags", summary: "Update a tag", access: .user,
              body: .json("TaskTagUpdateRequest"), reply: .json(ref("TaskTagResponse")), errors: [403, 404, 409]),
        .init(method: "delete", path: "/task_tag/{task_tag_id}", tag: "task tags", summary: "Delete a tag", access: .user,
              reply: .json(ref("Message")), errors: [403, 404]),

        // Tasks
        .init(method: "get", path: "/task", tag: "tasks", summary: "All tasks", access: .admin, reply: .json(array(ref("TaskSimple")))),
        .init(method: "get", path: "/task/user/{user_id}", tag: "tasks", summary: "Tasks of a user (admin or the user)",
              access: .user, reply: .json(array(ref("TaskSimple"))), errors: [403]),
        .init(method: "post", path: "/task/user/{user_id}/active", tag: "tasks", summary: "A page of a user's coming and running tasks",
              access: .user, body: .json("PageRequest"), reply: .json(array(ref("TaskFull"))), errors: [403],
              description: "Ordered by start, earliest first"),
        .init(method: "post", path: "/task/user/{user_id}/finished", tag: "tasks", summary: "A page of a user's finished tasks",
              access: .user, body: .json("PageRequest"), reply: .json(array(ref("TaskFull"))), errors: [403],
              description: "Ordered by start, latest first"),
        .init(method: "post", path: "/task/active", tag: "tasks", summary: "A page of everyone's coming and running tasks",
              access: .user, body: .json("PageRequest"), reply: .json(array(ref("TaskFullWithOwner")))),
        .init(method: "post", path: "/task/finished", tag: "tasks", summary: "A page of everyone's finished tasks",
              access: .user, body: .json("PageRequest"), reply: .json(array(ref("TaskFullWithOwner")))),
        .init(method: "get", path: "/task/{task_id}", tag: "tasks", summary: "One task", access: .user,
              reply: .json(ref("TaskFull")), errors: [403, 404],
              description: "Admins, the owner, and members of the owner's group when it shares statistics"),
        .init(method: "post", path: "/task", tag: "tasks", summary: "Book (or re-book) node resources", access: .user,
              body: .json("TaskRequest"), reply: .json(ref("TaskFull")), errors: [400, 403, 404, 409],
              description: "409 when a node would be over its capacity at some instant of the window, or the caller over a limit"),
        .init(method: "post", path: "/task/recurring", tag: "tasks", summary: "Book a recurring reservation (every occurrence or none)",
              access: .user, body: .json("RecurringTaskRequest"), reply: .json(ref("TaskSeriesCreated")), success: 201,
              errors: [400, 403, 404, 409],
              description: "One transaction: when any occurrence cannot be booked (capacity, limit, maintenance window, down node), 409 lists every failing occurrence and why, and nothing is written. Each occurrence is an ordinary task with its own reminders"),
        .init(method: "get", path: "/task/series/{series_id}", tag: "tasks", summary: "A recurring reservation (owner or admin)",
              access: .user, reply: .json(ref("TaskSeries")), errors: [403, 404]),
        .init(method: "delete", path: "/task/series/{series_id}", tag: "tasks", summary: "Delete a series' occurrences (the owner)",
              access: .user, optionalQuery: ["from"], reply: .json(ref("Message")), errors: [403, 404],
              description: "With from: the occurrences starting at or after it; without: all of them and the series"),
        .init(method: "post", path: "/task/get_scheduling", tag: "tasks", summary: "Free amounts over a window",
              access: .user, body: .json("SchedulingRequest"), reply: .json(array(ref("UsagePeriod"))),
              description: "Periods in time order; each lists the pairs that are partly taken in it"),
        .init(method: "delete", path: "/task/{task_id}", tag: "tasks", summary: "Delete an own task", access: .user,
              reply: .json(ref("Message")), errors: [403, 404]),
        .init(method: "post", path: "/task/add_tag", tag: "tasks", summary: "Tag a task", access: .user,
              body: .json("TaskTagLinkRequest"), reply: .json(ref("TaskFull")), errors: [403, 404, 409]),
        .init(method: "post", path: "/task/remove_tag", tag: "tasks", summary: "Untag a task", access: .user,
              body: .json("TaskTagLinkRequest"), reply: .json(ref("TaskFull")), errors: [403, 404]),

        // Notifications
        .init(method: "get", path: "/notification", tag: "notifications", summary: "All notifications", access: .admin,
              reply: .json(array(ref("Notification")))),
        .init(method: "get", path: "/notification/{notification_id}", tag: "notifications", summary: "One notification",
              access: .admin, reply: .json(ref("Notification")), errors: [404]),
        .init(method: "post", path: "/notification", tag: "notifications", summary: "Create a notification", access: .user,
              body: .json("NotificationRequest"), reply: .json(ref("Notification")), errors: [400, 404, 409]),
        .init(method: "put", path: "/notification", tag: "notifications", summary: "Update a notification (owner or admin)",
              access: .user, body: .json("NotificationRequest"), reply: .json(ref("Notification")), errors: [400, 403, 404, 409]),
        .init(method: "delete", path: "/notification/{notification_id}", tag: "notifications",
              summary: "Delete a notification (owner or admin)", access: .user, reply: .json(ref("Message")), errors: [403, 404]),
        .init(method: "post", path: "/notification/assign", tag: "notifications", summary: "Send a notification to a user or group",
              access: .user, body: .json("AssignRequest"), reply: .json(ref("Notification")), errors: [400, 403, 404, 409],
              description: "Admins assign to anyone; other users only their own notifications to themselves"),
        .init(method: "post", path: "/notification/unassign", tag: "notifications", summary: "Stop sending a notification",
              access: .user, body: .json("AssignRequest"), reply: .json(ref("Notification")), errors: [400, 403, 404]),
        .init(method: "get", path: "/notification/group/{group_id}", tag: "notifications",
              summary: "Notifications of a group and its ancestors", access: .user,
              reply: .json(array(ref("GroupNotifications"))), errors: [403, 404]),
        .init(method: "get", path: "/notification/user/{user_id}", tag: "notifications",
              summary: "Notifications a user receives, by level", access: .user,
              reply: .json(array(ref("GroupNotifications"))), errors: [403, 404],
              description: "First the direct assignments (group_id and group_name null), then the user's group and its ancestors"),
        .init(method: "get", path: "/notification/owner/{owner_id}", tag: "notifications", summary: "Notifications a user created",
              access: .user, reply: .json(array(ref("Notification"))), errors: [403, 404]),
    ]

    static let errorDescriptions: [Int: String] = [
        400: "The request breaks a rule of the API", 401: "No valid token", 403: "Not allowed for the caller",
        404: "Something named in the request does not exist", 409: "Conflicts with stored data (names, capacity, limits, references)",
        413: "The body is larger than MAX_BODY_BYTES", 422: "A missing or malformed field, parameter or body",
        429: "Too many failed logins from this client address; wait the seconds Retry-After names",
    ]

    // MARK: building

    /// The whole document. Built once per router; the server never changes it at run time.
    public static func document(metricsEnabled: Bool = true) -> JSONValue {
        var paths: [String: [String: JSONValue]] = [:]
        for op in operations(metricsEnabled: metricsEnabled) {
            paths[op.path, default: [:]][op.method] = operationObject(op)
        }
        let root: [String: JSONValue] = [
            "openapi": "3.1.0",
            "info": [
                "title": "remas",
                "version": "1.0.0",
                "description": """
                    Book node resources (CPU cores, memory, GPUs) of a shared cluster on a calendar. Wire-compatible \
                    with the REMAS API. Times are local wall-clock times of the server's TIME_ZONE without an offset. \
                    Every error answers `{"detail": "<text>"}`.
                    """,
            ],
            "paths": .object(paths.mapValues { .object($0) }),
            "components": [
                "schemas": .object(schemas),
                "securitySchemes": [
                    "bearer": [
                        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                        "description": "The access token of POST /authentication/token (the refresh token for /authentication/refresh); on the machine routes, an API key of POST /apikey or an admin's access token",
                    ]
                ],
            ],
            "tags": .array(tagOrder.map { ["name": .string($0)] }),
        ]
        return .object(root)
    }

    /// `offset`/`limit` of the lists read in pages (`Request.listWindow`).
    static let windowParameters: [JSONValue] = [
        [
            "name": "offset", "in": "query", "required": false, "schema": ["type": "integer", "format": "int64", "minimum": 0, "default": 0],
            "description": "Elements to skip, in id order.",
        ],
        [
            "name": "limit", "in": "query", "required": false, "schema": ["type": "integer", "format": "int64", "minimum": 0],
            "description": "At most this many elements; without it, every element from `offset` on. Long lists are streamed (chunked) in pages.",
        ],
    ]

    static let tagOrder = ["authentication", "users", "groups", "nodes", "resources", "aliases", "limits", "task tags", "tasks",
                           "notifications", "maintenance", "node status", "calendar", "reports", "service"]

    static func operationObject(_ op: Operation) -> JSONValue {
        var o: [String: JSONValue] = [
            "summary": .string(op.summary),
            "tags": [.string(op.tag)],
            "operationId": .string(operationID(op)),
        ]
        if let description = op.description { o["description"] = .string(description) }
        let parameters = pathParameters(op.path)
        // Path parameters are ids, except a calendar feed's file name.
        let feed: JSONValue = ["type": "string", "pattern": "^[0-9a-f]{64}\\.ics$"]
        let all: [JSONValue] = parameters.map { name in ["name": .string(name), "in": "path", "required": true, "schema": name == "feed" ? feed : id] }
            + op.query.map { name in ["name": .string(name), "in": "query", "required": true, "schema": timeInput] }
            + op.optionalQuery.map { name in ["name": .string(name), "in": "query", "required": false, "schema": timeInput] }
            + op.integerQuery.map { name in ["name": .string(name), "in": "query", "required": false, "schema": id] }
            + op.choiceQuery.map { name, words in
                ["name": .string(name), "in": "query", "required": false, "schema": ["type": "string", "enum": .array(words.map(JSONValue.string))]]
            }
            + (op.window ? windowParameters : [])
        if !all.isEmpty { o["parameters"] = .array(all) }
        switch op.access {
        case .open: o["security"] = []
        case .user, .admin, .refreshToken, .machine: o["security"] = [["bearer": []]]
        }
        switch op.body {
        case nil: break
        case .json(let name)?:
            o["requestBody"] = ["required": true, "content": ["application/json": ["schema": ref(name)]]]
        case .login?:
            let form: JSONValue = ["schema": ref("LoginForm")]
            o["requestBody"] = ["required": true, "content": ["application/x-www-form-urlencoded": form, "multipart/form-data": form]]
        }
        var responses: [String: JSONValue] = [:]
        switch op.reply {
        case .json(let schema):
            responses[String(op.success)] = [
                "description": op.success == 201 ? "Created" : "Success", "content": ["application/json": ["schema": schema]],
            ]
        case .jsonOrCSV(let schema):
            responses["200"] = [
                "description": "Success",
                "content": ["application/json": ["schema": schema], "text/csv; charset=utf-8": ["schema": ["type": "string"]]],
            ]
        case .text(let type, let example):
            let content: JSONValue = ["schema": ["type": "string", "examples": [.string(example)]]]
            responses["200"] = ["description": "Success", "content": .object([type: content])]
        case .html:
            responses["200"] = ["description": "An HTML page", "content": ["text/html": ["schema": string]]]
        }
        var codes = Set(op.errors)
        if op.access != .open { codes.insert(401) }
        switch op.access {
        case .admin, .machine: codes.insert(403)
        default: break
        }
        if !all.isEmpty || op.body != nil { codes.insert(422) }
        if op.body != nil { codes.insert(413) }
        for code in codes.sorted() {
            var response: [String: JSONValue] = [
                "description": .string(errorDescriptions[code] ?? "Error"),
                "content": ["application/json": ["schema": ref("Error")]],
            ]
            if code == 401 && op.access != .open {
                response["headers"] = ["WWW-Authenticate": ["schema": ["type": "string", "const": "Bearer"], "description": "When the token is missing or invalid"]]
            }
            if code == 429 {
                response["headers"] = ["Retry-After": ["schema": ["type": "string", "pattern": "^[0-9]+$"], "description": "Seconds to wait"]]
            }
            responses[String(code)] = .object(response)
        }
        responses["5XX"] = [
            "description": "The server or its database is unavailable (503 while PostgreSQL is unreachable)",
            "content": ["application/json": ["schema": ref("Error")]],
        ]
        o["responses"] = .object(responses)
        return .object(o)
    }

    static func pathParameters(_ path: String) -> [String] {
        path.split(separator: "/").compactMap { segment in
            segment.hasPrefix("{") && segment.hasSuffix("}") ? String(segment.dropFirst().dropLast()) : nil
        }
    }

    static func operationID(_ op: Operation) -> String {
        let words = op.path.split(separator: "/").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "{}")) }
        return ([op.method] + (words.isEmpty ? ["root"] : words)).joined(separator: "_")
    }

    /// The operations this server has (`/metrics` only while METRICS_ENABLED).
    static func operations(metricsEnabled: Bool) -> [Operation] {
        metricsEnabled ? operations : operations.filter { $0.path != "/metrics" }
    }
}
