-- State rules for solicitation by text, kept as data so a new state law is a new row, not code.
-- Shared reference data (no org_id): readable by the app role, changed only by migrations.
-- Federal default (47 CFR 64.1200(c)(1)): 08:00-21:00 at the recipient's location. Where the
-- recipient's state is uncertain (address vs area code), the stricter rule wins.

CREATE TABLE state_messaging_rules (
    state_code text PRIMARY KEY,
    -- Allowed window in minutes after local midnight.
    window_start_minute smallint NOT NULL,
    window_end_minute smallint NOT NULL,
    -- At most this many messages on the same subject per rolling 24 hours; NULL = no state limit.
    max_messages_per_24h smallint,
    -- Area codes presumed to be residents of the state (Oklahoma's law says so explicitly).
    area_codes text[] NOT NULL DEFAULT '{}',
    effective_from date NOT NULL,
    source text NOT NULL,
    CONSTRAINT state_messaging_rules_state_code CHECK (state_code ~ '^[A-Z]{2}$'),
    CONSTRAINT state_messaging_rules_window_valid CHECK (
        window_start_minute >= 480 AND window_end_minute <= 1260 AND window_start_minute < window_end_minute),
    CONSTRAINT state_messaging_rules_limit_positive CHECK (max_messages_per_24h IS NULL OR max_messages_per_24h > 0)
);

INSERT INTO state_messaging_rules (state_code, window_start_minute, window_end_minute, max_messages_per_24h, area_codes, effective_from, source) VALUES
    ('FL', 480, 1200, 3, '{}', '2023-07-01', 'Fla. Stat. 501.616(6)'),
    ('OK', 480, 1200, 3, '{405,539,572,580,918}', '2022-11-01', 'Oklahoma Telephone Solicitation Act of 2022'),
    ('MD', 480, 1200, 3, '{}', '2024-01-01', 'Maryland Stop the Spam Calls Act');

REVOKE INSERT, UPDATE, DELETE ON state_messaging_rules FROM ctower_app;
