-- What made an active span present: input, call or media ('' for other
-- states; '' on an active span from before this column means input).
ALTER TABLE spans ADD COLUMN why text NOT NULL DEFAULT '';
-- And on the device: why it counts as present at its last beat, so every
-- instance shows "in a call" without reading its tail span.
ALTER TABLE devices ADD COLUMN why text NOT NULL DEFAULT '';
