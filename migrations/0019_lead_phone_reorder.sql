-- UpdateLead replaces a lead's phones, and a kept phone may move to another position (phones
-- [A, B, C] become [C, A, B]). A NOT DEFERRABLE unique constraint is checked row by row, so
-- such a move fails halfway whatever the order; DEFERRABLE INITIALLY IMMEDIATE checks at the end
-- of each statement (the SQL standard's rule), so one UPDATE can permute positions. Nothing
-- defers it further. A deferrable constraint cannot arbitrate ON CONFLICT; nothing uses it so.
ALTER TABLE lead_phones
    DROP CONSTRAINT lead_phones_position_unique,
    ADD CONSTRAINT lead_phones_position_unique UNIQUE (lead_id, position) DEFERRABLE INITIALLY IMMEDIATE;
