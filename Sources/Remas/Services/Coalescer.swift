import Synchronization

/// Items that arrive while earlier ones are being worked on are worked on together: one call of the work (one
/// statement, one transaction) for a batch, each item with its own outcome.
///
/// At most `inFlight` batches run at once. An item that arrives while they all run waits for the next batch (at most
/// `largest` items), which takes every item waiting by then; an item that arrives while a batch could start starts one
/// at once, alone, so a coalescer adds no wait of its own to an unloaded server. Under load the batches grow by
/// themselves with the time a batch takes, and the cost that is per call, not per item, is shared.
///
/// Users: `BookingBatcher` (new bookings) and the confirmation of users' kept documents (`UserDocumentCache`).
final class Coalescer<Item: Sendable, Outcome: Sendable>: Sendable {
    /// Works on a batch: one outcome per item, in the items' order. A thrown error is every item's outcome.
    typealias Work = @Sendable ([Item]) async throws -> [Result<Outcome, any Error>]

    private struct Waiting {
        let item: Item
        let continuation: CheckedContinuation<Outcome, any Error>
        /// The submitter's statement counter (tests): the batch's statements count for it.
        let counter: StatementCounter?
    }

    private struct State {
        var queue: [Waiting] = []
        var running = 0
    }

    private let state = Mutex(State())
    /// Batches running at once.
    let inFlight: Int
    /// The most items in one batch.
    let largest: Int

    init(inFlight: Int, largest: Int) {
        precondition(inFlight > 0 && largest > 0)
        self.inFlight = inFlight
        self.largest = largest
    }

    /// Items waiting for a batch, and batches running (tests).
    var waiting: Int { self.state.withLock { $0.queue.count } }
    var running: Int { self.state.withLock { $0.running } }

    /// `item`'s outcome, worked on in the next batch. The batch is worked on by the `work` of the call that started
    /// its run of batches, so every caller of one coalescer passes the same work.
    func submit(_ item: Item, work: @escaping Work) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            let starts = self.state.withLock { state -> Bool in
                state.queue.append(Waiting(item: item, continuation: continuation, counter: StatementCounter.current))
                guard state.running < self.inFlight else { return false }
                state.running += 1
                return true
            }
            if starts {
                Task { await self.drain(work) }
            }
        }
    }

    /// Works on batches until none is waiting. Every item taken gets exactly one outcome.
    private func drain(_ work: Work) async {
        while true {
            let batch = self.state.withLock { state -> [Waiting] in
                let taken = Array(state.queue.prefix(self.largest))
                state.queue.removeFirst(taken.count)
                if taken.isEmpty { state.running -= 1 }
                return taken
            }
            if batch.isEmpty { return }
            do {
                // The batch runs in the task that started the drain; its statements count for the batch's submitters.
                let counters = batch.compactMap(\.counter)
                let outcomes = try await StatementCounter.$current.withValue(counters.isEmpty ? nil : StatementCounter(countingFor: counters)) {
                    try await work(batch.map(\.item))
                }
                // One outcome per item is the work's contract; a short answer fails the batch rather than leave a wait.
                guard outcomes.count == batch.count else { throw AppError.internalError }
                for (waiting, outcome) in zip(batch, outcomes) { waiting.continuation.resume(with: outcome) }
            } catch {
                for waiting in batch { waiting.continuation.resume(throwing: error) }
            }
        }
    }
}
