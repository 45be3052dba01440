import TowerProto

/// What a carrier plugin implements. Every operation has a default that answers UNSUPPORTED, so
/// a plugin implements only what its `capabilities` promise.
///
/// Handlers run concurrently (up to `maxInFlight`) and may be cancelled when the host sends
/// Cancel: check `Task.isCancelled` or use cancellable waits, and throw
/// `CarrierPluginError.cancelled()` if nothing reached the carrier yet. Throw
/// `CarrierPluginError` for classified failures.
public protocol CarrierPlugin: Sendable {
    /// The carrier name, matching the executable suffix (`ctower-carrier-NAME`).
    var name: String { get }
    /// The plugin's release version.
    var version: String { get }
    /// What the plugin supports; sent in the handshake.
    var capabilities: [Carrier_Capability] { get }
    /// How many requests may run at once. Default 64.
    var maxInFlight: Int { get }
    /// Messages per second per connection the carrier accepts comfortably (a hint). Default 0.
    var suggestedMPS: Double { get }
    /// How long an emitted event may stay unacknowledged before it is sent again. Default 5 s.
    var eventRedeliveryInterval: Duration { get }

    /// Called once after the handshake with the emitter for unsolicited events.
    func start(events: EventEmitter) async

    func configure(_ request: Carrier_ConfigureRequest, context: RequestContext) async throws -> Carrier_ConfigureResponse
    func removeConnection(context: RequestContext) async throws -> Carrier_RemoveConnectionResponse
    func send(_ request: Carrier_SendRequest, context: RequestContext) async throws -> Carrier_SendResponse
    func queryStatus(_ request: Carrier_QueryStatusRequest, context: RequestContext) async throws -> Carrier_QueryStatusResponse
    func parseWebhook(_ request: Carrier_ParseWebhookRequest, context: RequestContext) async throws -> Carrier_ParseWebhookResponse
    func searchNumbers(_ request: Carrier_SearchNumbersRequest, context: RequestContext) async throws -> Carrier_SearchNumbersResponse
    func purchaseNumber(_ request: Carrier_PurchaseNumberRequest, context: RequestContext) async throws -> Carrier_PurchaseNumberResponse
    func releaseNumber(_ request: Carrier_ReleaseNumberRequest, context: RequestContext) async throws -> Carrier_ReleaseNumberResponse
    func checkAccount(_ request: Carrier_CheckAccountRequest, context: RequestContext) async throws -> Carrier_CheckAccountResponse
    /// The host is shutting down: stop starting new work. In-flight handlers get `grace` to
    /// finish before they are cancelled. Default: nothing to do.
    func shutdown(grace: Duration) async
}

extension CarrierPlugin {
    public var maxInFlight: Int { 64 }
    public var suggestedMPS: Double { 0 }
    public var eventRedeliveryInterval: Duration { .seconds(5) }

    public func start(events: EventEmitter) async {}

    public func configure(_ request: Carrier_ConfigureRequest, context: RequestContext) async throws -> Carrier_ConfigureResponse {
        throw CarrierPluginError.unsupported("Configure")
    }
    public func removeConnection(context: RequestContext) async throws -> Carrier_RemoveConnectionResponse {
        Carrier_RemoveConnectionResponse()
    }
    public func send(_ request: Carrier_SendRequest, context: RequestContext) async throws -> Carrier_SendResponse {
        throw CarrierPluginError.unsupported("Send")
    }
    public func queryStatus(_ request: Carrier_QueryStatusRequest, context: RequestContext) async throws -> Carrier_QueryStatusResponse {
        throw CarrierPluginError.unsupported("QueryStatus")
    }
    public func parseWebhook(_ request: Carrier_ParseWebhookRequest, context: RequestContext) async throws -> Carrier_ParseWebhookResponse {
        throw CarrierPluginError.unsupported("ParseWebhook")
    }
    public func searchNumbers(_ request: Carrier_SearchNumbersRequest, context: RequestContext) async throws
        -> Carrier_SearchNumbersResponse
    {
        throw CarrierPluginError.unsupported("SearchNumbers")
    }
    public func purchaseNumber(_ request: Carrier_PurchaseNumberRequest, context: RequestContext) async throws
        -> Carrier_PurchaseNumberResponse
    {
        throw CarrierPluginError.unsupported("PurchaseNumber")
    }
    public func releaseNumber(_ request: Carrier_ReleaseNumberRequest, context: RequestContext) async throws
        -> Carrier_ReleaseNumberResponse
    {
        throw CarrierPluginError.unsupported("ReleaseNumber")
    }
    public func checkAccount(_ request: Carrier_CheckAccountRequest, context: RequestContext) async throws -> Carrier_CheckAccountResponse {
        throw CarrierPluginError.unsupported("CheckAccount")
    }
    public func shutdown(grace: Duration) async {}
}

/// What a handler knows about the request it serves.
public struct RequestContext: Sendable {
    /// The host's id for this request (for logs).
    public var requestID: UInt64
    /// The tenant connection the request acts for.
    public var connectionID: String
    /// When the host stops waiting, if it set a timeout.
    public var deadline: ContinuousClock.Instant?
    /// Emits unsolicited events (delivery status, inbound, throttle).
    public var events: EventEmitter
    /// The plugin's logger.
    public var log: PluginLog { .shared }
}
