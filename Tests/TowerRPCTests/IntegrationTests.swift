import NIOCore
import NIOPosix
import Testing

@testable import TowerRPC

enum TransportKind: String, CaseIterable, CustomTestStringConvertible {
    /// Handlers on the connection's event loop (default), on the global executor, or in process.
    case http2, http2GlobalExecutor, inProcess
    var testDescription: String { rawValue }
}

/// Runs `body` against a loopback server + HTTP/2 client, or against the in-process channel.
func withChannel(
    _ kind: TransportKind, probe: Probe = Probe(), configure: (inout RPCServer.Configuration) -> Void = { _ in },
    _ body: (any RPCChannel) async throws -> Void
) async throws {
    switch kind {
    case .inProcess:
        try await body(InProcessChannel(services: [EchoService(probe: probe)]))
    case .http2, .http2GlobalExecutor:
        var configuration = RPCServer.Configuration(host: "127.0.0.1", port: 0)
        if kind == .http2GlobalExecutor { configuration.handlerExecution = .globalExecutor }
        configure(&configuration)
        let server = RPCServer(configuration: configuration, services: [EchoService(probe: probe)])
        let address = try await server.start()
        let client = HTTP2ClientChannel(host: "127.0.0.1", port: address.port!)
        do {
            try await body(client)
        } catch {
            await client.close()
            await server.shutdown(gracePeriod: .seconds(1))
            throw error
        }
        await client.close()
        await server.shutdown(gracePeriod: .seconds(1))
    }
}

func expectRPCError(_ code: RPCError.Code, _ body: () async throws -> Void) async -> RPCError? {
    do {
        try await body()
        Issue.record("expected \(code), got success")
        return nil
    } catch let error as RPCError {
        #expect(error.code == code, "\(error)")
        return error
    } catch {
        Issue.record("expected RPCError \(code), got \(error)")
        return nil
    }
}

@Suite struct CallTests {
    @Test(arguments: TransportKind.allCases)
    func unary(_ kind: TransportKind) async throws {
        try await withChannel(kind) { channel in
            let response: Blob = try await channel.unary(Echo.unary, Blob("hello"), options: .default)
            #expect(response.text == "hello")
            let empty: Blob = try await channel.unary(Echo.unary, Blob(), options: .default)
            #expect(empty.bytes.isEmpty)
            // Many calls concurrently on one connection.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        let response: Blob = try await channel.unary(Echo.unary, Blob("n\(index)"), options: .default)
                        #expect(response.text == "n\(index)")
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test(arguments: TransportKind.allCases)
    func serverStreaming(_ kind: TransportKind) async throws {
        try await withChannel(kind) { channel in
            let parts = try await channel.serverStreaming(Echo.expand, Blob("a bb ccc"), options: .default) {
                (responses: ClientResponseStream<Blob>) in
                var parts: [String] = []
                for try await response in responses { parts.append(response.text) }
                return parts
            }
            #expect(parts == ["a", "bb", "ccc"])
        }
    }

    @Test(arguments: TransportKind.allCases)
    func clientStreaming(_ kind: TransportKind) async throws {
        try await withChannel(kind) { channel in
            let response: Blob = try await channel.clientStreaming(Echo.collect, options: .default) { writer in
                for text in ["x", "y", "z"] { try await writer.write(Blob(text)) }
            }
            #expect(response.text == "x,y,z")
        }
    }

    @Test(arguments: TransportKind.allCases)
    func bidiPingPong(_ kind: TransportKind) async throws {
        try await withChannel(kind) { channel in
            let replies = try await channel.bidiStreaming(Echo.chat, options: .default) {
                (writer: ClientRequestWriter<Blob>, responses: ClientResponseStream<Blob>) in
                var iterator = responses.makeAsyncIterator()
                var replies: [String] = []
                for text in ["ping1", "ping2", "ping3"] {
                    try await writer.write(Blob(text))
                    // Wait for each answer before sending the next: real ping-pong.
                    replies.append(try #require(try await iterator.next()).text)
                }
                writer.finish()
                #expect(try await iterator.next() == nil)
                return replies
            }
            #expect(replies == ["echo:ping1", "echo:ping2", "echo:ping3"])
        }
    }

    @Test(arguments: TransportKind.allCases)
    func largeStreamingWithBackpressure(_ kind: TransportKind) async throws {
        try await withChannel(kind) { channel in
            let chunk = Blob([UInt8](repeating: 3, count: 200_000))
            let count = try await channel.bidiStreaming(Echo.chat, options: .default) {
                (writer: ClientRequestWriter<Blob>, responses: ClientResponseStream<Blob>) in
                try await withThrowingTaskGroup(of: Int.self) { group in
                    group.addTask {
                        for _ in 0..<40 { try await writer.write(chunk) }
                        writer.finish()
                        return 0
                    }
                    group.addTask {
                        var total = 0
                        for try await response in responses { total += response.bytes.count }
                        return total
                    }
                    var total = 0
                    for try await value in group { total += value }
                    return total
                }
            }
            #expect(count == 40 * (200_000 + 5))
        }
    }

    @Test(arguments: TransportKind.allCases)
    func deadlineExceededCancelsHandler(_ kind: TransportKind) async throws {
        let probe = Probe()
        try await withChannel(kind, probe: probe) { channel in
            _ = await expectRPCError(.deadlineExceeded) {
                // Long enough for the handler to start even on a loaded machine, so the test is
                // about cancelling a running handler, not about whether it started in time.
                let _: Blob = try await channel.unary(Echo.sleep, Blob("z"), options: CallOptions(timeout: .seconds(1)))
            }
            await probe.wait(for: "sleep-cancelled")
            #expect(probe.events.contains("sleep-start"))
            #expect(probe.events.contains("sleep-cancelled"))
        }
    }

    @Test(arguments: TransportKind.allCases)
    func clientCancellationCancelsHandler(_ kind: TransportKind) async throws {
        let probe = Probe()
        try await withChannel(kind, probe: probe) { channel in
            let task = Task {
                let _: Blob = try await channel.unary(Echo.sleep, Blob("z"), options: .default)
            }
            await probe.wait(for: "sleep-start")
            task.cancel()
            let result = await task.result
            guard case .failure(let error) = result, let rpc = error as? RPCError else {
                Issue.record("expected failure, got \(result)")
                return
            }
            #expect(rpc.code == .cancelled)
            await probe.wait(for: "sleep-cancelled")
            #expect(probe.events.contains("sleep-cancelled"))
        }
    }

    @Test(arguments: TransportKind.allCases)
    func unknownMethodAndServiceAreUnimplemented(_ kind: TransportKind) async throws {
        try await withChannel(kind) { channel in
            let error = await expectRPCError(.unimplemented) {
                let _: Blob = try await channel.unary(
                    MethodDescriptor(service: Echo.service, method: "Nope", kind: .unary), Blob(), options: .default)
            }
            #expect(error?.message.contains("Nope") == true)
            _ = await expectRPCError(.unimplemented) {
                let _: Blob = try await channel.unary(
                    MethodDescriptor(service: "test.Missing", method: "Nope", kind: .unary), Blob(), options: .default)
            }
        }
    }

    @Test(arguments: TransportKind.allCases)
    func errorsCarryStatusMessageMetadataAndDetails(_ kind: TransportKind) async throws {
        try await withChannel(kind) { channel in
            let error = await expectRPCError(.invalidArgument) {
                let _: Blob = try await channel.unary(Echo.fail, Blob("plain"), options: .default)
            }
            #expect(error?.message == "bad ☺ 100%\n")
            #expect(error?.metadata.first("x-why") == "because")
            #expect(error?.statusDetails == [1, 2, 3])
            let domain = await expectRPCError(.notFound) {
                let _: Blob = try await channel.unary(Echo.fail, Blob("domain"), options: .default)
            }
            #expect(domain?.message == "Lead 42 was not found.")
            let secret = await expectRPCError(.unknown) {
                let _: Blob = try await channel.unary(Echo.fail, Blob("secret"), options: .default)
            }
            #expect(secret?.message.contains("hunter2") == false)
            let garbage = await expectRPCError(.internal) {
                let _: Blob = try await channel.unary(Echo.unary, Blob([0xFF, 1]), options: .default)
            }
            #expect(garbage?.message.contains("decode") == true)
        }
    }

    @Test(arguments: TransportKind.allCases)
    func metadataEcho(_ kind: TransportKind) async throws {
        try await withChannel(kind) { channel in
            var metadata: Metadata = ["x-echo": "hi", "x-echo-bin": .binary([0, 255, 7])]
            metadata.add("x-multi", "one")
            metadata.add("x-multi", "two")
            let response: ClientUnaryResponse<Blob> = try await channel.unaryResponse(
                Echo.metadata, Blob(), options: CallOptions(metadata: metadata))
            #expect(response.message.text == "one|two")
            #expect(response.initialMetadata.first("x-initial") == "hi")
            #expect(response.trailingMetadata.first("x-trailing-bin") == .binary([0, 255, 7]))
        }
    }
}

@Suite struct HTTP2Tests {
    @Test func oversizeMessagesAreResourceExhausted() async throws {
        try await withChannel(
            .http2,
            configure: {
                $0.limits.maxReceiveMessageSize = 1000; $0.limits.maxSendMessageSize = 1000
            }
        ) {
            channel in
            _ = await expectRPCError(.resourceExhausted) {
                let _: Blob = try await channel.unary(Echo.unary, Blob([UInt8](repeating: 1, count: 1001)), options: .default)
            }
            _ = await expectRPCError(.resourceExhausted) {
                let _: Blob = try await channel.unary(Echo.big, Blob("1001"), options: .default)
            }
            _ = await expectRPCError(.resourceExhausted) {
                let _: Blob = try await channel.unary(
                    Echo.unary, Blob("small"), options: CallOptions(maxSendMessageSize: 3))
            }
            let ok: Blob = try await channel.unary(Echo.unary, Blob("fits"), options: .default)
            #expect(ok.text == "fits")
        }
    }

    @Test func defaultLimitIsFourMebibytes() async throws {
        try await withChannel(.http2) { channel in
            let ok: Blob = try await channel.unary(Echo.big, Blob("\(4 * 1024 * 1024)"), options: .default)
            #expect(ok.bytes.count == 4 * 1024 * 1024)
            _ = await expectRPCError(.resourceExhausted) {
                let _: Blob = try await channel.unary(Echo.big, Blob("\(4 * 1024 * 1024 + 1)"), options: .default)
            }
        }
    }

    @Test func gzipBothDirections() async throws {
        try await withChannel(.http2) { channel in
            let payload = Blob([UInt8](repeating: 120, count: 50_000))
            let echoed: Blob = try await channel.unary(Echo.unary, payload, options: CallOptions(compression: .gzip))
            #expect(echoed == payload)
            let responses = try await channel.serverStreaming(Echo.compressed, Blob("zip"), options: CallOptions(compression: .gzip)) {
                (stream: ClientResponseStream<Blob>) in
                var all: [Blob] = []
                for try await message in stream { all.append(message) }
                return all
            }
            // The handler saw a compressed request (trailing 1) and sent one compressed, one plain response.
            #expect(responses.map(\.text) == ["zip\u{1}", "zip"])
        }
    }

    @Test func unsupportedRequestEncodingIsUnimplemented() async throws {
        try await withChannel(.http2, configure: { $0.compression = [] }) { channel in
            let error = await expectRPCError(.unimplemented) {
                let _: Blob = try await channel.unary(Echo.unary, Blob("x"), options: CallOptions(compression: .gzip))
            }
            #expect(error?.message.contains("gzip") == true)
        }
    }

    @Test func gracefulShutdownDrainsInFlightCallAndRefusesNewOnes() async throws {
        let probe = Probe()
        let server = RPCServer(configuration: .init(host: "127.0.0.1", port: 0), services: [EchoService(probe: probe)])
        let address = try await server.start()
        let client = HTTP2ClientChannel(host: "127.0.0.1", port: address.port!)
        let inFlight = Task {
            try await client.serverStreaming(Echo.slowStream, Blob("done"), options: .default) {
                (stream: ClientResponseStream<Blob>) in
                var texts: [String] = []
                for try await message in stream { texts.append(message.text) }
                return texts
            }
        }
        await probe.wait(for: "slow-start")
        let shutdown = Task { await server.shutdown(gracePeriod: .seconds(5)) }
        #expect(try await inFlight.value == ["done"])
        await shutdown.value
        _ = await expectRPCError(.unavailable) {
            let _: Blob = try await client.unary(Echo.unary, Blob("late"), options: .default)
        }
        await client.close()
    }
}
