import Foundation
import Logging
import TowerCarrierHost

/// One supervised plugin process per carrier type, shared by every tenant connection of that
/// carrier. A plugin starts on first use; a connection is configured (with its decrypted
/// credentials) on first use and again whenever its credentials or settings change.
public actor CarrierRegistry {
    public struct Configuration: Sendable {
        /// Where `ctower-carrier-NAME` executables are looked for, before PATH.
        public var pluginDirectories: [String]
        public var searchPATH = true
        /// Applied to every host's configuration (tests shorten timings here).
        public var adjust: @Sendable (inout CarrierHost.Configuration) -> Void = { _ in }

        public init(pluginDirectories: [String], searchPATH: Bool = true) {
            self.pluginDirectories = pluginDirectories
            self.searchPATH = searchPATH
        }

        /// The directory of the running executable: `swift run ctower serve` finds the plugins
        /// built next to it.
        public static var executableDirectory: String {
            let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
            return URL(fileURLWithPath: exe).deletingLastPathComponent().path
        }
    }

    /// Receives what plugins report on their own (delivery statuses, inbound messages) and says
    /// whether it stored the event; only stored events are acknowledged to the plugin, so one
    /// that could not be stored (the database was unreachable) comes again.
    public typealias EventSink = @Sendable (CarrierEvent) async -> Bool

    private let configuration: Configuration
    private let logger: Logger
    private var hosts: [String: Task<CarrierHost, any Error>] = [:]
    private var configured: [String: (carrier: String, fingerprint: String)] = [:]
    private var pumps: [Task<Void, Never>] = []
    private var sink: EventSink?
    private var stopped = false

    public init(configuration: Configuration, logger: Logger = Logger(label: "ctower.carriers")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Where unsolicited plugin events go; set before first use.
    public func setEventSink(_ sink: @escaping EventSink) { self.sink = sink }

    /// The running host for `carrier`, started if needed.
    public func host(for carrier: String) async throws -> CarrierHost {
        guard !stopped else { throw CarrierError(.unavailable, "the server is shutting down", submissionState: .notSubmitted) }
        if let task = hosts[carrier] { return try await task.value }
        var hostConfiguration = CarrierHost.Configuration(carrierName: carrier)
        hostConfiguration.pluginDirectories = configuration.pluginDirectories
        hostConfiguration.searchPATH = configuration.searchPATH
        hostConfiguration.acknowledgeEventsOnDelivery = false
        configuration.adjust(&hostConfiguration)
        let logger = logger
        let task = Task { () throws -> CarrierHost in
            let host = CarrierHost(configuration: hostConfiguration, logger: logger)
            try await host.start()
            return host
        }
        hosts[carrier] = task
        do {
            let host = try await task.value
            let sink = sink
            pumps.append(Task { await Self.pump(host.events, into: sink) })
            return host
        } catch {
            // Let a later call try again (e.g. once the plugin is installed).
            hosts[carrier] = nil
            throw error
        }
    }

    /// The host for the connection's carrier, with the connection configured as it is now.
    func prepare(_ connection: ResolvedCarrierConnection) async throws -> CarrierHost {
        let host = try await host(for: connection.carrier)
        if let known = configured[connection.id], known.carrier == connection.carrier, known.fingerprint == connection.fingerprint {
            return host
        }
        try await host.configure(connection: connection.id, credentials: connection.credentials, settings: connection.settings)
        configured[connection.id] = (connection.carrier, connection.fingerprint)
        return host
    }

    /// Events are stored in `lanes` concurrent lanes: one transaction each, so one lane would
    /// cap a busy carrier's receipts at a few hundred a second. Events about the same message or
    /// from the same phone share a lane, so their order holds (a STOP and a later START). Four
    /// lanes leave most of a 10-connection pool to API calls and the dispatcher.
    static let lanes = 4

    private static func pump(_ events: AsyncStream<CarrierEvent>, into sink: EventSink?) async {
        var lanes: [AsyncStream<CarrierEvent>.Continuation] = []
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<Self.lanes {
                let (stream, continuation) = AsyncStream.makeStream(of: CarrierEvent.self)
                lanes.append(continuation)
                group.addTask {
                    for await event in stream { event.settle(stored: await sink?(event) ?? false) }
                }
            }
            for await event in events {
                let key: String
                switch event.kind {
                case .deliveryStatus(let status): key = status.providerMessageID
                case .inboundMessage(let message): key = message.from
                case .throttle: continue
                }
                var hasher = Hasher()
                hasher.combine(event.connectionID)
                hasher.combine(key)
                lanes[Int(UInt(bitPattern: hasher.finalize()) % UInt(lanes.count))].yield(event)
            }
            for lane in lanes { lane.finish() }
        }
    }

    /// Forgets a deleted connection in its plugin.
    func forget(connectionID: String) async {
        guard let known = configured.removeValue(forKey: connectionID), let task = hosts[known.carrier] else { return }
        guard let host = try? await task.value else { return }
        do { try await host.removeConnection(connectionID) } catch {
            logger.debug("plugin did not remove connection", metadata: ["connection": "\(connectionID)", "error": "\(error.code)"])
        }
    }

    /// Drains and stops every plugin.
    public func shutdown() async {
        stopped = true
        let tasks = hosts.values
        hosts = [:]
        for task in tasks {
            if let host = try? await task.value { await host.shutdown() }
        }
        for pump in pumps { await pump.value }
        pumps = []
    }
}
