import ArgumentParser
import InteropProto
import Logging
import TowerProto
import TowerRPC
import TowerStandardServices

#if canImport(Glibc)
    import Glibc
#endif

/// Serves grpc.testing.TestService plus health and reflection, for the interop tests that drive
/// it with stock gRPC clients (Tests/Interop).
@main
struct InteropServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctower-interop-server",
        abstract: "Serve the standard gRPC interop TestService on TowerRPC.")

    @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free port, printed on stdout).")
    var listen = "127.0.0.1:0"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "warning"

    @Option(help: "PEM certificate chain: serve TLS (needs --tls-key).")
    var tlsCert: String?

    @Option(help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    func run() async throws {
        guard let (host, port) = ListenAddress.parse(listen) else {
            throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:0 (got \(listen))")
        }
        var logger = Logger(label: "ctower.interop")
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("--log-level: unknown level \(logLevel)") }
        logger.logLevel = level
        let serviceNames =
            [
                Grpc_Testing_TestService.serviceName, Ctower_Testing_V1_FeatureService.serviceName, Ctower_Testing_V1_Echo.serviceName,
                Grpc_Health_V1_Health.serviceName,
            ] + ReflectionService.serviceNames
        let health = HealthService(services: [Grpc_Testing_TestService.serviceName])
        let reflection = ReflectionService(files: TowerProtoFiles.all + InteropProtoFiles.all, serviceNames: serviceNames)
        let server = RPCServer(
            configuration: .init(host: host, port: port, logger: logger, tls: try TLSOptions.configuration(cert: tlsCert, key: tlsKey)),
            services: [TestServiceImpl(), FeatureServiceImpl(), EchoServiceImpl(), health, reflection.v1, reflection.v1alpha])
        let address = try await server.start()
        // Written straight to fd 1: the test harness reads this line through a pipe, where
        // print() would sit in stdio's buffer.
        let line = Array("listening on \(address.port ?? port)\n".utf8)
        _ = write(1, line, line.count)
        try await withShutdownSignals {
            health.enterShutdown()
            await server.shutdown(gracePeriod: .seconds(5))
        }
        await server.waitUntilStopped()
    }
}

enum TLSOptions {
    static func configuration(cert: String?, key: String?) throws -> RPCServer.TLSConfiguration? {
        switch (cert, key) {
        case (nil, nil): return nil
        case let (cert?, key?): return RPCServer.TLSConfiguration(certificateChainPath: cert, privateKeyPath: key)
        default: throw ValidationError("--tls-cert and --tls-key go together")
        }
    }
}
