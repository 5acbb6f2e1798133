@testable import Remas

/// The timeline's reference sweep (README "Endpoints", `POST /task/get_scheduling`), kept simple: the production `TimelineEncoder` must produce exactly
/// `Timeline.encode(Timeline.periods(_))`.
extension Timeline {
    struct Entry: Equatable, Sendable {
        var nodeID: Int
        var resourceID: Int
        var amount: Int64
        var userIDs: [Int]
    }

    struct Period: Equatable, Sendable {
        var start: Int64
        var end: Int64
        var entries: [Entry]
    }

    /// `allocations` must be ordered by task start time (then task id, then allocation order): keys are listed in the
    /// order they are first seen, as the original does.
    static func periods(_ allocations: [Allocation]) -> [Period] {
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

    /// Encodes periods as the wire JSON straight into bytes.
    static func encode(_ periods: [Period]) -> [UInt8] {
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

}
