import CarrierKit
import Foundation
import Testing
import TowerCarrierHost
import TowerProto

@Suite("Protocol faults and plugin lifecycle")
struct ProtocolFaultTests {
    @Test func garbageOnStdoutIsFatalAndQuotedInHex() async throws {
        let dir = TestSupport.temporaryDirectory()
        TestSupport.writePlugin(named: "careless", in: dir, script: "#!/bin/sh\necho 'hello from a careless plugin'\nsleep 30\n")
        var configuration = CarrierHost.Configuration(carrierName: "careless")
        configuration.pluginDirectories = [dir]
        configuration.searchPATH = false
        let host = CarrierHost(configuration: configuration)
        let error = await #expect(throws: CarrierError.self) { try await host.start() }
        #expect(error?.code == .protocolViolation)
        #expect(error?.message.contains("68 65 6c 6c 6f") == true, "message: \(error?.message ?? "")")
        #expect(error?.message.contains("hello from") == true)
    }

    @Test func frameDecoderHandlesSplitsAndRejectsBadFrames() throws {
        var envelope = Carrier_Envelope()
        envelope.id = 42
        envelope.payload = .ping(Carrier_Ping())
        let frame = CarrierFrame.encode(envelope)
        var decoder = CarrierFrameDecoder(maxFrameBytes: 1024)
        for byte in frame + frame {
            decoder.append(contentsOf: [byte])
        }
        let first = try #require(try decoder.nextFrame())
        #expect(try CarrierFrame.decode(first) == envelope)
        #expect(try decoder.nextFrame() != nil)
        #expect(try decoder.nextFrame() == nil)

        var oversized = CarrierFrameDecoder(maxFrameBytes: 16)
        oversized.append(contentsOf: [0, 0, 1, 0] + [UInt8](repeating: 7, count: 8))
        #expect(throws: CarrierProtocolError.self) { try oversized.nextFrame() }

        #expect(throws: CarrierProtocolError.self) { try CarrierFrame.decode([0xff, 0xff, 0xff]) }
    }

    @Test(.enabled(if: TestSupport.mockIsBuilt, Comment(rawValue: TestSupport.missingMockMessage)))
    func pluginExitsWhenStdinCloses() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestSupport.binDirectory + "/ctower-carrier-mock")
        process.environment = ["PATH": "/usr/bin:/bin"]
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()

        var hello = Carrier_Hello()
        hello.minMajorVersion = 1
        hello.maxMajorVersion = 1
        var envelope = Carrier_Envelope()
        envelope.payload = .hello(hello)
        try stdin.fileHandleForWriting.write(contentsOf: Data(CarrierFrame.encode(envelope)))

        let prefix = try #require(try stdout.fileHandleForReading.read(upToCount: 4))
        let length = prefix.reduce(0) { $0 << 8 | Int($1) }
        let body = try #require(try stdout.fileHandleForReading.read(upToCount: length))
        let ack = try CarrierFrame.decode([UInt8](body))
        guard case .helloAck(let helloAck) = ack.payload else {
            Issue.record("expected HelloAck, got \(ack)")
            return
        }
        #expect(helloAck.majorVersion == 1 && helloAck.pluginName == "mock")

        try stdin.fileHandleForWriting.close()
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(!process.isRunning, "the plugin must exit when its stdin closes")
        if process.isRunning { process.terminate() } else { #expect(process.terminationStatus == 0) }
    }
}
