import Crypto
import Foundation

/// Writes iCalendar text (RFC 5545) straight into bytes: CRLF line ends, content lines folded at 75 octets (never
/// inside a UTF-8 sequence), TEXT values escaped as they are written.
struct ICalendarWriter {
    private(set) var bytes: [UInt8] = []
    /// Octets on the current physical line.
    private var width = 0

    init(capacity: Int = 64 * 1024) { self.bytes.reserveCapacity(capacity) }

    /// One content line, `NAME[;PARAMS]:value`, the value written as given.
    mutating func line(_ name: String, _ value: String) {
        self.begin(name)
        for b in value.utf8 { self.put(b) }
        self.end()
    }

    /// One content line whose value is TEXT: backslash, semicolon and comma escaped, line breaks as `\n`.
    mutating func line(_ name: String, text: String) {
        self.begin(name)
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "\\"), UInt8(ascii: ";"), UInt8(ascii: ","):
                self.put(UInt8(ascii: "\\"))
                self.put(b)
            case 10:
                self.put(UInt8(ascii: "\\"))
                self.put(UInt8(ascii: "n"))
            case 13: break  // CRLF is one line break, written for its LF
            default: self.put(b)
            }
        }
        self.end()
    }

    /// A line whose value is a local wall-clock time, `YYYYMMDDTHHMMSS` (`Z` appended for UTC).
    mutating func line(_ name: String, time: LocalDateTime, utc: Bool = false) {
        self.begin(name)
        let c = time.components
        self.digits(c.year, 4)
        self.digits(c.month, 2)
        self.digits(c.day, 2)
        self.put(UInt8(ascii: "T"))
        self.digits(c.hour, 2)
        self.digits(c.minute, 2)
        self.digits(c.second, 2)
        if utc { self.put(UInt8(ascii: "Z")) }
        self.end()
    }

    /// A line whose value is an instant in UTC, `YYYYMMDDTHHMMSSZ`.
    mutating func line(_ name: String, instant: Date) {
        self.line(name, time: LocalDateTime(instant: instant, in: Self.gmt), utc: true)
    }

    static let gmt = TimeZone(secondsFromGMT: 0)!

    private mutating func begin(_ name: String) {
        for b in name.utf8 { self.put(b) }
        self.put(UInt8(ascii: ":"))
    }

    private mutating func end() {
        self.bytes.append(13)
        self.bytes.append(10)
        self.width = 0
    }

    /// Appends one octet, folding first when the UTF-8 sequence it starts would pass 75 octets.
    private mutating func put(_ b: UInt8) {
        if b & 0xC0 != 0x80 {
            let length = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4
            if self.width + length > 75 {
                self.bytes.append(13)
                self.bytes.append(10)
                self.bytes.append(32)
                self.width = 1
            }
        }
        self.bytes.append(b)
        self.width += 1
    }

    private mutating func digits(_ value: Int, _ count: Int) {
        var divisor = 1
        for _ in 1..<count { divisor *= 10 }
        var v = value
        if v >= divisor * 10 {  // wider than asked: all of it
            for ch in String(v).utf8 { self.put(ch) }
            return
        }
        while divisor > 0 {
            self.put(UInt8(ascii: "0") + UInt8(v / divisor))
            v %= divisor
            divisor /= 10
        }
    }

    /// `+HHMM` / `-HHMM`.
    static func offset(_ seconds: Int) -> String {
        let m = abs(seconds) / 60
        return (seconds < 0 ? "-" : "+") + String(format: "%02d%02d", m / 60, m % 60)
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
            self.line("DTSTART", time: LocalDateTime(instant: instant.addingTimeInterval(Double(before)), in: Self.gmt))
            self.line("TZOFFSETFROM", Self.offset(before))
            self.line("TZOFFSETTO", Self.offset(after))
            if let name = zone.abbreviation(for: instant) { self.line("TZNAME", text: name) }
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

    /// The validator of a feed computed from what it shows: a SHA-256 digest (128 bits, hex) of its events, every field
    /// that `feed` writes of them, and of the day in `zone` (the feed's span moves at midnight). The same events on the
    /// same day give the same validator; any change of them, another. Node feeds use it (a node shows tens of
    /// reservations in its window); a user's own feed keeps its change counters (`CalendarRepository`).
    static func validator(_ events: [CalendarRepository.Event], zone: TimeZone, now: Date = Date()) -> String {
        var hasher = SHA256()
        func add(_ text: String) {
            var count = UInt64(text.utf8.count).littleEndian
            withUnsafeBytes(of: &count) { hasher.update(bufferPointer: $0) }
            hasher.update(data: Array(text.utf8))
        }
        add(String(LocalDateTime(instant: now, in: zone).sqlText.prefix(10)))
        for event in events {
            for field in [
                event.uid, event.summary, event.description, String(event.start.microseconds), String(event.end.microseconds),
                String(event.sequence), event.modified.map { String($0) } ?? "-", event.status,
            ] { add(field) }
        }
        return hasher.finalize().prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// A whole feed: the calendar's properties, the VTIMEZONE over the events' span, one VEVENT per event.
    static func feed(_ events: [CalendarRepository.Event], name: String, zone: TimeZone, now: Date = Date()) -> [UInt8] {
        var ics = ICalendarWriter(capacity: 1024 + events.count * 400)
        ics.line("BEGIN", "VCALENDAR")
        ics.line("VERSION", "2.0")
        ics.line("PRODID", "-//remas//reservations//EN")
        ics.line("CALSCALE", "GREGORIAN")
        ics.line("METHOD", "PUBLISH")
        ics.line("X-WR-CALNAME", text: name)
        ics.line("X-WR-TIMEZONE", zone.identifier)
        // The zone's offsets over the feed's span (local wall-clock microseconds are within a day of the instant).
        let first = min(events.map { Double($0.start.microseconds) / 1e6 }.min() ?? now.timeIntervalSince1970, now.timeIntervalSince1970 - 31 * 86_400)
        let last = max(events.map { Double($0.end.microseconds) / 1e6 }.max() ?? now.timeIntervalSince1970, now.timeIntervalSince1970)
        ics.timeZone(zone, from: Date(timeIntervalSince1970: first - 2 * 86_400), to: Date(timeIntervalSince1970: last + 2 * 86_400))
        let stamp = LocalDateTime(instant: now, in: Self.gmt)
        let start = "DTSTART;TZID=" + zone.identifier
        let end = "DTEND;TZID=" + zone.identifier
        for event in events {
            ics.line("BEGIN", "VEVENT")
            ics.line("UID", event.uid + "@remas")
            ics.line("DTSTAMP", time: stamp, utc: true)
            ics.line(start, time: event.start)
            ics.line(end, time: event.end)
            ics.line("SUMMARY", text: event.summary)
            ics.line("DESCRIPTION", text: event.description)
            ics.line("STATUS", event.status)
            ics.line("SEQUENCE", String(event.sequence))
            if let modified = event.modified { ics.line("LAST-MODIFIED", instant: Date(timeIntervalSince1970: modified)) }
            ics.line("TRANSP", "OPAQUE")
            ics.line("END", "VEVENT")
        }
        ics.line("END", "VCALENDAR")
        return ics.bytes
    }
}
