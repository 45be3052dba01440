import Foundation
import Testing
import TowerCarrierHost
import TowerProto

/// The example plugin in Plugins/examples is plain Python: the host must drive it like any other.
@Suite("Python example plugin", .enabled(if: PythonSupport.ready, "python3 with grpcio-tools is needed"))
struct PythonPluginTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let script = repositoryRoot + "/Plugins/examples/carrier-echo.py"

}

enum PythonSupport {
    static let ready: Bool = {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import grpc_tools.protoc, google.protobuf"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return false }
        probe.waitUntilExit()
        return probe.terminationStatus == 0
    }()
}

extension PythonPluginTests {

    @Test func hostDrivesThePythonEchoPlugin() async throws {
        let dir = TestSupport.temporaryDirectory()
        try FileManager.default.createSymbolicLink(atPath: dir + "/ctower-carrier-echo", withDestinationPath: Self.script)
        var configuration = CarrierHost.Configuration(carrierName: "echo")
        configuration.pluginDirectories = [dir]
        configuration.searchPATH = false
        configuration.handshakeTimeout = .seconds(30)
        let host = CarrierHost(configuration: configuration)
        try await host.start()
        let info = try #require(await host.pluginInfo)
        #expect(info.name == "echo")
        #expect(info.capabilities == [.sendSms])
        try await host.configure(connection: "py", credentials: ["token": "secret"])
        let result = try await host.send(TestSupport.message("py-1"), connection: "py")
        #expect(result.providerMessageID.hasPrefix("EC"))
        let again = try await host.send(TestSupport.message("py-1"), connection: "py")
        #expect(again.providerMessageID == result.providerMessageID)
        let error = await #expect(throws: CarrierError.self) {
            try await host.queryStatus(idempotencyKey: "py-1", connection: "py")
        }
        #expect(error?.code == .unsupported)
        await host.shutdown(grace: .seconds(2))
        #expect(await host.health == .stopped)
    }
}
