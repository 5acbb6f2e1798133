import Foundation

/// Writes iCalendar text (RFC 5545): CRLF line ends, content lines folded at 75 octets (never inside a UTF-8
/// sequence), TEXT values escaped.
struct ICalendarWriter {
    private(set) var bytes: [UInt8] = []

    init() { self.bytes.reserveCapacity(64 * 1024) }

    /// One content line, `NAME[;PARAMS]:value`; `value` is written as given (escape TEXT with `escaped`).
    mutating func line(_ name: String, _ value: String) {
        var content = Array(name.utf8)
        content.append(UInt8(ascii: ":"))
        content.append(contentsOf: value.utf8)
        var width = 0
        var i = 0
        while i < content.count {
            // The length of the UTF-8 sequence starting here.
            let b = content[i]
            let length = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4
            if width + length > 75 {
                self.bytes.append(contentsOf: [13, 10, 32])
                width = 1
            }
            self.bytes.append(contentsOf: content[i..<min(i + length, content.count)])
            width += length
            i += length
        }
        self.bytes.append(contentsOf: [13, 10])
    }

    /// A TEXT value: backslash, semicolon, comma and newlines escaped.
    static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for ch in text {
            switch ch {
            case "\\": out += "\\\\"
            case ";": out += "\\;"
            case ",": out += "\\,"
            case "\n", "\r\n": out += "\\n"
            case "\r": break
            default: out.append(ch)
            }
        }
        return out
    }

    /// `YYYYMMDDTHHMMSS` of a local wall-clock time.
    static func local(_ t: LocalDateTime) -> String {
        let c = t.components
        return pad(c.year, 4) + pad(c.month, 2) + pad(c.day, 2) + "T" + pad(c.hour, 2) + pad(c.minute, 2) + pad(c.second, 2)
    }

    static let gmt = TimeZone(secondsFromGMT: 0)!

    /// `YYYYMMDDTHHMMSSZ` of an instant.
    static func utc(_ date: Date) -> String { local(LocalDateTime(instant: date, in: Self.gmt)) + "Z" }

    static func pad(_ value: Int, _ width: Int) -> String {
        let s = String(value)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    /// `+HHMM` / `-HHMM`.
    static func offset(_ seconds: Int) -> String {
        let sign = seconds < 0 ? "-" : "+"
        let m = abs(seconds) / 60
        return sign + pad(m / 60, 2) + pad(m % 60, 2)
    }

    /// A VTIMEZONE for `zone` covering [from, to]: the offset in force at `from`, then every transition up to `to`
    /// (explicit DTSTARTs, no RRULE, so it is exact for whatever rules the zone had).
    mutating func timeZone(_ zone: TimeZone, from: Date, to: Date) {
        self.line("BEGIN", "VTIMEZONE")
        self.line("TZID", zone.identifier)
        func component(at instant: Date, before: Int, after: Int) {
            let kind = zone.isDaylightSavingTime(for: instant) ? "DAYLIGHT" : "STANDARD"
            self.line("BEGIN", kind)
            // DTSTART is the local time just before the change, in the offset that was in force.
            self.line("DTSTART", Self.local(LocalDateTime(instant: instant.addingTimeInterval(Double(before)), in: Self.gmt)))
            self.line("TZOFFSETFROM", Self.offset(before))
            self.line("TZOFFSETTO", Self.offset(after))
            if let name = zone.abbreviation(for: instant) { self.line("TZNAME", Self.escaped(name)) }
            self.line("END", kind)
        }
        let first = zone.secondsFromGMT(for: from)
        component(at: from, before: first, after: first)
        var cursor = from
        var count = 0
        while let next = zone.nextDaylightSavingTimeTransition(after: cursor), next <= to, count < 400 {
            component(at: next, before: zone.secondsFromGMT(for: next.addingTimeInterval(-1)), after: zone.secondsFromGMT(for: next))
            cursor = next
            count += 1
        }
        self.line("END", "VTIMEZONE")
    }
}
