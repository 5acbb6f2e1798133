import Foundation

@testable import Remas

/// Checks a JSON value against a schema of our OpenAPI document: the subset of JSON Schema the document uses
/// (`$ref`, `type`, `properties`, `required`, `items`, `anyOf`, `enum`, `const`, `minimum`, `maximum`, `minLength`,
/// `pattern`). Answers are checked strictly: a key the schema does not list is reported too, so the document stays a
/// complete description of what the server sends.
struct SchemaValidator {
    let schemas: [String: JSONValue]

    init(document: JSONValue) {
        if case .object(let s)? = document["components"]?["schemas"] { self.schemas = s } else { self.schemas = [:] }
    }

    /// Problems found, each as `path: what`; empty when the value conforms.
    func problems(_ value: JSONValue, _ schema: JSONValue, at path: String = "$") -> [String] {
        if let ref = schema["$ref"]?.stringValue {
            let name = String(ref.split(separator: "/").last ?? "")
            guard let target = self.schemas[name] else { return ["\(path): unknown schema \(ref)"] }
            return self.problems(value, target, at: path)
        }
        if case .array(let options)? = schema["anyOf"] {
            let results = options.map { self.problems(value, $0, at: path) }
            if results.contains(where: \.isEmpty) { return [] }
            return ["\(path): matches none of anyOf: " + results.flatMap { $0 }.joined(separator: "; ")]
        }
        var found: [String] = []
        if let type = schema["type"] {
            let allowed: [String] = type.arrayValue?.compactMap(\.stringValue) ?? [type.stringValue ?? ""]
            guard allowed.contains(where: { Self.has(value, type: $0) }) else {
                return ["\(path): \(Self.describe(value)) is not \(allowed.joined(separator: "|"))"]
            }
        }
        if case .array(let options)? = schema["enum"], !options.contains(value) {
            found.append("\(path): \(Self.describe(value)) not in enum")
        }
        if let constant = schema["const"], constant != value { found.append("\(path): not the constant") }
        if case .int(let v) = value {
            if case .int(let min)? = schema["minimum"], v < min { found.append("\(path): \(v) < \(min)") }
            if case .int(let max)? = schema["maximum"], v > max { found.append("\(path): \(v) > \(max)") }
        }
        if case .string(let s) = value {
            if let pattern = schema["pattern"]?.stringValue, s.range(of: pattern, options: .regularExpression) == nil {
                found.append("\(path): \"\(s)\" does not match \(pattern)")
            }
            if case .int(let min)? = schema["minLength"], s.count < min { found.append("\(path): shorter than \(min)") }
        }
        if case .object(let object) = value, case .object(let properties)? = schema["properties"] {
            for key in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where object[key] == nil {
                found.append("\(path): required key \(key) missing")
            }
            for (key, item) in object {
                guard let property = properties[key] else {
                    found.append("\(path): key \(key) is not documented")
                    continue
                }
                found += self.problems(item, property, at: "\(path).\(key)")
            }
        }
        if case .array(let items) = value, let itemSchema = schema["items"] {
            for (index, item) in items.enumerated() { found += self.problems(item, itemSchema, at: "\(path)[\(index)]") }
        }
        return found
    }

    static func has(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("integer", .int), ("number", .int), ("number", .double),
            ("string", .string), ("array", .array), ("object", .object):
            return true
        case ("integer", .double(let d)): return d.rounded() == d
        default: return false
        }
    }

    static func describe(_ value: JSONValue) -> String {
        String(decoding: value.jsonData, as: UTF8.self).prefix(80).description
    }
}
