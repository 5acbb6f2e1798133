import CCurl
import Foundation
import Synchronization

/// How to reach the mail server (spec §7, plus certificate verification, which the original lacked).
public struct SMTPSettings: Sendable {
    public var enabled: Bool
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var fromAddress: String
    public var fromName: String
    /// STARTTLS on a plain connection; otherwise implicit TLS (SMTPS). Plain unencrypted SMTP is never used.
    public var startTLS: Bool
    public var verifyCertificate: Bool
    /// A CA bundle to verify the server with (a site's own CA); the system's store when nil.
    public var caFile: String?
    /// Upper bound of one send, connection included.
    public var timeoutSeconds: Int

    var url: String { "\(self.startTLS ? "smtp" : "smtps")://\(self.host):\(self.port)" }
}

/// Set from another thread to make the transfer in progress give up (graceful shutdown).
final class AbortFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { self.value.load(ordering: .relaxed) }
    func set() { self.value.store(true, ordering: .relaxed) }
}

/// One libcurl easy handle: consecutive sends reuse its connection (curl keeps it open between transfers).
///
/// Blocking: call `send` from a thread of a dedicated pool, never from an event loop, and from one thread at a time.
final class SMTPSession: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let handle: UnsafeMutableRawPointer
    private let settings: SMTPSettings
    private let abort: AbortFlag
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))

    static let initialised: Bool = { remas_curl_global_init() == CURLE_OK }()

    init(settings: SMTPSettings, abort: AbortFlag) throws {
        guard Self.initialised, let handle = curl_easy_init() else { throw Failure(description: "libcurl could not be initialised") }
        self.handle = handle
        self.settings = settings
        self.abort = abort
    }

    deinit {
        curl_easy_cleanup(self.handle)
        self.errorBuffer.deallocate()
    }

    /// Sends one message to one recipient; throws a `Failure` whose text names the cause (refused, timed out, …).
    func send(from: String, to: String, message: [UInt8]) throws {
        let upload = Upload(message)
        var recipients: UnsafeMutablePointer<curl_slist>? = nil
        recipients = curl_slist_append(recipients, "<\(to)>")
        defer { curl_slist_free_all(recipients) }
        self.errorBuffer[0] = 0
        let h = self.handle
        var code = CURLE_OK
        func set(_ result: CURLcode) { if code == CURLE_OK { code = result } }
        set(remas_curl_set_pointer(h, CURLOPT_ERRORBUFFER, self.errorBuffer))
        set(remas_curl_set_string(h, CURLOPT_URL, self.settings.url))
        set(remas_curl_set_long(h, CURLOPT_NOSIGNAL, 1))
        if self.settings.startTLS { set(remas_curl_set_long(h, CURLOPT_USE_SSL, remas_curl_use_ssl_all())) }
        set(remas_curl_set_long(h, CURLOPT_SSL_VERIFYPEER, self.settings.verifyCertificate ? 1 : 0))
        set(remas_curl_set_long(h, CURLOPT_SSL_VERIFYHOST, self.settings.verifyCertificate ? 2 : 0))
        if let ca = self.settings.caFile { set(remas_curl_set_string(h, CURLOPT_CAINFO, ca)) }
        if !self.settings.user.isEmpty {
            set(remas_curl_set_string(h, CURLOPT_USERNAME, self.settings.user))
            set(remas_curl_set_string(h, CURLOPT_PASSWORD, self.settings.password))
        }
        set(remas_curl_set_long(h, CURLOPT_CONNECTTIMEOUT, min(10, self.settings.timeoutSeconds)))
        set(remas_curl_set_long(h, CURLOPT_TIMEOUT, self.settings.timeoutSeconds))
        set(remas_curl_set_string(h, CURLOPT_MAIL_FROM, "<\(from)>"))
        set(remas_curl_set_list(h, CURLOPT_MAIL_RCPT, recipients))
        set(remas_curl_set_long(h, CURLOPT_UPLOAD, 1))
        set(remas_curl_set_upload_size(h, curl_off_t(message.count)))
        let uploadContext = Unmanaged.passUnretained(upload).toOpaque()
        set(remas_curl_set_read_callback(h, { buffer, size, count, context in
            guard let buffer, let context else { return 0 }
            return Unmanaged<Upload>.fromOpaque(context).takeUnretainedValue().read(into: buffer, capacity: size * count)
        }, uploadContext))
        let abortContext = Unmanaged.passUnretained(self.abort).toOpaque()
        set(remas_curl_set_progress_callback(h, { context, _, _, _, _ in
            guard let context else { return 0 }
            return Unmanaged<AbortFlag>.fromOpaque(context).takeUnretainedValue().isSet ? 1 : 0
        }, abortContext))
        guard code == CURLE_OK else { throw Failure(description: "libcurl option refused: \(String(cString: curl_easy_strerror(code)))") }
        let result = withExtendedLifetime((upload, self.abort)) { curl_easy_perform(h) }
        guard result == CURLE_OK else {
            let response = remas_curl_response_code(h)
            let detail = String(cString: self.errorBuffer)
            var text = String(cString: curl_easy_strerror(result))
            if !detail.isEmpty { text += ": \(detail)" }
            if response > 0 { text += " (last SMTP reply \(response))" }
            throw Failure(description: text)
        }
    }
}

/// The message bytes, handed to libcurl's read callback piece by piece.
private final class Upload {
    let bytes: [UInt8]
    var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func read(into buffer: UnsafeMutablePointer<CChar>, capacity: Int) -> Int {
        let n = min(capacity, self.bytes.count - self.offset)
        guard n > 0 else { return 0 }
        self.bytes.withUnsafeBufferPointer { source in
            UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + self.offset, byteCount: n)
        }
        self.offset += n
        return n
    }
}
