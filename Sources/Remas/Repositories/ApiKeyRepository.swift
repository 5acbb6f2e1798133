import Logging
import PostgresNIO

/// Machine credentials (`api_keys`): every statement on them, and their documents. Only a key's SHA-256 is stored;
/// the key itself exists in the answer to its creation and nowhere else.
struct ApiKeyRepository: Sendable {
    let db: Database

    /// A key as a machine route sees it.
    struct Key: Sendable {
        let id: Int
        let name: String
        let scopes: [String]
    }

    /// Stores a new key's digest; returns its document with `key` (the only time it is shown).
    func create(name: String, scopes: [String], key: String, by creator: Int, logger: Logger) async throws -> String {
        let json = try await withConflictMapping("create", "API key") {
            try await self.db.text(
                """
                WITH k AS (
                    INSERT INTO api_keys (name, scopes, key_hash, created_by)
                    VALUES (\(name), \(scopes)::text[], sha256(convert_to(\(key), 'UTF8')), \(creator)) RETURNING *)
                SELECT (jsonb_build_object('key', \(key)::text) || \(unescaped: Self.document("k"))::jsonb)::text FROM k
                """, logger: logger)
        }
        return json ?? "null"
    }

    /// Every key, without the key itself, by id.
    func list(logger: Logger) async throws -> String {
        try await self.db.text(
            "SELECT COALESCE(json_agg(\(unescaped: Self.document("k")) ORDER BY k.id), '[]')::text FROM api_keys k", logger: logger) ?? "[]"
    }

    /// False when there was no such key.
    func delete(id: Int, logger: Logger) async throws -> Bool {
        try await self.db.exists("DELETE FROM api_keys WHERE id = \(id) RETURNING id", logger: logger)
    }

    /// The key whose digest matches, its use recorded; nil for a key that is not (or no longer) stored.
    func use(_ key: String, logger: Logger) async throws -> Key? {
        let rows = try await self.db.query(
            """
            UPDATE api_keys SET last_used_at = localtimestamp WHERE key_hash = sha256(convert_to(\(key), 'UTF8'))
            RETURNING id, name, scopes
            """, logger: logger)
        return try rows.first.map {
            let (id, name, scopes) = try $0.decode((Int, String, [String]).self)
            return Key(id: id, name: name, scopes: scopes)
        }
    }

    static func document(_ k: String) -> String {
        """
        json_build_object('id',\(k).id,'name',\(k).name,'scopes',to_json(\(k).scopes),'created_by',\(k).created_by,\
        'created_at',remas_ts(\(k).created_at),'last_used_at',remas_ts(\(k).last_used_at))
        """
    }
}
