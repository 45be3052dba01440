-- Templates: the org's opt-out lint switch, starter-library provenance, and variant revisions.

-- Whether an initial template variant without opt-out language ("Reply STOP to opt out") is
-- refused at save time (true) or only warned about (false). Conservative by default.
ALTER TABLE orgs ADD COLUMN require_opt_out_language boolean NOT NULL DEFAULT true;

-- Which starter-library template a template was installed from ("starter.en.initial"), so a
-- second install adds nothing even after the org renamed or archived its copy.
ALTER TABLE templates
    ADD COLUMN library_key text,
    ADD CONSTRAINT templates_library_key_unique UNIQUE (org_id, library_key),
    ADD CONSTRAINT templates_library_key_format CHECK (library_key IS NULL OR library_key ~ '^[a-z0-9_.]{1,100}$'),
    ADD CONSTRAINT templates_name_length CHECK (length(name) BETWEEN 1 AND 100);

-- A variant keeps its id (and its send/reply counts) when its body is edited; the revision
-- counts the edits so reports can tell which text the counts belong to. Each edit also writes
-- an audit event with the previous body.
ALTER TABLE template_variants
    ADD COLUMN revision integer NOT NULL DEFAULT 1,
    ADD COLUMN body_updated_at timestamptz,
    ADD CONSTRAINT template_variants_revision_positive CHECK (revision >= 1),
    ADD CONSTRAINT template_variants_position_positive CHECK (position >= 1);

SELECT ctower_secure_tenant_tables();
