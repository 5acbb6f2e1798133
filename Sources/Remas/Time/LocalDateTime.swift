import Foundation

/// A naive wall-clock date and time in the server's zone, with microsecond precision.
///
/// REMAS stores and sends times without an offset (`2030-01-01T10:00:00`). The value is kept as microseconds since
/// 1970-01-01T00:00:00 *as if* the wall clock were UTC; that makes comparison and arithmetic plain integer work and
/// matches PostgreSQL's `extract(epoch from <timestamp>)` for `timestamp without time zone` columns.
public struct LocalDateTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var microseconds: Int64

    public init(microseconds: Int64) { self.microseconds = microseconds }

    public init?(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0, microsecond: Int = 0) {
        guard (1...9999).contains(year), (1...12).contains(month), (1...Self.daysIn(month: month, year: year)).contains(day),
            (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second), (0..<1_000_000).contains(microsecond)
        else { return nil }
        let days = Int64(Self.daysFromCivil(year: year, month: month, day: day))
        let seconds = days * 86_400 + Int64(hour * 3600 + minute * 60 + second)
        self.microseconds = seconds * 1_000_000 + Int64(microsecond)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.microseconds < rhs.microseconds }

    public struct Components: Equatable, Sendable {
        public var year, month, day, hour, minute, second, microsecond: Int
    }

    public var components: Components {
        let (days, micros) = self.microseconds.floorDivided(by: 86_400_000_000)
        let (y, m, d) = Self.civilFromDays(Int(days))
        let secondsOfDay = Int(micros / 1_000_000)
        return Components(
            year: y, month: m, day: d, hour: secondsOfDay / 3600, minute: secondsOfDay / 60 % 60, second: secondsOfDay % 60,
            microsecond: Int(micros % 1_000_000))
    }

    /// `YYYY-MM-DDTHH:MM:SS`, plus `.ffffff` only when the fraction is non-zero (the original's rendering).
    public var iso: String {
        let c = self.components
        var s = "\(Self.pad(c.year, 4))-\(Self.pad(c.month, 2))-\(Self.pad(c.day, 2))T\(Self.pad(c.hour, 2)):\(Self.pad(c.minute, 2)):\(Self.pad(c.second, 2))"
        if c.microsecond != 0 { s += "." + Self.pad(c.microsecond, 6) }
        return s
    }

    /// `YYYY-MM-DD HH:MM:SS[.ffffff]`, as Python's `str()` renders a datetime (used in mail text).
    public var spaced: String { self.iso.replacingOccurrences(of: "T", with: " ") }

    public var description: String { self.iso }

    /// Always with six fractional digits; bound as text and cast with `::timestamp` in SQL (exact, zone-free).
    public var sqlText: String {
        let c = self.components
        return "\(Self.pad(c.year, 4))-\(Self.pad(c.month, 2))-\(Self.pad(c.day, 2)) \(Self.pad(c.hour, 2)):\(Self.pad(c.minute, 2)):\(Self.pad(c.second, 2)).\(Self.pad(c.microsecond, 6))"
    }

    /// Appends the `iso` rendering to a byte buffer without intermediate strings (used by the timeline encoder).
    public func appendISO(to out: inout [UInt8]) {
        let c = self.components
        func two(_ v: Int) {
            out.append(UInt8(48 + v / 10))
            out.append(UInt8(48 + v % 10))
        }
        let y = c.year
        out.append(UInt8(48 + y / 1000 % 10))
        out.append(UInt8(48 + y / 100 % 10))
        two(y % 100)
        out.append(UInt8(ascii: "-"))
        two(c.month)
        out.append(UInt8(ascii: "-"))
        two(c.day)
        out.append(UInt8(ascii: "T"))
        two(c.hour)
        out.append(UInt8(ascii: ":"))
        two(c.minute)
        out.append(UInt8(ascii: ":"))
        two(c.second)
        if c.microsecond != 0 {
            out.append(UInt8(ascii: "."))
            var digits = [UInt8](repeating: 48, count: 6)
            var m = c.microsecond
            for i in stride(from: 5, through: 0, by: -1) {
                digits[i] = UInt8(48 + m % 10)
                m /= 10
            }
            out.append(contentsOf: digits)
        }
    }

    // MARK: zone conversion

    /// The wall-clock time in `zone` at the given instant.
    public init(instant: Date, in zone: TimeZone) {
        let offset = Int64(zone.secondsFromGMT(for: instant))
        let micros = (instant.timeIntervalSince1970 * 1_000_000).rounded(.down)
        self.microseconds = Int64(micros) + offset * 1_000_000
    }

    /// Now, as a wall-clock time in `zone`.
    public static func now(in zone: TimeZone) -> LocalDateTime { LocalDateTime(instant: Date(), in: zone) }

    /// The instant this wall-clock time names in `zone` (in a DST gap, the instant an hour on; in an overlap, the
    /// earlier offset's, as PostgreSQL reads a local time).
    public func instant(in zone: TimeZone) -> Date {
        let wall = Double(self.microseconds) / 1_000_000
        let first = wall - Double(zone.secondsFromGMT(for: Date(timeIntervalSince1970: wall)))
        return Date(timeIntervalSince1970: wall - Double(zone.secondsFromGMT(for: Date(timeIntervalSince1970: first))))
    }

    public func adding(seconds: Int64) -> LocalDateTime { LocalDateTime(microseconds: self.microseconds + seconds * 1_000_000) }

    // MARK: parsing

    /// Parses what clients send: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS[.f…]]`, the same with `T`, and any of those with
    /// `Z` or `±HH[:MM]` (converted to the wall clock of `zone`). More than six fractional digits are truncated.
    public static func parse(_ text: String, zone: TimeZone) -> LocalDateTime? {
        var scanner = ByteScanner(Array(text.utf8))
        guard let year = scanner.digits(exactly: 4), scanner.consume(UInt8(ascii: "-")),
            let month = scanner.digits(exactly: 2), scanner.consume(UInt8(ascii: "-")),
            let day = scanner.digits(exactly: 2)
        else { return nil }
        if scanner.atEnd { return LocalDateTime(year: year, month: month, day: day) }
        guard scanner.consume(UInt8(ascii: "T")) || scanner.consume(UInt8(ascii: "t")) || scanner.consume(UInt8(ascii: " ")),
            let hour = scanner.digits(exactly: 2), scanner.consume(UInt8(ascii: ":")), let minute = scanner.digits(exactly: 2)
        else { return nil }
        var second = 0
        var micro = 0
        if scanner.consume(UInt8(ascii: ":")) {
            guard let s = scanner.digits(exactly: 2) else { return nil }
            second = s
            if scanner.consume(UInt8(ascii: ".")) || scanner.consume(UInt8(ascii: ",")) {
                var count = 0
                while let d = scanner.digit() {
                    if count < 6 { micro = micro * 10 + d }
                    count += 1
                }
                guard count > 0 else { return nil }
                for _ in min(count, 6)..<6 { micro *= 10 }
            }
        }
        guard var value = LocalDateTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second, microsecond: micro)
        else { return nil }
        if scanner.atEnd { return value }
        // An explicit offset: turn it into an instant, then into the server's wall clock.
        var offsetSeconds = 0
        if scanner.consume(UInt8(ascii: "Z")) || scanner.consume(UInt8(ascii: "z")) {
            offsetSeconds = 0
        } else {
            let sign: Int
            if scanner.consume(UInt8(ascii: "+")) { sign = 1 } else if scanner.consume(UInt8(ascii: "-")) { sign = -1 } else { return nil }
            guard let oh = scanner.digits(exactly: 2), oh <= 23 else { return nil }
            var om = 0
            if !scanner.atEnd {
                _ = scanner.consume(UInt8(ascii: ":"))
                guard let m = scanner.digits(exactly: 2), m <= 59 else { return nil }
                om = m
            }
            offsetSeconds = sign * (oh * 3600 + om * 60)
        }
        guard scanner.atEnd else { return nil }
        value.microseconds -= Int64(offsetSeconds) * 1_000_000
        let instant = Date(timeIntervalSince1970: Double(value.microseconds / 1_000_000))
        let zoneOffset = Int64(zone.secondsFromGMT(for: instant))
        return LocalDateTime(microseconds: value.microseconds + zoneOffset * 1_000_000)
    }

    /// A Unix timestamp (seconds) as the server's wall clock.
    public static func fromUnix(seconds: Double, zone: TimeZone) -> LocalDateTime? {
        guard seconds.isFinite, abs(seconds) < 253_402_300_799 else { return nil }
        return LocalDateTime(instant: Date(timeIntervalSince1970: seconds), in: zone)
    }

    // MARK: calendar arithmetic (proleptic Gregorian, after H. Hinnant's public-domain algorithms)

    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func pad(_ value: Int, _ width: Int) -> String {
        let s = String(value)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> (Int64, Int64) {
        var q = self / divisor
        var r = self % divisor
        if r < 0 {
            q -= 1
            r += divisor
        }
        return (q, r)
    }
}

struct ByteScanner {
    let bytes: [UInt8]
    var index = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var atEnd: Bool { self.index >= self.bytes.count }
    mutating func consume(_ byte: UInt8) -> Bool {
        guard !self.atEnd, self.bytes[self.index] == byte else { return false }
        self.index += 1
        return true
    }
    mutating func digit() -> Int? {
        guard !self.atEnd, (48...57).contains(self.bytes[self.index]) else { return nil }
        defer { self.index += 1 }
        return Int(self.bytes[self.index] - 48)
    }
    mutating func digits(exactly count: Int) -> Int? {
        var value = 0
        for _ in 0..<count {
            guard let d = self.digit() else { return nil }
            value = value * 10 + d
        }
        return value
    }
}
