-- Orgs (agencies and their client orgs), users, memberships, API keys, refresh tokens, audit.

CREATE TABLE orgs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    parent_org_id uuid,
    kind text NOT NULL DEFAULT 'standard',
    -- Always 'agency' when there is a parent: with the foreign key below, a client org's parent
    -- must be an agency, so agencies nest exactly one level deep.
    parent_kind text GENERATED ALWAYS AS (CASE WHEN parent_org_id IS NULL THEN NULL ELSE 'agency' END) STORED,
    name text NOT NULL,
    brand_name text,
    time_zone text NOT NULL DEFAULT 'America/New_York',
    quiet_hours_start_minute smallint NOT NULL DEFAULT 480,
    quiet_hours_end_minute smallint NOT NULL DEFAULT 1260,
    default_daily_cap integer NOT NULL DEFAULT 200,
    help_reply_text text,
    stop_reply_text text,
    ip_allowlist cidr[] NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orgs_kind_valid CHECK (kind IN ('standard', 'agency', 'client')),
    CONSTRAINT orgs_client_has_parent CHECK ((kind = 'client') = (parent_org_id IS NOT NULL)),
    CONSTRAINT orgs_not_own_parent CHECK (parent_org_id <> id),
    CONSTRAINT orgs_name_length CHECK (length(name) BETWEEN 1 AND 200),
    CONSTRAINT orgs_quiet_hours_within_federal CHECK (
        quiet_hours_start_minute >= 480 AND quiet_hours_end_minute <= 1260
        AND quiet_hours_start_minute < quiet_hours_end_minute),
    CONSTRAINT orgs_daily_cap_positive CHECK (default_daily_cap > 0),
    CONSTRAINT orgs_status_valid CHECK (status IN ('active', 'suspended', 'deleted')),
    CONSTRAINT orgs_id_kind_unique UNIQUE (id, kind),
    CONSTRAINT orgs_parent_is_agency FOREIGN KEY (parent_org_id, parent_kind) REFERENCES orgs (id, kind)
);
CREATE INDEX orgs_parent_idx ON orgs (parent_org_id) WHERE parent_org_id IS NOT NULL;
CREATE TRIGGER orgs_touch BEFORE UPDATE ON orgs FOR EACH ROW EXECUTE FUNCTION ctower_touch_updated_at();

-- An org sees its own row and, if it is an agency, its client orgs' rows. New top-level orgs are
-- created in a transaction whose tenant is the new org's id; client orgs by their agency.
ALTER TABLE orgs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orgs FORCE ROW LEVEL SECURITY;
CREATE POLICY org_self_and_clients ON orgs
    USING (id = ctower_current_org() OR parent_org_id = ctower_current_org())
    WITH CHECK (id = ctower_current_org() OR parent_org_id = ctower_current_org());

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The org that created the user; memberships grant access to others.
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    password_hash text,
    totp_secret_encrypted bytea,
    totp_enabled boolean NOT NULL DEFAULT false,
    status text NOT NULL DEFAULT 'invited',
    last_login_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_unique UNIQUE (email),
    CONSTRAINT users_email_format CHECK (email = lower(email) AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    CONSTRAINT users_status_valid CHECK (status IN ('invited', 'active', 'deactivated')),
    CONSTRAINT users_active_has_password CHECK (status <> 'active' OR password_hash IS NOT NULL),
    CONSTRAINT users_totp_needs_secret CHECK (NOT totp_enabled OR totp_secret_encrypted IS NOT NULL),
    CONSTRAINT users_org_id_unique UNIQUE (org_id, id)
);
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION ctower_touch_updated_at();

CREATE TABLE memberships (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id),
    CONSTRAINT memberships_role_valid CHECK (role IN ('owner', 'admin', 'agent', 'viewer'))
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

-- Users: visible in their home org, in orgs where they are members, and to themselves.
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_in_org ON users
    USING (org_id = ctower_current_org()
           OR id = ctower_current_user()
           OR id IN (SELECT m.user_id FROM memberships m WHERE m.org_id = ctower_current_org()))
    WITH CHECK (org_id = ctower_current_org());

CREATE TABLE api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL,
    -- The visible start of the key, shown in listings.
    prefix text NOT NULL,
    -- SHA-256 of the secret key; the key itself is shown once and never stored.
    key_hash bytea NOT NULL,
    scopes text[] NOT NULL DEFAULT '{}',
    rate_limit_per_minute integer,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz,
    CONSTRAINT api_keys_hash_unique UNIQUE (key_hash),
    CONSTRAINT api_keys_prefix_unique UNIQUE (prefix),
    CONSTRAINT api_keys_hash_is_sha256 CHECK (octet_length(key_hash) = 32),
    CONSTRAINT api_keys_name_length CHECK (length(name) BETWEEN 1 AND 200),
    CONSTRAINT api_keys_rate_limit_positive CHECK (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0)
);
CREATE INDEX api_keys_org_idx ON api_keys (org_id, created_at DESC);

CREATE TABLE refresh_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Every token descending from one login; reuse of a rotated token revokes the family.
    family_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    issued_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    rotated_at timestamptz,
    revoked_at timestamptz,
    replaced_by uuid REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    CONSTRAINT refresh_tokens_hash_unique UNIQUE (token_hash),
    CONSTRAINT refresh_tokens_hash_is_sha256 CHECK (octet_length(token_hash) = 32),
    CONSTRAINT refresh_tokens_expiry_after_issue CHECK (expires_at > issued_at)
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

CREATE TABLE audit_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    actor_user_id uuid DEFAULT ctower_current_user(),
    actor_api_key_id uuid,
    action text NOT NULL,
    target_type text,
    target_id text,
    request_id text,
    peer_address text,
    metadata jsonb NOT NULL DEFAULT '{}',
    occurred_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_events_action_format CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$')
);
CREATE INDEX audit_events_org_time_idx ON audit_events (org_id, occurred_at DESC);
CREATE INDEX audit_events_target_idx ON audit_events (org_id, target_type, target_id);

SELECT ctower_secure_tenant_tables();
-- The audit trail is append-only for the server.
REVOKE UPDATE, DELETE ON audit_events FROM ctower_app;

-- Lookups that must work before a tenant is known. They run as the owner (SECURITY DEFINER) and
-- return only what authentication needs; the caller then sets the tenant and continues under RLS.

-- Password login by e-mail.
CREATE FUNCTION ctower_find_login(p_email text)
    RETURNS TABLE (user_id uuid, org_id uuid, password_hash text, status text, totp_enabled boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT u.id, u.org_id, u.password_hash, u.status, u.totp_enabled FROM users u WHERE u.email = lower(p_email) $$;

-- API key by the SHA-256 of the presented key; only live keys.
CREATE FUNCTION ctower_find_api_key(p_key_hash bytea)
    RETURNS TABLE (key_id uuid, org_id uuid, scopes text[], rate_limit_per_minute integer, created_by uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT k.id, k.org_id, k.scopes, k.rate_limit_per_minute, k.created_by FROM api_keys k
        WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
    $$;

-- Refresh token by hash, including rotated and revoked ones so reuse can be detected.
CREATE FUNCTION ctower_find_refresh_token(p_token_hash bytea)
    RETURNS TABLE (token_id uuid, org_id uuid, user_id uuid, family_id uuid, expires_at timestamptz,
                   rotated_at timestamptz, revoked_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT t.id, t.org_id, t.user_id, t.family_id, t.expires_at, t.rotated_at, t.revoked_at
        FROM refresh_tokens t WHERE t.token_hash = p_token_hash
    $$;

-- The role a user holds in an org: a direct membership wins; otherwise a membership in the
-- org's parent agency carries over to its client orgs. NULL means no access. This is the check
-- behind the x-ctower-org request header.
CREATE FUNCTION ctower_membership_role(p_user_id uuid, p_org_id uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT role FROM (
            SELECT m.role, 0 AS priority
            FROM memberships m JOIN users u ON u.id = m.user_id JOIN orgs o ON o.id = m.org_id
            WHERE m.user_id = p_user_id AND m.org_id = p_org_id AND u.status = 'active' AND o.status = 'active'
            UNION ALL
            SELECT m.role, 1 AS priority
            FROM orgs client
            JOIN memberships m ON m.org_id = client.parent_org_id
            JOIN users u ON u.id = m.user_id
            JOIN orgs agency ON agency.id = client.parent_org_id
            WHERE client.id = p_org_id AND m.user_id = p_user_id AND u.status = 'active'
              AND client.status = 'active' AND agency.status = 'active'
        ) candidates
        ORDER BY priority
        LIMIT 1
    $$;

GRANT EXECUTE ON FUNCTION ctower_find_login(text), ctower_find_api_key(bytea), ctower_find_refresh_token(bytea),
    ctower_membership_role(uuid, uuid) TO ctower_app;
