import Synchronization
import TowerProto
import TowerRPC

/// `grpc.health.v1.Health`: the serving status of the server ("") and of each named service.
///
/// Check answers NOT_FOUND for a service it does not know; Watch answers SERVICE_UNKNOWN and keeps
/// the stream open, sending every later change, as grpc/doc/health-checking.md specifies.
public final class HealthService: Grpc_Health_V1_Health.ServiceProtocol {
    public typealias Status = Grpc_Health_V1_HealthCheckResponse.ServingStatus

    private struct State {
        var statuses: [String: Status] = [:]
        var watchers: [String: [Int: AsyncStream<Status>.Continuation]] = [:]
        var nextWatcherID = 0
    }

    private let state = Mutex(State())

    /// Starts with the server itself ("") and each named service SERVING.
    public init(services: [String] = []) {
        state.withLock { s in
            s.statuses[""] = .serving
            for name in services { s.statuses[name] = .serving }
        }
    }

    /// Sets a service's status and tells its watchers. Use "" for the server as a whole.
    public func setStatus(_ status: Status, for service: String = "") {
        let continuations = state.withLock { s -> [AsyncStream<Status>.Continuation] in
            guard s.statuses[service] != status else { return [] }
            s.statuses[service] = status
            return Array(s.watchers[service, default: [:]].values)
        }
        for c in continuations { c.yield(status) }
    }

    /// Marks everything NOT_SERVING, e.g. when the server starts draining.
    public func enterShutdown() {
        let names = state.withLock { Array($0.statuses.keys) }
        for name in names { setStatus(.notServing, for: name) }
    }

    public func check(request: Grpc_Health_V1_HealthCheckRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse
    {
        guard let status = state.withLock({ $0.statuses[request.service] }) else {
            throw RPCError(.notFound, "service \"\(request.service)\" is not known to this server; List shows the known ones")
        }
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = status
        return response
    }

    public func list(request: Grpc_Health_V1_HealthListRequest, context: ServerContext) async throws -> Grpc_Health_V1_HealthListResponse {
        var response = Grpc_Health_V1_HealthListResponse()
        for (name, status) in state.withLock({ $0.statuses }) {
            var r = Grpc_Health_V1_HealthCheckResponse()
            r.status = status
            response.statuses[name] = r
        }
        return response
    }

    public func watch(
        request: Grpc_Health_V1_HealthCheckRequest, responses: ResponseStreamWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        let (stream, continuation) = AsyncStream<Status>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { s -> Int in
            let id = s.nextWatcherID
            s.nextWatcherID += 1
            s.watchers[request.service, default: [:]][id] = continuation
            continuation.yield(s.statuses[request.service] ?? .serviceUnknown)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { s in _ = s.watchers[request.service]?.removeValue(forKey: id) }
        }
        defer { continuation.finish() }
        var last: Status?
        for await status in stream {
            if status == last { continue }
            last = status
            var response = Grpc_Health_V1_HealthCheckResponse()
            response.status = status
            try await responses.write(response)
        }
    }
}
