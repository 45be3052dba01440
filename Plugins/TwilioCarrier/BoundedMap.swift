/// A dictionary that forgets its oldest insertions beyond `capacity`, so per-message memory in
/// a long-running plugin stays bounded.
struct BoundedMap<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    let capacity: Int
    private var storage: [Key: Value] = [:]
    private var order: [Key] = []
    private var head = 0

    init(capacity: Int) { self.capacity = capacity }

    subscript(key: Key) -> Value? {
        get { storage[key] }
        set {
            guard let newValue else {
                storage.removeValue(forKey: key)
                return
            }
            if storage.updateValue(newValue, forKey: key) == nil {
                order.append(key)
                if storage.count > capacity { evictOldest() }
            }
        }
    }

    private mutating func evictOldest() {
        while storage.count > capacity, head < order.count {
            storage.removeValue(forKey: order[head])
            head += 1
        }
        if head > capacity {
            order.removeFirst(head)
            head = 0
        }
    }
}
