/// A small JSON parser straight into `JSONValue` (RFC 8259; UTF-8 only, as RFC 8259 §8.1 asks of JSON between
/// systems): request bodies, Grafana's replies (its rule list runs to tens of megabytes, and Foundation's
/// JSONSerialization plus a conversion of its `Any` tree spent seconds on it), templates and imported rows. For request
/// bodies it replaced Foundation's JSONDecoder, ~100 µs of a booking's ~1.1 ms of CPU; JSONParserTests compares the two.
struct JSONParser {
    struct Failure: Error {}

    private let bytes: [UInt8]
    private var i = 0
    private var depth = 0

    static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipSpace()
        let value = try parser.value()
        parser.skipSpace()
        guard parser.i == bytes.count else { throw Failure() }
        return value
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private mutating func skipSpace() {
        while self.i < self.bytes.count {
            switch self.bytes[self.i] {
            case 0x20, 0x09, 0x0A, 0x0D: self.i += 1
            default: return
            }
        }
    }

    private mutating func value() throws -> JSONValue {
        guard self.i < self.bytes.count else { throw Failure() }
        switch self.bytes[self.i] {
        case UInt8(ascii: "{"): return try self.object()
        case UInt8(ascii: "["): return try self.array()
        case UInt8(ascii: "\""): return .string(try self.string())
        case UInt8(ascii: "t"): try self.literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try self.literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try self.literal("null"); return .null
        default: return try self.number()
        }
    }

    private mutating func literal(_ word: String) throws {
        let w = Array(word.utf8)
        guard self.i + w.count <= self.bytes.count, self.bytes[self.i..<(self.i + w.count)].elementsEqual(w) else { throw Failure() }
        self.i += w.count
    }

    private mutating func object() throws -> JSONValue {
        self.depth += 1
        guard self.depth < 512 else { throw Failure() }
        defer { self.depth -= 1 }
        self.i += 1
        var members: [String: JSONValue] = [:]
        self.skipSpace()
        if self.i < self.bytes.count, self.bytes[self.i] == UInt8(ascii: "}") {
            self.i += 1
            return .object(members)
        }
        while true {
            self.skipSpace()
            guard self.i < self.bytes.count, self.bytes[self.i] == UInt8(ascii: "\"") else { throw Failure() }
            let key = try self.string()
            self.skipSpace()
            guard self.i < self.bytes.count, self.bytes[self.i] == UInt8(ascii: ":") else { throw Failure() }
            self.i += 1
            self.skipSpace()
            members[key] = try self.value()
            self.skipSpace()
            guard self.i < self.bytes.count else { throw Failure() }
            if self.bytes[self.i] == UInt8(ascii: ",") {
                self.i += 1
            } else if self.bytes[self.i] == UInt8(ascii: "}") {
                self.i += 1
                return .object(members)
            } else {
                throw Failure()
            }
        }
    }

    private mutating func array() throws -> JSONValue {
        self.depth += 1
        guard self.depth < 512 else { throw Failure() }
        defer { self.depth -= 1 }
        self.i += 1
        var items: [JSONValue] = []
        self.skipSpace()
        if self.i < self.bytes.count, self.bytes[self.i] == UInt8(ascii: "]") {
            self.i += 1
            return .array(items)
        }
        while true {
            self.skipSpace()
            items.append(try self.value())
            self.skipSpace()
            guard self.i < self.bytes.count else { throw Failure() }
            if self.bytes[self.i] == UInt8(ascii: ",") {
                self.i += 1
            } else if self.bytes[self.i] == UInt8(ascii: "]") {
                self.i += 1
                return .array(items)
            } else {
                throw Failure()
            }
        }
    }

    private mutating func hex4() throws -> UInt32 {
        guard self.i + 4 <= self.bytes.count else { throw Failure() }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = self.bytes[self.i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw Failure()
            }
            v = v << 4 | UInt32(d)
            self.i += 1
        }
        return v
    }

    private mutating func string() throws -> String {
        self.i += 1
        let start = self.i
        // Fast path: no escapes.
        while self.i < self.bytes.count {
            let c = self.bytes[self.i]
            if c == UInt8(ascii: "\"") {
                guard let s = String(validating: self.bytes[start..<self.i], as: UTF8.self) else { throw Failure() }
                self.i += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            guard c >= 0x20 else { throw Failure() }
            self.i += 1
        }
        var out = Array(self.bytes[start..<self.i])
        while self.i < self.bytes.count {
            let c = self.bytes[self.i]
            self.i += 1
            switch c {
            case UInt8(ascii: "\""):
                guard let s = String(validating: out, as: UTF8.self) else { throw Failure() }
                return s
            case UInt8(ascii: "\\"):
                guard self.i < self.bytes.count else { throw Failure() }
                let e = self.bytes[self.i]
                self.i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try self.hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate must be followed by an escaped low one.
                        guard self.i + 2 <= self.bytes.count, self.bytes[self.i] == UInt8(ascii: "\\"),
                            self.bytes[self.i + 1] == UInt8(ascii: "u")
                        else { throw Failure() }
                        self.i += 2
                        let low = try self.hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw Failure() }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw Failure()
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw Failure() }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default:
                    throw Failure()
                }
            default:
                guard c >= 0x20 else { throw Failure() }
                out.append(c)
            }
        }
        throw Failure()
    }

    private mutating func number() throws -> JSONValue {
        let start = self.i
        var isInteger = true
        if self.i < self.bytes.count, self.bytes[self.i] == UInt8(ascii: "-") { self.i += 1 }
        let digitsStart = self.i
        while self.i < self.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self.bytes[self.i]) { self.i += 1 }
        guard self.i > digitsStart else { throw Failure() }
        if self.bytes[digitsStart] == UInt8(ascii: "0"), self.i - digitsStart > 1 { throw Failure() }
        if self.i < self.bytes.count, self.bytes[self.i] == UInt8(ascii: ".") {
            isInteger = false
            self.i += 1
            let fraction = self.i
            while self.i < self.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self.bytes[self.i]) { self.i += 1 }
            guard self.i > fraction else { throw Failure() }
        }
        if self.i < self.bytes.count, self.bytes[self.i] == UInt8(ascii: "e") || self.bytes[self.i] == UInt8(ascii: "E") {
            isInteger = false
            self.i += 1
            if self.i < self.bytes.count, self.bytes[self.i] == UInt8(ascii: "+") || self.bytes[self.i] == UInt8(ascii: "-") { self.i += 1 }
            let exponent = self.i
            while self.i < self.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self.bytes[self.i]) { self.i += 1 }
            guard self.i > exponent else { throw Failure() }
        }
        let text = String(decoding: self.bytes[start..<self.i], as: UTF8.self)
        if isInteger, let v = Int64(text) { return .int(v) }
        guard let d = Double(text), d.isFinite else { throw Failure() }  // 1e400 is not a number we can use
        return .double(d)
    }
}
