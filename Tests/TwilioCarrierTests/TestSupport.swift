import Foundation
import Logging
import TowerCarrierHost
import TowerProto

/// Locating the plugin binary next to the tests, and hosts wired to the fake Twilio API.
enum TestSupport {
    static let binDirectory: String = {
        if let dir = ProcessInfo.processInfo.environment["CTOWER_CARRIER_PLUGIN_DIR"] { return dir }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().path
    }()

    static var twilioIsBuilt: Bool {
        FileManager.default.isExecutableFile(atPath: binDirectory + "/ctower-carrier-twilio")
    }

    static let missingTwilioMessage =
        "ctower-carrier-twilio not found next to the tests; build it first: swift build --scratch-path .build-twilio --product ctower-carrier-twilio"

    static func twilioHost(_ adjust: (inout CarrierHost.Configuration) -> Void = { _ in }) -> CarrierHost {
        var configuration = CarrierHost.Configuration(carrierName: "twilio")
        configuration.pluginDirectories = [binDirectory]
        configuration.searchPATH = false
        configuration.heartbeatInterval = .milliseconds(500)
        configuration.shutdownGrace = .seconds(2)
        adjust(&configuration)
        var logger = Logger(label: "twilio-test")
        logger.logLevel = ProcessInfo.processInfo.environment["CTOWER_TEST_LOG"] == nil ? .critical : .debug
        return CarrierHost(configuration: configuration, logger: logger)
    }

    /// A started host with connection "t1" configured against `fake`.
    static func configuredHost(_ fake: FakeTwilio, settings: [String: String] = [:], token: String? = nil) async throws -> CarrierHost {
        let host = twilioHost()
        try await host.start()
        var all = ["base_url": fake.baseURL, "status_callback_url": "https://hooks.example.com/webhooks/carriers/t1"]
        all.merge(settings) { _, new in new }
        try await host.configure(
            connection: "t1", credentials: ["account_sid": fake.accountSID, "auth_token": token ?? fake.authToken], settings: all)
        return host
    }

    static func message(
        _ key: String, to: String = "+15125550100", from: String = "+15125550199", body: String = "Hi Ana, still own the lot on Elm St?"
    ) -> Carrier_SendRequest {
        var request = Carrier_SendRequest()
        request.idempotencyKey = key
        request.from = from
        request.to = to
        request.body = body
        return request
    }

    static func firstEvent(
        in host: CarrierHost, within timeout: Duration = .seconds(5), where predicate: @escaping @Sendable (CarrierEvent) -> Bool
    ) async -> CarrierEvent? {
        await host.firstEvent(within: timeout, where: predicate)
    }

    /// A localhost port with nothing listening.
    static func closedPort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        close(fd)
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
