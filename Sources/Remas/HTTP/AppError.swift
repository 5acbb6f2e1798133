import Hummingbird

/// A failure we mean to show the client: rendered as the REMAS envelope `{"detail": "<text>"}`.
public struct AppError: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let detail: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ detail: String, headers: HTTPFields = [:]) {
        self.status = status
        self.detail = detail
        self.headers = headers
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response { self.response }

    public var response: Response {
        var headers = self.headers
        headers[.contentType] = "application/json"
        return Response(status: self.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: JSONText.detail(self.detail))))
    }

    public static func notFound(_ detail: String) -> AppError { AppError(.notFound, detail) }
    public static func badRequest(_ detail: String) -> AppError { AppError(.badRequest, detail) }
    public static func conflict(_ detail: String) -> AppError { AppError(.conflict, detail) }
    public static func forbidden(_ detail: String = "Insufficient permissions!") -> AppError { AppError(.forbidden, detail) }
    public static func unprocessable(_ detail: String) -> AppError { AppError(.unprocessableContent, detail) }
    public static func unauthorized(_ detail: String, bearerChallenge: Bool) -> AppError {
        AppError(.unauthorized, detail, headers: bearerChallenge ? [.wwwAuthenticate: "Bearer"] : [:])
    }
    public static let internalError = AppError(.internalServerError, "Internal Server Error")
}

extension Optional {
    /// A document a repository read (repositories answer nil for "not found"), or the original's 404:
    /// `<noun> with id <id> not found!`.
    func orNotFound(_ noun: String, _ id: Int) throws -> Wrapped {
        guard let self else { throw AppError.notFound("\(noun) with id \(id) not found!") }
        return self
    }
}

/// JSON string escaping (for `JSONWriter`, and for text placed inside a JSON string literal of a Grafana rule template),
/// and the error envelope. Documents are written by PostgreSQL or through `JSONWriter`, never concatenated.
public enum JSONText {
    /// The body of a JSON string literal for `string`, without the quotes.
    public static func escape(_ string: String) -> String {
        // Most text needs no escape: one scan of the bytes, no copy.
        if !string.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) { return string }
        var out = ""
        out.reserveCapacity(string.utf8.count)
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// The REMAS envelope `{"detail": "<text>"}`.
    public static func detail(_ text: String) -> String {
        var w = JSONWriter()
        w.beginObject()
        w.field("detail", text)
        w.endObject()
        return w.text
    }
}

extension Response {
    /// A JSON response from already-encoded JSON text (most read endpoints get it straight from PostgreSQL).
    public static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    public static func json(_ buffer: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }

    public static func message(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        .json(JSONText.detail(text), status: status)
    }
}
