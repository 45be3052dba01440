-- Carrier connections, the phone-number pool, messages and their status history, webhooks.

CREATE TABLE carrier_connections (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    -- The plugin name: ctower-carrier-<provider>.
    provider text NOT NULL,
    name text NOT NULL,
    -- AES-256-GCM ciphertext (nonce || ciphertext || tag) of the provider credentials.
    credentials_encrypted bytea NOT NULL,
    -- Which encryption key sealed it, for key rotation.
    credentials_key_id text NOT NULL,
    status text NOT NULL DEFAULT 'active',
    last_checked_at timestamptz,
    last_error_code text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT carrier_connections_org_id_unique UNIQUE (org_id, id),
    CONSTRAINT carrier_connections_name_unique UNIQUE (org_id, name),
    CONSTRAINT carrier_connections_provider_format CHECK (provider ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
    CONSTRAINT carrier_connections_status_valid CHECK (status IN ('active', 'disabled', 'error')),
    CONSTRAINT carrier_connections_ciphertext_length CHECK (octet_length(credentials_encrypted) >= 28)
);
CREATE TRIGGER carrier_connections_touch BEFORE UPDATE ON carrier_connections
    FOR EACH ROW EXECUTE FUNCTION ctower_touch_updated_at();

CREATE TABLE phone_numbers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL,
    carrier_connection_id uuid NOT NULL,
    phone e164 NOT NULL,
    provider_number_id text,
    kind text NOT NULL DEFAULT 'long_code',
    area_code text GENERATED ALWAYS AS (CASE WHEN phone LIKE '+1%' THEN substr(phone, 3, 3) END) STORED,
    state text NOT NULL DEFAULT 'warming',
    messages_per_second numeric(6, 2) NOT NULL DEFAULT 1,
    daily_cap integer NOT NULL DEFAULT 200,
    -- Day of the warming ramp (0 = first day); the cap grows with it.
    warming_day smallint NOT NULL DEFAULT 0,
    health_score smallint NOT NULL DEFAULT 100,
    delivered_count bigint NOT NULL DEFAULT 0,
    failed_count bigint NOT NULL DEFAULT 0,
    filtered_count bigint NOT NULL DEFAULT 0,
    opt_out_count bigint NOT NULL DEFAULT 0,
    quarantined_at timestamptz,
    quarantine_reason text,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz,
    CONSTRAINT phone_numbers_connection_same_org FOREIGN KEY (org_id, carrier_connection_id)
        REFERENCES carrier_connections (org_id, id),
    CONSTRAINT phone_numbers_org_id_unique UNIQUE (org_id, id),
    CONSTRAINT phone_numbers_kind_valid CHECK (kind IN ('long_code', 'toll_free', 'short_code')),
    CONSTRAINT phone_numbers_state_valid CHECK (state IN ('warming', 'active', 'quarantined', 'released')),
    CONSTRAINT phone_numbers_rate_positive CHECK (messages_per_second > 0 AND daily_cap > 0),
    CONSTRAINT phone_numbers_health_range CHECK (health_score BETWEEN 0 AND 100),
    CONSTRAINT phone_numbers_counts_nonnegative CHECK (
        delivered_count >= 0 AND failed_count >= 0 AND filtered_count >= 0 AND opt_out_count >= 0 AND warming_day >= 0),
    CONSTRAINT phone_numbers_quarantine_has_reason CHECK (
        state <> 'quarantined' OR (quarantined_at IS NOT NULL AND quarantine_reason IS NOT NULL)),
    CONSTRAINT phone_numbers_released_has_time CHECK ((state = 'released') = (released_at IS NOT NULL))
);
-- A number is held by at most one org at a time (globally, as at the carrier).
CREATE UNIQUE INDEX phone_numbers_held_unique ON phone_numbers (phone) WHERE state <> 'released';
CREATE INDEX phone_numbers_sendable_idx ON phone_numbers (org_id, state, health_score DESC) WHERE state IN ('warming', 'active');

-- Per-number, per-day send counter (daily caps hold across dispatcher processes).
CREATE TABLE phone_number_daily_usage (
    org_id uuid NOT NULL,
    phone_number_id uuid NOT NULL,
    day date NOT NULL,
    sent_count integer NOT NULL DEFAULT 0,
    segment_count integer NOT NULL DEFAULT 0,
    cost_micros bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (phone_number_id, day),
    CONSTRAINT phone_number_daily_usage_number_same_org FOREIGN KEY (org_id, phone_number_id)
        REFERENCES phone_numbers (org_id, id) ON DELETE CASCADE,
    CONSTRAINT phone_number_daily_usage_nonnegative CHECK (sent_count >= 0 AND segment_count >= 0 AND cost_micros >= 0)
);

CREATE TABLE messages (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL,
    lead_id uuid,
    lead_phone_id uuid,
    phone_number_id uuid,
    campaign_id uuid,
    campaign_step_id uuid,
    template_variant_id uuid,
    direction text NOT NULL,
    from_phone e164,
    to_phone e164 NOT NULL,
    body text NOT NULL,
    status text NOT NULL,
    segments smallint,
    encoding text,
    -- Cost in millionths of the currency unit, so sums are exact.
    cost_micros bigint,
    currency text,
    carrier_connection_id uuid,
    provider_message_id text,
    -- Carrier-level idempotency: a crash between handing off and recording never sends twice.
    idempotency_key text,
    -- Earliest send time (quiet hours, drip delays); the dispatcher claims due rows.
    send_after timestamptz,
    claimed_at timestamptz,
    claimed_by text,
    attempts smallint NOT NULL DEFAULT 0,
    sent_at timestamptz,
    delivered_at timestamptz,
    failed_at timestamptz,
    error_code text,
    received_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT messages_lead_same_org FOREIGN KEY (org_id, lead_id) REFERENCES leads (org_id, id) ON DELETE SET NULL (lead_id),
    CONSTRAINT messages_lead_phone_same_org FOREIGN KEY (org_id, lead_phone_id) REFERENCES lead_phones (org_id, id) ON DELETE SET NULL (lead_phone_id),
    CONSTRAINT messages_number_same_org FOREIGN KEY (org_id, phone_number_id) REFERENCES phone_numbers (org_id, id),
    CONSTRAINT messages_campaign_same_org FOREIGN KEY (org_id, campaign_id) REFERENCES campaigns (org_id, id) ON DELETE SET NULL (campaign_id),
    CONSTRAINT messages_step_same_org FOREIGN KEY (org_id, campaign_step_id) REFERENCES campaign_steps (org_id, id) ON DELETE SET NULL (campaign_step_id),
    CONSTRAINT messages_variant_same_org FOREIGN KEY (org_id, template_variant_id) REFERENCES template_variants (org_id, id) ON DELETE SET NULL (template_variant_id),
    CONSTRAINT messages_connection_same_org FOREIGN KEY (org_id, carrier_connection_id) REFERENCES carrier_connections (org_id, id),
    CONSTRAINT messages_org_id_unique UNIQUE (org_id, id),
    CONSTRAINT messages_direction_valid CHECK (direction IN ('outbound', 'inbound')),
    CONSTRAINT messages_status_valid CHECK (status IN (
        'queued', 'claimed', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'cancelled', 'received')),
    CONSTRAINT messages_status_matches_direction CHECK ((direction = 'inbound') = (status = 'received')),
    CONSTRAINT messages_outbound_has_schedule CHECK (direction <> 'outbound' OR (send_after IS NOT NULL AND idempotency_key IS NOT NULL)),
    CONSTRAINT messages_inbound_has_sender CHECK (direction <> 'inbound' OR (from_phone IS NOT NULL AND received_at IS NOT NULL)),
    CONSTRAINT messages_sent_has_sender CHECK (
        status NOT IN ('sending', 'sent', 'delivered', 'undelivered') OR (phone_number_id IS NOT NULL AND from_phone IS NOT NULL)),
    CONSTRAINT messages_sent_has_time CHECK (status NOT IN ('sent', 'delivered', 'undelivered') OR sent_at IS NOT NULL),
    CONSTRAINT messages_claimed_has_claim CHECK (status NOT IN ('claimed', 'sending') OR claimed_at IS NOT NULL),
    CONSTRAINT messages_failed_has_time CHECK (status NOT IN ('failed', 'undelivered') OR failed_at IS NOT NULL),
    CONSTRAINT messages_encoding_valid CHECK (encoding IS NULL OR encoding IN ('gsm7', 'ucs2')),
    CONSTRAINT messages_segments_range CHECK (segments IS NULL OR segments BETWEEN 1 AND 20),
    CONSTRAINT messages_cost_nonnegative CHECK (cost_micros IS NULL OR cost_micros >= 0),
    CONSTRAINT messages_currency_format CHECK (currency IS NULL OR currency ~ '^[A-Z]{3}$'),
    CONSTRAINT messages_body_length CHECK (length(body) <= 1600),
    CONSTRAINT messages_attempts_nonnegative CHECK (attempts >= 0)
);
CREATE UNIQUE INDEX messages_idempotency_unique ON messages (org_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX messages_provider_id_unique ON messages (carrier_connection_id, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
-- The dispatcher's claim: due queued rows (and claims to recover after a crash), oldest first.
CREATE INDEX messages_due_idx ON messages (status, send_after) WHERE status IN ('queued', 'claimed');
CREATE INDEX messages_org_due_idx ON messages (org_id, send_after) WHERE status = 'queued';
-- A lead's thread, and the inbox ordered by latest activity.
CREATE INDEX messages_thread_idx ON messages (org_id, lead_id, created_at DESC);
CREATE INDEX messages_inbox_idx ON messages (org_id, created_at DESC) WHERE direction = 'inbound';
CREATE INDEX messages_campaign_idx ON messages (org_id, campaign_id, status) WHERE campaign_id IS NOT NULL;
CREATE TRIGGER messages_touch BEFORE UPDATE ON messages FOR EACH ROW EXECUTE FUNCTION ctower_touch_updated_at();

CREATE TABLE message_status_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id uuid NOT NULL,
    message_id uuid NOT NULL,
    status text NOT NULL,
    provider_status text,
    error_code text,
    -- When the carrier says it happened (callbacks arrive out of order).
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT message_status_events_message_same_org FOREIGN KEY (org_id, message_id) REFERENCES messages (org_id, id) ON DELETE CASCADE,
    CONSTRAINT message_status_events_status_valid CHECK (status IN (
        'queued', 'claimed', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'cancelled', 'received'))
);
CREATE INDEX message_status_events_message_idx ON message_status_events (message_id, occurred_at);

CREATE TABLE webhook_endpoints (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url text NOT NULL,
    -- Signing secret, AES-256-GCM sealed like carrier credentials.
    secret_encrypted bytea NOT NULL,
    events text[] NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT true,
    consecutive_failures integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_endpoints_org_id_unique UNIQUE (org_id, id),
    CONSTRAINT webhook_endpoints_url_format CHECK (url ~ '^https?://[^[:space:]]+$' AND length(url) <= 2048),
    CONSTRAINT webhook_endpoints_failures_nonnegative CHECK (consecutive_failures >= 0)
);
CREATE TRIGGER webhook_endpoints_touch BEFORE UPDATE ON webhook_endpoints FOR EACH ROW EXECUTE FUNCTION ctower_touch_updated_at();

CREATE TABLE webhook_logs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    event text NOT NULL,
    event_id uuid NOT NULL,
    attempt smallint NOT NULL DEFAULT 1,
    response_status integer,
    duration_ms integer,
    error text,
    next_retry_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_logs_endpoint_same_org FOREIGN KEY (org_id, endpoint_id) REFERENCES webhook_endpoints (org_id, id) ON DELETE CASCADE,
    CONSTRAINT webhook_logs_attempt_positive CHECK (attempt >= 1),
    CONSTRAINT webhook_logs_status_range CHECK (response_status IS NULL OR response_status BETWEEN 100 AND 599)
);
CREATE INDEX webhook_logs_endpoint_idx ON webhook_logs (org_id, endpoint_id, created_at DESC);
CREATE INDEX webhook_logs_retry_idx ON webhook_logs (next_retry_at) WHERE next_retry_at IS NOT NULL;

SELECT ctower_secure_tenant_tables();

-- Work that spans tenants, without exposing tenant rows: which orgs have due messages. The
-- dispatcher then claims inside each org's own transaction, under RLS.
CREATE FUNCTION ctower_orgs_with_due_messages(p_limit integer) RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT org_id FROM messages WHERE status = 'queued' AND send_after <= now()
        GROUP BY org_id ORDER BY min(send_after) LIMIT p_limit
    $$;

-- Carrier webhooks name their connection in the URL; this finds its org.
CREATE FUNCTION ctower_carrier_connection_org(p_connection_id uuid) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT org_id FROM carrier_connections WHERE id = p_connection_id $$;

GRANT EXECUTE ON FUNCTION ctower_orgs_with_due_messages(integer), ctower_carrier_connection_org(uuid) TO ctower_app;
