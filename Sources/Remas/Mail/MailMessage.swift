import Foundation

/// One plain-text mail, rendered as RFC 5322 bytes.
///
/// No value can start a header of its own: CR, LF and other control characters in names and subjects become spaces,
/// non-ASCII text is sent as RFC 2047 encoded words, and addresses must pass `isDeliverable` (no controls, spaces,
/// brackets or quotes), which also keeps them out of the SMTP envelope commands.
struct MailMessage: Sendable {
    var fromName: String
    var fromAddress: String
    var to: String
    var subject: String
    var body: String
    var date: Date
    var messageID: String

    /// An address we can put into `MAIL FROM`/`RCPT TO` and a header as it is: `local@domain`, printable ASCII only.
    static func isDeliverable(_ address: String) -> Bool {
        guard address.utf8.count <= 254, let at = address.lastIndex(of: "@") else { return false }
        let local = address[..<at]
        let domain = address[address.index(after: at)...]
        guard !local.isEmpty, !domain.isEmpty, !domain.contains("@") else { return false }
        return address.unicodeScalars.allSatisfy { c in
            c.value > 0x20 && c.value < 0x7f && !"<>()[],;:\"\\".unicodeScalars.contains(c)
        }
    }

    func render() -> [UInt8] {
        var head = ""
        head += "From: \(Self.displayName(self.fromName)) <\(self.fromAddress)>\r\n"
        head += "To: <\(self.to)>\r\n"
        head += "Subject: \(Self.headerText(self.subject))\r\n"
        head += "Date: \(Self.rfc5322Date(self.date))\r\n"
        head += "Message-ID: \(self.messageID)\r\n"
        head += "MIME-Version: 1.0\r\n"
        head += "Content-Type: text/plain; charset=utf-8\r\n"
        let lines = Self.crlfLines(self.body)
        let plain = lines.allSatisfy { $0.utf8.count <= 998 && $0.unicodeScalars.allSatisfy { $0.isASCII } }
        var bytes = Array(head.utf8)
        if plain {
            bytes += Array("Content-Transfer-Encoding: 7bit\r\n\r\n".utf8)
            bytes += Array(lines.joined(separator: "\r\n").utf8)
            bytes += Array("\r\n".utf8)
        } else {
            bytes += Array("Content-Transfer-Encoding: base64\r\n\r\n".utf8)
            let encoded = Data(lines.joined(separator: "\r\n").utf8).base64EncodedString()
            var index = encoded.startIndex
            while index < encoded.endIndex {
                let end = encoded.index(index, offsetBy: 76, limitedBy: encoded.endIndex) ?? encoded.endIndex
                bytes += Array(encoded[index..<end].utf8)
                bytes += Array("\r\n".utf8)
                index = end
            }
        }
        return bytes
    }

    static func crlfLines(_ text: String) -> [String] {
        text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// Control characters (CR and LF included) become spaces.
    static func singleLine(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? " " : $0 }))
    }

    /// A phrase for `From:`: a quoted string when ASCII, encoded words otherwise.
    static func displayName(_ name: String) -> String {
        let clean = self.singleLine(name)
        if clean.unicodeScalars.allSatisfy({ $0.isASCII }) && clean.utf8.count <= 200 {
            return "\"" + clean.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        return self.encodedWords(clean)
    }

    /// Unstructured header text (the subject): as it is when short printable ASCII, encoded words otherwise.
    static func headerText(_ text: String) -> String {
        let clean = self.singleLine(text)
        if clean.unicodeScalars.allSatisfy({ $0.isASCII }) && clean.utf8.count <= 900 { return clean }
        return self.encodedWords(clean)
    }

    /// RFC 2047 `=?UTF-8?B?…?=` words of at most 75 characters, never splitting a character, folded onto lines.
    static func encodedWords(_ text: String) -> String {
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 45, !chunk.isEmpty {
                words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=") }
        return words.joined(separator: "\r\n ")
    }

    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(secondsFromGMT: 0)
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }
}
