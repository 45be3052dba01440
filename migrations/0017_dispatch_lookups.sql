-- The dispatcher's cross-org lookups walk each org's own queue index instead of leaving the
-- choice to the planner. `ctower_dispatch_due_orgs` grouped every queued row by org; with a
-- fresh campaign's statistics (the app role cannot ANALYZE) the planner served the GROUP BY from
-- messages_thread_idx and read every row of the table, sent ones included, on each call: 5
-- million index entries in the dispatch benchmark's 50,000-message run. Each org now costs one
-- descent into messages_org_due_idx, whatever the statistics say.

CREATE OR REPLACE FUNCTION ctower_dispatch_due_orgs(p_limit integer) RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT o.id FROM orgs o
        CROSS JOIN LATERAL (
            SELECT m.send_after FROM messages m
            WHERE m.org_id = o.id AND m.status = 'queued' AND m.send_after <= now()
              AND (m.campaign_id IS NULL OR EXISTS (SELECT 1 FROM campaigns c WHERE c.id = m.campaign_id AND c.status = 'running'))
            ORDER BY m.send_after LIMIT 1) due
        ORDER BY due.send_after LIMIT p_limit
    $$;

CREATE OR REPLACE FUNCTION ctower_dispatch_next_due() RETURNS timestamptz
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT min(due.send_after) FROM orgs o
        CROSS JOIN LATERAL (
            SELECT m.send_after FROM messages m
            WHERE m.org_id = o.id AND m.status = 'queued'
              AND (m.campaign_id IS NULL OR EXISTS (SELECT 1 FROM campaigns c WHERE c.id = m.campaign_id AND c.status = 'running'))
            ORDER BY m.send_after LIMIT 1) due
    $$;

-- The campaign-progress trigger (migration 0014) closes a campaign whose last outstanding message
-- just left the queue. Its probe `status IN ('queued', 'claimed', 'sending')` ran as a filter over
-- messages_campaign_idx (org_id, campaign_id) entries, so every statement that recorded sends
-- read the whole campaign (20,000 rows removed by filter, 9 ms, per group of sends at the end of
-- the benchmark's first campaign). One lookup per status, with the status as a parameter of a
-- LATERAL probe, stays inside that status's range of messages_campaign_idx (0.7 ms); a constant
-- `status = 'queued'` let the planner pick messages_org_due_idx and filter the org's whole queue
-- by campaign instead. Otherwise unchanged.
CREATE OR REPLACE FUNCTION ctower_campaign_messages_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('ctower_campaign_progress', changed_campaign::text)
    FROM (SELECT DISTINCT campaign_id AS changed_campaign FROM changed WHERE campaign_id IS NOT NULL) c;
    UPDATE campaigns cp SET status = 'completed', completed_at = now()
    WHERE cp.status = 'running'
      AND cp.id IN (SELECT DISTINCT campaign_id FROM changed WHERE campaign_id IS NOT NULL AND status NOT IN ('queued', 'claimed', 'sending'))
      AND NOT EXISTS (
          SELECT 1 FROM unnest(ARRAY['queued', 'claimed', 'sending']) s(status)
          CROSS JOIN LATERAL (SELECT 1 FROM messages m
                              WHERE m.org_id = cp.org_id AND m.campaign_id = cp.id AND m.status = s.status LIMIT 1) hit);
    RETURN NULL;
END
$$;

-- Nothing reads messages_due_idx any more: the claim uses messages_org_due_idx, recovery uses
-- messages_claims_idx. One index fewer to write for every queued message, claim and requeue.
DROP INDEX messages_due_idx;
