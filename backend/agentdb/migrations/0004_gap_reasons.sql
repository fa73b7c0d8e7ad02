-- Why there is a gap (DESIGN §2): an offline beat says why the device went
-- (reason: sleep, shutdown, quit, paused, invisible; '' on every older row),
-- and an away beat may say the screen lock took the user away (why
-- 'locked'). SQLite cannot change a CHECK constraint in place, so the
-- outbox is rebuilt with its rows. History keeps why each span ended.
CREATE TABLE outbox_new (
    seq      INTEGER PRIMARY KEY,
    at_ns    INTEGER NOT NULL,
    state    TEXT    NOT NULL CHECK (state IN ('active', 'idle', 'away', 'offline')),
    idle_s   INTEGER NOT NULL CHECK (idle_s >= 0),
    since_ns INTEGER,
    why      TEXT    NOT NULL DEFAULT '' CHECK (why IN ('', 'input', 'call', 'media', 'locked')),
    reason   TEXT    NOT NULL DEFAULT '' CHECK (reason IN ('', 'sleep', 'shutdown', 'quit', 'paused', 'invisible'))
);
INSERT INTO outbox_new (seq, at_ns, state, idle_s, since_ns, why)
    SELECT seq, at_ns, state, idle_s, since_ns, why FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;

ALTER TABLE history ADD COLUMN end_reason TEXT NOT NULL DEFAULT '';
