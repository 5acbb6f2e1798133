/// `${name}` / `$name` substitution with the semantics of Python's `string.Template.safe_substitute`, which the
/// original uses for mail bodies and Grafana rules:
/// - `$$` is a literal `$`;
/// - identifiers are ASCII `[_A-Za-z][_A-Za-z0-9]*`, looked up case-sensitively;
/// - unknown names and malformed placeholders (`${x`, a lone `$`) are left verbatim.
///
/// There is no second templating pass: the result is used as it is (the original's hidden Jinja pass is a defect).
public enum DollarTemplate {
    public static func substitute(_ template: String, _ values: [String: String]) -> String {
        let s = Array(template.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        func isStart(_ c: Unicode.Scalar) -> Bool { c == "_" || (c.isASCII && c.properties.isAlphabetic) }
        func isPart(_ c: Unicode.Scalar) -> Bool { isStart(c) || ("0"..."9").contains(c) }
        while i < s.count {
            let c = s[i]
            guard c == "$", i + 1 < s.count else {
                out.append(c)
                i += 1
                continue
            }
            let next = s[i + 1]
            if next == "$" {
                out.append("$")
                i += 2
            } else if next == "{" {
                var j = i + 2
                if j < s.count, isStart(s[j]) {
                    j += 1
                    while j < s.count, isPart(s[j]) { j += 1 }
                    if j < s.count, s[j] == "}" {
                        let name = String(String.UnicodeScalarView(s[(i + 2)..<j]))
                        if let value = values[name] {
                            out.append(contentsOf: value.unicodeScalars)
                        } else {
                            out.append(contentsOf: s[i...j])
                        }
                        i = j + 1
                        continue
                    }
                }
                out.append("$")
                i += 1
            } else if isStart(next) {
                var j = i + 1
                while j < s.count, isPart(s[j]) { j += 1 }
                let name = String(String.UnicodeScalarView(s[(i + 1)..<j]))
                if let value = values[name] {
                    out.append(contentsOf: value.unicodeScalars)
                } else {
                    out.append(contentsOf: s[i..<j])
                }
                i = j
            } else {
                out.append("$")
                i += 1
            }
        }
        return String(out)
    }
}
