-- Invitations: a user created without a password gets a one-time invite token (stored as its
-- SHA-256) that sets the first password through AuthService.AcceptInvite.

ALTER TABLE users
    ADD COLUMN invite_token_hash bytea,
    ADD COLUMN invite_expires_at timestamptz,
    ADD CONSTRAINT users_invite_hash_is_sha256 CHECK (invite_token_hash IS NULL OR octet_length(invite_token_hash) = 32),
    ADD CONSTRAINT users_invite_only_while_invited CHECK (invite_token_hash IS NULL OR status = 'invited'),
    ADD CONSTRAINT users_invite_has_expiry CHECK ((invite_token_hash IS NULL) = (invite_expires_at IS NULL));
CREATE UNIQUE INDEX users_invite_token_idx ON users (invite_token_hash) WHERE invite_token_hash IS NOT NULL;

-- An open invite by the hash of its token, before any tenant is known.
CREATE FUNCTION ctower_find_invite(p_token_hash bytea)
    RETURNS TABLE (user_id uuid, org_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT u.id, u.org_id FROM users u
        WHERE u.invite_token_hash = p_token_hash AND u.status = 'invited' AND u.invite_expires_at > now()
    $$;
GRANT EXECUTE ON FUNCTION ctower_find_invite(bytea) TO ctower_app;

-- Whether any org exists yet: `ctower serve` creates the first org and owner when there is none.
CREATE FUNCTION ctower_any_org() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$ SELECT EXISTS (SELECT 1 FROM orgs) $$;
GRANT EXECUTE ON FUNCTION ctower_any_org() TO ctower_app;
