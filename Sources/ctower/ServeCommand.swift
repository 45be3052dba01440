import ArgumentParser
import Logging
import TowerProto
import TowerRPC
import TowerStandardServices

#if canImport(Glibc)
    import Glibc
#endif

/// `ctower serve`: the gRPC API (and, as they land, the dispatcher and webhooks) on one port.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the Control Tower API over gRPC (HTTP/2).")

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = "127.0.0.1:7070"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Log format: text or json.")
    var logFormat: LogFormat = .text

    @Option(help: "Seconds in-flight calls get to finish on SIGTERM/SIGINT before they are cancelled.")
    var shutdownGrace: Int = 10

    func run() async throws {
        logFormat.bootstrap(level: logLevel)
        let logger = Logger(label: "ctower.serve")
        guard let (host, port) = ListenAddress.parse(listen) else {
            throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:7070 (got \(listen))")
        }
        let home = Environment.value("CTOWER_HOME") ?? "./.ctower"

        let served = [Grpc_Health_V1_Health.serviceName] + ReflectionService.serviceNames
        let health = HealthService()
        let reflection = ReflectionService(files: TowerProtoFiles.all, serviceNames: served)
        let server = RPCServer(
            configuration: .init(host: host, port: port, logger: logger),
            services: [health, reflection.v1, reflection.v1alpha])
        let address = try await server.start()
        logger.info("serving", metadata: ["address": "\(address)", "home": "\(home)"])
        try await withShutdownSignals {
            logger.info("draining")
            health.enterShutdown()
            await server.shutdown(gracePeriod: .seconds(shutdownGrace))
        }
        await server.waitUntilStopped()
        logger.info("stopped")
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}

enum Environment {
    static func value(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        let s = String(cString: p)
        return s.isEmpty ? nil : s
    }
}
