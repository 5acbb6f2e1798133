import Foundation
import NIOCore
import Hummingbird
import Testing

@testable import Remas

@Suite struct TimelineEncoderTests {
    /// The streaming encoder writes exactly what the reference sweep and encoder produce, whatever the chunk size.
    @Test func streamingMatchesReference() {
        var rng = SystemRandomNumberGenerator()
        for round in 0..<300 {
            var allocations: [Timeline.Allocation] = []
            for task in 0..<Int.random(in: 0...15, using: &rng) {
                let start = Int64.random(in: 0...30, using: &rng) * 1_000_000
                let end = start + Int64.random(in: 1...8, using: &rng) * 1_000_000
                let owner = Int.random(in: 1...4, using: &rng)
                for node in Set((0..<Int.random(in: 1...3, using: &rng)).map { _ in Int.random(in: 1...3, using: &rng) }) {
                    allocations.append(.init(taskID: task, ownerID: owner, start: start, end: end, nodeID: node,
                                             resourceID: Int.random(in: 1...2, using: &rng), amount: Int64.random(in: 1...3, using: &rng), capacity: 6))
                }
            }
            // Unique (task, node, resource) as in the database.
            var seen = Set<String>()
            allocations = allocations.filter { seen.insert("\($0.taskID)/\($0.nodeID)/\($0.resourceID)").inserted }
            allocations.sort { ($0.start, $0.taskID, $0.nodeID, $0.resourceID) < ($1.start, $1.taskID, $1.nodeID, $1.resourceID) }
            let reference = Timeline.encode(Timeline.periods(allocations))
            let encoder = TimelineEncoder(allocations)
            var output = ByteBuffer()
            let limit = [1, 7, 100, 1 << 20][round % 4]
            while true {
                var chunk = ByteBuffer()
                let done = encoder.fill(&chunk, limit: limit)
                output.writeBuffer(&chunk)
                if done { break }
            }
            #expect(Array(output.readableBytesView) == reference)
        }
    }
}
