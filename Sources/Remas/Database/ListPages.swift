import Hummingbird
import Logging
import NIOCore
import PostgresNIO

/// Which part of a list the client asked for: `?offset=N&limit=M` (both optional; the whole list without them, as the
/// original answers).
public struct ListWindow: Sendable {
    public var offset: Int64 = 0
    public var limit: Int64? = nil
}

extension Request {
    /// `offset` and `limit` of a list route: integers ≥ 0, 422 otherwise.
    public func listWindow() throws -> ListWindow {
        ListWindow(offset: try self.queryCount("offset") ?? 0, limit: try self.queryCount("limit"))
    }

    private func queryCount(_ name: String) throws -> Int64? {
        guard let raw = self.uri.queryParameters.get(name) else { return nil }
        guard let value = Int64(raw) else {
            throw AppError.unprocessable("Input should be a valid integer, unable to parse string as an integer: query.\(name)")
        }
        guard value >= 0 else { throw AppError.unprocessable("Input should be greater than or equal to 0: query.\(name)") }
        return value
    }
}

/// A list the wire returns as one JSON array, read in keyset pages so that no answer holds a whole table.
///
/// `pageSQL` selects rows `(id, document)` in id order with the binds `$1` the list's key (an owner or group id; unused
/// by lists of everything), `$2` the last id already sent, `$3` how many rows and `$4` how many to skip
/// (`JSONSQL.listPage` builds it for most lists). Each page is an index range scan from the last id, however deep the
/// list: there is no `OFFSET` after the first page.
protocol ListDefinition: Sendable {
    static var pageSQL: String { get }
    /// Rows per page: a page is held whole while it is sent, so lists of heavy documents (a user embeds their tasks)
    /// take fewer.
    static var pageRows: Int64 { get }
}

extension ListDefinition {
    static var pageRows: Int64 { 500 }
}

/// One page of `L`, prepared once per connection.
struct ListPageStatement<L: ListDefinition>: NamedStatement {
    typealias Row = (Int32, ByteBuffer)
    static var sql: String { L.pageSQL }
    static var bindingDataTypes: [PostgresDataType] { [.int4, .int4, .int8, .int8] }

    let key: Int32?
    let after: Int32
    let count: Int64
    let offset: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 4)
        bindings.append(self.key)
        bindings.append(self.after)
        bindings.append(self.count)
        bindings.append(self.offset)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode((Int32, ByteBuffer).self) }
}

/// A list to answer: the first page is read before the answer starts, so that a database that cannot be reached
/// still answers 503 with a detail. A list that fits in that page is sent whole with its length; a longer one is
/// streamed (chunked), one page at a time. Should a later page fail, the connection is closed before the array ends:
/// the client sees a broken answer, never a short list that looks whole.
///
/// Pages are separate statements, each on its own snapshot: an element changed while a long list is being sent may
/// appear in its new state, and an element created meanwhile may appear at the end; no element appears twice.
struct ListPages<L: ListDefinition>: Sendable {
    let db: Database
    let key: Int?
    let window: ListWindow

    init(db: Database, key: Int? = nil, window: ListWindow) {
        self.db = db
        self.key = key
        self.window = window
    }

    func response(logger: Logger) async throws -> Response {
        let first = try await self.page(after: .min, remaining: self.window.limit, offset: self.window.offset, logger: logger)
        var buffer = ByteBuffer(staticString: "[")
        Self.append(first.rows, to: &buffer, leadingComma: false)
        let left = self.window.limit.map { $0 - Int64(first.rows.count) }
        guard let last = first.rows.last, first.full, left != 0 else {
            buffer.writeStaticString("]")
            return .json(buffer)
        }
        let head = buffer
        let body = ResponseBody { writer in
            try await writer.write(head)
            var after = last.0
            var remaining = left
            while remaining != 0 {
                let next = try await self.page(after: after, remaining: remaining, offset: 0, logger: logger)
                var chunk = ByteBuffer()
                Self.append(next.rows, to: &chunk, leadingComma: true)
                if chunk.readableBytes > 0 { try await writer.write(chunk) }
                guard next.full, let last = next.rows.last else { break }
                after = last.0
                remaining = remaining.map { $0 - Int64(next.rows.count) }
            }
            try await writer.write(ByteBuffer(staticString: "]"))
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: body)
    }

    /// Up to one page; `full` when it returned all it was asked for (so more may follow).
    private func page(after: Int32, remaining: Int64?, offset: Int64, logger: Logger) async throws
        -> (rows: [(Int32, ByteBuffer)], full: Bool)
    {
        let count = min(L.pageRows, remaining ?? .max)
        let statement = ListPageStatement<L>(
            key: self.key.map { Int32(truncatingIfNeeded: $0) }, after: after, count: count, offset: offset)
        let rows = try await self.db.run(statement, logger: logger)
        return (rows, rows.count == count)
    }

    private static func append(_ rows: [(Int32, ByteBuffer)], to buffer: inout ByteBuffer, leadingComma: Bool) {
        for (index, row) in rows.enumerated() {
            if leadingComma || index > 0 { buffer.writeStaticString(",") }
            var document = row.1
            buffer.writeBuffer(&document)
        }
    }
}
