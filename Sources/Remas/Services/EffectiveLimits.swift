import Logging
import PostgresNIO

/// Effective limits: along the group chain from the root down to the user's (or a group's) own
/// group, then the user's own limits, the closest level wins each (resource, node); within one level the largest
/// amount wins (ties: the lowest id). A limit without nodes applies nowhere.
///
/// One statement fetches the candidate limits with their depth and node ids (depth 0 = the user's own, 1 = the own
/// group, 2 = its parent, …); the resolution runs here. Used by `GET /limit/*_all` and by every booking.
struct EffectiveLimits: Sendable {
    struct Limit: Sendable {
        let id: Int
        let name: String
        let description: String?
        let amount: Int64
        let userID: Int?
        let groupID: Int?
        let resourceID: Int
        let depth: Int
        let nodeIDs: [Int]
    }

    /// The winning limit of every (resource, node) that has one.
    let winners: [NodeResource: Limit]

    init(candidates: [Limit]) {
        var winners: [NodeResource: Limit] = [:]
        for limit in candidates {
            for node in limit.nodeIDs {
                let pair = NodeResource(node: node, resource: limit.resourceID)
                if let current = winners[pair] {
                    let closer = limit.depth < current.depth
                    let sameLevelBetter = limit.depth == current.depth
                        && (limit.amount > current.amount || (limit.amount == current.amount && limit.id < current.id))
                    guard closer || sameLevelBetter else { continue }
                }
                winners[pair] = limit
            }
        }
        self.winners = winners
    }

    /// The distinct winning limits, by id, as `[LimitResponse]` JSON (each with its complete `node_ids`).
    var json: String {
        var seen = Set<Int>()
        let limits = self.winners.values.filter { seen.insert($0.id).inserted }.sorted { $0.id < $1.id }
        var out = "["
        for (i, l) in limits.enumerated() {
            if i > 0 { out += "," }
            out += "{\"id\":\(l.id),\"name\":\(JSONText.quote(l.name)),\"description\":\(l.description.map(JSONText.quote) ?? "null")"
            out += ",\"amount\":\(l.amount),\"user_id\":\(l.userID.map(String.init) ?? "null"),\"group_id\":\(l.groupID.map(String.init) ?? "null")"
            out += ",\"resource_id\":\(l.resourceID),\"node_ids\":[\(l.nodeIDs.map(String.init).joined(separator: ","))]}"
        }
        return out + "]"
    }

    /// Candidates of user `$1`, or nil when the user does not exist.
    static func forUser(_ id: Int, on db: some SQLExecutor, logger: Logger) async throws -> EffectiveLimits? {
        try await Self.load(UserCandidatesStatement(id: id), db, logger)
    }

    /// Candidates of group `$1`, or nil when the group does not exist.
    static func forGroup(_ id: Int, on db: some SQLExecutor, logger: Logger) async throws -> EffectiveLimits? {
        try await Self.load(GroupCandidatesStatement(id: id), db, logger)
    }

    static func load<S: CandidatesStatement>(_ statement: S, _ db: some SQLExecutor, _ logger: Logger) async throws
        -> EffectiveLimits?
    {
        var exists = false
        var candidates: [Limit] = []
        for limit in try await db.run(statement, logger: logger) {
            if limit.depth < 0 { exists = true } else { candidates.append(limit) }
        }
        return exists ? EffectiveLimits(candidates: candidates) : nil
    }
}

/// Rows: one sentinel with depth -1 when the subject exists, then every candidate limit with its depth.
protocol CandidatesStatement: PostgresPreparedStatement where Row == EffectiveLimits.Limit {
    var id: Int { get }
}

extension CandidatesStatement {
    static var bindingDataTypes: [PostgresDataType] { [.int4] }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(Int32(truncatingIfNeeded: self.id))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> EffectiveLimits.Limit {
        let (id, name, description, amount, user, group, resource, depth, nodes) =
            try row.decode((Int, String, String?, Int64, Int?, Int?, Int, Int, [Int32]).self)
        return .init(
            id: id, name: name, description: description, amount: amount, userID: user, groupID: group, resourceID: resource,
            depth: depth, nodeIDs: nodes.map(Int.init))
    }

    static func candidates(chainSeed: String, sentinel: String, ownLimits: String?) -> String {
        let columns = """
            l.id, l.name, l.description, l.amount, l.user_id, l.group_id, l.resource_id
            """
        let nodes = "ARRAY(SELECT ln.node_id FROM limit_nodes ln WHERE ln.limit_id = l.id ORDER BY ln.node_id)"
        var sql = """
            WITH RECURSIVE \(GroupRepository.ancestorChain(seed: chainSeed))
            SELECT 0, '', NULL::varchar, 0::int8, NULL::int4, NULL::int4, 0, -1, ARRAY[]::int4[] FROM \(sentinel)
            UNION ALL
            SELECT \(columns), c.depth, \(nodes) FROM chain c JOIN limits l ON l.group_id = c.group_id
            """
        if let ownLimits { sql += "\nUNION ALL\nSELECT \(columns), 0, \(nodes) FROM limits l WHERE \(ownLimits)" }
        return sql
    }
}

struct UserCandidatesStatement: CandidatesStatement {
    static let sql = candidates(
        chainSeed: "SELECT u.group_id, 1 FROM users u WHERE u.id = $1", sentinel: "users WHERE id = $1", ownLimits: "l.user_id = $1")
    let id: Int
}

struct GroupCandidatesStatement: CandidatesStatement {
    static let sql = candidates(chainSeed: "SELECT g.id, 1 FROM groups g WHERE g.id = $1", sentinel: "groups WHERE id = $1", ownLimits: nil)
    let id: Int
}
