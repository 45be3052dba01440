extension CarrierHost {
    /// The first event matching `predicate`, or nil when none arrives within `timeout`. Events
    /// that do not match are consumed.
    public nonisolated func firstEvent(
        within timeout: Duration, where predicate: @escaping @Sendable (CarrierEvent) -> Bool
    ) async -> CarrierEvent? {
        await withTaskGroup(of: CarrierEvent?.self) { group in
            group.addTask {
                for await event in self.events where predicate(event) { return event }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}
