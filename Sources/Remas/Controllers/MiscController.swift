import Foundation
import Hummingbird
import Synchronization

/// `GET /` and `GET /grafana-link`, the probes `GET /health` (the process answers) and
/// `GET /ready` (and reaches its database: load balancers and compose healthchecks route by it), and the API
/// description `GET /openapi.json` with its page `GET /docs`.
struct MiscController {
    let env: AppEnvironment

    func register(_ routes: RouteBuilder) {
        let hello = ByteBuffer(string: JSONText.detail("Hello World"))
        routes.get("/") { _, _ in .json(hello) }
        let link = ByteBuffer(string: JSONText.detail(self.env.configuration.grafanaRedirectURL))
        routes.get("/grafana-link") { _, _ in .json(link) }
        if self.env.configuration.metricsEnabled {
            routes.get("/metrics") { _, context in
                var headers = HTTPFields()
                headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
                let text = try await self.env.metrics.render(environment: self.env, logger: context.logger)
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: text))
            }
        }
        // Built on first request, not at startup: encoding it costs a few MiB of short-lived allocations that the C heap
        // keeps, and most servers never serve it.
        let document = LazyBuffer { ByteBuffer(data: APIDocument.document(metricsEnabled: self.env.configuration.metricsEnabled).jsonData) }
        routes.get("/openapi.json") { _, _ in .json(document.value) }
        let page = ByteBuffer(string: DocsPage.html)
        routes.get("/docs") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: page))
        }
        let healthy = ByteBuffer(string: #"{"status":"ok"}"#)
        routes.get("/health") { _, _ in .json(healthy) }
        let ready = ByteBuffer(string: #"{"status":"ready"}"#)
        routes.get("/ready") { _, context in
            do {
                try await self.env.db.ping(logger: context.logger)
            } catch {
                context.logger.warning("readiness: database unreachable", metadata: ["error": "\(String(reflecting: error))"])
                throw AppError(.serviceUnavailable, "Database unreachable")
            }
            return .json(ready)
        }
    }
}

/// A buffer made once, on first use.
final class LazyBuffer: Sendable {
    private let make: @Sendable () -> ByteBuffer
    private let made = Mutex<ByteBuffer?>(nil)

    init(_ make: @escaping @Sendable () -> ByteBuffer) { self.make = make }

    var value: ByteBuffer {
        self.made.withLock { made in
            if let made { return made }
            let value = self.make()
            made = value
            return value
        }
    }
}
