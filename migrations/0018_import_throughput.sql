-- Lead import throughput. Every imported lead pays for every index and trigger on `leads`, so
-- what nothing reads goes; the owner+property key becomes a stored column; and two maintenance
-- functions run as the owner what the app role may not do itself. Costs are CPU per inserted
-- row, measured on 164,203 imported leads (Benchmarks/import).

-- Indexes no query uses (checked against every statement in Sources/): nothing filters
-- custom_fields (the GIN index cost 8 µs a row), apn is matched only inside the owner+property
-- key, and no lead list, filter or audience selects by status (the two cost 7 µs a row).
DROP INDEX leads_custom_fields_idx;
DROP INDEX leads_org_apn_idx;
DROP INDEX leads_org_status_idx;

-- The owner+property dedupe key (see ctower_lead_owner_key in 0012), computed once when a row is
-- written instead of in an expression index and again in every lookup. The index holds only the
-- leads that have a key.
ALTER TABLE leads ADD COLUMN owner_key text
    GENERATED ALWAYS AS (ctower_lead_owner_key(owner_name, first_name, last_name, property_address, apn)) STORED;
DROP INDEX leads_org_owner_key_idx;
CREATE INDEX leads_org_owner_key_idx ON leads (org_id, owner_key) WHERE owner_key IS NOT NULL;

-- Time-ordered ids (the UUID version 7 layout of RFC 9562: 48 bits of Unix milliseconds, then
-- random bits) for leads and their phones. Random version 4 ids land on random pages of the
-- primary key and (org_id, id) indexes, so a bulk insert touches all of them; ids that grow with
-- time append at the right edge. Imported phones cost 26 µs a row with random ids and 20 µs
-- with these. The id reveals when the row was created, as created_at already does.
CREATE FUNCTION ctower_uuid_v7() RETURNS uuid
    LANGUAGE sql VOLATILE PARALLEL SAFE
    AS $$
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid
    $$;
GRANT EXECUTE ON FUNCTION ctower_uuid_v7() TO ctower_app;
ALTER TABLE leads ALTER COLUMN id SET DEFAULT ctower_uuid_v7();
ALTER TABLE lead_phones ALTER COLUMN id SET DEFAULT ctower_uuid_v7();

-- Fresh statistics after a big import. The app role owns no table, so it cannot ANALYZE, and
-- plans over the statistics of an empty table went quadratic. Only the tables an import writes;
-- no argument, so the caller cannot point it anywhere else. The statistics it writes stay out of
-- tenants' sight: pg_statistic is the superuser's, and pg_stats leaves out tables whose
-- row-level security applies to the reader (autovacuum computes the same statistics anyway).
CREATE FUNCTION ctower_analyze_imported_tables() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
BEGIN
    ANALYZE leads;
    ANALYZE lead_phones;
    ANALYZE import_errors;
    ANALYZE consent_records;
END
$$;
REVOKE ALL ON FUNCTION ctower_analyze_imported_tables() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ctower_analyze_imported_tables() TO ctower_app;

-- Import jobs whose server died mid-import, in every org: `ctower serve` runs this at start.
-- A running import holds pg_advisory_xact_lock(hashtextextended('ctower_import:' || id, 0))
-- for as long as its transaction lives (ImportJobRecords.lockKey), so a job whose lock is free
-- has no worker; jobs younger than 30 seconds may not have taken it yet and are left to the
-- read path (ImportJobRecords.failIfOrphaned), which applies the same rule and reason.
CREATE FUNCTION ctower_fail_orphaned_import_jobs() RETURNS integer
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
    WITH failed AS (
        UPDATE import_jobs j
        SET status = 'failed', finished_at = now(), started_at = coalesce(j.started_at, now()),
            failure_reason = 'the server stopped before the import finished; nothing was saved, upload the file again'
        WHERE j.status IN ('pending', 'running') AND j.created_at < now() - interval '30 seconds'
          AND pg_try_advisory_xact_lock(hashtextextended('ctower_import:' || j.id::text, 0))
        RETURNING 1
    )
    SELECT count(*)::integer FROM failed
    $$;
REVOKE ALL ON FUNCTION ctower_fail_orphaned_import_jobs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ctower_fail_orphaned_import_jobs() TO ctower_app;

SELECT ctower_secure_tenant_tables();
