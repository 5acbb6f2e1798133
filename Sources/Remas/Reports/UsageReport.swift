import AsyncHTTPClient
import Foundation
import Logging
import NIOCore

/// Where measured use comes from (`PROMETHEUS_URL`, the PromQL of `USAGE_CPU_QUERY` and `USAGE_MEMORY_QUERY`).
public struct UsageMeasurementSettings: Sendable {
    public var prometheusURL: String?
    /// CPU core-hours per user over the period, by the label `groupname` (the user's uid: prometheus/process-exporter.yml).
    /// `${range}` becomes the period's length (`3600s`); the query is evaluated at the period's end.
    public var cpuQuery = "sum by (groupname) (increase(namedprocess_namegroup_cpu_seconds_total[${range}])) / 3600"
    /// Peak resident memory (bytes) per user over the period, summed over nodes at each instant.
    public var memoryQuery =
        "max_over_time((sum by (groupname) (namedprocess_namegroup_memory_bytes{memtype=\"resident\"}))[${range}:1m])"
    /// The resource whose reserved hours `efficiency` divides by.
    public var cpuResource = "cpu"
    public var timeoutSeconds = 5
    /// How often the scheduler looks for closed days without day figures (`UsageRollup`); 0: never (reports then sweep
    /// those days live, and `remas report rollup` computes them by hand).
    public var rollupIntervalSeconds = 600

    public init() {}
}

/// Measured use per user uid, or why there is none.
public struct MeasuredUse: Sendable {
    public var cpuCoreHours: [Int: Double] = [:]
    public var peakMemoryBytes: [Int: Double] = [:]
    /// nil when measured; otherwise why not (not configured, unreachable, slow, malformed answer).
    public var unavailable: String?
}

/// Asks Prometheus's HTTP API (`/api/v1/query`) for each user's use over a period.
public struct PrometheusUsage: Sendable {
    let settings: UsageMeasurementSettings

    public init(settings: UsageMeasurementSettings) { self.settings = settings }

    public func measure(from start: LocalDateTime, to end: LocalDateTime, zone: TimeZone, logger: Logger) async -> MeasuredUse {
        guard let base = self.settings.prometheusURL else { return MeasuredUse(unavailable: "PROMETHEUS_URL is not set") }
        let endInstant = end.instant(in: zone).timeIntervalSince1970
        let seconds = max(1, Int((end.microseconds - start.microseconds) / 1_000_000))
        do {
            var use = MeasuredUse()
            use.cpuCoreHours = try await self.query(base, self.settings.cpuQuery, range: seconds, at: endInstant)
            use.peakMemoryBytes = try await self.query(base, self.settings.memoryQuery, range: seconds, at: endInstant)
            return use
        } catch {
            logger.warning("measured use unavailable", metadata: ["error": "\(error)"])
            return MeasuredUse(unavailable: "Prometheus at \(base): \(error)")
        }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// One instant query; its vector as uid → value (series whose `groupname` is not a uid are left out).
    func query(_ base: String, _ promql: String, range: Int, at time: Double) async throws -> [Int: Double] {
        let text = promql.replacingOccurrences(of: "${range}", with: "\(range)s")
        var components = URLComponents(string: base.hasSuffix("/") ? String(base.dropLast()) + "/api/v1/query" : base + "/api/v1/query")
        components?.queryItems = [URLQueryItem(name: "query", value: text), URLQueryItem(name: "time", value: String(format: "%.3f", time))]
        guard let url = components?.url?.absoluteString else { throw Failure(description: "PROMETHEUS_URL is not a URL") }
        let request = HTTPClientRequest(url: url)
        let response: HTTPClientResponse
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(Int64(self.settings.timeoutSeconds)))
        } catch {
            throw Failure(description: "no answer within \(self.settings.timeoutSeconds) s (\(error))")
        }
        let body = try await response.body.collect(upTo: 16 << 20)
        guard response.status == .ok else {
            throw Failure(description: "HTTP \(response.status.code): \(String(buffer: body).prefix(200))")
        }
        guard let value = try? JSONValue.parse(body), case .object(let root) = value, case .object(let data)? = root["data"],
            case .array(let result)? = data["result"]
        else { throw Failure(description: "the answer is not a Prometheus query result") }
        var values: [Int: Double] = [:]
        for item in result {
            guard case .object(let series) = item, case .object(let metric)? = series["metric"], case .string(let group)? = metric["groupname"],
                let uid = Int(group), case .array(let sample)? = series["value"], sample.count == 2, case .string(let number) = sample[1],
                let v = Double(number), v.isFinite
            else { continue }
            values[uid, default: 0] += v
        }
        return values
    }
}

/// Renders a usage report as JSON or CSV (RFC 4180).
public enum UsageReport {
    /// The one way a report is made, for `GET /report/usage` and `remas report usage`: the period checked (400 when
    /// inverted or longer than ten years), the reserved figures, measured use for `by=user` when `PROMETHEUS_URL` is
    /// set, rendered as JSON or CSV. `onlyOwner` limits the rows to one user's reservations.
    public static func make(
        db: Database, from start: LocalDateTime, to end: LocalDateTime, by: ReportRepository.Grouping, onlyOwner: Int?,
        csv: Bool, settings: UsageMeasurementSettings, zone: TimeZone, logger: Logger
    ) async throws -> String {
        guard start < end else { throw AppError.badRequest("The period's start must be before its end!") }
        guard end.microseconds - start.microseconds <= 3_700 * 86_400 * 1_000_000 else {
            throw AppError.badRequest("A report covers at most ten years")
        }
        // Before the purge horizon only whole days' figures are left (README "Old history").
        if let horizon = try await PurgeRepository(db: db).horizon(logger: logger), let day = LocalDateTime.parse(horizon, zone: zone),
            [start, end].contains(where: { $0 < day && $0.microseconds % 86_400_000_000 != 0 })
        {
            throw AppError.badRequest(
                "History before \(horizon) was purged and is kept as day figures: a period reaching before that day must start and end at midnight")
        }
        let lines = try await ReportRepository(db: db).usage(from: start, to: end, by: by, onlyOwner: onlyOwner, logger: logger)
        let measured: MeasuredUse? = by == .user && settings.prometheusURL != nil
            ? await PrometheusUsage(settings: settings).measure(from: start, to: end, zone: zone, logger: logger) : nil
        return csv
            ? Self.csv(lines, by: by, measured: measured, cpuResource: settings.cpuResource)
            : Self.json(lines, by: by, from: start, to: end, measured: measured, cpuResource: settings.cpuResource)
    }

    public static func json(
        _ lines: [ReportRepository.Line], by: ReportRepository.Grouping, from start: LocalDateTime, to end: LocalDateTime,
        measured: MeasuredUse?, cpuResource: String
    ) -> String {
        var w = JSONWriter()
        w.beginObject()
        w.field("start", start.iso)
        w.field("end", end.iso)
        w.field("by", by.rawValue)
        w.key("rows")
        w.beginArray()
        for group in Self.grouped(lines) {
            let first = group[0]
            w.beginObject()
            w.field("id", first.keyID)
            w.field("name", first.keyName)
            w.field("tasks", first.tasks)
            w.key("resources")
            w.beginArray()
            for line in group {
                w.beginObject()
                w.field("resource_id", line.resourceID)
                w.field("resource", line.resource)
                w.field("unit", line.unit)
                w.key("reserved_hours")
                w.double(Self.rounded(line.reservedHours))
                w.field("peak", line.peak)
                w.endObject()
            }
            w.endArray()
            if let measured {
                let used = Self.used(group, measured, cpuResource: cpuResource)
                w.key("used")
                w.beginObject()
                w.key("cpu_core_hours")
                if let v = used.cpu { w.double(Self.rounded(v)) } else { w.null() }
                w.key("peak_memory_bytes")
                if let v = used.memory { w.double(v.rounded()) } else { w.null() }
                w.key("efficiency")
                if let v = used.efficiency { w.double(Self.rounded(v)) } else { w.null() }
                w.endObject()
            }
            w.endObject()
        }
        w.endArray()
        if let measured {
            w.key("used_unavailable")
            w.string(measured.unavailable)
        }
        w.endObject()
        return w.text
    }

    public static func csv(_ lines: [ReportRepository.Line], by: ReportRepository.Grouping, measured: MeasuredUse?, cpuResource: String) -> String {
        var header = [by.rawValue + "_id", by.rawValue, "resource", "unit", "reserved_hours", "peak", "tasks"]
        if measured != nil { header += ["used_cpu_core_hours", "used_peak_memory_bytes", "efficiency", "used_unavailable"] }
        var out = CSV.record(header)
        for group in Self.grouped(lines) {
            let used = measured.map { Self.used(group, $0, cpuResource: cpuResource) }
            for line in group {
                var fields = [
                    String(line.keyID), line.keyName, line.resource, line.unit, Self.number(line.reservedHours), String(line.peak), String(line.tasks),
                ]
                if let measured, let used {
                    fields += [
                        used.cpu.map(Self.number) ?? "", used.memory.map { String(format: "%.0f", $0) } ?? "",
                        used.efficiency.map(Self.number) ?? "", measured.unavailable ?? "",
                    ]
                }
                out += CSV.record(fields)
            }
        }
        return out
    }

    static func grouped(_ lines: [ReportRepository.Line]) -> [[ReportRepository.Line]] {
        var groups: [[ReportRepository.Line]] = []
        for line in lines {
            if let last = groups.last?.first, last.keyID == line.keyID { groups[groups.count - 1].append(line) } else { groups.append([line]) }
        }
        return groups
    }

    static func used(_ group: [ReportRepository.Line], _ measured: MeasuredUse, cpuResource: String)
        -> (cpu: Double?, memory: Double?, efficiency: Double?)
    {
        guard measured.unavailable == nil, let uid = group.first?.uid else { return (nil, nil, nil) }
        let cpu = measured.cpuCoreHours[uid] ?? 0
        let memory = measured.peakMemoryBytes[uid] ?? 0
        let reserved = group.first { $0.resource == cpuResource }?.reservedHours
        let efficiency = reserved.flatMap { $0 > 0 ? cpu / $0 : nil }
        return (cpu, memory, efficiency)
    }

    static func rounded(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }
    static func number(_ v: Double) -> String {
        let r = rounded(v)
        // Whole numbers without a fraction; beyond 1e15 (and non-finite values) as Swift prints doubles, never via Int64.
        return r == r.rounded() && abs(r) < 1e15 ? String(Int64(r)) : String(r)
    }
}
