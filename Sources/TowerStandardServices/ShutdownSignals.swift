import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Waits for SIGTERM or SIGINT, then runs `drain` once. Further signals while draining are
/// ignored: drain has its own grace period. Every long-running executable shuts down through this.
public func withShutdownSignals(_ drain: @escaping @Sendable () async -> Void) async throws {
    let signals = [SIGTERM, SIGINT]
    enum Waiting { case idle, signalled, waiting(CheckedContinuation<Void, Never>) }
    let state = Mutex(Waiting.idle)
    let queue = DispatchQueue(label: "ctower.signals")
    var sources: [any DispatchSourceSignal] = []
    for s in signals {
        // The default action would kill the process before the dispatch source sees the signal.
        signal(s, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: s, queue: queue)
        source.setEventHandler {
            state.withLock { s in
                if case .waiting(let c) = s { c.resume() }
                s = .signalled
            }
        }
        source.resume()
        sources.append(source)
    }
    await withCheckedContinuation { continuation in
        state.withLock { s in
            if case .signalled = s { continuation.resume() } else { s = .waiting(continuation) }
        }
    }
    await drain()
    withExtendedLifetime(sources) {}
}
