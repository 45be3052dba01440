import CarrierConformance
import Foundation
import Testing

/// The kit against the plugins we ship: the mock must pass everything, the minimal Python
/// example must pass what it supports and skip the rest.
@Suite("Carrier conformance kit")
struct ConformanceSuiteTests {
    static let binDirectory: String = {
        if let dir = ProcessInfo.processInfo.environment["CTOWER_CARRIER_PLUGIN_DIR"] { return dir }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().path
    }()
    static let mock = binDirectory + "/ctower-carrier-mock"
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let pythonPlugin = repositoryRoot + "/Plugins/examples/carrier-echo.py"

    static let pythonReady: Bool = {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import grpc_tools.protoc, google.protobuf"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return false }
        probe.waitUntilExit()
        return probe.terminationStatus == 0
    }()

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: mock), "build ctower-carrier-mock first"))
    func theMockPassesEveryScenario() async throws {
        var configuration = ConformanceConfiguration()
        configuration.settings = ["seed": "7", "status_events": "false"]
        configuration.rateLimit = .init(settings: ["rate_limit_mps": "1"])
        configuration.slowSend = .init(settings: ["latency_ms": "3000"])
        let results = await ConformanceSuite(executable: Self.mock, configuration: configuration).run()
        #expect(results.count == ConformanceSuite.scenarios.count)
        for result in results {
            // The mock has no webhooks: those two are the only skips allowed.
            if result.scenario.contains("webhook") {
                #expect(result.outcome == .skip, "\(result)")
            } else {
                #expect(result.outcome == .pass, "\(result)")
            }
        }
    }

    @Test(.enabled(if: pythonReady, "python3 with grpcio-tools is needed"))
    func thePythonExamplePassesWithSkips() async throws {
        let results = await ConformanceSuite(executable: Self.pythonPlugin).run()
        let failures = results.filter { $0.outcome == .fail }
        #expect(failures.isEmpty, "\(failures)")
        let passed = Set(results.filter { $0.outcome == .pass }.map(\.scenario))
        for required in [
            "handshake", "version mismatch", "ping", "only frames on stdout", "oversized frame", "exit on stdin close", "shutdown drains",
            "cancel",
        ] {
            #expect(passed.contains(required), "\(required) should pass for the echo plugin")
        }
        #expect(results.contains { $0.scenario == "duplicate idempotency key" && $0.outcome == .skip })
    }

    @Test func aBrokenPluginFails() async throws {
        let directory = NSTemporaryDirectory() + "ctower-conformance-broken-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/ctower-carrier-careless"
        _ = FileManager.default.createFile(
            atPath: path, contents: Data("#!/bin/sh\necho 'hello from a careless plugin'\nsleep 30\n".utf8),
            attributes: [.posixPermissions: 0o755])
        var configuration = ConformanceConfiguration()
        configuration.scenarioTimeout = .seconds(12)
        let results = await ConformanceSuite(executable: path, configuration: configuration).run(only: ["handshake", "exit on stdin close"])
        #expect(results.count == 2 && results.allSatisfy { $0.outcome == .fail }, "\(results)")
    }

    @Test func configurationParses() throws {
        let json = """
            {"credentials": {"account_sid": "AC1", "auth_token": "t"}, "settings": {"base_url": "http://127.0.0.1:1", "n": 3},
             "send": {"to": "+15125550100"}, "rate_limit": {"to": "+15005550429"}, "slow_send": {"settings": {"latency_ms": "3000"}},
             "webhooks": [{"url": "https://h/x", "headers": {"X-Twilio-Signature": "abc"}, "body": "A=1"}]}
            """
        let configuration = try ConformanceConfiguration(json: Data(json.utf8))
        #expect(configuration.credentials["auth_token"] == "t" && configuration.settings["n"] == "3")
        #expect(configuration.sendTo == "+15125550100" && configuration.rateLimit?.to == "+15005550429")
        #expect(configuration.slowSend?.settings["latency_ms"] == "3000")
        #expect(configuration.webhooks.count == 1 && configuration.webhooks[0].body == Array("A=1".utf8))
        #expect(throws: ConformanceConfigurationError.self) { try ConformanceConfiguration(json: Data(#"{"webhooks": [{}]}"#.utf8)) }
    }
}
