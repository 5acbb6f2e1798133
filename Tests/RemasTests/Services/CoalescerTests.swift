import Synchronization
import Testing

@testable import Remas

/// The batching under `BookingBatcher` and the confirmation of users' kept documents (`Coalescer`): what arrives while
/// a batch runs is worked on together in the next one, each item gets its own outcome, never more batches run at once
/// than allowed, and a failed batch fails only its own items.
@Suite struct CoalescerTests {
    /// A gate the work waits at until the test opens it, so that items can be made to queue behind a running batch.
    final class Gate: Sendable {
        private let state = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

        func wait() async {
            await withCheckedContinuation { continuation in
                let open = self.state.withLock { state -> Bool in
                    if !state.open { state.waiting.append(continuation) }
                    return state.open
                }
                if open { continuation.resume() }
            }
        }

        func open() {
            let waiting = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.open = true
                defer { state.waiting = [] }
                return state.waiting
            }
            for continuation in waiting { continuation.resume() }
        }
    }

    /// What the work saw: every batch, and the most batches running at once.
    final class Log: Sendable {
        private let state = Mutex<(batches: [[Int]], running: Int, most: Int)>(([], 0, 0))
        func start(_ batch: [Int]) { self.state.withLock { $0.batches.append(batch); $0.running += 1; $0.most = max($0.most, $0.running) } }
        func end() { self.state.withLock { $0.running -= 1 } }
        var batches: [[Int]] { self.state.withLock { $0.batches } }
        var most: Int { self.state.withLock { $0.most } }
    }

    /// Waits until `condition` holds (the queue is filled by tasks the test does not await).
    static func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<2_000 where !condition() { try await Task.sleep(for: .milliseconds(1)) }
        #expect(condition())
    }

    @Test func itemsThatArriveDuringABatchShareTheNext() async throws {
        let coalescer = Coalescer<Int, String>(inFlight: 1, largest: 4)
        let log = Log()
        let gate = Gate()
        let work: Coalescer<Int, String>.Work = { items in
            log.start(items)
            defer { log.end() }
            if items == [0] { await gate.wait() }
            return items.map { .success("item \($0)") }
        }
        let outcomes = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            group.addTask { (0, try await coalescer.submit(0, work: work)) }
            try await Self.eventually { log.batches.count == 1 }
            // Nine items while the first batch waits at the gate: they queue, then go in batches of at most four.
            for i in 1...9 {
                group.addTask { (i, try await coalescer.submit(i, work: work)) }
            }
            try await Self.eventually { coalescer.waiting == 9 }
            gate.open()
            return try await group.reduce(into: [Int: String]()) { $0[$1.0] = $1.1 }
        }
        #expect(outcomes == Dictionary(uniqueKeysWithValues: (0...9).map { ($0, "item \($0)") }))
        let batches = log.batches
        #expect(batches.first == [0])
        #expect(batches.dropFirst().map(\.count) == [4, 4, 1])
        #expect(batches.flatMap { $0 }.sorted() == Array(0...9))
        #expect(log.most == 1)
        #expect(coalescer.waiting == 0)
    }

    @Test func neverMoreBatchesAtOnceThanAllowed() async throws {
        let coalescer = Coalescer<Int, Int>(inFlight: 2, largest: 3)
        let log = Log()
        let work: Coalescer<Int, Int>.Work = { items in
            log.start(items)
            defer { log.end() }
            try await Task.sleep(for: .milliseconds(2))
            return items.map { .success($0 * 2) }
        }
        let sum = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<60 { group.addTask { try await coalescer.submit(i, work: work) } }
            return try await group.reduce(0, +)
        }
        #expect(sum == (0..<60).reduce(0) { $0 + 2 * $1 })
        #expect(log.most <= 2 && log.batches.allSatisfy { $0.count <= 3 })
        #expect(log.batches.flatMap { $0 }.sorted() == Array(0..<60))
    }

    struct Refused: Error, Equatable { let item: Int }
    struct Broken: Error {}

    /// An item's own failure is its own; a thrown error, or an answer with an outcome missing, fails its batch only.
    @Test func failuresStayInTheirBatch() async throws {
        let coalescer = Coalescer<Int, Int>(inFlight: 1, largest: 8)
        let gate = Gate()
        let work: Coalescer<Int, Int>.Work = { items in
            if items == [0] { await gate.wait() }
            if items.contains(13) { throw Broken() }
            if items.contains(7) { return [] }
            return items.map { $0 % 2 == 0 ? .success($0) : .failure(Refused(item: $0)) }
        }
        /// Each item's outcome: its value, or the error it got.
        func outcome(_ i: Int) async -> Result<Int, any Error> {
            do { return .success(try await coalescer.submit(i, work: work)) } catch { return .failure(error) }
        }
        let first = Task { await outcome(0) }
        try await Self.eventually { coalescer.running == 1 }
        let queued = (1...3).map { i in Task { await outcome(i) } }
        try await Self.eventually { coalescer.waiting == 3 }
        gate.open()
        #expect(try await first.value.get() == 0)
        var results: [Result<Int, any Error>] = []
        for task in queued { results.append(await task.value) }
        #expect(try results[1].get() == 2)
        #expect(throws: Refused(item: 1)) { try results[0].get() }
        #expect(throws: Refused(item: 3)) { try results[2].get() }
        let thrown = await outcome(13)
        #expect(throws: Broken.self) { try thrown.get() }
        let short = await outcome(7)
        #expect(throws: AppError.self) { try short.get() }
        // The coalescer goes on after failed batches.
        #expect(try await outcome(4).get() == 4)
        try await Self.eventually { coalescer.running == 0 }
    }
}
