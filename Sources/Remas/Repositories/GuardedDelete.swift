import Logging
import PostgresNIO

/// Deletes a node or resource unless scheduled or running tasks still reserve it.
///
/// Silently stripping live reservations would surprise their owners, so such a delete is refused with 409; the
/// reservations of finished tasks go with the row (ON DELETE CASCADE). The rows are locked the way a booking locks
/// its nodes, so no reservation can slip in between the check and the delete.
struct GuardedDelete {
    /// "Node" or "Resource", for the messages.
    let noun: String
    /// Returns a row if the target exists (checked before `beforeDelete`, as the original answers 404 first).
    let exists: PostgresQuery
    /// Locks the row (and whatever else bookings lock); returns a row if the target exists.
    let lock: PostgresQuery
    /// Counts the scheduled or running tasks that reserve the target.
    let activeTasks: PostgresQuery
    /// The statements that delete the target.
    let deletes: [PostgresQuery]

    /// Deletes the target; Grafana's sync of the users `change` touches is read before and queued after the delete.
    func run(id: Int, db: Database, logger: Logger, grafana: any GrafanaSync, change: GrafanaChange) async throws {
        guard try await db.exists(self.exists, logger: logger) else { throw AppError.notFound("\(self.noun) with id \(id) not found!") }
        let touched = await grafana.touchedLogged(by: change, logger: logger)
        let outcome = try await db.transaction(logger: logger) { tx -> Int? in
            guard try await tx.exists(self.lock, logger: logger) else { return nil }
            let active = try await tx.int(self.activeTasks, logger: logger) ?? 0
            guard active == 0 else { return active }
            for statement in self.deletes { try await tx.query(statement, logger: logger) }
            return 0
        }
        switch outcome {
        case nil: throw AppError.notFound("\(self.noun) with id \(id) not found!")
        case 0: await grafana.enqueueLogged(touched, logger: logger)
        case let active?:
            throw AppError.conflict(
                "\(self.noun) with id \(id) is reserved by \(active) scheduled or running task(s); delete or change those tasks first!")
        }
    }
}
