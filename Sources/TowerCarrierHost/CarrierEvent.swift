import Synchronization
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
    /// Tells the plugin whether the event was kept. nil for events that need no answer (those
    /// built in tests, throttles, or a host that acknowledges on delivery).
    public var acknowledgement: EventAcknowledgement?

    public init(connectionID: String, kind: Kind, acknowledgement: EventAcknowledgement? = nil) {
        self.connectionID = connectionID
        self.kind = kind
        self.acknowledgement = acknowledgement
    }

    /// Acknowledges the event to the plugin when `stored`; otherwise leaves it unacknowledged,
    /// so the plugin delivers it again and the next copy is not dropped as a duplicate.
    public func settle(stored: Bool) {
        if stored { acknowledgement?.acknowledge() } else { acknowledgement?.reject() }
    }

    public static func == (a: CarrierEvent, b: CarrierEvent) -> Bool { a.connectionID == b.connectionID && a.kind == b.kind }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(connectionID)
        hasher.combine(kind)
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

/// The answer owed to the plugin for one event. Plugins deliver events at least once and send
/// them again until acknowledged, so a host that acknowledges only after the event is stored
/// loses none, even when the database is briefly unreachable. Settling twice does nothing.
public final class EventAcknowledgement: Sendable {
    private let settled = Atomic<Bool>(false)
    private let onAcknowledge: @Sendable () -> Void
    private let onReject: @Sendable () -> Void

    init(onAcknowledge: @escaping @Sendable () -> Void, onReject: @escaping @Sendable () -> Void) {
        self.onAcknowledge = onAcknowledge
        self.onReject = onReject
    }

    /// The event is stored: the plugin may forget it.
    public func acknowledge() {
        guard settled.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        onAcknowledge()
    }

    /// The event could not be stored: no Ack, and its redelivery will be let through.
    public func reject() {
        guard settled.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        onReject()
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
    /// The carrier's charge, when it already says; nil otherwise.
    public var price: Carrier_Price? = nil
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
