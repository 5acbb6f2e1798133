import Foundation
import Hummingbird
import Logging

/// Everything a controller may use, built once in `buildApplication`.
public struct AppEnvironment: Sendable {
    public let configuration: AppConfiguration
    public let db: Database
    public let tokens: TokenService
    public let hasher: PasswordHasher
    public let grafana: any GrafanaSync
    /// The scheduler's counters (mails sent/failed, age of the oldest due event), for `/metrics`.
    public let schedulerStats: SchedulerStats
    /// The Grafana sync worker's counters (users synced, failed syncs), for `/metrics`.
    public var grafanaStats = GrafanaSyncStats()
    /// This server's request metrics and the `/metrics` exposition.
    public var metrics = ServerMetrics()
    /// This replica's copies of users' documents (`GET /user/{id}`), each confirmed by the database before it is sent
    /// (`buildApplication` sizes it from `USER_DOCUMENT_CACHE_BYTES`).
    var userDocuments = UserDocumentCache(budget: 0)
    /// Lockouts this server has already answered, so repeated guesses from a locked-out client cost no database work.
    let lockouts = LockoutCache()
    /// This replica's new bookings, booked together when they arrive together (`BookingBatcher`; `buildApplication`
    /// gives it a connection of its own).
    var bookings = BookingBatcher()
    /// What this replica changed for its capacity monitor (`CapacityMonitor`): writes of reservations or capacities.
    let capacityChanges = CapacityChanges()

    var zone: TimeZone { self.configuration.timeZone }

    /// Reservations or capacities changed: the capacity alerts are evaluated again (coalesced, see `CapacityMonitor`).
    /// `windows`: the changed reservations' periods (microseconds of local wall-clock time), evaluated when they come
    /// within the horizon; nil for a change without a time (evaluated at once).
    func capacityChanged(windows: [ClosedRange<Int64>]? = nil) {
        if let windows {
            if let start = windows.lazy.map(\.lowerBound).min() { self.capacityChanges.changed(from: start) }
        } else {
            self.capacityChanges.changed()
        }
    }

    /// Malformed JSON is refused before authentication (as FastAPI does), field validation comes after it.
    func bodyAndCaller(_ request: Request) async throws -> (BodyFields, CurrentUser) {
        let value = try await self.body(request)
        let caller = try await self.tokens.authenticate(request)
        guard let value else { throw AppError.unprocessable("Field required: body") }
        return (try BodyFields(value), caller)
    }

    /// The request's JSON body (nil when empty); malformed JSON is a 422. Routes authenticate after this and read
    /// fields after authenticating.
    func body(_ request: Request) async throws -> JSONValue? {
        let buffer = try await request.collectBody(limit: self.configuration.maxBodyBytes)
        return buffer.readableBytes > 0 ? try JSONValue.parse(buffer) : nil
    }
}
