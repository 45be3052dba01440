import ArgumentParser
import Foundation
import Logging
import Synchronization
import Tower

#if canImport(Glibc)
    import Glibc
#endif

/// `ctower demo`: the whole product on a laptop in a minute, with no configuration.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Import 10,000 generated leads and run a compliant campaign through the mock carrier.",
        discussion: """
            Starts a private PostgreSQL under $CTOWER_HOME/demo (wiped first) and the mock carrier, \
            creates an agency with one client org, imports a messy generated lead file, installs the \
            English and Spanish starter templates, runs a broadcast campaign through a pool of numbers, \
            lets the mock carrier reply (interest, STOP, HELP, ALTO) and prints what happened.
            """)

    @Option(help: "Leads in the generated file.")
    var leads = 10_000

    @Option(help: "Seed of the lead file and of the mock carrier's decisions.")
    var seed: UInt64 = 2026

    @Option(help: "Share of delivered messages the mock carrier answers (0...1).")
    var replyRate = 0.12

    @Flag(help: "Judge quiet hours on the real clock even at night (messages then wait for 08:00 local).")
    var realClock = false

    @Option(help: "Log level of the embedded server (its log goes to stderr).")
    var logLevel: Logger.Level = .warning

    func validate() throws {
        guard (1...1_000_000).contains(leads) else { throw ValidationError("--leads must be between 1 and 1,000,000") }
        guard (0...1).contains(replyRate) else { throw ValidationError("--reply-rate must be between 0 and 1") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        var options = DemoRunner.Options()
        options.leads = leads
        options.seed = seed
        options.replyRate = replyRate
        options.realClock = realClock
        options.home = (ProcessInfo.processInfo.environment["CTOWER_HOME"] ?? ".ctower") + "/demo"
        let screen = ProgressScreen(interactive: isatty(STDOUT_FILENO) == 1)
        let summary = try await DemoRunner(options: options).run { event in screen.show(event) }
        screen.finish()
        ProgressScreen.write(Self.table(summary) + "\n")
    }

    static func table(_ s: DemoRunner.Summary) -> String {
        func n(_ value: Int64) -> String { value.formatted(.number.grouping(.automatic)) }
        var rows: [(String, String)] = [
            ("Rows in the file", n(s.rows)),
            ("  new leads", n(s.imported)),
            ("  merged into an earlier row", n(s.merged)),
            ("  exact duplicates", n(s.duplicates)),
            ("  invalid (no textable phone)", n(s.invalid)),
            ("Campaign targets", n(s.targets)),
            ("  messages queued", n(s.queued)),
            ("  sent", n(s.sent)),
            ("  delivered", n(s.delivered)),
            ("  failed / undelivered", n(s.failed)),
            ("  no delivery receipt yet", n(s.awaitingReceipt)),
            ("  held by quiet hours (sent when the window opens)", n(s.delayedByQuietHours)),
        ]
        for (reason, count) in s.skipped.sorted(by: { $0.key < $1.key }) {
            rows.append(("  skipped: \(reason.replacingOccurrences(of: "_", with: " "))", n(count)))
        }
        rows += [
            ("Replies received", n(s.replies)),
            ("  opt-outs (STOP, ALTO, ...)", n(s.optOuts)),
            ("  HELP requests", n(s.helpRequests)),
            ("Compliance answers sent (STOP/HELP)", n(s.complianceReplies)),
            ("Elapsed", String(format: "%.1f s", Double(s.elapsed.components.seconds) + Double(s.elapsed.components.attoseconds) / 1e18)),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        let valueWidth = rows.map(\.1.count).max() ?? 0
        let rule = String(repeating: "─", count: width + valueWidth + 5)
        var out = "\n" + rule + "\n"
        for (label, value) in rows {
            out += " " + label.padding(toLength: width, withPad: " ", startingAt: 0) + "   "
            out += String(repeating: " ", count: valueWidth - value.count) + value + "\n"
        }
        return out + rule
    }
}

/// Steps as lines; progress as one bar redrawn in place on a terminal, or a line every 10 %
/// when the output is a file or a pipe.
final class ProgressScreen: Sendable {
    private let interactive: Bool
    private let state = Mutex<(label: String, percent: Int, drawn: Bool)>(("", -1, false))

    init(interactive: Bool) { self.interactive = interactive }

    func show(_ event: DemoRunner.Event) {
        state.withLock { state in
            switch event {
            case .step(let text):
                if state.drawn { Self.write("\n") }
                state = ("", -1, false)
                Self.write("▸ \(text)\n")
            case .note(let text):
                if state.drawn { Self.write("\n") }
                state.drawn = false
                Self.write("  \(text)\n")
            case .progress(let label, let done, let total):
                let percent = Int(min(100, max(0, done * 100 / max(total, 1))))
                if label == state.label, percent == state.percent { return }
                if interactive {
                    let filled = percent * 30 / 100
                    let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: 30 - filled)
                    Self.write("\r  \(label.padding(toLength: 9, withPad: " ", startingAt: 0)) \(bar) \(percent)%")
                    state.drawn = true
                } else if percent / 10 != state.percent / 10 || label != state.label {
                    Self.write("  \(label) \(percent)%\n")
                }
                state.label = label
                state.percent = percent
            }
        }
    }

    /// Straight to the file descriptor: lines appear as they happen even when stdout is a pipe.
    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    func finish() {
        state.withLock { if $0.drawn { Self.write("\n") } }
    }
}
