/// SplitMix64: a small, fast generator whose whole output follows from its seed. The mock derives
/// one generator per message from (seed, idempotency key, purpose), so outcomes do not depend on
/// the order or timing in which messages arrive.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    init(seed: UInt64, _ parts: String...) {
        var hash = StableHash.fnv1a(parts.joined(separator: "\u{1f}"))
        hash ^= seed &* 0x9E37_79B9_7F4A_7C15
        self.init(seed: hash)
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform value in [0, 1).
    mutating func unit() -> Double {
        Double(next() >> 11) / Double(1 << 53)
    }
}

enum StableHash {
    /// FNV-1a, 64-bit: stable across processes (unlike Hasher).
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
