import Foundation
import Testing

@testable import Remas

@Suite struct LocalDateTimeTests {
    let prague = TimeZone(identifier: "Europe/Prague")!

    @Test func parsesWhatTheFrontendSends() throws {
        let t = try #require(LocalDateTime.parse("2030-01-01 10:00", zone: prague))
        #expect(t.iso == "2030-01-01T10:00:00")
    }

    @Test func parsesIsoVariants() throws {
        #expect(LocalDateTime.parse("2030-01-01T10:00", zone: prague)?.iso == "2030-01-01T10:00:00")
        #expect(LocalDateTime.parse("2030-01-01T10:00:05", zone: prague)?.iso == "2030-01-01T10:00:05")
        #expect(LocalDateTime.parse("2030-03-01T10:00:00.5", zone: prague)?.iso == "2030-03-01T10:00:00.500000")
        #expect(LocalDateTime.parse("2030-03-01T10:00:00.123456789", zone: prague)?.iso == "2030-03-01T10:00:00.123456")
        #expect(LocalDateTime.parse("2030-03-01", zone: prague)?.iso == "2030-03-01T00:00:00")
        #expect(LocalDateTime.parse("2030-03-01 10:00:00.000000", zone: prague)?.iso == "2030-03-01T10:00:00")
    }

    @Test func rejectsMalformed() {
        for text in ["", "2030-01-01 10", "2030-13-01 10:00", "2030-02-30 10:00", "2030-01-01 24:00", "2030-1-1 10:00",
            "2030-01-01T10:00:00+25:00", "2030-01-01T10:00:00 junk", "tomorrow", "2030-01-01T10:00:00."]
        {
            #expect(LocalDateTime.parse(text, zone: prague) == nil, "\(text)")
        }
    }

    @Test func offsetsConvertToServerWallClock() {
        // Winter: Prague is UTC+1.
        #expect(LocalDateTime.parse("2030-01-01T09:00:00Z", zone: prague)?.iso == "2030-01-01T10:00:00")
        #expect(LocalDateTime.parse("2030-01-01T10:00:00+01:00", zone: prague)?.iso == "2030-01-01T10:00:00")
        #expect(LocalDateTime.parse("2030-01-01T04:00:00-05:00", zone: prague)?.iso == "2030-01-01T10:00:00")
        // Summer: UTC+2.
        #expect(LocalDateTime.parse("2030-07-01T08:00:00Z", zone: prague)?.iso == "2030-07-01T10:00:00")
        #expect(LocalDateTime.parse("2030-07-01T10:00:00+0200", zone: prague)?.iso == "2030-07-01T10:00:00")
    }

    @Test func springForwardGap() {
        // 2026-03-29: clocks jump from 02:00 CET to 03:00 CEST (01:00Z).
        #expect(LocalDateTime.parse("2026-03-29T00:59:00Z", zone: prague)?.iso == "2026-03-29T01:59:00")
        #expect(LocalDateTime.parse("2026-03-29T01:00:00Z", zone: prague)?.iso == "2026-03-29T03:00:00")
        // Naive input inside the gap is kept as written (no zone is applied to naive times).
        #expect(LocalDateTime.parse("2026-03-29 02:30", zone: prague)?.iso == "2026-03-29T02:30:00")
    }

    @Test func fallBackOverlap() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00Z); 02:30 local happens twice.
        #expect(LocalDateTime.parse("2026-10-25T00:30:00Z", zone: prague)?.iso == "2026-10-25T02:30:00")
        #expect(LocalDateTime.parse("2026-10-25T01:30:00Z", zone: prague)?.iso == "2026-10-25T02:30:00")
        #expect(LocalDateTime.parse("2026-10-25T02:30:00+02:00", zone: prague)?.iso == "2026-10-25T02:30:00")
        #expect(LocalDateTime.parse("2026-10-25T02:30:00+01:00", zone: prague)?.iso == "2026-10-25T02:30:00")
    }

    @Test func orderingAndArithmetic() throws {
        let a = try #require(LocalDateTime.parse("2030-01-01 10:00", zone: prague))
        let b = try #require(LocalDateTime.parse("2030-01-01 10:00:01", zone: prague))
        #expect(a < b)
        #expect(a.adding(seconds: 1) == b)
        #expect(a.adding(seconds: 86_400 * 365).iso == "2031-01-01T10:00:00")
        #expect(LocalDateTime(year: 2024, month: 2, day: 29)?.iso == "2024-02-29T00:00:00")
        #expect(LocalDateTime(year: 2023, month: 2, day: 29) == nil)
        #expect(LocalDateTime(year: 1969, month: 12, day: 31, hour: 23, minute: 59, second: 59)?.iso == "1969-12-31T23:59:59")
        #expect(a.spaced == "2030-01-01 10:00:00")
    }

    @Test func unixTimestamps() {
        #expect(LocalDateTime.fromUnix(seconds: 1_893_488_400, zone: prague)?.iso == "2030-01-01T10:00:00")
    }
}
