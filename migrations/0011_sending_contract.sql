-- The contract between the parts of the sending engine: campaigns queue outbound messages, the
-- dispatcher claims and sends them, inbound handling cancels them on opt-out and queues its own
-- compliance replies. Each part adds its own tables later; this is what they share.

-- Why an outbound message exists. Compliance replies (STOP confirmation, HELP) go out even to a
-- phone that has just opted out and outside quiet hours; every other purpose passes the full gate.
ALTER TABLE messages
    ADD COLUMN purpose text NOT NULL DEFAULT 'campaign',
    ADD COLUMN skip_reason text,
    -- Where the recipient may be, fixed when the message is queued (lead states + area code
    -- state; IANA zones from the lead's state/county and the phone's area code). The
    -- dispatcher re-checks quiet hours and state caps against these at claim time.
    ADD COLUMN recipient_states text[] NOT NULL DEFAULT '{}',
    ADD COLUMN recipient_zones text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT messages_purpose_valid CHECK (purpose IN ('campaign', 'compliance', 'manual', 'test')),
    DROP CONSTRAINT messages_status_valid,
    ADD CONSTRAINT messages_status_valid CHECK (status IN (
        'queued', 'claimed', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'cancelled', 'skipped', 'received')),
    -- A message the compliance gate refused says why (opted_out, dnc, no_consent, state_cap, ...).
    ADD CONSTRAINT messages_skipped_has_reason CHECK (status NOT IN ('skipped', 'cancelled') OR skip_reason IS NOT NULL);

ALTER TABLE message_status_events
    DROP CONSTRAINT message_status_events_status_valid,
    ADD CONSTRAINT message_status_events_status_valid CHECK (status IN (
        'queued', 'claimed', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'cancelled', 'skipped', 'received'));

-- The sender pool of a campaign.
CREATE TABLE campaign_numbers (
    org_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    phone_number_id uuid NOT NULL,
    PRIMARY KEY (campaign_id, phone_number_id),
    CONSTRAINT campaign_numbers_campaign_same_org FOREIGN KEY (org_id, campaign_id) REFERENCES campaigns (org_id, id) ON DELETE CASCADE,
    CONSTRAINT campaign_numbers_number_same_org FOREIGN KEY (org_id, phone_number_id) REFERENCES phone_numbers (org_id, id) ON DELETE CASCADE
);
CREATE INDEX campaign_numbers_number_idx ON campaign_numbers (org_id, phone_number_id);

-- One lock per (org, phone). Handing a message to a carrier holds it shared (in the same
-- transaction that re-checks opt-outs); recording an opt-out holds it exclusive. So once an
-- opt-out has committed, no send to that phone can still be between its check and its hand-off.
CREATE FUNCTION ctower_phone_lock_key(p_org_id uuid, p_phone text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT hashtextextended(p_org_id::text || '|' || p_phone, 0) $$;

SELECT ctower_secure_tenant_tables();
