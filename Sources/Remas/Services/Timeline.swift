/// Types and byte helpers of the availability timeline of `POST /task/get_scheduling`; the sweep
/// itself is `TimelineEncoder`. Tests hold a plain reference implementation (`Timeline.periods`) to compare against.
public struct Timeline: Sendable {
    public struct Allocation: Sendable {
        /// The owner of a maintenance window's block: it takes the node's whole capacity and lists no user.
        public static let maintenance = -1

        public var taskID: Int
        /// The task's owner, or `maintenance`.
        public var ownerID: Int
        public var start: Int64  // microseconds, naive wall clock
        public var end: Int64
        public var nodeID: Int
        public var resourceID: Int
        public var amount: Int64
        public var capacity: Int64

        public init(taskID: Int, ownerID: Int, start: Int64, end: Int64, nodeID: Int, resourceID: Int, amount: Int64, capacity: Int64) {
            self.taskID = taskID
            self.ownerID = ownerID
            self.start = start
            self.end = end
            self.nodeID = nodeID
            self.resourceID = resourceID
            self.amount = amount
            self.capacity = capacity
        }
    }

    static func lowerBound(_ array: [Int], _ value: Int) -> Int {
        var low = 0
        var high = array.count
        while low < high {
            let mid = (low + high) / 2
            if array[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low
    }

    static func append(_ text: StaticString, to out: inout [UInt8]) {
        text.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    static func append(_ value: Int64, to out: inout [UInt8]) {
        if value == 0 {
            out.append(UInt8(ascii: "0"))
            return
        }
        var magnitude = value.magnitude
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while magnitude > 0 {
                buffer[count] = UInt8(48 + magnitude % 10)
                magnitude /= 10
                count += 1
            }
            for i in stride(from: count - 1, through: 0, by: -1) { out.append(buffer[i]) }
        }
    }
}
