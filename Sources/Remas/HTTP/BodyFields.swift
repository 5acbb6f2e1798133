import Foundation
import Hummingbird

/// Reads typed fields from a JSON object body, in lax mode like the original (numeric strings count as integers).
public struct BodyFields: Sendable {
    public let values: [String: JSONValue]
    let location: String

    public init(_ value: JSONValue, location: String = "body") throws {
        guard case .object(let values) = value else {
            throw AppError.unprocessable("Input should be a valid dictionary or object: \(location)")
        }
        self.values = values
        self.location = location
    }

    func path(_ key: String) -> String { "\(self.location).\(key)" }

    public func has(_ key: String) -> Bool { self.values[key] != nil }

    func missing(_ key: String) -> AppError { .unprocessable("Field required: \(self.path(key))") }

    // MARK: integers

    static func integer(_ value: JSONValue) -> Int64?? {
        switch value {
        case .int(let v): return .some(v)
        case .double(let d): return d.rounded() == d && abs(d) < 9.2e18 ? .some(Int64(d)) : .some(nil)
        case .string(let s):
            let t = s.trimmingCharacters(in: .whitespaces)
            return .some(Int64(t.hasPrefix("+") ? String(t.dropFirst()) : t))
        case .bool(let b): return .some(b ? 1 : 0)
        default: return nil
        }
    }

    /// A 64-bit integer that may be absent or null (`nil` then).
    public func optionalInt64(_ key: String) throws -> Int64? {
        guard let value = self.values[key], value != .null else { return nil }
        guard case .some(.some(let v)) = Self.integer(value) else {
            throw AppError.unprocessable("Input should be a valid integer: \(self.path(key))")
        }
        return v
    }

    public func int64(_ key: String) throws -> Int64 {
        guard let value = self.values[key] else { throw self.missing(key) }
        guard value != .null, let v = try self.optionalInt64(key) else {
            throw AppError.unprocessable("Input should be a valid integer: \(self.path(key))")
        }
        return v
    }

    /// An id (32-bit in the database) that may be absent or null.
    public func optionalID(_ key: String) throws -> Int? {
        guard let v = try self.optionalInt64(key) else { return nil }
        guard v >= Int64(Int32.min), v <= Int64(Int32.max) else {
            throw AppError.unprocessable("Input should be a valid 32-bit integer: \(self.path(key))")
        }
        return Int(v)
    }

    public func id(_ key: String) throws -> Int {
        guard self.values[key] != nil else { throw self.missing(key) }
        guard let v = try self.optionalID(key) else {
            throw AppError.unprocessable("Input should be a valid integer: \(self.path(key))")
        }
        return v
    }

    /// A key that must be present but may be `null` (pydantic's `X | None` without a default).
    public func requiredNullableID(_ key: String) throws -> Int? {
        guard self.values[key] != nil else { throw self.missing(key) }
        return try self.optionalID(key)
    }

    public func idList(_ key: String) throws -> [Int] {
        guard let value = self.values[key] else { throw self.missing(key) }
        guard case .array(let items) = value else {
            throw AppError.unprocessable("Input should be a valid list: \(self.path(key))")
        }
        return try items.enumerated().map { index, item in
            guard case .some(.some(let v)) = Self.integer(item), v >= Int64(Int32.min), v <= Int64(Int32.max) else {
                throw AppError.unprocessable("Input should be a valid integer: \(self.path(key)).\(index)")
            }
            return Int(v)
        }
    }

    /// A list of ids, or nil when the key is absent or null.
    public func optionalIDList(_ key: String) throws -> [Int]? {
        guard let value = self.values[key], value != .null else { return nil }
        return try self.idList(key)
    }

    /// One of a closed set of words (an enum's raw values); `fallback` when absent or null.
    public func choice<E: RawRepresentable & CaseIterable>(_ key: String, default fallback: E) throws -> E where E.RawValue == String {
        guard let value = self.values[key], value != .null else { return fallback }
        guard case .string(let s) = value, let choice = E(rawValue: s) else {
            throw AppError.notOneOf(E.self, at: self.path(key))
        }
        return choice
    }

    /// One of a closed set of words, required.
    public func requiredChoice<E: RawRepresentable & CaseIterable>(_ key: String) throws -> E where E.RawValue == String {
        guard let value = self.values[key], value != .null else { throw self.missing(key) }
        guard case .string(let s) = value, let choice = E(rawValue: s) else {
            throw AppError.notOneOf(E.self, at: self.path(key))
        }
        return choice
    }

    /// A required list of words of a closed set (an enum's raw values), each once, in the order sent.
    public func choices<E: RawRepresentable & CaseIterable & Equatable>(_ key: String) throws -> [E] where E.RawValue == String {
        guard let value = self.values[key] else { throw self.missing(key) }
        guard case .array(let items) = value else { throw AppError.unprocessable("Input should be a valid list: \(self.path(key))") }
        var chosen: [E] = []
        for (index, item) in items.enumerated() {
            guard case .string(let s) = item, let choice = E(rawValue: s) else {
                throw AppError.notOneOf(E.self, at: "\(self.path(key)).\(index)")
            }
            if !chosen.contains(choice) { chosen.append(choice) }
        }
        return chosen
    }

    /// An integer of the lenient Notification body: absent, null, `""` (the frontend's cleared field) or a value.
    public enum LooseInt: Equatable, Sendable {
        case absent, null, blank
        case value(Int64)

        /// The value, with absent, null and blank as nil.
        public var number: Int64? {
            if case .value(let v) = self { return v }
            return nil
        }
    }

    /// A number, a numeric string or `""`; anything else (booleans, fractions, words) is a 422.
    public func looseInt(_ key: String, range: ClosedRange<Int64> = Int64.min...Int64.max) throws -> LooseInt {
        guard let value = self.values[key] else { return .absent }
        let parsed: Int64?
        switch value {
        case .null: return .null
        case .string(let s) where s.trimmingCharacters(in: .whitespaces).isEmpty: return .blank
        case .bool: parsed = nil  // unlike the other integer fields
        default: parsed = Self.integer(value) ?? nil
        }
        guard let parsed else {
            throw AppError.unprocessable("Input should be a valid integer, a numeric string or an empty string: \(self.path(key))")
        }
        guard range.contains(parsed) else {
            throw AppError.unprocessable("Input should be between \(range.lowerBound) and \(range.upperBound): \(self.path(key))")
        }
        return .value(parsed)
    }

    // MARK: strings and booleans

    public func optionalString(_ key: String) throws -> String? {
        guard let value = self.values[key], value != .null else { return nil }
        guard case .string(let s) = value else {
            throw AppError.unprocessable("Input should be a valid string: \(self.path(key))")
        }
        // PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
        guard !s.utf8.contains(0) else {
            throw AppError.unprocessable("String should not contain NUL characters: \(self.path(key))")
        }
        return s
    }

    public func string(_ key: String) throws -> String {
        guard self.values[key] != nil else { throw self.missing(key) }
        guard let s = try self.optionalString(key) else {
            throw AppError.unprocessable("Input should be a valid string: \(self.path(key))")
        }
        return s
    }

    public func requiredNullableString(_ key: String) throws -> String? {
        guard self.values[key] != nil else { throw self.missing(key) }
        return try self.optionalString(key)
    }

    public func optionalBool(_ key: String) throws -> Bool? {
        guard let value = self.values[key], value != .null else { return nil }
        switch value {
        case .bool(let b): return b
        case .int(0): return false
        case .int(1): return true
        case .string(let s):
            switch s.lowercased() {
            case "true", "1", "yes", "on", "t", "y": return true
            case "false", "0", "no", "off", "f", "n": return false
            default: break
            }
        default: break
        }
        throw AppError.unprocessable("Input should be a valid boolean: \(self.path(key))")
    }

    // MARK: nested

    public func objectList(_ key: String) throws -> [BodyFields] {
        guard let value = self.values[key] else { throw self.missing(key) }
        guard case .array(let items) = value else {
            throw AppError.unprocessable("Input should be a valid list: \(self.path(key))")
        }
        return try items.enumerated().map { index, item in try BodyFields(item, location: "\(self.path(key)).\(index)") }
    }

    /// A nested object, required.
    public func object(_ key: String) throws -> BodyFields {
        guard let value = self.values[key] else { throw self.missing(key) }
        return try BodyFields(value, location: self.path(key))
    }

    /// A nested object; nil when absent or null.
    public func optionalObject(_ key: String) throws -> BodyFields? {
        guard let value = self.values[key], value != .null else { return nil }
        return try BodyFields(value, location: self.path(key))
    }

    public func dateTime(_ key: String, zone: TimeZone) throws -> LocalDateTime {
        guard let value = self.values[key] else { throw self.missing(key) }
        switch value {
        case .string(let s):
            if let t = LocalDateTime.parse(s, zone: zone) { return t }
            if let n = Double(s), let t = LocalDateTime.fromUnix(seconds: n, zone: zone) { return t }
        case .int(let n):
            if let t = LocalDateTime.fromUnix(seconds: Double(n), zone: zone) { return t }
        case .double(let n):
            if let t = LocalDateTime.fromUnix(seconds: n, zone: zone) { return t }
        default: break
        }
        throw AppError.unprocessable("Input should be a valid datetime (YYYY-MM-DD HH:MM or ISO 8601): \(self.path(key))")
    }
}

extension Request {
    /// A datetime query parameter (`?start=2031-03-01T10:00`); nil when absent and not `required`.
    public func queryDateTime(_ name: String, zone: TimeZone, required: Bool) throws -> LocalDateTime? {
        guard let raw = self.uri.queryParameters.get(name) else {
            if required { throw AppError.unprocessable("Field required: query.\(name)") }
            return nil
        }
        guard let value = LocalDateTime.parse(raw, zone: zone) else {
            throw AppError.unprocessable("Input should be a valid datetime (YYYY-MM-DD HH:MM or ISO 8601): query.\(name)")
        }
        return value
    }

    /// One of a closed set of words (`?by=user`); `fallback` when absent.
    public func queryChoice<E: RawRepresentable & CaseIterable>(_ name: String, default fallback: E) throws -> E where E.RawValue == String {
        guard let raw = self.uri.queryParameters.get(name) else { return fallback }
        guard let value = E(rawValue: raw) else { throw AppError.notOneOf(E.self, at: "query.\(name)") }
        return value
    }

    public func collectBody(limit: Int) async throws -> ByteBuffer {
        do {
            return try await self.body.collect(upTo: limit)
        } catch {
            throw AppError(.contentTooLarge, "Request body is larger than \(limit) bytes")
        }
    }
}

extension AppError {
    /// 422 for a word outside a closed set, naming the words allowed (pydantic's wording, as the original).
    static func notOneOf<E: RawRepresentable & CaseIterable>(_: E.Type, at path: String) -> AppError where E.RawValue == String {
        .unprocessable("Input should be one of \(E.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")): \(path)")
    }
}
