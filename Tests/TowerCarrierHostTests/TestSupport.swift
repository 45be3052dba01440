import Foundation
import Logging
import TowerCarrierHost
import TowerProto

/// Locating plugin executables and making scratch files for tests with real plugin processes.
enum TestSupport {
    /// The build products directory: the test bundle runs from it, and the mock is built there.
    static let binDirectory: String = {
        if let dir = ProcessInfo.processInfo.environment["CTOWER_CARRIER_PLUGIN_DIR"] { return dir }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().path
    }()

    static var mockIsBuilt: Bool {
        FileManager.default.isExecutableFile(atPath: binDirectory + "/ctower-carrier-mock")
    }

    static let missingMockMessage =
        "ctower-carrier-mock not found next to the tests; build it first: swift build --scratch-path .build-carrier --product ctower-carrier-mock"

    /// A fresh temporary directory.
    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "ctower-carrier-tests-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A host for the mock carrier with test-friendly timings.
    static func mockHost(_ adjust: (inout CarrierHost.Configuration) -> Void = { _ in }) -> CarrierHost {
        var configuration = CarrierHost.Configuration(carrierName: "mock")
        configuration.pluginDirectories = [binDirectory]
        configuration.searchPATH = false
        configuration.initialRestartDelay = .milliseconds(10)
        configuration.maxRestartDelay = .milliseconds(200)
        configuration.heartbeatInterval = .milliseconds(500)
        configuration.shutdownGrace = .seconds(2)
        adjust(&configuration)
        var logger = Logger(label: "carrier-test")
        logger.logLevel = ProcessInfo.processInfo.environment["CTOWER_TEST_LOG"] == nil ? .critical : .debug
        return CarrierHost(configuration: configuration, logger: logger)
    }

    static func message(
        _ key: String, from: String = "+15550001000", to: String = "+15125550100", body: String = "Hi, still own the lot on Elm St?"
    ) -> Carrier_SendRequest {
        var request = Carrier_SendRequest()
        request.idempotencyKey = key
        request.from = from
        request.to = to
        request.body = body
        return request
    }

    /// Ledger lines as (key, from, to, provider id).
    static func ledger(_ path: String) -> [(key: String, from: String, to: String, providerID: String)] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return fields.count == 4 ? (fields[0], fields[1], fields[2], fields[3]) : nil
        }
    }

    /// The first event matching `predicate`, or nil after `timeout`.
    static func firstEvent(
        in host: CarrierHost, within timeout: Duration = .seconds(10), where predicate: @escaping @Sendable (CarrierEvent) -> Bool
    ) async -> CarrierEvent? {
        await host.firstEvent(within: timeout, where: predicate)
    }

    /// Writes an executable script into `directory` named `ctower-carrier-NAME`.
    static func writePlugin(named name: String, in directory: String, script: String) {
        let path = directory + "/ctower-carrier-" + name
        _ = FileManager.default.createFile(atPath: path, contents: Data(script.utf8), attributes: [.posixPermissions: 0o755])
    }
}
