import Logging

/// New bookings that arrive together at this server are booked together: one transaction, and one statement per step,
/// for all of them (`BookingService.bookNew`), instead of one transaction each.
///
/// Why: a booking's cost is mostly per statement and per transaction, not per row: executor start-up of the large
/// statements, the statement triggers (calendar counters, usage days), the protocol round trips, the commit's WAL
/// flush. Measured on 2 cores at 16 clients, PostgreSQL spent ~55 % of a booking's time there. Batching is how a
/// server turns that into throughput under load without changing what a booking means: each booking is checked as if
/// it were booked alone after the ones before it in the batch (their reservations count against capacity and the
/// caller's limits), and gets its own answer or refusal.
///
/// The batches are a `Coalescer`'s: at most `transactions` in flight at once; a booking that arrives while they are
/// all busy waits for the next batch (at most `largest` bookings), which takes every booking waiting by then. A
/// booking that arrives when a transaction is free starts one at once: alone, it waits for nothing. Updates and
/// series are not batched.
///
/// Across replicas nothing changes: each batch takes the node locks of its bookings like a single booking does, so
/// bookings of different replicas serialise per node only, and a batch's bookings on distinct nodes never wait for a
/// global lock.
final class BookingBatcher: Sendable {
    /// Batches in flight at once (their transactions run side by side). One per server: on the national data set
    /// (2 cores, 16 clients, one batch and two in flight alternated 8 times, 8–10 s each) both booked at the same rate
    /// (1,427–1,733 against 1,459–1,785 bookings/s), but one used less CPU per booking (PostgreSQL 472–632 against
    /// 643–782 µs, remas 172–207 against 211–255 µs: larger batches) and kept p99 lower (15.7–24.6 ms, 6 runs of 8
    /// below 20 ms, against 17.9–24.4 ms, 1 of 8); again with the statements of migration 0017 (4 alternations, README
    /// "Tried on 2026-12-07"): the same rates, a third to a half more CPU per booking, p99 above 20 ms once. Replicas
    /// add batches in flight, one each.
    static let transactionsPerServer = 1
    /// Where the batches run, when not on the booking service's own database: `buildApplication` gives them a pool of
    /// `transactionsPerServer` connections that plan every prepared statement generically (`plan_cache_mode =
    /// force_generic_plan` as a startup parameter). Why: the statement that reads a batch's limits and situation is
    /// the first of its transaction, planned before anything in it can set the mode (the function it calls sets it
    /// for the insert after it), and PostgreSQL planned it anew on every run (0.28 ms of PostgreSQL's time per batch
    /// on the national data set, `pg_stat_statements`). The pool's other statements keep PostgreSQL's choice, which
    /// for ad-hoc statements over time ranges needs the values.
    let db: Database?

    private let batches: Coalescer<BookingService.NewBooking, BookingService.Booked>

    /// `transactions` batches in flight at once (`transactionsPerServer` unless a test asks for another number), at most
    /// `largest` bookings in one.
    init(transactions: Int = BookingBatcher.transactionsPerServer, largest: Int = 64, db: Database? = nil) {
        self.db = db
        self.batches = Coalescer(inFlight: transactions, largest: largest)
    }

    /// Books `booking` in the next batch, checked and written by `service`; its own outcome, or the error that failed
    /// its batch's transaction (then nothing of the batch was written).
    func book(_ booking: BookingService.NewBooking, with service: BookingService, logger: Logger) async throws -> BookingService.Booked {
        try await self.batches.submit(booking) { [db] bookings in
            try await service.on(db).bookNew(bookings, logger: logger)
        }
    }
}
