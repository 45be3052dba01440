import Synchronization

// The only file of TowerCarrierHost that calls the C library: spawning a plugin with pipes,
// reaping it and signalling it.
#if canImport(Glibc)
    import Glibc
#endif

/// A spawned plugin executable: its pid and the host's ends of its three pipes. The descriptors
/// are handed to NIO, which owns (and closes) them from then on.
struct PluginProcess: Sendable {
    /// How a process ended.
    enum Termination: Sendable, Hashable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        var description: String {
            switch self {
            case .exited(let code): "exited with status \(code)"
            case .signaled(let signal): "killed by signal \(signal)\(signal == SIGKILL ? " (SIGKILL)" : "")"
            }
        }
    }

    let pid: pid_t
    /// Write end of the plugin's stdin.
    let stdinFD: Int32
    /// Read end of the plugin's stdout (frames).
    let stdoutFD: Int32
    /// Read end of the plugin's stderr (logs).
    let stderrFD: Int32

    /// Starts `executable` with exactly `environment` and no arguments. Credentials never travel
    /// this way: they arrive later in Configure.
    static func spawn(executable: String, environment: [String: String]) throws(CarrierError) -> PluginProcess {
        try spawnLock.withLock { _ throws(CarrierError) in try spawnLocked(executable: executable, environment: environment) }
    }

    private static func spawnLocked(executable: String, environment: [String: String]) throws(CarrierError) -> PluginProcess {
        // Spawns are serialized so a pipe created for one plugin cannot leak into another one
        // spawned between pipe() and FD_CLOEXEC (Glibc's Swift overlay has no pipe2).
        var stdinPipe: [Int32] = [-1, -1]
        var stdoutPipe: [Int32] = [-1, -1]
        var stderrPipe: [Int32] = [-1, -1]
        guard makePipe(&stdinPipe) else { throw spawnError("pipe", errno) }
        guard makePipe(&stdoutPipe) else {
            closeAll(stdinPipe)
            throw spawnError("pipe", errno)
        }
        guard makePipe(&stderrPipe) else {
            closeAll(stdinPipe + stdoutPipe)
            throw spawnError("pipe", errno)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
        // Nothing else of the server's (sockets, database connections, other plugins' pipes,
        // descriptors some library opened without O_CLOEXEC) reaches the plugin.
        // (glibc >= 2.34 has the action, but its header hides it from Swift, so look it up.)
        if let closeFrom = addCloseFrom { _ = closeFrom(&actions, 3) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The host ignores SIGPIPE (NIO does); the plugin starts with default dispositions, no
        // blocked signals, and its own process group so a terminal's Ctrl-C goes to the host only.
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))

        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(executable), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        var result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        // ETXTBSY: the executable is still open for writing somewhere, typically a plugin being
        // installed or replaced in place while another process forks. It clears within moments.
        var retries = 0
        while result == ETXTBSY && retries < 20 {
            retries += 1
            usleep(5_000)
            result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        }
        // The child's ends belong to the child now.
        close(stdinPipe[0])
        close(stdoutPipe[1])
        close(stderrPipe[1])
        guard result == 0 else {
            closeAll([stdinPipe[1], stdoutPipe[0], stderrPipe[0]])
            throw spawnError("posix_spawn \(executable)", result)
        }
        return PluginProcess(pid: pid, stdinFD: stdinPipe[1], stdoutFD: stdoutPipe[0], stderrFD: stderrPipe[0])
    }

    /// Waits (on a dedicated thread, so no shared pool thread blocks) until the process ends.
    func waitForExit() async -> Termination {
        let pid = self.pid
        return await withCheckedContinuation { continuation in
            startThread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 {
                    if errno != EINTR {
                        continuation.resume(returning: .exited(-1))
                        return
                    }
                }
                let signal = status & 0x7f
                continuation.resume(returning: signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal))
            }
        }
    }

    /// Sends SIGKILL. Only ever called before the process has been reaped, so the pid is ours.
    func kill() {
        _ = Glibc.kill(pid, SIGKILL)
    }

    /// Sends `signal` to a process (tests use it to simulate crashes).
    static func signal(_ pid: Int32, _ signal: Int32) {
        _ = Glibc.kill(pid, signal)
    }

    private static func spawnError(_ what: String, _ code: Int32) -> CarrierError {
        CarrierError(.spawnFailed, "\(what) failed: \(String(cString: strerror(code)))", submissionState: .notSubmitted)
    }

    private static func makePipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
    }

    private static func closeAll(_ fds: [Int32]) {
        for fd in fds where fd >= 0 { close(fd) }
    }
}

/// Where plugin executables are found.
enum PluginLocator {
    /// The first executable `ctower-carrier-NAME` in `directories`, then (optionally) on PATH.
    static func find(carrier name: String, directories: [String], searchPATH: Bool, path: String?) -> String? {
        let file = "ctower-carrier-\(name)"
        var candidates = directories
        if searchPATH, let path { candidates += path.split(separator: ":").map(String.init) }
        for directory in candidates where !directory.isEmpty {
            let full = directory.hasSuffix("/") ? directory + file : directory + "/" + file
            if access(full, X_OK) == 0 { return full }
        }
        return nil
    }

    /// The host's own environment variable `name`.
    static func environmentValue(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// The variables a plugin may inherit: locale, time zone, search path, temp dir. Nothing
    /// else, so no secret in the server's environment reaches a third-party plugin.
    static func scrubbedEnvironment() -> [String: String] {
        var environment: [String: String] = [:]
        for name in ["PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR"] {
            if let value = environmentValue(name) { environment[name] = value }
        }
        if environment["PATH"] == nil { environment["PATH"] = "/usr/local/bin:/usr/bin:/bin" }
        return environment
    }
}

private let spawnLock = Mutex<Void>(())

private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
private let addCloseFrom: AddCloseFrom? = {
    guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
    return unsafeBitCast(symbol, to: AddCloseFrom.self)
}()

private func startThread(_ body: @escaping @Sendable () -> Void) {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(
        &thread, nil,
        { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box)
    precondition(result == 0, "pthread_create failed: \(result)")
    pthread_detach(thread)
}
