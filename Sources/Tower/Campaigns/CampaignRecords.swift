import TowerProto
import TowerStore

/// SQL and row mapping for `campaigns`, with the template (step 1 in `campaign_steps`) and the
/// sender pool (`campaign_numbers`).
enum CampaignRecords {
    static let columns = """
        c.id::text AS id, c.name, c.status, c.audience::text AS audience,
        (SELECT s.template_id::text FROM campaign_steps s WHERE s.campaign_id = c.id AND s.position = 1) AS template_id,
        ARRAY(SELECT cn.phone_number_id::text FROM campaign_numbers cn WHERE cn.campaign_id = c.id ORDER BY 1) AS number_ids,
        \(Timestamps.micros("c.scheduled_at")) AS scheduled_us, c.schedule_basis,
        c.messages_per_second::float8 AS mps, c.daily_cap, c.cloned_from::text AS cloned_from,
        \(Timestamps.micros("c.started_at")) AS started_us, \(Timestamps.micros("c.paused_at")) AS paused_us,
        \(Timestamps.micros("c.completed_at")) AS completed_us, \(Timestamps.micros("c.cancelled_at")) AS cancelled_us,
        \(Timestamps.micros("c.created_at")) AS created_us, \(Timestamps.micros("c.updated_at")) AS updated_us
        """

    static func campaign(_ row: Row) throws -> Campaign {
        var c = Campaign()
        c.id = try row.decode("id", as: String.self)
        c.name = try row.decode("name", as: String.self)
        c.state = state(try row.decode("status", as: String.self))
        c.audience = StoredAudience(json: try row.decode("audience", as: String.self)).proto
        c.templateID = try row.decode("template_id", as: String?.self) ?? ""
        c.senderNumberIds = try row.decode("number_ids", as: [String].self)
        var schedule = CampaignSchedule()
        schedule.startTime = Timestamps.proto(micros: try row.decode("scheduled_us", as: Int64?.self))
        schedule.basis = try row.decode("schedule_basis", as: String.self) == "recipient" ? .recipientTime : .orgTime
        c.schedule = schedule
        c.messagesPerSecond = try row.decode("mps", as: Double?.self)
        c.dailyCap = try row.decode("daily_cap", as: Int32?.self)
        c.clonedFromCampaignID = try row.decode("cloned_from", as: String?.self) ?? ""
        c.startTime = Timestamps.proto(micros: try row.decode("started_us", as: Int64?.self))
        c.pauseTime = Timestamps.proto(micros: try row.decode("paused_us", as: Int64?.self))
        c.completeTime = Timestamps.proto(micros: try row.decode("completed_us", as: Int64?.self))
        c.cancelTime = Timestamps.proto(micros: try row.decode("cancelled_us", as: Int64?.self))
        c.createTime = Timestamps.proto(micros: try row.decode("created_us", as: Int64?.self))
        c.updateTime = Timestamps.proto(micros: try row.decode("updated_us", as: Int64?.self))
        return c
    }

    static func load(_ tx: Transaction, id: UUIDText) async throws -> Campaign? {
        try await tx.query("SELECT \(unsafeRaw: columns) FROM campaigns c WHERE c.id = \(id)").firstRow.map(campaign)
    }

    static func state(_ text: String) -> CampaignState {
        switch text {
        case "draft": .draft
        case "running": .running
        case "paused": .paused
        case "completed": .completed
        case "cancelled": .cancelled
        default: .unspecified
        }
    }

    static func databaseName(_ state: CampaignState) -> String? {
        switch state {
        case .draft: "draft"
        case .running: "running"
        case .paused: "paused"
        case .completed: "completed"
        case .cancelled: "cancelled"
        default: nil
        }
    }

    /// The state as the API spells it, for error messages: "RUNNING".
    static func apiName(_ text: String) -> String { text.uppercased() }

    static let terminalStates: Set<String> = ["completed", "cancelled"]
    static let broadcastCategories = ["initial", "follow_up"]
}
