import TowerProto
import TowerStore

/// Messages as rows and as the API shows them. Database names map onto the proto enums by
/// name (`queued` <-> MESSAGE_STATUS_QUEUED), so a status added to both needs no code here.
enum MessageRecords {
    /// Select list for a message aliased `m`.
    static let columns = """
        m.id::text AS id, m.lead_id::text AS lead_id, m.lead_phone_id::text AS lead_phone_id, \
        m.phone_number_id::text AS phone_number_id, m.campaign_id::text AS campaign_id, m.direction, m.status, m.purpose, \
        m.from_phone::text AS from_phone, m.to_phone::text AS to_phone, m.body, m.segments::int AS segments, m.encoding, \
        m.intent, m.skip_reason, m.error_code, m.cost_micros, m.currency, \
        EXISTS (SELECT 1 FROM inbound_reviews r WHERE r.message_id = m.id AND r.status = 'open') AS needs_review, \
        \(Timestamps.micros("m.created_at")) AS created_us, \(Timestamps.micros("m.send_after")) AS send_after_us, \
        \(Timestamps.micros("m.sent_at")) AS sent_us, \(Timestamps.micros("m.delivered_at")) AS delivered_us, \
        \(Timestamps.micros("m.received_at")) AS received_us, \(Timestamps.micros("m.read_at")) AS read_us
        """

    static func message(_ row: Row) throws -> Message {
        var m = Message()
        m.id = try row.decode("id")
        m.leadID = try row.decode("lead_id", as: String?.self) ?? ""
        m.leadPhoneID = try row.decode("lead_phone_id", as: String?.self) ?? ""
        m.phoneNumberID = try row.decode("phone_number_id", as: String?.self) ?? ""
        m.campaignID = try row.decode("campaign_id", as: String?.self) ?? ""
        let direction = try row.decode("direction", as: String.self)
        m.direction = MessageDirection(protoName: "MESSAGE_DIRECTION_" + direction.uppercased()) ?? .unspecified
        m.status = MessageStatus(protoName: "MESSAGE_STATUS_" + (try row.decode("status", as: String.self)).uppercased()) ?? .unspecified
        if direction == "outbound" {
            m.purpose =
                MessagePurpose(protoName: "MESSAGE_PURPOSE_" + (try row.decode("purpose", as: String.self)).uppercased()) ?? .unspecified
        }
        m.fromPhone = try row.decode("from_phone", as: String?.self) ?? ""
        m.toPhone = try row.decode("to_phone")
        m.body = try row.decode("body")
        m.segments = try row.decode("segments", as: Int32?.self) ?? 0
        m.encoding = try row.decode("encoding", as: String?.self) ?? ""
        if let intent = try row.decode("intent", as: String?.self) {
            m.intent = MessageIntent(protoName: "MESSAGE_INTENT_" + intent.uppercased()) ?? .unspecified
        }
        m.skipReason = try row.decode("skip_reason", as: String?.self) ?? ""
        m.errorCode = try row.decode("error_code", as: String?.self) ?? ""
        m.needsReview = try row.decode("needs_review")
        m.createTime = Timestamps.proto(micros: try row.decode("created_us"))
        m.sendAfter = Timestamps.proto(micros: try row.decode("send_after_us"))
        m.sentTime = Timestamps.proto(micros: try row.decode("sent_us"))
        m.deliveredTime = Timestamps.proto(micros: try row.decode("delivered_us"))
        m.receiveTime = Timestamps.proto(micros: try row.decode("received_us"))
        m.readTime = Timestamps.proto(micros: try row.decode("read_us"))
        if let micros = try row.decode("cost_micros", as: Int64?.self), let currency = try row.decode("currency", as: String?.self) {
            var cost = MessageCost()
            cost.amountMicros = micros
            cost.currency = currency
            m.cost = cost
        }
        return m
    }

    /// One message of the current tenant, or nil.
    static func find(_ tx: Transaction, id: UUIDText) async throws -> Message? {
        try await tx.query("SELECT \(unsafeRaw: columns) FROM messages m WHERE m.id = \(id)").firstRow.map(message)
    }
}
