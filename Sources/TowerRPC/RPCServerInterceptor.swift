/// Runs around every call on a server (auth, logging with request ids, metrics). Services never
/// see interceptors.
///
/// Call `next()` to continue to the next interceptor and finally the handler; throw an `RPCError`
/// instead to reject the call (e.g. UNAUTHENTICATED). Errors thrown by `next()` are the call's
/// outcome and may be observed or replaced.
public protocol RPCServerInterceptor: Sendable {
    func intercept(_ context: ServerContext, next: () async throws -> Void) async throws
}
