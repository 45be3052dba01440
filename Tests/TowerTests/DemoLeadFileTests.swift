import Foundation
import Synchronization
import Testing

@testable import Tower

@Suite("Generated demo lead file")
struct DemoLeadFileTests {
    @Test("every header is recognised by the column-mapping suggester")
    func headersMap() {
        let suggestions = ColumnMapping.suggest(headers: DemoLeadFile.header)
        #expect(suggestions.allSatisfy { $0 != nil }, "unmapped: \(zip(DemoLeadFile.header, suggestions).filter { $0.1 == nil }.map(\.0))")
        #expect(suggestions[4] == .mailingState && suggestions[7] == .propertyState && suggestions[10] == .phone1)
    }

    @Test("the same seed gives the same file; another seed another file")
    func deterministic() {
        let a = DemoLeadFile(rows: 500, seed: 7).csv()
        #expect(a == DemoLeadFile(rows: 500, seed: 7).csv())
        #expect(a != DemoLeadFile(rows: 500, seed: 8).csv())
        #expect(a.components(separatedBy: "\r\n").count == 502)  // header + rows + the empty tail
    }

    @Test("the file is messy the way real lists are: bad phones, repeated owners, every phone format")
    func messy() throws {
        // Read with the importer's own CSV reader, as ImportLeads will read it.
        var reader = CSVReader()
        var records: [[String]] = []
        try reader.feed(Array(DemoLeadFile(rows: 2_000, seed: 1).csv().utf8)) { records.append($0) }
        try reader.finish { records.append($0) }
        #expect(records.first == DemoLeadFile.header && records.count == 2_001)
        var valid = 0, invalid = 0
        var owners: [String: Int] = [:]
        for cells in records.dropFirst() {
            #expect(cells.count == DemoLeadFile.header.count)
            for phone in cells[10...12] where !phone.isEmpty {
                switch PhoneNumberNormalizer.normalize(phone) {
                case .success: valid += 1
                case .failure: invalid += 1
                }
            }
            owners["\(cells[0].trimmingCharacters(in: .whitespaces).lowercased())|\(cells[1])|\(cells[8])", default: 0] += 1
        }
        let invalidShare = Double(invalid) / Double(valid + invalid)
        #expect(invalidShare > 0.02 && invalidShare < 0.12, "invalid share \(invalidShare)")
        let repeated = owners.values.filter { $0 > 1 }.count
        #expect(repeated > 20, "only \(repeated) repeated owners")
    }
}

/// `ctower demo` end to end, small: its own embedded PostgreSQL, the real mock plugin, every step
/// over HTTP/2. The numbers must add up the way the product promises.
@Suite("ctower demo, end to end", .enabled(if: IntegrationServiceTests.pluginsBuilt, "build the plugins first: swift build --build-tests"))
struct DemoRunnerTests {
    @Test(.timeLimit(.minutes(3))) func theWholeJobAddsUp() async throws {
        var options = DemoRunner.Options()
        options.leads = 400
        options.seed = 11
        options.replyRate = 0.3
        options.home = FileManager.default.temporaryDirectory.path + "/ctower-demo-test-\(UUID().uuidString.prefix(8))"
        options.pluginDirectories = [IntegrationServiceTests.pluginDirectory]
        defer { try? FileManager.default.removeItem(atPath: options.home) }
        let steps = Mutex<[String]>([])
        let summary = try await DemoRunner(options: options).run { event in
            if case .step(let text) = event { steps.withLock { $0.append(text) } }
        }
        #expect(steps.withLock { $0.count } == 7)
        // Every row is accounted for exactly once.
        #expect(summary.rows == 400)
        #expect(summary.imported + summary.merged + summary.duplicates + summary.invalid == summary.rows)
        #expect(summary.duplicates > 0 && summary.invalid > 0, "the generated file is messy by design")
        // Each imported lead is a target, and every target's message left the queue one way or another.
        #expect(summary.targets == summary.imported)
        #expect(summary.queued + summary.skipped.values.reduce(0, +) == summary.targets)
        let heldForQuietHours = DemoRunner.businessHoursClock() == nil ? summary.delayedByQuietHours : 0
        #expect(heldForQuietHours == 0 || summary.stillQueued > 0)
        #expect(summary.sent <= summary.queued - summary.stillQueued)
        #expect(summary.delivered + summary.awaitingReceipt <= summary.sent)
        // The mock answers delivered messages; STOP/ALTO opt out, and each opt-out and HELP gets one answer.
        #expect(summary.replies > 0)
        #expect(summary.optOuts > 0 && summary.optOuts <= summary.replies)
        #expect(summary.complianceReplies >= summary.optOuts)
        #expect(summary.complianceReplies <= summary.optOuts + summary.helpRequests + summary.replies)
    }
}
