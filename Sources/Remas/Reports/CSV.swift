/// CSV as RFC 4180 writes it (usage reports, purge archives).
enum CSV {
    /// One record: fields with a comma, quote, CR or LF are quoted, quotes doubled; CRLF at the end.
    static func record(_ fields: [String]) -> String {
        fields.map { field in
            field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" })
                ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
        }.joined(separator: ",") + "\r\n"
    }
}
