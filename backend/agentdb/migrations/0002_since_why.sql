-- Beats carry their edge and their reason (DESIGN §2): since_ns is the moment
-- the beat's state really began when that is earlier than at_ns (the last
-- input for idle, the lock for away, the sleep for offline, the first input
-- after waking for active); NULL means at_ns, which is all a row queued
-- before this migration knows. why is what makes an active beat present:
-- input, call or media; '' is input (and every older row).
ALTER TABLE outbox ADD COLUMN since_ns INTEGER;
ALTER TABLE outbox ADD COLUMN why TEXT NOT NULL DEFAULT '' CHECK (why IN ('', 'input', 'call', 'media'));
