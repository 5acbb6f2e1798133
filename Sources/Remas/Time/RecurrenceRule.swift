import Foundation

/// The RRULE subset of recurring reservations (RFC 5545 §3.3.10): `FREQ=DAILY|WEEKLY`, `INTERVAL`, `BYDAY` (weekly
/// only, plain weekdays), and `COUNT` or `UNTIL`. Occurrences keep the first occurrence's local wall-clock start and
/// end: task times are wall-clock times of the server's `TZ`, so a weekly 10:00 session stays at 10:00 across a DST
/// change (as calendar clients expand a rule with a `TZID`).
public struct RecurrenceRule: Sendable, Equatable {
    public enum Frequency: String, Sendable { case daily = "DAILY", weekly = "WEEKLY" }

    public var frequency: Frequency
    public var interval: Int
    /// ISO weekdays, 1 = Monday … 7 = Sunday; empty: the first occurrence's weekday.
    public var weekdays: [Int]
    public var count: Int?
    /// Occurrences start at or before this instant (local wall clock).
    public var until: LocalDateTime?

    /// At most this many occurrences in one series.
    public static let maxOccurrences = 366

    static let dayNames = ["MO": 1, "TU": 2, "WE": 3, "TH": 4, "FR": 5, "SA": 6, "SU": 7]

    /// Parses a rule (an optional `RRULE:` prefix is accepted); the error says what is wrong, for a 422.
    public static func parse(_ text: String, zone: TimeZone) throws -> RecurrenceRule {
        var body = text.trimmingCharacters(in: .whitespaces)
        if body.uppercased().hasPrefix("RRULE:") { body = String(body.dropFirst(6)) }
        guard !body.isEmpty else { throw RuleError("The rule is empty") }
        var parts: [String: String] = [:]
        for part in body.split(separator: ";", omittingEmptySubsequences: false) {
            let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2, !pair[0].isEmpty, !pair[1].isEmpty else { throw RuleError("'\(part)' is not NAME=VALUE") }
            let name = pair[0].uppercased()
            guard parts[name] == nil else { throw RuleError("\(name) is given twice") }
            parts[name] = String(pair[1])
        }
        for name in parts.keys where !["FREQ", "INTERVAL", "BYDAY", "COUNT", "UNTIL", "WKST"].contains(name) {
            throw RuleError("\(name) is not supported (FREQ, INTERVAL, BYDAY, COUNT, UNTIL)")
        }
        guard let freqText = parts["FREQ"] else { throw RuleError("FREQ is required") }
        guard let frequency = Frequency(rawValue: freqText.uppercased()) else {
            throw RuleError("FREQ must be DAILY or WEEKLY, got \(freqText)")
        }
        if let wkst = parts["WKST"], wkst.uppercased() != "MO" { throw RuleError("Only WKST=MO is supported") }
        var interval = 1
        if let raw = parts["INTERVAL"] {
            guard let value = Int(raw), value >= 1, value <= 1000 else { throw RuleError("INTERVAL must be an integer from 1 to 1000") }
            interval = value
        }
        var weekdays: [Int] = []
        if let raw = parts["BYDAY"] {
            guard frequency == .weekly else { throw RuleError("BYDAY is supported with FREQ=WEEKLY only") }
            for day in raw.split(separator: ",", omittingEmptySubsequences: false) {
                guard let number = Self.dayNames[day.uppercased()] else {
                    throw RuleError("BYDAY takes MO, TU, WE, TH, FR, SA, SU (without ordinals), got '\(day)'")
                }
                if !weekdays.contains(number) { weekdays.append(number) }
            }
            weekdays.sort()
        }
        if parts["COUNT"] != nil && parts["UNTIL"] != nil { throw RuleError("COUNT and UNTIL cannot both be given") }
        var count: Int?
        if let raw = parts["COUNT"] {
            guard let value = Int(raw), value >= 1 else { throw RuleError("COUNT must be a positive integer") }
            guard value <= Self.maxOccurrences else { throw RuleError("COUNT must be at most \(Self.maxOccurrences)") }
            count = value
        }
        var until: LocalDateTime?
        if let raw = parts["UNTIL"] {
            guard let value = Self.parseUntil(raw, zone: zone) else {
                throw RuleError("UNTIL must be YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ, got \(raw)")
            }
            until = value
        }
        guard count != nil || until != nil else { throw RuleError("COUNT or UNTIL is required (a series is at most \(Self.maxOccurrences) occurrences)") }
        return RecurrenceRule(frequency: frequency, interval: interval, weekdays: weekdays, count: count, until: until)
    }

    /// `YYYYMMDD` (the whole day), `YYYYMMDDTHHMMSS` (local) or with `Z` (UTC, converted to the local wall clock).
    static func parseUntil(_ raw: String, zone: TimeZone) -> LocalDateTime? {
        let bytes = Array(raw.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for b in bytes[range] {
                guard b >= 48, b <= 57 else { return nil }
                value = value * 10 + Int(b - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8) else { return nil }
        if bytes.count == 8 {
            return LocalDateTime(year: year, month: month, day: day, hour: 23, minute: 59, second: 59, microsecond: 999_999)
        }
        guard bytes.count == 15 || bytes.count == 16, bytes[8] == UInt8(ascii: "T"),
            let hour = number(9..<11), let minute = number(11..<13), let second = number(13..<15),
            let local = LocalDateTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
        else { return nil }
        if bytes.count == 15 { return local }
        guard bytes[15] == UInt8(ascii: "Z") else { return nil }
        // `local` holds the UTC wall clock: as an instant, then on the zone's wall clock.
        return LocalDateTime(instant: Date(timeIntervalSince1970: Double(local.microseconds) / 1_000_000), in: zone)
    }

    static let day: Int64 = 86_400_000_000

    /// ISO weekday (1 = Monday) of a local date-time.
    static func weekday(_ t: LocalDateTime) -> Int {
        let days = Int((t.microseconds >= 0 ? t.microseconds : t.microseconds - Self.day + 1) / Self.day)
        // 1970-01-01 was a Thursday (4).
        return ((days % 7 + 7) % 7 + 3) % 7 + 1
    }

    /// The occurrences of a series whose first reservation is [start, end): each keeps that wall-clock time of day and
    /// length. The first reservation counts when it matches the rule (with BYDAY, its weekday is one of them).
    /// Throws when the rule makes more than `maxOccurrences` or none.
    public func occurrences(start: LocalDateTime, end: LocalDateTime) throws -> [(start: LocalDateTime, end: LocalDateTime)] {
        let length = end.microseconds - start.microseconds
        var result: [(start: LocalDateTime, end: LocalDateTime)] = []
        func add(_ s: Int64) throws -> Bool {
            if let until = self.until, s > until.microseconds { return false }
            if let count = self.count, result.count >= count { return false }
            guard result.count < Self.maxOccurrences else {
                throw RuleError("The rule makes more than \(Self.maxOccurrences) occurrences; shorten UNTIL or give COUNT")
            }
            result.append((LocalDateTime(microseconds: s), LocalDateTime(microseconds: s + length)))
            return true
        }
        switch self.frequency {
        case .daily:
            var s = start.microseconds
            while try add(s) { s += Int64(self.interval) * Self.day }
        case .weekly:
            let days = self.weekdays.isEmpty ? [Self.weekday(start)] : self.weekdays
            // Monday of the first occurrence's week, at its time of day.
            let monday = start.microseconds - Int64(Self.weekday(start) - 1) * Self.day
            var week: Int64 = 0
            outer: while true {
                for d in days {
                    let s = monday + (week * 7 + Int64(d - 1)) * Self.day
                    if s < start.microseconds { continue }
                    if !(try add(s)) { break outer }
                }
                week += Int64(self.interval)
            }
        }
        guard !result.isEmpty else { throw RuleError("The rule makes no occurrence (UNTIL is before the first)") }
        return result
    }

    /// The rule in its canonical text, as the series answers it.
    public var text: String {
        var parts = ["FREQ=\(self.frequency.rawValue)"]
        if self.interval != 1 { parts.append("INTERVAL=\(self.interval)") }
        if !self.weekdays.isEmpty {
            let names = Dictionary(uniqueKeysWithValues: Self.dayNames.map { ($1, $0) })
            parts.append("BYDAY=" + self.weekdays.compactMap { names[$0] }.joined(separator: ","))
        }
        if let count = self.count { parts.append("COUNT=\(count)") }
        if let until = self.until {
            let c = until.components
            func pad(_ v: Int, _ n: Int) -> String { String(repeating: "0", count: max(0, n - String(v).count)) + String(v) }
            parts.append("UNTIL=\(pad(c.year, 4))\(pad(c.month, 2))\(pad(c.day, 2))T\(pad(c.hour, 2))\(pad(c.minute, 2))\(pad(c.second, 2))")
        }
        return parts.joined(separator: ";")
    }
}

/// Why a recurrence rule was refused (a 422 detail).
public struct RuleError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
