-- Leads, their phones, tags, lists, consent, suppression (opt-outs, DNC) and imports.

CREATE TABLE import_jobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    file_name text NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    column_mapping jsonb NOT NULL DEFAULT '{}',
    -- Where consent came from; imports without one are flagged (purchased lists are not consent).
    consent_source text,
    total_rows integer NOT NULL DEFAULT 0,
    imported_rows integer NOT NULL DEFAULT 0,
    duplicate_rows integer NOT NULL DEFAULT 0,
    error_rows integer NOT NULL DEFAULT 0,
    errors jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    CONSTRAINT import_jobs_status_valid CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    CONSTRAINT import_jobs_counts_valid CHECK (
        total_rows >= 0 AND imported_rows >= 0 AND duplicate_rows >= 0 AND error_rows >= 0
        AND imported_rows + duplicate_rows + error_rows <= total_rows),
    CONSTRAINT import_jobs_finished_after_start CHECK (finished_at IS NULL OR started_at IS NOT NULL),
    CONSTRAINT import_jobs_org_id_unique UNIQUE (org_id, id)
);
CREATE INDEX import_jobs_org_time_idx ON import_jobs (org_id, created_at DESC);

CREATE TABLE leads (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    first_name text,
    last_name text,
    owner_name text,
    mailing_address text,
    mailing_city text,
    mailing_state text,
    mailing_zip text,
    property_address text,
    property_city text,
    property_state text,
    property_zip text,
    county text,
    apn text,
    acreage numeric(12, 4),
    custom_fields jsonb NOT NULL DEFAULT '{}',
    score smallint NOT NULL DEFAULT 0,
    status text NOT NULL DEFAULT 'new',
    -- The recipient's IANA time zone when known; quiet hours fall back to state and area code.
    time_zone text,
    source text,
    import_job_id uuid,
    assigned_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT leads_org_id_unique UNIQUE (org_id, id),
    CONSTRAINT leads_state_code CHECK (
        (property_state IS NULL OR property_state ~ '^[A-Z]{2}$') AND (mailing_state IS NULL OR mailing_state ~ '^[A-Z]{2}$')),
    CONSTRAINT leads_acreage_nonnegative CHECK (acreage IS NULL OR acreage >= 0),
    CONSTRAINT leads_custom_fields_object CHECK (jsonb_typeof(custom_fields) = 'object'),
    CONSTRAINT leads_score_range CHECK (score BETWEEN 0 AND 100),
    CONSTRAINT leads_status_valid CHECK (status IN (
        'new', 'contacted', 'replied', 'interested', 'not_interested', 'under_contract', 'closed', 'dead')),
    CONSTRAINT leads_import_job_same_org FOREIGN KEY (org_id, import_job_id) REFERENCES import_jobs (org_id, id)
);
CREATE INDEX leads_org_location_idx ON leads (org_id, property_state, county);
CREATE INDEX leads_org_status_idx ON leads (org_id, status);
CREATE INDEX leads_org_score_idx ON leads (org_id, score DESC);
CREATE INDEX leads_org_created_idx ON leads (org_id, created_at DESC);
CREATE INDEX leads_org_apn_idx ON leads (org_id, apn) WHERE apn IS NOT NULL;
CREATE INDEX leads_custom_fields_idx ON leads USING gin (custom_fields jsonb_path_ops);
CREATE TRIGGER leads_touch BEFORE UPDATE ON leads FOR EACH ROW EXECUTE FUNCTION ctower_touch_updated_at();

-- Up to three phones per lead: position 1..3 and unique per lead, so a fourth cannot exist.
CREATE TABLE lead_phones (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL,
    lead_id uuid NOT NULL,
    position smallint NOT NULL,
    phone e164 NOT NULL,
    phone_type text NOT NULL DEFAULT 'unknown',
    carrier text,
    line_type text NOT NULL DEFAULT 'unknown',
    is_valid boolean,
    consent_status text NOT NULL DEFAULT 'unknown',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT lead_phones_lead_same_org FOREIGN KEY (org_id, lead_id) REFERENCES leads (org_id, id) ON DELETE CASCADE,
    CONSTRAINT lead_phones_position_range CHECK (position BETWEEN 1 AND 3),
    CONSTRAINT lead_phones_position_unique UNIQUE (lead_id, position),
    CONSTRAINT lead_phones_phone_unique UNIQUE (lead_id, phone),
    CONSTRAINT lead_phones_org_id_unique UNIQUE (org_id, id),
    CONSTRAINT lead_phones_type_valid CHECK (phone_type IN ('mobile', 'landline', 'voip', 'unknown')),
    CONSTRAINT lead_phones_line_type_valid CHECK (line_type IN ('mobile', 'landline', 'voip', 'toll_free', 'unknown')),
    CONSTRAINT lead_phones_consent_valid CHECK (consent_status IN ('unknown', 'granted', 'revoked'))
);
-- Inbound messages find their lead by phone.
CREATE INDEX lead_phones_org_phone_idx ON lead_phones (org_id, phone);

CREATE TABLE tags (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL,
    color text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tags_org_id_unique UNIQUE (org_id, id),
    CONSTRAINT tags_name_length CHECK (length(name) BETWEEN 1 AND 100),
    CONSTRAINT tags_color_format CHECK (color IS NULL OR color ~ '^#[0-9a-fA-F]{6}$')
);
CREATE UNIQUE INDEX tags_name_unique ON tags (org_id, lower(name));

CREATE TABLE lead_tags (
    org_id uuid NOT NULL,
    lead_id uuid NOT NULL,
    tag_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lead_id, tag_id),
    CONSTRAINT lead_tags_lead_same_org FOREIGN KEY (org_id, lead_id) REFERENCES leads (org_id, id) ON DELETE CASCADE,
    CONSTRAINT lead_tags_tag_same_org FOREIGN KEY (org_id, tag_id) REFERENCES tags (org_id, id) ON DELETE CASCADE
);
CREATE INDEX lead_tags_tag_idx ON lead_tags (org_id, tag_id);

CREATE TABLE lead_lists (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL,
    kind text NOT NULL,
    -- For dynamic lists: the saved filter (counties, states, tags, score range, consent…).
    filter jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT lead_lists_org_id_unique UNIQUE (org_id, id),
    CONSTRAINT lead_lists_name_unique UNIQUE (org_id, name),
    CONSTRAINT lead_lists_kind_valid CHECK (kind IN ('static', 'dynamic')),
    CONSTRAINT lead_lists_dynamic_has_filter CHECK ((kind = 'dynamic') = (filter IS NOT NULL)),
    CONSTRAINT lead_lists_filter_object CHECK (filter IS NULL OR jsonb_typeof(filter) = 'object')
);
CREATE TRIGGER lead_lists_touch BEFORE UPDATE ON lead_lists FOR EACH ROW EXECUTE FUNCTION ctower_touch_updated_at();

-- Members of static lists.
CREATE TABLE lead_list_members (
    org_id uuid NOT NULL,
    list_id uuid NOT NULL,
    lead_id uuid NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, lead_id),
    CONSTRAINT lead_list_members_list_same_org FOREIGN KEY (org_id, list_id) REFERENCES lead_lists (org_id, id) ON DELETE CASCADE,
    CONSTRAINT lead_list_members_lead_same_org FOREIGN KEY (org_id, lead_id) REFERENCES leads (org_id, id) ON DELETE CASCADE
);
CREATE INDEX lead_list_members_lead_idx ON lead_list_members (org_id, lead_id);

-- Prior express written consent and its revocations, per phone. Append-only.
CREATE TABLE consent_records (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    lead_id uuid,
    phone e164 NOT NULL,
    action text NOT NULL,
    source text NOT NULL,
    seller_name text,
    disclosure_version text,
    ip_address inet,
    channel text,
    recorded_by uuid DEFAULT ctower_current_user(),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT consent_records_lead_same_org FOREIGN KEY (org_id, lead_id) REFERENCES leads (org_id, id) ON DELETE SET NULL (lead_id),
    CONSTRAINT consent_records_action_valid CHECK (action IN ('granted', 'revoked')),
    CONSTRAINT consent_records_source_present CHECK (length(source) > 0),
    CONSTRAINT consent_records_grant_has_seller CHECK (action <> 'granted' OR seller_name IS NOT NULL)
);
CREATE INDEX consent_records_phone_idx ON consent_records (org_id, phone, recorded_at DESC);

-- Org-wide suppression: an active opt-out blocks the phone across the whole number pool.
CREATE TABLE opt_outs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    phone e164 NOT NULL,
    keyword text,
    channel text NOT NULL,
    source_message_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Set when the recipient opts back in (START, UNSTOP, ALTA…).
    revoked_at timestamptz,
    CONSTRAINT opt_outs_channel_valid CHECK (channel IN ('sms_keyword', 'sms_reply', 'manual', 'api', 'import', 'carrier')),
    CONSTRAINT opt_outs_revoked_after_created CHECK (revoked_at IS NULL OR revoked_at >= created_at)
);
CREATE UNIQUE INDEX opt_outs_active_unique ON opt_outs (org_id, phone) WHERE revoked_at IS NULL;

CREATE TABLE dnc_entries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    phone e164 NOT NULL,
    source text NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    CONSTRAINT dnc_entries_source_valid CHECK (source IN ('national', 'state', 'internal', 'litigator')),
    CONSTRAINT dnc_entries_phone_source_unique UNIQUE (org_id, phone, source)
);

SELECT ctower_secure_tenant_tables();
REVOKE UPDATE, DELETE ON consent_records FROM ctower_app;
