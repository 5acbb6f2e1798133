import Logging
import PostgresNIO

/// The scheduler's work queue (`events`): every statement that reads or writes it.
///
/// Rows are never deleted by processing: an event moves from `pending` to `done` (task start/end), `sent` or
/// `skipped` (reminders) or `failed`, and keeps its attempt count and last error. That record is what makes a reminder
/// go out once: a claim takes a pending row under a row lock (`FOR UPDATE SKIP LOCKED`), and the outcome is committed
/// with the lock still held, so a second scheduler never sees the row as pending again.
public struct EventRepository: Sendable {
    let db: Database

    public init(db: Database) { self.db = db }

    /// Recomputes the reminder events of the given users' tasks, or of `tasks` only.
    ///
    /// For every task and every `task_start`/`task_end` notification its owner receives (directly or through the group
    /// chain), the reminder is due at the task's start or end minus the offset:
    /// - a pending reminder moves to that time;
    /// - a sent, skipped or failed one stays as it is unless its due time moved later, then it is pending again;
    /// - a missing one is created, unless its task already started (`task_start`) or ended (`task_end`);
    /// - a pending reminder of a notification the owner no longer receives is removed (sent ones stay as history).
    func reschedule(users: [Int], tasks: [Int]? = nil, in tx: LeasedConnection, logger: Logger) async throws {
        guard !users.isEmpty else { return }
        let userBinds = users.map { Int32(truncatingIfNeeded: $0) }
        if let tasks {
            try await tx.run(
                RescheduleTaskRemindersStatement(users: userBinds, tasks: tasks.map { Int32(truncatingIfNeeded: $0) }), logger: logger)
        } else {
            try await tx.run(RescheduleUserRemindersStatement(ids: userBinds), logger: logger)
        }
    }

    /// After users moved between groups (their inherited notifications changed): recomputes their reminders in a
    /// transaction of its own, serialised with other receiver changes.
    func usersMoved(_ users: [Int], logger: Logger) async throws {
        guard !users.isEmpty else { return }
        try await self.db.transaction(logger: logger) { tx in
            try await self.lockReceivers(shared: false, in: tx, logger: logger)
            try await self.reschedule(users: users, in: tx, logger: logger)
        }
    }

    /// Who-receives-what changes (assignments, notification edits, group moves) take this lock exclusively; bookings
    /// take it shared. So a booking's reminders are computed either wholly before or wholly after such a change, and
    /// bookings never wait for each other.
    ///
    /// The same round trip makes the rest of the transaction use generic plans: PostgreSQL otherwise re-plans the
    /// prepared reminder statement on every run (custom plans: about 1 ms, against 0.2 ms with the cached generic plan).
    /// Bookings take it with their node locks, in one statement (`TaskRepository.lockAndRead`: the function of migration
    /// 0016 takes the same lock, by the same key, after the node locks, and sets the same plan mode).
    func lockReceivers(shared: Bool, in tx: LeasedConnection, logger: Logger) async throws {
        try await tx.query(
            "SELECT \(unescaped: Self.receiversLock(shared: shared)), set_config('plan_cache_mode', 'force_generic_plan', true)", logger: logger)
    }

    /// The SQL call that takes the receivers' lock (the bookings' function in migration 0016 calls it by the same key).
    static func receiversLock(shared: Bool) -> String {
        shared ? "pg_advisory_xact_lock_shared(hashtext('remas.receivers'))" : "pg_advisory_xact_lock(hashtext('remas.receivers'))"
    }

    // MARK: scheduler

    /// The earliest time at which a pending event is due (its retry time when it failed before): the scheduler's idle
    /// pass, one probe of `events_due_idx`, prepared (planning it cost 0.8 ms against 0.1 ms of running it on 10
    /// million events).
    func nextDue(logger: Logger) async throws -> LocalDateTime? {
        try await self.db.run(NextDueStatement(), logger: logger).first.map { LocalDateTime(microseconds: $0) }
    }

    /// Marks every due task start/end event done in one statement and returns the owners whose current allocations
    /// changed. Rows another scheduler holds are skipped (it reports them).
    func completeTaskEvents(dueBy now: LocalDateTime, logger: Logger) async throws -> [Int] {
        try await self.db.query(
            """
            WITH due AS (
                SELECT e.id FROM events e
                WHERE e.state = 'pending' AND e.type IN ('task_start', 'task_end') AND COALESCE(e.retry_at, e.time) <= \(now.sqlText)::timestamp
                FOR UPDATE SKIP LOCKED),
            done AS (
                UPDATE events e SET state = 'done', attempts = e.attempts + 1, processed_at = \(now.sqlText)::timestamp
                FROM due WHERE e.id = due.id RETURNING e.task_id)
            SELECT DISTINCT t.owner_id FROM done JOIN tasks t ON t.id = done.task_id ORDER BY t.owner_id
            """, logger: logger
        ).map { try $0.decode(Int.self) }
    }

    /// How many reminders and notices are due (counting at most `limit`).
    func countDueReminders(dueBy horizon: LocalDateTime, upTo limit: Int, logger: Logger) async throws
        -> Int
    {
        try await self.db.int(
            """
            SELECT count(*)::int FROM (
                SELECT 1 FROM events e
                WHERE e.state = 'pending' AND e.type IN ('other', 'notice') AND COALESCE(e.retry_at, e.time) <= \(horizon.sqlText)::timestamp
                LIMIT \(limit)) due
            """, logger: logger) ?? 0
    }

    /// Everything a reminder mail (or a notice) needs, read at send time (later renames show up in the mail).
    struct Reminder: Sendable {
        let eventID: Int
        let attempts: Int
        /// nil for a notice (notices are about no single task).
        let taskID: Int?
        /// The subject: the notification's name, or the notice's subject.
        let notificationName: String
        /// A reminder's `${var}` template, or a notice's finished text.
        let template: String?
        let variables: [String: String]
        let recipient: String

        var isNotice: Bool { self.taskID == nil }
    }

    /// A mail remas writes itself (`queueNotices`).
    struct Notice: Sendable {
        let recipient: Int
        let subject: String
        let body: String
        /// A second notice with the same key is dropped.
        var key: String? = nil
    }

    /// Queues a mail to a user inside the caller's transaction: sent by the scheduler like a reminder (once, retried),
    /// due now. A second notice with the same `key` is dropped.
    func queueNotice(to user: Int, subject: String, body: String, key: String? = nil, in tx: LeasedConnection, logger: Logger) async throws {
        try await self.queueNotices([Notice(recipient: user, subject: subject, body: body, key: key)], in: tx, logger: logger)
    }

    /// Queues many notices in one statement (an outage may tell a thousand owners at once).
    func queueNotices(_ notices: [Notice], in tx: LeasedConnection, logger: Logger) async throws {
        guard !notices.isEmpty else { return }
        try await tx.query(
            """
            INSERT INTO events (name, time, type, recipient_id, subject, body, notice_key)
            SELECT x.subject, localtimestamp, 'notice', x.recipient, x.subject, x.body, NULLIF(x.key, '')
            FROM unnest(\(notices.map { Int32(truncatingIfNeeded: $0.recipient) })::int4[], \(notices.map(\.subject))::text[],
                        \(notices.map(\.body))::text[], \(notices.map { $0.key ?? "" })::text[]) AS x(recipient, subject, body, key)
            ON CONFLICT (notice_key) WHERE notice_key IS NOT NULL DO NOTHING
            """, logger: logger)
    }

    /// Claims the next due reminder, locking its row until the transaction ends; nil when none is due.
    func claimReminder(dueBy horizon: LocalDateTime, in tx: LeasedConnection, logger: Logger) async throws -> Reminder? {
        try await tx.run(ClaimReminderStatement(horizon: horizon.sqlText), logger: logger).first
    }

    enum Outcome: Sendable {
        case sent
        case skipped(String)
        case retry(at: LocalDateTime, error: String)
        case failed(String)
    }

    /// Stores what happened to a claimed reminder (inside the claiming transaction). Absolute values, so a second call
    /// in the same transaction replaces the first: the scheduler records `.sent` before sending (leaving only the
    /// COMMIT between the mail server's "accepted" and the durable record) and overwrites it when the send failed.
    func record(_ outcome: Outcome, of reminder: Reminder, at now: LocalDateTime, in tx: LeasedConnection, logger: Logger) async throws {
        // (state, counts as an attempt, retry time, error); a retry stays pending and is not processed yet.
        let (state, attempted, retryAt, error): (String, Bool, LocalDateTime?, String?) =
            switch outcome {
            case .sent: ("sent", true, nil, nil)
            case .skipped(let reason): ("skipped", false, nil, reason)
            case .retry(let at, let error): ("pending", true, at, error)
            case .failed(let error): ("failed", true, nil, error)
            }
        let attempts = reminder.attempts + (attempted ? 1 : 0)
        try await tx.query(
            """
            UPDATE events SET state = \(state), attempts = \(attempts), retry_at = \(retryAt?.sqlText)::timestamp,
                last_error = \(error), processed_at = CASE WHEN \(state) = 'pending' THEN NULL ELSE \(now.sqlText)::timestamp END
            WHERE id = \(reminder.eventID)
            """, logger: logger)
    }

    // MARK: operator view

    public struct Row: Sendable {
        public let id: Int
        public let type: String
        public let state: String
        public let due: LocalDateTime
        public let taskID: Int?
        public let notificationID: Int?
        public let attempts: Int
        public let lastError: String?
        public let name: String
    }

    /// Pending and failed events, oldest due first (for `remas events`).
    public func unfinished(limit: Int, logger: Logger) async throws -> [Row] {
        try await self.db.query(
            """
            SELECT id, type, state, (extract(epoch FROM COALESCE(retry_at, time)) * 1000000)::int8, task_id, notification_id, attempts,
                   last_error, name
            FROM events WHERE state IN ('pending', 'failed') ORDER BY state DESC, COALESCE(retry_at, time), id LIMIT \(limit)
            """, logger: logger
        ).map { row in
            let (id, type, state, due, task, notification, attempts, error, name) =
                try row.decode((Int, String, String, Int64, Int?, Int?, Int, String?, String).self)
            return Row(
                id: id, type: type, state: state, due: LocalDateTime(microseconds: due), taskID: task, notificationID: notification,
                attempts: attempts, lastError: error, name: name)
        }
    }
}

/// The statement of `EventRepository.reschedule`, prepared: PostgreSQL spent about 3 ms planning it, more than running
/// it (0.4 ms for one task), on every booking. Two variants, so each keeps a good generic plan: one task, or all tasks
/// of the users.
enum RescheduleRemindersSQL {
    static func text(taskFilter: String) -> String {
        """
        WITH RECURSIVE \(NotificationRepository.receives(of: "$1::int4[]")),
        scope AS (
            SELECT t.id, t.name, t.owner_id, t.start_time, t.end_time FROM tasks t
            WHERE t.owner_id = ANY($1::int4[]) \(taskFilter)),
        \(Self.desired),
        removed AS (
            DELETE FROM events e USING scope s
            WHERE e.task_id = s.id AND e.notification_id IS NOT NULL AND e.state = 'pending'
              -- "not desired", checked against the small receiver set (an anti-join with desired was quadratic)
              AND NOT EXISTS (SELECT 1 FROM receives r JOIN notifications n ON n.id = r.notification_id
                              WHERE r.user_id = s.owner_id AND r.notification_id = e.notification_id
                                AND n.type IN ('task_start', 'task_end'))
            RETURNING 1),
        moved AS (
            UPDATE events e SET time = d.due, state = 'pending', retry_at = NULL,
                attempts = CASE WHEN e.state = 'pending' THEN e.attempts ELSE 0 END,
                processed_at = CASE WHEN e.state = 'pending' THEN e.processed_at END,
                last_error = CASE WHEN e.state = 'pending' THEN e.last_error END
            FROM desired d
            WHERE e.task_id = d.task_id AND e.notification_id = d.notification_id
              AND ((e.state = 'pending' AND e.time <> d.due) OR (e.state <> 'pending' AND d.due > e.time))
            RETURNING 1),
        \(Self.added())
        SELECT (SELECT count(*) FROM removed), (SELECT count(*) FROM moved), (SELECT count(*) FROM added)
        """
    }

    static func decode(_ row: PostgresRow) throws -> Int64 { try row.decode((Int64, Int64, Int64).self).2 }

    /// The reminders the tasks of `scope` (id, name, owner_id, start_time, end_time) should have: for every
    /// `task_start`/`task_end` notification their owner receives (`receives`), due at the start or end minus the
    /// offset, and whether one may still be created (its start or end is ahead).
    static let desired = """
        desired AS (
            SELECT s.id AS task_id, n.id AS notification_id, s.name AS task_name, n.name AS notification_name,
                   CASE n.type WHEN 'task_start' THEN s.start_time ELSE s.end_time END
                       - make_interval(secs => COALESCE(n.time_offset, 0)) AS due,
                   CASE n.type WHEN 'task_start' THEN s.start_time ELSE s.end_time END > localtimestamp AS creatable
            FROM scope s JOIN receives r ON r.user_id = s.owner_id JOIN notifications n ON n.id = r.notification_id
            WHERE n.type IN ('task_start', 'task_end'))
        """

    /// Creates the `desired` reminders that are creatable and missing. A new task's reminders are this alone: the
    /// statement that inserts new tasks (`NewTasksStatement`) ends with it, over the tasks it inserts.
    ///
    /// `newTasks`: the tasks are inserted by this very statement, so none has a reminder yet and no other transaction
    /// can see them to add one or delete them; every desired reminder is then inserted as it is. Otherwise a reminder
    /// that exists is left alone, and one that a concurrent reschedule inserts first is skipped (`ON CONFLICT`). Those
    /// two guards cost a probe of the events key and a speculative insertion (a WAL record more) per reminder, in every
    /// booking. And the tasks of the missing reminders are locked `FOR KEY SHARE` (`held`), as the foreign key from
    /// events to tasks did before migration 0019: a delete of one of them waits until this transaction ends (and then
    /// its trigger deletes the new reminder with it), and a task deleted meanwhile drops out of `held` instead of
    /// getting a reminder that names nothing.
    static func added(newTasks: Bool = false) -> String {
        let insert = """
            INSERT INTO events (name, description, time, type, task_id, notification_id)
                SELECT 'Task: ' || d.task_name || ', notification: ' || d.notification_name, NULL, d.due, 'other', d.task_id, d.notification_id
            """
        if newTasks {
            return """
                added AS (
                    \(insert)
                    FROM desired d WHERE d.creatable
                    RETURNING 1)
                """
        }
        return """
            held AS (
                SELECT d.* FROM desired d JOIN tasks t ON t.id = d.task_id
                WHERE d.creatable
                  AND NOT EXISTS (SELECT 1 FROM events e WHERE e.task_id = d.task_id AND e.notification_id = d.notification_id)
                FOR KEY SHARE OF t),
            added AS (
                \(insert)
                FROM held d
                ON CONFLICT DO NOTHING
                RETURNING 1)
            """
    }
}

/// `EventRepository.nextDue`.
struct NextDueStatement: NamedStatement {
    typealias Row = Int64
    static let sql = """
        SELECT (extract(epoch FROM COALESCE(retry_at, time)) * 1000000)::int8 FROM events WHERE state = 'pending'
        ORDER BY COALESCE(retry_at, time) LIMIT 1
        """
    static var bindingDataTypes: [PostgresDataType] { [] }

    func makeBindings() throws -> PostgresBindings { PostgresBindings() }

    func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
}

struct RescheduleTaskRemindersStatement: NamedStatement {
    typealias Row = Int64
    static let sql = RescheduleRemindersSQL.text(taskFilter: "AND t.id = ANY($2::int4[])")
    static var bindingDataTypes: [PostgresDataType] { [.int4Array, .int4Array] }

    let users: [Int32]
    let tasks: [Int32]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(self.users)
        bindings.append(self.tasks)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int64 { try RescheduleRemindersSQL.decode(row) }
}

struct RescheduleUserRemindersStatement: ByIDsStatement {
    typealias Row = Int64
    static let sql = RescheduleRemindersSQL.text(taskFilter: "")
    /// The users whose reminders are recomputed.
    let ids: [Int32]

    func decodeRow(_ row: PostgresRow) throws -> Int64 { try RescheduleRemindersSQL.decode(row) }
}

/// Claims the next due reminder (row-locked until the transaction ends) with everything its mail needs; prepared,
/// as it runs once per reminder.
struct ClaimReminderStatement: NamedStatement {
    typealias Row = EventRepository.Reminder
    static let sql = """
        WITH claimed AS (
            SELECT e.id, e.attempts, e.task_id, e.notification_id, e.recipient_id, e.subject, e.body FROM events e
            WHERE e.state = 'pending' AND e.type IN ('other', 'notice') AND COALESCE(e.retry_at, e.time) <= $1::timestamp
            ORDER BY COALESCE(e.retry_at, e.time), e.id
            LIMIT 1 FOR UPDATE OF e SKIP LOCKED)
        SELECT c.id, c.attempts, t.id, COALESCE(n.name, c.subject), COALESCE(c.body, n.notification_template),
               u.id, u.name, u.surname, u.username, u.uid, u.email, t.name, t.description,
               (extract(epoch FROM t.start_time) * 1000000)::int8, (extract(epoch FROM t.end_time) * 1000000)::int8
        FROM claimed c LEFT JOIN tasks t ON t.id = c.task_id JOIN users u ON u.id = COALESCE(c.recipient_id, t.owner_id)
        LEFT JOIN notifications n ON n.id = c.notification_id
        """
    static var bindingDataTypes: [PostgresDataType] { [.text] }

    let horizon: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(self.horizon)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> EventRepository.Reminder {
        let (eventID, attempts, taskID, notificationName, template, userID, name, surname, username, uid, email, taskName,
            taskDescription, startMicros, endMicros) =
            try row.decode((Int, Int, Int?, String, String?, Int, String?, String?, String, Int, String, String?, String?, Int64?, Int64?).self)
        var variables: [String: String] = [:]
        if let taskID, let taskName, let startMicros, let endMicros {
            // Rendered as the original's Python str(): None for null, "YYYY-MM-DD HH:MM:SS" for datetimes.
            variables = [
                "user_id": String(userID), "user_name": name ?? "None", "user_surname": surname ?? "None", "user_username": username,
                "user_uid": String(uid), "user_email": email, "task_id": String(taskID), "task_name": taskName,
                "task_description": taskDescription ?? "None", "task_start": LocalDateTime(microseconds: startMicros).spaced,
                "task_end": LocalDateTime(microseconds: endMicros).spaced,
            ]
        }
        return EventRepository.Reminder(
            eventID: eventID, attempts: attempts, taskID: taskID, notificationName: notificationName, template: template,
            variables: variables, recipient: email)
    }
}
