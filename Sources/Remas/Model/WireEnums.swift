/// The kinds of notification (`notifications.type` on the wire and in the table): the one list that validation, SQL,
/// the importer and the OpenAPI document read.
enum NotificationType: String, CaseIterable, Sendable {
    case taskStart = "task_start"
    case taskEnd = "task_end"
    case grafanaTask = "grafana_resource_exceedance_task"
    case grafanaGeneral = "grafana_resource_exceedance_general"
    case other

    /// Task reminders: mailed at a task's start or end minus the offset.
    static let taskReminders: Set<String> = [Self.taskStart.rawValue, Self.taskEnd.rawValue]
    /// Grafana alerts: kept in step as alert rules.
    static let grafana: Set<String> = [Self.grafanaTask.rawValue, Self.grafanaGeneral.rawValue]
    static let all: Set<String> = Set(Self.allCases.map(\.rawValue))
    /// `('…', '…')`, for `type IN` in SQL.
    static let grafanaSQLList = "(" + Self.grafana.sorted().map { "'\($0)'" }.joined(separator: ", ") + ")"
}

/// The units a resource's amounts may be counted in.
enum ResourceUnit: String, CaseIterable, Sendable {
    case none = ""
    case bytesSI = "Bytes (SI)"
    case bytesIEC = "Bytes (IEC)"

    /// The original's database stores the enum's name.
    var originalName: String {
        switch self {
        case .none: "NONE"
        case .bytesSI: "BYTES_SI"
        case .bytesIEC: "BYTES_IEC"
        }
    }

    /// A unit as the wire or the original's database names it.
    init?(wireOrOriginal text: String) {
        guard let unit = Self(rawValue: text) ?? Self.allCases.first(where: { $0.originalName == text }) else { return nil }
        self = unit
    }
}

/// The groups every database is seeded with (`Seeder`); their ids are fixed and the API treats them specially.
enum SeededGroup: Int, CaseIterable, Sendable {
    /// The root: every group descends from it.
    case everyone = 1
    /// Members of this group or of a group below it are admins.
    case administrators = 2
    /// Where new and orphaned users go.
    case users = 3

    var name: String {
        switch self {
        case .everyone: "Everyone"
        case .administrators: "Administrators"
        case .users: "Users"
        }
    }

    var parent: SeededGroup? { self == .everyone ? nil : .everyone }

    /// The highest seeded id: groups above it are the site's own.
    static let lastID = SeededGroup.users.rawValue
}

/// The administrator every database is seeded with; it cannot be deleted.
enum SeededUser {
    static let administratorID = 1
}
