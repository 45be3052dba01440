import TowerRPC

/// How a call ended, seen from an interceptor: what `next()` threw (mapped the way the server maps
/// it onto the wire) and how long it took.
struct CallOutcome {
    var error: (any Error)?
    var duration: Duration

    /// Runs `next()`, keeping its error instead of throwing it, so the caller can record the
    /// outcome before passing the error on with `rethrow()`.
    static func measure(_ next: () async throws -> Void) async -> CallOutcome {
        let start = ContinuousClock.now
        var failure: (any Error)?
        do { try await next() } catch { failure = error }
        return CallOutcome(error: failure, duration: start.duration(to: .now))
    }

    var code: RPCError.Code {
        guard let error else { return .ok }
        if let e = error as? RPCError { return e.code }
        if let e = error as? any RPCErrorConvertible { return e.rpcError.code }
        if error is CancellationError { return .cancelled }
        return .unknown
    }

    var seconds: Double { Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18 }

    func rethrow() throws { if let error { throw error } }
}
