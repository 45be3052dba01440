import TowerProto

/// Constants of the carrier plugin protocol that both sides (CarrierKit plugins and the host)
/// must agree on. See `docs/carrier-protocol.md`.
public enum CarrierProtocol {
    /// The major versions this build speaks. A new major version lives in a new proto package
    /// (`ctower.carrier.v2`); until one exists this is `1...1`.
    public static let supportedMajorVersions: ClosedRange<UInt32> = 1...1
    /// The minor version of major 1 this build implements (informational, for logs).
    public static let minorVersion: UInt32 = 0
    /// Bytes in the big-endian length prefix of every frame.
    public static let lengthPrefixBytes = 4
    /// The frame size every implementation accepts before the handshake has named a limit, and
    /// the default limit after it.
    public static let defaultMaxFrameBytes = 4 * 1024 * 1024

    /// The highest major version both ranges contain, or nil when they do not overlap.
    public static func negotiate(host: ClosedRange<UInt32>, plugin: ClosedRange<UInt32>) -> UInt32? {
        let low = max(host.lowerBound, plugin.lowerBound)
        let high = min(host.upperBound, plugin.upperBound)
        return low <= high ? high : nil
    }
}

extension Google_Protobuf_Duration {
    /// A protobuf Duration from a Swift one (sub-nanosecond precision is dropped).
    public init(_ duration: Swift.Duration) {
        self.init()
        let (seconds, attoseconds) = duration.components
        self.seconds = seconds
        self.nanos = Int32(attoseconds / 1_000_000_000)
    }

    /// The Swift form of this Duration.
    public var swiftDuration: Swift.Duration {
        .seconds(seconds) + .nanoseconds(Int64(nanos))
    }
}
