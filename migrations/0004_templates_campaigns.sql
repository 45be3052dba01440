-- Templates with rotating variants, campaigns with drip steps, A/B variants and targets.

CREATE TABLE templates (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL,
    category text NOT NULL,
    language text NOT NULL DEFAULT 'en',
    -- Advanced on every pick; fair rotation picks the least-used enabled variant.
    rotation_counter bigint NOT NULL DEFAULT 0,
    archived_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT templates_org_id_unique UNIQUE (org_id, id),
    CONSTRAINT templates_name_unique UNIQUE (org_id, name),
    CONSTRAINT templates_category_valid CHECK (category IN ('initial', 'follow_up', 'reply', 'help', 'stop', 'other')),
    CONSTRAINT templates_language_valid CHECK (language IN ('en', 'es')),
    CONSTRAINT templates_rotation_nonnegative CHECK (rotation_counter >= 0)
);
CREATE TRIGGER templates_touch BEFORE UPDATE ON templates FOR EACH ROW EXECUTE FUNCTION ctower_touch_updated_at();

CREATE TABLE template_variants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL,
    template_id uuid NOT NULL,
    position smallint NOT NULL,
    body text NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    send_count bigint NOT NULL DEFAULT 0,
    reply_count bigint NOT NULL DEFAULT 0,
    last_sent_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT template_variants_template_same_org FOREIGN KEY (org_id, template_id) REFERENCES templates (org_id, id) ON DELETE CASCADE,
    CONSTRAINT template_variants_org_id_unique UNIQUE (org_id, id),
    CONSTRAINT template_variants_position_unique UNIQUE (template_id, position),
    CONSTRAINT template_variants_body_length CHECK (length(body) BETWEEN 1 AND 1600),
    CONSTRAINT template_variants_counts_nonnegative CHECK (send_count >= 0 AND reply_count >= 0)
);
CREATE INDEX template_variants_rotation_idx ON template_variants (template_id, send_count) WHERE enabled;

CREATE TABLE campaigns (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL,
    kind text NOT NULL,
    status text NOT NULL DEFAULT 'draft',
    -- Tags, lists and segments that make up the audience.
    audience jsonb NOT NULL DEFAULT '{}',
    messages_per_second numeric(8, 2),
    daily_cap integer,
    scheduled_at timestamptz,
    started_at timestamptz,
    paused_at timestamptz,
    completed_at timestamptz,
    cloned_from uuid,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT campaigns_org_id_unique UNIQUE (org_id, id),
    CONSTRAINT campaigns_kind_valid CHECK (kind IN ('broadcast', 'drip', 'trigger', 'ab_test')),
    CONSTRAINT campaigns_status_valid CHECK (status IN ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled')),
    CONSTRAINT campaigns_started_has_time CHECK (status NOT IN ('running', 'paused', 'completed') OR started_at IS NOT NULL),
    CONSTRAINT campaigns_scheduled_has_time CHECK (status <> 'scheduled' OR scheduled_at IS NOT NULL),
    CONSTRAINT campaigns_rate_positive CHECK (
        (messages_per_second IS NULL OR messages_per_second > 0) AND (daily_cap IS NULL OR daily_cap > 0)),
    CONSTRAINT campaigns_audience_object CHECK (jsonb_typeof(audience) = 'object'),
    CONSTRAINT campaigns_cloned_same_org FOREIGN KEY (org_id, cloned_from) REFERENCES campaigns (org_id, id) ON DELETE SET NULL (cloned_from)
);
CREATE INDEX campaigns_org_status_idx ON campaigns (org_id, status);
CREATE TRIGGER campaigns_touch BEFORE UPDATE ON campaigns FOR EACH ROW EXECUTE FUNCTION ctower_touch_updated_at();

-- Drip sequence: step 1 goes first, each later step waits delay_minutes after the previous one.
CREATE TABLE campaign_steps (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    position smallint NOT NULL,
    template_id uuid NOT NULL,
    delay_minutes integer NOT NULL DEFAULT 0,
    -- Skip the step if the lead has replied by then.
    stop_on_reply boolean NOT NULL DEFAULT true,
    CONSTRAINT campaign_steps_campaign_same_org FOREIGN KEY (org_id, campaign_id) REFERENCES campaigns (org_id, id) ON DELETE CASCADE,
    CONSTRAINT campaign_steps_template_same_org FOREIGN KEY (org_id, template_id) REFERENCES templates (org_id, id),
    CONSTRAINT campaign_steps_org_id_unique UNIQUE (org_id, id),
    CONSTRAINT campaign_steps_position_unique UNIQUE (campaign_id, position),
    CONSTRAINT campaign_steps_position_positive CHECK (position >= 1),
    CONSTRAINT campaign_steps_delay_nonnegative CHECK (delay_minutes >= 0)
);

-- A/B arms: each has a template and a weight.
CREATE TABLE campaign_variants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    label text NOT NULL,
    template_id uuid NOT NULL,
    weight smallint NOT NULL DEFAULT 50,
    CONSTRAINT campaign_variants_campaign_same_org FOREIGN KEY (org_id, campaign_id) REFERENCES campaigns (org_id, id) ON DELETE CASCADE,
    CONSTRAINT campaign_variants_template_same_org FOREIGN KEY (org_id, template_id) REFERENCES templates (org_id, id),
    CONSTRAINT campaign_variants_org_id_unique UNIQUE (org_id, id),
    CONSTRAINT campaign_variants_label_unique UNIQUE (campaign_id, label),
    CONSTRAINT campaign_variants_weight_range CHECK (weight BETWEEN 1 AND 100)
);

-- The materialised audience: one row per lead in the campaign.
CREATE TABLE campaign_targets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL,
    campaign_id uuid NOT NULL,
    lead_id uuid NOT NULL,
    lead_phone_id uuid,
    variant_id uuid,
    status text NOT NULL DEFAULT 'pending',
    current_step smallint NOT NULL DEFAULT 0,
    next_step_at timestamptz,
    skip_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT campaign_targets_campaign_same_org FOREIGN KEY (org_id, campaign_id) REFERENCES campaigns (org_id, id) ON DELETE CASCADE,
    CONSTRAINT campaign_targets_lead_same_org FOREIGN KEY (org_id, lead_id) REFERENCES leads (org_id, id) ON DELETE CASCADE,
    CONSTRAINT campaign_targets_phone_same_org FOREIGN KEY (org_id, lead_phone_id) REFERENCES lead_phones (org_id, id) ON DELETE SET NULL (lead_phone_id),
    CONSTRAINT campaign_targets_variant_same_org FOREIGN KEY (org_id, variant_id) REFERENCES campaign_variants (org_id, id) ON DELETE SET NULL (variant_id),
    CONSTRAINT campaign_targets_lead_unique UNIQUE (campaign_id, lead_id),
    CONSTRAINT campaign_targets_status_valid CHECK (status IN (
        'pending', 'active', 'replied', 'opted_out', 'skipped', 'failed', 'completed')),
    CONSTRAINT campaign_targets_skip_has_reason CHECK (status <> 'skipped' OR skip_reason IS NOT NULL),
    CONSTRAINT campaign_targets_step_nonnegative CHECK (current_step >= 0)
);
CREATE INDEX campaign_targets_progress_idx ON campaign_targets (campaign_id, status);
CREATE INDEX campaign_targets_next_step_idx ON campaign_targets (org_id, next_step_at) WHERE status = 'active';
CREATE INDEX campaign_targets_lead_idx ON campaign_targets (org_id, lead_id);
CREATE TRIGGER campaign_targets_touch BEFORE UPDATE ON campaign_targets FOR EACH ROW EXECUTE FUNCTION ctower_touch_updated_at();

SELECT ctower_secure_tenant_tables();
