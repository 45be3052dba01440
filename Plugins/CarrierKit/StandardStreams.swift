// The only file in CarrierKit that touches file descriptors, threads and signals directly.

import Synchronization
import TowerProto

#if canImport(Glibc)
    import Glibc
#endif

/// The plugin's side of the pipes: frames in on stdin, frames out on a private copy of the real
/// stdout, logs on stderr.
///
/// `guardStandardOutput()` duplicates fd 1 for frames and then points fd 1 at stderr, so a stray
/// `print` (from the plugin or any library it uses) lands in the log instead of corrupting the
/// protocol stream.
final class StandardStreams: Sendable {
    private let frameFD: Int32
    private let writeLock = Mutex<Void>(())
    private let peerMaxFrameBytes = Atomic<Int>(CarrierProtocol.defaultMaxFrameBytes)

    private init(frameFD: Int32) {
        self.frameFD = frameFD
    }

    /// Takes over stdout for frames. Call once, before anything could print.
    static func guardStandardOutput() -> StandardStreams {
        signal(SIGPIPE, SIG_IGN)
        let framesFD = fcntl(1, F_DUPFD_CLOEXEC, 3)
        if framesFD < 0 {
            StandardStreams.writeStderr("{\"level\":\"critical\",\"msg\":\"cannot duplicate stdout (errno \(errno))\"}\n")
            exit(70)
        }
        _ = dup2(2, 1)
        return StandardStreams(frameFD: framesFD)
    }

    /// The largest frame the host accepts, learned from its Hello.
    func setPeerMaxFrameBytes(_ limit: Int) {
        peerMaxFrameBytes.store(limit, ordering: .relaxed)
    }

    var maxOutgoingFrameBytes: Int { peerMaxFrameBytes.load(ordering: .relaxed) }

    /// Writes one frame; whole frames never interleave. Returns false when the host is gone.
    @discardableResult
    func write(_ envelope: Carrier_Envelope) -> Bool {
        let frame = CarrierFrame.encode(envelope)
        return writeLock.withLock { _ in
            frame.withUnsafeBytes { raw in StandardStreams.writeAll(frameFD, raw) }
        }
    }

    /// Starts a dedicated thread doing blocking reads of stdin; frames are decoded there and
    /// handed to the returned stream. The stream finishes at end of input. A protocol fault is
    /// fatal: it is logged with the offending bytes and the process exits.
    func readFrames(maxFrameBytes: Int) -> AsyncStream<Carrier_Envelope> {
        let (stream, continuation) = AsyncStream<Carrier_Envelope>.makeStream()
        StandardStreams.startThread {
            var decoder = CarrierFrameDecoder(maxFrameBytes: maxFrameBytes)
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = chunk.withUnsafeMutableBytes { raw in read(0, raw.baseAddress, raw.count) }
                if count < 0 {
                    if errno == EINTR { continue }
                    break
                }
                if count == 0 { break }
                decoder.append(contentsOf: chunk[0..<count])
                do {
                    while let body = try decoder.nextFrame() {
                        continuation.yield(try CarrierFrame.decode(body))
                    }
                } catch {
                    PluginLog.shared.critical("fatal: \(error)")
                    exit(65)
                }
            }
            if let error = decoder.endOfStreamError() {
                PluginLog.shared.warning(error.description)
            }
            continuation.finish()
        }
        return stream
    }

    /// Writes bytes to stderr (fd 2), retrying short writes.
    static func writeStderr(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in _ = writeAll(2, UnsafeRawBufferPointer(utf8)) }
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = systemWrite(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return false
            }
            offset += written
        }
        return true
    }

    /// Runs `body` on a new detached OS thread (blocking reads must not occupy a thread of
    /// Swift's cooperative pool).
    private static func startThread(_ body: @escaping @Sendable () -> Void) {
        final class Box: @unchecked Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { raw in
                let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
                box.body()
                return nil
            }, box)
        precondition(result == 0, "pthread_create failed: \(result)")
        pthread_detach(thread)
    }

    /// Ends the process now.
    static func exitProcess(_ code: Int32) -> Never {
        exit(code)
    }
}

private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
