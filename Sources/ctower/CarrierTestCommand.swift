import ArgumentParser
import CarrierConformance
import Foundation
import Logging

/// `ctower carrier …`: operator verbs for carrier plugins.
struct CarrierCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "carrier", abstract: "Carrier plugins: check a plugin against the protocol.",
        subcommands: [CarrierTestCommand.self])
}

/// `ctower carrier test PATH [--config FILE]`: the conformance kit.
struct CarrierTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run the carrier protocol conformance scenarios against a plugin executable.",
        discussion: """
            Prints PASS, FAIL or SKIP per scenario and exits non-zero if any failed. Scenarios that need \
            a capability the plugin lacks, or configuration you did not give, are skipped. The \
            configuration file (JSON) holds credentials, settings, a test recipient, how to provoke a \
            rate limit and a slow send, and sample webhooks; see docs/carrier-protocol.md.
            """)

    @Argument(help: "The plugin executable (e.g. ./ctower-carrier-twilio).")
    var path: String

    @Option(help: "Conformance configuration (JSON).")
    var config: String?

    @Option(name: .customLong("only"), help: "Run only this scenario (repeatable).")
    var only: [String] = []

    @Flag(help: "Show the host's log.")
    var verbose = false

    func run() async throws {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ValidationError("\(path) is not an executable file")
        }
        var configuration = ConformanceConfiguration()
        if let config {
            guard let data = FileManager.default.contents(atPath: config) else { throw ValidationError("cannot read \(config)") }
            configuration = try ConformanceConfiguration(json: data)
        }
        let unknown = Set(only).subtracting(ConformanceSuite.scenarios)
        guard unknown.isEmpty else {
            throw ValidationError("unknown scenario \(unknown.sorted()); known: \(ConformanceSuite.scenarios.joined(separator: ", "))")
        }
        var logger = Logger(label: "ctower.conformance")
        logger.logLevel = verbose ? .debug : .critical
        let suite = ConformanceSuite(executable: path, configuration: configuration, logger: logger)
        print("carrier conformance: \(path)")
        let results = await suite.run(only: only.isEmpty ? nil : Set(only)) { result in print(result) }
        let failed = results.filter { $0.outcome == .fail }.count
        let skipped = results.filter { $0.outcome == .skip }.count
        print("\(results.count - failed - skipped) passed, \(failed) failed, \(skipped) skipped")
        if failed > 0 { throw ExitCode(1) }
    }
}
