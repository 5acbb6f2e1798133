import Hummingbird

/// Every registered route pattern, so an unmatched request can be told apart as 404, 405 or a bad path parameter.
/// Filled while the router is built, read-only once the server runs.
public final class RouteTable: @unchecked Sendable {
    struct Entry {
        let method: HTTPRequest.Method
        let segments: [Substring]
    }
    private var entries: [Entry] = []

    public init() {}

    func add(_ method: HTTPRequest.Method, _ path: String) {
        self.entries.append(Entry(method: method, segments: path.split(separator: "/")))
    }

    /// Every registered route as `METHOD /path/{parameter}` (the OpenAPI spelling), for the document's test.
    var registered: [String] {
        self.entries.map { entry in
            let path = entry.segments.map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
            return "\(entry.method.rawValue) /\(path)"
        }
    }

    enum Match { case none, parameter(name: String), otherMethods([HTTPRequest.Method]) }

    func match(method: HTTPRequest.Method, path: String) -> Match {
        let parts = path.split(separator: "/")
        var methods: [HTTPRequest.Method] = []
        for entry in self.entries where entry.segments.count == parts.count {
            var matches = true
            var parameter: String?
            for (pattern, part) in zip(entry.segments, parts) where pattern != part {
                if pattern.hasPrefix(":") { parameter = parameter ?? String(pattern.dropFirst()) } else { matches = false; break }
            }
            guard matches else { continue }
            if entry.method == method, let parameter { return .parameter(name: parameter) }
            methods.append(entry.method)
        }
        return methods.isEmpty ? .none : .otherMethods(methods)
    }
}
