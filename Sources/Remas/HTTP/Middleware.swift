import Hummingbird
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// Turns every error into the REMAS envelope. Application errors pass through; anything unexpected is logged with
/// its real cause and answered with a generic 500.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as AppError {
            if error.status.code >= 500 {
                context.logger.error("request failed", metadata: ["detail": "\(error.detail)"])
            }
            return error.response
        } catch let error as PSQLError where mapConstraintError(error, action: Self.action(request.method)) != nil {
            // Data exceptions and integrity violations that no repository mapped are still the client's input, not a
            // server fault: never a 500, and the same text a repository's mapping gives. The transaction was rolled
            // back, nothing is written.
            context.logger.info("database refused input", metadata: ["error": "\(String(reflecting: error))"])
            return mapConstraintError(error, action: Self.action(request.method))!.response
        } catch let error where Self.databaseUnavailable(error) {
            // PostgreSQL down, restarting or unreachable: a 503 the client may retry, at once and with a detail. The
            // pool replaces broken connections by itself, so the next request after PostgreSQL is back succeeds.
            context.logger.warning("database unavailable", metadata: ["error": "\(String(reflecting: error))"])
            return AppError(.serviceUnavailable, "Database unavailable, try again shortly").response
        } catch let error as HTTPError where error.status == .notFound {
            return self.unmatched(request)
        } catch let error as HTTPError {
            if error.status.code >= 500 { context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"]) }
            let detail = error.status == .contentTooLarge ? "Request body is too large" : error.status.reasonPhrase
            return AppError(error.status, detail).response
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            return AppError.internalError.response
        }
    }

    /// The verb of a conflict text for a write the route did not name.
    static func action(_ method: HTTPRequest.Method) -> String {
        switch method {
        case .post: "create"
        case .put, .patch: "update"
        case .delete: "delete"
        default: "write"
        }
    }

    /// Connection-level failures: no connection could be made, the server closed it (restart, shutdown, terminated
    /// backend), the server refuses connections for now (SQLSTATE class 08, 57P01–57P03), no listed server is the
    /// writable one (a failover in progress), or the server became a read-only standby under us (25006).
    static func databaseUnavailable(_ error: any Error) -> Bool {
        if let error = error as? PSQLError {
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed: return true
            case .server:
                let state = error.serverInfo?[.sqlState] ?? ""
                return state.hasPrefix("08") || ["57P01", "57P02", "57P03", "25006"].contains(state)
            default: return false
            }
        }
        return error is ConnectionPool.PoolShutDown || error is DatabaseTarget.NoUsableServer || error is IOError || error is NIOConnectionError || error is ChannelError
    }

    func unmatched(_ request: Request) -> Response {
        let path = request.uri.path
        switch self.routes.match(method: request.method, path: path) {
        case .parameter(let name):
            return AppError.unprocessable("Input should be a valid integer, unable to parse string as an integer: path.\(name)").response
        case .otherMethods(let methods):
            let allow = methods.map(\.rawValue).joined(separator: ", ")
            return AppError(.methodNotAllowed, "Method Not Allowed", headers: [.allow: allow]).response
        case .none:
            if path.count > 1, path.hasSuffix("/") {
                let trimmed = String(path.dropLast())
                if case .none = self.routes.match(method: request.method, path: trimmed) {} else {
                    var location = trimmed
                    if let query = request.uri.query { location += "?" + query }
                    return Response(status: .temporaryRedirect, headers: [.location: location])
                }
            }
            return AppError.notFound("Not Found").response
        }
    }
}

/// CORS as the original configures it: the listed origins (default `*`), credentials, all methods and headers.
struct CORSMiddleware<Context: RequestContext>: RouterMiddleware {
    let origins: [String]
    var allowsAll: Bool { self.origins.contains("*") }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers.value(.origin) else { return try await next(request, context) }
        let allowed = self.allowsAll || self.origins.contains(origin)
        if request.method == .options, let requestedMethod = request.headers.value(.accessControlRequestMethod), !requestedMethod.isEmpty {
            guard allowed else { return AppError.badRequest("Disallowed CORS origin").response }
            var headers: HTTPFields = [
                .accessControlAllowOrigin: origin,
                .accessControlAllowCredentials: "true",
                .accessControlAllowMethods: "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT",
                .accessControlMaxAge: "600",
                .vary: "Origin",
            ]
            if let requested = request.headers.value(.accessControlRequestHeaders) {
                headers[.accessControlAllowHeaders] = requested
            } else {
                headers[.accessControlAllowHeaders] = "Authorization, Content-Type"
            }
            headers[.contentType] = "text/plain; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: "OK")))
        }
        var response = try await next(request, context)
        if allowed {
            response.headers[.accessControlAllowOrigin] = self.allowsAll ? "*" : origin
            response.headers[.accessControlAllowCredentials] = "true"
            if !self.allowsAll { response.headers[.vary] = "Origin" }
        }
        return response
    }
}
