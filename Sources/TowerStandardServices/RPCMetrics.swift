import Synchronization
import TowerRPC

/// Call counts and latency histograms per method and status, rendered in the Prometheus text
/// exposition format for `GET /metrics`.
public final class RPCMetrics: Sendable {
    /// Histogram bucket upper bounds in seconds.
    static let buckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    struct Series {
        var count: UInt64 = 0
        var sum: Double = 0
        var bucketCounts = [UInt64](repeating: 0, count: RPCMetrics.buckets.count)
    }

    private struct Key: Hashable { var method: String; var code: String }
    private let series = Mutex<[Key: Series]>([:])

    public init() {}

    func record(method: String, code: RPCError.Code, seconds: Double) {
        series.withLock { all in
            var s = all[Key(method: method, code: "\(code)"), default: Series()]
            s.count += 1
            s.sum += seconds
            for (i, bound) in Self.buckets.enumerated() where seconds <= bound { s.bucketCounts[i] += 1 }
            all[Key(method: method, code: "\(code)")] = s
        }
    }

    /// Prometheus text format (version 0.0.4).
    public func prometheusText() -> String {
        let snapshot = series.withLock { $0 }.sorted { ($0.key.method, $0.key.code) < ($1.key.method, $1.key.code) }
        var out = "# HELP ctower_rpc_requests_total gRPC calls handled, by method and status.\n# TYPE ctower_rpc_requests_total counter\n"
        for (key, s) in snapshot { out += "ctower_rpc_requests_total{method=\"\(key.method)\",code=\"\(key.code)\"} \(s.count)\n" }
        out +=
            "# HELP ctower_rpc_duration_seconds gRPC call duration, by method and status.\n# TYPE ctower_rpc_duration_seconds histogram\n"
        for (key, s) in snapshot {
            let labels = "method=\"\(key.method)\",code=\"\(key.code)\""
            for (i, bound) in Self.buckets.enumerated() {
                out += "ctower_rpc_duration_seconds_bucket{\(labels),le=\"\(bound)\"} \(s.bucketCounts[i])\n"
            }
            out += "ctower_rpc_duration_seconds_bucket{\(labels),le=\"+Inf\"} \(s.count)\n"
            out += "ctower_rpc_duration_seconds_sum{\(labels)} \(s.sum)\n"
            out += "ctower_rpc_duration_seconds_count{\(labels)} \(s.count)\n"
        }
        return out
    }

    /// The interceptor that feeds these metrics.
    public var interceptor: some RPCServerInterceptor { MetricsInterceptor(metrics: self) }

    /// `GET /metrics` on the server's port.
    public var route: HTTPRoute {
        HTTPRoute(method: "GET", pathPrefix: "/metrics") { [self] _ in
            HTTPResponse(status: 200, headers: [("content-type", "text/plain; version=0.0.4")], body: Array(prometheusText().utf8))
        }
    }
}

struct MetricsInterceptor: RPCServerInterceptor {
    let metrics: RPCMetrics

    func intercept(_ context: ServerContext, next: () async throws -> Void) async throws {
        let outcome = await CallOutcome.measure(next)
        metrics.record(method: context.method.path, code: outcome.code, seconds: outcome.seconds)
        try outcome.rethrow()
    }
}
