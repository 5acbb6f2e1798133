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
            let query = request.uri.queryParameters
            guard let start = try request.queryDateTime("start", zone: self.env.zone, required: true),
                let end = try request.queryDateTime("end", zone: self.env.zone, required: true)
            else { throw AppError.unprocessable("Field required: query.start") }
            let by = try Self.choice(query.get("by"), default: ReportRepository.Grouping.user, "by")
            let csv = try Self.choice(query.get("format"), default: Format.json, "format") == .csv
            guard start < end else { throw AppError.badRequest("The period's start must be before its end!") }
            guard end.microseconds - start.microseconds <= 3_700 * 86_400 * 1_000_000 else {
                throw AppError.badRequest("A report covers at most ten years")
            }
            let lines = try await ReportRepository(db: self.env.db).usage(
                from: start, to: end, by: by, onlyOwner: caller.isAdmin ? nil : caller.id, logger: context.logger)
            let settings = self.env.configuration.usage
            let measured: MeasuredUse? = by == .user && settings.prometheusURL != nil
                ? await PrometheusUsage(settings: settings).measure(from: start, to: end, zone: self.env.zone, logger: context.logger)
                : nil
            if csv {
                let text = UsageReport.csv(lines, by: by, measured: measured, cpuResource: settings.cpuResource)
                return Response(
                    status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"usage.csv\""],
                    body: .init(byteBuffer: ByteBuffer(string: text)))
            }
            return .json(UsageReport.json(lines, by: by, from: start, to: end, measured: measured, cpuResource: settings.cpuResource))
        }
    }

    enum Format: String, CaseIterable { case json, csv }

    static func choice<E: RawRepresentable & CaseIterable>(_ raw: String?, default fallback: E, _ name: String) throws -> E where E.RawValue == String {
        guard let raw else { return fallback }
        guard let value = E(rawValue: raw) else {
            throw AppError.unprocessable("Input should be one of \(E.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")): query.\(name)")
        }
        return value
    }
}
