-- The dispatcher: per-number pacing kept in the database (so rate limits hold across several
-- dispatcher processes), the org's consent requirement, and the cross-tenant lookups that tell a
-- dispatcher which orgs have work. Claims themselves run inside each org's transaction, under RLS.

-- Send only to phones with recorded consent (the gate skips the rest with 'no_consent').
ALTER TABLE orgs ADD COLUMN require_consent boolean NOT NULL DEFAULT false;

-- The earliest moment this number may send its next message. A dispatcher reserves a slot by
-- moving it forward by 1/MPS under the row lock, so two dispatchers never share a slot.
ALTER TABLE phone_numbers ADD COLUMN next_send_at timestamptz NOT NULL DEFAULT '-infinity';

-- True when the dispatcher picked the sender (phone_number_id was empty at queue time): a
-- message sent back to the queue forgets such a sender, but keeps one that was set on purpose.
ALTER TABLE messages ADD COLUMN sender_assigned boolean NOT NULL DEFAULT false;

-- Claims to recover after a dispatcher died (oldest first). claimed_by is set only while a
-- dispatcher holds the row (claimed or sending), so this index stays as small as the work in
-- flight; its predicate is one the hand-off's own statements (by id) never imply, so they keep
-- using the primary key instead of walking this index's not-yet-vacuumed entries.
CREATE INDEX messages_claims_idx ON messages (claimed_at) WHERE claimed_by IS NOT NULL;
-- State caps count recent messages to one phone.
CREATE INDEX messages_recipient_idx ON messages (org_id, to_phone) WHERE direction = 'outbound';

-- Orgs with messages a dispatcher may claim now: queued, due, and not held by a campaign that
-- is not running.
CREATE FUNCTION ctower_dispatch_due_orgs(p_limit integer) RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT m.org_id FROM messages m
        WHERE m.status = 'queued' AND m.send_after <= now()
          AND (m.campaign_id IS NULL OR EXISTS (SELECT 1 FROM campaigns c WHERE c.id = m.campaign_id AND c.status = 'running'))
        GROUP BY m.org_id ORDER BY min(m.send_after) LIMIT p_limit
    $$;

-- When the next claimable message falls due (NULL when none is queued): the dispatcher sleeps
-- until then unless a NOTIFY wakes it first.
CREATE FUNCTION ctower_dispatch_next_due() RETURNS timestamptz
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT m.send_after FROM messages m
        WHERE m.status = 'queued'
          AND (m.campaign_id IS NULL OR EXISTS (SELECT 1 FROM campaigns c WHERE c.id = m.campaign_id AND c.status = 'running'))
        ORDER BY m.send_after LIMIT 1
    $$;

-- Orgs holding claims older than p_stale_before: left by a dispatcher that died (its lease ran out).
CREATE FUNCTION ctower_dispatch_stale_orgs(p_stale_before timestamptz, p_limit integer) RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT DISTINCT m.org_id FROM messages m
        WHERE m.claimed_by IS NOT NULL AND m.claimed_at < p_stale_before AND m.status IN ('claimed', 'sending')
        LIMIT p_limit
    $$;

GRANT EXECUTE ON FUNCTION ctower_dispatch_due_orgs(integer), ctower_dispatch_next_due(),
    ctower_dispatch_stale_orgs(timestamptz, integer) TO ctower_app;
