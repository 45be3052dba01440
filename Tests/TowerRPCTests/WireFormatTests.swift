import Testing
import TowerProtoRuntime

@testable import TowerRPC

@Suite struct MessageFramingTests {
    func frame(_ payload: [UInt8], compressed: Bool = false) -> [UInt8] {
        let length = UInt32(payload.count)
        return [compressed ? 1 : 0, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
            + payload
    }

    @Test(arguments: [1, 2, 3, 5, 7, 64])
    func messagesSurviveArbitrarySplits(chunkSize: Int) throws {
        let messages: [[UInt8]] = [[], [1, 2, 3], Array(repeating: 9, count: 300), [42]]
        let stream = messages.flatMap { frame($0) }
        var deframer = MessageDeframer(maxMessageSize: 1024)
        var received: [[UInt8]] = []
        var index = 0
        while index < stream.count {
            deframer.append(stream[index..<min(index + chunkSize, stream.count)])
            index += chunkSize
            while let message = try deframer.next() { received.append(message.payload) }
        }
        #expect(received == messages)
        #expect(deframer.bufferedByteCount == 0)
    }

    @Test func manyMessagesInOneChunk() throws {
        var deframer = MessageDeframer(maxMessageSize: 1024)
        deframer.append(frame([1]) + frame([2, 2], compressed: true) + frame([3])[0..<3])
        let first = try #require(try deframer.next())
        let second = try #require(try deframer.next())
        #expect(first.payload == [1] && !first.compressed)
        #expect(second.payload == [2, 2] && second.compressed)
        #expect(try deframer.next() == nil)
        #expect(deframer.bufferedByteCount == 3)
    }

    @Test func lengthPrefixOverLimitIsResourceExhausted() {
        var deframer = MessageDeframer(maxMessageSize: 10)
        deframer.append([0, 0, 0, 0, 11])
        #expect(throws: RPCError.self) { try deframer.next() }
        do {
            _ = try deframer.next()
        } catch {
            #expect(error.code == .resourceExhausted)
        }
    }

    @Test func framerWritesPrefix() {
        var buffer = MessageFramer.frame([5, 6], compressed: true)
        #expect(buffer.readBytes(length: buffer.readableBytes) == [1, 0, 0, 0, 2, 5, 6])
    }
}

@Suite struct TimeoutTests {
    @Test func parsesAllUnits() {
        #expect(GRPCTimeout.parse("2H") == .seconds(7200))
        #expect(GRPCTimeout.parse("3M") == .seconds(180))
        #expect(GRPCTimeout.parse("10S") == .seconds(10))
        #expect(GRPCTimeout.parse("250m") == .milliseconds(250))
        #expect(GRPCTimeout.parse("7u") == .microseconds(7))
        #expect(GRPCTimeout.parse("99999999n") == .nanoseconds(99_999_999))
    }

    @Test(arguments: ["", "S", "10", "123456789S", "1x", "-1S", "1.5S", " 1S", "1s"])
    func rejectsMalformed(_ text: String) {
        #expect(GRPCTimeout.parse(text) == nil)
    }

    @Test func formatsWithinEightDigitsAndRoundTrips() {
        for duration: Duration in [.nanoseconds(5), .milliseconds(1), .seconds(30), .seconds(86_400 * 400)] {
            let text = GRPCTimeout.format(duration)
            #expect(text.count <= 9)
            let parsed = try! #require(GRPCTimeout.parse(text))
            #expect(parsed >= duration)
        }
        #expect(GRPCTimeout.format(.seconds(-1)) == "0n")
    }
}

@Suite struct PercentEncodingTests {
    @Test func encodesOutsidePrintableASCIIAndPercent() {
        #expect(PercentEncoding.encode("plain text") == "plain text")
        #expect(PercentEncoding.encode("100%") == "100%25")
        #expect(PercentEncoding.encode("a\tb\r\n") == "a%09b%0D%0A")
        #expect(PercentEncoding.encode("☺") == "%E2%98%BA")
    }

    @Test func roundTripsSpecialStatusMessage() {
        let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
        #expect(PercentEncoding.decode(PercentEncoding.encode(message)) == message)
    }

    @Test func keepsMalformedEscapes() {
        #expect(PercentEncoding.decode("50%") == "50%")
        #expect(PercentEncoding.decode("%zz%4") == "%zz%4")
        #expect(PercentEncoding.decode("%41%62") == "Ab")
    }
}

@Suite struct MetadataTests {
    @Test func keysAreLowercasedAndQueried() {
        var metadata: Metadata = ["X-One": "1"]
        metadata.add("x-one", "2")
        metadata.add("X-Bin", [0, 1])
        #expect(metadata.first("x-ONE") == "1")
        #expect(metadata.values("x-one") == ["1", "2"])
        metadata.remove("X-one")
        #expect(metadata.first("x-one") == nil)
        #expect(metadata.first("x-bin") == .binary([0, 1]))
    }

    @Test func binaryValuesAcceptPaddedUnpaddedAndCommaJoined() {
        var metadata = Metadata()
        metadata.addWireHeader(name: "x-a-bin", value: "AAEC")  // [0,1,2]
        metadata.addWireHeader(name: "x-b-bin", value: "AQ==")  // padded [1]
        metadata.addWireHeader(name: "x-c-bin", value: "AQ")  // unpadded [1]
        metadata.addWireHeader(name: "x-d-bin", value: "AQ==,AgM")  // two values
        metadata.addWireHeader(name: "x-e-bin", value: "!!!")  // garbage is dropped
        #expect(metadata.first("x-a-bin") == .binary([0, 1, 2]))
        #expect(metadata.first("x-b-bin") == .binary([1]))
        #expect(metadata.first("x-c-bin") == .binary([1]))
        #expect(metadata.values("x-d-bin") == [.binary([1]), .binary([2, 3])])
        #expect(metadata.first("x-e-bin") == nil)
    }

    @Test func wireFormEncodesUnpaddedAndDropsReserved() {
        let metadata: Metadata = [
            "x-data-bin": .binary([1]), "x-text": "ok", "grpc-status": "0", "content-type": "nope", "Bad Key": "x",
            "x-nonascii": "é",
        ]
        var headers: [String: String] = [:]
        metadata.forEachWireHeader { headers[$0] = $1 }
        #expect(headers == ["x-data-bin": "AQ", "x-text": "ok", "x-nonascii": ""])
    }

    @Test func base64RoundTrip() {
        for length in 0..<20 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            #expect(Base64.decode(Base64.encode(bytes, padded: false)) == bytes)
            #expect(Base64.decode(Base64.encode(bytes, padded: true)) == bytes)
        }
        #expect(Base64.decode("A") == nil)
    }
}

@Suite struct StatusCodeTests {
    @Test func namesAndValues() {
        #expect(RPCError.Code.ok.rawValue == 0)
        #expect(RPCError.Code.invalidArgument.description == "INVALID_ARGUMENT")
        #expect(RPCError.Code.unauthenticated.rawValue == 16)
        #expect(RPCError.Code.unauthenticated.description == "UNAUTHENTICATED")
        #expect(RPCError.Code(rawValue: 42).description == "CODE_42")
    }

    @Test func handlerErrorsMapThroughOneProtocol() {
        #expect(RPCError.fromHandler(DomainError()).code == .notFound)
        let unknown = RPCError.fromHandler(SecretError())
        #expect(unknown.code == .unknown)
        #expect(!unknown.message.contains("hunter2"))
        #expect(RPCError.fromHandler(RPCError(.aborted, "x")).code == .aborted)
    }

    @Test func httpStatusMapping() {
        #expect(HTTP2ClientStream.code(forHTTPStatus: "404") == .unimplemented)
        #expect(HTTP2ClientStream.code(forHTTPStatus: "503") == .unavailable)
        #expect(HTTP2ClientStream.code(forHTTPStatus: "418") == .unknown)
    }

    @Test func gzipRoundTripAndLimit() throws {
        let data = [UInt8](repeating: 65, count: 100_000)
        let compressed = try CompressionAlgorithm.gzip.compress(data)
        #expect(compressed.count < 1000)
        #expect(try CompressionAlgorithm.gzip.decompress(compressed, limit: 100_000) == data)
        #expect(throws: RPCError.self) { try CompressionAlgorithm.gzip.decompress(compressed, limit: 99_999) }
    }
}
