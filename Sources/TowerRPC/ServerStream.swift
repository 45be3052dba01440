import NIOCore
import TowerProtoRuntime

/// One gRPC call on a server connection. All mutable state is confined to the connection's event
/// loop; the `ServerResponseSink` methods, called by the handler task from anywhere, hop there.
final class ServerStream: ServerResponseSink, @unchecked Sendable {
    enum Phase {
        /// Collecting request headers.
        case headers
        /// Unary request: waiting for the message and END_STREAM before starting the handler.
        case awaitingRequest
        /// The handler task is running.
        case running
        /// The response (status) has been submitted; waiting for nghttp2 to close the stream.
        case responded
    }

    let id: Int32
    let loop: any EventLoop
    let connection: ServerConnectionHandler

    // Request headers.
    var method: String?
    var path: String?
    var contentType: String?
    var timeout: String?
    var requestEncoding: String?
    var acceptEncoding: String?
    var metadata = Metadata()
    var headerBytes = 0

    var phase = Phase.headers
    var handler: RPCMethodHandler?
    var context: ServerContext?
    var deframer: MessageDeframer?
    var queue: MessageQueue?
    var singleRequest: FramedMessage?
    var requestClosed = false
    /// Response compression, fixed when the response headers go out.
    var compression: CompressionAlgorithm?
    var compressionForRequest: CompressionAlgorithm?
    var task: Task<Void, Never>?
    var deadlineTimer: Scheduled<Void>?
    /// Received DATA bytes not yet returned to the flow-control windows.
    var unconsumed = 0
    var responseHeadersSent = false
    var writeWaiter: CheckedContinuation<RPCError?, Never>?
    var closed = false

    init(id: Int32, loop: any EventLoop, connection: ServerConnectionHandler) {
        self.id = id
        self.loop = loop
        self.connection = connection
    }

    // MARK: - ServerResponseSink (any thread)

    func write(_ message: [UInt8], compress: Bool) async throws(RPCError) {
        if loop.inEventLoop {
            switch writeOnLoop(message, compress: compress) {
            case .done: return
            case .failed(let error): throw error
            case .wait: break
            }
        }
        let failure: RPCError? = await withCheckedContinuation { continuation in
            if loop.inEventLoop {
                // Already appended; wait for the buffer to drain.
                self.writeWaiter = continuation
            } else {
                loop.execute {
                    switch self.writeOnLoop(message, compress: compress) {
                    case .done: continuation.resume(returning: nil)
                    case .failed(let error): continuation.resume(returning: error)
                    case .wait: self.writeWaiter = continuation
                    }
                }
            }
        }
        if let failure { throw failure }
    }

    func finish(finalMessage: [UInt8]?, error: RPCError?) {
        if loop.inEventLoop {
            finishOnLoop(finalMessage: finalMessage, error: error)
        } else {
            loop.execute { self.finishOnLoop(finalMessage: finalMessage, error: error) }
        }
    }

    // MARK: - Event loop side

    enum WriteOutcome { case done, wait, failed(RPCError) }

    private func writeOnLoop(_ message: [UInt8], compress: Bool) -> WriteOutcome {
        guard phase == .running, !closed else {
            return .failed(RPCError(.cancelled, "The call is already over."))
        }
        sendHeadersIfNeeded()
        let buffered: Int
        do {
            buffered = connection.session.enqueue(streamID: id, try frame(message, compress: compress))
        } catch {
            return .failed(error)
        }
        connection.scheduleFlush()
        if buffered > connection.session.outboundHighWaterMark {
            connection.session.notifyWhenDrained(streamID: id)
            return .wait
        }
        return .done
    }

    private func frame(_ message: [UInt8], compress: Bool) throws(RPCError) -> ByteBuffer {
        if compress, let compression {
            return MessageFramer.frame(try compression.compress(message), compressed: true)
        }
        return MessageFramer.frame(message, compressed: false)
    }

    private func sendHeadersIfNeeded() {
        guard !responseHeadersSent else { return }
        responseHeadersSent = true
        compression = context?.negotiatedResponseCompression
        let initialMetadata = context?.initialMetadata ?? Metadata()
        if compression == nil && initialMetadata.isEmpty {
            connection.session.submitResponse(streamID: id, headers: connection.shared.plainResponseHeaders)
            return
        }
        var headers: [(String, String)] = [(":status", "200"), ("content-type", "application/grpc")]
        if let compression { headers.append(("grpc-encoding", compression.name)) }
        if let accept = connection.shared.acceptEncodingHeader { headers.append(("grpc-accept-encoding", accept)) }
        initialMetadata.forEachWireHeader { headers.append(($0, $1)) }
        connection.session.submitResponse(streamID: id, headers: headers, endStream: false)
    }

    func finishOnLoop(finalMessage: [UInt8]?, error: RPCError?) {
        guard phase != .responded, !closed else { return }
        phase = .responded
        deadlineTimer?.cancel()
        deadlineTimer = nil
        var error = error
        if error == nil, let finalMessage {
            sendHeadersIfNeeded()
            do {
                connection.session.enqueue(streamID: id, try frame(finalMessage, compress: true))
            } catch let failure {
                error = failure
            }
        }
        if responseHeadersSent {
            if error == nil, context?.trailingMetadata.isEmpty ?? true {
                connection.session.finish(streamID: id, staticTrailers: connection.shared.okTrailers)
            } else {
                connection.session.finish(streamID: id, trailers: trailers(error))
            }
        } else {
            var headers: [(String, String)] = [(":status", "200"), ("content-type", "application/grpc")]
            if let accept = connection.shared.acceptEncodingHeader { headers.append(("grpc-accept-encoding", accept)) }
            context?.initialMetadata.forEachWireHeader { headers.append(($0, $1)) }
            headers.append(contentsOf: trailers(error))
            connection.session.submitResponse(streamID: id, headers: headers, endStream: true)
        }
        resumeWriter(RPCError(.cancelled, "The call is already over."))
        connection.scheduleFlush()
    }

    private func trailers(_ error: RPCError?) -> [(String, String)] {
        var trailers: [(String, String)]
        if let error {
            trailers = [("grpc-status", String(error.code.rawValue))]
            if !error.message.isEmpty { trailers.append(("grpc-message", PercentEncoding.encode(error.message))) }
            if let details = error.statusDetails { trailers.append(("grpc-status-details-bin", Base64.encode(details, padded: false))) }
        } else {
            trailers = [("grpc-status", "0")]
        }
        context?.trailingMetadata.forEachWireHeader { trailers.append(($0, $1)) }
        error?.metadata.forEachWireHeader { trailers.append(($0, $1)) }
        return trailers
    }

    /// Sends an error status before any handler ran (or instead of its result).
    func respondWithError(_ error: RPCError, extraHeaders: [(String, String)] = []) {
        guard phase != .responded, !closed else { return }
        phase = .responded
        var headers: [(String, String)] = [(":status", "200"), ("content-type", "application/grpc")]
        headers.append(contentsOf: extraHeaders)
        headers.append(("grpc-status", String(error.code.rawValue)))
        if !error.message.isEmpty { headers.append(("grpc-message", PercentEncoding.encode(error.message))) }
        connection.session.submitResponse(streamID: id, headers: headers, endStream: true)
        connection.scheduleFlush()
    }

    /// A non-gRPC HTTP answer (wrong content-type or method).
    func respondWithHTTPStatus(_ status: Int) {
        guard phase != .responded, !closed else { return }
        phase = .responded
        connection.session.submitResponse(streamID: id, headers: [(":status", String(status))], endStream: true)
        connection.scheduleFlush()
    }

    func resumeWriter(_ error: RPCError?) {
        if let waiter = writeWaiter {
            writeWaiter = nil
            waiter.resume(returning: error)
        }
    }

    /// The deadline passed: cancel the handler and answer DEADLINE_EXCEEDED.
    func deadlineExpired() {
        guard !closed, phase != .responded else { return }
        context?.markCancelled(deadlineExceeded: true)
        task?.cancel()
        let error = RPCError(.deadlineExceeded, "The deadline was exceeded.")
        queue?.fail(error)
        if phase == .running {
            finishOnLoop(finalMessage: nil, error: error)
        } else {
            respondWithError(error)
        }
    }

    /// nghttp2 closed the stream (done, client RST_STREAM or connection gone).
    func streamClosed() {
        closed = true
        deadlineTimer?.cancel()
        deadlineTimer = nil
        if phase != .responded {
            context?.markCancelled()
            task?.cancel()
        }
        queue?.fail(RPCError(.cancelled, "The client cancelled the call."))
        resumeWriter(RPCError(.cancelled, "The client cancelled the call."))
        task = nil
    }
}
