import Hummingbird
import Logging

/// `GET /report/usage?start=&end=&by=user|group|node|resource[&format=csv]`: reserved amount × hours, tasks and peak per
/// row and resource; admins see everyone, a user their own reservations. With `PROMETHEUS_URL`, `by=user` rows also
/// get measured use and efficiency.
struct ReportController {
    let env: AppEnvironment

    func register(_ routes: RouteBuilder) {
        routes.get("/report/usage") { request, context in
            let caller = try await self.env.tokens.authenticate(request)
            guard let start = try request.queryDateTime("start", zone: self.env.zone, required: true),
                let end = try request.queryDateTime("end", zone: self.env.zone, required: true)
            else { throw AppError.unprocessable("Field required: query.start") }
            let by = try request.queryChoice("by", default: ReportRepository.Grouping.user)
            let csv = try request.queryChoice("format", default: Format.json) == .csv
            let text = try await UsageReport.make(
                db: self.env.db, from: start, to: end, by: by, onlyOwner: caller.isAdmin ? nil : caller.id, csv: csv,
                settings: self.env.configuration.usage, zone: self.env.zone, logger: context.logger)
            guard csv else { return .json(text) }
            return Response(
                status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"usage.csv\""],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }

    enum Format: String, CaseIterable { case json, csv }
}
