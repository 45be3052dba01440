import Logging
import TowerRPC

/// One log line per call: method, status, duration, peer and request id. The request id is also
/// returned to the caller as `x-request-id` initial metadata, so a report from a user can be
/// matched to the server's log.
public struct AccessLogInterceptor: RPCServerInterceptor {
    let level: Logger.Level

    public init(level: Logger.Level = .info) { self.level = level }

    public func intercept(_ context: ServerContext, next: () async throws -> Void) async throws {
        let start = ContinuousClock.now
        context.addInitialMetadata("x-request-id", .string(context.requestID))
        var failure: (any Error)?
        do { try await next() } catch { failure = error }
        let elapsed = start.duration(to: .now)
        let micros = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
        context.logger.log(
            level: level, "rpc",
            metadata: ["rpc.code": "\(CallOutcome.code(of: failure))", "rpc.duration_us": "\(micros)", "peer": "\(context.peer)"])
        if let failure { throw failure }
    }
}
