-- What made an active history span present (input, call, media), as the
-- service keeps it; '' on older rows means input.
ALTER TABLE history ADD COLUMN why TEXT NOT NULL DEFAULT '';
