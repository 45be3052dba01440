/// Fair rotation of template variants across a campaign: the least-used variant goes next (ties
/// broken by variant order, deterministically), skipping variants this lead already received.
public enum VariantRotation {
    /// - Parameters:
    ///   - usage: how many times each variant (by index) was used in the campaign so far.
    ///   - alreadySent: variants this lead already got in the campaign.
    /// - Returns: the variant index to use, or nil when the lead has had every variant.
    public static func next(usage: [Int], alreadySent: Set<Int>) -> Int? {
        var best: Int?
        for (index, count) in usage.enumerated() where !alreadySent.contains(index) {
            if let b = best, usage[b] <= count { continue }
            best = index
        }
        return best
    }
}
