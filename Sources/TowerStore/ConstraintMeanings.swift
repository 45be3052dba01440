/// What each named constraint of the schema means, in words a caller can act on.
///
/// The one place that turns a constraint name from PostgreSQL into a message. Every CHECK,
/// UNIQUE and exclusion constraint in `migrations/` has an entry (a test enforces it); foreign
/// keys and primary keys get a meaning derived from their name.
enum ConstraintMeanings {
    static let meanings: [String: String] = [
        // Shared
        "e164_format": "phone numbers must be in E.164 format: + then 8 to 15 digits, e.g. +15551234567",
        // orgs
        "orgs_kind_valid": "org kind must be standard, agency or client",
        "orgs_client_has_parent": "a client org needs a parent agency, and only client orgs have one",
        "orgs_not_own_parent": "an org cannot be its own parent",
        "orgs_name_length": "org name must be 1 to 200 characters",
        "orgs_quiet_hours_within_federal":
            "quiet hours may only be stricter than 08:00–21:00, and must start before they end",
        "orgs_daily_cap_positive": "the default daily cap must be positive",
        "orgs_status_valid": "org status must be active, suspended or deleted",
        "orgs_id_kind_unique": "an org with this id already exists",
        "orgs_parent_is_agency": "the parent org must exist and be an agency",
        // users, memberships, keys, tokens
        "users_email_unique": "a user with this e-mail address already exists",
        "users_email_format": "the e-mail address must be lower case and look like name@example.com",
        "users_status_valid": "user status must be invited, active or deactivated",
        "users_active_has_password": "an active user needs a password",
        "users_totp_needs_secret": "two-factor authentication needs an enrolled secret",
        "users_invite_hash_is_sha256": "invite tokens are stored as a 32-byte SHA-256",
        "users_invite_only_while_invited": "only an invited user can have an open invite",
        "users_invite_has_expiry": "an invite needs an expiry time, and only an invite has one",
        "users_invite_token_idx": "this invite token already exists",
        "memberships_pkey": "the user is already a member of this org",
        "memberships_role_valid": "role must be owner, admin, agent or viewer",
        "api_keys_hash_unique": "this API key already exists",
        "api_keys_prefix_unique": "an API key with this prefix already exists",
        "api_keys_hash_is_sha256": "API keys are stored as a 32-byte SHA-256",
        "api_keys_name_length": "API key name must be 1 to 200 characters",
        "api_keys_rate_limit_positive": "the API key rate limit must be positive",
        "refresh_tokens_hash_unique": "this refresh token already exists",
        "refresh_tokens_hash_is_sha256": "refresh tokens are stored as a 32-byte SHA-256",
        "refresh_tokens_expiry_after_issue": "a refresh token must expire after it is issued",
        "audit_events_action_format": "audit actions look like domain.verb, e.g. lead.update",
        // leads
        "import_jobs_status_valid": "import status must be pending, running, completed, failed or cancelled",
        "import_jobs_counts_valid": "import row counts must be non-negative and add up to at most the total",
        "import_jobs_finished_after_start": "an import cannot finish before it starts",
        "import_jobs_outcome_counts_valid": "import outcome counts must be non-negative and new + merged must equal imported",
        "import_jobs_format_valid": "import format must be csv or xlsx",
        "import_jobs_failed_has_reason": "a failed import must say why, and only a failed one",
        "import_errors_row_positive": "import error row numbers start at 0 (the header row)",
        "leads_state_code": "states are two upper-case letters, e.g. TX",
        "leads_acreage_nonnegative": "acreage cannot be negative",
        "leads_custom_fields_object": "custom fields must be a JSON object",
        "leads_score_range": "lead score must be between 0 and 100",
        "leads_status_valid":
            "lead status must be new, contacted, replied, interested, not_interested, under_contract, closed or dead",
        "lead_phones_position_range": "a lead has at most 3 phones (positions 1 to 3)",
        "lead_phones_position_unique": "that phone slot of the lead is taken; a lead has at most 3 phones",
        "lead_phones_phone_unique": "the lead already has this phone number",
        "lead_phones_type_valid": "phone type must be mobile, landline, voip or unknown",
        "lead_phones_line_type_valid": "line type must be mobile, landline, voip, toll_free or unknown",
        "lead_phones_consent_valid": "consent status must be unknown, granted or revoked",
        "tags_name_length": "tag name must be 1 to 100 characters",
        "tags_color_format": "tag color must look like #1a2b3c",
        "tags_name_unique": "a tag with this name already exists",
        "lead_tags_pkey": "the lead already has this tag",
        "lead_lists_name_unique": "a list with this name already exists",
        "lead_lists_kind_valid": "list kind must be static or dynamic",
        "lead_lists_dynamic_has_filter": "dynamic lists need a filter, and static lists have none",
        "lead_lists_filter_object": "a list filter must be a JSON object",
        "lead_list_members_pkey": "the lead is already on this list",
        "consent_records_action_valid": "consent action must be granted or revoked",
        "consent_records_source_present": "consent needs a source (form URL, import file or keyword)",
        "consent_records_grant_has_seller": "granted consent must name the seller it was given to",
        "opt_outs_channel_valid": "opt-out channel must be sms_keyword, sms_reply, manual, api, import or carrier",
        "opt_outs_revoked_after_created": "an opt-out cannot be revoked before it was recorded",
        "opt_outs_active_unique": "this phone is already opted out",
        "dnc_entries_source_valid": "DNC source must be national, state, internal or litigator",
        "dnc_entries_phone_source_unique": "this phone is already on that do-not-call list",
        // templates and campaigns
        "templates_name_unique": "a template with this name already exists",
        "templates_category_valid": "template category must be initial, follow_up, reply, help, stop or other",
        "templates_language_valid": "template language must be en or es",
        "templates_rotation_nonnegative": "the rotation counter cannot be negative",
        "template_variants_position_unique": "the template already has a variant in this position",
        "template_variants_body_length": "a message body must be 1 to 1600 characters",
        "template_variants_counts_nonnegative": "variant counters cannot be negative",
        "templates_library_key_unique": "this org already has the starter-library template with this key",
        "templates_library_key_format": "a library key is 1 to 100 lower-case letters, digits, dots or underscores",
        "templates_name_length": "template name must be 1 to 100 characters",
        "template_variants_revision_positive": "a variant's revision starts at 1",
        "template_variants_position_positive": "variant positions start at 1",
        "campaigns_kind_valid": "campaign kind must be broadcast, drip, trigger or ab_test",
        "campaigns_status_valid": "campaign status must be draft, scheduled, running, paused, completed or cancelled",
        "campaigns_started_has_time": "a running, paused or completed campaign needs a start time",
        "campaigns_scheduled_has_time": "a scheduled campaign needs a scheduled time",
        "campaigns_rate_positive": "messages per second and daily cap must be positive",
        "campaigns_audience_object": "a campaign audience must be a JSON object",
        "campaign_steps_position_unique": "the campaign already has a step in this position",
        "campaign_steps_position_positive": "step positions start at 1",
        "campaign_steps_delay_nonnegative": "a step delay cannot be negative",
        "campaign_variants_label_unique": "the campaign already has a variant with this label",
        "campaign_variants_weight_range": "variant weight must be between 1 and 100",
        "campaign_targets_lead_unique": "the lead is already a target of this campaign",
        "campaign_targets_status_valid":
            "target status must be pending, active, replied, opted_out, skipped, failed or completed",
        "campaign_targets_skip_has_reason": "a skipped target needs a skip reason",
        "campaign_targets_step_nonnegative": "the current step cannot be negative",
        // numbers, carriers, messages, webhooks
        "carrier_connections_name_unique": "a carrier connection with this name already exists",
        "carrier_connections_provider_format": "carrier provider names are lower-case letters, digits and dashes",
        "carrier_connections_status_valid": "carrier connection status must be active, disabled or error",
        "carrier_connections_ciphertext_length": "carrier credentials must be sealed (AES-256-GCM) before storing",
        "carrier_connections_settings_object": "carrier connection settings must be a JSON object of names to values",
        "carrier_connections_hints_object": "credential hints must be a JSON object of names to masked values",
        "message_status_events_carrier_event_unique": "this carrier event was already recorded",
        "message_cost_checks_attempts_range": "a price is asked for at most 3 times",
        "parked_delivery_statuses_event_unique": "this carrier event is already waiting for its send to be recorded",
        "parked_delivery_statuses_status_valid": "a parked status must be queued, sent, delivered, undelivered, failed or cancelled",
        "parked_delivery_statuses_expiry_after_receipt": "a parked status must expire after it was received",
        "parked_delivery_statuses_cost_complete": "a parked status's price needs both a non-negative amount and a currency",
        "carrier_webhook_logs_headers_array": "logged webhook headers must be a JSON array",
        "carrier_webhook_logs_event_count_nonnegative": "a webhook cannot carry a negative number of events",
        "carrier_webhook_logs_status_range": "a logged webhook response status must be an HTTP status (100-599)",
        "phone_numbers_kind_valid": "number kind must be long_code, toll_free or short_code",
        "phone_numbers_state_valid": "number state must be warming, active, quarantined or released",
        "phone_numbers_rate_positive": "messages per second and daily cap must be positive",
        "phone_numbers_health_range": "health score must be between 0 and 100",
        "phone_numbers_counts_nonnegative": "number counters cannot be negative",
        "phone_numbers_quarantine_has_reason": "a quarantined number needs a quarantine time and reason",
        "phone_numbers_released_has_time": "a released number, and only a released one, has a release time",
        "phone_numbers_held_unique": "this phone number is already in a number pool",
        "phone_number_daily_usage_pkey": "usage for this number and day is already recorded",
        "phone_number_daily_usage_nonnegative": "usage counters cannot be negative",
        "messages_direction_valid": "message direction must be outbound or inbound",
        "messages_status_valid":
            "message status must be queued, claimed, sending, sent, delivered, undelivered, failed, cancelled, skipped or received",
        "messages_purpose_valid": "message purpose must be campaign, compliance, manual or test",
        "messages_skipped_has_reason": "a skipped or cancelled message needs a skip_reason",
        "campaign_numbers_pkey": "this number is already in the campaign's sender pool",
        "messages_status_matches_direction": "inbound messages are always received, and outbound ones never are",
        "messages_outbound_has_schedule": "an outbound message needs a send_after time and an idempotency key",
        "messages_inbound_has_sender": "an inbound message needs its sender and receive time",
        "messages_sent_has_sender": "a message being sent needs a sender number",
        "messages_sent_has_time": "a sent message needs its send time",
        "messages_claimed_has_claim": "a claimed message needs its claim time",
        "messages_failed_has_time": "a failed message needs its failure time",
        "messages_encoding_valid": "message encoding must be gsm7 or ucs2",
        "messages_segments_range": "a message has 1 to 20 segments",
        "messages_cost_nonnegative": "message cost cannot be negative",
        "messages_currency_format": "currency must be a three-letter ISO code, e.g. USD",
        "messages_body_length": "a message body is at most 1600 characters",
        "messages_attempts_nonnegative": "send attempts cannot be negative",
        "messages_idempotency_unique": "a message with this idempotency key already exists",
        "messages_provider_id_unique": "a message with this provider id already exists for the carrier connection",
        "message_status_events_status_valid": "invalid message status in a status event",
        "webhook_endpoints_url_format": "webhook URLs must be http(s) URLs of at most 2048 characters",
        "webhook_endpoints_failures_nonnegative": "the failure counter cannot be negative",
        "webhook_logs_attempt_positive": "webhook attempts start at 1",
        "webhook_logs_status_range": "an HTTP status is between 100 and 599",
        // inbound handling
        "messages_intent_valid":
            "message intent must be message, opt_out, resubscribe, help, revocation or possible_revocation",
        "messages_intent_only_inbound": "only inbound messages have an intent",
        "messages_read_only_inbound": "only inbound messages are marked read",
        "inbound_reviews_org_id_unique": "an inbound review with this id already exists",
        "inbound_reviews_message_unique": "this message is already flagged for review",
        "inbound_reviews_reason_valid": "review reason must be free_text_revocation or possible_revocation",
        "inbound_reviews_status_valid": "review status must be open, confirmed or dismissed",
        "inbound_reviews_resolved_has_time": "a resolved review, and only a resolved one, has a resolution time",
        // reference data
        "state_messaging_rules_state_code": "states are two upper-case letters, e.g. FL",
        "state_messaging_rules_window_valid": "a state window must lie within 08:00–21:00 and start before it ends",
        "state_messaging_rules_limit_positive": "a state message limit must be positive",
        "area_codes_format": "an area code is three digits, the first 2-9",
        "area_codes_region_code": "an area code's region is a two-letter state or province code",
        "area_codes_country_valid": "area codes are listed for US and CA",
        "area_codes_zones_present": "an area code lists at least one time zone",
        "campaigns_schedule_basis_valid": "a campaign's schedule is in org or recipient time",
    ]

    /// The meaning of `constraint`, or one derived from its name.
    static func meaning(of constraint: String, table: String?) -> String {
        if let meaning = meanings[constraint] { return meaning }
        if constraint.hasSuffix("_same_org") {
            // e.g. lead_phones_lead_same_org: the lead must exist in the same org.
            let subject = referencedThing(constraint, table: table, suffix: "_same_org")
            return "the \(subject) does not exist in this org, or is still in use"
        }
        if constraint.hasSuffix("_fkey") {
            let subject = referencedThing(constraint, table: table, suffix: "_fkey")
            return "the referenced \(subject) does not exist, or the row is still referred to"
        }
        if constraint.hasSuffix("_pkey") || constraint.hasSuffix("_org_id_unique") {
            return "a row with this id already exists"
        }
        return "the row breaks the rule \(constraint)"
    }

    private static func referencedThing(_ constraint: String, table: String?, suffix: String) -> String {
        var middle = String(constraint.dropLast(suffix.count))
        if let table, middle.hasPrefix(table + "_") { middle = String(middle.dropFirst(table.count + 1)) }
        if middle.hasSuffix("_id") { middle = String(middle.dropLast(3)) }
        return middle.replacingOccurrences(of: "_", with: " ")
    }
}
