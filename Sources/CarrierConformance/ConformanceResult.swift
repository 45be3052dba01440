/// The verdict on one scenario.
public struct ConformanceResult: Sendable, Hashable, CustomStringConvertible {
    public enum Outcome: String, Sendable, Hashable {
        case pass, fail, skip
    }

    public var scenario: String
    public var outcome: Outcome
    /// Why it failed or was skipped; empty on a plain pass.
    public var detail: String
    public var duration: Duration

    public init(scenario: String, outcome: Outcome, detail: String = "", duration: Duration = .zero) {
        self.scenario = scenario
        self.outcome = outcome
        self.detail = detail
        self.duration = duration
    }

    public var description: String {
        let label = outcome.rawValue.uppercased().padding(to: 4)
        return "\(label) \(scenario)" + (detail.isEmpty ? "" : " — \(detail)")
    }
}

extension String {
    fileprivate func padding(to width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
