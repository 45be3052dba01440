import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import TowerRPC

@Suite struct HTTP1ParserTests {
    typealias Parser = HTTP1RequestParser

    /// Feeds `text` one byte at a time (framing must not depend on read boundaries).
    func parseAll(_ text: String, maxBody: Int = 1024) -> [Parser.Event] {
        var parser = Parser(maxHeaderBytes: 1024, maxBodyBytes: maxBody)
        var events: [Parser.Event] = []
        for byte in Array(text.utf8) {
            parser.append([byte])
            while true {
                let event = parser.next()
                if event == .needMoreBytes { break }
                events.append(event)
                if case .failure = event { return events }
            }
        }
        return events
    }

    func requests(_ events: [Parser.Event]) -> [Parser.ParsedRequest] {
        events.compactMap { if case .request(let request) = $0 { request } else { nil } }
    }

    @Test func contentLengthChunkedAndPipelining() {
        let text =
            "GET /healthz?verbose=1 HTTP/1.1\r\nHost: a\r\n\r\n"
            + "POST /webhooks/carriers/twilio HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-Sig: abc \r\n\r\nhello"
            + "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n"
            + "GET /bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        let parsed = requests(parseAll(text))
        #expect(parsed.count == 4)
        #expect(parsed[0].method == "GET" && parsed[0].path == "/healthz" && parsed[0].query == "verbose=1" && parsed[0].keepAlive)
        #expect(parsed[1].body == Array("hello".utf8))
        #expect(parsed[1].headers.contains(.init(name: "x-sig", value: "abc")))
        #expect(parsed[2].body == Array("abc0123456789".utf8))
        #expect(parsed[3].path == "/bye" && !parsed[3].keepAlive)
    }

    @Test func http10ClosesUnlessKeepAlive() {
        #expect(requests(parseAll("GET / HTTP/1.0\r\n\r\n")).first?.keepAlive == false)
        #expect(requests(parseAll("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")).first?.keepAlive == true)
    }

    @Test(arguments: [
        ("GARBAGE\r\n\r\n", 400),
        ("GET  /x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET x HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET /x HTTP/1.1\r\n\r\n", 400),
        ("GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET /x HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("GET /x HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),
        ("GET /x HTTP/1.1\r\nHost: a\r\nBad Name: v\r\n\r\n", 400),
        ("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
        ("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        ("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n", 413),
        ("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n401\r\n", 413),
        ("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX", 400),
    ])
    func malformedRequestsFail(_ text: String, _ status: Int) {
        let events = parseAll(text)
        guard case .failure(let got, _) = events.last else {
            Issue.record("expected failure \(status), got \(events)")
            return
        }
        #expect(got == status)
    }

    @Test func headerTooLargeIs431() {
        let events = parseAll("GET /x HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "a", count: 2000) + "\r\n\r\n")
        #expect(events.last == .failure(status: 431, reason: "request header too large"))
    }

    @Test func expectContinueComesBeforeTheBody() {
        var parser = Parser()
        parser.append(Array("POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n".utf8))
        #expect(parser.next() == .expectContinue)
        #expect(parser.next() == .needMoreBytes)
        parser.append(Array("ok".utf8))
        guard case .request(let request) = parser.next() else {
            Issue.record("no request")
            return
        }
        #expect(request.body == Array("ok".utf8))
    }

    @Test func routerHealthzRoutesAndErrors() {
        let route = HTTPRoute(method: "POST", pathPrefix: "/webhooks/carriers/") { _ in .text(200, "x") }
        let router = HTTPRouter(routes: [route])
        func status(_ method: String, _ path: String, draining: Bool = false) -> Int {
            switch router.decide(method: method, path: path, draining: draining) {
            case .respond(let response): response.status
            case .route: 0
            }
        }
        #expect(status("GET", "/healthz") == 200)
        #expect(status("GET", "/healthz", draining: true) == 503)
        #expect(status("POST", "/healthz") == 405)
        #expect(status("POST", "/webhooks/carriers/twilio") == 0)
        #expect(status("GET", "/webhooks/carriers/twilio") == 405)
        #expect(status("GET", "/nope") == 404)
    }
}

/// Sends raw bytes and collects whatever comes back.
final class RawByteClient: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let received = Mutex<(bytes: [UInt8], closed: Bool)>(([], false))

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        received.withLock { $0.bytes.append(contentsOf: buffer.readableBytesView) }
    }
    func channelInactive(context: ChannelHandlerContext) { received.withLock { $0.closed = true } }

    static func connect(port: Int) async throws -> (RawByteClient, any Channel) {
        let client = RawByteClient()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(client) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return (client, channel)
    }

    func send(_ text: String, on channel: any Channel) async throws {
        var buffer = channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        try await channel.writeAndFlush(buffer)
    }

    /// The text received once `condition` holds (or after 3 s).
    func wait(until condition: (String, Bool) -> Bool) async -> (text: String, closed: Bool) {
        for _ in 0..<300 {
            let snapshot = received.withLock { $0 }
            let text = String(decoding: snapshot.bytes, as: UTF8.self)
            if condition(text, snapshot.closed) { return (text, snapshot.closed) }
            try? await Task.sleep(for: .milliseconds(10))
        }
        let snapshot = received.withLock { $0 }
        return (String(decoding: snapshot.bytes, as: UTF8.self), snapshot.closed)
    }
}

func responseCount(_ text: String) -> Int { text.components(separatedBy: "HTTP/1.1 ").count - 1 }

@Suite struct HTTP1ServerTests {
    final class Seen: Sendable {
        let requests = Mutex<[HTTPRequest]>([])
    }

    func withServer(tls: Bool = false, _ body: (Int, Seen) async throws -> Void) async throws {
        let seen = Seen()
        var configuration = RPCServer.Configuration(host: "127.0.0.1", port: 0)
        if tls { configuration.tls = TestCertificates.shared.serverTLS }
        configuration.limits.maxHTTPRequestBodySize = 64 * 1024
        configuration.httpRoutes = [
            HTTPRoute(method: "POST", pathPrefix: "/webhooks/carriers/") { request in
                seen.requests.withLock { $0.append(request) }
                return HTTPResponse(
                    status: 202, headers: [("x-carrier", String(request.path.split(separator: "/").last ?? ""))],
                    body: Array("got \(request.body.count)".utf8))
            },
            HTTPRoute(method: "GET", pathPrefix: "/boom") { _ in throw SecretError() },
        ]
        let server = RPCServer(configuration: configuration, services: [EchoService(probe: Probe())])
        let port = try await server.start().port!
        do { try await body(port, seen) } catch {
            await server.shutdown(gracePeriod: .seconds(1))
            throw error
        }
        await server.shutdown(gracePeriod: .seconds(1))
    }

    @Test func keepAliveContentLengthChunkedAndGRPCOnTheSamePort() async throws {
        try await withServer { port, seen in
            let (client, channel) = try await RawByteClient.connect(port: port)
            try await client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", on: channel)
            var got = await client.wait { text, _ in text.hasSuffix("ok\n") }
            #expect(got.text.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(!got.closed)
            // Two pipelined webhook posts: Content-Length, then chunked.
            try await client.send(
                "POST /webhooks/carriers/twilio?attempt=2 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\nMessageSid="
                    + "POST /webhooks/carriers/telnyx HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n2\r\n:1\r\n1\r\n}\r\n0\r\n\r\n",
                on: channel)
            got = await client.wait { text, _ in responseCount(text) == 3 && text.hasSuffix("got 7") }
            #expect(got.text.contains("HTTP/1.1 202 Accepted\r\nx-carrier: twilio\r\ncontent-length: 6\r\n\r\ngot 11"))
            #expect(got.text.contains("x-carrier: telnyx"))
            let requests = seen.requests.withLock { $0 }
            #expect(requests.count == 2)
            #expect(requests.first?.query == "attempt=2")
            #expect(requests.first?.header("Content-Type") == "application/x-www-form-urlencoded")
            #expect(requests.last?.body == Array("{\"a\":1}".utf8))
            try await client.send(
                "GET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", on: channel)
            got = await client.wait { _, closed in closed }
            #expect(got.text.contains("HTTP/1.1 404 Not Found"))
            #expect(got.text.contains("HTTP/1.1 500 Internal Server Error"))
            #expect(!got.text.contains("hunter2"))
            #expect(got.closed)

            let grpc = HTTP2ClientChannel(host: "127.0.0.1", port: port)
            let response: Blob = try await grpc.unary(Echo.unary, Blob("grpc too"), options: .default)
            #expect(response.text == "grpc too")
            await grpc.close()
        }
    }

    @Test func malformedAndTooLargeCloseTheConnection() async throws {
        try await withServer { port, _ in
            let (client, channel) = try await RawByteClient.connect(port: port)
            try await client.send("POST /webhooks/carriers/x HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n", on: channel)
            var got = await client.wait { _, closed in closed }
            #expect(got.text.hasPrefix("HTTP/1.1 413 "))
            #expect(got.closed)

            let (second, secondChannel) = try await RawByteClient.connect(port: port)
            try await second.send("GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", on: secondChannel)
            got = await second.wait { _, closed in closed }
            #expect(got.text.hasPrefix("HTTP/1.1 400 "))
        }
    }

    @Test func http1OverTLSWithALPN() async throws {
        try await withServer(tls: true) { port, _ in
            let certificates = TestCertificates.shared
            for version in ["--http1.1", "--http2"] {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
                process.arguments = ["-sS", version, "--cacert", certificates.caPath, "https://127.0.0.1:\(port)/healthz"]
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                if version == "--http1.1" {
                    #expect(String(decoding: data, as: UTF8.self) == "ok\n")
                } else {
                    // ALPN picked h2: the port speaks gRPC there, so curl's GET is refused.
                    #expect(process.terminationStatus == 0)
                }
            }
            let grpc = HTTP2ClientChannel(
                host: "127.0.0.1", port: port,
                configuration: .init(tls: .init(trustRootsPath: certificates.caPath)))
            let response: Blob = try await grpc.unary(Echo.unary, Blob("tls grpc"), options: .default)
            #expect(response.text == "tls grpc")
            await grpc.close()
        }
    }
}
