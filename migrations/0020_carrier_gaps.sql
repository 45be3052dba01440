-- The carrier side's gaps after issue 4: delivery statuses that arrive before their send is
-- recorded, Twilio's 21610 (recipient unsubscribed at the carrier), message cost, and the
-- warming ramp of new numbers.

-- A delivery status outranks the statuses it may replace: callbacks arrive out of order, and a
-- late 'sent' must never overwrite 'delivered'. The same order as the Twilio plugin's
-- (accepted < queued < sending < sent < undelivered/failed < delivered); anything else is 0.
CREATE FUNCTION ctower_delivery_rank(p_status text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT CASE p_status
            WHEN 'queued' THEN 1 WHEN 'claimed' THEN 1 WHEN 'sending' THEN 2 WHEN 'sent' THEN 3
            WHEN 'undelivered' THEN 4 WHEN 'failed' THEN 4 WHEN 'delivered' THEN 5 ELSE 0 END
    $$;

-- Final messages whose carrier has not told us their price yet: Twilio prices a message some
-- time after it is final, and its status callbacks carry no price. CarrierUpkeep asks plugins
-- with CAPABILITY_PRICE_QUERY through QueryStatus 2 minutes, 30 minutes and 6 hours after the
-- final status, then gives up (the message keeps no cost); other plugins' rows are dropped.
CREATE TABLE message_cost_checks (
    org_id uuid NOT NULL,
    message_id uuid PRIMARY KEY,
    carrier_connection_id uuid NOT NULL,
    due_at timestamptz NOT NULL,
    attempts smallint NOT NULL DEFAULT 0,
    CONSTRAINT message_cost_checks_message_same_org FOREIGN KEY (org_id, message_id)
        REFERENCES messages (org_id, id) ON DELETE CASCADE,
    CONSTRAINT message_cost_checks_connection_same_org FOREIGN KEY (org_id, carrier_connection_id)
        REFERENCES carrier_connections (org_id, id) ON DELETE CASCADE,
    CONSTRAINT message_cost_checks_attempts_range CHECK (attempts BETWEEN 0 AND 3)
);
CREATE INDEX message_cost_checks_due_idx ON message_cost_checks (org_id, due_at);

-- Stores one delivery status of a known outbound message: the event (deduplicated by the
-- carrier's event id), the message's status when the new one outranks it, and the carrier's
-- price when it reports one. False when the event was already stored (a redelivery).
CREATE FUNCTION ctower_apply_delivery_status(
    p_org_id uuid, p_message_id uuid, p_status text, p_provider_status text, p_error_code text, p_occurred_at timestamptz,
    p_carrier_event_id text, p_cost_micros bigint, p_currency text
) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO message_status_events (org_id, message_id, status, provider_status, error_code, occurred_at, carrier_event_id)
    VALUES (p_org_id, p_message_id, p_status, p_provider_status, p_error_code, p_occurred_at, p_carrier_event_id)
    ON CONFLICT (org_id, carrier_event_id) WHERE carrier_event_id IS NOT NULL DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE messages m SET status = p_status,
        sent_at = COALESCE(m.sent_at, p_occurred_at),
        delivered_at = CASE WHEN p_status = 'delivered' THEN p_occurred_at ELSE m.delivered_at END,
        failed_at = CASE WHEN p_status IN ('failed', 'undelivered') THEN p_occurred_at ELSE m.failed_at END,
        error_code = COALESCE(p_error_code, m.error_code)
    WHERE m.id = p_message_id AND m.direction = 'outbound'
      AND p_status IN ('sent', 'delivered', 'undelivered', 'failed')
      AND m.status IN ('sending', 'sent', 'undelivered', 'failed', 'delivered')
      AND ctower_delivery_rank(p_status) > ctower_delivery_rank(m.status);
    IF p_cost_micros IS NOT NULL AND p_currency IS NOT NULL THEN
        UPDATE messages m SET cost_micros = p_cost_micros, currency = p_currency
        WHERE m.id = p_message_id AND (m.cost_micros, m.currency) IS DISTINCT FROM (p_cost_micros, p_currency);
        DELETE FROM message_cost_checks c WHERE c.message_id = p_message_id;
    ELSIF p_status IN ('delivered', 'undelivered', 'failed') THEN
        INSERT INTO message_cost_checks (org_id, message_id, carrier_connection_id, due_at)
        SELECT m.org_id, m.id, m.carrier_connection_id, now() + interval '2 minutes' FROM messages m
        WHERE m.id = p_message_id AND m.cost_micros IS NULL AND m.carrier_connection_id IS NOT NULL
        ON CONFLICT (message_id) DO NOTHING;
    END IF;
    RETURN true;
END
$$;

-- Delivery statuses that name a provider message id no message of the connection carries yet.
-- Twilio's status callbacks carry only the MessageSid, and one can beat the dispatcher's record
-- of the send it reports on. Kept here and applied when the send is recorded (a trigger on
-- messages, in the recording transaction); a periodic sweep applies the few that raced that
-- trigger and deletes, with an audit event, those that never matched (expires_at).
CREATE TABLE parked_delivery_statuses (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    carrier_connection_id uuid NOT NULL,
    provider_message_id text NOT NULL,
    status text NOT NULL,
    provider_status text,
    error_code text,
    occurred_at timestamptz NOT NULL,
    carrier_event_id text,
    cost_micros bigint,
    currency text,
    -- The normalised event as the plugin reported it (proto JSON), for the audit trail.
    payload jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '1 day',
    CONSTRAINT parked_delivery_statuses_connection_same_org FOREIGN KEY (org_id, carrier_connection_id)
        REFERENCES carrier_connections (org_id, id) ON DELETE CASCADE,
    CONSTRAINT parked_delivery_statuses_status_valid CHECK (status IN ('queued', 'sent', 'delivered', 'undelivered', 'failed', 'cancelled')),
    CONSTRAINT parked_delivery_statuses_expiry_after_receipt CHECK (expires_at > received_at),
    CONSTRAINT parked_delivery_statuses_cost_complete CHECK ((cost_micros IS NULL) = (currency IS NULL) AND (cost_micros IS NULL OR cost_micros >= 0))
);
CREATE UNIQUE INDEX parked_delivery_statuses_event_unique ON parked_delivery_statuses (carrier_connection_id, carrier_event_id)
    WHERE carrier_event_id IS NOT NULL;
CREATE INDEX parked_delivery_statuses_message_idx ON parked_delivery_statuses (carrier_connection_id, provider_message_id);
CREATE INDEX parked_delivery_statuses_expiry_idx ON parked_delivery_statuses (org_id, expires_at);

-- One delivery status from a carrier: applied to its message, or parked until the send is
-- recorded. Returns 'stored', 'parked' or 'duplicate' (already stored or already parked).
--
-- A status that finds no message may be racing the hand-off transaction that is about to record
-- its send; that transaction holds the recipient's phone lock shared from before the Send until
-- it commits. So when the recipient is known, the status waits for that lock exclusively and
-- looks again (a new snapshot: this function is volatile) before it parks: either the send is
-- recorded by then, or its transaction starts after this one commits and its trigger sees the
-- parked row. The wait is bounded (2 s): a hand-off stuck on a slow carrier must not stall the
-- event lanes. Statuses past that wait, without a recipient, or whose send is recorded by a
-- transaction that holds no phone lock (the crash recovery) can slip between the two; the upkeep
-- sweep applies those.
CREATE FUNCTION ctower_record_delivery_status(
    p_org_id uuid, p_connection_id uuid, p_provider_message_id text, p_to_phone text, p_status text, p_provider_status text,
    p_error_code text, p_occurred_at timestamptz, p_carrier_event_id text, p_cost_micros bigint, p_currency text, p_payload jsonb
) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_message_id uuid;
    v_lock_timeout text;
BEGIN
    SELECT m.id INTO v_message_id FROM messages m
    WHERE m.carrier_connection_id = p_connection_id AND m.provider_message_id = p_provider_message_id;
    IF v_message_id IS NULL AND p_to_phone IS NOT NULL THEN
        v_lock_timeout := current_setting('lock_timeout');
        PERFORM set_config('lock_timeout', '2s', true);
        BEGIN
            PERFORM pg_advisory_xact_lock(ctower_phone_lock_key(p_org_id, p_to_phone));
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
        PERFORM set_config('lock_timeout', v_lock_timeout, true);
        SELECT m.id INTO v_message_id FROM messages m
        WHERE m.carrier_connection_id = p_connection_id AND m.provider_message_id = p_provider_message_id;
    END IF;
    IF v_message_id IS NOT NULL THEN
        IF ctower_apply_delivery_status(p_org_id, v_message_id, p_status, p_provider_status, p_error_code, p_occurred_at,
                                        p_carrier_event_id, p_cost_micros, p_currency) THEN
            RETURN 'stored';
        END IF;
        RETURN 'duplicate';
    END IF;
    INSERT INTO parked_delivery_statuses (org_id, carrier_connection_id, provider_message_id, status, provider_status, error_code,
                                          occurred_at, carrier_event_id, cost_micros, currency, payload)
    VALUES (p_org_id, p_connection_id, p_provider_message_id, p_status, p_provider_status, p_error_code, p_occurred_at,
            p_carrier_event_id, p_cost_micros, p_currency, p_payload)
    ON CONFLICT (carrier_connection_id, carrier_event_id) WHERE carrier_event_id IS NOT NULL DO NOTHING;
    IF FOUND THEN
        RETURN 'parked';
    END IF;
    RETURN 'duplicate';
END
$$;

-- Applies (lowest rank first) and deletes the parked statuses of the given messages, matched by
-- connection and provider message id. Returns how many were applied.
CREATE FUNCTION ctower_apply_parked_statuses(p_message_ids uuid[]) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    parked record;
    applied integer := 0;
BEGIN
    FOR parked IN
        WITH taken AS (
            DELETE FROM parked_delivery_statuses p USING messages m
            WHERE m.id = ANY (p_message_ids) AND p.org_id = m.org_id
              AND p.carrier_connection_id = m.carrier_connection_id AND p.provider_message_id = m.provider_message_id
            RETURNING p.*, m.id AS message_id)
        SELECT * FROM taken ORDER BY ctower_delivery_rank(taken.status), taken.occurred_at, taken.id
    LOOP
        IF ctower_apply_delivery_status(parked.org_id, parked.message_id, parked.status, parked.provider_status, parked.error_code,
                                        parked.occurred_at, parked.carrier_event_id, parked.cost_micros, parked.currency) THEN
            applied := applied + 1;
        END IF;
    END LOOP;
    RETURN applied;
END
$$;

-- Recording a send's provider id applies what was parked for it, in the same transaction. The
-- probe is one index lookup; the apply runs only when something waits.
CREATE FUNCTION ctower_messages_apply_parked() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM parked_delivery_statuses p
               WHERE p.carrier_connection_id = NEW.carrier_connection_id AND p.provider_message_id = NEW.provider_message_id) THEN
        PERFORM ctower_apply_parked_statuses(ARRAY[NEW.id]);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_apply_parked_statuses AFTER UPDATE OF provider_message_id ON messages FOR EACH ROW
    WHEN (NEW.provider_message_id IS NOT NULL AND OLD.provider_message_id IS DISTINCT FROM NEW.provider_message_id)
    EXECUTE FUNCTION ctower_messages_apply_parked();

-- One sweep in the caller's org: applies parked statuses whose send is now recorded (the rare
-- status whose parking raced the trigger) and deletes those past expires_at at p_now, with one
-- audit event per connection ('carrier.status_expired', with the count and the statuses).
CREATE FUNCTION ctower_sweep_parked_statuses(p_org_id uuid, p_now timestamptz, OUT applied integer, OUT expired integer)
    LANGUAGE plpgsql
    AS $$
BEGIN
    applied := ctower_apply_parked_statuses(ARRAY(
        SELECT m.id FROM parked_delivery_statuses p
        JOIN messages m ON m.org_id = p.org_id AND m.carrier_connection_id = p.carrier_connection_id
                       AND m.provider_message_id = p.provider_message_id
        WHERE p.org_id = p_org_id));
    WITH gone AS (
        DELETE FROM parked_delivery_statuses p WHERE p.org_id = p_org_id AND p.expires_at <= p_now
        RETURNING p.carrier_connection_id, p.provider_message_id, p.status, p.received_at),
    -- A data-modifying WITH runs whether or not it is read.
    audited AS (
        INSERT INTO audit_events (org_id, actor_user_id, action, target_type, target_id, metadata)
        SELECT p_org_id, NULL, 'carrier.status_expired', 'carrier_connection', g.carrier_connection_id::text,
               jsonb_build_object('count', count(*), 'statuses', jsonb_agg(jsonb_build_object(
                   'provider_message_id', g.provider_message_id, 'status', g.status, 'received_at', g.received_at)
                   ORDER BY g.received_at))
        FROM gone g GROUP BY g.carrier_connection_id)
    SELECT count(*) INTO expired FROM gone;
END
$$;

-- Twilio 21610 ("Attempt to send to unsubscribed recipient") on our own opt-out confirmation
-- (purpose 'compliance') means Twilio refused it because the recipient's STOP already reached
-- Twilio, which confirmed the opt-out itself (it answers its English keywords on long codes).
-- The confirmation is done, not failed: 'skipped' with skip_reason 'carrier_confirmed', which no
-- failure count of the sender number includes; audited as 'compliance.confirmed_by_carrier'.
-- 21610 on any other message is an opt-out at the carrier: Compliance/CarrierOptOuts records it.
CREATE FUNCTION ctower_messages_carrier_confirmed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.status := 'skipped';
    NEW.skip_reason := 'carrier_confirmed';
    NEW.failed_at := NULL;
    INSERT INTO audit_events (org_id, actor_user_id, action, target_type, target_id, metadata)
    VALUES (NEW.org_id, NULL, 'compliance.confirmed_by_carrier', 'message', NEW.id::text,
            jsonb_build_object('to_phone', NEW.to_phone, 'error_code', NEW.error_code, 'carrier_status', OLD.status));
    RETURN NEW;
END
$$;
CREATE TRIGGER messages_carrier_confirmed_opt_out BEFORE UPDATE OF status ON messages FOR EACH ROW
    WHEN (NEW.status IN ('failed', 'undelivered') AND NEW.error_code = '21610' AND NEW.purpose = 'compliance'
          AND NEW.direction = 'outbound' AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION ctower_messages_carrier_confirmed();

-- The warming ramp. Carriers publish no schedule; ours is conservative: a number sends at most
-- 50 messages on its first UTC day in state 'warming' (ramp day 0), twice as many each day after
-- (50, 100, 200, 400, ...), never more than its daily_cap. warming_started_on replaces the
-- warming_day counter, which nothing advanced: the ramp day is computed from the date, so no job
-- has to run every day for it to hold.
ALTER TABLE phone_numbers ADD COLUMN warming_started_on date NOT NULL DEFAULT ((now() AT TIME ZONE 'UTC')::date);
UPDATE phone_numbers SET warming_started_on = warming_started_on - warming_day WHERE warming_day > 0;
ALTER TABLE phone_numbers
    DROP CONSTRAINT phone_numbers_counts_nonnegative,
    DROP COLUMN warming_day,
    ADD CONSTRAINT phone_numbers_counts_nonnegative CHECK (
        delivered_count >= 0 AND failed_count >= 0 AND filtered_count >= 0 AND opt_out_count >= 0);

-- Days since the ramp started (0 = the first day).
CREATE FUNCTION ctower_warming_day(p_started date, p_today date) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT GREATEST(0, p_today - p_started) $$;

-- The daily cap in force on p_today: the ramp's while warming, else daily_cap. The dispatcher
-- reads it when it loads a number's cap (Dispatch/Dispatcher+Claim.swift, senderContext).
CREATE FUNCTION ctower_effective_daily_cap(p_state text, p_daily_cap integer, p_started date, p_today date) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT CASE WHEN p_state = 'warming'
                    THEN LEAST(p_daily_cap, (50 * 2 ^ LEAST(ctower_warming_day(p_started, p_today), 20))::integer)
                    ELSE p_daily_cap END
    $$;

-- Putting a number (back) into 'warming' starts its ramp again today, unless the same update
-- names the start date.
CREATE FUNCTION ctower_phone_numbers_restart_warming() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.warming_started_on := (now() AT TIME ZONE 'UTC')::date;
    RETURN NEW;
END
$$;
CREATE TRIGGER phone_numbers_restart_warming BEFORE UPDATE OF state ON phone_numbers FOR EACH ROW
    WHEN (NEW.state = 'warming' AND OLD.state IS DISTINCT FROM 'warming' AND NEW.warming_started_on = OLD.warming_started_on)
    EXECUTE FUNCTION ctower_phone_numbers_restart_warming();

-- Warming numbers whose ramp has reached their cap on p_today become 'active', each audited as
-- 'phone_number.warmed'; in the caller's org. Returns how many.
CREATE FUNCTION ctower_promote_warmed_numbers(p_org_id uuid, p_today date) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    promoted integer;
BEGIN
    WITH warmed AS (
        UPDATE phone_numbers n SET state = 'active'
        WHERE n.org_id = p_org_id AND n.state = 'warming'
          AND ctower_effective_daily_cap(n.state, n.daily_cap, n.warming_started_on, p_today) >= n.daily_cap
        RETURNING n.id, n.phone, n.daily_cap, ctower_warming_day(n.warming_started_on, p_today) AS day),
    audited AS (
        INSERT INTO audit_events (org_id, actor_user_id, action, target_type, target_id, metadata)
        SELECT p_org_id, NULL, 'phone_number.warmed', 'phone_number', w.id::text,
               jsonb_build_object('phone', w.phone, 'daily_cap', w.daily_cap, 'warming_day', w.day)
        FROM warmed w)
    SELECT count(*) INTO promoted FROM warmed;
    RETURN promoted;
END
$$;

-- Orgs with carrier upkeep due (ids only; the work runs in each org's own transaction): parked
-- statuses whose send is recorded or that have expired, warming numbers at their cap, and
-- prices to ask for.
CREATE FUNCTION ctower_carrier_upkeep_orgs(p_now timestamptz, p_limit integer) RETURNS SETOF uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
    AS $$
        SELECT p.org_id FROM parked_delivery_statuses p
        WHERE p.expires_at <= p_now
           OR EXISTS (SELECT 1 FROM messages m WHERE m.carrier_connection_id = p.carrier_connection_id
                                                 AND m.provider_message_id = p.provider_message_id)
        UNION
        SELECT n.org_id FROM phone_numbers n
        WHERE n.state = 'warming'
          AND ctower_effective_daily_cap(n.state, n.daily_cap, n.warming_started_on, (p_now AT TIME ZONE 'UTC')::date) >= n.daily_cap
        UNION
        SELECT c.org_id FROM message_cost_checks c WHERE c.due_at <= p_now
        LIMIT p_limit
    $$;

GRANT EXECUTE ON FUNCTION ctower_delivery_rank(text),
    ctower_apply_delivery_status(uuid, uuid, text, text, text, timestamptz, text, bigint, text),
    ctower_record_delivery_status(uuid, uuid, text, text, text, text, text, timestamptz, text, bigint, text, jsonb),
    ctower_apply_parked_statuses(uuid[]), ctower_messages_apply_parked(),
    ctower_sweep_parked_statuses(uuid, timestamptz), ctower_messages_carrier_confirmed(),
    ctower_warming_day(date, date), ctower_effective_daily_cap(text, integer, date, date),
    ctower_phone_numbers_restart_warming(), ctower_promote_warmed_numbers(uuid, date),
    ctower_carrier_upkeep_orgs(timestamptz, integer) TO ctower_app;

SELECT ctower_secure_tenant_tables();
