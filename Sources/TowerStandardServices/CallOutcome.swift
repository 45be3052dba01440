import TowerRPC

/// The status a call ended with, seen from an interceptor: what `next()` threw, mapped the way
/// the server maps it onto the wire.
enum CallOutcome {
    static func code(of error: (any Error)?) -> RPCError.Code {
        guard let error else { return .ok }
        if let e = error as? RPCError { return e.code }
        if let e = error as? any RPCErrorConvertible { return e.rpcError.code }
        if error is CancellationError { return .cancelled }
        return .unknown
    }
}
