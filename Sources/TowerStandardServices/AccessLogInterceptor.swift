import Logging
import TowerRPC

/// One log line per call: method, status, duration, peer and request id. The request id is also
/// returned to the caller as `x-request-id` initial metadata, so a report from a user can be
/// matched to the server's log.
public struct AccessLogInterceptor: RPCServerInterceptor {
    let level: Logger.Level

    public init(level: Logger.Level = .info) { self.level = level }

    public func intercept(_ context: ServerContext, next: () async throws -> Void) async throws {
        context.addInitialMetadata("x-request-id", .string(context.requestID))
        let outcome = await CallOutcome.measure(next)
        context.logger.log(
            level: level, "rpc",
            metadata: ["rpc.code": "\(outcome.code)", "rpc.duration_us": "\(Int(outcome.seconds * 1_000_000))", "peer": "\(context.peer)"])
        try outcome.rethrow()
    }
}
