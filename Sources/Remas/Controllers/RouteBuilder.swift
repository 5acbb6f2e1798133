import Hummingbird
import NIOCore

/// Hummingbird's basic context plus the peer's address (the client, or the proxy in front of it: `TrustedProxies`).
public struct AppRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}
public typealias Handler = @Sendable (Request, AppRequestContext) async throws -> Response

/// Registers routes on the router and in the `RouteTable` (for 405s and path-parameter 422s on unmatched requests).
struct RouteBuilder {
    let router: Router<AppRequestContext>
    let table: RouteTable

    func on(_ method: HTTPRequest.Method, _ path: String, _ handler: @escaping Handler) {
        self.table.add(method, path)
        self.router.on(RouterPath(path), method: method) { request, context in try await handler(request, context) }
    }
    func get(_ path: String, _ handler: @escaping Handler) { self.on(.get, path, handler) }
    func post(_ path: String, _ handler: @escaping Handler) { self.on(.post, path, handler) }
    func put(_ path: String, _ handler: @escaping Handler) { self.on(.put, path, handler) }
    func delete(_ path: String, _ handler: @escaping Handler) { self.on(.delete, path, handler) }
}

extension AppRequestContext {
    /// An integer path parameter; anything else is the original's 422.
    func pathID(_ name: String) throws -> Int {
        guard let raw = self.parameters.get(name), let value = Int32(raw) else {
            throw AppError.unprocessable("Input should be a valid integer, unable to parse string as an integer: path.\(name)")
        }
        return Int(value)
    }
}

/// Formats an optional id the way the original prints it (`None` when absent).
func idText(_ id: Int?) -> String { id.map(String.init) ?? "None" }
