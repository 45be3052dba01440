-- Foundation: tenant-context helpers, the app role, default privileges, the RLS helper.
-- Runs as the owner role, which must be SUPERUSER or BYPASSRLS: migrations that backfill data
-- and the SECURITY DEFINER lookups below read across tenants although every tenant table is
-- FORCE ROW LEVEL SECURITY.

DO $$
BEGIN
    IF NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'the migration role must be SUPERUSER or BYPASSRLS (see docs/storage.md)';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ctower_app') THEN
        CREATE ROLE ctower_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    IF (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = 'ctower_app') THEN
        RAISE EXCEPTION 'role ctower_app must be NOSUPERUSER NOBYPASSRLS';
    END IF;
END
$$;

-- The tenant of the current transaction. A missing or empty setting is NULL, and
-- "org_id = NULL" is never true, so a transaction without a tenant sees no tenant rows.
-- (After a transaction-local set_config ends, the setting reverts to '' rather than vanishing,
-- hence the nullif.)
CREATE FUNCTION ctower_current_org() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('ctower.org_id', true), '')::uuid $$;

-- The acting user of the current transaction, or NULL.
CREATE FUNCTION ctower_current_user() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('ctower.user_id', true), '')::uuid $$;

-- Keeps updated_at honest.
CREATE FUNCTION ctower_touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

-- E.164: "+", a non-zero digit, 7 to 14 more digits.
CREATE DOMAIN e164 AS text CONSTRAINT e164_format CHECK (VALUE ~ '^\+[1-9][0-9]{7,14}$');

-- ENABLE + FORCE row-level security on every public table with an org_id column, and give each
-- one without a policy the standard tenant policy. Every migration that adds tables ends with
-- SELECT ctower_secure_tenant_tables(); so no table can be forgotten.
CREATE FUNCTION ctower_secure_tenant_tables() RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    target record;
BEGIN
    FOR target IN
        SELECT c.oid::regclass AS name, c.relrowsecurity, c.relforcerowsecurity,
               EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid) AS has_policy
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
    LOOP
        IF NOT target.relrowsecurity THEN
            EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target.name);
        END IF;
        IF NOT target.relforcerowsecurity THEN
            EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target.name);
        END IF;
        IF NOT target.has_policy THEN
            EXECUTE format(
                'CREATE POLICY tenant_isolation ON %s USING (org_id = ctower_current_org()) '
                'WITH CHECK (org_id = ctower_current_org())', target.name);
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION ctower_secure_tenant_tables() FROM PUBLIC;

-- The app role gets DML on what the owner creates from now on, and owns nothing.
GRANT USAGE ON SCHEMA public TO ctower_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ctower_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ctower_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ctower_current_org(), ctower_current_user() TO ctower_app;
