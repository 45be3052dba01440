-- Fresh statistics after a big campaign start. StartCampaign inserts its targets and queued
-- messages in one statement each; until autovacuum's ANALYZE comes round (after 10 % of the
-- table has changed, and not at once), the planner still sees the org's `messages` as the few
-- rows it had before. With those estimates the dispatcher's batch statements (claim, lock,
-- record: `m.id = ANY(...)` plus the row-level security filter on org_id) were planned as a
-- bitmap scan of the org's whole thread index instead of primary-key lookups: about 25 batches
-- of a 50,000-message run read the org's every message. The app role owns no table and cannot
-- ANALYZE, so the owner does it: a fixed list of tables, no argument.
CREATE FUNCTION ctower_analyze_campaign_tables() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
BEGIN
    ANALYZE messages;
    ANALYZE campaign_targets;
END
$$;
REVOKE ALL ON FUNCTION ctower_analyze_campaign_tables() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ctower_analyze_campaign_tables() TO ctower_app;
