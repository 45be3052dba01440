import Synchronization

/// What the mock carrier has "sent": one record per idempotency key, mirrored to an append-only
/// file (`idempotency_key TAB from TAB to TAB provider_id`) when a path is configured, so tests
/// can count lost and duplicated messages across plugin crashes. Reloaded from the file on
/// start, which is what makes Send idempotent across restarts.
final class MockLedger: Sendable {
    struct Record: Sendable {
        var providerID: String
        var from: String
        var to: String
    }

    private struct State {
        var records: [String: Record] = [:]
        var file: LedgerFile?
    }

    // LedgerFile is only touched under the lock.
    private let state: Mutex<State>

    init(path: String?) throws(MockError) {
        var state = State()
        if let path, !path.isEmpty {
            for line in LedgerFile.readAll(path: path).split(separator: "\n") {
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
                guard fields.count == 4 else { continue }
                state.records[String(fields[0])] = Record(providerID: String(fields[3]), from: String(fields[1]), to: String(fields[2]))
            }
            state.file = try LedgerFile(path: path)
        }
        self.state = Mutex(state)
    }

    func record(forKey key: String) -> Record? {
        state.withLock { $0.records[key] }
    }

    /// Records a send unless the key is already known (or always, when `deduplicate` is false,
    /// to imitate a carrier without idempotency keys). Returns the record and whether it is new.
    func accept(key: String, from: String, to: String, providerID: String, deduplicate: Bool = true) throws(MockError) -> (
        Record, isNew: Bool
    ) {
        let result = state.withLock { state -> Result<(Record, Bool), MockError> in
            if deduplicate, let existing = state.records[key] { return .success((existing, false)) }
            let record = Record(providerID: providerID, from: from, to: to)
            do throws(MockError) {
                try state.file?.append(line: "\(key)\t\(from)\t\(to)\t\(providerID)")
            } catch {
                return .failure(error)
            }
            if state.records[key] == nil { state.records[key] = record }
            return .success((record, true))
        }
        let (record, isNew) = try result.get()
        return (record, isNew)
    }
}
