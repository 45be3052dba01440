import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import TowerRPC

/// A bare HTTP/2 client (nghttp2 through `HTTP2Session`) that sends whatever headers a test wants
/// and records what comes back, to check behaviour the gRPC client never provokes.
final class RawHTTP2Client: ChannelInboundHandler, HTTP2SessionDelegate, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Observed: Sendable {
        var headers: [Int32: [String: String]] = [:]
        var closed: [Int32: UInt32] = [:]
        var goAwayCode: UInt32?
        var data: [Int32: Int] = [:]
        var inactive = false
    }
    let observed = Mutex(Observed())
    var session: HTTP2Session!
    var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        session = HTTP2Session(role: .client, delegate: self, settings: HTTP2Settings(), connectionWindowSize: 1 << 20)
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        _ = buffer.withUnsafeReadableBytes { session.receive($0) }
        flush()
    }
    func channelInactive(context: ChannelHandlerContext) { observed.withLock { $0.inactive = true } }
    func flush() {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: 1024)
        _ = session.send(into: &buffer)
        if buffer.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(buffer), promise: nil) }
    }

    func sessionBeginHeaders(streamID: Int32) {}
    func sessionHeader(streamID: Int32, name: String, value: String) -> Bool {
        observed.withLock { $0.headers[streamID, default: [:]][name] = value }
        return true
    }
    func sessionHeadersComplete(streamID: Int32, endStream: Bool) {}
    func sessionData(streamID: Int32, bytes: UnsafeRawBufferPointer) {
        observed.withLock { $0.data[streamID, default: 0] += bytes.count }
        session.consume(streamID: streamID, count: bytes.count)
    }
    func sessionEndStream(streamID: Int32) {}
    func sessionStreamClosed(streamID: Int32, errorCode: UInt32) { observed.withLock { $0.closed[streamID] = errorCode } }
    func sessionOutboundDrained(streamID: Int32) {}
    func sessionPingReceived() {}
    func sessionPingAcknowledged(payload: UInt64) {}
    func sessionGoAwayReceived(lastStreamID: Int32, errorCode: UInt32) { observed.withLock { $0.goAwayCode = errorCode } }
    func sessionFrameReceived() {}

    static func connect(port: Int) async throws -> (RawHTTP2Client, any Channel) {
        let client = RawHTTP2Client()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(client) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return (client, channel)
    }

    /// Opens a stream with `headers` and the given gRPC-framed body, then half-closes.
    func request(on channel: any Channel, headers: [(String, String)], body: [UInt8]) async throws -> Int32 {
        try await channel.eventLoop.submit {
            let id = self.session.submitRequest(headers: headers)!
            var buffer = channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            self.session.enqueue(streamID: id, buffer)
            self.session.finish(streamID: id, trailers: nil)
            self.flush()
            return id
        }.get()
    }

    func waitUntil(_ condition: @Sendable (Observed) -> Bool) async -> Observed {
        for _ in 0..<300 {
            let snapshot = observed.withLock { $0 }
            if condition(snapshot) { return snapshot }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return observed.withLock { $0 }
    }
}

func grpcHeaders(path: String = Echo.unary.path, contentType: String = "application/grpc", method: String = "POST")
    -> [(String, String)]
{
    [
        (":method", method), (":scheme", "http"), (":path", path), (":authority", "localhost"), ("content-type", contentType),
        ("te", "trailers"),
    ]
}

func framed(_ payload: [UInt8]) -> [UInt8] {
    let n = UInt32(payload.count)
    return [0, UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + payload
}

@Suite struct RawHTTP2Tests {
    func withServer(_ configure: (inout RPCServer.Configuration) -> Void = { _ in }, _ body: (Int, HTTP2ClientChannel) async throws -> Void)
        async throws
    {
        var configuration = RPCServer.Configuration(host: "127.0.0.1", port: 0)
        configure(&configuration)
        let server = RPCServer(configuration: configuration, services: [EchoService(probe: Probe())])
        let port = try await server.start().port!
        let client = HTTP2ClientChannel(host: "127.0.0.1", port: port)
        do { try await body(port, client) } catch {
            await client.close()
            await server.shutdown(gracePeriod: .seconds(1))
            throw error
        }
        // Whatever happened, other connections are still served.
        let healthy: Blob = try await client.unary(Echo.unary, Blob("still ok"), options: .default)
        #expect(healthy.text == "still ok")
        await client.close()
        await server.shutdown(gracePeriod: .seconds(1))
    }

    @Test func nonGRPCContentTypeGets415AndNonPostGets405() async throws {
        try await withServer { port, _ in
            let (raw, channel) = try await RawHTTP2Client.connect(port: port)
            let a = try await raw.request(on: channel, headers: grpcHeaders(contentType: "application/json"), body: framed([1]))
            let b = try await raw.request(on: channel, headers: grpcHeaders(method: "PUT"), body: framed([1]))
            let c = try await raw.request(on: channel, headers: grpcHeaders(contentType: "application/grpc+proto"), body: framed([1]))
            let seen = await raw.waitUntil { $0.closed[a] != nil && $0.closed[b] != nil && $0.closed[c] != nil }
            #expect(seen.headers[a]?[":status"] == "415")
            #expect(seen.headers[b]?[":status"] == "405")
            #expect(seen.headers[c]?["grpc-status"] == "0")
            try await channel.close()
        }
    }

    @Test func truncatedFrameGarbageAndOversizePrefix() async throws {
        try await withServer { port, _ in
            let (raw, channel) = try await RawHTTP2Client.connect(port: port)
            let truncated = try await raw.request(on: channel, headers: grpcHeaders(), body: Array(framed([1, 2, 3]).dropLast()))
            let garbage = try await raw.request(on: channel, headers: grpcHeaders(), body: framed([0xFF, 0]))
            let oversize = try await raw.request(on: channel, headers: grpcHeaders(), body: [0, 0x7F, 0xFF, 0xFF, 0xFF])
            let none = try await raw.request(on: channel, headers: grpcHeaders(), body: [])
            let seen = await raw.waitUntil { s in [truncated, garbage, oversize, none].allSatisfy { s.closed[$0] != nil } }
            #expect(seen.headers[truncated]?["grpc-status"] == "13")
            #expect(seen.headers[garbage]?["grpc-status"] == "13")
            #expect(seen.headers[oversize]?["grpc-status"] == "8")
            #expect(seen.headers[none]?["grpc-status"] == "13")
            try await channel.close()
        }
    }

    @Test func trailersOnlyStatusAndPercentEncodedMessageOnTheWire() async throws {
        try await withServer { port, _ in
            let (raw, channel) = try await RawHTTP2Client.connect(port: port)
            let id = try await raw.request(on: channel, headers: grpcHeaders(path: "/test.Echo/Fail"), body: framed(Array("x".utf8)))
            let ok = try await raw.request(on: channel, headers: grpcHeaders(), body: framed([7]))
            let seen = await raw.waitUntil { $0.closed[id] != nil && $0.closed[ok] != nil }
            #expect(seen.headers[id]?["grpc-status"] == "3")
            #expect(seen.headers[id]?["grpc-message"] == "bad %E2%98%BA 100%25%0A")
            #expect(seen.headers[id]?["grpc-status-details-bin"] == "AQID")
            #expect(seen.headers[ok]?["grpc-status"] == "0")
            #expect(seen.data[ok] == 6)
            try await channel.close()
        }
    }

    @Test func badPrefaceClosesOnlyThatConnection() async throws {
        try await withServer { port, _ in
            // Neither the HTTP/2 preface nor HTTP/1.1: the HTTP/1 side answers 400 and hangs up.
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            var buffer = channel.allocator.buffer(capacity: 64)
            buffer.writeString("\u{1}\u{2} garbage\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxxx")
            try await channel.writeAndFlush(buffer)
            try await channel.closeFuture.get()
            // The HTTP/2 preface followed by junk instead of SETTINGS: nghttp2 refuses, we close.
            let second = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            var preface = second.allocator.buffer(capacity: 64)
            preface.writeString("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxxx")
            try await second.writeAndFlush(preface)
            try await second.closeFuture.get()
        }
    }

    @Test func tooManyPingsGetEnhanceYourCalm() async throws {
        try await withServer { port, _ in
            let (raw, channel) = try await RawHTTP2Client.connect(port: port)
            try await channel.eventLoop.submit {
                for payload in 1...5 { raw.session.submitPing(payload: UInt64(payload)) }
                raw.flush()
            }.get()
            let seen = await raw.waitUntil { $0.goAwayCode != nil }
            #expect(seen.goAwayCode == HTTP2ErrorCode.enhanceYourCalm)
            try? await channel.close()
        }
    }

    @Test func rapidResetFloodEndsTheConnection() async throws {
        try await withServer({
            $0.limits.streamResetBurst = 50; $0.limits.streamResetRatePerSecond = 1
        }) { port, _ in
            let (raw, channel) = try await RawHTTP2Client.connect(port: port)
            try await channel.eventLoop.submit {
                for _ in 0..<200 {
                    let id = raw.session.submitRequest(headers: grpcHeaders(path: "/test.Echo/Sleep"))!
                    raw.flush()
                    raw.session.resetStream(streamID: id, errorCode: HTTP2ErrorCode.cancel)
                    raw.flush()
                }
                raw.flush()
            }.get()
            let seen = await raw.waitUntil { $0.goAwayCode != nil || $0.inactive }
            #expect(seen.goAwayCode != nil || seen.inactive)
            try? await channel.close()
        }
    }
}
