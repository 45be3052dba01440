-- Tighter write policies on orgs and users.
--
-- Before: one policy per table for every command. A client-org admin could UPDATE an agency user
-- who is a member of the client org (visible through the membership) and move it into the client
-- org, then change its password hash; and an org could attach itself to any agency as a client.
-- Now reads stay as they were, writes are narrower, and an org's structure and a user's home org
-- cannot change after creation.

DROP POLICY org_self_and_clients ON orgs;
CREATE POLICY orgs_read ON orgs FOR SELECT
    USING (id = ctower_current_org() OR parent_org_id = ctower_current_org());
-- A top-level org is created in a transaction whose tenant is its own id; a client org only by
-- its agency.
CREATE POLICY orgs_insert ON orgs FOR INSERT
    WITH CHECK ((parent_org_id IS NULL AND id = ctower_current_org()) OR parent_org_id = ctower_current_org());
CREATE POLICY orgs_update ON orgs FOR UPDATE
    USING (id = ctower_current_org() OR parent_org_id = ctower_current_org())
    WITH CHECK (id = ctower_current_org() OR parent_org_id = ctower_current_org());
CREATE POLICY orgs_delete ON orgs FOR DELETE
    USING (parent_org_id = ctower_current_org());

CREATE FUNCTION ctower_orgs_structure_immutable() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.kind IS DISTINCT FROM OLD.kind OR NEW.parent_org_id IS DISTINCT FROM OLD.parent_org_id THEN
        RAISE EXCEPTION 'an org''s kind and parent agency cannot change after it is created';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER orgs_structure_immutable BEFORE UPDATE OF kind, parent_org_id ON orgs
    FOR EACH ROW EXECUTE FUNCTION ctower_orgs_structure_immutable();

DROP POLICY users_in_org ON users;
-- Visible in the home org, to orgs where the user is a member, and to the user themself.
CREATE POLICY users_read ON users FOR SELECT
    USING (org_id = ctower_current_org()
           OR id = ctower_current_user()
           OR id IN (SELECT m.user_id FROM memberships m WHERE m.org_id = ctower_current_org()));
CREATE POLICY users_insert ON users FOR INSERT
    WITH CHECK (org_id = ctower_current_org());
-- Changed only by the home org or by the user themself (e.g. enrolling 2FA while acting in a
-- client org); never by an org that merely has the user as a member.
CREATE POLICY users_update ON users FOR UPDATE
    USING (org_id = ctower_current_org() OR id = ctower_current_user())
    WITH CHECK (org_id = ctower_current_org() OR id = ctower_current_user());
CREATE POLICY users_delete ON users FOR DELETE
    USING (org_id = ctower_current_org());

CREATE FUNCTION ctower_users_home_org_immutable() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.org_id IS DISTINCT FROM OLD.org_id THEN
        RAISE EXCEPTION 'a user''s home org cannot change';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_home_org_immutable BEFORE UPDATE OF org_id ON users
    FOR EACH ROW EXECUTE FUNCTION ctower_users_home_org_immutable();
