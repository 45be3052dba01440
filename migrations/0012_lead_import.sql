-- Lead import: per-outcome counts on import jobs, per-row errors, the owner+property dedupe key,
-- and the opt-in form on consent records.

ALTER TABLE import_jobs
    -- imported_rows = new_rows + merged_rows; error_rows holds the invalid (not imported) rows.
    ADD COLUMN new_rows integer NOT NULL DEFAULT 0,
    ADD COLUMN merged_rows integer NOT NULL DEFAULT 0,
    ADD COLUMN error_count integer NOT NULL DEFAULT 0,
    ADD COLUMN format text NOT NULL DEFAULT 'csv',
    -- The ConsentDeclaration of the upload, when it had one.
    ADD COLUMN consent jsonb,
    ADD COLUMN failure_reason text,
    ADD CONSTRAINT import_jobs_outcome_counts_valid CHECK (
        new_rows >= 0 AND merged_rows >= 0 AND error_count >= 0 AND new_rows + merged_rows = imported_rows),
    ADD CONSTRAINT import_jobs_format_valid CHECK (format IN ('csv', 'xlsx')),
    ADD CONSTRAINT import_jobs_failed_has_reason CHECK ((status = 'failed') = (failure_reason IS NOT NULL));

-- Problems found in the rows of an import: row number (1-based, header is 0), column, reason.
CREATE TABLE import_errors (
    org_id uuid NOT NULL,
    import_job_id uuid NOT NULL,
    row_number bigint NOT NULL,
    -- Order of the problems within a row (column order).
    seq integer NOT NULL,
    column_name text NOT NULL DEFAULT '',
    reason text NOT NULL,
    PRIMARY KEY (import_job_id, row_number, seq),
    CONSTRAINT import_errors_job_same_org FOREIGN KEY (org_id, import_job_id) REFERENCES import_jobs (org_id, id) ON DELETE CASCADE,
    CONSTRAINT import_errors_row_positive CHECK (row_number >= 0)
);

-- Same owner and same property: the second dedupe key of imports (the first is a shared phone).
-- NULL when either half is unknown, so leads without an owner or a property never match. Names
-- and addresses are stored trimmed with inner whitespace collapsed (imports and LeadService both
-- normalise them), so the key only folds case. One expression of immutable operators, so the
-- planner inlines it: imports compute it for every staged row.
CREATE FUNCTION ctower_lead_owner_key(owner_name text, first_name text, last_name text, property_address text, apn text)
    RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE
        WHEN coalesce(nullif(owner_name, ''), nullif(btrim(coalesce(first_name, '') || ' ' || coalesce(last_name, '')), '')) IS NULL
          OR coalesce(nullif(property_address, ''), nullif(apn, '')) IS NULL THEN NULL
        ELSE lower(coalesce(nullif(owner_name, ''), btrim(coalesce(first_name, '') || ' ' || coalesce(last_name, ''))))
            || '|' || lower(coalesce(nullif(property_address, ''), apn))
    END
    $$;
CREATE INDEX leads_org_owner_key_idx ON leads (org_id, ctower_lead_owner_key(owner_name, first_name, last_name, property_address, apn));

-- Merging a group of imported rows: custom fields of earlier rows win (aggregate in file order).
CREATE FUNCTION ctower_jsonb_keep_first(state jsonb, value jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce(value, '{}'::jsonb) || state $$;
CREATE AGGREGATE ctower_jsonb_merge_first_wins(jsonb) (SFUNC = ctower_jsonb_keep_first, STYPE = jsonb, INITCOND = '{}');

ALTER TABLE consent_records ADD COLUMN form_url text;

SELECT ctower_secure_tenant_tables();
