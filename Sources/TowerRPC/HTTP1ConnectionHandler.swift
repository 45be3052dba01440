import Logging
import NIOCore

/// One HTTP/1.1 connection on the gRPC port: parses requests, answers `/healthz` and the
/// configured routes one request at a time (pipelined requests wait their turn), keeps the
/// connection alive when the client allows it.
final class HTTP1ConnectionHandler: ChannelInboundHandler, ServerProtocolConnection, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let shared: ServerShared
    private let router: HTTPRouter
    private var parser: HTTP1RequestParser
    private var context: ChannelHandlerContext?
    private var taskExecutor: EventLoopTaskExecutor?
    /// A request is being answered; further input waits in the parser.
    private var busy = false
    private var draining = false
    private var closing = false
    private var idleTimer: Scheduled<Void>?
    private var handlerTask: Task<Void, Never>?

    init(shared: ServerShared) {
        self.shared = shared
        self.router = HTTPRouter(routes: shared.configuration.httpRoutes)
        self.parser = HTTP1RequestParser(
            maxHeaderBytes: shared.configuration.limits.maxHeaderListSize,
            maxBodyBytes: shared.configuration.limits.maxHTTPRequestBodySize)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        taskExecutor = EventLoopTaskExecutor(loop: context.eventLoop)
        scheduleIdleClose()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        idleTimer?.cancel()
        handlerTask?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard !closing else { return }
        buffer.withUnsafeReadableBytes { parser.append($0) }
        // While a request is answered the client may pipeline more, but not without bound.
        if parser.bufferedByteCount > parser.maxHeaderBytes + parser.maxBodyBytes + 64 * 1024 {
            return close()
        }
        processInput()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close()
    }

    private func processInput() {
        while !busy, !closing {
            switch parser.next() {
            case .needMoreBytes:
                return
            case .expectContinue:
                write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
            case .failure(let status, let reason):
                send(.text(status, reason + "\n"), keepAlive: false, isHead: false)
                return
            case .request(let request):
                idleTimer?.cancel()
                handle(request)
            }
        }
    }

    private func handle(_ request: HTTP1RequestParser.ParsedRequest) {
        let keepAlive = request.keepAlive
        let isHead = request.method == "HEAD"
        switch router.decide(method: request.method, path: request.path, draining: draining || shared.isDraining) {
        case .respond(let response):
            send(response, keepAlive: keepAlive, isHead: isHead)
        case .route(let route):
            busy = true
            let loop = context!.eventLoop
            let logger = shared.configuration.logger
            let httpRequest = request.asHTTPRequest
            handlerTask = Task(executorPreference: taskExecutor) { [self] in
                let response: HTTPResponse
                do {
                    response = try await route.handler(httpRequest)
                } catch {
                    logger.error(
                        "HTTP route handler failed", metadata: ["path": "\(route.pathPrefix)", "error-type": "\(type(of: error))"])
                    response = .text(500, "internal error\n")
                }
                loop.execute { [self] in
                    handlerTask = nil
                    busy = false
                    send(response, keepAlive: keepAlive, isHead: isHead)
                    processInput()
                }
            }
        }
    }

    private func send(_ response: HTTPResponse, keepAlive: Bool, isHead: Bool) {
        guard let context, !closing else { return }
        let keepOpen = keepAlive && !draining && !shared.isDraining
        var head = "HTTP/1.1 \(response.status) \(Self.reason(response.status))\r\n"
        for (name, value) in response.headers {
            let lower = name.lowercased()
            if lower == "content-length" || lower == "connection" || lower == "transfer-encoding" { continue }
            // Header injection guard: a route's value never ends the line.
            guard !name.utf8.contains(where: { $0 < 33 || $0 == 58 || $0 > 126 }), !value.utf8.contains(where: { $0 == 13 || $0 == 10 })
            else { continue }
            head += "\(name): \(value)\r\n"
        }
        let bodyAllowed = response.status != 204 && response.status != 304
        if bodyAllowed { head += "content-length: \(response.body.count)\r\n" }
        if !keepOpen { head += "connection: close\r\n" }
        head += "\r\n"
        var buffer = context.channel.allocator.buffer(capacity: head.utf8.count + (isHead ? 0 : response.body.count))
        buffer.writeString(head)
        if !isHead && bodyAllowed { buffer.writeBytes(response.body) }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        if keepOpen {
            scheduleIdleClose()
        } else {
            close()
        }
    }

    private func write(_ bytes: [UInt8]) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    private func scheduleIdleClose() {
        idleTimer?.cancel()
        guard let context, let idle = shared.configuration.limits.idleTimeout else { return }
        idleTimer = context.eventLoop.scheduleTask(in: .init(idle)) { [self] in
            if !busy { close() }
        }
    }

    private func close() {
        guard !closing, let context else { return }
        closing = true
        idleTimer?.cancel()
        context.close(promise: nil)
    }

    // MARK: - ServerProtocolConnection

    /// Idle connections close now; a request in progress is answered with `connection: close`.
    func initiateGracefulShutdown() {
        draining = true
        if !busy && !parser.isInsideRequest { close() }
    }

    func forceClose() {
        handlerTask?.cancel()
        close()
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 417: "Expectation Failed"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: "Status"
        }
    }
}
