-- A membership may only name a user whose home org is the membership's org or that org's parent
-- agency. Without this, an org that learned another org's user id could add that user as a
-- member and, through the users read policy, see the user's row.

-- The home org of a user, whichever tenant is current (the caller may not see the user yet).
CREATE FUNCTION ctower_user_home_org(p_user_id uuid) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT org_id FROM users WHERE id = p_user_id $$;
REVOKE ALL ON FUNCTION ctower_user_home_org(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ctower_user_home_org(uuid) TO ctower_app;

DROP POLICY tenant_isolation ON memberships;
CREATE POLICY memberships_read ON memberships FOR SELECT
    USING (org_id = ctower_current_org());
CREATE POLICY memberships_insert ON memberships FOR INSERT
    WITH CHECK (org_id = ctower_current_org() AND ctower_user_home_org(user_id) IN (
        org_id, (SELECT o.parent_org_id FROM orgs o WHERE o.id = memberships.org_id)));
CREATE POLICY memberships_update ON memberships FOR UPDATE
    USING (org_id = ctower_current_org())
    WITH CHECK (org_id = ctower_current_org() AND ctower_user_home_org(user_id) IN (
        org_id, (SELECT o.parent_org_id FROM orgs o WHERE o.id = memberships.org_id)));
CREATE POLICY memberships_delete ON memberships FOR DELETE
    USING (org_id = ctower_current_org());
