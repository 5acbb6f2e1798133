import Foundation
import Hummingbird
import Logging

/// iCalendar feeds: `POST`/`DELETE /calendar/token` (the logged-in user's secret feed URL), and
/// `GET /calendar/{token}.ics` (no login: the token is the credential; `?node=` on an admin's token).
struct CalendarController {
    let env: AppEnvironment
    var calendars: CalendarRepository { CalendarRepository(db: self.env.db) }

    func register(_ routes: RouteBuilder) {
        routes.post("/calendar/token") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            let token = Self.newToken()
            try await self.calendars.setToken(user: caller.id, token: token, logger: context.logger)
            var w = JSONWriter()
            w.beginObject()
            w.field("url", self.baseURL(request) + "/calendar/\(token).ics")
            w.endObject()
            return .json(w.text)
        }
        routes.delete("/calendar/token") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            guard try await self.calendars.deleteToken(user: caller.id, logger: context.logger) else {
                throw AppError.notFound("No calendar feed to delete")
            }
            return .message("Calendar feed deleted")
        }
        routes.get("/calendar/:feed") { request, context in
            guard let feed = context.parameters.get("feed"), feed.hasSuffix(".ics"), feed.count > 4 else {
                throw AppError.notFound("Calendar not found")
            }
            let token = String(feed.dropLast(4))
            guard token.utf8.count <= 128, let holder = try await self.calendars.holder(ofToken: token, logger: context.logger) else {
                throw AppError.notFound("Calendar not found")
            }
            var scope = CalendarRepository.Scope.owner(holder.user)
            if let raw = request.uri.queryParameters.get("node") {
                guard let node = Int32(raw) else {
                    throw AppError.unprocessable("Input should be a valid integer, unable to parse string as an integer: query.node")
                }
                guard holder.isAdmin else { throw AppError.forbidden("Only an admin's feed can show a node") }
                guard try await NodeRepository(db: self.env.db).exists(id: Int(node), logger: context.logger) else {
                    throw AppError.notFound("Node with id \(node) not found!")
                }
                scope = .node(Int(node))
            }
            // A user's own feed: its change counters, read with the token. A node feed: a digest of its events, so its
            // events are read first (migration 0018: bookings no longer count the nodes they reserve on).
            let validator: String
            let readFirst: [CalendarRepository.Event]?
            switch scope {
            case .owner:
                validator = holder.ownFeedETag
                readFirst = nil
            case .node:
                let shown = try await self.calendars.events(scope, logger: context.logger)
                validator = "n." + ICalendarWriter.validator(shown, zone: self.env.zone)
                readFirst = shown
            }
            // The zone too: events are written in it (a restart with another `TZ` changes every feed).
            let etag = "W/\"\(validator).\(self.env.zone.identifier)\""
            var headers: HTTPFields = [.eTag: etag, .cacheControl: "private, no-cache"]
            if let match = request.headers.value(.ifNoneMatch), match.split(separator: ",").contains(where: {
                let tag = $0.trimmingCharacters(in: .whitespaces)
                return tag == "*" || tag == etag || "W/" + tag == etag
            }) {
                return Response(status: .notModified, headers: headers)
            }
            let events: [CalendarRepository.Event]
            if let readFirst { events = readFirst } else { events = try await self.calendars.events(scope, logger: context.logger) }
            headers[.contentType] = "text/calendar; charset=utf-8"
            let name: String
            switch scope {
            case .owner: name = "remas: my reservations"
            case .node(let id): name = "remas: reservations on node \(id)"
            }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: ICalendarWriter.feed(events, name: name, zone: self.env.zone))))
        }
    }

    /// 256 random bits, hex.
    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = Array("0123456789abcdef")
        return String((0..<64).map { _ in hex[Int(generator.next() % 16)] })
    }

    /// `PUBLIC_URL` when set, else the scheme and host the request came to.
    func baseURL(_ request: Request) -> String {
        if let url = self.env.configuration.publicURL { return url }
        let host = request.head.authority ?? "localhost:\(self.env.configuration.port)"
        return "http://\(host)"
    }
}
