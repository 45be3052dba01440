-- Carrier connections as IntegrationService manages them, and carrier webhook ingress.

-- Non-secret plugin settings, and a masked hint per credential key so listing connections never
-- needs to decrypt anything.
ALTER TABLE carrier_connections
    ADD COLUMN settings jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN credential_hints jsonb NOT NULL DEFAULT '{}',
    ADD CONSTRAINT carrier_connections_settings_object CHECK (jsonb_typeof(settings) = 'object'),
    ADD CONSTRAINT carrier_connections_hints_object CHECK (jsonb_typeof(credential_hints) = 'object');

-- A carrier may deliver the same status callback more than once: each carrier event is recorded once.
ALTER TABLE message_status_events ADD COLUMN carrier_event_id text;
CREATE UNIQUE INDEX message_status_events_carrier_event_unique ON message_status_events (org_id, carrier_event_id)
    WHERE carrier_event_id IS NOT NULL;

-- Every request to /webhooks/carriers/{connection_id} whose connection exists, verified or not.
-- (webhook_logs records deliveries of our own outbound webhooks to customer endpoints.)
-- Secret-bearing headers keep only a SHA-256 of their value.
CREATE TABLE carrier_webhook_logs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id uuid NOT NULL,
    carrier_connection_id uuid NOT NULL,
    method text NOT NULL,
    url text NOT NULL,
    -- [{"name": ..., "value": ...}] in arrival order, secrets redacted.
    headers jsonb NOT NULL,
    body bytea NOT NULL,
    body_sha256 bytea NOT NULL,
    verified boolean NOT NULL,
    response_status integer NOT NULL,
    event_count integer NOT NULL DEFAULT 0,
    -- Why the request was not processed (plugin error class), if it was not.
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT carrier_webhook_logs_connection_same_org FOREIGN KEY (org_id, carrier_connection_id)
        REFERENCES carrier_connections (org_id, id) ON DELETE CASCADE,
    CONSTRAINT carrier_webhook_logs_status_range CHECK (response_status BETWEEN 100 AND 599),
    CONSTRAINT carrier_webhook_logs_headers_array CHECK (jsonb_typeof(headers) = 'array'),
    CONSTRAINT carrier_webhook_logs_event_count_nonnegative CHECK (event_count >= 0)
);
CREATE INDEX carrier_webhook_logs_connection_idx ON carrier_webhook_logs (org_id, carrier_connection_id, created_at DESC);

SELECT ctower_secure_tenant_tables();
