/// The availability timeline of `POST /task/get_scheduling` (spec api-tasks §4).
///
/// Input: one row per allocation of every selected task (scheduled or running, touching the window), with the
/// capacity of its (node, resource). An O(n log n) sweep over the distinct boundary instants produces the periods;
/// neighbours with equal lists are merged, idle gaps are omitted, and periods are not clipped to the window.
public struct Timeline: Sendable {
    public struct Allocation: Sendable {
        public var taskID: Int
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

    public struct Entry: Equatable, Sendable {
        public var nodeID: Int
        public var resourceID: Int
        public var amount: Int64
        public var userIDs: [Int]
    }

    public struct Period: Equatable, Sendable {
        public var start: Int64
        public var end: Int64
        public var entries: [Entry]
    }

    /// `allocations` must be ordered by task start time (then task id, then allocation order): keys are listed in the
    /// order they are first seen, as the original does.
    public static func periods(_ allocations: [Allocation]) -> [Period] {
        guard !allocations.isEmpty else { return [] }
        // Keys in first-seen order.
        var keyIndex: [Int64: Int] = [:]
        var keys: [(node: Int, resource: Int, capacity: Int64)] = []
        var allocationKey = [Int](repeating: 0, count: allocations.count)
        for (i, a) in allocations.enumerated() {
            let packed = Int64(a.nodeID) << 32 | Int64(UInt32(truncatingIfNeeded: a.resourceID))
            if let k = keyIndex[packed] {
                allocationKey[i] = k
            } else {
                keyIndex[packed] = keys.count
                allocationKey[i] = keys.count
                keys.append((a.nodeID, a.resourceID, a.capacity))
            }
        }
        // Boundaries: +amount at start, -amount at end, per allocation; sorted by instant (ties need no order:
        // only the state after every boundary of an instant is observed).
        var boundaries: [(time: Int64, allocation: Int32, isStart: Bool)] = []
        boundaries.reserveCapacity(allocations.count * 2)
        for (i, a) in allocations.enumerated() {
            boundaries.append((a.start, Int32(i), true))
            boundaries.append((a.end, Int32(i), false))
        }
        boundaries.sort { $0.time < $1.time }

        var used = [Int64](repeating: 0, count: keys.count)
        var owners = [[Int: Int]](repeating: [:], count: keys.count)
        var activeKeys: [Int] = []  // sorted key indices with used != 0
        var periods: [Period] = []
        var index = 0
        while index < boundaries.count {
            let instant = boundaries[index].time
            while index < boundaries.count, boundaries[index].time == instant {
                let b = boundaries[index]
                let a = allocations[Int(b.allocation)]
                let k = allocationKey[Int(b.allocation)]
                let wasActive = used[k] != 0
                if b.isStart {
                    used[k] += a.amount
                    owners[k][a.ownerID, default: 0] += 1
                } else {
                    used[k] -= a.amount
                    let left = (owners[k][a.ownerID] ?? 1) - 1
                    owners[k][a.ownerID] = left > 0 ? left : nil
                }
                let isActive = used[k] != 0
                if wasActive != isActive {
                    let position = Self.lowerBound(activeKeys, k)
                    if isActive { activeKeys.insert(k, at: position) } else { activeKeys.remove(at: position) }
                }
                index += 1
            }
            guard index < boundaries.count else { break }
            guard !activeKeys.isEmpty else { continue }
            let next = boundaries[index].time
            let entries = activeKeys.map { k in
                Entry(nodeID: keys[k].node, resourceID: keys[k].resource, amount: keys[k].capacity - used[k], userIDs: owners[k].keys.sorted())
            }
            if var last = periods.last, last.end == instant, last.entries == entries {
                last.end = next
                periods[periods.count - 1] = last
            } else {
                periods.append(Period(start: instant, end: next, entries: entries))
            }
        }
        return periods
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

    /// Encodes periods as the wire JSON straight into bytes.
    public static func encode(_ periods: [Period]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + periods.count * 160)
        out.append(UInt8(ascii: "["))
        for (i, period) in periods.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            Self.append(#"{"start_time":""#, to: &out)
            LocalDateTime(microseconds: period.start).appendISO(to: &out)
            Self.append(#"","end_time":""#, to: &out)
            LocalDateTime(microseconds: period.end).appendISO(to: &out)
            Self.append(#"","available_resources":["#, to: &out)
            for (j, entry) in period.entries.enumerated() {
                if j > 0 { out.append(UInt8(ascii: ",")) }
                Self.append(#"{"node_id":"#, to: &out)
                Self.append(Int64(entry.nodeID), to: &out)
                Self.append(#","resource_id":"#, to: &out)
                Self.append(Int64(entry.resourceID), to: &out)
                Self.append(#","amount":"#, to: &out)
                Self.append(entry.amount, to: &out)
                Self.append(#","user_ids":["#, to: &out)
                for (k, user) in entry.userIDs.enumerated() {
                    if k > 0 { out.append(UInt8(ascii: ",")) }
                    Self.append(Int64(user), to: &out)
                }
                Self.append("]}", to: &out)
            }
            Self.append("]}", to: &out)
        }
        out.append(UInt8(ascii: "]"))
        return out
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
