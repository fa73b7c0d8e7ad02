-- Why there is a gap: the reason the span ended with nothing after it
-- ('' while it runs, or when a new state took over; 'silence' when no
-- final beat came), and whether any of its beats were replayed late.
-- Spans from before these columns keep '' and false.
ALTER TABLE spans ADD COLUMN end_reason text NOT NULL DEFAULT ''
	CHECK (end_reason IN ('', 'sleep', 'shutdown', 'quit', 'paused', 'invisible', 'silence'));
ALTER TABLE spans ADD COLUMN replayed boolean NOT NULL DEFAULT false;
