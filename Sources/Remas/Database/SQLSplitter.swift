/// Splits a SQL script into single statements (PostgresNIO sends one statement per query).
///
/// Understands `'…'` and `E'…'` strings, `"…"` identifiers, `--` and nested `/* */` comments and `$tag$ … $tag$`
/// bodies. Empty statements and comment-only pieces are dropped.
public enum SQLSplitter {
    public static func split(_ sql: String) -> [String] {
        let b = Array(sql.utf8)
        var statements: [String] = []
        var start = 0
        var i = 0
        var hasCode = false
        func markCode(_ at: Int) {
            if !hasCode { start = at }
            hasCode = true
        }
        func flush(_ end: Int) {
            if hasCode {
                let text = String(decoding: b[start..<end], as: UTF8.self).trimmingWhitespace()
                if !text.isEmpty { statements.append(text) }
            }
            hasCode = false
        }
        while i < b.count {
            let c = b[i]
            let next: UInt8 = i + 1 < b.count ? b[i + 1] : 0
            switch c {
            case UInt8(ascii: "-") where next == UInt8(ascii: "-"):
                while i < b.count, b[i] != UInt8(ascii: "\n") { i += 1 }
                continue
            case UInt8(ascii: "/") where next == UInt8(ascii: "*"):
                var depth = 1
                i += 2
                while i < b.count, depth > 0 {
                    if b[i] == UInt8(ascii: "/"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "*") {
                        depth += 1
                        i += 2
                    } else if b[i] == UInt8(ascii: "*"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "/") {
                        depth -= 1
                        i += 2
                    } else {
                        i += 1
                    }
                }
                continue
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                markCode(i)
                // E'...' strings also end-escape with a backslash; doubled quotes escape in both kinds.
                let escapes = c == UInt8(ascii: "'") && i > 0 && (b[i - 1] == UInt8(ascii: "E") || b[i - 1] == UInt8(ascii: "e"))
                i = Self.endOfQuoted(b, from: i + 1, quote: c, backslashEscapes: escapes)
                continue
            case UInt8(ascii: "$"):
                // $tag$ or $$ opens a dollar-quoted body; $1 is a parameter.
                var j = i + 1
                while j < b.count, b[j] == UInt8(ascii: "_") || (b[j] >= 65 && b[j] <= 90) || (b[j] >= 97 && b[j] <= 122)
                    || (j > i + 1 && b[j] >= 48 && b[j] <= 57)
                {
                    j += 1
                }
                if j < b.count, b[j] == UInt8(ascii: "$") {
                    markCode(i)
                    let tag = Array(b[i...j])
                    var k = j + 1
                    while k + tag.count <= b.count, Array(b[k..<(k + tag.count)]) != tag { k += 1 }
                    i = min(b.count, k + tag.count)
                    continue
                }
                markCode(i)
                i += 1
                continue
            case UInt8(ascii: ";"):
                flush(i)
                start = i + 1
                i += 1
                continue
            default:
                if !(c == 32 || c == 9 || c == 10 || c == 13) { markCode(i) }
                i += 1
            }
        }
        flush(b.count)
        return statements
    }
}

extension SQLSplitter {
    /// Index just past the closing `quote` of a quoted run starting at `from`.
    static func endOfQuoted(_ b: [UInt8], from: Int, quote: UInt8, backslashEscapes: Bool) -> Int {
        var i = from
        while i < b.count {
            if backslashEscapes, b[i] == UInt8(ascii: "\\") {
                i += 2
                continue
            }
            if b[i] == quote {
                if i + 1 < b.count, b[i + 1] == quote {
                    i += 2
                    continue
                }
                return i + 1
            }
            i += 1
        }
        return b.count
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
