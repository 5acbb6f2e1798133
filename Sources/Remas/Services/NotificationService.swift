import Logging

/// Changes of notifications that touch who receives what: each in one transaction, under the receivers lock
/// (`EventRepository.lockReceivers`), with every receiver's reminders recomputed in the same transaction.
struct NotificationService: Sendable {
    let db: Database
    var notifications: NotificationRepository { NotificationRepository(db: self.db) }
    var events: EventRepository { EventRepository(db: self.db) }

    /// A full replacement of the editable fields: `change` maps the stored fields to the new ones (and may refuse
    /// them); only an admin or the owner may update. 404 for a notification that does not exist.
    func update(
        id: Int, caller: CurrentUser, logger: Logger, _ change: (NotificationRepository.Fields) throws -> NotificationRepository.Fields
    ) async throws {
        try await self.db.transaction(logger: logger) { tx in
            guard let stored = try await self.notifications.load(id: id, forUpdate: true, in: tx, logger: logger) else {
                throw AppError.notFound("Notification with id \(id) not found!")
            }
            guard caller.isAdmin || stored.ownerID == caller.id else {
                throw AppError.forbidden("Can't update notification owned by another user!")
            }
            let fields = try change(stored.fields)
            try await self.events.lockReceivers(shared: false, in: tx, logger: logger)
            try await self.notifications.update(id: id, fields, in: tx, logger: logger)
            // Offsets or the type may have changed: every receiver's reminders follow (created, moved or removed).
            let users = try await self.notifications.receivers(of: id, on: tx, logger: logger)
            try await self.events.reschedule(users: users, in: tx, logger: logger)
        }
    }

    /// Assigns the notification to (or removes it from) a user and/or a group; returns the users whose receiving
    /// changed (their reminders are recomputed: an unassignment only removes reminders of users who no longer receive
    /// it otherwise). Repeating an assignment or removing a missing one changes nothing.
    func assign(_ notificationID: Int, userID: Int?, groupID: Int?, assign: Bool, logger: Logger) async throws -> [Int] {
        try await self.db.transaction(logger: logger) { tx -> [Int] in
            try await self.events.lockReceivers(shared: false, in: tx, logger: logger)
            var affected: [Int] = []
            if let userID {
                guard try await UserRepository(db: self.db).exists(id: userID, on: tx, logger: logger) else {
                    throw AppError.notFound("User with id \(userID) not found!")
                }
            }
            if let groupID {
                guard try await GroupRepository(db: self.db).exists(id: groupID, on: tx, logger: logger) else {
                    throw AppError.notFound("Group with id \(groupID) not found!")
                }
            }
            if let userID, try await self.notifications.link(notificationID, userID: userID, assign: assign, in: tx, logger: logger) {
                affected.append(userID)
            }
            if let groupID, try await self.notifications.link(notificationID, groupID: groupID, assign: assign, in: tx, logger: logger) {
                affected += try await GroupRepository(db: self.db).subtreeMembers(of: groupID, on: tx, logger: logger)
            }
            let users = Array(Set(affected)).sorted()
            try await self.events.reschedule(users: users, in: tx, logger: logger)
            return users
        }
    }
}
