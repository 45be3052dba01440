import Dispatch
import Synchronization

/// A small HTTP/1.1 client on libcurl, for calling carrier REST APIs and customer webhooks.
///
/// Blocking libcurl transfers run on a private dispatch queue, never on the caller's thread or
/// the Swift concurrency pool. Easy handles are pooled, so connections (and TLS sessions) are
/// reused across requests to the same host. Cancelling the calling task aborts the transfer;
/// the error says whether the request had already gone out (`HTTPClientError.delivery`).
public final class HTTPClient: Sendable {
    /// Largest response body accepted.
    public let maxResponseBytes: Int
    /// Idle easy handles kept for reuse (each holds its own connection cache).
    public let maxIdleHandles: Int

    private let idle = Mutex<[CurlEasyHandle]>([])
    private let queue = DispatchQueue(label: "ctower.http-client", attributes: .concurrent)

    public init(maxResponseBytes: Int = 8 * 1024 * 1024, maxIdleHandles: Int = 8) {
        self.maxResponseBytes = maxResponseBytes
        self.maxIdleHandles = maxIdleHandles
    }

    /// Performs `request` and returns the response, whatever its status.
    public func execute(_ request: HTTPRequest) async throws(HTTPClientError) -> HTTPResponse {
        let cancellation = CancellationFlag()
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<HTTPResponse, HTTPClientError>, Never>) in
                queue.async {
                    guard let handle = self.checkOut() else {
                        continuation.resume(
                            returning: .failure(HTTPClientError(.other, delivery: .notSent, "libcurl could not create a handle")))
                        return
                    }
                    let result = handle.perform(request, maxResponseBytes: self.maxResponseBytes, cancellation: cancellation)
                    self.checkIn(handle, after: result)
                    continuation.resume(returning: result)
                }
            }
        } onCancel: {
            cancellation.cancel()
        }
        return try result.get()
    }

    private func checkOut() -> CurlEasyHandle? {
        if let handle = idle.withLock({ $0.popLast() }) { return handle }
        return CurlEasyHandle()
    }

    private func checkIn(_ handle: CurlEasyHandle, after result: Result<HTTPResponse, HTTPClientError>) {
        // A handle whose transfer broke may hold a half-used connection: let it go.
        if case .failure = result { return }
        idle.withLock { idle in
            if idle.count < maxIdleHandles { idle.append(handle) }
        }
    }
}
