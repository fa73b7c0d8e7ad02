-- What made an active span present: input, call or media ('' for other
-- states; '' on an active span from before this column means input).
ALTER TABLE spans ADD COLUMN why TEXT NOT NULL DEFAULT '';
