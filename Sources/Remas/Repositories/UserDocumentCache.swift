import Logging
import NIOCore
import Synchronization

/// This replica's copies of users' documents (`GET /user/{id}`), each with the validator it was built under
/// (README "A user's document, cached"). A copy is served only after the database confirms it: one statement reads
/// the user's change counters (migration 0015) and the clock, and the copy is current when the counters are what they
/// were at its build and no task of the user has started or ended since (`Entry.isCurrent`). So every replica answers
/// what the database holds at that moment, whoever changed it; the cache saves building the document (the user's
/// tasks, limits, tags and notifications), not reading the database.
///
/// Bounded by the bytes of the documents it holds (`USER_DOCUMENT_CACHE_BYTES`; 0 keeps none); when a new copy does
/// not fit, copies are dropped until it does (in the dictionary's order, which is no order of use: a cache this
/// cheap to refill needs no recency bookkeeping on every hit).
final class UserDocumentCache: Sendable {
    struct Entry: Sendable {
        /// Sum of the user's change counters when the copy was built.
        let changes: Int64
        /// The database's `localtimestamp` at the build, in microseconds (the clock task statuses follow).
        let builtAt: Int64
        /// The first start or end of one of the user's tasks after `builtAt`: statuses change there. nil: none.
        let changesAt: Int64?
        let body: ByteBuffer

        /// The copy is what a build would give now: the same counters, and the clock (`now`, read with them) still
        /// between the build and the next status change.
        func isCurrent(changes: Int64, now: Int64) -> Bool {
            changes == self.changes && now >= self.builtAt && self.changesAt.map { now < $0 } ?? true
        }

        /// Bytes a copy is charged: its document and a little for the entry.
        var size: Int { self.body.readableBytes + 64 }
    }

    private struct State {
        var entries: [Int: Entry] = [:]
        var bytes = 0
    }

    /// What the database says of a user's document now: the sum of the user's change counters and its clock.
    struct Validator: Sendable {
        let changes: Int64
        let clock: Int64
    }

    private let state = Mutex(State())
    let budget: Int
    /// Confirmations waiting while one runs share the next statement. One statement at a time: on the national data
    /// set (`GET /user/{id}` at 16 clients, 2 cores) batches of ~7 against ~4 with two at a time, and 8,600–10,000
    /// against 7,300–7,500 requests/s (README "A user's document, cached").
    private let confirmations = Coalescer<Int32, Validator>(inFlight: 1, largest: 256)

    init(budget: Int) { self.budget = budget }

    /// The validator of user `id`'s document, read by a statement that starts after this call (so it sees every
    /// change committed before the request came): concurrent confirmations on this replica share one statement, one
    /// probe per user (`Coalescer`). That statement's cost per call, not per user, was most of a cached answer's.
    func confirm(_ id: Int, in db: Database, logger: Logger) async throws -> Validator {
        try await self.confirmations.submit(Int32(truncatingIfNeeded: id)) { ids in
            try await db.run(UserDocumentValidatorsStatement(ids: ids), logger: logger).map { .success($0) }
        }
    }

    func entry(_ userID: Int) -> Entry? {
        self.state.withLock { $0.entries[userID] }
    }

    /// Keeps `built` unless it is larger than the whole budget (so a budget of 0 keeps nothing).
    func store(_ userID: Int, _ built: Entry) {
        guard built.size <= self.budget else { return }
        // A row's bytes are a slice of the connection's read buffer: the copy kept holds only the document.
        var body = ByteBuffer()
        body.reserveCapacity(built.body.readableBytes)
        body.writeImmutableBuffer(built.body)
        let entry = Entry(changes: built.changes, builtAt: built.builtAt, changesAt: built.changesAt, body: body)
        self.state.withLock { state in
            if let old = state.entries.removeValue(forKey: userID) { state.bytes -= old.size }
            while state.bytes + entry.size > self.budget, let victim = state.entries.first {
                state.entries.removeValue(forKey: victim.key)
                state.bytes -= victim.value.size
            }
            state.entries[userID] = entry
            state.bytes += entry.size
        }
    }

    /// Copies held and their bytes (tests).
    var usage: (count: Int, bytes: Int) { self.state.withLock { ($0.entries.count, $0.bytes) } }
}
