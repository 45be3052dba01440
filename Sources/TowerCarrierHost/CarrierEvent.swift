import TowerProto

/// Something a carrier reported on its own: a delivery status, an inbound message, or a request
/// to slow down. Duplicates (same carrier event id) have already been dropped.
public struct CarrierEvent: Sendable, Hashable {
    /// What happened.
    public enum Kind: Sendable, Hashable {
        case deliveryStatus(Carrier_DeliveryStatus)
        case inboundMessage(Carrier_InboundMessage)
        case throttle(Carrier_Throttle)
    }

    /// The tenant connection it belongs to.
    public var connectionID: String
    public var kind: Kind

    public init(connectionID: String, kind: Kind) {
        self.connectionID = connectionID
        self.kind = kind
    }

    /// The carrier's id for this event, used for deduplication; nil for throttles.
    public var carrierEventID: String? {
        switch kind {
        case .deliveryStatus(let status): status.carrierEventID.isEmpty ? nil : status.carrierEventID
        case .inboundMessage(let message): message.carrierEventID.isEmpty ? nil : message.carrierEventID
        case .throttle: nil
        }
    }
}

/// The carrier accepted a message.
public struct SendResult: Sendable, Hashable {
    /// The carrier's id for the message; status events refer to it.
    public var providerMessageID: String
    /// The carrier's initial status, verbatim.
    public var carrierStatus: String
    /// Billable segments, 0 when unknown.
    public var segments: Int
    /// True when the key had been sent before and this is the original result.
    public var duplicate: Bool
}

/// What the handshake told us about the plugin.
public struct CarrierPluginInfo: Sendable, Hashable {
    public var name: String
    public var version: String
    public var protocolVersion: UInt32
    public var capabilities: Set<Carrier_Capability>
    public var maxInFlight: Int
    public var suggestedMPS: Double
}

/// Where the supervised plugin is in its life.
public enum CarrierHealth: Sendable, Hashable {
    case notStarted
    case running
    /// Crashed; a restart is scheduled.
    case restarting
    /// Crashed too often (or cannot start); requests fail with `.unavailable`.
    case unhealthy(reason: String)
    case stopped
}
