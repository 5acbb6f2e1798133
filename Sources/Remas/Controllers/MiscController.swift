import Hummingbird

/// `GET /` and `GET /grafana-link` (spec api-core §3).
struct MiscController {
    let env: AppEnvironment

    func register(_ routes: RouteBuilder) {
        let hello = ByteBuffer(string: JSONText.detail("Hello World"))
        routes.get("/") { _, _ in .json(hello) }
        let link = ByteBuffer(string: JSONText.detail(self.env.configuration.grafanaRedirectURL))
        routes.get("/grafana-link") { _, _ in .json(link) }
    }
}
