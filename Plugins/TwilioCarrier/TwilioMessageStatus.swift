import TowerProto

/// Twilio's message statuses, their normalised delivery state and their precedence.
///
/// Status callbacks can arrive out of order (a `sent` callback after `delivered`). Precedence
/// decides: a status never replaces one of higher rank for the same message, so a delivered
/// message never moves back to sent.
///
///     accepted, scheduled  0   (QUEUED)
///     queued               1   (QUEUED)
///     sending              2   (QUEUED)
///     sent                 3   (SENT)
///     undelivered, failed, canceled  4  (terminal failures)
///     delivered            5   (DELIVERED)
///     read                 6   (DELIVERED; WhatsApp/RCS read receipt)
///
/// `delivered` outranks the failures because a handset receipt is the strongest evidence there
/// is; unknown statuses rank -1 and never replace anything.
public enum TwilioMessageStatus {
    public static func deliveryState(_ status: String) -> Carrier_DeliveryState {
        switch status.lowercased() {
        case "accepted", "scheduled", "queued", "sending": .queued
        case "sent": .sent
        case "delivered", "read": .delivered
        case "undelivered": .undelivered
        case "failed": .failed
        case "canceled", "cancelled": .canceled
        default: .unspecified
        }
    }

    public static func rank(_ status: String) -> Int {
        switch status.lowercased() {
        case "accepted", "scheduled": 0
        case "queued": 1
        case "sending": 2
        case "sent": 3
        case "undelivered", "failed", "canceled", "cancelled": 4
        case "delivered": 5
        case "read": 6
        default: -1
        }
    }

    /// True when `new` may replace `current` for the same message.
    public static func supersedes(_ new: String, _ current: String) -> Bool {
        rank(new) >= rank(current) && rank(new) >= 0
    }
}
