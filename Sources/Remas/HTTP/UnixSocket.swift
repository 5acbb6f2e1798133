import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `SOCKET_PATH`: serving on a Unix domain socket instead of TCP, for replicas on the same host as their nginx (no TCP
/// stack between them, no ports to hand out; one A/B run on 2 cores: nginx + 3 replicas served `GET /node` 6 % faster
/// than over loopback TCP, within this machine's drift).
enum UnixSocket {
    /// Makes the path ready for binding: a socket file left by a process that died without removing it (`kill -9`)
    /// is removed; a path that is not a socket, or a socket a live server still accepts on, is refused.
    static func prepare(path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw ConfigurationError("SOCKET_PATH \(path) exists and is not a socket")
        }
        if Self.accepts(path) {
            throw ConfigurationError("SOCKET_PATH \(path): another server is listening there")
        }
        guard unlink(path) == 0 else {
            throw ConfigurationError("SOCKET_PATH \(path): the stale socket cannot be removed (errno \(errno))")
        }
    }

    /// Lets every local user connect, as they could to a loopback port; restrict access with the directory's mode.
    static func openToLocalUsers(path: String, logger: Logger) {
        if chmod(path, 0o666) != 0 {
            // Serving on: the owner can still connect; other users (nginx's workers, say) get "permission denied".
            logger.error("could not open the socket to other local users", metadata: ["path": "\(path)", "errno": "\(errno)"])
        }
    }

    /// Whether a server accepts connections on the socket at `path`.
    static func accepts(_ path: String) -> Bool {
        #if canImport(Glibc)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes.prefix(raw.count - 1))
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
    }
}
