import NIOCore

/// Streams the timeline JSON of `POST /task/get_scheduling` in chunks, producing exactly `Timeline.encode(Timeline.periods(_))`.
///
/// A week with thousands of tasks yields tens of megabytes (every period lists every pair in use), so the encoder
/// never holds the whole document: it sweeps boundary by boundary, keeps each pair's encoded entry and re-encodes
/// it only when that pair changes, and writes merged periods into buffers the caller sends as they fill.
final class TimelineEncoder {
    private let allocations: [Timeline.Allocation]
    private var keys: [(node: Int, resource: Int, capacity: Int64)] = []
    private var allocationKey: [Int] = []
    private var boundaries: [(time: Int64, allocation: Int32, isStart: Bool)] = []
    private var used: [Int64] = []
    private var owners: [[Int: Int]] = []
    private var activeKeys: [Int] = []
    private var encodedEntry: [[UInt8]] = []
    private var dirty: [Bool] = []
    private var dirtyKeys: [Int] = []
    private var index = 0

    private var pendingStart: Int64 = 0
    private var pendingEnd: Int64 = 0
    private var pendingBody: [UInt8] = []
    private var hasPending = false
    private var currentBody: [UInt8] = []
    private var wrotePeriod = false
    private var started = false

    init(_ allocations: [Timeline.Allocation]) {
        self.allocations = allocations
        var keyIndex: [Int64: Int] = [:]
        self.allocationKey.reserveCapacity(allocations.count)
        for a in allocations {
            let packed = Int64(a.nodeID) << 32 | Int64(UInt32(truncatingIfNeeded: a.resourceID))
            if let k = keyIndex[packed] {
                self.allocationKey.append(k)
            } else {
                keyIndex[packed] = self.keys.count
                self.allocationKey.append(self.keys.count)
                self.keys.append((a.nodeID, a.resourceID, a.capacity))
            }
        }
        self.boundaries.reserveCapacity(allocations.count * 2)
        for (i, a) in allocations.enumerated() {
            self.boundaries.append((a.start, Int32(i), true))
            self.boundaries.append((a.end, Int32(i), false))
        }
        self.boundaries.sort { $0.time < $1.time }
        self.used = [Int64](repeating: 0, count: self.keys.count)
        self.owners = [[Int: Int]](repeating: [:], count: self.keys.count)
        self.encodedEntry = [[UInt8]](repeating: [], count: self.keys.count)
        self.dirty = [Bool](repeating: false, count: self.keys.count)
    }

    /// Appends output to `buffer` until it holds at least `limit` bytes; returns true once the document is complete.
    func fill(_ buffer: inout ByteBuffer, limit: Int) -> Bool {
        if !self.started {
            buffer.writeStaticString("[")
            self.started = true
        }
        while buffer.readableBytes < limit {
            guard let (start, end) = self.nextPeriod() else {
                if self.hasPending { self.writePending(&buffer) }
                buffer.writeStaticString("]")
                return true
            }
            if self.hasPending, self.pendingEnd == start, self.pendingBody == self.currentBody {
                self.pendingEnd = end
            } else {
                if self.hasPending { self.writePending(&buffer) }
                swap(&self.pendingBody, &self.currentBody)
                self.pendingStart = start
                self.pendingEnd = end
                self.hasPending = true
            }
        }
        return false
    }

    private func writePending(_ buffer: inout ByteBuffer) {
        var head: [UInt8] = []
        head.reserveCapacity(96)
        if self.wrotePeriod { head.append(UInt8(ascii: ",")) }
        Timeline.append(#"{"start_time":""#, to: &head)
        LocalDateTime(microseconds: self.pendingStart).appendISO(to: &head)
        Timeline.append(#"","end_time":""#, to: &head)
        LocalDateTime(microseconds: self.pendingEnd).appendISO(to: &head)
        Timeline.append(#"","available_resources":["#, to: &head)
        buffer.writeBytes(head)
        buffer.writeBytes(self.pendingBody)
        buffer.writeStaticString("]}")
        self.wrotePeriod = true
        self.hasPending = false
    }

    /// Applies every boundary of the next instant; returns the period starting there (its entries in `currentBody`),
    /// skipping idle stretches, or nil after the last boundary.
    private func nextPeriod() -> (Int64, Int64)? {
        while self.index < self.boundaries.count {
            let instant = self.boundaries[self.index].time
            while self.index < self.boundaries.count, self.boundaries[self.index].time == instant {
                let b = self.boundaries[self.index]
                let a = self.allocations[Int(b.allocation)]
                let k = self.allocationKey[Int(b.allocation)]
                let wasActive = self.used[k] != 0
                if b.isStart {
                    self.used[k] += a.amount
                    if a.ownerID != Timeline.Allocation.maintenance { self.owners[k][a.ownerID, default: 0] += 1 }
                } else {
                    self.used[k] -= a.amount
                    if a.ownerID != Timeline.Allocation.maintenance {
                        let left = (self.owners[k][a.ownerID] ?? 1) - 1
                        self.owners[k][a.ownerID] = left > 0 ? left : nil
                    }
                }
                let isActive = self.used[k] != 0
                if wasActive != isActive {
                    let position = Timeline.lowerBound(self.activeKeys, k)
                    if isActive { self.activeKeys.insert(k, at: position) } else { self.activeKeys.remove(at: position) }
                }
                if !self.dirty[k] {
                    self.dirty[k] = true
                    self.dirtyKeys.append(k)
                }
                self.index += 1
            }
            for k in self.dirtyKeys {
                self.dirty[k] = false
                if self.used[k] != 0 { self.encodeEntry(k) }
            }
            self.dirtyKeys.removeAll(keepingCapacity: true)
            guard self.index < self.boundaries.count else { return nil }
            guard !self.activeKeys.isEmpty else { continue }
            self.currentBody.removeAll(keepingCapacity: true)
            for (position, k) in self.activeKeys.enumerated() {
                if position > 0 { self.currentBody.append(UInt8(ascii: ",")) }
                self.currentBody.append(contentsOf: self.encodedEntry[k])
            }
            return (instant, self.boundaries[self.index].time)
        }
        return nil
    }

    private func encodeEntry(_ k: Int) {
        var out = self.encodedEntry[k]
        out.removeAll(keepingCapacity: true)
        Timeline.append(#"{"node_id":"#, to: &out)
        Timeline.append(Int64(self.keys[k].node), to: &out)
        Timeline.append(#","resource_id":"#, to: &out)
        Timeline.append(Int64(self.keys[k].resource), to: &out)
        Timeline.append(#","amount":"#, to: &out)
        Timeline.append(self.keys[k].capacity - self.used[k], to: &out)
        Timeline.append(#","user_ids":["#, to: &out)
        for (i, user) in self.owners[k].keys.sorted().enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            Timeline.append(Int64(user), to: &out)
        }
        Timeline.append("]}", to: &out)
        self.encodedEntry[k] = out
    }
}
