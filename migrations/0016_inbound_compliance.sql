-- Inbound messages and compliance keywords: what each inbound message asked for, the reviews
-- free-text revocations get, which opt-outs have been confirmed to the recipient, the org's
-- choice about free-text revocations, and a notification per inbound message for live inboxes.

-- FCC 24-18: wording a reasonable person reads as revocation revokes consent. On by default; an
-- org that turns it off still gets every such message flagged for review.
ALTER TABLE orgs ADD COLUMN free_text_opt_out boolean NOT NULL DEFAULT true;

-- The classification of an inbound message (KeywordClassifier), kept for the inbox and audits.
ALTER TABLE messages
    ADD COLUMN intent text,
    ADD CONSTRAINT messages_intent_valid CHECK (
        intent IS NULL OR intent IN ('message', 'opt_out', 'resubscribe', 'help', 'revocation', 'possible_revocation')),
    ADD CONSTRAINT messages_intent_only_inbound CHECK (intent IS NULL OR direction = 'inbound');

-- When a person read an inbound message (MessageService.MarkThreadRead); NULL = unread.
ALTER TABLE messages
    ADD COLUMN read_at timestamptz,
    ADD CONSTRAINT messages_read_only_inbound CHECK (read_at IS NULL OR direction = 'inbound');
CREATE INDEX messages_unread_idx ON messages (org_id, lead_id) WHERE direction = 'inbound' AND read_at IS NULL;

-- Cancelling a phone's queued messages on opt-out runs under the phone's exclusive lock: it must
-- not scan the org's queue.
CREATE INDEX messages_queued_to_phone_idx ON messages (org_id, to_phone) WHERE status = 'queued';

-- An opt-out is confirmed to the recipient at most once; a repeated STOP finds this set.
ALTER TABLE opt_outs
    ADD COLUMN confirmation_message_id uuid,
    ADD CONSTRAINT opt_outs_source_message_same_org FOREIGN KEY (org_id, source_message_id)
        REFERENCES messages (org_id, id) ON DELETE SET NULL (source_message_id),
    ADD CONSTRAINT opt_outs_confirmation_same_org FOREIGN KEY (org_id, confirmation_message_id)
        REFERENCES messages (org_id, id) ON DELETE SET NULL (confirmation_message_id);

-- Inbound messages a person should look at: free text that revokes consent (acted on unless the
-- org turned free_text_opt_out off) and keywords inside other text ("can you stop by?"), which
-- are never acted on.
CREATE TABLE inbound_reviews (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    message_id uuid NOT NULL,
    lead_id uuid,
    phone e164 NOT NULL,
    reason text NOT NULL,
    -- The words that triggered the flag (normalised), e.g. "stop texting".
    phrase text NOT NULL,
    -- Whether the phone was opted out when the message arrived.
    opted_out boolean NOT NULL,
    status text NOT NULL DEFAULT 'open',
    resolved_by uuid REFERENCES users (id) ON DELETE SET NULL,
    resolved_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT inbound_reviews_org_id_unique UNIQUE (org_id, id),
    CONSTRAINT inbound_reviews_message_unique UNIQUE (message_id),
    CONSTRAINT inbound_reviews_message_same_org FOREIGN KEY (org_id, message_id) REFERENCES messages (org_id, id) ON DELETE CASCADE,
    CONSTRAINT inbound_reviews_lead_same_org FOREIGN KEY (org_id, lead_id) REFERENCES leads (org_id, id) ON DELETE SET NULL (lead_id),
    CONSTRAINT inbound_reviews_reason_valid CHECK (reason IN ('free_text_revocation', 'possible_revocation')),
    CONSTRAINT inbound_reviews_status_valid CHECK (status IN ('open', 'confirmed', 'dismissed')),
    CONSTRAINT inbound_reviews_resolved_has_time CHECK ((status = 'open') = (resolved_at IS NULL))
);
CREATE INDEX inbound_reviews_open_idx ON inbound_reviews (org_id, lead_id) WHERE status = 'open';

-- Every inbound message, however it arrived, wakes the org's live inbox subscriptions. The
-- payload names the org and the message; subscribers read the row under their own tenant, so
-- the payload never carries message content.
CREATE FUNCTION ctower_notify_inbound() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN PERFORM pg_notify('ctower_inbound', NEW.org_id::text || ' ' || NEW.id::text); RETURN NULL; END $$;
CREATE TRIGGER messages_notify_inbound AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.direction = 'inbound') EXECUTE FUNCTION ctower_notify_inbound();

SELECT ctower_secure_tenant_tables();
