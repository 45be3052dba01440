import CarrierKit
import Foundation
import Synchronization
import TowerProto

#if canImport(Glibc)
    import Glibc
#endif

/// The plugin process driven frame by frame, without the host's supervision, so scenarios can
/// do what a well-behaved host never would (wrong versions, oversized frames) and see every
/// byte the plugin writes to stdout.
final class RawPluginSession: Sendable {
    private struct State {
        var received: [Carrier_Envelope] = []
        var violation: String?
        var stdoutClosed = false
        var stdoutBytes = 0
    }

    private let process: Process
    private let input: FileHandle
    private final class Shared: Sendable {
        let state = Mutex(State())
    }
    private let shared = Shared()

    init(executable: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        let environment = ProcessInfo.processInfo.environment
        process.environment = environment.filter { ["PATH", "LANG", "TZ", "TMPDIR"].contains($0.key) || $0.key.hasPrefix("LC_") }
        let stdin = Pipe()
        let stdout = Pipe()
        // Other threads (tests, the server) spawn processes too: without close-on-exec, one of
        // them could inherit our end of the plugin's stdin and keep it open after we close it,
        // so the plugin would never see end of file. The plugin's own ends are dup2'ed onto 0 and
        // 1 in the child, which clears the flag there.
        for handle in [stdin.fileHandleForReading, stdin.fileHandleForWriting, stdout.fileHandleForReading, stdout.fileHandleForWriting] {
            _ = fcntl(handle.fileDescriptor, F_SETFD, FD_CLOEXEC)
        }
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        input = stdin.fileHandleForWriting
        let output = stdout.fileHandleForReading
        let shared = self.shared
        Thread.detachNewThread {
            var decoder = CarrierFrameDecoder(maxFrameBytes: CarrierProtocol.defaultMaxFrameBytes)
            while true {
                let chunk = output.availableData
                if chunk.isEmpty { break }
                decoder.append(contentsOf: chunk)
                shared.state.withLock { $0.stdoutBytes += chunk.count }
                do {
                    while let frame = try decoder.nextFrame() {
                        let envelope = try CarrierFrame.decode(frame)
                        shared.state.withLock { $0.received.append(envelope) }
                    }
                } catch {
                    shared.state.withLock { $0.violation = $0.violation ?? "\(error)" }
                }
            }
            if decoder.bufferedByteCount > 0 {
                shared.state.withLock {
                    $0.violation = $0.violation ?? "stdout ended inside a frame (\(decoder.bufferedByteCount) stray bytes)"
                }
            }
            shared.state.withLock { $0.stdoutClosed = true }
        }
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    /// The first protocol violation seen on stdout (stray bytes, undecodable frame), if any.
    var violation: String? { shared.state.withLock { $0.violation } }
    var pid: Int32 { process.processIdentifier }

    func write(_ envelope: Carrier_Envelope) {
        write(bytes: CarrierFrame.encode(envelope))
    }

    func write(bytes: [UInt8]) {
        try? input.write(contentsOf: Data(bytes))
    }

    func closeInput() {
        try? input.close()
    }

    /// Sends Hello with the given range and returns the HelloAck.
    func handshake(versions: ClosedRange<UInt32> = CarrierProtocol.supportedMajorVersions, timeout: Duration = .seconds(10)) async throws
        -> Carrier_HelloAck
    {
        var hello = Carrier_Hello()
        hello.minMajorVersion = versions.lowerBound
        hello.maxMajorVersion = versions.upperBound
        hello.maxFrameBytes = UInt32(CarrierProtocol.defaultMaxFrameBytes)
        hello.maxUnackedEvents = 1000
        hello.hostAgent = "ctower-conformance"
        var envelope = Carrier_Envelope()
        envelope.payload = .hello(hello)
        write(envelope)
        guard let first = await next(timeout: timeout) else {
            throw ScenarioFailure("no HelloAck within \(timeout)\(violation.map { " (\($0))" } ?? "")")
        }
        guard case .helloAck(let ack) = first.payload else { throw ScenarioFailure("the first frame was not a HelloAck: \(first)") }
        return ack
    }

    /// The next frame (acknowledging events and answering pings on the way), or nil after `timeout`.
    func next(timeout: Duration, where predicate: (Carrier_Envelope) -> Bool = { _ in true }) async -> Carrier_Envelope? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let found = shared.state.withLock { state -> Carrier_Envelope? in
                guard let index = state.received.firstIndex(where: predicate) else { return nil }
                return state.received.remove(at: index)
            }
            if let found { return found }
            if shared.state.withLock({ $0.stdoutClosed && $0.received.isEmpty }) { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    /// Sends a request and waits for its Response.
    func call(id: UInt64, connectionID: String, _ operation: Carrier_Request.Operation, timeout: Duration = .seconds(15)) async throws
        -> Carrier_Response
    {
        var request = Carrier_Request()
        request.connectionID = connectionID
        request.operation = operation
        var envelope = Carrier_Envelope()
        envelope.id = id
        envelope.payload = .request(request)
        write(envelope)
        return try await response(id: id, timeout: timeout)
    }

    func response(id: UInt64, timeout: Duration) async throws -> Carrier_Response {
        guard let envelope = await next(timeout: timeout, where: { $0.id == id && Self.isResponse($0) }),
            case .response(let response) = envelope.payload
        else { throw ScenarioFailure("no Response to request \(id) within \(timeout)") }
        return response
    }

    static func isResponse(_ envelope: Carrier_Envelope) -> Bool {
        if case .response = envelope.payload { return true }
        return false
    }

    /// The exit status once the process ends, or nil if it is still running after `timeout`.
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        if process.isRunning { return nil }
        // The reader thread may still be draining the pipe.
        while !shared.state.withLock({ $0.stdoutClosed }) && ContinuousClock.now < deadline + .seconds(2) {
            try? await Task.sleep(for: .milliseconds(5))
        }
        return process.terminationStatus
    }

    func kill() {
        if process.isRunning { process.terminate() }
    }
}

/// A scenario's verdict when it did not pass.
struct ScenarioFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The scenario does not apply (missing capability or configuration).
struct ScenarioSkip: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
