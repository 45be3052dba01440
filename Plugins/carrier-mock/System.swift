// The only file of the mock that calls the C library: the ledger file and the wall clock.
#if canImport(Glibc)
    import Glibc
#endif

/// An append-only file written one whole line per `write(2)`, so a SIGKILL leaves either the
/// complete line or nothing (O_APPEND writes to a regular file are not torn by a signal).
final class LedgerFile {
    private let fd: Int32

    /// Opens (creating if needed) `path` for appending.
    init(path: String) throws(MockError) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw MockError("cannot open ledger \(path) (errno \(errno))") }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Appends one line (a newline is added).
    func append(line: String) throws(MockError) {
        var bytes = Array(line.utf8)
        bytes.append(0x0a)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw MockError("ledger write failed (errno \(errno))") }
    }

    /// The whole content of `path`, or empty when it does not exist.
    static func readAll(path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var content: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            content.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: content, as: UTF8.self)
    }
}

struct MockError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Wall-clock time for event timestamps.
enum WallClock {
    static func now() -> (seconds: Int64, nanos: Int32) {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return (Int64(spec.tv_sec), Int32(spec.tv_nsec))
    }
}
