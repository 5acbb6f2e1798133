import CCurl
import Foundation
import Synchronization

/// How to reach the mail server (plus certificate verification, which the original lacked).
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

/// libcurl's functions, loaded once, on first use (see `Sources/CCurl/shim.h` for why it is not linked).
final class CurlLibrary: @unchecked Sendable {
    /// Written once by `remas_curl_load`, read-only afterwards.
    let api: UnsafePointer<remas_curl_api>

    private init(_ api: UnsafePointer<remas_curl_api>) { self.api = api }

    static let shared: Result<CurlLibrary, SMTPSession.Failure> = {
        let api = UnsafeMutablePointer<remas_curl_api>.allocate(capacity: 1)
        api.initialize(to: remas_curl_api())
        if let error = remas_curl_load(api) {
            return .failure(SMTPSession.Failure(description: "libcurl could not be loaded: \(String(cString: error))"))
        }
        return .success(CurlLibrary(UnsafePointer(api)))
    }()
}

/// One libcurl easy handle: consecutive sends reuse its connection (curl keeps it open between transfers).
///
/// Blocking: call `send` from a thread of a dedicated pool, never from an event loop, and from one thread at a time.
final class SMTPSession: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let api: UnsafePointer<remas_curl_api>
    private let handle: UnsafeMutableRawPointer
    private let settings: SMTPSettings
    private let abort: AbortFlag
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))

    init(settings: SMTPSettings, abort: AbortFlag) throws {
        let api = try CurlLibrary.shared.get().api
        guard let handle = remas_curl_easy_init(api) else { throw Failure(description: "libcurl could not create a handle") }
        self.api = api
        self.handle = handle
        self.settings = settings
        self.abort = abort
    }

    deinit {
        remas_curl_easy_cleanup(self.api, self.handle)
        self.errorBuffer.deallocate()
    }

    /// Sends one message to one recipient; throws a `Failure` whose text names the cause (refused, timed out, …).
    func send(from: String, to: String, message: [UInt8]) throws {
        let upload = Upload(message)
        let api = self.api
        let recipients = remas_curl_slist_append(api, nil, "<\(to)>")
        defer { remas_curl_slist_free_all(api, recipients) }
        self.errorBuffer[0] = 0
        let h = self.handle
        var code = CURLE_OK
        func set(_ result: CURLcode) { if code == CURLE_OK { code = result } }
        set(remas_curl_set_pointer(api, h, CURLOPT_ERRORBUFFER, self.errorBuffer))
        set(remas_curl_set_string(api, h, CURLOPT_URL, self.settings.url))
        set(remas_curl_set_long(api, h, CURLOPT_NOSIGNAL, 1))
        if self.settings.startTLS { set(remas_curl_set_long(api, h, CURLOPT_USE_SSL, remas_curl_use_ssl_all())) }
        set(remas_curl_set_long(api, h, CURLOPT_SSL_VERIFYPEER, self.settings.verifyCertificate ? 1 : 0))
        set(remas_curl_set_long(api, h, CURLOPT_SSL_VERIFYHOST, self.settings.verifyCertificate ? 2 : 0))
        if let ca = self.settings.caFile { set(remas_curl_set_string(api, h, CURLOPT_CAINFO, ca)) }
        if !self.settings.user.isEmpty {
            set(remas_curl_set_string(api, h, CURLOPT_USERNAME, self.settings.user))
            set(remas_curl_set_string(api, h, CURLOPT_PASSWORD, self.settings.password))
        }
        set(remas_curl_set_long(api, h, CURLOPT_CONNECTTIMEOUT, min(10, self.settings.timeoutSeconds)))
        set(remas_curl_set_long(api, h, CURLOPT_TIMEOUT, self.settings.timeoutSeconds))
        set(remas_curl_set_string(api, h, CURLOPT_MAIL_FROM, "<\(from)>"))
        set(remas_curl_set_list(api, h, CURLOPT_MAIL_RCPT, recipients))
        set(remas_curl_set_long(api, h, CURLOPT_UPLOAD, 1))
        set(remas_curl_set_upload_size(api, h, curl_off_t(message.count)))
        let uploadContext = Unmanaged.passUnretained(upload).toOpaque()
        set(remas_curl_set_read_callback(api, h, { buffer, size, count, context in
            guard let buffer, let context else { return 0 }
            return Unmanaged<Upload>.fromOpaque(context).takeUnretainedValue().read(into: buffer, capacity: size * count)
        }, uploadContext))
        let abortContext = Unmanaged.passUnretained(self.abort).toOpaque()
        set(remas_curl_set_progress_callback(api, h, { context, _, _, _, _ in
            guard let context else { return 0 }
            return Unmanaged<AbortFlag>.fromOpaque(context).takeUnretainedValue().isSet ? 1 : 0
        }, abortContext))
        guard code == CURLE_OK else { throw Failure(description: "libcurl option refused: \(String(cString: remas_curl_strerror(api, code)))") }
        let result = withExtendedLifetime((upload, self.abort)) { remas_curl_easy_perform(api, h) }
        guard result == CURLE_OK else {
            let response = remas_curl_response_code(api, h)
            let detail = String(cString: self.errorBuffer)
            var text = String(cString: remas_curl_strerror(api, result))
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
